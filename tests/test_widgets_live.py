"""The guide's Event Streaming in one notebook: a stream lands events, a LiveFeed follows
them, an AlertMonitor watches, and an incident started mid-stream fires its alert within
the rule's window plus one evaluation period; stopping leaves a store that verifies."""

from __future__ import annotations

import datetime as dt
import time

import workbench
from workbench.sim import stream
from workbench.widgets import AlertMonitor, LeadTimeline, LiveFeed

T0 = dt.datetime(2026, 6, 2, 14, tzinfo=dt.UTC)  # a Tuesday, 10:00 in New York
EVERY_S = 1.0


def _wait(until, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not until():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_an_incident_mid_stream_fires_an_alert_in_the_open_notebook():
    store = workbench.open_store()
    live = stream(store, leads_per_minute=150, speed=600, start=T0, seed=5, tick_s=0.1)
    feed = monitor = None
    try:
        _wait(lambda: live.clock >= T0 + dt.timedelta(minutes=40))
        session = workbench.connect(store, user="ana", role="analyst")
        feed = LiveFeed(session, minutes=10)
        monitor = AlertMonitor(session)
        feed.start(every_s=0.5)
        monitor.watch(every_s=EVERY_S)
        assert feed.following and monitor.watching
        total0 = feed.total
        _wait(lambda: feed.total > total0)
        assert feed.landing_per_second > 0
        assert not [a for a in monitor.active if a.rule.name == "source_management"]

        inc = live.start_incident("source_rejection_spike:rate=1.0")
        rule = next(r for r in monitor.rules if r.name == "source_management")

        def fired():
            return [
                a
                for a in monitor.active
                if a.rule.name == "source_management" and a.subject == inc.entity
            ]

        # the rule looks at the last three hours: the spike must outweigh what came
        # before it; then the next evaluation shows it
        _wait(fired, timeout_s=60)
        seen_at = live.clock
        assert seen_at - inc.starts_at <= rule.window + dt.timedelta(seconds=EVERY_S * 600 * 2)
        alert = fired()[0]
        assert alert.peak > rule.threshold
        row = monitor.frame().iloc[monitor.alerts.index(alert)]
        assert row.status == "active" and row.subject == inc.entity

        # the rejections show in the feed's rates, and a hit lead explains itself
        _wait(lambda: "source.rejected" in set(feed.rates.type))
        hit = live.report().incident_leads[inc.incident_id]
        view = LeadTimeline(session, hit[0])
        assert view.diagnosis.scenario != "ok"
        assert "Missing required field" in view.verdict.value
    finally:
        if feed is not None:
            feed.stop()
        if monitor is not None:
            monitor.stop()
        report = live.stop()
    assert not feed.following and not monitor.watching
    assert report.events == store.count()
    assert store.verify().ok
    store.close()
