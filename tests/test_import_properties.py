"""Property: whatever an events-API export holds, every object lands or is kept aside.

Random objects (odd types and outcomes, missing timings, no lead, repeated ids,
values that are not objects), in a page that may be cut off anywhere: each object is
mapped, taken as a repeat, or quarantined with a reason; none is lost and the counts
of the mapping report and the store's ingest report agree.
"""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench
from workbench.importer import import_events

IDS = [f"65a54168a1b2c3d4{n:08x}" for n in range(12)]
LEADS = ["65a54190000000000001eada", "65a54190000000000001eadb", None]

api_object = st.fixed_dictionaries(
    {
        "id": st.sampled_from([*IDS, None]),
        "type": st.sampled_from(
            ["source", "filter", "recipient", "feedback", "return", "webhook", None, 7]
        ),
        "outcome": st.sampled_from(["success", "failure", "error", "skip", "continue", "odd"]),
    },
    optional={
        "start_timestamp": st.one_of(
            st.integers(1_600_000_000_000, 1_800_000_000_000),
            st.integers(-(10**17), 10**17),
            st.just("2024-01-15T14:30:00Z"),
            st.just("not a time"),
        ),
        "end_timestamp": st.one_of(st.integers(-(10**17), 10**17), st.just("9999-12-31")),
        "ms": st.one_of(st.integers(-5, 10_000), st.just("slow")),
        "price": st.one_of(st.floats(0, 100, allow_nan=False), st.just("$12")),
        "module_id": st.sampled_from(["leadconduit-trustedform.outbound.x", "custom.json"]),
        "reason": st.text(max_size=20),
        "kind": st.sampled_from(["return", "conversion", "refund"]),
        "vars": st.one_of(
            st.fixed_dictionaries(
                {
                    "lead": st.fixed_dictionaries(
                        {"id": st.sampled_from(LEADS)},
                        optional={"phone_1": st.just({"raw": "512", "valid": False})},
                    )
                },
                optional={"flow": st.just({"id": "f1", "name": "F"})},
            ),
            st.just([1, 2]),
        ),
    },
)
page = st.lists(st.one_of(api_object, st.integers(), st.just([])), max_size=12)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(objects=page, cut=st.one_of(st.none(), st.floats(0.05, 0.99)))
def test_every_object_lands_or_is_kept_aside(tmp_path, objects, cut):
    text = json.dumps(objects, indent=1)
    if cut is not None:
        text = text[: int(len(text) * cut)]
    path = tmp_path / "page.json"
    path.write_text(text)
    store = workbench.open_store()
    report = import_events(path, store, format="api", progress=False)
    accounted = report.mapped_objects + report.repeats
    accounted += len(report.unclassified) + len(report.unreadable)
    assert report.objects == accounted
    ingest = report.ingest
    assert ingest.received == report.events_sent
    assert ingest.received == ingest.stored + ingest.duplicates + ingest.quarantined
    # the store takes every mapped event; what it quarantines is what the import kept aside
    assert ingest.stored == report.mapped_objects + report.derived_events
    assert ingest.quarantined == len(report.unclassified) + len(report.unreadable)
    assert store.count() == ingest.stored
    if cut is None:
        ids = {o["id"] for o in objects if isinstance(o, dict) and o["id"]}
        stored = set(store.sql("SELECT metadata->>'original_id' AS i FROM events").i)
        aside = set(store.quarantined().event_id)
        assert ids <= stored | aside
    store.close()
