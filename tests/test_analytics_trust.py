"""Analyses a person can trust: like-for-like comparisons, local hours in any zone,
errors counted once, returns told and counted, and outages that fire an alert."""

import datetime as dt

import pytest

from workbench import alerts, analytics, catalog, investigate
from workbench.analysis import business

from .conftest import make_event
from .test_analytics import lead

T0 = dt.datetime(2026, 1, 14, 14, tzinfo=dt.UTC)


def ev(type_, lead_id, at, *, outcome=None, ms=20, **meta):
    m = catalog.example_metadata(type_)
    m.update(meta)
    return make_event(
        type_,
        lead_id=lead_id,
        at=at,
        duration_ms=ms,
        metadata=m,
        entity_id=None,
        step_id=None,
        outcome=outcome,
    )


def stored(store, events):
    r = store.append(events)
    assert r.quarantined == 0, r
    return store


# --------------------------------------------------------------------------- 1 like for like


def test_enhancement_value_compares_only_leads_that_reached_the_step(store):
    events = []
    for i in range(3):  # validated and delivered
        events += lead(f"w{i}", "Acme", T0 + dt.timedelta(minutes=i))
    # reached the step, the provider found no match; the buyer rejected it
    events += lead("n1", "Acme", T0 + dt.timedelta(minutes=5), enhanced=False, delivered=False)
    events.insert(
        -2,
        ev(
            "enhancement.failure",
            "n1",
            T0 + dt.timedelta(minutes=5, milliseconds=50),
            service="Phone Validation",
            error_type="no_match",
        ),
    )
    # filtered before they could reach the step: not part of the comparison
    for i in range(2):
        events += lead(
            f"f{i}",
            "Budget",
            T0 + dt.timedelta(minutes=10 + i),
            enhanced=False,
            filtered="Outside service area",
        )
    v = analytics.enhancement_value(stored(store, events), "Phone Validation").set_index("group")
    assert v.loc["with", "leads"] == 3 and v.loc["with", "delivery_rate"] == 1.0
    assert v.loc["without", "leads"] == 1 and v.loc["without", "delivery_rate"] == 0.0
    assert v.attrs["not_reached"] == 2 and v.attrs["leads_compared"] == 4
    assert "reached Phone Validation" in v.attrs["compared"]
    assert "2 accepted leads never reached it" in v.attrs["compared"]
    assert v.loc["without", "compared"].startswith("accepted leads that reached Phone Validation")


# --------------------------------------------------------------------------- 2 local hours


def _hour_events(instants):
    out = []
    for i, at in enumerate(instants):
        out.append(ev("recipient.delivered", f"h{i}", at, outcome="success", recipient="Buyer A"))
        out.append(
            ev(
                "filter.failed",
                f"h{i}",
                at,
                outcome="failure",
                filter="Business Hours",
                rejection_reason="Outside business hours",
            )
        )
    return out


@pytest.mark.parametrize(
    "tz,instants,expected",
    [
        # +05:30: 00:15 UTC is 05:45, 00:45 and 01:15 UTC are 06:15 and 06:45
        (
            "Asia/Kolkata",
            ["2026-01-14T00:15", "2026-01-14T00:45", "2026-01-14T01:15"],
            {5: 1, 6: 2},
        ),
        # +09:30 / +10:30: 20:20 UTC is 05:50 (Jan, daylight time in the south)
        ("Australia/Adelaide", ["2026-01-14T20:20", "2026-01-14T20:40"], {6: 1, 7: 1}),
        # the spring-forward night: 01:30 EST, then 03:30 EDT (02:00-03:00 never happens)
        ("America/New_York", ["2026-03-08T06:30", "2026-03-08T07:30"], {1: 1, 3: 1}),
    ],
)
def test_hours_of_day_are_counted_in_the_local_zone(store, tz, instants, expected):
    at = [dt.datetime.fromisoformat(x).replace(tzinfo=dt.UTC) for x in instants]
    stored(store, _hour_events(at))
    hours = analytics.events_by_hour(store, "recipient.%", tz=tz).set_index("hour")
    assert hours.events.to_dict() == expected
    buyers = analytics.buyer_acceptance_by_hour(store, tz=tz).set_index("hour")
    assert buyers.decided.to_dict() == expected
    filters = analytics.business_hours_check(store, tz=tz).set_index("hour")
    assert filters.failed.to_dict() == expected


def test_an_unknown_time_zone_is_named():
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        analytics.events_by_hour(None, tz="Mars/Olympus")


# --------------------------------------------------------------------------- 3 errors once


def test_errors_count_each_failed_call_once_and_show_enhancement_outages(store):
    events = []
    t = T0
    for i in range(4):  # a buyer times out, is retried, and errs again
        events.append(
            ev(
                "recipient.error",
                f"e{i}",
                t,
                outcome="error",
                recipient="Buyer A",
                error_type="timeout",
                http_status=504,
            )
        )
        events.append(
            ev(
                "retry.attempted",
                f"e{i}",
                t + dt.timedelta(seconds=1),
                outcome="error",
                recipient="Buyer A",
                retry_count=1,
                retry_result="error",
                original_failure="timeout",
            )
        )
        t += dt.timedelta(minutes=1)
    for i in range(6):  # the phone provider is down
        events.append(
            ev(
                "enhancement.failure",
                f"p{i}",
                t,
                outcome="failure",
                service="Phone Validation",
                error_type="provider_unavailable",
            )
        )
    errors = analytics.errors_by_type(stored(store, events))
    assert "retry.attempted" not in set(errors.type)
    by = errors.set_index(["entity_name", "error_type"]).errors
    assert by[("Buyer A", "timeout")] == 4
    assert by[("Phone Validation", "provider_unavailable")] == 6
    assert errors.errors.sum() == 10


# --------------------------------------------------------------------------- 4-5 returns


def _returned_lead(store, reason="Consumer did not request a quote", adjustment=-30):
    events = lead("r1", "Acme", T0)
    events.append(
        ev(
            "feedback.received",
            "r1",
            T0 + dt.timedelta(days=2, hours=3),
            outcome="failure",
            feedback_type="return",
            status="returned",
            reason=reason,
            recipient="Buyer A",
            revenue_adjustment=adjustment,
        )
    )
    events += lead("ok1", "Acme", T0 + dt.timedelta(minutes=1))
    return stored(store, events)


def test_explain_tells_a_returned_lead_with_its_reason_and_the_revenue_reversed(store):
    d = investigate.explain(_returned_lead(store), "r1")
    assert not d.ok and d.scenario == "data_wrong"
    assert d.cause == "returned:consent"
    assert "Buyer A returned the lead 2.1 days after delivery" in d.verdict
    assert "Consumer did not request a quote" in d.verdict
    assert "$30.00 of revenue reversed" in d.verdict
    assert d.details["revenue_reversed"] == 30.0
    assert "consent" in d.fix
    assert investigate.explain(store, "ok1").ok


def test_no_match_from_an_enhancement_is_not_advised_as_an_outage(store):
    events = lead("m1", "Acme", T0, enhanced=False)
    events.insert(
        2,
        ev(
            "enhancement.failure",
            "m1",
            T0 + dt.timedelta(milliseconds=45),
            outcome="failure",
            service="Phone Validation",
            error_type="no_match",
        ),
    )
    d = investigate.explain(stored(store, events), "m1")
    assert d.cause == "enhancement:Phone Validation"
    assert "Restore" not in d.fix and "not an outage" in d.fix
    assert "answered (no_match)" in d.verdict


def test_revenue_is_shown_beside_what_returns_took_back(store):
    _returned_lead(store)
    p = analytics.source_performance(store).set_index("source").loc["Acme"]
    assert p.revenue == pytest.approx(80.0)  # the guide's revenue: both deliveries
    assert p.returned_revenue == pytest.approx(30.0)
    assert p.net_revenue == pytest.approx(50.0)
    assert p.net_profit == pytest.approx(p.profit - 30.0)
    e = analytics.source_performance(store, basis="event").set_index("source").loc["Acme"]
    assert e.returned_revenue == pytest.approx(30.0) and e.net_revenue == pytest.approx(50.0)
    k = business.kpis(store, since=T0 - dt.timedelta(days=1), until=T0 + dt.timedelta(days=1))
    k = k.set_index("kpi").value
    assert k["returned_revenue"] == pytest.approx(30.0)
    assert k["net_revenue"] == pytest.approx(k["revenue"] - 30.0)
    b = analytics.buyer_behaviour(store).set_index("recipient").loc["Buyer A"]
    assert b.returned_revenue == pytest.approx(30.0)


# --------------------------------------------------------------------------- 6 alerts


def test_an_enhancement_provider_outage_fires_an_alert(store):
    events = []
    for i in range(60):
        at = T0 + dt.timedelta(minutes=i)
        down = i >= 20  # two thirds of the hour the provider is down
        events.append(
            ev(
                "enhancement.failure" if down else "enhancement.success",
                f"o{i}",
                at,
                outcome="failure" if down else "success",
                service="Phone Validation",
                **({"error_type": "provider_unavailable"} if down else {}),
            )
        )
    fired = alerts.alerts(stored(store, events))
    health = [a for a in fired if a.rule.name == "enhancement_health"]
    assert [a.subject for a in health] == ["Phone Validation"]
    assert health[0].peak > 0.5 and "provider" in " ".join(health[0].actions)
    assert "provider_unavailable" in set(health[0].evidence.error_type)


def test_a_step_s_speed_is_not_averaged_with_its_retries_backoff(store):
    events = []
    for i in range(40):
        at = T0 + dt.timedelta(minutes=i)
        events.append(
            ev("recipient.delivered", f"d{i}", at, outcome="success", ms=400, recipient="Buyer A")
        )
        events.append(
            ev(
                "retry.attempted",
                f"d{i}",
                at + dt.timedelta(seconds=30),
                outcome="success",
                ms=30_000,  # the wait before the retry
                recipient="Buyer A",
                retry_count=1,
                retry_result="success",
                original_failure="timeout",
            )
        )
    fired = alerts.alerts(stored(store, events))
    assert not [a for a in fired if a.rule.name == "performance"], [a.message for a in fired]


def test_an_outage_told_in_the_importer_s_words_is_an_outage(store):
    events = lead("i1", "Acme", T0, enhanced=False)
    events.insert(
        2,
        ev(
            "enhancement.failure",
            "i1",
            T0 + dt.timedelta(milliseconds=45),
            outcome="failure",
            service="Phone Validation",
            error_type="http_503",
        ),
    )
    d = investigate.explain(stored(store, events), "i1")
    assert "not an outage" not in d.fix and "down or slow" not in d.verdict
    assert "failed (http_503)" in d.verdict


def test_no_match_answers_do_not_fire_the_enhancement_health_alert(store):
    events = []
    for i in range(60):  # the provider is up; a third of the numbers are unknown to it
        miss = i % 3 == 0
        events.append(
            ev(
                "enhancement.failure" if miss else "enhancement.success",
                f"q{i}",
                T0 + dt.timedelta(minutes=i),
                outcome="failure" if miss else "success",
                service="Phone Validation",
                **({"error_type": "no_match"} if miss else {}),
            )
        )
    fired = alerts.alerts(stored(store, events))
    assert not [a for a in fired if a.rule.name == "enhancement_health"]


def test_a_skipped_enhancement_is_no_error(store):
    events = [
        ev(
            "enhancement.failure",
            "s1",
            T0,
            outcome="skipped",
            service="Phone Validation",
            error_type="provider_unavailable",
        )
    ]
    assert analytics.errors_by_type(stored(store, events)).empty


def test_provenance_names_each_change_once_and_explain_never_says_nan(sample_week):
    from workbench import investigate

    store = sample_week.store
    field = "appended.phone_score"  # appended by an enhancement: "added" there, once
    lead = store.sql(
        "SELECT lead_id FROM events WHERE type = 'flow.completed' "
        "AND CAST(lead_snapshot AS VARCHAR) LIKE '%appended.phone_score%' ORDER BY seq LIMIT 1"
    ).lead_id[0]
    prov = investigate.provenance(store, lead, field)
    assert not prov.seq.duplicated().any(), prov
    erred = store.sql(
        "SELECT lead_id FROM events WHERE outcome = 'error' AND error_type IS NULL "
        "ORDER BY seq LIMIT 5"
    ).lead_id
    for lead in erred:
        assert "(nan)" not in investigate.explain(store, lead).verdict


def test_an_action_names_a_subject_ending_in_s_without_an_extra_s():
    from workbench.analysis.alerts import _possessive

    assert _possessive("Review {subject}'s rejection reasons", "Evergreen Life Quotes") == (
        "Review Evergreen Life Quotes' rejection reasons"
    )
    assert _possessive("Review {subject}'s caps", "LeadRiver") == "Review LeadRiver's caps"
