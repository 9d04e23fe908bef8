"""THE event record: its columns and types, the columns derived from it, the store's
tables, and the canonical text every integrity digest is computed over.

Every other list of columns in the package (ingest, chain, tiers, export, decode, the
importer) is derived from the names here, so a column is added in one place.

>>> RECORD_COLUMNS[:3], len(PUBLIC_COLUMNS)
(('seq', 'event_id', 'type'), 21)
"""

from __future__ import annotations

#: The store's schema version; a store of another version is refused with a clear error.
#: 4: SHA-256 seals in the ledger, digests of tier files, ingests with a state.
#: 5: each lead snapshot stored once, in ``snapshots``; the hot table refers to it.
SCHEMA_VERSION = "5"
#: Older versions ``open_store`` upgrades in place (see migrate.py).
MIGRATES_FROM = ("4",)

ENTITY_KINDS = ("source", "enhancement", "filter", "recipient")
TIERS = ("hot", "warm", "cold")

#: The event record (DESIGN.md), in order, with its DuckDB types.
RECORD_TYPES: dict[str, str] = {
    "seq": "BIGINT NOT NULL",
    "event_id": "VARCHAR NOT NULL",
    "type": "VARCHAR NOT NULL",
    "timestamp": "TIMESTAMPTZ NOT NULL",
    "lead_id": "VARCHAR NOT NULL",
    "flow_id": "VARCHAR",
    "entity_id": "VARCHAR",
    "step_id": "VARCHAR",
    "outcome": "VARCHAR NOT NULL",
    "duration_ms": "INTEGER",
    "metadata": "JSON NOT NULL",
    "lead_snapshot": "JSON",
}
#: Typed columns derived at ingest from the record, so analyses need not parse JSON.
DERIVED_TYPES: dict[str, str] = {
    "step_name": "VARCHAR",
    "entity_name": "VARCHAR",
    "rejection_reason": "VARCHAR",
    "error_type": "VARCHAR",
    "http_status": "INTEGER",
    "cost": "DOUBLE",
    "revenue": "DOUBLE",
    "feedback_type": "VARCHAR",
    "retry_count": "INTEGER",
}
#: Columns the store keeps for itself: a hash of event_id (duplicate checks) and the
#: 64-bit chain hash that locates the first changed event (see chain.py).
HASH_TYPES: dict[str, str] = {"id_hash": "UBIGINT NOT NULL", "chain_hash": "UBIGINT NOT NULL"}

RECORD_COLUMNS = tuple(RECORD_TYPES)
#: The hot table as stored: the record with its snapshot by reference. A snapshot (the
#: whole lead at that moment) changes only when an enhancement changes the lead, so most
#: events of a lead share one; it is stored once in ``snapshots`` and the ``events``
#: relation every reader sees puts it back (see :func:`hot_select`).
HOT_TYPES: dict[str, str] = {
    ("snapshot_id" if c == "lead_snapshot" else c): ("BIGINT" if c == "lead_snapshot" else t)
    for c, t in RECORD_TYPES.items()
}
DERIVED_COLUMNS = tuple(DERIVED_TYPES)
HASH_COLUMNS = tuple(HASH_TYPES)
#: What a reader sees of an event: the record and its typed columns.
PUBLIC_COLUMNS = RECORD_COLUMNS + DERIVED_COLUMNS
#: Every column of the ``events`` table and of a tier file (which adds ``event_date``).
ALL_COLUMNS = PUBLIC_COLUMNS + HASH_COLUMNS
#: The record as a user supplies it (the store assigns seq).
INPUT_FIELDS = RECORD_COLUMNS[1:]
#: Input fields read as plain text, and those holding a JSON object.
STRING_FIELDS = ("event_id", "type", "lead_id", "flow_id", "entity_id", "step_id", "outcome")
JSON_FIELDS = ("metadata", "lead_snapshot")
#: Fields the store computes itself: present in exports, ignored (not "extra") on input.
STORE_FIELDS = frozenset({"seq", *DERIVED_COLUMNS, *HASH_COLUMNS, "event_date"})
#: The partition column of the warm and cold tiers.
PARTITION_COLUMN = "event_date"


def arrow_type(column: str):
    """The Arrow type a producer of events (the simulator, an importer) gives a record
    column: text, JSON as text, timestamps in UTC milliseconds."""
    import pyarrow as pa

    sql_type = {**RECORD_TYPES, **DERIVED_TYPES}[column].split()[0]
    return {
        "BIGINT": pa.int64(),
        "INTEGER": pa.int32(),
        "DOUBLE": pa.float64(),
        "TIMESTAMPTZ": pa.timestamp("ms", tz="UTC"),
    }.get(sql_type, pa.string())


def export_select(source: str = "events") -> str:
    """The SELECT of an export in the record's shape, in seq order; JSON lines give the
    timestamp as ISO-8601 text with milliseconds and Z."""
    cols = [
        "strftime(timestamp, '%Y-%m-%dT%H:%M:%S.%gZ') AS timestamp" if c == "timestamp" else c
        for c in RECORD_COLUMNS
    ]
    return f"SELECT {', '.join(cols)} FROM {source} ORDER BY seq"


#: JSON text is stored zstd-compressed: metadata and snapshots are most of a store's
#: bytes, and zstd keeps them at about a quarter of DuckDB's default (FSST) size while a
#: timeline still reads a lead's few rows in about a millisecond.
_ZSTD = " USING COMPRESSION zstd"
_EVENTS_DDL = ",\n    ".join(
    f"{name:<16} {sql_type}" + (_ZSTD if name == "metadata" else "")
    for name, sql_type in {**HOT_TYPES, **DERIVED_TYPES, **HASH_TYPES}.items()
)
HOT_COLUMNS = tuple({**HOT_TYPES, **DERIVED_TYPES, **HASH_TYPES})

#: The hash that finds a stored snapshot (then its text decides): ``snapshots.h1``.
#: ``snapshot_id`` is the seq of the first event that carried it, so a lead's snapshots
#: sit beside its events and a timeline reads few.
SNAPSHOT_KEY_SQL = "hash(CAST({x} AS VARCHAR))"


def _snapshots_by_id(db: str) -> str:
    # grouped by id, so DuckDB knows each event meets at most one snapshot and drops the
    # join from queries that do not read it (join elimination)
    return (
        "(SELECT snapshot_id, any_value(lead_snapshot) AS lead_snapshot "
        f'FROM "{db}".main.snapshots GROUP BY snapshot_id)'
    )


def snapshot_join(db: str, rows: str) -> tuple[str, str]:
    """(FROM clause, expression) joining the snapshots back onto ``rows``, a relation
    whose events carry ``_snapshot_id`` or ``_inline_snapshot`` (a source made
    ``apart``). DuckDB drops the join when nothing above it reads the snapshot; put the
    join above any other work (masking) so that it can."""
    return (
        f"({rows}) m LEFT JOIN {_snapshots_by_id(db)} s ON s.snapshot_id = m._snapshot_id",
        "coalesce(s.lead_snapshot, m._inline_snapshot)",
    )


def hot_select(db: str, columns=None) -> str:
    """SQL of the hot table as the record reads (``lead_snapshot`` joined back in),
    with ``columns`` (default: every column of a tier file but ``event_date``). A query
    that does not read ``lead_snapshot`` pays nothing for the join; a timeline's few ids
    reach the snapshots scan as a filter."""
    columns = list(columns or ALL_COLUMNS)
    if "lead_snapshot" not in columns:
        return f'SELECT {", ".join(columns)} FROM "{db}".main.events'
    cols = ", ".join("s.lead_snapshot" if c == "lead_snapshot" else f"e.{c}" for c in columns)
    return (
        f'SELECT {cols} FROM "{db}".main.events e '
        f"LEFT JOIN {_snapshots_by_id(db)} s ON s.snapshot_id = e.snapshot_id"
    )


#: The per-lead summary part (one row per lead per stored batch), see summary.py.
SUMMARY_PART_TYPES: dict[str, str] = {
    "lead_id": "VARCHAR NOT NULL",
    "flow_id": "VARCHAR",
    "source": "VARCHAR",
    "source_id": "VARCHAR",
    "submitted_at": "TIMESTAMPTZ",
    "first_ts": "TIMESTAMPTZ",
    "last_ts": "TIMESTAMPTZ",
    "submitted": "BOOLEAN",
    "accepted": "BOOLEAN",
    "source_rejected": "BOOLEAN",
    "filtered": "BOOLEAN",
    "delivered": "BOOLEAN",
    "buyer_rejected": "BOOLEAN",
    "delivery_error": "BOOLEAN",
    "converted": "BOOLEAN",
    "returned": "BOOLEAN",
    "completed": "BOOLEAN",
    "final_outcome": "VARCHAR",
    "recipient": "VARCHAR",
    "lead_cost": "DOUBLE",
    "enhancement_cost": "DOUBLE",
    "other_cost": "DOUBLE",
    "revenue": "DOUBLE",
    "events": "INTEGER",
    "errors": "INTEGER",
    "min_seq": "BIGINT",
    "max_seq": "BIGINT",
}
_SUMMARY_DDL = ",\n    ".join(f"{n:<16} {t}" for n, t in SUMMARY_PART_TYPES.items())

#: The quarantine: what could not be stored, as it arrived, with the reason and origin.
QUARANTINE_TYPES: dict[str, str] = {
    "qid": "BIGINT",
    "ingest_id": "BIGINT",
    "received_at": "TIMESTAMPTZ",
    "origin": "VARCHAR",
    "file": "VARCHAR",
    "line": "BIGINT",
    "batch": "BIGINT",
    "row": "BIGINT",
    "reason": "VARCHAR",
    "event_id": "VARCHAR",
    "type": "VARCHAR",
    "lead_id": "VARCHAR",
    "raw": "VARCHAR",
}
QUARANTINE_COLUMNS = tuple(QUARANTINE_TYPES)
_QUARANTINE_DDL = ",\n    ".join(f'"{n}" {t}' for n, t in QUARANTINE_TYPES.items())

DDL = f"""
CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS events (
    {_EVENTS_DDL}
);
CREATE TABLE IF NOT EXISTS snapshots (
    snapshot_id BIGINT NOT NULL, h1 UBIGINT NOT NULL,
    lead_snapshot JSON NOT NULL{_ZSTD}
);
CREATE TABLE IF NOT EXISTS quarantine (
    {_QUARANTINE_DDL}
);
CREATE TABLE IF NOT EXISTS lead_summary_parts (
    {_SUMMARY_DDL}
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
    received BIGINT, stored BIGINT, duplicates BIGINT, quarantined BIGINT, state VARCHAR
);
CREATE TABLE IF NOT EXISTS ledger (
    batch_id BIGINT, ingest_id BIGINT, first_seq BIGINT, last_seq BIGINT, events BIGINT,
    first_qid BIGINT, last_qid BIGINT, quarantined BIGINT,
    head_hash UBIGINT, seal VARCHAR, sealed_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS tier_files (
    move_id BIGINT, tier VARCHAR, path VARCHAR, events BIGINT, min_seq BIGINT,
    max_seq BIGINT, min_ts TIMESTAMPTZ, max_ts TIMESTAMPTZ, bytes BIGINT, sha256 VARCHAR
);
CREATE TABLE IF NOT EXISTS tier_moves (
    move_id BIGINT, from_tiers VARCHAR, to_tier VARCHAR, cutoff TIMESTAMPTZ,
    state VARCHAR, events BIGINT, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ
);
"""


# --------------------------------------------------------------------------- digests


def _part(expr: str) -> str:
    # length-prefixed, so no value can run into the next; NULL differs from ''
    return f"coalesce(CAST(length({expr}) AS VARCHAR) || ':' || {expr}, '-')"


def _as_text(column: str, sql_type: str, ref: str) -> str:
    """One column as text, the same whether read from the table or from a tier file."""
    if sql_type.startswith("TIMESTAMPTZ"):
        return f"CAST(epoch_ms({ref}) AS VARCHAR)"
    if sql_type.startswith("DOUBLE"):
        return f"printf('%.17g', {ref})"
    return f"CAST({ref} AS VARCHAR)"


def content_text_sql(prefix: str = "", *, columns=None, normal_json: bool = False) -> str:
    """SQL of an event's canonical text: every record and derived column but ``seq``,
    each length-prefixed, so the text changes whenever any stored fact does. With
    ``normal_json``, JSON is compared as DuckDB re-writes it (no insignificant spaces)."""
    types = {**RECORD_TYPES, **DERIVED_TYPES}
    names = columns or [c for c in types if c != "seq"]

    def ref(c: str) -> str:
        if normal_json and c in JSON_FIELDS:
            x = f"CAST({prefix}{c} AS VARCHAR)"
            return f"CASE WHEN json_valid({x}) THEN CAST(json({x}) AS VARCHAR) ELSE {x} END"
        return f"{prefix}{c}"

    parts = [_part(_as_text(c, types[c], ref(c))) for c in names]
    return "concat(" + ", '|', ".join(parts) + ")"


#: SQL of an event's SHA-256 digest (hex), over its canonical text.
EVENT_DIGEST_SQL = f"sha256({content_text_sql()})"

#: SQL of a quarantined row's SHA-256 digest (hex), over every column.
QUARANTINE_DIGEST_SQL = (
    "sha256(concat("
    + ", '|', ".join(_part(_as_text(c, t, f'"{c}"')) for c, t in QUARANTINE_TYPES.items())
    + "))"
)
