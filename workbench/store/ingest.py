"""The SQL that takes a batch of incoming events into the store, in two streaming passes.

Both passes read the registered Arrow batch ``_in`` through the same normalising
SELECT (:func:`normalise_sql`), so no copy of the batch is materialised:

1. **classify** returns, per input row, the reason it cannot be stored (NULL when it
   can), its ``id_hash`` (for duplicate checks), its SHA-256 ``digest`` and the typed
   columns. The store decides duplicates (and conflicts: the same event_id with other
   content), computes seq, chain hashes and the batch's seal, then appends seq and chain
   hash to the batch as columns ``_seq`` and ``_chain``.
2. **insert** stores the rows that have a ``_seq``, deriving the typed columns
   analyses group by from one parse of each metadata object.

The catalogue enters as constant MAP literals (type -> category, outcomes, required
keys), so no join disturbs the batch's order.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import display
from ..errors import InputError, StoreError
from ..timeutil import utcnow
from . import chain as _chain
from . import inputs as _inputs
from . import personal_ids
from . import snapshots as _snapshots
from . import summary as _summary
from .dedupe import duplicates
from .personal_ids import FLAG_COLUMN
from .quarantine import id_text as _id_text
from .quarantine import quarantine_rows as _quarantine
from .quarantine import with_rejects as _with_rejects
from .schema import (
    DERIVED_COLUMNS,
    EVENT_DIGEST_SQL,
    INPUT_FIELDS,
    QUARANTINE_DIGEST_SQL,
    SNAPSHOT_KEY_SQL,
    STORE_FIELDS,
    STRING_FIELDS,
    content_text_sql,
)

# --------------------------------------------------------------------- lines -> columns

# One JSON text per line -> the record's fields, parsed once. A line that does not parse,
# or is not an object, keeps NULL fields and a reason.
_KNOWN_KEYS = ", ".join(f"'{k}'" for k in (*INPUT_FIELDS, *sorted(STORE_FIELDS)))
# a key as a JSON pointer (any key, the empty one too: ~ and / escaped)
_KEY_PATH = "'/' || replace(replace(k, '~', '~0'), '/', '~1')"
_SCALARS = (*STRING_FIELDS, "duration_ms")
LINES_TO_COLUMNS_SQL = f"""
SELECT
    _pos,
    {", ".join(f"s[{i + 1}] AS {f}" for i, f in enumerate(_SCALARS))},
    CASE json_type(j[1]) WHEN 'VARCHAR' THEN j[1]->>'$' ELSE j[1]::VARCHAR END AS timestamp,
    json_type(j[1]) IN ('BIGINT', 'UBIGINT', 'DOUBLE') AS _ts_number,
    nullif(j[2], 'null')::VARCHAR AS metadata,
    nullif(j[3], 'null')::VARCHAR AS lead_snapshot,
    CASE WHEN len(list_filter(keys, lambda k: k NOT IN ({_KNOWN_KEYS}))) > 0
         THEN to_json(map_from_entries(list_transform(
                list_filter(keys, lambda k: k NOT IN ({_KNOWN_KEYS})),
                lambda k: struct_pack(k := k, v := json_extract(line, {_KEY_PATH})))))::VARCHAR
    END AS _extra,
    CASE WHEN keys IS NOT NULL THEN NULL
         WHEN NOT json_valid(line) THEN 'malformed JSON line'
         ELSE 'line is a JSON ' || lower(json_type(line)) || ', not an event object' END AS _line_reason
FROM (
    SELECT _pos, line, keys,
        CASE WHEN keys IS NOT NULL THEN json_extract_string(line, [{", ".join(f"'$.{f}'" for f in _SCALARS)}]) END AS s,
        CASE WHEN keys IS NOT NULL THEN json_extract(line, ['$.timestamp', '$.metadata', '$.lead_snapshot']) END AS j
    FROM (
        SELECT _pos, line,
            CASE WHEN starts_with(ltrim(line), '{{') THEN TRY(json_keys(line)) END AS keys
        FROM _in
    )
)
"""


# --------------------------------------------------------------------- normalise


def _sql_text(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _map_literal(entries: dict, value) -> str:
    if not entries:
        return "MAP {}"
    return "MAP {" + ", ".join(f"{_sql_text(k)}: {value(v)}" for k, v in entries.items()) + "}"


def _json_key(key: str) -> str:
    # keys with dots or dashes need quoting in a JSON path
    return key if key.replace("_", "").isalnum() else '"' + key.replace('"', '\\"') + '"'


def _list_literal(items) -> str:
    return "[" + ", ".join(_sql_text(i) for i in items) + "]::VARCHAR[]"


def catalog_maps(catalog) -> dict[str, str]:
    """SQL MAP literals of the catalogue (and a fingerprint to know when it changed)."""
    types = list(catalog)
    # each type's required keys as constant JSON paths, so a row is checked with one parse
    has_required = " ".join(
        f"WHEN {_sql_text(t.name)} THEN list_bool_and(json_exists(metadata, "
        f"[{', '.join(_sql_text('$.' + _json_key(k)) for k in t.required_metadata)}]))"
        for t in types
        if t.required_metadata
    )

    def case(value) -> str:
        return (
            "CASE type "
            + " ".join(f"WHEN {_sql_text(t.name)} THEN {value(t)}" for t in types)
            + " END"
        )

    return {
        # constant CASE expressions beat per-row MAP lookups on this hot path
        "category_case": case(lambda t: _sql_text(t.category)),
        "default_outcome_case": case(lambda t: _sql_text(t.implied_outcome)),
        "outcome_ok_case": case(
            lambda t: f"outcome IN ({', '.join(_sql_text(o) for o in t.outcomes)})"
        ),
        # NULL: metadata is not JSON; false: a required key is missing (one parse either way)
        "has_required": (
            f"TRY(CASE type {has_required} ELSE CASE WHEN json_valid(metadata) THEN true END END)"
        ),
        "category": _map_literal({t.name: t.category for t in types}, _sql_text),
        "outcomes": _map_literal({t.name: t.outcomes for t in types}, _list_literal),
        "required": _map_literal({t.name: t.required_metadata for t in types}, _list_literal),
        "fingerprint": json.dumps(
            [(t.name, t.outcomes, t.required_metadata) for t in types], sort_keys=True
        ),
    }


def _is_json(t: pa.DataType) -> bool:
    return isinstance(t, pa.BaseExtensionType) and t.extension_name == "arrow.json"


def _ts_offset(ts_text: str) -> str:
    """Minutes of a text timestamp's UTC offset (``+05:30`` -> 330), NULL when none."""
    if ts_text == "NULL::VARCHAR":
        return "NULL::INTEGER"
    parts = f"regexp_extract(trim({ts_text}), '[T ][0-9:.,]+ ?([+-])([0-9]{{2}}):?([0-9]{{2}})$', ['s', 'h', 'm'])"
    return (
        f"CASE WHEN {parts}.h != '' THEN (CASE WHEN {parts}.s = '-' THEN -1 ELSE 1 END) "
        f"* (CAST({parts}.h AS INTEGER) * 60 + CAST({parts}.m AS INTEGER)) END"
    )


#: Columns the store appends to a batch before inserting it (seq, chain, snapshot ids).
_STORE_COLUMNS = ("_seq", "_chain", "_sid", "_h1", "_new_snap")


def normalise_sql(schema: pa.Schema, maps: dict[str, str], line_reason: bool = False) -> str:
    """A SELECT over ``_in`` giving each row's normalised record and ``reason``."""
    names = set(schema.names)

    def text(col: str) -> str:
        if col not in names:
            return "NULL::VARCHAR"
        t = schema.field(col).type
        if (
            pa.types.is_struct(t)
            or pa.types.is_map(t)
            or pa.types.is_list(t)
            or pa.types.is_large_list(t)
        ):
            return f"to_json({col})::VARCHAR"
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return col
        return f"CAST({col} AS VARCHAR)"

    def json_text(col: str) -> str:
        if col not in names or pa.types.is_null(schema.field(col).type):
            return "NULL::VARCHAR"
        t = schema.field(col).type
        if _is_json(t):
            return f"nullif({col}, 'null')"  # already JSON: read as DuckDB JSON, no re-parse
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return f"nullif({col}, 'null')"
        return f"nullif(to_json({col})::VARCHAR, 'null')"

    # timestamp: typed, epoch milliseconds, or ISO-8601 text
    ts_direct = "NULL::TIMESTAMPTZ"
    if "timestamp" not in names:
        ts_text, ts_number = "NULL::VARCHAR", "false"
    else:
        t = schema.field("timestamp").type
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            # naive timestamps are UTC by the record's definition (the session is UTC);
            # a typed value needs no text (formatting every timestamp is costly)
            ts_text, ts_number = "NULL::VARCHAR", "false"
            ts_direct = "CAST(timestamp AS TIMESTAMPTZ)"
        elif pa.types.is_integer(t) or pa.types.is_floating(t):
            ts_text, ts_number = "CAST(timestamp AS VARCHAR)", "true"
        else:
            ts_text = text("timestamp")
            ts_number = (
                "_ts_number"
                if "_ts_number" in names
                else f"regexp_full_match(trim({ts_text}), '-?[0-9]+(\\.[0-9]+)?')"
            )
    passthrough = [c for c in (*_STORE_COLUMNS, FLAG_COLUMN, *DERIVED) if c in names]
    # ids of text were checked for personal data in Arrow (the flag column); SQL checks
    # the others, and names which id and what it looks like for flagged rows only
    flagged = personal_ids.text_ids(schema) if FLAG_COLUMN in names else ()
    personal_id, personal_id_reason = personal_ids.reason_sql(flagged, FLAG_COLUMN in names)
    # keep both branches of the metadata CASE one type: text stays text (a JSON branch
    # would make DuckDB parse every text value), JSON stays JSON
    meta_cast = (
        "" if "metadata" in names and _is_json(schema.field("metadata").type) else "::VARCHAR"
    )
    extra = "_extra" if "_extra" in names else "NULL::VARCHAR"
    line_reason_col = "_line_reason" if line_reason and "_line_reason" in names else "NULL::VARCHAR"
    required = maps["required"]
    return f"""
SELECT *,
    CASE
        WHEN line_reason IS NOT NULL THEN line_reason
        WHEN blank(event_id) THEN 'missing event_id'
        WHEN blank(type) THEN 'missing type'
        WHEN category IS NULL THEN 'unknown event type ''' || left(type, 60) || ''''
        WHEN blank(lead_id) THEN 'missing lead_id'
        WHEN {personal_id} THEN {personal_id_reason}
        WHEN ts_direct IS NULL AND blank(ts_text) THEN 'missing timestamp'
        WHEN ts_offset IS NOT NULL AND abs(ts_offset) > 14 * 60
            THEN 'timestamp ''' || left(ts_text, 60) || ''' has a UTC offset outside -14:00..+14:00'
        WHEN timestamp IS NULL
            THEN 'unparseable timestamp ''' || left(coalesce(ts_text, CAST(ts_direct AS VARCHAR)), 60) || ''''
        WHEN NOT ({maps["outcome_ok_case"]})
            THEN 'outcome ''' || left(outcome, 40) || ''' does not fit ' || type || ' (allowed: '
                 || array_to_string(map_extract_value({maps["outcomes"]}, type), ', ') || ')'
        WHEN NOT blank(duration_text) AND (duration_num IS NULL OR duration_num < 0
                 OR duration_num != floor(duration_num) OR duration_num > 2147483647)
            THEN 'duration_ms ''' || left(duration_text, 40)
                 || ''' is not a whole, non-negative number of milliseconds'
        WHEN NOT (starts_with(metadata, '{{') OR starts_with(ltrim(metadata), '{{'))
            THEN CASE WHEN json_valid(metadata)
                      THEN 'metadata is a JSON ' || lower(json_type(metadata)) || ', not an object'
                      ELSE 'metadata is not valid JSON' END
        WHEN has_required IS NULL THEN 'metadata is not valid JSON'
        WHEN lead_snapshot IS NOT NULL
             AND NOT (starts_with(lead_snapshot, '{{') OR starts_with(ltrim(lead_snapshot), '{{'))
            THEN CASE WHEN json_valid(lead_snapshot)
                      THEN 'lead_snapshot is a JSON ' || lower(json_type(lead_snapshot)) || ', not an object'
                      ELSE 'lead_snapshot is not valid JSON' END
        WHEN NOT json_valid(lead_snapshot) THEN 'lead_snapshot is not valid JSON'
        WHEN NOT has_required
            THEN type || ' is missing required metadata: ' || array_to_string(
                 list_filter(map_extract_value({required}, type),
                             lambda k: NOT list_contains(json_keys(metadata), k)), ', ')
    END AS reason
FROM (
    SELECT *,
        CASE WHEN blank(outcome_given) THEN {maps["default_outcome_case"]} ELSE outcome_given END
            AS outcome,
        TRY_CAST(duration_num AS INTEGER) AS duration_ms,
        CASE WHEN ts_parsed IS NULL OR NOT isfinite(ts_parsed) THEN NULL
             ELSE date_trunc('millisecond', ts_parsed) END AS timestamp,
        CASE WHEN starts_with(metadata, '{{') OR starts_with(ltrim(metadata), '{{')
             THEN {maps["has_required"]} END AS has_required
    FROM (
        SELECT
            _pos, {", ".join(passthrough) + "," if passthrough else ""}
            {text("event_id")} AS event_id,
            {text("type")} AS type,
            {text("lead_id")} AS lead_id,
            {text("flow_id")} AS flow_id,
            {text("entity_id")} AS entity_id,
            {text("step_id")} AS step_id,
            lower({text("outcome")}) AS outcome_given,
            {text("duration_ms")} AS duration_text,
            TRY_CAST(trim({text("duration_ms")}) AS DOUBLE) AS duration_num,
            {ts_text} AS ts_text,
            {ts_direct} AS ts_direct,
            {_ts_offset(ts_text)} AS ts_offset,
            CASE WHEN {ts_direct} IS NOT NULL THEN {ts_direct}
                 WHEN blank({ts_text}) THEN NULL
                 WHEN {ts_number} THEN TRY(make_timestamptz(
                      CAST(floor(TRY_CAST({ts_text} AS DOUBLE)) AS BIGINT) * 1000))
                 ELSE TRY_CAST(trim({ts_text}) AS TIMESTAMPTZ) END AS ts_parsed,
            CASE WHEN {extra} IS NULL OR NOT starts_with(ltrim(coalesce({json_text("metadata")}, '{{}}')), '{{')
                 THEN coalesce({json_text("metadata")}, '{{}}')
                 ELSE json_merge_patch(coalesce({json_text("metadata")}, '{{}}'),
                                       json_object('_extra', json({extra}))){meta_cast}
            END AS metadata,
            {json_text("lead_snapshot")} AS lead_snapshot,
            {line_reason_col} AS line_reason,
            {maps["category_case"].replace("CASE type", "CASE " + text("type"), 1)} AS category
        FROM _in
    )
)
"""


# Paths read from metadata in one parse, for the typed columns.
_META_PATHS = [
    "$.recipient",
    "$.recipient.name",
    "$.service",
    "$.service.name",
    "$.filter",
    "$.filter.name",
    "$.source",
    "$.source.name",
    "$.rejection_reason",
    "$.reason",
    "$.error_type",
    "$.http_status",
    "$.response.status",
    "$.cost",
    "$.revenue",
    "$.price",
    "$.buyer_response.price",
    "$.step_name",
    "$.feedback_type",
    "$.retry_count",
]
_M = {p[2:]: i + 1 for i, p in enumerate(_META_PATHS)}


def _m(path: str) -> str:
    return f"m[{_M[path]}]"


def _name(plain: str, nested: str) -> str:
    # a name given as an object ({"name": ...}) or as plain text
    return f"CASE WHEN starts_with({_m(plain)}, '{{') THEN {_m(nested)} ELSE {_m(plain)} END"


#: Typed columns derived at ingest, computed by classify.
DERIVED = DERIVED_COLUMNS


def classify_sql(
    norm: str, step_names: dict[str, str], entity_names: dict[str, str], snapshot_text: bool = True
) -> str:
    """Per input row, in input order: position, reason (NULL when it can be stored), id
    hash, content hash and the typed columns, reading each metadata object once; the
    snapshot's text too when the input does not hold it as text already."""
    steps = _map_literal(step_names, _sql_text)
    entities = _map_literal(entity_names, _sql_text)
    paths = "[" + ", ".join(f"'{p}'" for p in _META_PATHS) + "]"
    derived = ", ".join(DERIVED)
    return f"""
SELECT _pos, reason, id_hash, digest, event_id,
    CAST('0x' || left(digest, 16) AS UBIGINT) AS content_hash, {derived},
    CASE WHEN reason IS NULL AND lead_snapshot IS NOT NULL THEN {SNAPSHOT_KEY_SQL.format(x="lead_snapshot")} END AS snap_h1,
    {"CASE WHEN reason IS NULL THEN CAST(lead_snapshot AS VARCHAR) END" if snapshot_text else "NULL::VARCHAR"} AS snap_text
FROM (
SELECT *, CASE WHEN reason IS NULL THEN {EVENT_DIGEST_SQL} END AS digest
FROM (
SELECT _pos, reason, hash(event_id) AS id_hash, event_id, type, timestamp, lead_id, flow_id,
    entity_id, step_id, outcome, duration_ms, metadata, lead_snapshot,
    coalesce(map_extract_value({steps}, step_id), {_m("step_name")}, entity_name, type) AS step_name,
    entity_name,
    coalesce({_m("rejection_reason")},
             CASE WHEN category IN ('source', 'filter', 'recipient') THEN {_m("reason")} END)
        AS rejection_reason,
    {_m("error_type")} AS error_type,
    TRY_CAST(coalesce({_m("http_status")}, {_m("response.status")}) AS INTEGER) AS http_status,
    CASE WHEN type = 'flow.completed' THEN NULL ELSE TRY_CAST({_m("cost")} AS DOUBLE) END AS cost,
    CASE WHEN type = 'flow.completed' THEN NULL
         ELSE TRY_CAST(coalesce({_m("revenue")}, {_m("price")}, {_m("buyer_response.price")}) AS DOUBLE)
    END AS revenue,
    CASE WHEN category = 'feedback' THEN lower({_m("feedback_type")}) END AS feedback_type,
    TRY_CAST({_m("retry_count")} AS INTEGER) AS retry_count
FROM (
    SELECT *, coalesce(CASE category
            WHEN 'source' THEN {_name("source", "source.name")}
            WHEN 'filter' THEN {_name("filter", "filter.name")}
            WHEN 'enhancement' THEN {_name("service", "service.name")}
            ELSE coalesce({_name("recipient", "recipient.name")}, {_name("service", "service.name")})
        END, map_extract_value({entities}, entity_id)) AS entity_name
    FROM (
        SELECT *, CASE WHEN reason IS NULL THEN json_extract_string(metadata, {paths}) END AS m
        FROM ({norm})
    )
)
)
)
"""


def record_digest_sql(norm: str) -> str:
    """Each row's record digest (for telling a duplicate from a conflicting event with
    the same event_id): its record fields only, JSON compared without spacing."""
    return f"SELECT _pos, sha256({content_text_sql(columns=INPUT_FIELDS, normal_json=True)}) AS d FROM ({norm})"


def insert_sql(norm: str) -> str:
    """INSERT the rows of the batch that were given a ``_seq`` (with their typed columns)."""
    return f"""
INSERT INTO events
SELECT _seq, event_id, type, timestamp, lead_id, flow_id, entity_id, step_id, outcome,
    duration_ms, metadata, _sid, {", ".join(DERIVED)}, hash(event_id), _chain
FROM ({norm})
WHERE _seq IS NOT NULL
"""


# --------------------------------------------------------------------- the pipeline


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

    def _repr_html_(self) -> str:
        rows = [
            ("received", f"{self.received:,}"),
            (
                "stored",
                f"{self.stored:,}"
                + (f" (seq {self.first_seq:,}..{self.last_seq:,})" if self.stored else ""),
            ),
            ("duplicates", f"{self.duplicates:,} (already stored, skipped)"),
            (
                "quarantined",
                f"{self.quarantined:,}" + (" (see quarantine)" if self.quarantined else ""),
            ),
        ]
        if self.seconds:
            rows.append(
                ("took", f"{self.seconds:.2f} s ({self.received / self.seconds:,.0f} events/s)")
            )
        reasons = (
            display.table(["events", "reason quarantined"], [(n, r) for r, n in self.reasons[:10]])
            if self.reasons
            else ""
        )
        title = f"Ingest {self.ingest_id}" if self.ingest_id is not None else "Ingest"
        return display.card(
            title + (f" from {self.source}" if self.source else ""),
            rows,
            status="warn" if self.quarantined else "ok",
            extra_html=reasons,
        )


def append(store, events, *, progress=None, label=None, rejects=(), batch_rows=_inputs.BATCH_ROWS):
    """Validate and store ``events`` in ``store`` (see ``EventStore.append``)."""
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int | np.integer):
        raise InputError(f"batch_rows={batch_rows!r}: give a whole number of rows, at least 1")
    if batch_rows < 1:
        raise InputError(f"batch_rows must be at least 1, got {batch_rows}")
    if label is not None and not isinstance(label, str | os.PathLike):
        raise InputError(
            f"label= names the input in the ingest history: give text, not {type(label).__name__}"
        )
    rejects = _checked_rejects(rejects)
    staged = _inputs.stage(events, batch_rows=batch_rows)
    source = os.fspath(label) if label else staged.label
    if isinstance(source, bytes):
        source = source.decode("utf-8", "backslashreplace")
    t0 = time.perf_counter()
    totals: Counter = Counter()
    reasons: Counter = Counter()
    first_seq = last_seq = None
    bar = _progress_bar(staged, progress, source)
    con = store._con
    with store._lock, store._ingest_memory():
        store._refresh_catalog_table()
        ingest_id = _next_id(con, "ingests", "ingest_id")
        # the ingest is on record before its first batch, and its counts move with each
        # committed batch: after a crash the history still agrees with the ledger
        con.run(
            "INSERT INTO ingests VALUES (?, ?, NULL, ?, 0, 0, 0, 0, 'running')",
            [ingest_id, utcnow(), source],
        )
        state = "interrupted"
        try:
            for batch in _with_rejects(staged.batches, rejects):
                r = _ingest_batch(store, batch, ingest_id)
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
            state = "done"
        finally:
            if bar is not None:
                bar.close()
            with contextlib.suppress(Exception):  # never hide the error that stopped it
                con.run(
                    "UPDATE ingests SET state = ?, finished_at = ? WHERE ingest_id = ?",
                    [state, utcnow(), ingest_id],
                )
    if totals["stored"]:
        with store._lock:
            if _summary.maybe_compact(con):
                store._tier_version += 1  # the summary view's SQL names the new watermark
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


def _checked_rejects(rejects):
    """``rejects`` as append() reads it: None or an iterable of Rejected. Items of a
    list or tuple are checked now, before anything is stored; a stream's are checked
    as they come (an importer fills its list while its events stream)."""
    if rejects is None:
        return ()
    if isinstance(rejects, str | bytes | dict) or not isinstance(rejects, Iterable):
        raise InputError(
            f"rejects= takes a list of workbench.store.Rejected, not {type(rejects).__name__}"
        )
    if isinstance(rejects, list | tuple) and rejects:
        bad = [r for r in rejects if not isinstance(r, _inputs.Rejected)]
        if bad:
            raise InputError(
                f"rejects= takes workbench.store.Rejected items, not {type(bad[0]).__name__}"
            )
    return rejects


def _next_id(con, table: str, column: str) -> int:
    return con.val(f"SELECT coalesce(max({column}), 0) + 1 FROM {table}")


def _last_seal(con) -> tuple[int, int, str, int]:
    """(last seq, its chain hash, the head seal, the last batch id) of the ledger."""
    row = con.one(
        "SELECT (SELECT coalesce(max(last_seq), 0) FROM ledger), "
        "(SELECT head_hash FROM ledger WHERE events > 0 ORDER BY last_seq DESC LIMIT 1), "
        "seal, batch_id FROM ledger ORDER BY batch_id DESC LIMIT 1"
    )
    if row is None:
        return 0, _chain.GENESIS, _chain.GENESIS_SEAL, 0
    return int(row[0]), int(row[1] or 0), row[2], int(row[3])


def _ingest_batch(store, batch: _inputs.StagedBatch, ingest_id: int) -> dict:
    """Store one staged batch atomically: events, quarantine, parts, seal, history."""
    con = store._con
    result = {"received": batch.received, "stored": 0, "duplicates": 0, "quarantined": 0}
    bad: list[tuple] = [(pos, r.reason, r.event_id, r.type, r.lead_id) for pos, r in batch.rejects]
    given = {pos: r for pos, r in batch.rejects}
    table = batch.table
    if batch.kind == "lines" and table.num_rows:
        con.register("_in", table)
        try:
            table = con.raw.sql(LINES_TO_COLUMNS_SQL).to_arrow_table()
        finally:
            con.unregister("_in")
    con.run("BEGIN TRANSACTION")
    try:
        digests = pa.array([], pa.string())
        if table.num_rows:
            digests = _store_rows(store, table, bad, result)
        first_qid = last_qid = None
        if bad:
            first_qid, last_qid = _quarantine(store, batch, bad, given, ingest_id)
        result["quarantined"] = len(bad)
        result["reasons"] = Counter(b[1] for b in bad)
        if result["stored"] or bad:
            _seal(con, ingest_id, result, digests, first_qid, last_qid)
        con.run(
            "UPDATE ingests SET received = received + ?, stored = stored + ?, "
            "duplicates = duplicates + ?, quarantined = quarantined + ? WHERE ingest_id = ?",
            [
                result["received"],
                result["stored"],
                result["duplicates"],
                result["quarantined"],
                ingest_id,
            ],
        )
        con.run("COMMIT")
    except BaseException:
        con.run("ROLLBACK")
        raise
    return result


def _seal(con, ingest_id, result, digests, first_qid, last_qid) -> None:
    _, _, prev, batch_id = _last_seal(con)
    first_seq, last_seq = result.get("first_seq"), result.get("last_seq")
    qdigests = pa.array([], pa.string())
    if first_qid is not None:
        qdigests = (
            con.raw.sql(
                f"SELECT {QUARANTINE_DIGEST_SQL} AS d FROM quarantine "
                "WHERE qid BETWEEN $a AND $b ORDER BY qid",
                params={"a": first_qid, "b": last_qid},
            )
            .to_arrow_table()
            .column("d")
        )
    seal = _chain.seal(prev, ingest_id, first_seq, last_seq, first_qid, last_qid, digests, qdigests)
    con.run(
        "INSERT INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            batch_id + 1,
            ingest_id,
            first_seq,
            last_seq,
            result["stored"],
            first_qid,
            last_qid,
            len(qdigests),
            result.get("head"),
            seal,
            utcnow(),
        ],
    )


def _store_rows(store, table: pa.Table, bad: list, result: dict) -> pa.Array:
    """Classify, de-duplicate, chain and insert one batch inside the open transaction.
    Returns the digests of the stored events, in seq order."""
    con = store._con
    if table.num_rows / max(1, len(table.column(0).chunks)) < 100_000:
        # DuckDB inserts small record batches ~2x slower than large ones
        table = table.combine_chunks()
    personal = personal_ids.flags(table)
    if personal is not None:
        table = table.append_column(FLAG_COLUMN, personal)
    norm = normalise_sql(table.schema, store._catalog_maps, line_reason=True)
    steps, entities = _dimension_names(con)
    try:
        con.register("_in", table)
        try:
            given = _snapshots.given_text(table)
            cls = con.raw.sql(
                classify_sql(norm, steps, entities, snapshot_text=given is None)
            ).to_arrow_table()
        finally:
            con.unregister("_in")
    except duckdb.NotImplementedException as e:
        raise _unreadable_types(table, e) from None
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
        cols[1:] = [[_id_text(v) for v in col] for col in cols[1:]]
        for i, reason, ev, ty, ld in zip(idx.to_pylist(), *cols, strict=True):
            bad.append((int(pos[i]), reason, ev, ty, ld))
    ok = ~invalid
    dup, conflicts = duplicates(store, table, record_digest_sql(norm), cls, ok)
    for i, reason in conflicts.items():
        named = [
            _str(table.column(c)[i].as_py()) if c in table.column_names else None
            for c in ("type", "lead_id")
        ]
        bad.append((int(pos[i]), reason, cls.column("event_id")[i].as_py(), *named))
    result["duplicates"] = int(dup.sum())
    keep = ok & ~dup
    if conflicts:
        keep[list(conflicts)] = False
    n = int(keep.sum())
    if not n:
        return pa.array([], pa.string())
    last_seq, head, _, _ = _last_seal(con)
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
        **_snapshots.snapshot_ids(con, cls, keep, seq_col, given),
        **{c: cls.column(c).combine_chunks() for c in DERIVED},
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
        norm = normalise_sql(table.schema, store._catalog_maps)
        con.run(_snapshots.insert_sql(norm))
        con.run(insert_sql(norm))
    finally:
        con.unregister("_in")
    first, last = last_seq + 1, last_seq + n
    con.run(_summary.INSERT_PARTS_SQL, {"first": first, "last": last})
    result.update(stored=n, first_seq=first, last_seq=last, head=int(hashes[-1]))
    return cls.column("digest").filter(pa.array(keep))


def _unreadable_types(table: pa.Table, e: Exception) -> InputError:
    fields = [f for f in table.schema if not f.name.startswith("_")]
    plain = (pa.types.is_string, pa.types.is_integer, pa.types.is_floating, pa.types.is_temporal)
    fields = [f for f in fields if not any(is_plain(f.type) for is_plain in plain)] or fields
    return InputError(
        "the input has a column of an Arrow type the store cannot read ("
        + ", ".join(f"{f.name}: {f.type}" for f in fields)
        + f"; {_clip(str(e).strip() or type(e).__name__)}): cast it to text or a plain "
        "number first"
    )


def _dimension_names(con) -> tuple[dict, dict]:
    steps = dict(con.rows("SELECT step_id, name FROM steps WHERE name IS NOT NULL"))
    entities = dict(con.rows("SELECT entity_id, name FROM entities WHERE name IS NOT NULL"))
    return steps, entities


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


def _clip(v, n: int = 80) -> str:
    s = str(v)
    return s if len(s) <= n else s[:n] + "..."


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
