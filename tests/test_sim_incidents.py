"""Incidents: each is visible in the events of the leads it changed (the run report's
ground truth), crosses the guide's alert threshold in its window, and a clean run
crosses none.

The alert queries here are proxies of the guide's rules over hourly windows with at
least 20 events, the smallest volume at which a rate means anything at sample scale.
"""

import datetime as dt
import json

import pandas as pd
import pyarrow as pa
import pytest

import workbench
from workbench.sim import IncidentError, describe_all, incident, load_flow
from workbench.sim.incidents import INCIDENT_TYPES, resolve
from workbench.sim.runner import SCHEMA


def load(runner):
    store = workbench.open_store()
    runner.register(store)
    reader = pa.RecordBatchReader.from_batches(
        SCHEMA, (b for t in runner.tables() for b in t.to_batches())
    )
    ingest = store.append(reader, progress=False)
    assert ingest.quarantined == 0
    return store, runner.report()


@pytest.fixture(scope="module")
def sample(sample_week):
    return sample_week.store, sample_week.report


@pytest.fixture(scope="module")
def clean(clean_week):
    return clean_week.store, clean_week.report


def planted(report, name):
    inc = next(i for i in report.incidents if i.name == name)
    leads = report.incident_leads[inc.incident_id]
    assert len(leads) >= 20, f"{name} changed only {len(leads)} leads"
    return inc, list(leads)


def events_of(store, leads, type_, extra=""):
    df = store.sql(
        f"SELECT * FROM events WHERE type = ? AND list_contains(?, lead_id) {extra}",
        [type_, leads],
    )
    for col in ("metadata", "lead_snapshot"):
        df[col] = [json.loads(v) for v in df[col]]
    return df


def in_window(df, inc):
    return df.timestamp.between(inc.starts_at, inc.ends_at, inclusive="left").all()


def test_registry_lists_at_least_ten_incidents():
    assert len(INCIDENT_TYPES) >= 10
    text = describe_all()
    for name, t in INCIDENT_TYPES.items():
        assert name in text
        for p in t.params:
            assert f"{p.name}=" in text


def test_every_catalogue_type_is_produced(sample):
    _, report = sample
    assert set(report.counts) == {t.name for t in workbench.event_types() if not t.custom}


def test_incidents_are_recorded_as_ground_truth(sample):
    store, report = sample
    df = store.sql("SELECT * FROM incidents ORDER BY starts_at")
    assert len(df) == 10 and set(df.name) == set(INCIDENT_TYPES)
    row = df[df.name == "nine_digit_phones"].iloc[0]
    assert row.entity == "LeadRiver" and row.entity_id.startswith("ent_")
    params = json.loads(row.parameters)
    assert params["rate"] == 0.8 and params["source"] == "LeadRiver"
    assert (df.run_id == report.run_id).all()


def test_nine_digit_phones(sample):
    store, report = sample
    inc, leads = planted(report, "nine_digit_phones")
    rej = events_of(store, leads, "source.rejected")
    assert len(rej) == len(leads) and in_window(rej, inc)
    assert (rej.rejection_reason == "Invalid phone format: expected 10 digits, got 9").all()
    assert (rej.entity_name == "LeadRiver").all()
    assert all(len(s["phone"]) == 9 for s in rej.lead_snapshot)


def test_source_rejection_spike(sample):
    store, report = sample
    inc, leads = planted(report, "source_rejection_spike")
    rej = events_of(store, leads, "source.rejected")
    assert len(rej) == len(leads) and in_window(rej, inc)
    assert (rej.rejection_reason == "Missing required field: email").all()
    assert all("email" not in s for s in rej.lead_snapshot)


def test_duplicate_flood(sample):
    store, report = sample
    inc, leads = planted(report, "duplicate_flood")
    failed = events_of(store, leads, "filter.failed")
    assert len(failed) == len(leads) and in_window(failed, inc)
    assert (failed.rejection_reason == "Duplicate lead within 30 days").all()
    assert (failed.entity_name == "Duplicate Check").all()
    first = failed.iloc[0]
    original = store.timeline(first.metadata["failed_values"]["duplicate_of"])
    assert original.lead_snapshot.iloc[0]["email"] == first.lead_snapshot["email"]
    # the flood: the source's volume in the window is well above its usual share
    vol = store.sql(
        """SELECT avg(CASE WHEN entity_name = 'BrightPath Media' THEN 1 ELSE 0 END) AS share
           FROM events WHERE type = 'source.submitted' AND timestamp >= ? AND timestamp < ?""",
        [inc.starts_at, inc.ends_at],
    ).share[0]
    assert vol > 0.45


def test_enhancement_outage(sample):
    store, report = sample
    inc, leads = planted(report, "enhancement_outage")
    fail = events_of(store, leads, "enhancement.failure", "AND entity_name = 'Phone Validation'")
    assert len(fail) == len(leads) and in_window(fail, inc)
    assert (fail.error_type == "provider_unavailable").all()
    assert (fail.entity_name == "Phone Validation").all()
    done = events_of(store, leads, "flow.completed")
    assert all("phone.valid" not in s for s in done.lead_snapshot)


def test_enhancement_timeouts_retries_and_circuit_breaker(sample):
    store, report = sample
    inc, leads = planted(report, "enhancement_timeouts")
    err = events_of(store, leads, "enhancement.error", "AND entity_name = 'Email Verification'")
    assert set(err.error_type) <= {"timeout", "circuit_open"} and in_window(err, inc)
    timeouts = err[err.error_type == "timeout"]
    assert (timeouts.duration_ms >= 4000).all()
    local_hour = timeouts.timestamp.dt.tz_convert("America/Chicago").dt.hour
    assert local_hour.between(13, 16).all()
    breaker = {m["circuit_breaker"] for m in err.metadata}
    assert {"closed", "open"} <= breaker
    retries = events_of(store, leads, "retry.attempted", "AND entity_name = 'Email Verification'")
    assert len(retries) > 0
    assert {m["original_failure"] for m in retries.metadata} == {"timeout"}
    assert {m["retry_result"] for m in retries.metadata} == {"success", "error"}


def test_business_hours_wrong_timezone(sample):
    store, report = sample
    inc, leads = planted(report, "business_hours_wrong_timezone")
    failed = events_of(store, leads, "filter.failed")
    assert len(failed) == len(leads) and in_window(failed, inc)
    assert (failed.entity_name == "Business Hours").all()
    assert all(m["failed_values"]["timezone"] == "UTC" for m in failed.metadata)
    # inside real business hours in Chicago, outside them in UTC: a shifted band
    chicago = failed.timestamp.dt.tz_convert("America/Chicago").dt.hour
    assert chicago.between(8, 19).all() and chicago.min() >= 14
    utc = failed.timestamp.dt.tz_convert("UTC").dt.hour
    assert (~utc.between(8, 19)).all()


def test_field_mapping_corruption(sample):
    store, report = sample
    inc, leads = planted(report, "field_mapping_corruption")
    lead = leads[0]
    tl = store.timeline(lead)
    enh = tl[tl.type == "enhancement.success"].lead_snapshot.iloc[-1]["zip"]
    rec = tl[tl.type.str.startswith("recipient.")]
    assert len(enh) == 5
    for _, ev in rec.iterrows():
        assert ev.lead_snapshot["zip"] == enh[:4]
        assert ev.metadata["payload"]["zip"] == enh[:4]
    failed = events_of(
        store, leads, "recipient.failed", "AND rejection_reason = 'Invalid zip format'"
    )
    assert len(failed) > 0.3 * len(leads) and in_window(failed, inc)


def test_buyer_segment_rejection(sample):
    store, report = sample
    inc, leads = planted(report, "buyer_segment_rejection")
    failed = events_of(store, leads, "recipient.failed", "AND entity_name = 'Apex Insurance Group'")
    assert len(failed) == len(leads) and in_window(failed, inc)
    assert failed.rejection_reason.str.fullmatch(
        r"Not buying leads with state (CA|TX|FL|NY) at this time"
    ).all()
    assert all(m["business_logic"] is True for m in failed.metadata)
    assert {s["state"] for s in failed.lead_snapshot} <= {"CA", "TX", "FL", "NY"}


def test_buyer_endpoint_errors(sample):
    store, report = sample
    inc, leads = planted(report, "buyer_endpoint_errors")
    err = events_of(store, leads, "recipient.error", "AND entity_name = 'Horizon Direct'")
    assert set(err.lead_id) == set(leads) and in_window(err, inc)
    assert {"timeout", "http_5xx", "connection_refused"} == set(err.error_type)
    assert err[err.error_type == "http_5xx"].http_status.isin([500, 502, 503]).all()


def test_buyer_acceptance_drop(sample):
    store, report = sample
    inc, leads = planted(report, "buyer_acceptance_drop")
    failed = events_of(store, leads, "recipient.failed", "AND entity_name = 'Keystone Marketing'")
    assert len(failed) == len(leads) and in_window(failed, inc)
    assert (failed.rejection_reason == "Lead quality below threshold").all()


# --------------------------------------------------------------------------- alerts

HOURLY = {
    # rejection rate: source or filter rejections per submitted lead
    "rejection_rate": """SELECT date_trunc('hour', timestamp) AS h, NULL AS who,
          CAST(count(*) FILTER (WHERE type IN ('source.rejected', 'filter.failed')) AS DOUBLE)
            / count(*) FILTER (WHERE type = 'source.submitted') AS v,
          count(*) FILTER (WHERE type = 'source.submitted') AS n
        FROM events GROUP BY 1""",
    "step_duration": """SELECT date_trunc('hour', timestamp) AS h, step_name AS who,
          avg(duration_ms) AS v, count(*) AS n FROM events GROUP BY 1, 2""",
    "source_rejection": """SELECT date_trunc('hour', timestamp) AS h, entity_name AS who,
          CAST(count(*) FILTER (WHERE type = 'source.rejected') AS DOUBLE)
            / count(*) FILTER (WHERE type = 'source.submitted') AS v,
          count(*) FILTER (WHERE type = 'source.submitted') AS n
        FROM events WHERE type LIKE 'source.%' GROUP BY 1, 2""",
    "buyer_acceptance": """SELECT date_trunc('hour', timestamp) AS h, entity_name AS who,
          CAST(count(*) FILTER (WHERE type = 'recipient.delivered') AS DOUBLE) / count(*) AS v,
          count(*) AS n
        FROM events WHERE type IN ('recipient.delivered', 'recipient.failed') GROUP BY 1, 2""",
}
RULES = {
    "rejection_rate": lambda v: v > 0.30,
    "step_duration": lambda v: v > 2000,
    "source_rejection": lambda v: v > 0.50,
    "buyer_acceptance": lambda v: v < 0.70,
}
FIRES = {
    "nine_digit_phones": ("source_rejection", "LeadRiver"),
    "source_rejection_spike": ("source_rejection", "Evergreen Life Quotes"),
    "duplicate_flood": ("rejection_rate", None),
    "enhancement_outage": ("buyer_acceptance", None),
    "enhancement_timeouts": ("step_duration", "Email Verification"),
    "business_hours_wrong_timezone": ("rejection_rate", None),
    "field_mapping_corruption": ("buyer_acceptance", None),
    "buyer_segment_rejection": ("buyer_acceptance", "Apex Insurance Group"),
    "buyer_endpoint_errors": ("step_duration", "Horizon Direct"),
    "buyer_acceptance_drop": ("buyer_acceptance", "Keystone Marketing"),
}


def alerts(store, rule) -> pd.DataFrame:
    df = store.sql(HOURLY[rule])
    df = df[df.n >= 20]
    return df[RULES[rule](df.v)]


def test_a_clean_run_fires_no_alert(clean):
    store, _ = clean
    for rule in RULES:
        fired = alerts(store, rule)
        assert fired.empty, f"{rule} fired on a clean run:\n{fired}"


def test_each_incident_fires_its_alert_in_its_window(sample):
    store, report = sample
    fired = {rule: alerts(store, rule) for rule in RULES}
    for inc in report.incidents:
        rule, who = FIRES[inc.name]
        df = fired[rule]
        first_hour = pd.Timestamp(inc.starts_at).floor("h")
        hours = df[(df.h >= first_hour) & (df.h < inc.ends_at)]
        if who is not None:
            hours = hours[hours.who == who]
        assert len(hours) >= 1, f"{inc.name} did not fire {rule}"


# --------------------------------------------------------------------------- specs


def test_specs_parse_and_resolve_with_defaults():
    flow = load_flow()
    end = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
    start = end - dt.timedelta(days=7)
    specs = [
        "nine_digit_phones",
        {"name": "enhancement_outage", "rate": 0.5, "start": "2d6h", "duration": "90m"},
        {"enhancement_timeouts": {"hours": "9-11"}},
        incident("buyer_segment_rejection", values=["TX", "FL"], start="50%"),
    ]
    incs = resolve(specs, flow, start, end, "run_x")
    assert [i.name for i in incs][:2] == ["nine_digit_phones", "enhancement_outage"]
    assert incs[0].parameters["source"] == "LeadRiver" and incs[0].parameters["rate"] == 0.8
    assert incs[1].starts_at == start + dt.timedelta(days=2, hours=6)
    assert incs[1].ends_at - incs[1].starts_at == dt.timedelta(minutes=90)
    assert incs[3].parameters["values"] == ["TX", "FL"]
    assert incs[3].starts_at == start + dt.timedelta(days=3.5)
    assert resolve(specs, flow, start, end, "run_x") == incs  # ids are stable


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no_such_thing", "unknown incident 'no_such_thing'; known incidents: nine_digit"),
        ("nine_digit_phones:rate=1.5", "rate=1.5 is not a probability"),
        ("nine_digit_phones:source=Nobody", "unknown source 'Nobody'; accepted: Acme Leads"),
        ("nine_digit_phones:colour=red", "unknown parameter 'colour'; accepted: source, rate"),
        ("nine_digit_phones:rate", "'rate' is not k=v"),
        ("enhancement_outage:duration=soon", "duration='soon' is not a duration"),
        ("enhancement_timeouts:hours=25-3", "give local hours like 13-17"),
        ("business_hours_wrong_timezone:timezone=Mars/Base", "unknown timezone 'Mars/Base'"),
        ("business_hours_wrong_timezone:filter=Service Area", "has no business_hours rule"),
        ("source_rejection_spike:field=city", "'city' is not required by source"),
        ("buyer_acceptance_drop:buyer=Nobody", "unknown buyer 'Nobody'"),
    ],
)
def test_bad_incidents_are_refused(spec, message):
    end = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    with pytest.raises(IncidentError) as e:
        resolve([spec], load_flow(), end - dt.timedelta(7), end, "r")
    assert message in str(e.value)
