"""Importing dotted events (the guide's shape): a JSON array and JSON lines."""

import json
from pathlib import Path

import pandas as pd
import pytest

import workbench
from workbench.importer import import_events

DOTTED = Path(__file__).parent / "fixtures" / "dotted"
GUIDE_LEAD = "lead_5T8nK3mP9Q2wR7xN"
LINES_LEAD = "lead_9Q2wR7xN5T8nK3mP"


@pytest.fixture(scope="module")
def imported():
    store = workbench.open_store()
    report = import_events(DOTTED, store, progress=False)
    yield store, report
    store.close()


def test_counts_and_no_loss(imported):
    store, report = imported
    assert [(f.name, f.format, f.objects, f.unreadable) for f in report.files] == [
        ("events.json", "dotted", 9, 0),
        ("events.jsonl", "dotted", 4, 2),
    ]
    assert report.objects == 15
    assert report.objects == report.mapped_objects + len(report.unclassified) + len(
        report.unreadable
    )
    ingest = report.ingest
    assert (ingest.received, ingest.stored, ingest.duplicates, ingest.quarantined) == (15, 11, 1, 3)
    assert report.events_sent == ingest.received
    assert not report.derived  # dotted events carry their own source.submitted/flow.completed
    assert report.counts()[("source.submitted", "source.submitted")] == 3


def test_guide_timeline_maps_directly(imported):
    store, _ = imported
    tl = store.timeline(GUIDE_LEAD)
    assert list(tl.event_id) == [f"evt_7K9mHpQR3x2B5N8jL4w{c}" for c in "12345Z78"]
    assert list(tl.type) == [
        "source.submitted",
        "source.accepted",
        "enhancement.success",
        "filter.passed",
        "enhancement.success",
        "recipient.delivered",
        "flow.completed",
        "feedback.received",
    ]
    # a time written with an offset is stored in UTC
    assert tl.timestamp[1] == pd.Timestamp("2024-01-15T10:30:45.156Z")
    assert tl.outcome[4] == "skipped"  # the export's "skip"
    assert tl.metadata[2]["_extra"] == {"account_id": "acct_42"}
    assert tl.lead_snapshot[5]["dob"] == "**/**/1980"
    assert tl.lead_snapshot[5]["phone"] == {
        "normal": "5125550123",
        "raw": "512-555-0123",
        "valid": True,
    }


def test_missing_catalogue_keys_are_filled_with_null(imported):
    store, report = imported
    delivered = store.events(type="recipient.delivered").iloc[0]
    md = delivered.metadata
    assert md["import"]["filled_null"] == [
        "recipient",
        "payload",
        "request",
        "response",
        "buyer_lead_id",
        "revenue",
    ]
    assert md["recipient"] is None and md["buyer_response"]["price"] == 45.0
    # the typed column still finds the guide's price and status
    assert delivered.revenue == 45.0 and delivered.http_status == 200
    assert dict(report.null_required)["recipient.delivered.revenue"] == 1
    accepted = store.events(type="source.accepted").iloc[0]
    assert "import" not in accepted.metadata  # complete events pass untouched


def test_unknown_type_and_broken_lines_are_quarantined(imported):
    store, report = imported
    assert [p.reason for p in report.unclassified] == ["unknown event type 'lead.note'"]
    reasons = [p.reason for p in report.unreadable]
    assert reasons[0].startswith("malformed JSON line (column")
    assert reasons[1].endswith("the file ends inside this line (truncated)")
    assert [p.place for p in report.unreadable] == ["line 5", "line 7"]
    q = store.quarantined()
    assert sorted(q.type) == ["import.unreadable", "import.unreadable", "lead.note"]
    assert q.ingest_id.nunique() == 1  # kept aside in the same ingest
    note = json.loads(q[q.type == "lead.note"].raw.iloc[0])
    assert note["metadata"] == {"note": "called back"}
    broken = q[q.type == "import.unreadable"]
    assert broken.raw.iloc[0].startswith('{"event_id": "evt_broken"')
    assert broken.origin.tolist()[1] == "events.jsonl line 7"


def test_lines_events_and_reimport(imported):
    store, _ = imported
    tl = store.timeline(LINES_LEAD)
    assert list(tl.type) == ["source.submitted", "source.rejected", "recipient.error"]
    assert tl.rejection_reason[1] == "Invalid phone format: expected 10 digits, got 9"
    assert tl.error_type[2] == "timeout" and tl.http_status[2] == 504
    before = store.count()
    again = import_events(DOTTED / "events.json", store, progress=False)
    assert again.ingest.stored == 0 and again.ingest.duplicates == 8
    assert store.count() == before


# --------------------------------------------------------------------------- damaged files


def _guide_lines() -> bytes:
    rows = json.loads((DOTTED / "events.json").read_text())
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def test_a_truncated_gzip_keeps_what_it_held_and_reports_the_rest(tmp_path):
    import gzip

    lines = _guide_lines()
    full = gzip.compress(lines)
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(full[: len(full) * 3 // 4])
    with workbench.open_store() as store:
        report = import_events(path, store, progress=False)
        ingest = report.ingest
        assert ingest.received == ingest.stored + ingest.duplicates + ingest.quarantined
        assert ingest.stored >= 1 and report.unreadable[-1].place == "end of file"
        assert "events.jsonl.gz ends early" in report.unreadable[-1].reason
        assert "ends early" in " ".join(store.quarantined().reason)


def test_a_file_named_gz_that_is_no_gzip_is_reported_not_raised(tmp_path):
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(_guide_lines())
    with workbench.open_store() as store:
        report = import_events(path, store, progress=False)
        assert (report.ingest.received, report.ingest.quarantined) == (1, 1)
        assert "is not a gzip file" in report.unreadable[0].reason
        assert store.quarantined().raw[0].startswith('{"event_id"')  # kept as it was


@pytest.mark.parametrize("name", ["deep.json", "deep.jsonl"])
def test_json_too_deep_for_python_is_an_unreadable_piece(tmp_path, name):
    first = (DOTTED / "events.jsonl").read_text().splitlines()[0]
    deep = "[" * 100_000 + "]" * 100_000
    path = tmp_path / name
    path.write_text(f"[{first},{deep}]" if name.endswith(".json") else f"{first}\n{deep}\n")
    with workbench.open_store() as store:
        report = import_events(path, store, progress=False)
        assert (report.ingest.received, report.ingest.stored) == (2, 1)
        assert "nested too deeply" in report.unreadable[0].reason
