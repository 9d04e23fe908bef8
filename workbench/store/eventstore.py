"""EventStore: the append-only DuckDB home of every event.

The store takes events in large batches from any input (Arrow, pandas, dicts, JSONL,
Parquet), validates them against the catalogue in SQL, puts what it cannot take in a
``quarantine`` table with the raw text, the reason and the place it came from, skips
events it already holds, and stores the rest with a store-assigned ``seq``, typed
columns derived from the metadata for fast analyses, a per-lead summary, and SHA-256
seals that ``verify()`` recomputes. Old events move to Parquet tiers (warm, cold)
without changing any count; one view spans hot and warm so queries need not care.

This class holds the store's lifecycle, its dimension tables and its raw reads; the
append pipeline (ingest.py), the seals (chain.py), the tiers and exports (tiers.py) and
the per-lead summary (summary.py) do the rest. There is no update or delete API: events
are immutable. Reads for people go through ``workbench.access.Session``; the methods
here are the raw layer beneath it.

>>> store = open_store()                        # in memory
>>> store.append([{"event_id": "evt_1", "type": "source.submitted", "lead_id": "lead_1",
...     "timestamp": "2024-01-15T10:30:45.123Z", "metadata": {"source": "Acme",
...     "raw_data": {}, "headers": {}, "ip_address": "203.0.113.9", "source_config": {}}}])
IngestReport(received=1, stored=1, duplicates=0, quarantined=0)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb
import pandas as pd

from ..catalog import DEFAULT_CATALOG, Catalog, EventType, make_event_type
from ..errors import (
    ReadOnlyStoreError,
    ReadOnlyViolation,
    StoreError,
    StoreLockedError,
    StoreNotFoundError,
)
from ..timeutil import utcnow
from . import chain as _chain
from . import ingest as _ingest
from . import inputs as _inputs
from . import summary as _summary
from .chain import VerifyReport
from .connection import Connection, connect_duckdb
from .ingest import IngestReport
from .inputs import Rejected
from .migrate import migrate as _migrate
from .queries import decode, events_query, frame, hot_timeline, lead_ranges, timeline_query
from .schema import DDL, ENTITY_KINDS, MIGRATES_FROM, PUBLIC_COLUMNS, SCHEMA_VERSION, TIERS
from .sqlcheck import check_read_only
from .tiers import MoveReport, Tiers, _SimulatedCrash

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
    "_SimulatedCrash",
]

_HASH_PROBE = "lead-events workbench: hash probe"
#: DuckDB's memory limit while append() runs (see EventStore._ingest_memory).
INGEST_MEMORY_LIMIT = "512MB"


# --------------------------------------------------------------------------- opening


def open_store(
    path: str | os.PathLike | None = None,
    *,
    read_only: bool = False,
    create: bool = True,
    catalog: Catalog | None = None,
) -> EventStore:
    """Open (or create) an event store.

    ``path=None`` gives a store in memory. ``read_only=True`` opens an existing store
    for reading; several processes may read one store at once, but only while no
    process writes it. ``create=False`` refuses to make a new store where none is
    (for commands that act on an existing store: a mistyped path is an error, not an
    empty store).

    >>> store = open_store()
    >>> store.count()
    0
    """
    if path is None:
        if read_only:
            raise StoreError("an in-memory store cannot be read-only: it would always be empty")
        return EventStore(connect_duckdb(None), None, False, catalog)
    p = Path(path).expanduser()
    if p.is_dir():
        raise StoreError(
            f"{p} is a folder; give the path of a store file, e.g. {p / 'events.duckdb'}"
        )
    if (read_only or not create) and not p.exists():
        raise StoreNotFoundError(
            f"no store at {p}; create one with open_store({str(p)!r}) or "
            f"`workbench ingest FILE --store {p}`"
        )
    if not read_only:
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create a store at {p}: {e.strerror or e}") from None
    existed = p.exists()
    try:
        con = connect_duckdb(p, read_only)
    except duckdb.Error as e:
        raise _lock_error(p, e, read_only) from None
    try:
        return EventStore(con, p, read_only, catalog)
    except BaseException:
        con.close()
        if not existed:  # a failed first open leaves nothing behind
            for leftover in (p, p.with_name(p.name + ".wal")):
                leftover.unlink(missing_ok=True)
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


_DEFINITION_TEXT = ("when", "use", "category")
_DEFINITION_LISTS = ("outcomes", "required_metadata", "optional_metadata")


def _stored_event_type(path, name, definition) -> EventType:
    """The event type a row of the store's ``event_types`` table defines, or a
    StoreError naming the row (a row written outside the store, not by
    ``register_event_type``, must not stop on a raw TypeError or change validation)."""
    try:
        spec = json.loads(definition) if isinstance(definition, str) else None
        if not isinstance(spec, dict):
            raise ValueError("the definition is not a JSON object")
        unknown = sorted(set(spec) - {*_DEFINITION_TEXT, *_DEFINITION_LISTS})
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))}")
        if "when" not in spec:
            raise ValueError("it does not say when the event happens ('when')")
        for key in _DEFINITION_TEXT:
            if spec.get(key) is not None and not isinstance(spec[key], str):
                raise ValueError(f"{key!r} is {json.dumps(spec[key])}, not text")
        for key in _DEFINITION_LISTS:
            value = spec.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{key!r} is {json.dumps(value)}, not a list of text")
        return make_event_type(name, **spec)
    except (TypeError, ValueError) as e:  # CatalogError is a ValueError
        raise StoreError(
            f"{path or 'the store'}: its event_types row {str(name)[:80]!r} is not an event "
            f"type definition ({e}); it was written outside the workbench. Restore the store "
            "from a copy, or delete that row with DuckDB if no event uses the type"
        ) from None


# --------------------------------------------------------------------------- store


class EventStore:
    """An append-only event store over one DuckDB database (see :func:`open_store`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | None, read_only: bool, catalog):
        self._con = Connection(con)
        self.path = path
        self.read_only = read_only
        self._lock = threading.RLock()  # writes, and the main connection
        self._read_lock = threading.RLock()  # the store's own query cursor
        self._closed = False
        self._close_hooks: list = []
        self._tier_version = 0
        self._qcon: Connection | None = None
        self._qcon_version = -1
        self._hot_from_cache: tuple[int, int] | None = None
        #: The schema version this open upgraded the store from (None: it was current).
        self.upgraded_from: str | None = None
        self._db = self._con.val("SELECT current_database()")
        self._con.run(
            "CREATE OR REPLACE TEMP MACRO blank(x) AS "
            "x IS NULL OR x = '' OR (ascii(x) <= 32 AND trim(x) = '')"
        )
        self._init_schema()
        self._tiers = Tiers(self)
        self.catalog = (catalog or DEFAULT_CATALOG).copy()
        for name, definition in self._con.rows("SELECT name, definition FROM event_types"):
            # the store's own definition is what its events were validated against
            self.catalog.put(_stored_event_type(path, name, definition))
        self._hash_ok = self._check_hash_probe()
        if not read_only:
            self._tiers.recover()
            # an append killed midway: its committed batches stand, the rest never came
            self._con.run("UPDATE ingests SET state = 'interrupted' WHERE state = 'running'")
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
        return self._tiers.dir

    @property
    def audit_path(self) -> Path | None:
        """Where sessions keep this store's audit trail (None for a store in memory)."""
        return None if self.path is None else self.path.with_name(self.path.name + ".audit.sqlite")

    def owned_paths(self) -> set[Path]:
        """Every file and folder the store owns: no export, import or move writes there."""
        if self.path is None:
            return set()
        p, audit = self.path, self.audit_path
        names = [p, p.with_name(p.name + ".wal"), p.with_name(p.name + ".tmp"), self.tiers_dir]
        names += [audit, *(audit.with_name(audit.name + s) for s in ("-wal", "-shm", "-journal"))]
        names += [audit.with_name(audit.name + ".head"), p.with_name(p.name + ".access.yaml")]
        return set(names)

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
            if version[0] in MIGRATES_FROM and not self.read_only:
                _migrate(con, version[0])
                self.upgraded_from = version[0]
            elif version[0] in MIGRATES_FROM:
                raise StoreError(
                    f"{self.path} has store schema {version[0]}, which this workbench "
                    f"upgrades to {SCHEMA_VERSION} in place: open it once for writing "
                    "(open_store(path) without read_only=True, or `workbench upgrade --store "
                    "PATH`), then read it as before"
                )
            elif version[0] != SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has store schema {version[0]}, this workbench reads "
                    f"{SCHEMA_VERSION}: export its events with the workbench that made it "
                    "(`workbench export all.parquet --store ...`) and ingest them into a new store"
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
        con.run(DDL)
        probe = con.val("SELECT hash(?::VARCHAR)", [_HASH_PROBE])
        con.executemany(
            "INSERT INTO store_meta VALUES (?, ?)",
            [
                ["schema_version", SCHEMA_VERSION],
                ["hash_probe", str(probe)],
                ["duckdb_version", duckdb.__version__],
                ["created_at", utcnow().isoformat()],
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
        maps = _ingest.catalog_maps(self.catalog)
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
        rejects: Iterable[Rejected] = (),
        batch_rows: int = _inputs.BATCH_ROWS,
    ) -> IngestReport:
        """Validate and store events; return what happened to each of them.

        ``events`` is a pyarrow Table / RecordBatch / RecordBatchReader, a pandas
        DataFrame, an iterable of dicts, or the path of a .jsonl / .jsonl.gz / .json /
        .parquet file. Events already stored (same event_id, same content) are skipped
        and counted as duplicates; an event_id already stored with other content, and
        every invalid event, go to the ``quarantine`` table with the reason and their
        origin. Each batch of up to 250 k events is stored atomically.

        >>> store = open_store()
        >>> store.append([{"event_id": "evt_x", "type": "no.such.type", "lead_id": "l1",
        ...                "timestamp": "2024-01-15T10:30:45Z"}]).quarantined
        1
        """
        self._require_writable("append events")
        return _ingest.append(
            self, events, progress=progress, label=label, rejects=rejects, batch_rows=batch_rows
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

    def compact_summary(self) -> int:
        """Fold the per-lead summary's parts into one row per lead, so reading the
        summary does not re-group every part (append() does this when enough parts have
        gathered). Returns the number of leads."""
        self._require_writable("compact the lead summary")
        with self._lock:
            leads = _summary.compact(self._con)
            self._tier_version += 1  # the summary view's SQL names the new watermark
            return leads

    # ------------------------------------------------------------------ reading

    def events_source(
        self,
        con: Connection,
        tiers: Sequence[str] = ("hot", "warm"),
        columns=PUBLIC_COLUMNS,
        *,
        apart: bool = False,
    ) -> str:
        """SQL (a subquery) of the events of ``tiers`` for queries on ``con``, a cursor
        of this store: the tiers' files are registered on it as Arrow datasets. With
        ``apart``, the caller joins the snapshots itself (``schema.snapshot_join``)."""
        return self._tiers.source_sql(con, tiers, columns, apart=apart)

    def lead_summary_source(self, con: Connection) -> str:
        """SQL of the per-lead summary, for queries on ``con`` (a cursor of this store)."""
        db = con.val("SELECT current_database()")
        row = con.one("SELECT value FROM store_meta WHERE key = 'compacted_through'")
        return _summary.lead_summary_select(db, int(row[0]) if row else 0)

    def cursor(self) -> Connection:
        """A new cursor on the store's database (one per thread that reads)."""
        self._check_open()
        return self._con.cursor()

    def _query_con(self) -> Connection:
        """The cursor the store's own reads run on: ``events`` spans hot and warm tiers."""
        self._check_open()
        if self._qcon is None:
            self._qcon = self._con.cursor()
        if self._qcon_version != self._tier_version:
            version = self._tier_version
            self._qcon.run(
                f"CREATE OR REPLACE TEMP VIEW events AS {self.events_source(self._qcon)}"
            )
            self._qcon.run(
                f"CREATE OR REPLACE TEMP VIEW lead_summary AS {self.lead_summary_source(self._qcon)}"
            )
            self._qcon_version = version
        return self._qcon

    def sql(self, query: str, params=None) -> pd.DataFrame:
        """Run one read-only SQL statement over the raw tables and return a DataFrame.

        ``events`` spans the hot table and the warm tier; ``lead_summary``,
        ``quarantine``, ``flows``, ``entities``, ``steps``, ``incidents`` and ``ingests``
        can be read too. Anything that writes is refused before it runs, decided by
        DuckDB's parser; no file can be read. Pass values as ``params`` (``?`` or
        ``$name``), never spliced in. People read through a Session (masked).

        >>> open_store().sql("SELECT count(*) AS n FROM events").n[0]
        np.int64(0)
        """
        statement = check_read_only(query)
        with self._read_lock:
            con = self._query_con()
            with con.snapshot():
                try:
                    return con.df(statement, params) if params is not None else con.df(statement)
                except duckdb.Error as e:
                    raise StoreError(f"query failed: {str(e).strip()}") from None

    def _read(self, query: str, params=None) -> pd.DataFrame:
        with self._read_lock:
            return self._query_con().df(query, params or [])

    def timeline(self, lead_id: str) -> pd.DataFrame:
        """Every event of one lead, in (timestamp, seq) order, metadata as dicts.

        >>> open_store().timeline("lead_unknown").empty
        True
        """
        with self._read_lock:
            con = self._query_con()
            with con.snapshot():
                ranges = lead_ranges(con, lead_id, self._db)
                if ranges and ranges[0][0] >= self._hot_from(con):
                    return decode(frame(hot_timeline(con, self._db, lead_id, ranges)))
                q, params = timeline_query(con, lead_id, self._db, ranges=ranges)
                if q is None:
                    return decode(con.df("SELECT * FROM events LIMIT 0"))
                return decode(con.frame(q, params))

    def _hot_from(self, con: Connection) -> int:
        """The first seq no tier file holds (events from it on are all hot)."""
        if self._hot_from_cache is None or self._hot_from_cache[0] != self._tier_version:
            first = con.val(
                f'SELECT coalesce(max(max_seq), 0) + 1 FROM "{self._db}".main.tier_files'
            )
            self._hot_from_cache = (self._tier_version, int(first))
        return self._hot_from_cache[1]

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
        q, params = events_query(type, outcome, lead_id, entity_id, flow_id, since, until, limit)
        return decode(self._read(q, params))

    def lead_summary(self, lead_id: str | None = None) -> pd.DataFrame:
        """The per-lead summary (source, stage reached, outcome, cost, revenue)."""
        if lead_id is None:
            return self._read("SELECT * FROM lead_summary ORDER BY first_seen, lead_id")
        return self._read("SELECT * FROM lead_summary WHERE lead_id = ?", [lead_id])

    def quarantined(self, limit: int | None = None) -> pd.DataFrame:
        """Events that could not be taken, with reason, origin and raw text."""
        q, params = "SELECT * FROM quarantine ORDER BY qid", []
        if limit is not None:
            q += " LIMIT ?"
            params.append(_limit(limit))
        return self._read(q, params)

    def count(self, tiers: Sequence[str] = TIERS) -> int:
        """How many events the store holds in ``tiers`` (all of them by default)."""
        return sum(self.tier_counts()[t] for t in tiers)

    def tier_counts(self) -> dict[str, int]:
        """Events per tier: ``{"hot": …, "warm": …, "cold": …}``."""
        with self._read_lock:
            return self._tiers.counts(self._query_con())

    # ------------------------------------------------------------------ integrity

    def verify(self, *, expect: str | None = None, chunk_rows: int = 1_000_000) -> VerifyReport:
        """Recompute every event's digest, the SHA-256 seals, the chain, the per-lead
        summary, the ingest history and the tier files' digests; say where anything
        changed. ``expect`` is a head digest kept from an earlier verify: the store must
        still hold everything it sealed then.

        >>> open_store().verify().ok
        True
        """
        with self._lock:
            self._check_open()
            return _chain.verify_store(self, expect=expect, chunk_rows=chunk_rows)

    def _meta(self, key: str) -> str | None:
        row = self._con.one("SELECT value FROM store_meta WHERE key = ?", [key])
        return row[0] if row else None

    def keep_private(self, key: str, value: str) -> None:
        """Keep ``value`` beside the events under ``key`` (e.g. a drill's answer): in the
        store file, out of every relation a Session reads."""
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise TypeError("keep_private(key, value) takes two strings")
        self._require_writable("keep a private note")
        with self._lock:
            self._check_open()
            self._con.run(
                "INSERT OR REPLACE INTO store_meta VALUES (?, ?)", [f"private.{key}", value]
            )

    def private(self, key: str) -> str | None:
        """What :meth:`keep_private` kept under ``key``, or None."""
        with self._lock:
            self._check_open()
            return self._meta(f"private.{key}")

    # ------------------------------------------------------------------ tiers

    def archive(self, older_than="30 days", *, tier: str = "warm", now=None) -> MoveReport:
        """Move events older than ``older_than`` out of the hot table.

        ``tier="warm"`` moves hot events into zstd Parquet partitioned by event date;
        ``tier="cold"`` moves hot and warm events into the cold tier, which queries do
        not see until :meth:`restore`. ``older_than`` is a timedelta, a number of days,
        text like ``"30 days"``/``"12 hours"``, or an absolute datetime cut-off.
        Counts never change; a move interrupted at any point is finished cleanly by
        the next open or move.
        """
        self._require_writable("archive events")
        with self._lock:
            return self._tiers.archive(older_than, tier=tier, now=now)

    def restore(self, since=None, until=None) -> MoveReport:
        """Bring cold-tier events (optionally only event dates in [since, until)) back
        into the warm tier, where queries see them again."""
        self._require_writable("restore events")
        with self._lock:
            return self._tiers.restore(since, until)

    def _after_write_hook(self, move_id: int) -> None:
        """Between writing a move's files and committing it (tests simulate a crash here)."""

    def export_lake(self, lake, *, progress: bool | None = None):
        """Add this store's new events (every tier), its per-lead summary and its
        dimension tables to the Parquet lake folder ``lake`` (Hive-partitioned by event
        date, zstd), for DuckDB, Spark or any Parquet reader. A second export adds only
        what was stored since; a crash midway leaves the lake as it was. Returns a
        :class:`~workbench.store.lake.LakeReport`.

        >>> import tempfile, pathlib
        >>> store = open_store()
        >>> report = store.export_lake(pathlib.Path(tempfile.mkdtemp()) / "lake")
        >>> report.events, sorted(report.tables)
        (0, ['entities', 'flows', 'lead_summary', 'steps'])
        """
        from .lake import export_lake

        self._check_open()
        with self._lock:
            return export_lake(self, lake, progress=progress)

    def export(self, path, *, format: str | None = None, tiers: Sequence[str] = TIERS) -> int:
        """Write every event (all tiers by default) to Parquet or JSONL, in seq order.

        Importing the file into an empty store with :meth:`append` gives back the same
        events. Parquet keeps each JSON text byte for byte, so the new store's digests
        are the same too; JSONL writes JSON compactly. The file is written whole or not
        at all, never onto a file of the store. Returns the number of events.
        """
        self._check_open()
        with self._lock:
            return self._tiers.export(path, format=format, tiers=tiers)


def _limit(limit) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be a whole number >= 0, got {limit!r}")
    return limit
