"""Fuzz every entry point with hostile input: no raw exception escapes, every report
adds up (received == stored + duplicates + quarantined), and every stored event reads
back (its timeline, the events, an explanation, verify)."""

import json
import string

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench
from workbench import catalog, investigate
from workbench.access import connect
from workbench.errors import WorkbenchError
from workbench.importer import import_events

from .conftest import make_event

TYPES = [t.name for t in catalog.Catalog()]

keys = st.one_of(
    st.text(max_size=6),
    st.sampled_from(['a"b', "a\\b", "$.x", "[0]", "\ud800", "email", "firstName", "", " "]),
)
leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["\ud800", "\udfff", "x\u0000y", "1980-01-02", "jo@exämple.com"]),
    st.binary(max_size=6),
)
value = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(keys, inner, max_size=3),
        st.tuples(inner),
    ),
    max_leaves=8,
)


def deep(n):
    doc = 1
    for _ in range(n):
        doc = {"d": doc}
    return doc


@st.composite
def hostile_event(draw):
    base = make_event(
        draw(st.sampled_from(TYPES)),
        lead_id="lead_" + draw(st.text(string.ascii_letters, min_size=1, max_size=4)),
    )
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return base
    if kind == 1:
        base[draw(keys)] = draw(value)
        return base
    if kind == 2:
        base[draw(st.sampled_from(list(base)))] = draw(value)
        return base
    if kind == 3:
        base["metadata"] = deep(draw(st.sampled_from([10, 70, 200])))
        return base
    if kind == 4:
        return {**base, (1, 2): "tuple key"}
    if kind == 5:
        return draw(value)
    return {"lead_snapshot": {"names": [{"family": "Zoltan"}]}, **base}


def _check(store, report):
    assert report.received == report.stored + report.duplicates + report.quarantined
    df = store.events()
    assert len(df) == store.count()
    session = connect(store, user="ana")
    for lead in df.lead_id.unique()[:3]:
        assert not session.timeline(lead).empty
        investigate.explain(session, lead)
    session.close()
    verdict = store.verify()
    assert verdict.ok, str(verdict)


SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(items=st.lists(hostile_event(), min_size=1, max_size=8))
def test_dicts(items):
    with workbench.open_store() as store:
        _check(store, store.append(items))


@SETTINGS
@given(items=st.lists(hostile_event(), min_size=1, max_size=8))
def test_pandas(items):
    rows = [i for i in items if isinstance(i, dict) and all(isinstance(k, str) for k in i)]
    if not rows:
        return
    try:
        df = pd.DataFrame(rows, dtype=object)
    except UnicodeEncodeError:
        return  # pandas itself refuses a surrogate in a column name
    with workbench.open_store() as store:
        try:
            report = store.append(df)
        except WorkbenchError:
            return
        _check(store, report)


def _line(item) -> str:
    try:
        return json.dumps(item, default=repr, skipkeys=True)
    except (TypeError, ValueError, RecursionError):
        try:
            return repr(item)
        except RecursionError:
            return '{"d":' * 3000


@SETTINGS
@given(
    items=st.lists(
        st.one_of(hostile_event().map(_line), st.text(max_size=40), st.just('{"d":' * 3000)),
        min_size=1,
        max_size=8,
    ),
    bom=st.booleans(),
)
def test_jsonl_files(tmp_path_factory, items, bom):
    path = tmp_path_factory.mktemp("fuzz") / "events.jsonl"
    data = "\n".join(i.replace("\n", " ") for i in items).encode("utf-8", "surrogatepass")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    with workbench.open_store() as store:
        _check(store, store.append(path))


@SETTINGS
@given(items=st.lists(hostile_event(), max_size=6), cut=st.integers(0, 400))
def test_json_documents_whole_or_cut(tmp_path_factory, items, cut):
    path = tmp_path_factory.mktemp("fuzz") / "events.json"
    text = "[" + ",".join(_line(i) for i in items) + "]"
    path.write_text(text[: len(text) - cut] if cut else text, errors="surrogatepass")
    with workbench.open_store() as store:
        _check(store, store.append(path))


@SETTINGS
@given(raw=st.binary(max_size=200), name=st.sampled_from(["x.parquet", "x.jsonl.gz", "x.json"]))
def test_garbage_files_are_workbench_errors_or_quarantine(tmp_path_factory, raw, name):
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(raw)
    with workbench.open_store() as store:
        try:
            report = store.append(path)
        except WorkbenchError:
            assert store.count() == 0
            return
        _check(store, report)


@pytest.mark.parametrize(
    "column",
    [
        pa.array([b"\xff", b"evt_ok"], pa.binary()),
        pa.array([[1], [2]]),
        pa.array([1.5, None]),
        pa.array([{"a": 1}, None]),
    ],
)
def test_arrow_columns_of_any_type(column, tmp_path):
    ev = make_event()
    table = pa.table(
        {
            "event_id": column,
            "type": ["source.submitted"] * 2,
            "lead_id": ["lead_x"] * 2,
            "timestamp": [ev["timestamp"]] * 2,
            "metadata": [json.dumps(ev["metadata"])] * 2,
        }
    )
    with workbench.open_store() as store:
        _check(store, store.append(table))
    pq.write_table(table, tmp_path / "t.parquet")
    with workbench.open_store() as store:
        _check(store, store.append(tmp_path / "t.parquet"))


@SETTINGS
@given(items=st.lists(st.one_of(hostile_event(), value), max_size=6))
def test_the_importer(tmp_path_factory, items):
    folder = tmp_path_factory.mktemp("fuzz")
    text = "[" + ",".join(_line(i) for i in items) + "]"
    (folder / "events.json").write_text(text, errors="surrogatepass")
    with workbench.open_store() as store:
        try:
            report = import_events(folder / "events.json", store, progress=False)
        except WorkbenchError:
            return
        assert report.objects >= 0
        assert store.verify().ok
        store.events()
