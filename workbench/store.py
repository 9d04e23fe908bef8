"""EventStore: the append-only DuckDB home of every event.

The store takes events in large batches from any input (Arrow, pandas, dicts, JSONL,
Parquet), validates them against the catalogue in SQL, puts what it cannot take in a
``quarantine`` table with the raw text, the reason and the place it came from, skips
events it already holds, and stores the rest with a store-assigned ``seq``, typed
columns derived from the metadata for fast analyses, a per-lead summary, and a hash
chain that ``verify()`` recomputes. Old events move to Parquet tiers (warm, cold)
without changing any count; one view spans hot and warm so queries need not care.

There is no update or delete API: events are immutable. Reads for people go through
``workbench.access.Session``; the methods here are the raw layer beneath it.

>>> store = open_store()                        # in memory
>>> store.append([{"event_id": "evt_1", "type": "source.submitted", "lead_id": "lead_1",
...     "timestamp": "2024-01-15T10:30:45.123Z", "metadata": {"source": "Acme",
...     "raw_data": {}, "headers": {}, "ip_address": "203.0.113.9", "source_config": {}}}])
IngestReport(received=1, stored=1, duplicates=0, quarantined=0)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import _chain, _ingest_sql, _inputs
from ._inputs import Rejected
from ._sqlguard import ReadOnlyViolation, check_read_only
from .catalog import DEFAULT_CATALOG, Catalog, EventType, make_event_type

__all__ = [
    "open_store",
    "EventStore",
    "IngestReport",
    "VerifyReport",
    "MoveReport",
    "StoreError",
    "StoreLockedError",
    "StoreNotFoundError",
    "ReadOnlyStoreError",
    "ReadOnlyViolation",
    "Rejected",
]

SCHEMA_VERSION = "3"
_HASH_PROBE = "lead-events workbench: hash probe"
ENTITY_KINDS = ("source", "enhancement", "filter", "recipient")
TIERS = ("hot", "warm", "cold")
#: DuckDB's memory limit while append() runs (see EventStore._ingest_memory).
INGEST_MEMORY_LIMIT = "512MB"

#: Columns of the event record, in order (DESIGN.md).
RECORD_COLUMNS = (
    "seq",
    "event_id",
    "type",
    "timestamp",
    "lead_id",
    "flow_id",
    "entity_id",
    "step_id",
    "outcome",
    "duration_ms",
    "metadata",
    "lead_snapshot",
)
#: Typed columns derived at ingest from the record, so analyses need not parse JSON.
DERIVED_COLUMNS = (
    "step_name",
    "entity_name",
    "rejection_reason",
    "error_type",
    "http_status",
    "cost",
    "revenue",
    "feedback_type",
    "retry_count",
)
PUBLIC_COLUMNS = RECORD_COLUMNS + DERIVED_COLUMNS
_ALL_COLUMNS = PUBLIC_COLUMNS + ("id_hash", "chain_hash")

_DDL = """
CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS events (
    seq              BIGINT NOT NULL,
    event_id         VARCHAR NOT NULL,
    type             VARCHAR NOT NULL,
    timestamp        TIMESTAMPTZ NOT NULL,
    lead_id          VARCHAR NOT NULL,
    flow_id          VARCHAR,
    entity_id        VARCHAR,
    step_id          VARCHAR,
    outcome          VARCHAR NOT NULL,
    duration_ms      INTEGER,
    metadata         JSON NOT NULL,
    lead_snapshot    JSON,
    step_name        VARCHAR,
    entity_name      VARCHAR,
    rejection_reason VARCHAR,
    error_type       VARCHAR,
    http_status      INTEGER,
    cost             DOUBLE,
    revenue          DOUBLE,
    feedback_type    VARCHAR,
    retry_count      INTEGER,
    id_hash          UBIGINT NOT NULL,
    chain_hash       UBIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    qid         BIGINT,
    ingest_id   BIGINT,
    received_at TIMESTAMPTZ,
    origin      VARCHAR,
    file        VARCHAR,
    line        BIGINT,
    batch       BIGINT,
    "row"       BIGINT,
    reason      VARCHAR,
    event_id    VARCHAR,
    type        VARCHAR,
    lead_id     VARCHAR,
    raw         VARCHAR
);
CREATE TABLE IF NOT EXISTS lead_summary_parts (
    lead_id          VARCHAR NOT NULL,
    flow_id          VARCHAR,
    source           VARCHAR,
    source_id        VARCHAR,
    submitted_at     TIMESTAMPTZ,
    first_ts         TIMESTAMPTZ,
    last_ts          TIMESTAMPTZ,
    submitted        BOOLEAN,
    accepted         BOOLEAN,
    source_rejected  BOOLEAN,
    filtered         BOOLEAN,
    delivered        BOOLEAN,
    buyer_rejected   BOOLEAN,
    delivery_error   BOOLEAN,
    converted        BOOLEAN,
    returned         BOOLEAN,
    completed        BOOLEAN,
    final_outcome    VARCHAR,
    recipient        VARCHAR,
    lead_cost        DOUBLE,
    enhancement_cost DOUBLE,
    other_cost       DOUBLE,
    revenue          DOUBLE,
    events           INTEGER,
    errors           INTEGER,
    min_seq          BIGINT,
    max_seq          BIGINT
);
CREATE INDEX IF NOT EXISTS lead_summary_parts_lead ON lead_summary_parts (lead_id);
CREATE TABLE IF NOT EXISTS lead_summary_compact AS SELECT * FROM lead_summary_parts LIMIT 0;
CREATE TABLE IF NOT EXISTS flows (flow_id VARCHAR PRIMARY KEY, name VARCHAR, description VARCHAR);
CREATE TABLE IF NOT EXISTS entities (entity_id VARCHAR PRIMARY KEY, name VARCHAR, kind VARCHAR);
CREATE TABLE IF NOT EXISTS steps (
    step_id VARCHAR PRIMARY KEY, flow_id VARCHAR, position INTEGER, kind VARCHAR,
    name VARCHAR, entity_id VARCHAR
);
CREATE TABLE IF NOT EXISTS event_types (name VARCHAR PRIMARY KEY, definition JSON);
CREATE TABLE IF NOT EXISTS incidents (
    incident_id VARCHAR, name VARCHAR, entity VARCHAR, entity_id VARCHAR,
    starts_at TIMESTAMPTZ, ends_at TIMESTAMPTZ, parameters JSON, run_id VARCHAR,
    description VARCHAR
);
CREATE TABLE IF NOT EXISTS ingests (
    ingest_id BIGINT, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, source VARCHAR,
    received BIGINT, stored BIGINT, duplicates BIGINT, quarantined BIGINT
);
CREATE TABLE IF NOT EXISTS ledger (
    ingest_id BIGINT, first_seq BIGINT, last_seq BIGINT, events BIGINT,
    head_hash UBIGINT, sealed_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS tier_files (
    move_id BIGINT, tier VARCHAR, path VARCHAR, events BIGINT, min_seq BIGINT,
    max_seq BIGINT, min_ts TIMESTAMPTZ, max_ts TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS tier_moves (
    move_id BIGINT, from_tiers VARCHAR, to_tier VARCHAR, cutoff TIMESTAMPTZ,
    state VARCHAR, events BIGINT, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ
);
"""

# The per-lead summary. Each batch appends one part per lead it touched
# (lead_summary_parts, which also indexes timelines); compaction folds the parts into one
# row per lead (lead_summary_compact, up to seq `compacted_through`), so reading the
# summary merges only the few parts that came since, instead of grouping every part.

#: How each part column merges with another part of the same lead.
_PART_MERGE = {
    "flow_id": "any_value", "source": "max", "source_id": "max", "submitted_at": "min",
    "first_ts": "min", "last_ts": "max", "submitted": "bool_or", "accepted": "bool_or",
    "source_rejected": "bool_or", "filtered": "bool_or", "delivered": "bool_or",
    "buyer_rejected": "bool_or", "delivery_error": "bool_or", "converted": "bool_or",
    "returned": "bool_or", "completed": "bool_or", "final_outcome": "max", "recipient": "max",
    "lead_cost": "sum", "enhancement_cost": "sum", "other_cost": "sum", "revenue": "sum",
    "events": "sum", "errors": "sum", "min_seq": "min", "max_seq": "max",
}  # fmt: skip
_PART_COLUMNS = "lead_id, " + ", ".join(_PART_MERGE)
_MERGE_SELECT = "lead_id, " + ", ".join(
    f"CAST({fn}({c}) AS {'INTEGER' if c in ('events', 'errors') else 'BIGINT' if c.endswith('_seq') else 'DOUBLE'}) AS {c}"
    if fn == "sum" or c.endswith("_seq")
    else f"{fn}({c}) AS {c}"
    for c, fn in _PART_MERGE.items()
)

# One row per lead in, the summary's columns out (no aggregation here).
_SUMMARY_COLUMNS = """
    lead_id, flow_id, source, source_id, submitted_at,
    first_ts AS first_seen, last_ts AS last_seen,
    CASE WHEN converted THEN 'converted' WHEN delivered THEN 'delivered'
         WHEN accepted THEN 'accepted' WHEN submitted THEN 'submitted' ELSE 'unknown' END AS stage,
    CASE WHEN returned THEN 'returned' WHEN converted THEN 'converted' WHEN delivered THEN 'delivered'
         WHEN source_rejected THEN 'rejected' WHEN filtered THEN 'filtered'
         WHEN buyer_rejected THEN 'buyer_rejected' WHEN delivery_error THEN 'delivery_error'
         WHEN completed THEN coalesce(final_outcome, 'completed') ELSE 'in_progress' END AS outcome,
    final_outcome, coalesce(submitted, false) AS submitted, coalesce(accepted, false) AS accepted,
    coalesce(source_rejected, false) AS source_rejected, coalesce(filtered, false) AS filtered,
    coalesce(delivered, false) AS delivered, coalesce(buyer_rejected, false) AS buyer_rejected,
    coalesce(delivery_error, false) AS delivery_error, coalesce(converted, false) AS converted,
    coalesce(returned, false) AS returned, coalesce(completed, false) AS completed, recipient,
    coalesce(lead_cost, 0) AS lead_cost, coalesce(enhancement_cost, 0) AS enhancement_cost,
    coalesce(lead_cost, 0) + coalesce(enhancement_cost, 0) + coalesce(other_cost, 0) AS total_cost,
    coalesce(revenue, 0) AS revenue, CAST(events AS BIGINT) AS events, CAST(errors AS BIGINT) AS errors
"""


def lead_summary_select(db: str, compacted_through: int) -> str:
    """The SELECT of the ``lead_summary`` view over the store ``db``'s tables."""
    parts = f'"{db}".main.lead_summary_parts'
    compact = f'"{db}".main.lead_summary_compact'
    return f"""
SELECT {_SUMMARY_COLUMNS} FROM (
    SELECT {_PART_COLUMNS} FROM {compact}
    WHERE lead_id NOT IN (SELECT lead_id FROM {parts} WHERE min_seq > {int(compacted_through)})
    UNION ALL
    SELECT {_MERGE_SELECT} FROM (
        SELECT {_PART_COLUMNS} FROM {compact}
        WHERE lead_id IN (SELECT lead_id FROM {parts} WHERE min_seq > {int(compacted_through)})
        UNION ALL
        SELECT {_PART_COLUMNS} FROM {parts} WHERE min_seq > {int(compacted_through)}
    )
    GROUP BY lead_id
)
"""


#: Compact when the parts since the last compaction exceed this many rows and this share
#: of the compacted leads: a few large compactions, never one per small append.
COMPACT_MIN_PARTS = 50_000
COMPACT_SHARE = 0.10


# --------------------------------------------------------------------------- errors


class StoreError(RuntimeError):
    """A store operation that cannot be done, with what to do instead."""


class StoreLockedError(StoreError):
    """Another process (or this one, differently) holds the store file."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """A store file that does not exist (or is not a workbench store)."""


class ReadOnlyStoreError(StoreError):
    """A write asked of a store opened with ``read_only=True``."""


class _SimulatedCrash(RuntimeError):
    """Raised by tests to stop a tier move between its steps."""


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class IngestReport:
    """What ``append()`` did with its input; ``received == stored + duplicates + quarantined``."""

    received: int
    stored: int
    duplicates: int
    quarantined: int
    reasons: tuple[tuple[str, int], ...] = field(default=(), repr=False, compare=False)
    first_seq: int | None = field(default=None, repr=False, compare=False)
    last_seq: int | None = field(default=None, repr=False, compare=False)
    ingest_id: int | None = field(default=None, repr=False, compare=False)
    source: str = field(default="", repr=False, compare=False)
    seconds: float = field(default=0.0, repr=False, compare=False)

    def __post_init__(self):
        if self.received != self.stored + self.duplicates + self.quarantined:
            raise AssertionError(f"ingest report does not add up: {self!r}")

    def __str__(self) -> str:
        lines = [
            f"ingest {self.ingest_id} from {self.source}" if self.source else "ingest",
            f"  received     {self.received:>10,}",
            f"  stored       {self.stored:>10,}"
            + (f"   (seq {self.first_seq}..{self.last_seq})" if self.stored else ""),
            f"  duplicates   {self.duplicates:>10,}   (already stored, skipped)",
            f"  quarantined  {self.quarantined:>10,}",
        ]
        for reason, n in self.reasons[:10]:
            lines.append(f"      {n:>8,}  {reason}")
        if len(self.reasons) > 10:
            lines.append(f"      ... and {len(self.reasons) - 10} more reasons (see quarantine)")
        if self.seconds:
            rate = self.received / self.seconds if self.seconds else 0
            lines.append(f"  in {self.seconds:.2f} s ({rate:,.0f} events/s)")
        return "\n".join(lines)


@dataclass(frozen=True)
class VerifyReport:
    """The result of recomputing the hash chain over every stored event."""

    ok: bool
    events_checked: int
    head_hash: int | None
    first_bad_seq: int | None = None
    first_bad_event_id: str | None = None
    problem: str | None = None

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        if self.ok:
            return (
                f"OK: {self.events_checked:,} events, hash chain intact "
                f"(head {self.head_hash:016x})"
                if self.head_hash is not None
                else "OK: the store holds no events"
            )
        where = f" at seq {self.first_bad_seq}" if self.first_bad_seq is not None else ""
        who = f" (event {self.first_bad_event_id})" if self.first_bad_event_id else ""
        return f"TAMPERED{where}{who}: {self.problem}"


@dataclass(frozen=True)
class MoveReport:
    """What a tier move (archive or restore) did; counts before and after are equal."""

    moved: int
    to_tier: str
    files: int
    counts_before: dict
    counts_after: dict

    def __str__(self) -> str:
        return (
            f"moved {self.moved:,} events to {self.to_tier} in {self.files} file(s); "
            f"hot/warm/cold now {self.counts_after['hot']:,}/{self.counts_after['warm']:,}/"
            f"{self.counts_after['cold']:,}"
        )


# --------------------------------------------------------------------------- connection


class _Con:
    """A DuckDB connection whose every call finishes its result.

    DuckDB 2.x keeps a result open until it is drained, and refuses other work on the
    connection meanwhile; each method here fetches what it returns.
    """

    def __init__(self, raw: duckdb.DuckDBPyConnection):
        self.raw = raw
        self.closed = False

    def _exec(self, sql: str, params=None):
        if self.closed:
            raise StoreError("this store is closed; open it again with open_store(path)")
        return self.raw.execute(sql, params) if params is not None else self.raw.execute(sql)

    def run(self, sql: str, params=None) -> None:
        self._exec(sql, params).fetchall()

    def rows(self, sql: str, params=None) -> list[tuple]:
        return self._exec(sql, params).fetchall()

    def one(self, sql: str, params=None) -> tuple | None:
        rows = self.rows(sql, params)
        return rows[0] if rows else None

    def val(self, sql: str, params=None):
        return self.rows(sql, params)[0][0]

    def numpy(self, sql: str, params=None) -> dict:
        return self._exec(sql, params).fetchnumpy()

    def df(self, sql: str, params=None) -> pd.DataFrame:
        return self._exec(sql, params).df()

    def frame(self, sql: str, params=None) -> pd.DataFrame:
        """Like ``df`` for a few rows of many columns (a timeline), in half the time:
        through Arrow, whose conversion costs little per column. Integer columns holding
        nulls become pandas' nullable integers, as ``df`` gives them."""
        if self.closed:
            raise StoreError("this store is closed; open it again with open_store(path)")
        table = self.raw.sql(sql, params=params).to_arrow_table()
        df = table.to_pandas()
        for name, column in zip(table.column_names, table.columns, strict=True):
            if column.null_count and pa.types.is_integer(column.type):
                df[name] = column.to_pandas(types_mapper=_NULLABLE_INTS.get)
        return df

    def execute(self, sql: str, params=None):
        """The raw result, for streaming (``fetch_record_batch``); drain it."""
        return self._exec(sql, params)

    def executemany(self, sql: str, rows) -> None:
        self.raw.executemany(sql, rows)

    def register(self, name: str, obj) -> None:
        self.raw.register(name, obj)

    def unregister(self, name: str) -> None:
        # after a failed statement the transaction is aborted and DuckDB refuses even
        # this; the name is replaced on the next register, and the real error wins
        with contextlib.suppress(duckdb.TransactionException):
            self.raw.unregister(name)

    def cursor(self) -> _Con:
        return _Con(self.raw.cursor())

    def close(self) -> None:
        self.closed = True
        self.raw.close()


# --------------------------------------------------------------------------- opening


def open_store(
    path: str | os.PathLike | None = None,
    *,
    read_only: bool = False,
    catalog: Catalog | None = None,
) -> EventStore:
    """Open (or create) an event store.

    ``path=None`` gives a store in memory. ``read_only=True`` opens an existing store
    for reading; several processes may read one store at once, but only while no
    process writes it.

    >>> store = open_store()
    >>> store.count()
    0
    """
    if path is None:
        if read_only:
            raise StoreError("an in-memory store cannot be read-only: it would always be empty")
        con = duckdb.connect(":memory:")
        return EventStore(con, None, False, catalog)
    p = Path(path)
    if p.is_dir():
        raise StoreError(
            f"{p} is a folder; give the path of a store file, e.g. {p / 'events.duckdb'}"
        )
    if read_only and not p.exists():
        raise StoreNotFoundError(
            f"no store at {p}; create one with open_store({str(p)!r}) or `workbench ingest FILE --store {p}`"
        )
    if not read_only:
        p.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(p), read_only=read_only)
    except duckdb.Error as e:
        raise _lock_error(p, e, read_only) from None
    try:
        return EventStore(con, p, read_only, catalog)
    except Exception:
        con.close()
        raise


def _lock_error(path: Path, e: Exception, read_only: bool) -> Exception:
    msg = str(e)
    if "lock" in msg.lower():
        holder = re.search(r"held in (.+?) \(PID (\d+)\)", msg)
        who = f"{holder.group(1)}, PID {holder.group(2)}" if holder else "another process"
        want = "read" if read_only else "write"
        return StoreLockedError(
            f"cannot {want} {path}: the store is held by {who}. DuckDB lets one process "
            "write a store, or several processes read it, but not both at once. Close the "
            "store there (store.close(), or restart that notebook's kernel) and try again"
            + (
                "; or open it with read_only=True once the writer is done."
                if not read_only
                else "."
            )
        )
    if "different configuration" in msg:
        return StoreLockedError(
            f"this process already has {path} open "
            f"({'for writing' if read_only else 'read-only'}); use that store object, or "
            "close it before opening the file another way"
        )
    if "not a valid DuckDB database" in msg or "Unable to open" in msg or "invalid" in msg.lower():
        return StoreError(f"{path} is not a DuckDB store file ({msg.splitlines()[0]})")
    return StoreError(f"cannot open {path}: {msg.splitlines()[0]}")


# --------------------------------------------------------------------------- store


class EventStore:
    """An append-only event store over one DuckDB database (see :func:`open_store`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | None, read_only: bool, catalog):
        con = _Con(con)
        self._con = con
        self.path = path
        self.read_only = read_only
        self._lock = threading.RLock()
        self._closed = False
        self._close_hooks: list = []
        self._tier_version = 0
        self._qcon: _Con | None = None
        self._qcon_version = -1
        con.run("SET TimeZone = 'UTC'")
        # DuckDB's own progress bar would print into notebooks and logs; we show ours
        con.run("SET enable_progress_bar = false")
        # blank: missing, empty or only whitespace (trim only when the first byte is a space)
        con.run(
            "CREATE OR REPLACE TEMP MACRO blank(x) AS "
            "x IS NULL OR x = '' OR (ascii(x) <= 32 AND trim(x) = '')"
        )
        self._init_schema()
        self.catalog = (catalog or DEFAULT_CATALOG).copy()
        for name, definition in con.rows("SELECT name, definition FROM event_types"):
            # the store's own definition is what its events were validated against
            self.catalog.put(make_event_type(name, **json.loads(definition)))
        self._hash_ok = self._check_hash_probe()
        if not read_only:
            self._recover_moves()
            self._refresh_catalog_table()

    # ------------------------------------------------------------------ basics

    def __repr__(self) -> str:
        where = str(self.path) if self.path else "memory"
        mode = "read-only" if self.read_only else "read-write"
        return f"<EventStore {where} ({mode})>"

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def on_close(self, callback) -> None:
        """Call ``callback()`` when the store closes, before its connection does (sessions
        use it to let go of their cursors, so nothing keeps the file open)."""
        # finalizers of sessions already gone (weakref.finalize) need not be kept
        self._close_hooks[:] = [h for h in self._close_hooks if getattr(h, "alive", True)]
        self._close_hooks.append(callback)

    def close(self) -> None:
        """Close the store; the file can then be opened by another process."""
        with self._lock:
            if self._closed:
                return
            for hook in reversed(self._close_hooks):
                with contextlib.suppress(Exception):
                    hook()
            self._closed = True
            if self._qcon is not None:
                self._qcon.close()
            self._con.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self):
        if self._closed:
            raise StoreError("this store is closed; open it again with open_store(path)")

    def _require_writable(self, what: str):
        self._check_open()
        if self.read_only:
            raise ReadOnlyStoreError(
                f"cannot {what}: {self.path} was opened read-only; open it with "
                "open_store(path) (no other process may hold it) to write"
            )

    @property
    def tiers_dir(self) -> Path | None:
        """Where the warm and cold Parquet tiers of this store live."""
        return None if self.path is None else self.path.with_name(self.path.name + ".tiers")

    def _init_schema(self):
        con = self._con
        has_meta = con.val(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND table_name = 'store_meta'"
        )
        if has_meta:
            version = con.one("SELECT value FROM store_meta WHERE key = 'schema_version'")
            if not version:
                raise StoreError(f"{self.path} has no schema version; it is not a workbench store")
            if version[0] != SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has store schema {version[0]}, this workbench reads {SCHEMA_VERSION}"
                )
            return
        others = con.val(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()"
        )
        if self.read_only:
            raise StoreNotFoundError(f"{self.path} is not a workbench store (no store_meta table)")
        if others:
            raise StoreError(
                f"{self.path} is a DuckDB database with other tables, not a workbench store; "
                "choose a new file for the store"
            )
        con.run("BEGIN")
        con.run(_DDL)
        probe = con.val("SELECT hash(?::VARCHAR)", [_HASH_PROBE])
        con.executemany(
            "INSERT INTO store_meta VALUES (?, ?)",
            [
                ["schema_version", SCHEMA_VERSION],
                ["hash_probe", str(probe)],
                ["duckdb_version", duckdb.__version__],
                ["created_at", _utcnow().isoformat()],
            ],
        )
        con.run("COMMIT")

    def _check_hash_probe(self) -> bool:
        row = self._con.one("SELECT value FROM store_meta WHERE key = 'hash_probe'")
        now = self._con.val("SELECT hash(?::VARCHAR)", [_HASH_PROBE])
        return row is not None and int(row[0]) == int(now)

    # ------------------------------------------------------------------ catalogue

    def register_event_type(self, name: str, **kwargs) -> EventType:
        """Register a custom event type in this store; it persists with the store.

        >>> store = open_store()
        >>> store.register_event_type("quality.scored", when="A lead gets a quality score",
        ...                           required_metadata=["score"]).name
        'quality.scored'
        """
        self._require_writable("register an event type")
        et = make_event_type(name, **kwargs)
        with self._lock:
            self.catalog.register(name, **kwargs)
            definition = {
                "when": et.when,
                "outcomes": list(et.outcomes),
                "required_metadata": list(et.required_metadata),
                "optional_metadata": list(et.optional_metadata),
                "use": et.use,
                "category": et.category,
            }
            self._con.run(
                "INSERT OR REPLACE INTO event_types VALUES (?, ?)", [name, json.dumps(definition)]
            )
            self._refresh_catalog_table()
        return et

    def _refresh_catalog_table(self):
        """Sync types registered in the process since the store opened; rebuild the
        catalogue's SQL literals when anything changed."""
        for et in DEFAULT_CATALOG:
            if et.name not in self.catalog:
                self.catalog.put(et)
        maps = _ingest_sql.catalog_maps(self.catalog)
        if maps["fingerprint"] != getattr(self, "_catalog_maps", {}).get("fingerprint"):
            self._catalog_maps = maps

    # ------------------------------------------------------------------ dimensions

    def register_flow(self, flow_id: str, name: str, description: str | None = None, steps=()):
        """Name a flow and (optionally) its steps, so queries read ``step_name`` naturally.

        ``steps`` holds dicts with step_id, position, kind, name and entity_id. Register
        dimensions before appending the events that use them: names are resolved
        into each event's typed columns when it is stored.
        """
        self._require_writable("register a flow")
        with self._lock:
            self._con.run(
                "INSERT OR REPLACE INTO flows VALUES (?, ?, ?)", [flow_id, name, description]
            )
            for s in steps:
                self.register_step(flow_id=flow_id, **s)

    def register_entity(self, entity_id: str, name: str, kind: str):
        """Name an entity: a source, enhancement, filter or recipient (buyer)."""
        self._require_writable("register an entity")
        if kind not in ENTITY_KINDS:
            raise StoreError(f"entity kind {kind!r} is not one of {', '.join(ENTITY_KINDS)}")
        with self._lock:
            self._con.run(
                "INSERT OR REPLACE INTO entities VALUES (?, ?, ?)", [entity_id, name, kind]
            )

    def register_step(
        self,
        step_id: str,
        flow_id: str,
        position: int,
        kind: str,
        name: str,
        entity_id: str | None = None,
    ):
        """Name one step of a flow (its position, kind and entity)."""
        self._require_writable("register a step")
        if kind not in ENTITY_KINDS:
            raise StoreError(f"step kind {kind!r} is not one of {', '.join(ENTITY_KINDS)}")
        with self._lock:
            self._con.run(
                "INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?, ?)",
                [step_id, flow_id, int(position), kind, name, entity_id],
            )

    def record_incidents(self, incidents: Iterable[dict]):
        """Record incidents (ground truth of a simulation) in the ``incidents`` table."""
        self._require_writable("record incidents")
        rows = [
            [
                i.get("incident_id"),
                i["name"],
                i.get("entity"),
                i.get("entity_id"),
                i.get("starts_at"),
                i.get("ends_at"),
                json.dumps(i.get("parameters") or {}, default=str),
                i.get("run_id"),
                i.get("description"),
            ]
            for i in incidents
        ]
        if rows:
            with self._lock:
                self._con.executemany(
                    "INSERT INTO incidents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
                )

    # ------------------------------------------------------------------ append

    def append(
        self,
        events,
        *,
        progress: bool | None = None,
        label: str | None = None,
        rejects: Iterable[_inputs.Rejected] = (),
        batch_rows: int = _inputs.BATCH_ROWS,
    ) -> IngestReport:
        """Validate and store events; return what happened to each of them.

        ``events`` is a pyarrow Table / RecordBatch / RecordBatchReader, a pandas
        DataFrame, an iterable of dicts, or the path of a .jsonl / .json / .parquet file.
        Events already stored (same event_id) are skipped and counted as duplicates;
        invalid ones go to the ``quarantine`` table with the reason and their origin.
        Each batch of up to 250 k events is stored atomically.

        >>> store = open_store()
        >>> store.append([{"event_id": "evt_x", "type": "no.such.type", "lead_id": "l1",
        ...                "timestamp": "2024-01-15T10:30:45Z"}]).quarantined
        1
        """
        self._require_writable("append events")
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
        staged = _inputs.stage(events, batch_rows=batch_rows)
        source = label or staged.label
        t0 = time.perf_counter()
        started = _utcnow()
        totals = Counter()
        reasons: Counter = Counter()
        first_seq = last_seq = None
        bar = _progress_bar(staged, progress, source)
        with self._lock, self._ingest_memory():
            self._refresh_catalog_table()
            ingest_id = self._next_id("ingests", "ingest_id")
            try:
                for batch in _with_rejects(staged.batches, rejects):
                    r = self._ingest_batch(batch, ingest_id)
                    totals.update(
                        received=r["received"],
                        stored=r["stored"],
                        duplicates=r["duplicates"],
                        quarantined=r["quarantined"],
                    )
                    reasons.update(r["reasons"])
                    if r["stored"]:
                        first_seq = r["first_seq"] if first_seq is None else first_seq
                        last_seq = r["last_seq"]
                    if bar is not None:
                        if staged.bytes_done is not None:
                            bar.update(staged.bytes_done() - bar.n)
                        else:
                            bar.update(r["received"])
            finally:
                if bar is not None:
                    bar.close()
                self._con.run(
                    "INSERT INTO ingests VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        ingest_id,
                        started,
                        _utcnow(),
                        source,
                        totals["received"],
                        totals["stored"],
                        totals["duplicates"],
                        totals["quarantined"],
                    ],
                )
        if totals["stored"]:
            self._maybe_compact()
        return IngestReport(
            received=totals["received"],
            stored=totals["stored"],
            duplicates=totals["duplicates"],
            quarantined=totals["quarantined"],
            reasons=tuple(reasons.most_common()),
            first_seq=first_seq,
            last_seq=last_seq,
            ingest_id=ingest_id,
            source=source,
            seconds=time.perf_counter() - t0,
        )

    @contextlib.contextmanager
    def _ingest_memory(self):
        """Cap DuckDB's memory while appending: written blocks are on disk already, so
        holding them in RAM only grows the process (10 M events: 2.5 GB -> 1.6 GB peak).
        Queries get DuckDB's usual limit back afterwards."""
        self._con.run(f"SET memory_limit = '{INGEST_MEMORY_LIMIT}'")
        try:
            yield
        finally:
            self._con.run("RESET memory_limit")

    def _next_id(self, table: str, column: str) -> int:
        return self._con.val(f"SELECT coalesce(max({column}), 0) + 1 FROM {table}")

    def _last_seq_and_head(self) -> tuple[int, int]:
        row = self._con.one("SELECT last_seq, head_hash FROM ledger ORDER BY last_seq DESC LIMIT 1")
        return (0, _chain.GENESIS) if row is None else (int(row[0]), int(row[1]))

    def _ingest_batch(self, batch: _inputs.StagedBatch, ingest_id: int) -> dict:
        con = self._con
        result = {
            "received": batch.received,
            "stored": 0,
            "duplicates": 0,
            "quarantined": 0,
            "ingest_id": ingest_id,
        }
        bad: list[tuple] = [(r.pos, r.reason, r.event_id, r.type, r.lead_id) for r in batch.rejects]
        raw_override = {r.pos: r.raw for r in batch.rejects}
        origin_override = {r.pos: r.origin for r in batch.rejects if r.origin}
        table = batch.table
        if batch.kind == "lines" and table.num_rows:
            con.register("_in", table)
            try:
                table = con.raw.sql(_ingest_sql.LINES_TO_COLUMNS_SQL).to_arrow_table()
            finally:
                con.unregister("_in")
        con.run("BEGIN TRANSACTION")
        try:
            if table.num_rows:
                self._store_rows(table, batch, bad, result)
            if bad:
                self._quarantine(batch, bad, raw_override, ingest_id, origin_override)
            result["quarantined"] = len(bad)
            result["reasons"] = Counter(b[1] for b in bad)
            con.run("COMMIT")
        except BaseException:
            con.run("ROLLBACK")
            raise
        return result

    def _store_rows(self, table: pa.Table, batch, bad: list, result: dict) -> int:
        """Classify, de-duplicate, chain and insert one batch inside the open transaction."""
        con = self._con
        if table.num_rows / max(1, len(table.column(0).chunks)) < 100_000:
            # DuckDB inserts small record batches ~2x slower than large ones
            table = table.combine_chunks()
        norm = _ingest_sql.normalise_sql(table.schema, self._catalog_maps, line_reason=True)
        steps, entities = self._dimension_names()
        con.register("_in", table)
        try:
            cls = con.raw.sql(_ingest_sql.classify_sql(norm, steps, entities)).to_arrow_table()
        finally:
            con.unregister("_in")
        pos = cls.column("_pos").to_numpy()
        if not np.array_equal(pos, table.column("_pos").to_numpy()):  # pragma: no cover
            raise StoreError("internal error: the classify pass changed the batch order")
        invalid = cls.column("reason").is_valid().to_numpy(zero_copy_only=False)
        if invalid.any():
            idx = pa.array(np.flatnonzero(invalid))
            cols = [
                cls.column("reason").take(idx).to_pylist(),
                *[
                    table.column(c).take(idx).to_pylist()
                    if c in table.column_names
                    else [None] * len(idx)
                    for c in ("event_id", "type", "lead_id")
                ],
            ]
            for i, reason, ev, ty, ld in zip(idx.to_pylist(), *cols, strict=True):
                bad.append((int(pos[i]), reason, _str(ev), _str(ty), _str(ld)))
        ok = ~invalid
        dup = self._duplicates(table, _u64(cls.column("id_hash")), ok)
        result["duplicates"] = int(dup.sum())
        keep = ok & ~dup
        n = int(keep.sum())
        if not n:
            return 0
        last_seq, head = self._last_seq_and_head()
        # fill nulls first: a uint64 column with nulls would come back as float64
        content = _u64(cls.column("content_hash"))[keep]
        hashes = _chain.chain(content, head)
        seq_col = np.zeros(len(pos), dtype=np.int64)
        seq_col[keep] = np.arange(last_seq + 1, last_seq + 1 + n, dtype=np.int64)
        chain_col = np.zeros(len(pos), dtype=np.uint64)
        chain_col[keep] = hashes
        # appended columns take the batch's chunk layout: misaligned chunks make DuckDB
        # scan tiny pieces and write tiny row groups, which checkpoints then rewrite
        bounds = np.cumsum([0] + [len(ch) for ch in table.column(0).chunks])
        extra = {
            "_seq": pa.array(seq_col, mask=~keep),
            "_chain": pa.array(chain_col, pa.uint64(), mask=~keep),
            **{c: cls.column(c).combine_chunks() for c in _ingest_sql.DERIVED},
        }
        for name, col in extra.items():
            pieces = [col.slice(a, b - a) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
            table = table.append_column(name, pa.chunked_array(pieces, col.type))
        for c in ("metadata", "lead_snapshot"):
            # validated by classify: let DuckDB take the text as JSON without parsing it again
            if c in table.column_names and pa.types.is_string(table.schema.field(c).type):
                i = table.schema.get_field_index(c)
                table = table.set_column(i, c, _as_json(table.column(c)))
        con.register("_in", table)
        try:
            con.run(
                _ingest_sql.insert_sql(_ingest_sql.normalise_sql(table.schema, self._catalog_maps))
            )
        finally:
            con.unregister("_in")
        first, last = last_seq + 1, last_seq + n
        con.run(_ingest_sql.INSERT_SUMMARY_SQL, {"first": first, "last": last})
        con.run(
            "INSERT INTO ledger VALUES (?, ?, ?, ?, ?, ?)",
            [result.get("ingest_id"), first, last, n, int(hashes[-1]), _utcnow()],
        )
        result.update(stored=n, first_seq=first, last_seq=last)
        return n

    def _dimension_names(self) -> tuple[dict, dict]:
        steps = dict(self._con.rows("SELECT step_id, name FROM steps WHERE name IS NOT NULL"))
        entities = dict(
            self._con.rows("SELECT entity_id, name FROM entities WHERE name IS NOT NULL")
        )
        return steps, entities

    def _duplicates(self, table: pa.Table, id_hash, ok: np.ndarray) -> np.ndarray:
        """Mask of valid rows whose event_id is already stored (in any tier) or appears
        earlier in the same batch. Hashes find candidates; ids decide."""
        con = self._con
        dup = np.zeros(len(ok), dtype=bool)
        idx = np.flatnonzero(ok)
        if not len(idx):
            return dup
        h = id_hash[idx]
        ids = table.column("event_id").take(pa.array(idx))
        tier_files = self._tier_paths(("warm", "cold"))
        stored = "SELECT id_hash, event_id FROM events"
        if tier_files:
            stored += (
                f" UNION ALL SELECT id_hash, event_id FROM read_parquet({_sql_list(tier_files)})"
            )
        con.register(
            "_ids",
            pa.table(
                {
                    "i": np.arange(len(idx)),
                    "h": pa.array(h, pa.uint64()),
                    "event_id": ids.cast(pa.string()),
                }
            ),
        )
        try:
            if self._hash_ok:
                cand = con.rows(
                    f"SELECT i, h, event_id FROM _ids WHERE h IN (SELECT id_hash FROM ({stored}))"
                )
                hits = []
                if cand:
                    con.register(
                        "_cand",
                        pa.table(
                            {
                                "i": [c[0] for c in cand],
                                "h": pa.array([c[1] for c in cand], pa.uint64()),
                                "event_id": [c[2] for c in cand],
                            }
                        ),
                    )
                    try:
                        hits = con.rows(
                            f"SELECT i FROM _cand WHERE event_id IN (SELECT event_id FROM ({stored}) "
                            "WHERE id_hash IN (SELECT h FROM _cand))"
                        )
                    finally:
                        con.unregister("_cand")
            else:
                # DuckDB's hash() changed since the store was made: compare ids directly.
                hits = con.rows(
                    f"SELECT i FROM _ids WHERE event_id IN (SELECT event_id FROM ({stored}))"
                )
        finally:
            con.unregister("_ids")
        for (i,) in hits:
            dup[idx[i]] = True
        # repeated within the batch: keep the first
        _, first, counts = np.unique(h, return_index=True, return_counts=True)
        if (counts > 1).any():
            seen: set = set()
            py_ids = ids.to_pylist()
            for k in range(len(idx)):
                if py_ids[k] in seen:
                    dup[idx[k]] = True
                else:
                    seen.add(py_ids[k])
        return dup

    def _quarantine(self, batch, bad, raw_override, ingest_id, origin_override=None):
        qid0 = self._next_id("quarantine", "qid")
        now = _utcnow()
        rows = []
        for i, (pos, reason, event_id, type_, lead_id) in enumerate(
            sorted(bad, key=lambda b: b[0])
        ):
            text, file, line, b, row = batch.origin(pos)
            if origin_override and pos in origin_override:
                text, file, line, b, row = origin_override[pos], None, None, None, None
            raw = raw_override.get(pos)
            if raw is None:
                raw = batch.raw(pos)
            rows.append(
                (
                    qid0 + i,
                    ingest_id,
                    now,
                    text,
                    file,
                    line,
                    b,
                    row,
                    reason,
                    event_id,
                    type_,
                    lead_id,
                    raw,
                )
            )
        cols = list(zip(*rows, strict=True))
        names = [
            "qid",
            "ingest_id",
            "received_at",
            "origin",
            "file",
            "line",
            "batch",
            "row",
            "reason",
            "event_id",
            "type",
            "lead_id",
            "raw",
        ]
        types = [
            pa.int64(),
            pa.int64(),
            pa.timestamp("us", tz="UTC"),
            pa.string(),
            pa.string(),
            pa.int64(),
            pa.int64(),
            pa.int64(),
            pa.string(),
            pa.string(),
            pa.string(),
            pa.string(),
            pa.string(),
        ]
        table = pa.table(
            {n: pa.array(list(c), t) for n, c, t in zip(names, cols, types, strict=True)}
        )
        self._con.register("_q", table)
        self._con.run("INSERT INTO quarantine SELECT * FROM _q")
        self._con.unregister("_q")

    # ------------------------------------------------------------------ reading

    def _query_con(self) -> _Con:
        """The cursor user queries run on: ``events`` there spans hot and warm tiers."""
        self._check_open()
        if self._qcon is None:
            self._qcon = self._con.cursor()
            self._qcon.run("SET TimeZone = 'UTC'")
            self._qcon.run("SET enable_progress_bar = false")
        if self._qcon_version != self._tier_version:
            self._build_views(self._qcon)
            self._qcon_version = self._tier_version
        return self._qcon

    def _events_source(self, tiers: Sequence[str] = ("hot", "warm"), columns=PUBLIC_COLUMNS) -> str:
        """SQL for the events of ``tiers`` (a subquery text)."""
        cols = ", ".join(columns)
        db = self._con.val("SELECT current_database()")
        parts = []
        if "hot" in tiers:
            parts.append(f'SELECT {cols} FROM "{db}".main.events')
        files = self._tier_paths([t for t in tiers if t != "hot"])
        if files:
            parts.append(f"SELECT {cols} FROM read_parquet({_sql_list(files)})")
        return " UNION ALL ".join(parts)

    def _build_views(self, con):
        con.run(f"CREATE OR REPLACE TEMP VIEW events AS {self._events_source()}")
        con.run(f"CREATE OR REPLACE TEMP VIEW lead_summary AS {self._lead_summary_select()}")

    def _lead_summary_select(self) -> str:
        db = self._con.val("SELECT current_database()")
        return lead_summary_select(db, int(self._meta("compacted_through") or 0))

    def compact_summary(self) -> int:
        """Fold the per-lead summary's parts into one row per lead, so reading the
        summary does not re-group every part (append() does this when enough parts have
        gathered). Returns the number of leads."""
        self._require_writable("compact the lead summary")
        with self._lock:
            con = self._con
            through = con.val("SELECT coalesce(max(max_seq), 0) FROM lead_summary_parts")
            # one thread: a hash table per thread over a million leads doubled the peak
            con.run("SET threads = 1")
            con.run("BEGIN TRANSACTION")
            try:
                con.run("DELETE FROM lead_summary_compact")
                con.run(
                    f"INSERT INTO lead_summary_compact ({_PART_COLUMNS}) SELECT {_MERGE_SELECT} "
                    "FROM lead_summary_parts GROUP BY lead_id"
                )
                con.run(
                    "INSERT OR REPLACE INTO store_meta VALUES ('compacted_through', ?)",
                    [str(through)],
                )
                con.run("COMMIT")
            except BaseException:
                con.run("ROLLBACK")
                raise
            finally:
                con.run("RESET threads")
            self._tier_version += 1  # the summary view's SQL names the new watermark
            return int(con.val("SELECT count(*) FROM lead_summary_compact"))

    def _maybe_compact(self) -> None:
        through = int(self._meta("compacted_through") or 0)
        fresh = self._con.val(
            "SELECT count(*) FROM lead_summary_parts WHERE min_seq > ?", [through]
        )
        compacted = self._con.val("SELECT count(*) FROM lead_summary_compact")
        if fresh >= COMPACT_MIN_PARTS and fresh >= COMPACT_SHARE * compacted:
            self.compact_summary()

    def _tier_paths(self, tiers: Sequence[str]) -> list[str]:
        if not tiers or self.tiers_dir is None:
            return []
        rows = self._con.rows(
            "SELECT path FROM tier_files WHERE list_contains(?::VARCHAR[], tier) ORDER BY min_seq",
            [list(tiers)],
        )
        return [str(self.tiers_dir / r[0]) for r in rows]

    def sql(self, query: str, params=None) -> pd.DataFrame:
        """Run one read-only SQL statement and return a DataFrame.

        ``events`` spans the hot table and the warm tier; ``lead_summary``,
        ``quarantine``, ``flows``, ``entities``, ``steps``, ``incidents`` and ``ingests``
        can be read too. Anything that writes is refused before it runs, decided by
        DuckDB's parser. Pass values as ``params`` (``?`` or ``$name``), never spliced in.

        >>> open_store().sql("SELECT count(*) AS n FROM events").n[0]
        np.int64(0)
        """
        statement = check_read_only(query)
        with self._lock:
            con = self._query_con()
            con.run("BEGIN TRANSACTION")
            try:
                return con.df(statement, params) if params is not None else con.df(statement)
            except duckdb.Error as e:
                raise StoreError(f"query failed: {str(e).strip()}") from None
            finally:
                con.run("ROLLBACK")

    def _read(self, query: str, params=None) -> pd.DataFrame:
        with self._lock:
            return self._query_con().df(query, params or [])

    def timeline(self, lead_id: str) -> pd.DataFrame:
        """Every event of one lead, in (timestamp, seq) order, metadata as dicts.

        >>> open_store().timeline("lead_unknown").empty
        True
        """
        with self._lock:
            q, params = _timeline_query(self._con, lead_id)
            if q is None:
                return _decode(self._read(f"SELECT * FROM ({self._events_source()}) LIMIT 0"))
            return _decode(self._query_con().frame(q, params))

    def events(
        self,
        type: str | Sequence[str] | None = None,
        outcome: str | Sequence[str] | None = None,
        lead_id: str | None = None,
        entity_id: str | None = None,
        flow_id: str | None = None,
        since=None,
        until=None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Events matching every filter given, in (timestamp, seq) order.

        ``type`` may end in ``.*`` (``"recipient.*"``); ``since``/``until`` take
        datetimes or ISO-8601 text (``until`` is exclusive).

        >>> open_store().events(type="recipient.*", limit=10).empty
        True
        """
        q, params = _events_query(type, outcome, lead_id, entity_id, flow_id, since, until, limit)
        return _decode(self._read(q, params))

    def lead_summary(self, lead_id: str | None = None) -> pd.DataFrame:
        """The per-lead summary (source, stage reached, outcome, cost, revenue)."""
        if lead_id is None:
            return self._read("SELECT * FROM lead_summary ORDER BY first_seen, lead_id")
        return self._read("SELECT * FROM lead_summary WHERE lead_id = ?", [lead_id])

    def quarantined(self, limit: int | None = None) -> pd.DataFrame:
        """Events that could not be taken, with reason, origin and raw text."""
        q = "SELECT * FROM quarantine ORDER BY qid"
        if limit is not None:
            q += f" LIMIT {int(limit)}"
        return self._read(q)

    def count(self, tiers: Sequence[str] = ("hot", "warm", "cold")) -> int:
        """How many events the store holds in ``tiers`` (all of them by default)."""
        return sum(self.tier_counts()[t] for t in tiers)

    def tier_counts(self) -> dict[str, int]:
        """Events per tier: ``{"hot": …, "warm": …, "cold": …}``."""
        with self._lock:
            self._check_open()
            hot = self._con.val("SELECT count(*) FROM events")
            rows = dict(
                self._con.rows("SELECT tier, sum(events)::BIGINT FROM tier_files GROUP BY tier")
            )
        return {
            "hot": int(hot),
            "warm": int(rows.get("warm") or 0),
            "cold": int(rows.get("cold") or 0),
        }

    # ------------------------------------------------------------------ integrity

    def verify(self, *, chunk_rows: int = 2_000_000) -> VerifyReport:
        """Recompute the hash chain over every event (all tiers) and say where it breaks.

        >>> open_store().verify().ok
        True
        """
        with self._lock:
            self._check_open()
            if not self._hash_ok:
                return VerifyReport(
                    False,
                    0,
                    None,
                    problem=(
                        "DuckDB's hash function differs from the one that sealed this store "
                        f"(sealed with DuckDB {self._meta('duckdb_version')}, running "
                        f"{duckdb.__version__}); verify with that DuckDB version"
                    ),
                )
            ledger = self._con.rows(
                "SELECT first_seq, last_seq, events, head_hash FROM ledger ORDER BY last_seq"
            )
            src = self._events_source(
                TIERS,
                (
                    "seq",
                    "event_id",
                    "timestamp",
                    "type",
                    "lead_id",
                    "flow_id",
                    "entity_id",
                    "step_id",
                    "outcome",
                    "duration_ms",
                    "metadata",
                    "lead_snapshot",
                    "chain_hash",
                ),
            )
            cur = self._con.cursor()
            try:
                reader = cur.raw.sql(
                    f"SELECT seq, event_id, {_chain.content_hash_sql()} AS c, chain_hash "
                    f"FROM ({src}) ORDER BY seq"
                ).to_arrow_reader(chunk_rows)
                prev = _chain.GENESIS
                expected_seq = 1
                checked = 0
                ledger_i = 0
                for rb in reader:
                    seq = rb.column("seq").to_numpy()
                    c = rb.column("c").to_numpy().astype(np.uint64)
                    stored = rb.column("chain_hash").to_numpy().astype(np.uint64)
                    want = np.arange(expected_seq, expected_seq + len(seq), dtype=np.int64)
                    gap = np.flatnonzero(seq != want)
                    h = _chain.chain(c, prev)
                    bad = np.flatnonzero(h != stored)
                    first_gap = int(gap[0]) if len(gap) else None
                    first_bad = int(bad[0]) if len(bad) else None
                    if first_gap is not None and (first_bad is None or first_gap <= first_bad):
                        i = first_gap
                        s = int(seq[i])
                        if s > want[i]:
                            problem = (
                                f"events with seq {int(want[i])}..{s - 1} are missing "
                                "(deleted outside the store)"
                            )
                        else:
                            problem = (
                                f"seq {s} appears twice or out of order (an event was inserted)"
                            )
                        return VerifyReport(
                            False,
                            checked + i,
                            None,
                            int(want[i]),
                            rb.column("event_id")[i].as_py(),
                            problem,
                        )
                    if first_bad is not None:
                        i = first_bad
                        return VerifyReport(
                            False,
                            checked + i,
                            None,
                            int(seq[i]),
                            rb.column("event_id")[i].as_py(),
                            "its content or its chain hash no longer matches what was stored "
                            "(the event, or the one before it, was changed)",
                        )
                    # ledger seals that fall in this chunk
                    while ledger_i < len(ledger) and ledger[ledger_i][1] <= seq[-1]:
                        last = ledger[ledger_i][1]
                        idx = int(last - seq[0])
                        if int(h[idx]) != int(ledger[ledger_i][3]):
                            return VerifyReport(
                                False,
                                checked + idx,
                                None,
                                int(last),
                                rb.column("event_id")[idx].as_py(),
                                "the ledger seal of this batch does not match the chain",
                            )
                        ledger_i += 1
                    prev = int(h[-1])
                    expected_seq += len(seq)
                    checked += len(seq)
            finally:
                cur.close()
            if ledger_i < len(ledger):
                first, last = ledger[ledger_i][0], ledger[-1][1]
                return VerifyReport(
                    False,
                    checked,
                    None,
                    int(max(first, expected_seq)),
                    None,
                    f"the ledger seals events up to seq {last}, but the store ends at seq "
                    f"{expected_seq - 1}: events were deleted from the end",
                )
            return VerifyReport(True, checked, prev if checked else None)

    def _meta(self, key: str) -> str | None:
        row = self._con.one("SELECT value FROM store_meta WHERE key = ?", [key])
        return row[0] if row else None

    # ------------------------------------------------------------------ tiers

    def archive(self, older_than="30 days", *, tier: str = "warm", now=None) -> MoveReport:
        """Move events older than ``older_than`` out of the hot table.

        ``tier="warm"`` moves hot events into zstd Parquet partitioned by event date;
        ``tier="cold"`` moves hot and warm events into the cold tier, which queries do
        not see until :meth:`restore`. ``older_than`` is a timedelta, a number of days,
        text like ``"30 days"``/``"12 hours"``, or an absolute datetime cut-off.
        Counts never change; a move interrupted at any point is finished cleanly by
        the next call.
        """
        self._require_writable("archive events")
        if tier not in ("warm", "cold"):
            raise StoreError(f"archive tier must be 'warm' or 'cold', not {tier!r}")
        if self.tiers_dir is None:
            raise StoreError("an in-memory store has no tiers; open a store on disk to archive")
        cutoff = _cutoff(older_than, now)
        from_tiers = ("hot",) if tier == "warm" else ("hot", "warm")
        with self._lock:
            self._recover_moves()
            before = self.tier_counts()
            move_id = self._next_id("tier_moves", "move_id")
            self._con.run(
                "INSERT INTO tier_moves VALUES (?, ?, ?, ?, 'writing', NULL, ?, NULL)",
                [move_id, ",".join(from_tiers), tier, cutoff, _utcnow()],
            )
            written = []
            moved = 0
            # hot events older than the cut-off -> new Parquet files
            n_hot = self._con.val("SELECT count(*) FROM events WHERE timestamp < ?", [cutoff])
            max_hot_seq = None
            if n_hot:
                max_hot_seq = self._con.val(
                    "SELECT max(seq) FROM events WHERE timestamp < ?", [cutoff]
                )
                written += self._write_tier_files(
                    move_id,
                    tier,
                    "FROM events WHERE timestamp < ? AND seq <= ?",
                    [cutoff, max_hot_seq],
                )
                moved += n_hot
            # warm files entirely older than the cut-off -> copied to cold
            replaced = []
            if tier == "cold":
                for path, events in self._con.rows(
                    "SELECT path, events FROM tier_files WHERE tier = 'warm' AND max_ts < ?",
                    [cutoff],
                ):
                    dest = Path("cold") / Path(path).relative_to("warm")
                    dest = dest.with_name(f"m{move_id}_{dest.name}")
                    (self.tiers_dir / dest).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(self.tiers_dir / path, self.tiers_dir / dest)
                    written.append(self._file_row(move_id, tier, dest))
                    replaced.append(path)
                    moved += events
            self._after_write_hook(move_id)
            self._commit_move(move_id, cutoff, max_hot_seq, n_hot, written, replaced, moved)
            for path in replaced:
                _unlink(self.tiers_dir / path)
            self._tier_version += 1
            after = self.tier_counts()
        if sum(after.values()) != sum(
            before.values()
        ):  # pragma: no cover - guarded by the transaction
            raise StoreError(f"tier move changed the event count: {before} -> {after}")
        return MoveReport(moved, tier, len(written), before, after)

    def restore(self, since=None, until=None) -> MoveReport:
        """Bring cold-tier events (optionally only event dates in [since, until)) back
        into the warm tier, where queries see them again."""
        self._require_writable("restore events")
        if self.tiers_dir is None:
            raise StoreError("an in-memory store has no tiers")
        with self._lock:
            self._recover_moves()
            before = self.tier_counts()
            move_id = self._next_id("tier_moves", "move_id")
            q = "SELECT path, events FROM tier_files WHERE tier = 'cold'"
            params = []
            if since is not None:
                q += " AND max_ts >= ?"
                params.append(_as_utc(since, "since"))
            if until is not None:
                q += " AND min_ts < ?"
                params.append(_as_utc(until, "until"))
            files = self._con.rows(q, params)
            self._con.run(
                "INSERT INTO tier_moves VALUES (?, 'cold', 'warm', NULL, 'writing', NULL, ?, NULL)",
                [move_id, _utcnow()],
            )
            written, replaced, moved = [], [], 0
            for path, events in files:
                dest = Path("warm") / Path(path).relative_to("cold")
                dest = dest.with_name(f"m{move_id}_{dest.name}")
                (self.tiers_dir / dest).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.tiers_dir / path, self.tiers_dir / dest)
                written.append(self._file_row(move_id, "warm", dest))
                replaced.append(path)
                moved += events
            self._after_write_hook(move_id)
            self._commit_move(move_id, None, None, 0, written, replaced, moved)
            for path in replaced:
                _unlink(self.tiers_dir / path)
            self._tier_version += 1
            after = self.tier_counts()
        return MoveReport(moved, "warm", len(written), before, after)

    def _after_write_hook(self, move_id: int) -> None:
        """Between writing a move's files and committing it (tests simulate a crash here)."""

    def _write_tier_files(self, move_id: int, tier: str, where: str, params) -> list[tuple]:
        out_dir = self.tiers_dir / tier
        out_dir.mkdir(parents=True, exist_ok=True)
        cols = ", ".join(_ALL_COLUMNS)
        self._con.run(
            f"COPY (SELECT {cols}, strftime(timestamp, '%Y-%m-%d') AS event_date {where} ORDER BY seq) "
            f"TO '{_sql_str(str(out_dir))}' (FORMAT parquet, COMPRESSION zstd, "
            f"PARTITION_BY (event_date), FILENAME_PATTERN 'm{move_id}_{{i}}', "
            "OVERWRITE_OR_IGNORE true, ROW_GROUP_SIZE 122880)",
            params,
        )
        rows = []
        for f in sorted(out_dir.glob(f"event_date=*/m{move_id}_*.parquet")):
            rows.append(self._file_row(move_id, tier, f.relative_to(self.tiers_dir)))
        return rows

    def _file_row(self, move_id: int, tier: str, rel: Path) -> tuple:
        full = str(self.tiers_dir / rel)
        n, lo, hi, tlo, thi = self._con.one(
            "SELECT count(*), min(seq), max(seq), min(timestamp), max(timestamp) FROM read_parquet(?)",
            [full],
        )
        return (move_id, tier, str(rel), n, lo, hi, tlo, thi)

    def _commit_move(self, move_id, cutoff, max_hot_seq, n_hot, written, replaced, moved):
        con = self._con
        con.run("BEGIN TRANSACTION")
        try:
            if n_hot:
                deleted = con.val(
                    "DELETE FROM events WHERE timestamp < ? AND seq <= ?", [cutoff, max_hot_seq]
                )
                if deleted != n_hot:
                    raise StoreError(
                        f"tier move {move_id}: expected to move {n_hot} events, found {deleted}"
                    )
            if sum(w[3] for w in written) != moved:
                raise StoreError(
                    f"tier move {move_id}: files hold {sum(w[3] for w in written)} events, expected {moved}"
                )
            for path in replaced:
                con.run("DELETE FROM tier_files WHERE path = ?", [path])
            if written:
                con.executemany(
                    "INSERT INTO tier_files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [list(w) for w in written],
                )
            con.run(
                "UPDATE tier_moves SET state = 'done', events = ?, finished_at = ? WHERE move_id = ?",
                [moved, _utcnow(), move_id],
            )
            con.run("COMMIT")
        except BaseException:
            con.run("ROLLBACK")
            raise

    def _recover_moves(self):
        """Finish what an interrupted move left: its files are not registered, so no
        query counted them; remove them and mark the move abandoned."""
        if self.tiers_dir is None:
            return
        pending = self._con.rows("SELECT move_id FROM tier_moves WHERE state = 'writing'")
        registered = {r[0] for r in self._con.rows("SELECT path FROM tier_files")}
        if self.tiers_dir.exists():
            for f in self.tiers_dir.rglob("*.parquet"):
                rel = str(f.relative_to(self.tiers_dir))
                if rel not in registered:
                    _unlink(f)
        for (move_id,) in pending:
            self._con.run(
                "UPDATE tier_moves SET state = 'abandoned', finished_at = ? WHERE move_id = ?",
                [_utcnow(), move_id],
            )
        if pending:
            self._tier_version += 1

    # ------------------------------------------------------------------ export

    def export(self, path, *, format: str | None = None, tiers: Sequence[str] = TIERS) -> int:
        """Write every event (all tiers by default) to Parquet or JSONL, in seq order.

        Importing the file into an empty store with :meth:`append` gives back the same
        events. Parquet keeps each JSON text byte for byte, so the new store's hash chain
        is the same too; JSONL writes JSON compactly. Returns the number of events.
        """
        self._check_open()
        p = Path(path)
        fmt = format or (
            "parquet"
            if p.suffix == ".parquet"
            else "jsonl"
            if p.suffix in (".jsonl", ".ndjson")
            else None
        )
        if fmt not in ("parquet", "jsonl"):
            raise StoreError(
                f"cannot tell the export format of {p}: use .parquet or .jsonl, or format="
            )
        p.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            src = self._events_source(tiers, RECORD_COLUMNS)
            if fmt == "parquet":
                sel = f"SELECT * FROM ({src}) ORDER BY seq"
                opts = "FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880"
            else:
                sel = (
                    "SELECT seq, event_id, type, strftime(timestamp, '%Y-%m-%dT%H:%M:%S.%gZ') AS timestamp, "
                    "lead_id, flow_id, entity_id, step_id, outcome, duration_ms, metadata, lead_snapshot "
                    f"FROM ({src}) ORDER BY seq"
                )
                opts = "FORMAT json"
            cur = self._con.cursor()
            try:
                cur.run("SET TimeZone = 'UTC'")
                cur.run(f"COPY ({sel}) TO '{_sql_str(str(p))}' ({opts})")
                return int(cur.val(f"SELECT count(*) FROM ({src})"))
            finally:
                cur.close()


# --------------------------------------------------------------------------- helpers


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _sql_str(s: str) -> str:
    return s.replace("'", "''")


def _sql_list(paths: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{_sql_str(p)}'" for p in paths) + "]"


def _with_rejects(batches, rejects):
    """The staged batches, then one batch of the caller's own rejects (if any)."""
    yield from batches
    items = [r for r in rejects]
    bad = [r for r in items if not isinstance(r, _inputs.Rejected)]
    if bad:
        raise TypeError(
            f"rejects= takes workbench.store.Rejected items, not {type(bad[0]).__name__}"
        )
    if items:
        yield _inputs.StagedBatch(
            "columns",
            pa.table({"_pos": pa.array([], pa.int64())}),
            batch=None,
            rejects=[
                _inputs.Reject(
                    i,
                    r.raw,
                    r.reason,
                    r.origin or f"rejected item {i}",
                    r.event_id,
                    r.type,
                    r.lead_id,
                )
                for i, r in enumerate(items)
            ],
        )


def _u64(column) -> np.ndarray:
    """A uint64 Arrow column as numpy, exactly (nulls become 0, never float64)."""
    return pc.fill_null(column, 0).to_numpy().astype(np.uint64, copy=False)


def _as_json(column: pa.ChunkedArray) -> pa.ChunkedArray:
    json_type = pa.json_(pa.string())
    return pa.chunked_array(
        [pa.ExtensionArray.from_storage(json_type, chunk) for chunk in column.chunks], json_type
    )


def _str(v) -> str | None:
    return None if v is None else str(v)


def _unlink(p: Path) -> None:
    p.unlink(missing_ok=True)


def _merge_ranges(ranges, gap: int = 250_000) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo - out[-1][1] <= gap:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(a, b) for a, b in out]


def _timeline_query(con: _Con, lead_id: str, db: str | None = None):
    """The SQL (over a relation ``events``) and parameters reading one lead's events,
    through the seq ranges its summary parts record (so DuckDB reads only the row groups
    holding them); ``(None, [])`` when the lead is unknown. ``db`` names the store's
    database when ``con`` has others attached."""
    parts_table = "lead_summary_parts" if db is None else f'"{db}".main.lead_summary_parts'
    ranges = con.rows(
        f"SELECT min_seq, max_seq FROM {parts_table} WHERE lead_id = ? ORDER BY min_seq",
        [lead_id],
    )
    if not ranges:
        return None, []
    parts, params = [], []
    for lo, hi in _merge_ranges(ranges):
        parts.append("SELECT * FROM events WHERE lead_id = ? AND seq BETWEEN ? AND ?")
        params += [lead_id, lo, hi]
    return " UNION ALL ".join(parts) + " ORDER BY timestamp, seq", params


def _events_query(type, outcome, lead_id, entity_id, flow_id, since, until, limit):
    """``events()``'s filters as SQL over a relation ``events``, values bound."""
    where, params = [], []
    for col, value in (("type", type), ("outcome", outcome)):
        if value is None:
            continue
        values = [value] if isinstance(value, str) else list(value)
        ors = []
        for v in values:
            if col == "type" and v.endswith(".*"):
                ors.append("starts_with(type, ?)")
                params.append(v[:-1])
            else:
                ors.append(f"{col} = ?")
                params.append(v)
        where.append("(" + " OR ".join(ors or ["false"]) + ")")
    for col, value in (("lead_id", lead_id), ("entity_id", entity_id), ("flow_id", flow_id)):
        if value is not None:
            where.append(f"{col} = ?")
            params.append(value)
    if since is not None:
        where.append("timestamp >= ?")
        params.append(_as_utc(since, "since"))
    if until is not None:
        where.append("timestamp < ?")
        params.append(_as_utc(until, "until"))
    q = "SELECT * FROM events"
    if where:
        q += " WHERE " + " AND ".join(where)
    q += " ORDER BY timestamp, seq"
    if limit is not None:
        if int(limit) < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        q += " LIMIT ?"
        params.append(int(limit))
    return q, params


def _as_utc(value, what: str) -> dt.datetime:
    """A datetime, date, pandas Timestamp or ISO-8601 text as an aware UTC datetime
    (naive values are taken as UTC); a clear ValueError naming ``what`` otherwise."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{what}={value!r} is not an ISO-8601 date or time") from None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise ValueError(f"{what} must be a datetime or ISO-8601 text, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


_DURATION = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(d|day|days|h|hour|hours|m|min|minute|minutes|w|week|weeks)\s*$"
)


def _cutoff(older_than, now=None) -> dt.datetime:
    now = _as_utc(now, "now") if now is not None else _utcnow()
    if isinstance(older_than, dt.timedelta):
        return now - older_than
    if isinstance(older_than, (int, float)) and not isinstance(older_than, bool):
        return now - dt.timedelta(days=older_than)
    if isinstance(older_than, str):
        m = _DURATION.match(older_than.lower())
        if m:
            n, unit = float(m.group(1)), m.group(2)[0]
            delta = {
                "d": dt.timedelta(days=n),
                "h": dt.timedelta(hours=n),
                "m": dt.timedelta(minutes=n),
                "w": dt.timedelta(weeks=n),
            }[unit]
            return now - delta
        return _as_utc(older_than, "older_than")
    if isinstance(older_than, (dt.datetime, dt.date, pd.Timestamp)):
        return _as_utc(older_than, "older_than")
    raise ValueError(
        f"older_than={older_than!r}: give a timedelta, a number of days, text such as "
        "'30 days' or '12 hours', or a datetime"
    )


_NULLABLE_INTS = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
}


def _decode(df: pd.DataFrame) -> pd.DataFrame:
    """JSON columns of a record read as dicts (few rows: timelines, filtered events)."""
    for col in ("metadata", "lead_snapshot"):
        if col in df.columns:
            df[col] = pd.Series(
                [json.loads(v) if isinstance(v, str) else None for v in df[col]],
                index=df.index,
                dtype=object,
            )
    return df


def _progress_bar(staged: _inputs.StagedInput, progress: bool | None, label: str):
    big = (staged.total_bytes or 0) >= 50_000_000 or (staged.total_rows or 0) >= 500_000
    if progress is False or (progress is None and not big):
        return None
    from tqdm.auto import tqdm

    if staged.total_bytes is not None:
        return tqdm(
            total=staged.total_bytes, unit="B", unit_scale=True, desc=f"ingest {Path(label).name}"
        )
    return tqdm(total=staged.total_rows, unit=" events", unit_scale=True, desc="ingest")
