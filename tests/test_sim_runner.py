"""The runner: same seed same events, time order, durations, money, a clean store."""

import datetime as dt
import json
import re
import time

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench
from workbench import catalog
from workbench.sim import INCIDENT_TYPES, FlowRunner, load_flow, simulate

END = "2026-11-27T12:00:00Z"
ALL = [
    "nine_digit_phones:start=6h",
    "enhancement_timeouts:start=0h,duration=2d,hours=0-24",
    "buyer_endpoint_errors:start=0h,duration=2d",
    "field_mapping_corruption:start=1d,duration=6h",
]


def run_tables(**kw):
    r = FlowRunner(load_flow(), **{"end": END, "days": 2, **kw})
    tables = list(r.tables())
    return pa.concat_tables(tables), r.report(), tables


@pytest.fixture(scope="module")
def small():
    return run_tables(leads=3000, seed=5, incidents=ALL)


@pytest.fixture(scope="module")
def stored(small):
    table, report, _ = small
    store = workbench.open_store()
    ingest = store.append(table, progress=False)
    yield store, report, ingest
    store.close()


def test_same_seed_same_events_ids_included(small):
    table, report, _ = small
    again, report2, _ = run_tables(leads=3000, seed=5, incidents=ALL)
    assert table.equals(again)
    assert report.incident_leads == report2.incident_leads
    other, _, _ = run_tables(leads=3000, seed=6, incidents=ALL)
    assert not set(table["event_id"].to_pylist()) & set(other["event_id"].to_pylist())


def test_ids_have_the_guide_shape(small):
    table, _, _ = small
    ids = table["event_id"].to_pylist()
    assert all(re.fullmatch(r"evt_[0-9A-Za-z]{20}", i) for i in ids[:5000])
    assert len(set(ids)) == len(ids)
    assert all(
        re.fullmatch(r"lead_[0-9A-Za-z]{16}", i) for i in table["lead_id"][:2000].to_pylist()
    )


def test_tables_are_big_and_in_time_order(monkeypatch):
    from workbench.sim import runner as runner_module

    monkeypatch.setattr(runner_module, "_OUT_ROWS", 5_000)
    table, _, tables = run_tables(leads=3000, seed=5, incidents=ALL, batch_leads=500)
    assert len(tables) >= 3, "the run should come out in several tables"
    assert all(t.num_rows >= 5_000 for t in tables[:-1])
    ts = table["timestamp"].cast(pa.int64()).to_numpy()
    assert (np.diff(ts) >= 0).all()


def test_a_leads_timestamps_increase_and_agree_with_durations(stored):
    store, _, _ = stored
    bad = store.sql(
        """SELECT count(*) AS n FROM (
             SELECT type, timestamp, duration_ms,
                    lead(timestamp) OVER (PARTITION BY lead_id ORDER BY timestamp, seq) AS nxt
             FROM events)
           WHERE nxt IS NOT NULL
             AND (nxt <= timestamp OR nxt < timestamp + to_milliseconds(duration_ms))"""
    ).n[0]
    assert bad == 0
    # flow.completed's duration is the whole flow: it reaches back to source.submitted
    off = store.sql(
        """SELECT count(*) AS n FROM events c JOIN events s
             ON s.lead_id = c.lead_id AND s.type = 'source.submitted'
           WHERE c.type = 'flow.completed'
             AND c.timestamp - to_milliseconds(c.duration_ms) != s.timestamp"""
    ).n[0]
    assert off == 0


def test_money_adds_up(stored):
    store, _, _ = stored
    df = store.sql(
        """SELECT lead_id,
             coalesce(sum(cost) FILTER (WHERE type != 'flow.completed'), 0) AS steps_cost,
             coalesce(sum(revenue) FILTER (WHERE type = 'recipient.delivered'), 0) AS steps_rev,
             max(CAST(json_extract_string(metadata, '$.total_cost') AS DOUBLE)) AS total_cost,
             max(CAST(json_extract_string(metadata, '$.total_revenue') AS DOUBLE)) AS total_rev
           FROM events GROUP BY lead_id"""
    )
    assert len(df) == 3000
    assert np.allclose(df.steps_cost, df.total_cost, atol=1e-9)
    assert np.allclose(df.steps_rev, df.total_rev, atol=1e-9)
    summary = store.lead_summary()
    assert np.isclose(summary.total_cost.sum(), df.total_cost.sum())
    assert np.isclose(summary.revenue.sum(), df.total_rev.sum())


def test_store_takes_every_event(stored):
    store, report, ingest = stored
    assert ingest.quarantined == 0 and ingest.duplicates == 0
    assert ingest.stored == report.events == sum(report.counts.values())


def test_every_event_carries_its_types_required_metadata(small):
    table, _, _ = small
    seen = {}
    for t, m in zip(table["type"].to_pylist(), table["metadata"].to_pylist(), strict=True):
        if t not in seen:
            seen[t] = json.loads(m)
    for t, meta in seen.items():
        assert not catalog.get(t).missing_metadata(meta), t


def test_snapshots_are_complete_leads(stored):
    store, _, _ = stored
    lead = store.sql(
        """SELECT lead_id FROM events WHERE type = 'recipient.delivered'
           AND json_exists(lead_snapshot, '$."email.valid"') LIMIT 1"""
    ).lead_id[0]
    tl = store.timeline(lead)
    first, last = tl.lead_snapshot.iloc[0], tl.lead_snapshot.iloc[-1]
    for f in (
        "first_name",
        "last_name",
        "email",
        "phone",
        "address",
        "city",
        "state",
        "zip",
        "ip_address",
        "dob",
    ):
        assert f in first
    assert "phone.valid" not in first
    for f in (
        "phone.valid",
        "phone.type",
        "appended.phone_score",
        "trustedform.age_seconds",
        "email.valid",
    ):
        assert f in last
    assert re.fullmatch(r"\d{3}555\d{4}", first["phone"])
    assert re.fullmatch(r"[a-z]+\.[a-z]+\d+@example\.(com|org|net)", first["email"])
    assert re.fullmatch(r"(192\.0\.2|198\.51\.100|203\.0\.113)\.\d+", first["ip_address"])


def test_life_insurance_leads_carry_a_fake_ssn(stored):
    store, _, _ = stored
    ssn = store.sql(
        """SELECT json_extract_string(lead_snapshot, '$.ssn') AS ssn FROM events
           WHERE type = 'source.submitted' AND json_exists(lead_snapshot, '$.ssn')"""
    ).ssn
    assert len(ssn) > 100
    assert ssn.str.fullmatch(r"9\d\d-\d\d-\d{4}").all()


def test_normal_phones_have_ten_digits(stored):
    store, report, _ = stored
    planted = set(report.incident_leads[report.incidents[0].incident_id])
    df = store.sql(
        """SELECT lead_id, length(json_extract_string(lead_snapshot, '$.phone')) AS n
           FROM events WHERE type = 'source.submitted'"""
    )
    clean = df[~df.lead_id.isin(planted)]
    assert (clean.n == 10).mean() > 0.98
    assert (df[df.lead_id.isin(planted)].n == 9).all()


def test_derived_columns_read_from_metadata(stored):
    store, _, _ = stored
    df = store.sql(
        """SELECT type, count(*) AS n, count(entity_name) AS named, count(cost) AS costed,
                  count(error_type) AS typed, count(rejection_reason) AS reasoned
           FROM events GROUP BY type"""
    ).set_index("type")
    for t in ("source.submitted", "filter.passed", "enhancement.success", "recipient.failed"):
        assert df.named[t] == df.n[t]
    assert df.costed["source.accepted"] == df.n["source.accepted"]
    assert df.typed["enhancement.error"] == df.n["enhancement.error"]
    assert df.reasoned["source.rejected"] == df.n["source.rejected"]
    assert df.reasoned["filter.failed"] == df.n["filter.failed"]
    steps = set(store.sql("SELECT DISTINCT step_name FROM events").step_name)
    assert {"Phone Validation", "Service Area", "Apex Insurance Group", "Feedback"} <= steps


def test_run_ends_now_by_default():
    r = simulate(leads=300, days=1, seed=1)
    now = dt.datetime.now(dt.UTC)
    assert abs((r.end - now).total_seconds()) < 60
    assert r.end - r.start == dt.timedelta(days=1)
    assert r.counts["source.submitted"] == 300 and r.quarantined is None


def test_simulate_into_a_store_path_twice_is_idempotent(tmp_path):
    path = tmp_path / "sim.duckdb"
    r1 = simulate(leads=400, days=1, seed=2, end=END, store=path, incidents=ALL[:1])
    r2 = simulate(leads=400, days=1, seed=2, end=END, store=str(path), incidents=ALL[:1])
    assert r1.stored == r1.events and r1.quarantined == 0
    assert r2.stored == 0 and r2.duplicates == r1.events
    with workbench.open_store(path, read_only=True) as store:
        assert store.sql("SELECT count(*) AS n FROM incidents").n[0] == 1
        assert store.sql("SELECT count(*) AS n FROM steps").n[0] == 18


def test_bad_arguments():
    with pytest.raises(ValueError, match="leads"):
        FlowRunner(leads=-1)
    with pytest.raises(ValueError, match="too short"):
        FlowRunner(leads=10, days=0.01)
    with pytest.raises(ValueError, match="ISO-8601"):
        FlowRunner(leads=10, end="yesterday")
    assert sum(t.num_rows for t in FlowRunner(leads=0, end=END).tables()) == 0


# invariants for any seed, size and set of incidents (checked on the tables, no store)
_INCIDENT_NAMES = sorted(INCIDENT_TYPES)


@settings(max_examples=6, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    leads=st.integers(1, 1500),
    names=st.lists(st.sampled_from(_INCIDENT_NAMES), max_size=4, unique=True),
)
def test_invariants_hold_for_any_run(seed, leads, names):
    incidents = [f"{n}:start=0h,duration=1d" for n in names]
    r = FlowRunner(load_flow(), leads=leads, days=1, end=END, seed=seed, incidents=incidents)
    table = pa.concat_tables(list(r.tables()))
    df = table.select(["type", "lead_id", "duration_ms", "metadata"]).to_pandas()
    assert df.lead_id.nunique() == leads == (df.type == "flow.completed").sum()
    df["ts"] = table["timestamp"].cast(pa.int64()).to_numpy()  # milliseconds
    assert (np.diff(df.ts.to_numpy()) >= 0).all()
    nxt = df.groupby("lead_id").ts.shift(-1)
    has_next = nxt.notna()
    assert (nxt[has_next] > df.ts[has_next]).all()
    assert (nxt[has_next] >= df.ts[has_next] + df.duration_ms[has_next]).all()
    meta = [json.loads(m) for m in df.metadata]
    for t, m in zip(df.type, meta, strict=True):
        assert not catalog.get(t).missing_metadata(m)
    cost = {}
    for t, lead, m in zip(df.type, df.lead_id, meta, strict=True):
        if t != "flow.completed" and "cost" in m:
            cost[lead] = cost.get(lead, 0) + m["cost"]
        if t == "flow.completed":
            assert abs(cost.get(lead, 0) - m["total_cost"]) < 1e-9
    assert sum(r.report().counts.values()) == len(df)


# --------------------------------------------------------------------------- overlap


def test_generation_runs_ahead_of_the_store_by_at_most_two_tables():
    import threading

    from workbench.sim.runner import ahead

    made = []

    def tables():
        for i in range(10):
            made.append(i)
            yield i

    it = ahead(tables(), depth=2)
    assert next(it) == 0
    deadline = time.monotonic() + 5
    while len(made) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert len(made) <= 4  # one taken, two waiting, one in the producer's hand
    it.close()  # a consumer that stops early stops the producer
    assert not [t for t in threading.enumerate() if t.name == "workbench-sim-ahead"]


def test_an_error_while_generating_reaches_the_caller_and_nothing_half_done_is_kept(tmp_path):
    from workbench.sim import runner as runner_module

    path = tmp_path / "cut.duckdb"

    def broken(self, on_chunk=None):
        yield from original(self, on_chunk)
        raise RuntimeError("generator failed")

    original = runner_module.FlowRunner.tables
    runner_module.FlowRunner.tables = broken
    try:
        with pytest.raises(RuntimeError, match="generator failed"):
            simulate(leads=300, days=1, end="2026-11-27T12:00:00Z", seed=2, store=path)
    finally:
        runner_module.FlowRunner.tables = original
    with workbench.open_store(path, read_only=True) as s:
        # every batch that was stored is whole and sealed; the ingest says it was cut short
        assert s.verify().ok
        assert s.sql("SELECT state FROM ingests").state.tolist() == ["interrupted"]
