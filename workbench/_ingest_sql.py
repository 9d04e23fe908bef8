"""The SQL that takes a batch of incoming events into the store, in two streaming passes.

Both passes read the registered Arrow batch ``_in`` through the same normalising
SELECT (:func:`normalise_sql`), so no copy of the batch is materialised:

1. **classify** returns, per input row, the reason it cannot be stored (NULL when it
   can), its ``id_hash`` (for duplicate checks) and its ``content_hash`` (for the hash
   chain). The store decides duplicates and computes seq and chain hashes in numpy,
   then appends them to the batch as columns ``_seq`` and ``_chain``.
2. **insert** stores the rows that have a ``_seq``, deriving the typed columns
   analyses group by from one parse of each metadata object.

The catalogue enters as constant MAP literals (type -> category, outcomes, required
keys), so no join disturbs the batch's order.
"""

from __future__ import annotations

import json

import pyarrow as pa

from . import _chain, _inputs

# --------------------------------------------------------------------- lines -> columns

# One JSON text per line -> the record's fields, parsed once. A line that does not parse,
# or is not an object, keeps NULL fields and a reason.
_KNOWN_KEYS = ", ".join(f"'{k}'" for k in (*_inputs.RECORD_FIELDS, *sorted(_inputs.STORE_FIELDS)))
_SCALARS = (
    "event_id",
    "type",
    "lead_id",
    "flow_id",
    "entity_id",
    "step_id",
    "outcome",
    "duration_ms",
)
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
                lambda k: struct_pack(k := k, v := json_extract(line, '$."' || k || '"')))))::VARCHAR
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
    passthrough = [c for c in ("_seq", "_chain", *DERIVED) if c in names]
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
        WHEN ts_direct IS NULL AND blank(ts_text) THEN 'missing timestamp'
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
    "$.recipient", "$.recipient.name", "$.service", "$.service.name", "$.filter",
    "$.filter.name", "$.source", "$.source.name", "$.rejection_reason", "$.reason",
    "$.error_type", "$.http_status", "$.response.status", "$.cost", "$.revenue", "$.price",
    "$.buyer_response.price", "$.step_name", "$.feedback_type", "$.retry_count",
]  # fmt: skip
_M = {p[2:]: i + 1 for i, p in enumerate(_META_PATHS)}


def _m(path: str) -> str:
    return f"m[{_M[path]}]"


def _name(plain: str, nested: str) -> str:
    # a name given as an object ({"name": ...}) or as plain text
    return f"CASE WHEN starts_with({_m(plain)}, '{{') THEN {_m(nested)} ELSE {_m(plain)} END"


#: Typed columns derived at ingest (the store's DERIVED_COLUMNS), computed by classify.
DERIVED = (
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


def classify_sql(norm: str, step_names: dict[str, str], entity_names: dict[str, str]) -> str:
    """Per input row, in input order: position, reason (NULL when it can be stored), id
    hash, content hash and the typed columns, reading each metadata object once."""
    steps = _map_literal(step_names, _sql_text)
    entities = _map_literal(entity_names, _sql_text)
    paths = "[" + ", ".join(f"'{p}'" for p in _META_PATHS) + "]"
    return f"""
SELECT _pos, reason, hash(event_id) AS id_hash,
    CASE WHEN reason IS NULL THEN {_chain.content_hash_sql()} END AS content_hash,
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
"""


def insert_sql(norm: str) -> str:
    """INSERT the rows of the batch that were given a ``_seq`` (with their typed columns)."""
    return f"""
INSERT INTO events
SELECT _seq, event_id, type, timestamp, lead_id, flow_id, entity_id, step_id, outcome,
    duration_ms, metadata, lead_snapshot, {", ".join(DERIVED)}, hash(event_id), _chain
FROM ({norm})
WHERE _seq IS NOT NULL
"""


# The per-lead summary part of the events just stored (seq range), from typed columns;
# JSON is read only for the few events that carry the feedback type or final outcome.
INSERT_SUMMARY_SQL = """
INSERT INTO lead_summary_parts
SELECT
    lead_id,
    any_value(flow_id),
    arg_min(entity_name, timestamp) FILTER (WHERE starts_with(type, 'source.')),
    arg_min(entity_id, timestamp) FILTER (WHERE starts_with(type, 'source.')),
    min(timestamp) FILTER (WHERE type = 'source.submitted'),
    min(timestamp),
    max(timestamp),
    bool_or(type = 'source.submitted'),
    bool_or(type = 'source.accepted'),
    bool_or(type = 'source.rejected'),
    bool_or(type = 'filter.failed' AND outcome = 'failure'),
    bool_or(type = 'recipient.delivered' AND outcome = 'success'),
    bool_or(type = 'recipient.failed' AND outcome = 'failure'),
    bool_or(type = 'recipient.error'),
    bool_or(feedback = 'conversion'),
    bool_or(feedback = 'return'),
    bool_or(type = 'flow.completed'),
    arg_max(final_outcome, timestamp) FILTER (WHERE type = 'flow.completed'),
    arg_max(entity_name, timestamp) FILTER (WHERE type = 'recipient.delivered' AND outcome = 'success'),
    sum(cost) FILTER (WHERE starts_with(type, 'source.')),
    sum(cost) FILTER (WHERE starts_with(type, 'enhancement.')),
    sum(cost) FILTER (WHERE NOT starts_with(type, 'source.') AND NOT starts_with(type, 'enhancement.')),
    sum(revenue) FILTER (WHERE type = 'recipient.delivered' AND outcome = 'success'),
    count(*),
    count(*) FILTER (WHERE outcome = 'error'),
    min(seq),
    max(seq)
FROM (
    SELECT *,
        CASE WHEN type = 'feedback.received' THEN feedback_type END AS feedback,
        CASE WHEN type = 'flow.completed' THEN metadata->>'$.final_outcome' END AS final_outcome
    FROM events WHERE seq BETWEEN $first AND $last
)
GROUP BY lead_id
"""
