"""A live stream appends as its clock runs: never ahead of it, whole batches, the rate
asked for, incidents from the moment they start, and a clean store when it stops."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import workbench
from workbench.sim import StreamError, stream

T0 = dt.datetime(2026, 6, 1, 14, tzinfo=dt.UTC)


def _count(store, where: str = "true", params=()) -> int:
    return int(store.sql(f"SELECT count(*) AS n FROM events WHERE {where}", list(params)).n[0])


def test_a_stream_writes_its_hour_at_the_rate_asked(store):
    with stream(
        store, leads_per_minute=120, speed=3600, duration="1h", start=T0, seed=1, tick_s=0.1
    ) as live:
        report = live.join(120)
    assert not live.running
    leads = _count(store, "type = 'source.submitted'")
    assert report.leads == leads and report.events == _count(store) == report.stored
    # arrivals stop ten minutes before the end, so every lead completes: 50 minutes
    assert 120 * 50 * 0.9 < leads < 120 * 50 * 1.1
    assert _count(store, "type = 'flow.completed'") == leads
    hi = store.sql("SELECT max(timestamp) AS t FROM events").t[0]
    assert T0 <= hi <= T0 + dt.timedelta(hours=1)
    assert store.verify().ok


def test_nothing_lands_ahead_of_the_clock(store):
    live = stream(store, leads_per_minute=300, speed=600, start=T0, seed=2, tick_s=0.1)
    try:
        seen = []
        deadline = time.monotonic() + 20
        while len(seen) < 5 and time.monotonic() < deadline:
            clock = live.clock
            hi = store.sql("SELECT max(timestamp) AS t FROM events").t[0]
            if hi is not None and hi == hi:  # not NaT
                assert hi <= live.clock + dt.timedelta(milliseconds=1)
                seen.append(hi)
            assert clock >= T0
            time.sleep(0.3)
    finally:
        report = live.stop()
    assert len(seen) == 5 and seen == sorted(seen)
    assert report.events == _count(store)
    assert store.verify().ok


def test_an_incident_started_mid_stream_hits_only_leads_after_it(store):
    live = stream(store, leads_per_minute=400, speed=1800, start=T0, seed=3, tick_s=0.1)
    try:
        while live.clock < T0 + dt.timedelta(minutes=20):
            time.sleep(0.05)
        inc = live.start_incident("source_rejection_spike:rate=1.0")
        while live.clock < inc.starts_at + dt.timedelta(minutes=30):
            time.sleep(0.05)
    finally:
        report = live.stop()
    assert T0 + dt.timedelta(minutes=20) <= inc.starts_at
    recorded = store.sql("SELECT * FROM incidents WHERE incident_id = ?", [inc.incident_id])
    assert recorded.name[0] == "source_rejection_spike" and recorded.run_id[0] == live.run_id
    hit = report.incident_leads[inc.incident_id]
    assert len(hit) > 50
    first = store.sql(
        "SELECT min(timestamp) AS t FROM events WHERE type = 'source.submitted' "
        "AND list_contains(?, lead_id)",
        [list(hit)],
    ).t[0]
    assert first >= inc.starts_at
    reasons = store.sql(
        "SELECT DISTINCT rejection_reason FROM events WHERE type = 'source.rejected' "
        "AND list_contains(?, lead_id)",
        [list(hit)],
    ).rejection_reason
    assert list(reasons) == ["Missing required field: email"]
    missing = "type = 'source.rejected' AND rejection_reason = 'Missing required field: email' "
    before = _count(store, missing + "AND timestamp < ?", [inc.starts_at])
    after = _count(store, missing + "AND timestamp >= ?", [inc.starts_at])
    minutes_before = (inc.starts_at - T0).total_seconds() / 60
    minutes_after = (report.end - inc.starts_at).total_seconds() / 60
    assert after / minutes_after > 10 * max(before, 1) / minutes_before
    assert store.verify().ok


def test_incidents_given_at_the_start_wait_for_their_start(store):
    with stream(
        store,
        leads_per_minute=300,
        speed=3600,
        duration="1h",
        start=T0,
        seed=4,
        incidents=["enhancement_outage:start=30m,rate=0.95"],
    ) as live:
        report = live.join(120)
    (inc,) = report.incidents
    assert inc.starts_at == T0 + dt.timedelta(minutes=30)
    hit = report.incident_leads[inc.incident_id]
    assert len(hit) > 100
    first = store.sql(
        "SELECT min(timestamp) AS t FROM events WHERE type = 'enhancement.failure' "
        "AND list_contains(?, lead_id)",
        [list(hit)],
    ).t[0]
    assert first >= inc.starts_at
    down = "type = 'enhancement.failure' AND error_type = 'provider_unavailable' AND timestamp "
    assert _count(store, down + "< ?", [inc.starts_at]) == 0
    assert _count(store, down + ">= ?", [inc.starts_at]) >= len(hit)


def test_bad_settings_are_refused_clearly(store, store_path):
    with pytest.raises(StreamError, match="leads_per_minute=0"):
        stream(store, leads_per_minute=0)
    with pytest.raises(StreamError, match="speed=-1"):
        stream(store, speed=-1)
    with pytest.raises(StreamError, match="duration"):
        stream(store, duration="0m")
    workbench.open_store(store_path).close()
    with (
        workbench.open_store(store_path, read_only=True) as ro,
        pytest.raises(StreamError, match="writable"),
    ):
        stream(ro)


def test_a_stream_on_a_path_closes_its_store(store_path):
    live = stream(store_path, leads_per_minute=200, speed=3600, duration="30m", start=T0)
    live.join(120)
    assert live.store.closed
    with workbench.open_store(store_path, read_only=True) as s:
        assert s.verify().ok and s.count() == live.report().events


def test_a_power_cut_mid_stream_leaves_a_store_that_verifies(tmp_path):
    path = tmp_path / "live.duckdb"
    script = textwrap.dedent(
        f"""
        import time
        from workbench.sim import stream
        live = stream({str(path)!r}, leads_per_minute=2000, speed=600, tick_s=0.05)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if path.exists() and path.stat().st_size > 2_000_000:
                break
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    with workbench.open_store(path) as s:
        report = s.verify()
        assert report.ok, report
        assert s.count() > 0
