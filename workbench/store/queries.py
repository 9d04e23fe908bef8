"""The reads every layer shares: event filters, the timeline of one lead, JSON decoding.

Each builder returns SQL over a relation named ``events`` plus bound parameters, so the
store runs it over its raw view and a Session over its masked one, with the same text.

>>> q, params = events_query(type="recipient.*", limit=5)
>>> q
'SELECT * FROM events WHERE (starts_with(type, ?)) ORDER BY timestamp, seq LIMIT ?'
>>> params
['recipient.', 5]
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd
import pyarrow as pa

from ..timeutil import as_utc
from .schema import PUBLIC_COLUMNS

__all__ = [
    "events_query",
    "timeline_query",
    "hot_timeline",
    "lead_ranges",
    "decode",
    "frame",
    "EVENT_FILTERS",
]

#: The filters ``events()`` takes, in order.
EVENT_FILTERS = ("type", "outcome", "lead_id", "entity_id", "flow_id", "since", "until", "limit")


def events_query(
    type: str | Sequence[str] | None = None,
    outcome: str | Sequence[str] | None = None,
    lead_id: str | None = None,
    entity_id: str | None = None,
    flow_id: str | None = None,
    since=None,
    until=None,
    limit: int | None = None,
) -> tuple[str, list]:
    """``events()``'s filters as SQL over a relation ``events``, values bound.

    ``type`` may end in ``.*`` (``"recipient.*"``); ``until`` is exclusive."""
    where, params = [], []
    for col, value in (("type", type), ("outcome", outcome)):
        if value is None:
            continue
        values = [value] if isinstance(value, str) else list(value)
        ors = []
        for v in values:
            if not isinstance(v, str):
                raise ValueError(f"{col}={v!r}: give text, e.g. {col}='recipient.delivered'")
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
            params.append(str(value))
    if since is not None:
        where.append("timestamp >= ?")
        params.append(as_utc(since, "since"))
    if until is not None:
        where.append("timestamp < ?")
        params.append(as_utc(until, "until"))
    q = "SELECT * FROM events"
    if where:
        q += " WHERE " + " AND ".join(where)
    q += " ORDER BY timestamp, seq"
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit must be a whole number >= 0, got {limit!r}")
        q += " LIMIT ?"
        params.append(int(limit))
    return q, params


def merge_ranges(ranges, gap: int = 250_000) -> list[tuple[int, int]]:
    """Seq ranges merged where they are closer than ``gap`` (one scan instead of two)."""
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo - out[-1][1] <= gap:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(a, b) for a, b in out]


def lead_ranges(con, lead_id: str, db: str | None = None) -> list[tuple[int, int]]:
    """The seq ranges holding one lead's events, from its summary parts (merged)."""
    if not isinstance(lead_id, str):
        raise ValueError(f"lead_id must be text such as 'lead_5T8nK3mP9Q2wR7xN', not {lead_id!r}")
    parts_table = "lead_summary_parts" if db is None else f'"{db}".main.lead_summary_parts'
    ranges = con.rows(
        f"SELECT min_seq, max_seq FROM {parts_table} WHERE lead_id = ? ORDER BY min_seq",
        [lead_id],
    )
    return merge_ranges(ranges)


def timeline_query(con, lead_id: str, db: str | None = None, *, ranges=None):
    """The SQL (over a relation ``events``) and parameters reading one lead's events,
    through the seq ranges its summary parts record (so DuckDB reads only the row groups
    holding them); ``(None, [])`` when the lead is unknown. ``db`` names the store's
    database when ``con`` has others attached."""
    ranges = lead_ranges(con, lead_id, db) if ranges is None else ranges
    if not ranges:
        return None, []
    parts, params = [], []
    for lo, hi in ranges:
        parts.append("SELECT * FROM events WHERE lead_id = ? AND seq BETWEEN ? AND ?")
        params += [lead_id, lo, hi]
    return " UNION ALL ".join(parts) + " ORDER BY timestamp, seq", params


def hot_timeline(con, db: str, lead_id: str, ranges) -> pa.Table:
    """One lead's events read from the hot table itself (every range in it), as the
    ``events`` relation gives them: the lead's few narrow rows, then their snapshots by
    id. A snapshot's id is the seq of the first event that carried it, so the lead's ids
    span a few rows of ``snapshots`` and DuckDB skips every other row group."""
    parts, params = [], []
    for lo, hi in ranges:
        parts.append(f'SELECT * FROM "{db}".main.events WHERE lead_id = ? AND seq BETWEEN ? AND ?')
        params += [lead_id, lo, hi]
    q = " UNION ALL ".join(parts) + " ORDER BY timestamp, seq"
    rows = con.raw.sql(q, params=params).to_arrow_table()
    ids = rows.column("snapshot_id")
    found: dict[int, str] = {}
    wanted = sorted({i for i in ids.to_pylist() if i is not None})
    if wanted:
        # one lookup per id (each skips to its own row group: a lead may share a snapshot
        # with a much older event), grouped as the events relation reads them
        one = f'SELECT snapshot_id, lead_snapshot FROM "{db}".main.snapshots WHERE snapshot_id = ?'
        found = dict(
            con.rows(
                "SELECT snapshot_id, any_value(lead_snapshot) FROM ("
                + " UNION ALL ".join([one] * len(wanted))
                + ") GROUP BY snapshot_id",
                wanted,
            )
        )
    texts = pa.array([found.get(i) for i in ids.to_pylist()], pa.string())
    json_type = rows.schema.field("metadata").type  # the JSON type DuckDB gives
    if isinstance(json_type, pa.BaseExtensionType):
        texts = pa.ExtensionArray.from_storage(json_type, texts)
    return pa.table({c: texts if c == "lead_snapshot" else rows.column(c) for c in PUBLIC_COLUMNS})


_NULLABLE_INTS = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
}


def frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table of a few rows and many columns (a timeline) as a DataFrame;
    integer columns holding nulls become pandas' nullable integers, as ``df()`` gives."""
    df = table.to_pandas(split_blocks=True)
    for name, column in zip(table.column_names, table.columns, strict=True):
        if column.null_count and pa.types.is_integer(column.type):
            df[name] = column.to_pandas(types_mapper=_NULLABLE_INTS.get)
    return df


def _loads(v):
    if not isinstance(v, str):
        return None
    try:
        return json.loads(v)
    except (ValueError, RecursionError):
        # stored JSON always parses; a document too deep for Python is shown as text
        return {"_unreadable": "the stored JSON is nested too deeply to show"}


def decode(df: pd.DataFrame) -> pd.DataFrame:
    """JSON columns of a record read as dicts (few rows: timelines, filtered events)."""
    for col in ("metadata", "lead_snapshot"):
        if col in df.columns:
            df[col] = pd.Series([_loads(v) for v in df[col]], index=df.index, dtype=object)
    return df
