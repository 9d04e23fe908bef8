"""Importing events-API pages: the mapping, derived events, snapshots, no loss, re-import."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

import workbench
from workbench.importer import ImportInputError, import_events

FIXTURES = Path(__file__).parent / "fixtures"
API = FIXTURES / "api"
CONFIG = FIXTURES / "flow_config.yaml"

DELIVERED = "65a54190000000000001ead1"
REJECTED = "65a54190000000000001ead2"
FILTERED = "65a54190000000000001ead3"
BUYER_REJECTED = "65a54190000000000001ead4"
MASKED = "65a54190000000000001ead5"


@pytest.fixture(scope="module")
def imported():
    """The API fixtures imported with the flow configuration (store, report)."""
    store = workbench.open_store()
    report = import_events(API, store, flow_config=CONFIG, progress=False)
    yield store, report
    store.close()


def _objects() -> list[dict]:
    return [o for p in sorted(API.glob("*.json")) for o in json.loads(p.read_text())]


def test_every_object_is_accounted_for(imported):
    store, report = imported
    assert report.objects == 25 and report.repeats == 2
    assert report.objects == (
        report.mapped_objects + report.repeats + len(report.unclassified) + len(report.unreadable)
    )
    assert report.events_sent == report.ingest.received
    assert report.ingest.received == report.mapped_objects + report.derived_events + len(
        report.unclassified
    )
    assert report.ingest.stored == report.mapped_objects + report.derived_events == 32
    assert report.ingest.quarantined == len(report.unclassified) == 1
    # every distinct API id is stored or quarantined, none lost
    ids = {o["id"] for o in _objects()}
    stored = set(store.sql("SELECT metadata->>'original_id' AS i FROM events").i)
    quarantined = set(store.quarantined().event_id)  # the kept-aside object's own id
    assert stored | quarantined == ids


def test_mapping_with_the_flow_config(imported):
    _, report = imported
    assert report.counts() == {
        ("source/success", "source.accepted/success"): 3,
        ("source/failure", "source.rejected/failure"): 2,
        ("filter/success", "filter.passed/success"): 2,
        ("filter/continue", "filter.passed/success"): 1,
        ("filter/failure", "filter.failed/failure"): 1,
        ("recipient/success", "enhancement.success/success"): 3,
        ("recipient/error", "enhancement.error/error"): 1,
        ("recipient/skip", "enhancement.success/skipped"): 1,
        ("recipient/success", "recipient.delivered/success"): 2,
        ("recipient/failure", "recipient.failed/failure"): 1,
        ("recipient/error", "recipient.error/error"): 1,
        ("recipient/skip", "recipient.delivered/skipped"): 2,
        ("feedback/success", "feedback.received/success"): 1,
        ("return/success", "feedback.received/success"): 1,
    }
    assert dict(report.derived) == {"source.submitted": 5, "flow.completed": 5}
    assert dict(report.classified_by) == {"flow config": 11}


def test_without_a_flow_config_module_id_then_price_decide():
    store = workbench.open_store()
    report = import_events(API, store, progress=False)
    by = dict(report.classified_by)
    assert by == {"module_id": 6, "price": 1, "no price": 4}
    counts = report.counts()
    # Buyer A's failure carries no price and a generic module: taken for an enhancement
    assert counts[("recipient/failure", "enhancement.failure/failure")] == 1
    assert counts[("recipient/success", "recipient.delivered/success")] == 2
    failed = store.events(type="enhancement.failure")
    assert failed.metadata[0]["import"]["classified_by"] == "no price"


def test_derived_events_are_flagged_and_placed(imported):
    store, _ = imported
    tl = store.timeline(DELIVERED)
    assert list(tl.type) == [
        "source.submitted",
        "source.accepted",
        "enhancement.success",
        "enhancement.success",
        "filter.passed",
        "recipient.delivered",
        "flow.completed",
        "feedback.received",
    ]
    derived = {t: m.get("derived", False) for t, m in zip(tl.type, tl.metadata, strict=True)}
    assert derived["source.submitted"] and derived["flow.completed"]
    assert not derived["source.accepted"] and not derived["recipient.delivered"]
    sub, acc, done = (
        tl[tl.type == t].iloc[0] for t in ("source.submitted", "source.accepted", "flow.completed")
    )
    assert sub.timestamp == acc.timestamp  # both at the source object's start
    assert (done.timestamp - sub.timestamp).total_seconds() * 1000 == 700  # at its end
    assert sub.metadata["derived_from"] == acc.metadata["original_id"]
    assert sub.metadata["raw_data"].startswith("{") and sub.metadata["ip_address"] == "203.0.113.9"


def test_money_adds_up_in_flow_completed(imported):
    store, _ = imported
    done = store.events(type="flow.completed")
    by_lead = {r.lead_id: r.metadata for r in done.itertuples()}
    assert by_lead[DELIVERED]["total_cost"] == pytest.approx(1.30)
    assert by_lead[DELIVERED]["total_revenue"] == 45.0
    assert by_lead[DELIVERED]["final_outcome"] == "delivered"
    assert by_lead[BUYER_REJECTED]["total_revenue"] == 30.0
    assert by_lead[FILTERED]["final_outcome"] == "filtered"
    assert by_lead[REJECTED]["final_outcome"] == "rejected"
    assert by_lead[MASKED]["final_outcome"] == "delivery_error"
    summary = store.lead_summary().set_index("lead_id")
    for lead, md in by_lead.items():
        assert summary.loc[lead, "total_cost"] == pytest.approx(md["total_cost"])
        assert summary.loc[lead, "revenue"] == pytest.approx(md["total_revenue"])


def test_event_record_fields(imported):
    store, _ = imported
    events = store.events()
    assert all(re.fullmatch(r"evt_[0-9A-Za-z]{20}", e) for e in events.event_id)
    assert set(events.lead_id) == {DELIVERED, REJECTED, FILTERED, BUYER_REJECTED, MASKED}
    assert set(events.flow_id) == {"65a5419000000000000f1001"}
    delivered = events[(events.type == "recipient.delivered") & (events.outcome == "success")]
    row = delivered[delivered.lead_id == DELIVERED].iloc[0]
    assert row.duration_ms == 342 and row.revenue == 45.0 and row.http_status == 200
    assert row.step_name == "Buyer A" and row.entity_id == "ent_buyer_a"
    md = row.metadata
    assert md["recipient"] == "Buyer A" and md["buyer_lead_id"] == "buyer-lead-12345"
    assert json.loads(md["payload"])["email"] == "john.smith@example.com"
    assert "body" not in md["request"] and md["request"]["uri"].startswith("https://buyer")
    # what has no field of its own is kept under metadata.api
    assert md["api"]["wait_ms"] == 2 and md["api"]["module_id"].endswith(".json")
    assert md["import"] == {
        "format": "api",
        "source_type": "recipient",
        "source_outcome": "success",
        "classified_by": "flow config",
    }
    rejected = store.timeline(REJECTED)
    assert list(rejected.type) == ["source.submitted", "source.rejected", "flow.completed"]
    assert rejected.rejection_reason[1] == "Invalid phone format: expected 10 digits, got 9"
    assert rejected.cost[1] == 0.0 and rejected.entity_name[1] == "Bolt Media"


def test_every_required_key_is_present(imported):
    store, _ = imported
    for row in store.events().itertuples():
        required = store.catalog.get(row.type).required_metadata
        assert set(required) <= set(row.metadata), (row.type, row.metadata)


def test_errors_and_skips(imported):
    store, _ = imported
    tl = store.timeline(BUYER_REJECTED)
    tf = tl[tl.type == "enhancement.error"].iloc[0]
    assert tf.error_type == "timeout" and tf.http_status == 504 and tf.duration_ms == 5000
    assert tf.metadata["timeout"] == {"timed_out": True}
    skip = tl[tl.outcome == "skipped"].iloc[0]
    # a skipped step without timings: placed right after the step before it
    assert skip.type == "enhancement.success" and pd.isna(skip.duration_ms)
    assert skip.timestamp == tf.timestamp + pd.Timedelta(milliseconds=int(tf.duration_ms))
    assert skip.metadata["skip_reason"] == "no phone check for landlines"
    assert skip.metadata["import"]["timestamp_from"] == "previous step"
    assert pd.isna(skip.rejection_reason)  # a skip is no rejection
    failed = tl[tl.type == "recipient.failed"].iloc[0]
    assert failed.rejection_reason == "Duplicate lead" and failed.metadata["business_logic"]
    filtered = store.timeline(FILTERED)
    assert list(filtered.outcome[filtered.type == "recipient.delivered"]) == ["skipped"] * 2
    err = store.timeline(MASKED)
    err = err[err.type == "recipient.error"].iloc[0]
    assert err.http_status == 503 and err.error_type == "http_503"


def test_feedback_returns_and_conversions(imported):
    store, _ = imported
    fb = store.events(type="feedback.received")
    kinds = {r.lead_id: r.metadata for r in fb.itertuples()}
    assert kinds[DELIVERED]["feedback_type"] == "conversion"
    assert kinds[DELIVERED]["status"] == "converted"
    assert kinds[BUYER_REJECTED]["feedback_type"] == "return"
    assert kinds[BUYER_REJECTED]["reason"] == "Disconnected number"
    assert kinds[BUYER_REJECTED]["import"]["timestamp_from"] == "object id"
    summary = store.lead_summary().set_index("lead_id")
    assert summary.loc[DELIVERED, "outcome"] == "converted"
    assert summary.loc[BUYER_REJECTED, "outcome"] == "returned"


def test_snapshots_keep_typed_and_masked_values(imported):
    store, _ = imported
    objs = {o["id"]: o for o in _objects()}
    for row in store.events().itertuples():
        if row.type == "flow.completed" or row.type == "source.submitted":
            continue
        lead = objs[row.metadata["original_id"]]["vars"]["lead"]
        # the lead is stored as exported, typed objects whole
        assert {k: row.lead_snapshot[k] for k in lead} == lead
    masked = store.timeline(MASKED).lead_snapshot.iloc[-1]
    assert masked["phone_1"]["normal"] == "512789****" and masked["phone_1"]["masked"] is True
    assert masked["dob"] == "**/**/1980" and masked["email"] == "j***@example.com"
    invalid = store.timeline(REJECTED).lead_snapshot.iloc[0]["phone_1"]
    assert invalid == {"raw": "512555012", "valid": False}
    # earlier steps' appended data joins the snapshot as dotted keys
    delivered = store.timeline(DELIVERED)
    snap = delivered[delivered.type == "recipient.delivered"].lead_snapshot.iloc[0]
    assert snap["trustedform.age_seconds"] == 12 and snap["phone_check.score"] == 95
    completed = delivered[delivered.type == "flow.completed"].lead_snapshot.iloc[0]
    assert completed == snap
    # nothing anywhere was unmasked: the masked lead's raw digits appear nowhere
    text = store.sql(
        "SELECT string_agg(lead_snapshot::VARCHAR || metadata::VARCHAR, '') AS t "
        "FROM events WHERE lead_id = ?",
        [MASKED],
    ).t[0]
    assert "512789****" in text and not re.search(r"512789\d{4}", text)


def test_unknown_step_type_is_quarantined_with_its_reason(imported):
    store, report = imported
    (problem,) = report.unclassified
    assert problem.reason.startswith("unknown step type 'webhook'")
    assert problem.lead_id == MASKED and problem.file == "page_003.json"
    q = store.quarantined()
    assert list(q.type) == ["webhook"] and q.lead_id[0] == MASKED
    assert q.reason[0] == problem.reason and q.origin[0] == f"page_003.json {problem.place}"
    raw = json.loads(q.raw[0])
    assert raw["type"] == "webhook" and "vars" in raw  # the whole object, as exported


def test_reimport_is_a_no_op(imported):
    store, first = imported
    before = store.count()
    again = import_events(API, store, flow_config=CONFIG, progress=False)
    assert again.ingest.stored == 0
    assert again.ingest.duplicates == first.ingest.stored
    assert store.count() == before
    assert store.verify().ok


def test_names_are_registered(imported):
    store, _ = imported
    assert store.sql("SELECT name FROM flows").name.tolist() == ["Solar leads"]
    steps = store.sql("SELECT name, kind FROM steps ORDER BY position")
    assert steps.name.tolist() == [
        "TrustedForm",
        "Phone Check",
        "Service Area",
        "Buyer A",
        "Buyer B",
    ]
    kinds = dict(store.sql("SELECT name, kind FROM entities").values.tolist())
    assert kinds["Acme Leads"] == "source" and kinds["Buyer B"] == "recipient"


def test_truncated_page_keeps_complete_objects():
    store = workbench.open_store()
    report = import_events(FIXTURES / "api_truncated", store, progress=False)
    assert report.mapped_objects == 2 and len(report.unreadable) == 1
    (bad,) = report.unreadable
    assert "truncated" in bad.reason and bad.file == "page_004.json"
    assert report.ingest.stored == 2 and report.ingest.quarantined == 1
    q = store.quarantined()
    assert q.type[0] == "import.unreadable" and "truncated" in q.reason[0]
    assert q.origin[0].startswith("page_004.json")
    assert q.raw[0].lstrip().startswith("{") and '"id"' in q.raw[0]  # the text as it was


def test_shape_detection_and_forced_format(tmp_path):
    with pytest.raises(ImportInputError, match="cannot tell the shape of unknown_shape.json"):
        import_events(FIXTURES / "unknown_shape.json", workbench.open_store())
    # forcing a shape on objects without it: each is kept aside with the reason
    store = workbench.open_store()
    report = import_events(FIXTURES / "unknown_shape.json", store, format="api")
    assert len(report.unclassified) == 2 and report.ingest.quarantined == 2
    with pytest.raises(ImportInputError, match="format 'xml' is not one of auto, dotted, api"):
        import_events(API, store, format="xml")
    with pytest.raises(ImportInputError, match="nothing to import at"):
        import_events(tmp_path / "missing", store)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImportInputError, match="holds no export files"):
        import_events(tmp_path, store)


def test_api_pages_as_json_lines(tmp_path):
    lines = tmp_path / "events.jsonl"
    lines.write_text("\n".join(json.dumps(o) for o in _objects()) + "\n")
    store = workbench.open_store()
    report = import_events(lines, store, progress=False)
    assert report.formats == ("api",) and report.repeats == 2
    assert report.ingest.stored == 32


def test_gzipped_pages_and_an_unclosed_array(tmp_path):
    import gzip

    text = (API / "page_001.json").read_text()
    with gzip.open(tmp_path / "page_001.json.gz", "wt") as fh:
        fh.write(text)
    # every object complete, only the closing bracket missing: nothing lost, a note
    (tmp_path / "page_002.json").write_text(text.rstrip().removesuffix("]"))
    store = workbench.open_store()
    report = import_events(tmp_path, store, progress=False)
    assert [f.name for f in report.files] == ["page_001.json.gz", "page_002.json"]
    assert report.repeats == 8 and not report.unreadable
    assert any("not closed" in n for n in report.notices)
