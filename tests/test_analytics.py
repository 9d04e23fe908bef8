"""The guide's analyses on a small flow whose answers are known by hand."""

import datetime as dt

import pandas as pd
import pytest

from workbench import analytics, catalog
from workbench.analysis import portable as _portable

from .conftest import make_event

DAY1 = dt.datetime(2026, 1, 14, 14, tzinfo=dt.UTC)  # 08:00 in Chicago (CST)
DAY2 = DAY1 + dt.timedelta(days=1)


def lead(
    lead_id,
    source,
    at,
    *,
    accepted=True,
    enhanced=True,
    buyer="Buyer A",
    delivered=True,
    filtered=None,
    converted_at=None,
    error=None,
):
    """One lead's events: the guide's timeline with the given fate."""
    ev = []
    t = at

    def add(type_, ms=20, outcome=None, **meta):
        nonlocal t
        m = catalog.example_metadata(type_)
        m.update(meta)
        ev.append(
            make_event(
                type_,
                lead_id=lead_id,
                at=t,
                duration_ms=ms,
                metadata=m,
                entity_id=None,
                step_id=None,
                outcome=outcome,
            )
        )
        t += dt.timedelta(milliseconds=ms)

    add("source.submitted", source=source)
    if not accepted:
        add(
            "source.rejected",
            source=source,
            rejection_reason="Invalid phone format: expected 10 digits, got 9",
        )
        return ev
    add("source.accepted", source=source, cost=2.0)
    if error:
        add(
            "enhancement.error",
            ms=5000,
            service="Phone Validation",
            error_type="timeout",
            http_status=504,
        )
        add(
            "retry.attempted",
            original_failure="timeout",
            retry_count=1,
            retry_result="success",
            elapsed_ms=5100,
            outcome="success",
        )
    if enhanced:
        add("enhancement.success", service="Phone Validation", cost=0.5)
    if filtered:
        add("filter.failed", filter="Service Area", rejection_reason=filtered)
        return ev
    if delivered:
        add("recipient.delivered", ms=300, recipient=buyer, revenue=40.0)
    else:
        add("recipient.failed", ms=300, recipient=buyer, rejection_reason="Duplicate lead")
    add("flow.completed", ms=400)
    if converted_at:
        t = converted_at
        add("feedback.received", recipient=buyer, feedback_type="conversion")
    return ev


@pytest.fixture
def flow(store):
    events = []
    # Acme: 4 leads, 3 delivered (one converts the next day), 1 buyer-rejected
    events += lead("a1", "Acme", DAY1, converted_at=DAY2 + dt.timedelta(hours=1))
    events += lead("a2", "Acme", DAY1 + dt.timedelta(minutes=1))
    events += lead("a3", "Acme", DAY1 + dt.timedelta(minutes=2), error=True)
    events += lead("a4", "Acme", DAY1 + dt.timedelta(minutes=3), delivered=False, buyer="Buyer B")
    # Budget: 3 leads, 1 rejected at source, 1 filtered, 1 delivered without enhancement
    events += lead("b1", "Budget", DAY1 + dt.timedelta(minutes=4), accepted=False)
    events += lead("b2", "Budget", DAY1 + dt.timedelta(minutes=5), filtered="Outside service area")
    events += lead("b3", "Budget", DAY1 + dt.timedelta(minutes=6), enhanced=False, buyer="Buyer B")
    r = store.append(events)
    assert r.quarantined == 0
    return store


def test_funnel_by_submission_date_credits_late_conversions_to_the_lead(flow):
    f = analytics.funnel_by_source(flow, since=DAY1.date(), until=DAY2.date()).set_index("source")
    assert f.attrs["date_basis"] == "submission date"
    assert f.loc["Acme", ["submitted", "accepted", "delivered", "converted"]].tolist() == [
        4,
        4,
        3,
        1,
    ]
    assert f.loc["Budget", ["submitted", "accepted", "delivered", "converted"]].tolist() == [
        3,
        2,
        1,
        0,
    ]
    assert f.loc["Acme", "delivered_rate"] == 0.75


def test_funnel_by_event_date_counts_the_conversion_on_its_own_day(flow):
    day1 = analytics.funnel_by_source(flow, basis="event", since=DAY1.date(), until=DAY2.date())
    day2 = analytics.funnel_by_source(
        flow, basis="event", since=DAY2.date(), until=DAY2.date() + dt.timedelta(days=1)
    )
    assert day1.attrs["date_basis"] == "event date"
    assert day1.set_index("source").loc["Acme", "converted"] == 0
    assert day2.set_index("source").loc["Acme", "converted"] == 1


def test_source_performance(flow):
    p = analytics.source_performance(flow).set_index("source")
    acme = p.loc["Acme"]
    assert (acme.submitted, acme.accepted, acme.delivered) == (4, 4, 3)
    assert acme.acceptance_rate == 1.0 and acme.delivery_rate == 0.75
    assert acme.enhancement_cost == pytest.approx(4 * 0.5)
    assert acme.revenue == pytest.approx(120.0)
    assert acme.profit == pytest.approx(120.0 - 4 * 2.0 - 4 * 0.5)
    budget = p.loc["Budget"]
    assert budget.acceptance_rate == pytest.approx(2 / 3)
    assert budget.profit == pytest.approx(40.0 - 2 * 2.0 - 0.5)
    # by event date the same week gives the same money
    e = analytics.source_performance(flow, basis="event").set_index("source")
    assert e.loc["Acme", "profit"] == pytest.approx(acme.profit)


def test_enhancement_value_compares_delivery_with_and_without(flow):
    v = analytics.enhancement_value(flow, "Phone Validation").set_index("group")
    # with: a1 a2 a3 (delivered) a4 (buyer rejected) b2 (filtered) -> 3/5; b3 never
    # reached the step, so it is no "without" lead: nothing to compare with
    assert v.loc["with", "leads"] == 5 and v.loc["with", "delivery_rate"] == pytest.approx(0.6)
    assert "without" not in v.index and v.attrs["not_reached"] == 1
    assert v.loc["with", "cost_per_lead"] == pytest.approx(0.5)
    assert pd.isna(v.attrs["delivery_rate_uplift"]) and v.loc["with", "added_revenue"] == 0
    assert v.attrs["date_basis"] == "submission date"


def test_success_rates_is_the_guide_query(flow):
    r = analytics.success_rates(flow).set_index(["type", "outcome"])
    assert r.loc[("recipient.delivered", "success"), "count"] == 4
    assert r.loc[("recipient.failed", "failure"), "percentage"] == 100.0


def test_rejection_analysis_shares_and_sources(flow):
    r = analytics.rejection_analysis(flow)
    assert set(r.stage) == {"source.rejected", "filter.failed", "recipient.failed"}
    assert r.groupby("stage").share.sum().tolist() == [1.0, 1.0, 1.0]
    only = analytics.rejection_analysis(flow, "filter.failed", by_source=True)
    assert only[["rejection_reason", "source", "rejections"]].values.tolist() == [
        ["Outside service area", "Budget", 1]
    ]
    with pytest.raises(ValueError, match="not rejection events"):
        analytics.rejection_analysis(flow, "flow.completed")


def test_buyer_behaviour(flow):
    b = analytics.buyer_behaviour(flow).set_index("recipient")
    assert b.loc["Buyer A", "acceptance_rate"] == 1.0
    assert b.loc["Buyer B", "acceptance_rate"] == 0.5
    assert b.loc["Buyer A", "conversions"] == 1
    assert b.loc["Buyer A", "revenue_per_lead"] == 40.0
    assert b.loc["Buyer A", "avg_response_ms"] == 300


def test_buyer_acceptance_by_local_hour(flow):
    h = analytics.buyer_acceptance_by_hour(flow, tz="America/Chicago")
    assert set(h.hour) == {8} and h.attrs["tz"] == "America/Chicago"
    utc = analytics.buyer_acceptance_by_hour(flow)
    assert set(utc.hour) == {14}
    with pytest.raises(ValueError, match="unknown time zone"):
        analytics.buyer_acceptance_by_hour(flow, tz="Mars/Olympus")


def test_buyer_rejection_reasons(flow):
    r = analytics.buyer_rejection_reasons(flow)
    assert r.values.tolist() == [["Buyer B", "Duplicate lead", 1, 1.0]]


def test_step_durations_leave_out_the_flow_total(flow):
    d = analytics.step_durations(flow).set_index("step_name")
    assert "flow.completed" not in d.index
    assert d.loc["Phone Validation", "max_duration"] == 5000
    samples = analytics.step_duration_samples(flow, max_rows=10)
    assert 1 <= len(samples) <= 40 and samples.attrs["every"] >= 1


def test_intermittent_failures(flow):
    e = analytics.errors_by_type(flow)
    assert e[["entity_name", "error_type", "errors", "max_http_status"]].values.tolist() == [
        ["Phone Validation", "timeout", 1, 504]
    ]
    t = analytics.timeouts_over_time(flow)
    assert t.timeouts.sum() == 1 and (t.timeout_rate <= 1).all()
    r = analytics.retry_effectiveness(flow)
    assert (r.retry_count.tolist(), r.retries.tolist(), r.success_rate.tolist()) == (
        [1],
        [1],
        [1.0],
    )
    with pytest.raises(ValueError, match="bucket"):
        analytics.timeouts_over_time(flow, bucket="fortnight")


def test_time_patterns(flow):
    h = analytics.events_by_hour(flow, "source.%", tz="America/Chicago")
    assert set(h.hour) == {8}
    assert h.set_index("type").loc["source.rejected", "failure_rate"] == 1.0
    b = analytics.business_hours_check(flow, tz="America/Chicago", open_hour=9, close_hour=17)
    assert not b.business_hours.any()  # 08:00 is before opening


def test_lead_paths(flow):
    p = analytics.lead_paths(flow)
    assert p.leads.sum() == 7
    assert set(p.outcome) >= {"delivered", "rejected", "filtered", "buyer_rejected", "converted"}


def test_windows_and_bases_are_checked(flow):
    with pytest.raises(ValueError, match="basis"):
        analytics.funnel_by_source(flow, basis="weekday")
    with pytest.raises(ValueError, match="ISO-8601"):
        analytics.step_durations(flow, since="last week")
    assert analytics.step_durations(flow, since=DAY2 + dt.timedelta(hours=2)).empty


@pytest.mark.parametrize("name", sorted(analytics.QUERIES))
def test_every_analysis_is_written_in_the_shared_sql(name):
    sql = analytics.QUERIES[name]
    _portable.check(sql)
    spark = _portable.render(sql, "spark")
    assert "json_extract" not in spark and "json_field" not in spark
    if "json_field" in sql:
        assert "get_json_object(" in spark


def test_the_portability_check_catches_what_spark_reads_differently():
    for bad in (
        "SELECT 100.0 * x FROM t",
        'SELECT "timestamp" FROM t',
        "SELECT a FROM t GROUP BY ALL",
        "SELECT * FROM t QUALIFY x",
        "SELECT metadata->>'a' FROM t",
        "SELECT now()",
        "SELECT json_extract_string(m, '$.a') FROM t",
    ):
        with pytest.raises(_portable.PortabilityError):
            _portable.check(bad)
    _portable.check("SELECT 'it''s 100.0 \"fine\" in a string' FROM t")


def test_results_say_what_they_are(flow):
    df = analytics.source_performance(flow)
    assert df.attrs["title"] == "Source performance" and "FROM lead_summary" in df.attrs["sql"]
    assert isinstance(df, pd.DataFrame)


def test_success_rates_by_step_compare_buyers(flow):
    r = analytics.success_rates(flow, by="step").set_index(["step_name", "outcome"])
    # Buyer A delivered a1 a2 a3; Buyer B rejected a4 and delivered b3
    assert r.loc[("Buyer A", "success"), "percentage"] == 100.0
    assert r.loc[("Buyer B", "success"), "percentage"] == 50.0
    assert r.loc[("Buyer B", "failure"), "count"] == 1
    with pytest.raises(ValueError, match="by='buyer'"):
        analytics.success_rates(flow, by="buyer")
