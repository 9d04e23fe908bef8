import datetime as dt
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import workbench
from workbench import catalog
from workbench.store import IngestReport

from .conftest import lead_events, make_event


def test_report_adds_up_and_events_land(store):
    events = lead_events("lead_A", dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC))
    r = store.append(events)
    assert r == IngestReport(received=6, stored=6, duplicates=0, quarantined=0)
    assert (r.first_seq, r.last_seq) == (1, 6)
    assert store.count() == 6


def test_report_refuses_to_not_add_up():
    with pytest.raises(AssertionError):
        IngestReport(received=3, stored=1, duplicates=1, quarantined=0)


def test_seq_follows_arrival_order_not_timestamps(store):
    t = dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)
    late = make_event(at=t + dt.timedelta(seconds=5))
    early = make_event(at=t)
    store.append([late, early])
    df = store.sql("SELECT seq, event_id FROM events ORDER BY seq")
    assert df.event_id.tolist() == [late["event_id"], early["event_id"]]
    assert df.seq.tolist() == [1, 2]


def test_reingesting_is_a_no_op(store):
    events = lead_events("lead_A", dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC))
    store.append(events)
    r = store.append(events)
    assert (r.stored, r.duplicates) == (0, 6)
    assert store.count() == 6


def test_duplicates_within_one_input_keep_the_first(store):
    e = make_event()
    twin = dict(e, metadata=json.loads(json.dumps(e["metadata"])))  # same content
    changed = dict(e, outcome="success", duration_ms=999)  # same id, other content
    r = store.append([e, twin, changed])
    assert (r.stored, r.duplicates, r.quarantined) == (1, 1, 1)
    assert store.events().duration_ms.tolist() == [25]
    (reason,) = store.quarantined().reason
    assert "given earlier in the same input with other content" in reason


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"type": "recipient.teleported"}, "unknown event type 'recipient.teleported'"),
        ({"lead_id": None}, "missing lead_id"),
        ({"lead_id": "  "}, "missing lead_id"),
        ({"event_id": None}, "missing event_id"),
        ({"type": None}, "missing type"),
        ({"timestamp": "last tuesday"}, "unparseable timestamp 'last tuesday'"),
        ({"timestamp": None}, "missing timestamp"),
        ({"metadata": [1, 2]}, "metadata is a JSON array, not an object"),
        ({"metadata": "{not json"}, "metadata is not valid JSON"),
        ({"lead_snapshot": "oops"}, "lead_snapshot is not valid JSON"),
        ({"lead_snapshot": [1]}, "lead_snapshot is a JSON array, not an object"),
        ({"outcome": "maybe"}, "outcome 'maybe' does not fit"),
        ({"duration_ms": -3}, "duration_ms '-3' is not a whole, non-negative number"),
        ({"duration_ms": "fast"}, "duration_ms 'fast'"),
        ({"duration_ms": 251802214400000}, "duration_ms '251802214400000'"),
        ({"timestamp": 10**19}, "unparseable timestamp"),
    ],
)
def test_invalid_events_are_quarantined_with_reason_and_origin(store, change, reason):
    good = make_event()
    bad = make_event(**change)
    r = store.append([good, bad])
    assert (r.stored, r.quarantined) == (1, 1)
    q = store.quarantined()
    assert len(q) == 1
    assert q.reason[0].startswith(reason)
    assert q.origin[0] == "batch 0 row 1"
    assert (q.batch[0], q.row[0]) == (0, 1)
    assert json.loads(q.raw[0])["event_id"] == bad["event_id"]
    assert r.reasons[0][0] == q.reason[0]


def test_missing_required_metadata_key_is_named(store):
    meta = catalog.example_metadata("recipient.delivered")
    del meta["revenue"], meta["payload"]
    r = store.append([make_event("recipient.delivered", metadata=meta)])
    assert r.quarantined == 1
    assert store.quarantined().reason[0] == (
        "recipient.delivered is missing required metadata: payload, revenue"
    )


def test_outcome_defaults_to_the_type_implied_one(store):
    store.append([make_event("recipient.error"), make_event("filter.failed", outcome=None)])
    assert sorted(store.events().outcome) == ["error", "failure"]


def test_outcome_must_fit_the_type(store):
    r = store.append([make_event("recipient.delivered", outcome="failure")])
    assert r.quarantined == 1
    assert "allowed: success, skipped" in store.quarantined().reason[0]


def test_jsonl_file_quarantines_bad_lines_with_file_and_line(store, tmp_path):
    path = tmp_path / "events.jsonl"
    good = [make_event() for _ in range(3)]
    lines = [
        json.dumps(good[0]),
        "{truncated",
        "",
        json.dumps(good[1]),
        "[1, 2]",
        json.dumps(good[2]),
    ]
    path.write_text("\n".join(lines) + "\n")
    r = store.append(path)
    assert (r.received, r.stored, r.quarantined) == (5, 3, 2)
    q = store.quarantined()
    assert q.origin.tolist() == [f"{path}:2", f"{path}:5"]
    assert q.line.tolist() == [2, 5]
    assert q.raw.tolist() == ["{truncated", "[1, 2]"]
    assert q.reason.tolist() == ["malformed JSON line", "line is a JSON array, not an event object"]


def test_json_array_and_parquet_and_arrow_and_pandas_inputs(store, tmp_path):
    t0 = dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)
    a = lead_events("lead_A", t0)
    b = lead_events("lead_B", t0)
    c = lead_events("lead_C", t0)
    d = lead_events("lead_D", t0)
    (tmp_path / "a.json").write_text(json.dumps(a))
    flat = [
        dict(e, metadata=json.dumps(e["metadata"]), lead_snapshot=json.dumps(e["lead_snapshot"]))
        for e in b
    ]
    pq.write_table(pa.Table.from_pylist(flat), tmp_path / "b.parquet")
    store.append(tmp_path / "a.json")
    store.append(tmp_path / "b.parquet")
    store.append(
        pa.Table.from_pylist(
            [
                dict(
                    e,
                    metadata=json.dumps(e["metadata"]),
                    lead_snapshot=json.dumps(e["lead_snapshot"]),
                )
                for e in c
            ]
        )
    )
    store.append(pd.DataFrame(d))
    assert store.count() == 24
    assert store.sql("SELECT count(DISTINCT lead_id) AS n FROM events").n[0] == 4


def test_record_batch_reader_streams_in_batches(store):
    rows = [make_event(lead_id=f"lead_{i % 50}") for i in range(1200)]
    for r in rows:
        r["metadata"] = json.dumps(r["metadata"])
        r["lead_snapshot"] = json.dumps(r["lead_snapshot"])
    table = pa.Table.from_pylist(rows)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=100))
    r = store.append(reader)
    assert (r.received, r.stored) == (1200, 1200)


def test_timestamps_epoch_ms_offsets_and_naive_datetimes(store):
    store.append(
        [
            make_event(timestamp=1705329045234),
            make_event(timestamp="2024-01-15T16:30:45.234+02:00"),
            make_event(timestamp=dt.datetime(2024, 1, 15, 14, 30, 45, 234000)),
        ]
    )
    ts = store.events().timestamp.tolist()
    assert len(set(ts)) == 1
    assert ts[0] == pd.Timestamp("2024-01-15T14:30:45.234Z")


def test_timestamps_are_kept_to_the_millisecond(store):
    store.append([make_event(timestamp="2024-01-15T14:30:45.234567Z")])
    assert store.events().timestamp[0] == pd.Timestamp("2024-01-15T14:30:45.234Z")


def test_fields_outside_the_record_are_kept_in_metadata(store):
    store.append([make_event(account="acme-co", priority=3)])
    meta = store.events().metadata[0]
    assert meta["_extra"] == {"account": "acme-co", "priority": 3}


def test_typed_columns_are_derived_from_metadata(store):
    meta = catalog.example_metadata("recipient.failed")
    meta["rejection_reason"] = "Outside service area"
    meta["http_status"] = 200
    error = dict(catalog.example_metadata("enhancement.error"), error_type="timeout")
    store.append(
        [
            make_event("recipient.failed", metadata=meta),
            make_event("recipient.delivered"),
            make_event("enhancement.error", metadata=error),
            make_event("source.accepted"),
        ]
    )
    df = store.events().set_index("type")
    assert df.loc["recipient.failed", "rejection_reason"] == "Outside service area"
    assert df.loc["recipient.failed", "entity_name"] == "Buyer A"
    assert df.loc["recipient.delivered", "revenue"] == 45.0
    assert df.loc["enhancement.error", "http_status"] == 504
    assert df.loc["enhancement.error", "error_type"] == "timeout"
    assert df.loc["source.accepted", "cost"] == 1.25
    assert df.loc["source.accepted", "step_name"] == "Acme Leads"


def test_step_names_come_from_the_steps_dimension(store):
    store.register_flow("flow_test", "Solar leads")
    store.register_step(
        "step_test", "flow_test", 3, "enhancement", "Phone validation (Acme)", "ent_test"
    )
    store.append([make_event("enhancement.success")])
    assert store.events().step_name[0] == "Phone validation (Acme)"


def test_custom_event_types_are_validated_the_same_way(store):
    store.register_event_type(
        "quality.scored", when="A lead gets a quality score", required_metadata=["score"]
    )
    r = store.append(
        [
            make_event("quality.scored", metadata={"score": 7}),
            make_event("quality.scored", metadata={}),
        ]
    )
    assert (r.stored, r.quarantined) == (1, 1)
    assert store.quarantined().reason[0] == "quality.scored is missing required metadata: score"


def test_custom_types_persist_with_the_store(store_path):
    with workbench.open_store(store_path) as s:
        s.register_event_type(
            "consent.checked", when="Consent is verified", required_metadata=["method"]
        )
    with workbench.open_store(store_path) as s:
        r = s.append([make_event("consent.checked", metadata={"method": "checkbox"})])
        assert r.stored == 1


def test_process_wide_custom_types_reach_open_stores(store):
    workbench.register_event_type("audit.sampled", when="A lead is sampled for audit")
    try:
        assert store.append([make_event("audit.sampled", metadata={})]).stored == 1
    finally:
        catalog.DEFAULT_CATALOG._types.pop("audit.sampled")


def test_non_event_items_are_quarantined_not_dropped(store):
    r = store.append([make_event(), "a string", 42, None])
    assert (r.received, r.stored, r.quarantined) == (4, 1, 3)
    assert set(store.quarantined().reason) == {
        "event is a str, not an object",
        "event is a int, not an object",
        "event is a NoneType, not an object",
    }


def test_a_failed_batch_leaves_nothing_half_written(store, monkeypatch):
    store.append([make_event()])

    from workbench.store import summary

    monkeypatch.setattr(
        summary,
        "INSERT_PARTS_SQL",
        "SELECT error('disk full ' || $first || $last)",
    )
    with pytest.raises(Exception, match="disk full"):
        store.append([make_event(), make_event()])
    monkeypatch.undo()
    assert store.count() == 1
    assert store.verify().ok
    assert store.append([make_event()]).last_seq == 2


def test_unreadable_inputs_get_clear_errors(store, tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        store.append(tmp_path / "nope.jsonl")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="cannot tell the format"):
        store.append(tmp_path / "x.csv")
    with pytest.raises(ValueError, match="cannot read a float"):
        store.append(3.14)


@pytest.mark.parametrize(
    "argument, message",
    [
        (dict(label=object()), "label= names the input"),
        (dict(label=b"x"), "label= names the input"),
        (dict(batch_rows="10"), "batch_rows='10'"),
        (dict(batch_rows=None), "batch_rows=None"),
        (dict(batch_rows=2.5), "batch_rows=2.5"),
        (dict(batch_rows=0), "batch_rows must be at least 1"),
        (dict(rejects=5), "rejects= takes a list"),
        (dict(rejects="raw"), "rejects= takes a list"),
        (dict(rejects=[workbench.Rejected("raw", "why"), 5]), "not int"),
    ],
)
def test_bad_append_arguments_are_named_before_anything_is_stored(store, argument, message):
    from workbench.errors import InputError

    with pytest.raises(InputError, match=message):
        store.append([make_event()], **argument)
    assert store.count() == 0 and store.sql("SELECT count(*) n FROM quarantine").n[0] == 0


def test_append_takes_a_path_as_label_and_none_for_rejects(store, tmp_path):
    r = store.append([make_event()], label=tmp_path / "events.jsonl", rejects=None)
    assert r.stored == 1 and r.source == str(tmp_path / "events.jsonl")


PERSONAL_IDS = {
    "an email address": ["lead_john@example.com", "josé.zqcanary@exämple.com"],
    "a phone number": ["lead_5125550123", "lead_(512) 867-5309", "+1 512 867 5309"],
    "an SSN": ["lead_078-05-1120", "078.05.1120"],
}
ID_FIELDS = ["event_id", "lead_id", "flow_id", "entity_id", "step_id"]


@pytest.mark.parametrize("field", ID_FIELDS)
def test_ids_that_carry_personal_data_are_quarantined(store, field):
    events = [make_event(**{field: value}) for values in PERSONAL_IDS.values() for value in values]
    r = store.append([*events, make_event()])
    assert (r.stored, r.quarantined) == (1, len(events))
    reasons = store.quarantined().reason.tolist()
    expected = [
        f"{field} looks like {kind}; ids must not carry personal data"
        for kind, values in PERSONAL_IDS.items()
        for _ in values
    ]
    assert reasons == expected  # in input order, and never the value itself


def test_ids_that_only_hold_digits_are_stored(store):
    ordinary = [
        "lead_5T8nK3mP9Q2wR7xN",  # the platform's base62 ids
        "evt_test0000000000000001",  # digits inside a word
        "65a54190000000000005e000",  # a 24-hex API id
        "evt_1234567890123456",  # 16 digits: longer than any phone number
        "lead_123456789",  # nine bare digits: a record number as likely as an SSN
        "lead_2024-01-15",
        "ent_acme@v2.1",  # no letters after the dot
    ]
    r = store.append([make_event(lead_id=v) for v in ordinary])
    assert (r.stored, r.quarantined) == (len(ordinary), 0)


def test_personal_ids_are_found_in_every_input_shape(store, tmp_path):
    lines = tmp_path / "events.jsonl"
    lines.write_text(json.dumps(make_event(lead_id="lead_5125550123")) + "\n")
    frame = pd.DataFrame([dict(make_event(), lead_id=5125550123)])  # a number, not text
    for given in (lines, frame, pa.Table.from_pylist([make_event(step_id="a@b.example")])):
        assert store.append(given).quarantined == 1
    assert store.count() == 0 and store.verify().ok


def test_per_lead_summary_is_kept_up_to_date(store):
    t0 = dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)
    store.append(lead_events("lead_ok", t0) + lead_events("lead_no", t0, delivered=False))
    feedback = make_event("feedback.received", lead_id="lead_ok", at=t0 + dt.timedelta(hours=3))
    store.append([feedback])
    s = store.lead_summary().set_index("lead_id")
    assert s.loc["lead_ok", "stage"] == "converted"
    assert s.loc["lead_ok", "source"] == "Acme Leads"
    assert s.loc["lead_ok", "revenue"] == 45.0
    assert s.loc["lead_ok", "total_cost"] == pytest.approx(1.25 + 1.25)  # lead + enhancement
    assert s.loc["lead_ok", "events"] == 7
    assert s.loc["lead_no", "stage"] == "accepted"
    assert s.loc["lead_no", "outcome"] == "buyer_rejected"


def test_compacted_summary_reads_the_same_as_the_parts(monkeypatch):
    """Compaction folds summary parts into one row per lead; reads must not change."""
    from workbench import store as store_module

    t0 = dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)
    batches = [lead_events(f"lead_{i}", t0 + dt.timedelta(minutes=i)) for i in range(6)]
    later = [
        make_event("feedback.received", lead_id=f"lead_{i}", at=t0 + dt.timedelta(days=1))
        for i in (0, 2)
    ]
    plain, compacting = workbench.open_store(), workbench.open_store()
    try:
        for b in [*batches, later]:
            plain.append(b)
        monkeypatch.setattr(store_module.summary, "COMPACT_MIN_PARTS", 1)
        monkeypatch.setattr(store_module.summary, "COMPACT_SHARE", 0.0)
        for i, b in enumerate([*batches, later]):
            compacting.append(b)
            if i == 3:  # some parts compacted, some not: the view merges both
                monkeypatch.setattr(store_module.summary, "COMPACT_MIN_PARTS", 10**9)
        assert compacting.sql("SELECT count(*) AS n FROM lead_summary_compact").n[0] > 0
        a = plain.lead_summary().sort_values("lead_id").reset_index(drop=True)
        b = compacting.lead_summary().sort_values("lead_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
        assert a.set_index("lead_id").loc["lead_0", "stage"] == "converted"
        assert compacting.compact_summary() == 6
        c = compacting.lead_summary().sort_values("lead_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(a, c)
    finally:
        plain.close()
        compacting.close()
