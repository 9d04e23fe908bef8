"""Property: for any mix of valid, invalid and duplicate events, the report adds up and
every stored event reads back unchanged."""

import datetime as dt
import re

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench
from workbench import catalog

TYPES = [t.name for t in catalog.Catalog()]
T0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)

# ten digits in a row read as a phone number, and the store quarantines such an id
# (store/personal_ids.py, tested in test_store_inputs.py): these ids never have ten
ids = st.text(
    alphabet="abcdefghijkmnopqrstuvwxyzABCDEFGH0123456789", min_size=1, max_size=12
).filter(lambda s: not re.search(r"[0-9]{10}", s))
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def valid_event(draw):
    type_ = draw(st.sampled_from(TYPES))
    meta = catalog.example_metadata(type_)
    meta.update(draw(st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=3)))
    et = catalog.get(type_)
    return {
        "event_id": "evt_" + draw(ids),
        "type": type_,
        "timestamp": (T0 + dt.timedelta(milliseconds=draw(st.integers(0, 10**10)))).isoformat(),
        "lead_id": "lead_" + draw(ids),
        "flow_id": draw(st.one_of(st.none(), ids)),
        "entity_id": draw(st.one_of(st.none(), ids)),
        "step_id": draw(st.one_of(st.none(), ids)),
        "outcome": draw(st.one_of(st.none(), st.sampled_from(et.outcomes))),
        "duration_ms": draw(st.one_of(st.none(), st.integers(0, 2**31 - 1))),
        "metadata": meta,
        "lead_snapshot": draw(
            st.one_of(st.none(), st.dictionaries(st.text(max_size=8), json_values, max_size=4))
        ),
    }


BREAKS = [
    lambda e: dict(e, type="no.such.type"),
    lambda e: dict(e, lead_id=None),
    lambda e: dict(e, event_id=""),
    lambda e: dict(e, timestamp="not a time"),
    lambda e: dict(e, metadata=[1]),
    lambda e: dict(e, metadata="{broken"),
    lambda e: dict(e, duration_ms=-1),
    lambda e: dict(e, outcome="sideways"),
    lambda e: {k: v for k, v in e.items() if k != "timestamp"},
]


@st.composite
def mixed_input(draw):
    items, kinds = [], []
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["valid", "valid", "invalid", "duplicate"]))
        if kind == "duplicate" and items:
            items.append(dict(draw(st.sampled_from(items))))
        else:
            e = draw(valid_event())
            if kind == "invalid":
                e = draw(st.sampled_from(BREAKS))(e)
                kind = "invalid"
            else:
                kind = "valid"
            items.append(e)
        kinds.append(kind)
    return items


def _expected(items):
    """What the store should keep: the first valid occurrence of each event_id."""
    kept = {}
    for e in items:
        if not _is_valid(e):
            continue
        kept.setdefault(e["event_id"], e)
    return kept


def _is_valid(e):
    try:
        return (
            e.get("event_id")
            and e.get("lead_id")
            and e.get("type") in TYPES
            and e.get("timestamp") not in (None, "not a time")
            and isinstance(e.get("metadata"), dict)
            and (e.get("duration_ms") is None or e["duration_ms"] >= 0)
            and (e.get("outcome") is None or e["outcome"] in catalog.get(e["type"]).outcomes)
        )
    except Exception:
        return False


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=mixed_input(), splits=st.integers(1, 3))
def test_reports_add_up_and_events_read_back_unchanged(items, splits):
    store = workbench.open_store()
    try:
        size = max(1, len(items) // splits)
        totals = [0, 0, 0, 0]
        for i in range(0, len(items), size):
            r = store.append(items[i : i + size])
            assert r.received == r.stored + r.duplicates + r.quarantined
            for k, v in enumerate((r.received, r.stored, r.duplicates, r.quarantined)):
                totals[k] += v
        assert totals[0] == len(items)
        expected = _expected(items)
        assert totals[1] == len(expected) == store.count()
        assert totals[3] == store.sql("SELECT count(*) AS n FROM quarantine").n[0]
        stored = {row["event_id"]: row for row in store.events().to_dict("records")}
        assert set(stored) == set(expected)
        for event_id, e in expected.items():
            got = stored[event_id]
            assert got["type"] == e["type"] and got["lead_id"] == e["lead_id"]
            for f in ("flow_id", "entity_id", "step_id"):
                assert got[f] == e[f] or (pd.isna(got[f]) and e[f] is None)
            assert got["timestamp"] == dt.datetime.fromisoformat(e["timestamp"])
            assert got["outcome"] == (e["outcome"] or catalog.get(e["type"]).implied_outcome)
            assert (None if pd.isna(got["duration_ms"]) else got["duration_ms"]) == e["duration_ms"]
            assert got["metadata"] == e["metadata"]
            assert got["lead_snapshot"] == e["lead_snapshot"]
        assert store.verify().ok
    finally:
        store.close()
