import datetime as dt

import pandas as pd
import pytest

import workbench
from workbench import ReadOnlyViolation

from .conftest import lead_events, make_event

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def filled(store):
    store.append(lead_events("lead_A", NOW - dt.timedelta(hours=2)))
    store.append(lead_events("lead_B", NOW - dt.timedelta(hours=1), delivered=False))
    store.append(lead_events("lead_old", NOW - dt.timedelta(days=3)))
    return store


def test_timeline_is_ordered_by_timestamp_then_seq(store):
    t = NOW - dt.timedelta(minutes=10)
    a = make_event("source.submitted", lead_id="lead_X", at=t + dt.timedelta(seconds=1))
    b = make_event("source.accepted", lead_id="lead_X", at=t + dt.timedelta(seconds=1))  # same ms
    c = make_event("flow.completed", lead_id="lead_X", at=t)
    store.append([a, b, c, make_event(lead_id="lead_other")])
    tl = store.timeline("lead_X")
    assert tl.event_id.tolist() == [c["event_id"], a["event_id"], b["event_id"]]
    assert isinstance(tl.metadata[0], dict) and isinstance(tl.lead_snapshot[0], dict)


def test_timeline_spans_appends_days_apart(store):
    store.append(lead_events("lead_A", NOW - dt.timedelta(days=2)))
    store.append([make_event(lead_id=f"lead_{i}") for i in range(50)])
    store.append([make_event("feedback.received", lead_id="lead_A", at=NOW)])
    tl = store.timeline("lead_A")
    assert len(tl) == 7 and tl.type.iloc[-1] == "feedback.received"


def test_timeline_of_an_unknown_lead_is_empty_with_columns(store):
    tl = store.timeline("lead_nobody")
    assert tl.empty and {"event_id", "type", "metadata"} <= set(tl.columns)


def test_events_filters(filled):
    assert len(filled.events(lead_id="lead_A")) == 6
    assert set(filled.events(type="recipient.*").type) == {
        "recipient.delivered",
        "recipient.failed",
    }
    assert set(filled.events(type=["source.submitted", "flow.completed"]).type) == {
        "source.submitted",
        "flow.completed",
    }
    assert filled.events(outcome="failure").lead_id.tolist() == ["lead_B"]
    assert len(filled.events(since=NOW - dt.timedelta(days=1))) == 12
    assert len(filled.events(until=(NOW - dt.timedelta(days=1)).isoformat())) == 6
    assert len(filled.events(limit=4)) == 4
    assert filled.events(entity_id="ent_nothing").empty
    # values are bound, not spliced: a quote in a value is just a value
    assert filled.events(lead_id="x' OR '1'='1").empty


def test_events_rejects_bad_arguments(filled):
    with pytest.raises(ValueError, match="not an ISO-8601"):
        filled.events(since="yesterday")
    with pytest.raises(ValueError, match="limit"):
        filled.events(limit=-1)


STEP_DURATION = """
SELECT
step_name,
AVG(duration_ms) as avg_duration,
MAX(duration_ms) as max_duration,
COUNT(*) as executions
FROM events
WHERE timestamp > NOW() - INTERVAL '24 hours'
GROUP BY step_name
ORDER BY avg_duration DESC
"""

SUCCESS_RATES = """
SELECT
type,
outcome,
COUNT(*) as count,
COUNT(*) * 100.0 / SUM(COUNT(*)) OVER (PARTITION BY type) as percentage
FROM events
WHERE type LIKE 'recipient.%'
GROUP BY type, outcome
"""


def test_guide_step_duration_query_runs_as_printed(filled):
    df = filled.sql(STEP_DURATION)
    assert list(df.columns) == ["step_name", "avg_duration", "max_duration", "executions"]
    assert df.executions.sum() == 12  # the 3-day-old lead is outside the 24 hours
    assert df.avg_duration.is_monotonic_decreasing
    assert "flow.completed" in set(df.step_name)


def test_guide_success_rates_query_runs_as_printed(filled):
    df = filled.sql(SUCCESS_RATES).sort_values("type")
    assert df.type.tolist() == ["recipient.delivered", "recipient.failed"]
    assert df.percentage.tolist() == [100.0, 100.0]
    assert df["count"].tolist() == [2, 1]


def test_sql_with_bound_parameters(filled):
    assert filled.sql("SELECT count(*) AS n FROM events WHERE lead_id = ?", ["lead_A"]).n[0] == 6
    assert (
        filled.sql("SELECT count(*) AS n FROM events WHERE lead_id = $lead", {"lead": "lead_B"}).n[
            0
        ]
        == 6
    )


@pytest.mark.parametrize(
    "query, word",
    [
        ("INSERT INTO events SELECT * FROM events", "INSERT"),
        ("UPDATE events SET outcome = 'success'", "UPDATE"),
        ("DELETE FROM events", "DELETE"),
        ("DROP TABLE events", "DROP"),
        ("ALTER TABLE events ADD COLUMN x INT", "ALTER"),
        ("CREATE TABLE x AS SELECT 1", "CREATE"),
        ("COPY events TO '/tmp/x.csv'", "COPY"),
        ("ATTACH '/tmp/other.duckdb' AS o", "ATTACH"),
        ("EXPORT DATABASE '/tmp/dump'", "EXPORT"),
        ("SET threads = 1", "SET"),
        ("SELECT 1; DELETE FROM events", "DELETE"),
        ("select 1;\n-- harmless?\nDrop table events;", "DROP"),
        ("CHECKPOINT", "CALL"),
        ("PRAGMA enable_profiling", "PRAGMA"),
        ("EXPLAIN ANALYZE DELETE FROM events", "EXPLAIN"),
        ("VACUUM", "VACUUM"),
        ("LOAD httpfs", "LOAD"),
        ("BEGIN TRANSACTION", "TRANSACTION"),
    ],
)
def test_sql_refuses_anything_that_writes(filled, query, word):
    with pytest.raises(ReadOnlyViolation, match=word):
        filled.sql(query)
    assert filled.count() == 18


def test_sql_refuses_writing_table_functions_and_multiple_selects(filled):
    with pytest.raises(ReadOnlyViolation, match="checkpoint"):
        filled.sql("SELECT * FROM checkpoint()")
    with pytest.raises(ReadOnlyViolation, match="one statement at a time"):
        filled.sql("SELECT 1; SELECT 2")
    with pytest.raises(ReadOnlyViolation, match="does not parse"):
        filled.sql("SELEC 1")
    with pytest.raises(ReadOnlyViolation, match="empty"):
        filled.sql("  ")


def test_sql_read_forms_are_allowed(filled):
    assert len(filled.sql("FROM events LIMIT 2")) == 2
    assert "column_name" in filled.sql("DESCRIBE events").columns
    assert len(filled.sql("WITH x AS (SELECT * FROM events) SELECT * FROM x")) == 18
    assert len(filled.sql("SELECT * FROM lead_summary")) == 3


def test_sql_errors_are_clear(filled):
    with pytest.raises(workbench.StoreError, match="no_such_column"):
        filled.sql("SELECT no_such_column FROM events")


def test_events_view_has_the_record_and_typed_columns_only(filled):
    cols = filled.sql("SELECT * FROM events LIMIT 1").columns.tolist()
    assert cols[:12] == [
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
    ]
    assert "id_hash" not in cols and "chain_hash" not in cols
    assert isinstance(filled.sql("SELECT timestamp FROM events LIMIT 1").timestamp[0], pd.Timestamp)
