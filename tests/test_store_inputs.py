"""One bad event never sinks its batch; a file that cannot be read gets a clear error.

Each hostile shape below used to make the whole ``append()`` raise (nothing stored,
nothing quarantined), or was stored and then broke every later read of the store.
"""

import gzip
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import workbench
from workbench.errors import InputError, WorkbenchError
from workbench.store.limits import MAX_DEPTH, MAX_KEYS

from .conftest import make_event


def _deep(n: int):
    doc: dict = {"leaf": 1}
    for _ in range(n):
        doc = {"d": doc}
    return doc


HOSTILE = {
    "a lone surrogate": lambda: make_event(lead_snapshot={"first_name": "Jo\ud800hn"}),
    "a surrogate in an id": lambda: make_event(lead_id="lead_\udc80"),
    "a depth bomb": lambda: make_event(metadata=_deep(5_000)),
    "deeper than the limit": lambda: make_event(metadata=_deep(MAX_DEPTH + 5)),
    "a key with a quote": lambda: make_event(**{'odd"key': 1}),
    "a key with a backslash": lambda: make_event(**{"odd\\key": 1}),
    "a non-string key": lambda: {**make_event(), (1, 2): "tuple key"},
    "100k keys": lambda: make_event(metadata={f"k{i}": i for i in range(100_000)}),
}


@pytest.mark.parametrize("shape", list(HOSTILE))
def test_a_hostile_event_is_quarantined_and_the_rest_is_stored(store, shape):
    good = [make_event(lead_id="lead_ok_1"), make_event(lead_id="lead_ok_2")]
    r = store.append([good[0], HOSTILE[shape](), good[1]])
    assert r.received == 3 == r.stored + r.duplicates + r.quarantined
    assert r.stored >= 2
    for lead in ("lead_ok_1", "lead_ok_2"):
        assert len(store.timeline(lead)) == 1
    # every stored event reads back, the whole store included
    store.events()
    assert store.verify().ok


@pytest.mark.parametrize(
    "shape, reason",
    [
        ("a depth bomb", "the limit is 64"),
        ("a lone surrogate", "surrogate"),
        ("100k keys", f"the limit is {MAX_KEYS:,}"),
        ("a non-string key", "not text"),
    ],
)
def test_the_quarantine_says_which_limit(store, shape, reason):
    r = store.append([HOSTILE[shape]()])
    assert r.quarantined == 1
    assert reason in store.quarantined().reason[0]


def test_keys_with_quotes_are_stored_whole(store):
    r = store.append([make_event(lead_id="lead_q", **{'odd"key': 1, "odd\\key": 2})])
    assert r.stored == 1
    extra = store.timeline("lead_q").metadata[0]["_extra"]
    assert extra == {'odd"key': 1, "odd\\key": 2}


def test_hostile_lines_in_jsonl(store, tmp_path):
    path = tmp_path / "events.jsonl"
    lines = [
        json.dumps(make_event(lead_id="lead_a")),
        '{"d":' * 5_000 + "1" + "}" * 5_000,  # nested 5,000 deep
        json.dumps(make_event(lead_id="lead_b", metadata={"x": "\\ud800"})).replace(
            "\\\\ud800", "\\ud800"
        ),
        json.dumps(make_event(lead_id="lead_c", **{'quo"te': 1})),
        json.dumps(make_event(lead_id="lead_d")),
    ]
    path.write_text("\n".join(lines) + "\n")
    r = store.append(path)
    assert r.received == 5 and r.stored == 3 and r.quarantined == 2
    reasons = " ".join(store.quarantined().reason)
    assert "nests 5,000 levels deep" in reasons and "surrogate" in reasons
    for lead in ("lead_a", "lead_c", "lead_d"):
        assert not store.timeline(lead).empty
    store.events()  # the whole store still reads


def test_a_bom_is_not_an_event(store, tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(make_event()).encode() + b"\n")
    assert store.append(path).stored == 1
    doc = tmp_path / "bom.json"
    doc.write_bytes(b"\xef\xbb\xbf" + json.dumps([make_event()]).encode())
    assert store.append(doc).stored == 1


@pytest.mark.parametrize("offset, ok", [("+25:00", False), ("-14:30", False), ("+14:00", True)])
def test_utc_offsets_beyond_fourteen_hours_are_refused(store, offset, ok):
    r = store.append([make_event(timestamp=f"2026-01-05T10:00:00{offset}")])
    assert r.stored == (1 if ok else 0)
    if not ok:
        assert "outside -14:00..+14:00" in store.quarantined().reason[0]


def test_pandas_with_a_surrogate_keeps_the_other_rows(store):
    rows = [make_event(lead_id="lead_p1"), make_event(lead_id="lead_p2")]
    rows[1]["lead_snapshot"] = {"first_name": "x\ud800"}
    df = pd.DataFrame(rows)
    r = store.append(df)
    assert (r.stored, r.quarantined) == (1, 1)


def test_binary_ids_are_text_when_utf8_and_refused_when_not(store):
    ev = make_event()
    table = pa.table(
        {
            "event_id": pa.array([b"evt_bin_1", b"\xff\xfe"], pa.binary()),
            "type": ["source.submitted"] * 2,
            "lead_id": ["lead_bin"] * 2,
            "timestamp": [ev["timestamp"]] * 2,
            "metadata": [json.dumps(ev["metadata"])] * 2,
        }
    )
    r = store.append(table)
    assert (r.stored, r.quarantined) == (1, 1)
    assert "binary data" in store.quarantined().reason[0]


def test_duplicate_column_names_are_an_input_error(store):
    table = pa.Table.from_arrays([pa.array(["a"]), pa.array(["b"])], names=["event_id", "event_id"])
    with pytest.raises(InputError, match="duplicate column names"):
        store.append(table)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.parquet", b"", "not a readable Parquet file"),
        ("junk.parquet", b"PAR1 this is not parquet", "not a readable Parquet file"),
        ("notgzip.jsonl.gz", b"plain text", "not a gzip file"),
        ("nope.txt", b"{}", "cannot tell the format"),
    ],
)
def test_unreadable_files_are_workbench_errors_naming_the_file(
    store, tmp_path, name, content, message
):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(WorkbenchError, match=message) as e:
        store.append(path)
    assert name in str(e.value)
    assert store.count() == 0


def test_a_truncated_gzip_keeps_what_it_held_and_says_where_it_broke(store, tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    body = "\n".join(json.dumps(make_event(lead_id=f"lead_{i}")) for i in range(200)) + "\n"
    data = gzip.compress(body.encode())
    path.write_bytes(data[: len(data) * 2 // 3])
    r = store.append(path)
    assert r.quarantined == 1 and r.stored > 0
    assert "ends early" in store.quarantined().reason[0]


def test_an_empty_gzip_holds_no_events(store, tmp_path):
    path = tmp_path / "empty.jsonl.gz"
    path.write_bytes(gzip.compress(b""))
    assert store.append(path).received == 0


def test_a_corrupt_json_document_is_kept_whole(store, tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    r = store.append(path)
    assert r.quarantined == 1
    assert "nests too deeply" in store.quarantined().reason[0]


def test_a_parquet_with_an_unreadable_row_group(store, tmp_path):
    path = tmp_path / "events.parquet"
    rows = [make_event(lead_id=f"lead_{i}") for i in range(6)]
    for r in rows:
        r["metadata"] = json.dumps(r["metadata"])
        r["lead_snapshot"] = json.dumps(r["lead_snapshot"])
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=3, compression="none")
    data = bytearray(path.read_bytes())
    meta = pq.ParquetFile(path).metadata
    start = meta.row_group(1).column(0).data_page_offset
    data[start : start + 40] = b"\x00" * 40  # break the second row group's pages
    path.write_bytes(bytes(data))
    r = store.append(path)
    assert r.stored + r.quarantined == r.received and r.stored >= 3
    assert any("row group 1" in x for x in store.quarantined().reason)


def test_every_event_of_an_unreadable_row_group_is_counted(store, tmp_path):
    path = tmp_path / "events.parquet"
    rows = [make_event(lead_id=f"lead_{i}") for i in range(12)]
    for r in rows:
        r["metadata"] = json.dumps(r["metadata"])
        r["lead_snapshot"] = json.dumps(r["lead_snapshot"])
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=3, compression="none")
    data = bytearray(path.read_bytes())
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 4
    start = meta.row_group(1).column(0).data_page_offset
    data[start : start + 40] = bytes(b ^ 0x5A for b in data[start : start + 40])
    path.write_bytes(bytes(data))
    r = store.append(path)
    assert (r.received, r.stored, r.quarantined) == (12, 9, 3)
    q = store.quarantined()
    assert list(q.row) == [3, 4, 5]  # the rows of the second group, each on its own
    assert all("row group 1" in x and "(3 events)" in x for x in q.reason)
    assert sorted(store.events().lead_id) == sorted(
        f"lead_{i}" for i in (0, 1, 2, 6, 7, 8, 9, 10, 11)
    )
    assert store.verify().ok


def _text_json_rows(n):
    rows = [make_event(lead_id=f"lead_{i}") for i in range(n)]
    for r in rows:
        r["metadata"] = json.dumps(r["metadata"])
        r["lead_snapshot"] = json.dumps(r["lead_snapshot"])
        del r["duration_ms"]
    return rows


def test_half_float_and_wide_decimal_durations_are_read(store, tmp_path):
    import numpy as np

    path = tmp_path / "half.parquet"
    half = pa.array(np.array([25, 40.5, 1000], dtype=np.float16))
    pq.write_table(
        pa.Table.from_pylist(_text_json_rows(3)).append_column("duration_ms", half), path
    )
    r = store.append(path)
    assert (r.received, r.stored, r.quarantined) == (3, 2, 1)
    assert "duration_ms '40.5'" in store.quarantined().reason[0]
    wide = pa.array([7, None], pa.decimal256(40, 0))
    r = store.append(pa.Table.from_pylist(_text_json_rows(2)).append_column("duration_ms", wide))
    assert r.stored == 2
    assert sorted(store.events().duration_ms.dropna()) == [7, 25, 1000]


def test_a_column_type_the_store_cannot_read_is_named(store):
    union = pa.UnionArray.from_dense(
        pa.array([0, 1], pa.int8()), pa.array([0, 0], pa.int32()), [pa.array([1]), pa.array(["a"])]
    )
    table = pa.Table.from_pylist(_text_json_rows(2)).append_column("duration_ms", union)
    with pytest.raises(InputError, match="duration_ms: dense_union"):
        store.append(table)
    assert store.count() == 0 and store.verify().ok


def test_reads_survive_json_too_deep_for_python():
    from workbench.store.queries import decode

    deep = '{"d":' * 3_000 + "1" + "}" * 3_000
    df = decode(pd.DataFrame({"metadata": [deep]}))
    assert "_unreadable" in df.metadata[0]


def test_the_store_on_disk_rejects_the_same(tmp_path):
    with workbench.open_store(tmp_path / "s.duckdb") as s:
        r = s.append([make_event(metadata=_deep(200)), make_event()])
        assert (r.stored, r.quarantined) == (1, 1)
