"""The per-lead summary: one row per lead (source, stage reached, outcome, cost, revenue).

Each stored batch appends one *part* per lead it touched (``lead_summary_parts``, which
also indexes timelines by seq range); compaction folds the parts into one row per lead
(``lead_summary_compact``, up to seq ``compacted_through``), so reading the summary
merges only the few parts that came since instead of grouping every part.

``verify()`` recomputes every part from the events (:func:`summary_problem`), so an
edited summary row is found like an edited event.
"""

from __future__ import annotations

from .schema import SUMMARY_PART_TYPES

__all__ = [
    "lead_summary_select",
    "PARTS_SELECT",
    "INSERT_PARTS_SQL",
    "compact",
    "maybe_compact",
    "summary_problem",
]

#: How each part column merges with another part of the same lead.
PART_MERGE = {
    "flow_id": "min",
    "source": "max",
    "source_id": "max",
    "submitted_at": "min",
    "first_ts": "min",
    "last_ts": "max",
    "submitted": "bool_or",
    "accepted": "bool_or",
    "source_rejected": "bool_or",
    "filtered": "bool_or",
    "delivered": "bool_or",
    "buyer_rejected": "bool_or",
    "delivery_error": "bool_or",
    "converted": "bool_or",
    "returned": "bool_or",
    "completed": "bool_or",
    "final_outcome": "max",
    "recipient": "max",
    "lead_cost": "sum",
    "enhancement_cost": "sum",
    "other_cost": "sum",
    "revenue": "sum",
    "events": "sum",
    "errors": "sum",
    "min_seq": "min",
    "max_seq": "max",
}
assert set(PART_MERGE) | {"lead_id"} == set(SUMMARY_PART_TYPES)
PART_COLUMNS = "lead_id, " + ", ".join(PART_MERGE)


def _merged(column: str, fn: str) -> str:
    sql_type = SUMMARY_PART_TYPES[column].replace(" NOT NULL", "")
    if fn == "sum" or column.endswith("_seq"):
        return f"CAST({fn}({column}) AS {sql_type}) AS {column}"
    return f"{fn}({column}) AS {column}"


MERGE_SELECT = "lead_id, " + ", ".join(_merged(c, fn) for c, fn in PART_MERGE.items())

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
    compact_table = f'"{db}".main.lead_summary_compact'
    through = int(compacted_through)
    return f"""
SELECT {_SUMMARY_COLUMNS} FROM (
    SELECT {PART_COLUMNS} FROM {compact_table}
    WHERE lead_id NOT IN (SELECT lead_id FROM {parts} WHERE min_seq > {through})
    UNION ALL
    SELECT {MERGE_SELECT} FROM (
        SELECT {PART_COLUMNS} FROM {compact_table}
        WHERE lead_id IN (SELECT lead_id FROM {parts} WHERE min_seq > {through})
        UNION ALL
        SELECT {PART_COLUMNS} FROM {parts} WHERE min_seq > {through}
    )
    GROUP BY lead_id
)
"""


# The summary part of the events of one batch (``batch`` groups them), from typed
# columns; JSON is read only for the few events that carry the final outcome. Ties in
# time are broken by seq, so the same events always give the same part.
_PART_AGGREGATES = """
    lead_id,
    arg_min(flow_id, seq) AS flow_id,
    arg_min(entity_name, (timestamp, seq)) FILTER (WHERE starts_with(type, 'source.')) AS source,
    arg_min(entity_id, (timestamp, seq)) FILTER (WHERE starts_with(type, 'source.')) AS source_id,
    min(timestamp) FILTER (WHERE type = 'source.submitted') AS submitted_at,
    min(timestamp) AS first_ts,
    max(timestamp) AS last_ts,
    bool_or(type = 'source.submitted') AS submitted,
    bool_or(type = 'source.accepted') AS accepted,
    bool_or(type = 'source.rejected') AS source_rejected,
    bool_or(type = 'filter.failed' AND outcome = 'failure') AS filtered,
    bool_or(type = 'recipient.delivered' AND outcome = 'success') AS delivered,
    bool_or(type = 'recipient.failed' AND outcome = 'failure') AS buyer_rejected,
    bool_or(type = 'recipient.error') AS delivery_error,
    bool_or(feedback = 'conversion') AS converted,
    bool_or(feedback = 'return') AS returned,
    bool_or(type = 'flow.completed') AS completed,
    arg_max(final_outcome, (timestamp, seq)) FILTER (WHERE type = 'flow.completed') AS final_outcome,
    arg_max(entity_name, (timestamp, seq))
        FILTER (WHERE type = 'recipient.delivered' AND outcome = 'success') AS recipient,
    sum(cost) FILTER (WHERE starts_with(type, 'source.')) AS lead_cost,
    sum(cost) FILTER (WHERE starts_with(type, 'enhancement.')) AS enhancement_cost,
    sum(cost) FILTER (WHERE NOT starts_with(type, 'source.')
                      AND NOT starts_with(type, 'enhancement.')) AS other_cost,
    sum(revenue) FILTER (WHERE type = 'recipient.delivered' AND outcome = 'success') AS revenue,
    CAST(count(*) AS INTEGER) AS events,
    CAST(count(*) FILTER (WHERE outcome = 'error') AS INTEGER) AS errors,
    min(seq) AS min_seq,
    max(seq) AS max_seq
"""
_PART_INPUT = """
    SELECT *,
        CASE WHEN type = 'feedback.received' THEN feedback_type END AS feedback,
        CASE WHEN type = 'flow.completed' THEN metadata->>'$.final_outcome' END AS final_outcome
"""

#: The parts of the events just stored (seq $first..$last of the hot table).
INSERT_PARTS_SQL = f"""
INSERT INTO lead_summary_parts
SELECT {_PART_AGGREGATES}
FROM ({_PART_INPUT} FROM events WHERE seq BETWEEN $first AND $last)
GROUP BY lead_id
"""


def PARTS_SELECT(events_source: str) -> str:  # noqa: N802 - reads as the constant it builds
    """Every part recomputed from ``events_source`` (events of every tier), one per
    lead per ledger batch, as ``append()`` made them."""
    return f"""
SELECT {_PART_AGGREGATES}
FROM (
    {_PART_INPUT}, l.first_seq AS batch
    FROM ({events_source}) e ASOF JOIN (SELECT first_seq FROM ledger WHERE events > 0) l
        ON e.seq >= l.first_seq
)
GROUP BY batch, lead_id
"""


def summary_problem(con, events_source: str) -> str | None:
    """Compare the stored summary with one recomputed from the events; the first
    difference, in words, or None. Money is compared to a millionth (sums of the same
    numbers in another order differ in the last bits)."""
    cols = [c for c in SUMMARY_PART_TYPES if c != "lead_id"]

    def differs(c: str) -> str:
        if SUMMARY_PART_TYPES[c].startswith("DOUBLE"):
            return (
                f"(s.{c} IS NULL) != (r.{c} IS NULL) "
                f"OR abs(s.{c} - r.{c}) > 1e-6 * greatest(1, abs(r.{c}))"
            )
        return f"s.{c} IS DISTINCT FROM r.{c}"

    checks = " OR ".join(f"({differs(c)})" for c in cols)
    row = con.one(
        f"""
        SELECT coalesce(s.lead_id, r.lead_id), s.lead_id IS NULL, r.lead_id IS NULL,
               coalesce(s.min_seq, r.min_seq)
        FROM lead_summary_parts s
        FULL OUTER JOIN ({PARTS_SELECT(events_source)}) r
            ON s.lead_id = r.lead_id AND s.min_seq = r.min_seq
        WHERE s.lead_id IS NULL OR r.lead_id IS NULL OR {checks}
        ORDER BY 4 LIMIT 1
        """
    )
    if row is not None:
        lead, missing, extra, _ = row
        if missing:
            return f"the summary of lead {lead} lacks a part its events make"
        if extra:
            return f"the summary of lead {lead} holds a part no stored events make"
        return f"the summary of lead {lead} does not match its events (it was changed)"
    merged = " OR ".join(f"({differs(c)})" for c in cols if c not in ("min_seq",))
    through = con.one("SELECT value FROM store_meta WHERE key = 'compacted_through'")
    through = int(through[0]) if through else 0
    row = con.one(
        f"""
        SELECT coalesce(s.lead_id, r.lead_id)
        FROM lead_summary_compact s
        FULL OUTER JOIN (
            SELECT {MERGE_SELECT} FROM lead_summary_parts WHERE max_seq <= {through}
            GROUP BY lead_id
        ) r ON s.lead_id = r.lead_id
        WHERE s.lead_id IS NULL OR r.lead_id IS NULL OR {merged} OR (s.min_seq != r.min_seq)
        LIMIT 1
        """
    )
    if row is not None:
        return f"the compacted summary of lead {row[0]} does not match its parts (it was changed)"
    return None


#: Compact when the parts since the last compaction exceed this many rows and this share
#: of the compacted leads: a few large compactions, never one per small append.
COMPACT_MIN_PARTS = 50_000
COMPACT_SHARE = 0.10


def compact(con) -> int:
    """Fold every part into one row per lead (inside a transaction); returns the leads."""
    through = con.val("SELECT coalesce(max(max_seq), 0) FROM lead_summary_parts")
    # one thread: a hash table per thread over a million leads doubled the peak
    con.run("SET threads = 1")
    con.run("BEGIN TRANSACTION")
    try:
        con.run("DELETE FROM lead_summary_compact")
        con.run(
            f"INSERT INTO lead_summary_compact ({PART_COLUMNS}) SELECT {MERGE_SELECT} "
            "FROM lead_summary_parts GROUP BY lead_id"
        )
        con.run("INSERT OR REPLACE INTO store_meta VALUES ('compacted_through', ?)", [str(through)])
        con.run("COMMIT")
    except BaseException:
        con.run("ROLLBACK")
        raise
    finally:
        con.run("RESET threads")
    return int(con.val("SELECT count(*) FROM lead_summary_compact"))


def needs_compaction(con) -> bool:
    row = con.one("SELECT value FROM store_meta WHERE key = 'compacted_through'")
    through = int(row[0]) if row else 0
    fresh = con.val("SELECT count(*) FROM lead_summary_parts WHERE min_seq > ?", [through])
    compacted = con.val("SELECT count(*) FROM lead_summary_compact")
    return fresh >= COMPACT_MIN_PARTS and fresh >= COMPACT_SHARE * compacted


def maybe_compact(con) -> bool:
    if needs_compaction(con):
        compact(con)
        return True
    return False
