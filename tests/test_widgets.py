"""The widgets, driven headless the way a click drives them: each builds from a Session,
its methods and its clicks do what they say, and its numbers match the queries behind it.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import pytest
from plotly.callbacks import BoxSelector, InputDeviceState, Points

import workbench
from workbench.analysis import alerts, explore, investigate
from workbench.widgets import AlertMonitor, Dashboard, EventExplorer, LeadTimeline, LiveFeed


@pytest.fixture(scope="module")
def session(sample_week):
    with workbench.connect(sample_week.store, user="ana", role="analyst") as s:
        yield s


def _lead(week, incident: str) -> str:
    iid = week.incidents.loc[incident, "incident_id"]
    return week.report.incident_leads[iid][0]


def _click(trace, i: int) -> None:
    trace._dispatch_on_click(Points(point_inds=[i], trace_index=0), InputDeviceState())


def _plain(o):
    return o.tolist() if hasattr(o, "tolist") else str(o)


def _bars(fig) -> list:
    return [t for t in fig.data if isinstance(t, go.Bar)]


# --------------------------------------------------------------------------- sessions only


@pytest.mark.parametrize("cls", [LeadTimeline, EventExplorer, Dashboard, AlertMonitor, LiveFeed])
def test_a_widget_needs_a_session_and_says_how_to_connect(sample_week, cls):
    with pytest.raises(TypeError, match=r"takes a Session.*workbench\.connect\("):
        cls(sample_week.store)
    with pytest.raises(TypeError, match="connect"):
        cls("var/sample.duckdb")
    closed = workbench.connect(sample_week.store, user="ana", role="analyst")
    closed.close()
    with pytest.raises(TypeError, match="closed"):
        cls(closed)


# --------------------------------------------------------------------------- LeadTimeline


def test_timeline_shows_a_lead_its_verdict_chart_and_events(sample_week, session):
    lead = _lead(sample_week, "nine_digit_phones")
    view = LeadTimeline(session, lead)
    expected = investigate.explain(session, lead)
    assert view.lead_id == lead
    assert view.diagnosis.scenario == expected.scenario
    assert expected.verdict.split(".")[0] in view.verdict.value
    tl = session.timeline(lead)
    assert len(view.timeline) == len(tl)
    assert len(view.table.rows) == len(tl)
    drawn = sum(len(b.base) for b in _bars(view.chart))
    assert drawn == (tl.type != "flow.completed").sum()


def test_clicking_a_bar_or_a_row_selects_its_event(sample_week, session):
    lead = _lead(sample_week, "enhancement_outage")
    view = LeadTimeline(session, lead)
    bar = next(b for b in _bars(view.chart) if len(b.customdata) > 1)
    _click(bar, 1)
    seq = int(bar.customdata[1])
    assert view.selected["seq"] == seq
    row = view.timeline.set_index("seq").loc[seq]
    assert view.selected["type"] == row.type
    assert view.table.selected == int(view.timeline.index[view.timeline.seq == seq][0])
    assert "lead snapshot" in view.detail.value and "metadata" in view.detail.value
    view.table.selected = 0  # a row clicked in the browser
    assert view.selected["seq"] == int(view.timeline.seq.iloc[0])
    with pytest.raises(ValueError, match="is not an event of"):
        view.select(-5)


def test_what_changed_shows_the_fields_an_enhancement_appended(sample_week, session):
    lead = session.sql(
        "SELECT lead_id FROM events WHERE type = 'enhancement.success' LIMIT 1"
    ).lead_id[0]
    view = LeadTimeline(session, lead)
    seq = int(view.timeline[view.timeline.type == "enhancement.success"].seq.iloc[0])
    view.select(seq)
    changed = investigate.diff_snapshots(session, lead)
    fields = changed[changed.seq == seq].field.tolist()
    assert fields, "an enhancement appends fields"
    for f in fields:
        assert f">{f}<" in view.detail.value


def test_masked_role_finds_a_lead_by_a_raw_email_and_sees_it_masked(sample_week):
    store = sample_week.store
    raw = store.sql(
        "SELECT lead_id, lead_snapshot->>'email' AS email FROM events "
        "WHERE type = 'source.submitted' AND lead_snapshot->>'email' IS NOT NULL LIMIT 1"
    )
    lead, email = raw.lead_id[0], raw.email[0]
    with workbench.connect(store, user="tess", role="trainee") as tess:
        view = LeadTimeline(tess)
        assert lead in view.find(email)
        assert view.lead_id == lead
        assert view.search.value == lead  # the raw value typed is not kept
        state = str(view.selected) + view.table.rows.__repr__() + view.verdict.value
        view.select(int(view.timeline.seq.iloc[0]))
        state += view.detail.value + view.chart.to_json()
        assert email not in state and email.split("@")[0] not in state
        assert view.find("nobody-at-all@nowhere.example") == []
        assert "nobody-at-all" not in view.message.value + view.search.value
    with workbench.connect(store, user="adam", role="admin") as adam:
        trail = adam.audit(user="tess", action="find_leads")
    assert len(trail) >= 2


def test_an_unknown_lead_is_said_not_raised(session):
    view = LeadTimeline(session)
    view.show("lead_does_not_exist")
    assert view.lead_id is None
    assert "lead_does_not_exist" in view.message.value


# --------------------------------------------------------------------------- EventExplorer


def _count(session, where: str, params=()) -> int:
    return int(session.sql(f"SELECT count(*) AS n FROM events WHERE {where}", list(params)).n[0])


def test_explorer_filters_count_what_sql_counts(session):
    ex = EventExplorer(session)
    assert ex.total == _count(session, "true")
    ex.set_filters(types=["recipient.*"], outcomes="failure")
    assert ex.total == _count(session, "type LIKE 'recipient.%' AND outcome = 'failure'")
    types = ex.facets["types"].set_index("value")["count"]
    assert types.sum() == ex.total
    assert set(types.index) == {"recipient.failed"}
    assert ex.rows.type.eq("recipient.failed").all()
    assert "recipient.failed (" in " ".join(lbl for lbl, _ in ex.pickers["types"].options)


def test_explorer_field_filters_on_columns_and_snapshot_fields(session):
    ex = EventExplorer(session, types="source.submitted")
    ex.set_filters(where={"state": "TX"})
    assert ex.total == _count(
        session, "type = 'source.submitted' AND lead_snapshot->>'state' = 'TX'"
    )
    assert ex.total > 0
    ex.set_filters(types=(), where={"error_type": "timeout"})
    assert ex.total == _count(session, "error_type = 'timeout'")
    ex._add_field("no equals sign")
    assert "field = value" in ex.message.value


def test_explorer_pages_on_the_server_newest_first(session):
    ex = EventExplorer(session, page_size=25)
    first = ex.rows
    assert len(first) == 25 and len(ex.table.rows) == 25
    second = ex.page(1)
    assert len(second) == 25
    assert not set(first.seq) & set(second.seq)
    assert first.timestamp.min() >= second.timestamp.max()
    last = ex.page(10**9)  # past the end: the last page
    assert ex.page_number == (ex.total - 1) // 25
    assert 0 < len(last) <= 25


def test_brushing_the_histogram_sets_the_time_range(session):
    ex = EventExplorer(session)
    trace = ex.histogram.data[0]
    ex.histogram.data[0]._dispatch_on_selection(
        Points(point_inds=[3, 4, 5], trace_index=0), BoxSelector(xrange=[0, 1])
    )
    since, until = pd.Timestamp(ex.filters.since), pd.Timestamp(ex.filters.until)
    assert since == pd.Timestamp(trace.x[3], tz="UTC")
    assert until > pd.Timestamp(trace.x[5], tz="UTC")
    n = _count(session, "timestamp >= ? AND timestamp < ?", [since, until])
    assert ex.total == n


def test_a_row_opens_its_lead(session):
    ex = EventExplorer(session, types="recipient.failed")
    ex.table.selected = 2
    (view,) = ex.lead_box.children
    assert isinstance(view, LeadTimeline)
    assert view.lead_id == ex.rows.lead_id.iloc[2]
    assert ex.open_lead(ex.rows.lead_id.iloc[0]).lead_id == ex.rows.lead_id.iloc[0]


def test_compare_ranks_what_the_selection_shares(sample_week, session):
    # the nine-digit phones came from one source: comparing its rejections finds it
    inc = sample_week.incidents.loc["nine_digit_phones"]
    ex = EventExplorer(
        session,
        types="source.rejected",
        since=inc.starts_at,
        until=inc.ends_at,
        where={"rejection_reason": "Invalid phone format: expected 10 digits, got 9"},
    )
    ranked = ex.compare()
    top = set(zip(ranked.attribute.head(5), ranked.value.head(5), strict=True))
    assert ("lead.source", "LeadRiver") in top
    assert ranked.set_index(["attribute", "value"]).loc[("lead.source", "LeadRiver")].lift > 0.5
    assert len(ex.comparison.rows) == len(ranked)


def test_bad_filters_are_refused_with_the_reason(session):
    ex = EventExplorer(session)
    with pytest.raises(ValueError, match="outcomes"):
        ex.set_filters(outcomes=[1])
    with pytest.raises(ValueError):
        ex.set_filters(where={"bad name;": "x"})
    assert ex.total == _count(session, "true")  # the filters in force did not change


# --------------------------------------------------------------------------- Dashboard


def test_dashboard_kpis_match_the_summary(session):
    board = Dashboard(session)
    since, until = board._window["since"], board._window["until"]
    leads = session.sql(
        "SELECT count(*) AS n, count(CASE WHEN accepted THEN 1 END) AS acc FROM lead_summary "
        "WHERE submitted_at >= ? AND submitted_at < ?",
        [since, until],
    )
    kpis = board.kpis
    assert set(kpis) == {
        "leads",
        "acceptance_rate",
        "delivery_rate",
        "revenue",
        "returned_revenue",
        "net_revenue",
        "costs",
        "profit",
    }
    assert kpis["net_revenue"]["value"] == pytest.approx(
        kpis["revenue"]["value"] - kpis["returned_revenue"]["value"]
    )
    assert "Returned revenue" in board.tiles.value
    assert kpis["leads"]["value"] == leads.n[0]
    assert kpis["acceptance_rate"]["value"] == pytest.approx(leads.acc[0] / leads.n[0])
    assert kpis["profit"]["value"] == pytest.approx(
        kpis["revenue"]["value"] - kpis["costs"]["value"]
    )
    assert "Acceptance rate" in board.tiles.value


def test_dashboard_period_and_pickers_narrow_it(session):
    board = Dashboard(session)
    all_leads = board.kpis["leads"]["value"]
    since = board._window["since"]
    board.set_period(since, since + dt.timedelta(days=1))
    one_day = board.kpis["leads"]["value"]
    assert 0 < one_day < all_leads
    board.set_sources(["LeadRiver"])
    assert 0 < board.kpis["leads"]["value"] < one_day
    assert [r[0] for r in board.source_table.rows] == ["LeadRiver"]


def test_a_funnel_dropoff_opens_the_leads_behind_it(session):
    board = Dashboard(session)
    funnel = board.funnel.data[0]
    _click(funnel, 2)  # the 'delivered' step: accepted, never delivered
    explorer = board.drill.children[-1]
    assert isinstance(explorer, EventExplorer)
    leads = set(explorer.filters.leads)
    summary = session.lead_summary().set_index("lead_id").loc[sorted(leads)]
    assert summary.accepted.all() and not summary.delivered.any()
    assert len(leads) == len(
        session.sql(
            "SELECT lead_id FROM lead_summary WHERE accepted AND NOT delivered "
            "AND submitted_at >= ? AND submitted_at < ?",
            [board._window["since"], board._window["until"]],
        )
    )


def test_dashboard_exports_each_chart_and_one_page(session, tmp_path, browser):
    paths = Dashboard(session).export(tmp_path / "board")
    names = sorted(p.name for p in paths)
    assert "dashboard.html" in names and "funnel.png" in names
    for p in paths:
        assert p.stat().st_size > 1000
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "board" / "dashboard.html").read_text()
    assert "Key figures" in page and "Acceptance rate" in page


# --------------------------------------------------------------------------- AlertMonitor


def test_monitor_lists_the_alerts_the_rules_fire(sample_week, session):
    monitor = AlertMonitor(session)
    fired = alerts.alerts(session, evidence=False)
    assert {(a.rule.name, a.subject) for a in fired} <= {
        (a.rule.name, a.subject) for a in monitor.alerts
    }
    spike = sample_week.incidents.loc["source_rejection_spike"]
    assert any(
        a.rule.name == "source_management"
        and a.subject == spike.entity
        and a.started <= pd.Timestamp(spike.ends_at)
        and a.ended >= pd.Timestamp(spike.starts_at)
        for a in monitor.alerts
    )
    frame = monitor.frame()
    assert list(frame.columns)[:4] == ["status", "severity", "rule", "subject"]
    assert set(frame.severity) <= set(alerts.SEVERITIES)
    assert len(monitor.table.rows) == len(monitor.alerts)


def test_editing_a_threshold_evaluates_again(session):
    monitor = AlertMonitor(session)
    before = [a for a in monitor.alerts if a.rule.name == "quality"]
    assert before
    monitor.thresholds["quality"].value = 0.99  # typed in the box
    assert not [a for a in monitor.alerts if a.rule.name == "quality"]
    assert dict((r.name, r.threshold) for r in monitor.rules)["quality"] == 0.99
    with pytest.raises(ValueError, match="no rule 'speed'"):
        monitor.set_threshold("speed", 1)


def test_an_alert_opens_its_evidence_and_events(sample_week, session):
    monitor = AlertMonitor(session)
    i = next(i for i, a in enumerate(monitor.alerts) if a.rule.name == "source_management")
    alert = monitor.alerts[i]
    monitor.table.selected = i
    explorer = monitor.explorer_box.children[0]
    assert isinstance(explorer, EventExplorer)
    assert explorer.total == _count(
        session,
        "type = 'source.rejected' AND timestamp >= ? AND timestamp < ? AND lead_id IN "
        "(SELECT lead_id FROM lead_summary WHERE source = ?)",
        [alert.started, alert.ended, alert.subject],
    )
    assert explorer.total > 0
    assert "Evidence" in monitor.evidence.value
    assert "rejection_reason" in monitor.evidence.value


# --------------------------------------------------------------------------- LiveFeed


def test_live_feed_shows_the_newest_events_and_rates(session):
    feed = LiveFeed(session, n=10, minutes=60)
    newest = session.sql("SELECT max(timestamp) AS t FROM events").t[0]
    assert len(feed.newest) == 10
    assert feed.newest.timestamp.iloc[0] == newest
    assert feed.total == _count(session, "true")
    r = feed.rates.set_index("type")
    hour = _count(
        session,
        "type = 'source.submitted' AND timestamp > ? AND timestamp <= ?",
        [newest - pd.Timedelta(minutes=60), newest],
    )
    assert r.loc["source.submitted", "events"] == hour
    assert r.loc["source.submitted", "per_minute"] == pytest.approx(hour / 60)
    with pytest.raises(ValueError, match="n=0"):
        LiveFeed(session, n=0)


def test_every_message_to_the_browser_is_valid_json(sample_week, session, widget_messages):
    """A browser gets widget state and figure traces as JSON: NaN or infinity there
    breaks the message (the kernel drops it and the chart stays empty), so gaps must
    arrive as nulls."""
    import json

    lead = _lead(sample_week, "enhancement_outage")
    LeadTimeline(session, lead)
    EventExplorer(session)
    Dashboard(session)
    AlertMonitor(session)
    LiveFeed(session)
    assert any("_py2js_addTraces" in str(m.get("state", {}))[:40] for m in widget_messages)
    for msg in widget_messages:
        # as the kernel sends it: arrays as lists, then strict JSON
        json.dumps(msg, allow_nan=False, default=_plain)


# --------------------------------------------------------------------------- lead fields


def test_a_lead_field_filter_matches_the_leads_that_hold_it(sample_week, session):
    store = sample_week.store
    tx = set(
        store.sql(
            "SELECT DISTINCT lead_id FROM events WHERE type = 'source.submitted' "
            "AND lead_snapshot->>'state' = 'TX'"
        ).lead_id
    )
    assert set(session.leads_where("state", "TX")) == tx
    ex = EventExplorer(session, where={"state": "TX"})
    assert ex.total == _count(session, "list_contains(?, lead_id)", [sorted(tx)])
    assert set(ex.rows.lead_id) <= tx
    # the same through plain function calls, resolving the field themselves
    assert explore.total(session, ex.filters) == ex.total


def test_lead_field_lookups_reveal_nothing_masking_hides(sample_week):
    with workbench.connect(sample_week.store, user="tess", role="trainee") as tess:
        with pytest.raises(ValueError, match="find_leads"):
            tess.leads_where("email", "someone@example.com")
        with pytest.raises(ValueError, match="looks like personal data"):
            tess.leads_where("notes", "call 512-555-0142")
        with pytest.raises(ValueError, match="not a field name"):
            tess.leads_where("state'; --", "TX")
        # a personal field in the explorer is a find_leads search: whole values, audited
        email = sample_week.store.sql(
            "SELECT lead_snapshot->>'email' AS e FROM events WHERE type = 'source.submitted' "
            "AND lead_snapshot->>'email' IS NOT NULL LIMIT 1"
        ).e[0]
        ex = EventExplorer(tess, where={"email": email})
        assert ex.total > 0 and email not in ex.summary.value
        ex._add_field(f"email = {email[:5]}")  # part of a value: refused, said, unchanged
        assert "whole" in ex.message.value and ex.filters.where == (("email", email),)
