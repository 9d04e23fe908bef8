"""The Parquet lake: every tier's events and the store's tables as Hive-partitioned zstd
Parquet, added to incrementally, crash-safe, one store per lake."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pytest

import workbench
from workbench.errors import InputError, StoreError
from workbench.sim import simulate
from workbench.store import lake as lake_module
from workbench.store.schema import PUBLIC_COLUMNS

END = "2026-11-27T12:00:00Z"
COLS = ", ".join(PUBLIC_COLUMNS)


@pytest.fixture
def run_store(tmp_path):
    """300 simulated leads over three days; the oldest day archived warm, then cold."""
    path = tmp_path / "run.duckdb"
    with workbench.open_store(path) as s:
        simulate(leads=300, days=3, end=END, seed=5, store=s)
        s.archive(older_than="2 days", now=END, tier="warm")
        s.archive(older_than="60 hours", now=END, tier="cold")
        assert s.tier_counts()["warm"] and s.tier_counts()["cold"]
    return path


def lake_rows(lake) -> list[tuple]:
    con = duckdb.connect()
    return con.execute(
        f"SELECT {COLS} FROM read_parquet('{lake}/events/**/*.parquet', hive_partitioning = true) "
        "ORDER BY seq"
    ).fetchall()


def store_rows(path) -> list[tuple]:
    with workbench.open_store(path, read_only=True) as s:
        return s._query_con().rows(
            f"SELECT {COLS} FROM ({s.events_source(s._query_con(), ('hot', 'warm', 'cold'))}) "
            "ORDER BY seq"
        )


def test_the_lake_holds_every_tier_as_the_store_reads_it(run_store, tmp_path):
    lake = tmp_path / "lake"
    with workbench.open_store(run_store, read_only=True) as s:
        report = s.export_lake(lake)
        n = s.count()
    assert report.events == n and report.total_events == n
    assert lake_rows(lake) == store_rows(run_store)
    # the store's tables, for readers that join names or read the per-lead summary
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*) FROM '{lake}/lead_summary/*.parquet'").fetchone()[0] == 300
    for table in ("flows", "entities", "steps"):
        assert con.execute(f"SELECT count(*) FROM '{lake}/{table}/*.parquet'").fetchone()[0] > 0


def test_any_parquet_reader_prunes_the_lake_by_event_date(run_store, tmp_path):
    lake = tmp_path / "lake"
    with workbench.open_store(run_store, read_only=True) as s:
        s.export_lake(lake)
        day = str(s.sql("SELECT max(timestamp)::DATE AS d FROM events").d[0])[:10]
    ds = pads.dataset(lake / "events", format="parquet", partitioning="hive")
    assert "event_date" in ds.schema.names
    kind = ds.schema.field("event_date").type  # as the reader infers it (a date)
    one_day = ds.to_table(filter=pads.field("event_date") == pa.scalar(str(day)).cast(kind))
    files = [f for f in ds.files if f"event_date={day}" in f]
    assert one_day.num_rows == sum(pads.dataset(f, format="parquet").count_rows() for f in files)
    assert 0 < one_day.num_rows < ds.count_rows()


def test_a_second_export_adds_only_what_was_stored_since(run_store, tmp_path):
    lake = tmp_path / "lake"
    with workbench.open_store(run_store) as s:
        first = s.export_lake(lake)
        later = dt.datetime(2026, 11, 27, 13, tzinfo=dt.UTC)
        simulate(leads=40, days=0.02, end=later, seed=9, store=s)
        second = s.export_lake(lake)
        third = s.export_lake(lake)
        n = s.count()
    assert second.events == n - first.events > 0
    assert second.through_seq == n
    assert third.events == 0 and third.files == 0
    rows = lake_rows(lake)
    assert [r[0] for r in rows] == list(range(1, n + 1))  # each event once
    assert rows == store_rows(run_store)
    manifest = json.loads((lake / lake_module.MANIFEST).read_text())
    assert [e["events"] for e in manifest["exports"]] == [first.events, second.events, 0]


def test_the_manifest_lists_the_keys_and_names_each_export_added(run_store, tmp_path):
    # a reader (Spark) learns which keys hold PII and which names to show from the
    # manifest, without reading every event again
    lake = tmp_path / "lake"
    with workbench.open_store(run_store) as s:
        s.export_lake(lake)
        s.append(
            [
                {
                    "event_id": "evt_lake_key_1",
                    "type": "source.submitted",
                    "timestamp": "2026-11-27T13:00:00Z",
                    "lead_id": "lead_lake_key_1",
                    "flow_id": "flow_1",
                    "entity_id": "src_new",
                    "entity_name": "Brand New Source",
                    "outcome": "success",
                    "metadata": {
                        "source": "Brand New Source",
                        "raw_data": {"backup_mobile": "5125550199"},
                        "headers": {},
                        "ip_address": "203.0.113.9",
                        "source_config": {},
                    },
                    "lead_snapshot": {"lead_id": "lead_lake_key_1", "fax_number": "5125550100"},
                }
            ]
        )
        s.export_lake(lake)
        s.export_lake(lake)
        con = s._query_con()
        docs = con.rows(
            f"SELECT metadata, lead_snapshot FROM ({s.events_source(con, ('hot', 'warm', 'cold'))})"
        )
        names = con.rows(
            f"SELECT DISTINCT n FROM (SELECT unnest([step_name, entity_name, feedback_type]) AS n "
            f"FROM ({s.events_source(con, ('hot', 'warm', 'cold'))})) WHERE n IS NOT NULL"
        )
    first, second, third = json.loads((lake / lake_module.MANIFEST).read_text())["exports"]
    every_key = {k for doc in docs for text in doc if text for k in _keys(json.loads(text))}
    assert set(first["json_keys"]) | set(second["json_keys"]) == every_key
    assert {"backup_mobile", "fax_number"} <= set(second["json_keys"])
    assert "backup_mobile" not in first["json_keys"]
    assert set(second["names"]) == {"Brand New Source"}
    assert set(first["names"]) | set(second["names"]) == {n for (n,) in names}
    assert third["json_keys"] == [] and third["names"] == []


def _keys(doc) -> set[str]:
    if isinstance(doc, dict):
        return set(doc) | {k for v in doc.values() for k in _keys(v)}
    if isinstance(doc, list):
        return {k for v in doc for k in _keys(v)}
    return set()


def test_a_crash_while_writing_leaves_the_lake_as_it_was(run_store, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    with workbench.open_store(run_store, read_only=True) as s:
        calls = {"n": 0}
        write = lake_module._write

        def dies_on_the_third_file(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt("power cut")
            return write(*args, **kwargs)

        monkeypatch.setattr(lake_module, "_write", dies_on_the_third_file)
        with pytest.raises(KeyboardInterrupt):
            s.export_lake(lake)
        assert not list(lake.rglob("*.parquet"))  # nothing a reader would see
        monkeypatch.setattr(lake_module, "_write", write)
        s.export_lake(lake)
    assert lake_rows(lake) == store_rows(run_store)
    assert not list(lake.rglob(".*.parquet"))


def test_a_crash_after_the_manifest_is_finished_by_the_next_export(
    run_store, tmp_path, monkeypatch
):
    """The manifest names the export's files before they are renamed into place: a
    crash between the two leaves hidden files the next export moves in, once."""
    lake = tmp_path / "lake"
    finish = lake_module._finish
    calls = {"n": 0}

    def dies_after_the_manifest(*args):
        calls["n"] += 1
        if calls["n"] == 2:  # the call that renames the new files
            raise KeyboardInterrupt("power cut")
        return finish(*args)

    with workbench.open_store(run_store, read_only=True) as s:
        monkeypatch.setattr(lake_module, "_finish", dies_after_the_manifest)
        with pytest.raises(KeyboardInterrupt):
            s.export_lake(lake)
        assert not list(lake.rglob("part-*.parquet"))
        monkeypatch.setattr(lake_module, "_finish", finish)
        again = s.export_lake(lake)
    assert again.events == 0  # the first export counted; its files were moved in
    assert lake_rows(lake) == store_rows(run_store)


def test_a_lake_takes_one_store_only(run_store, tmp_path):
    lake = tmp_path / "lake"
    with workbench.open_store(run_store, read_only=True) as s:
        s.export_lake(lake)
    other = workbench.open_store(tmp_path / "other.duckdb")
    with pytest.raises(StoreError, match="another store"):
        other.export_lake(lake)
    other.close()


def test_a_lake_is_not_written_into_a_folder_of_other_files_or_the_store(run_store, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with workbench.open_store(run_store, read_only=True) as s:
        with pytest.raises(InputError, match="not empty"):
            s.export_lake(busy)
        with pytest.raises(InputError, match="store's own"):
            s.export_lake(s.tiers_dir / "lake")
        with pytest.raises(InputError, match="is a file"):
            s.export_lake(busy / "notes.txt")
    assert (busy / "notes.txt").read_text() == "mine"


def test_the_command_takes_a_purpose_and_a_role_that_may_unmask(run_store, tmp_path):
    """The lake holds raw events: the command asks why, refuses a masked role, and puts
    the export on the audit trail."""
    lake = tmp_path / "lake"
    cmd = [sys.executable, "-m", "workbench.cli", "lake", "export", str(lake), "--store"]
    who = ["--user", "cora", "--role", "compliance"]

    def run(*extra):
        return subprocess.run(
            [*cmd, str(run_store), *extra], capture_output=True, text=True, check=False
        )

    no_purpose = run(*who)
    assert no_purpose.returncode == 2 and "--purpose" in no_purpose.stderr
    analyst = run("--user", "ana", "--role", "analyst", "--purpose", "lake for Spark")
    assert analyst.returncode == 2 and "Traceback" not in analyst.stderr
    assert not (lake / lake_module.MANIFEST).exists()
    out = run(*who, "--purpose", "quarterly lake for the Spark team")
    assert out.returncode == 0, out.stderr
    assert "added" in out.stdout and "events" in out.stdout
    again = run(*who, "--purpose", "quarterly lake for the Spark team")
    assert again.returncode == 0 and "no new events" in again.stdout
    missing = subprocess.run(
        [*cmd, str(tmp_path / "nope.duckdb"), *who, "--purpose", "x"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    with workbench.open_store(run_store, read_only=True) as s:
        from workbench.access.audit import AuditTrail

        trail = AuditTrail(str(s.audit_path))
        exports = trail.read(action="lake_export")
        trail.close()
    assert len(exports) == 2 and set(exports.user) == {"cora"}


def test_a_copy_of_the_store_that_went_its_own_way_is_refused(run_store, tmp_path):
    import shutil

    lake = tmp_path / "lake"
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(run_store, copy)
    shutil.copytree(
        run_store.with_name(run_store.name + ".tiers"), copy.with_name(copy.name + ".tiers")
    )
    later = dt.datetime(2026, 11, 27, 13, tzinfo=dt.UTC)
    with workbench.open_store(run_store) as a:
        simulate(leads=20, days=0.02, end=later, seed=1, store=a)
        a.export_lake(lake)
    with workbench.open_store(copy) as b:
        simulate(leads=30, days=0.02, end=later, seed=2, store=b)
        with pytest.raises(StoreError, match="copy or an older backup"):
            b.export_lake(lake)
    assert lake_rows(lake) == store_rows(run_store)


def test_no_duckdb_glob_reads_an_export_in_progress(run_store, tmp_path, monkeypatch):
    """Files of an export that died are not '*.parquet' (DuckDB) and are hidden (Spark,
    pyarrow): readers of the lake see the last whole export."""
    lake = tmp_path / "lake"
    with workbench.open_store(run_store) as s:
        s.export_lake(lake)
        before = lake_rows(lake)
        later = dt.datetime(2026, 11, 27, 13, tzinfo=dt.UTC)
        simulate(leads=20, days=0.02, end=later, seed=3, store=s)
        finish = lake_module._finish
        calls = {"n": 0}

        def dies_before_moving_in(*args):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt("power cut")
            return finish(*args)

        monkeypatch.setattr(lake_module, "_finish", dies_before_moving_in)
        with pytest.raises(KeyboardInterrupt):
            s.export_lake(lake)
        assert list(lake.rglob(".*.tmp"))  # the pending files are there...
        assert lake_rows(lake) == before  # ...and no reader takes them for data
        monkeypatch.setattr(lake_module, "_finish", finish)
        s.export_lake(lake)
    assert lake_rows(lake) == store_rows(run_store)


def test_a_table_file_of_an_export_that_died_is_never_moved_in(run_store, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    with workbench.open_store(run_store, read_only=True) as s:
        s.export_lake(lake)
        write = lake_module._write

        def dies_writing_the_summary(reader, path, seq=True):
            if "lead_summary" in str(path):
                path.write_bytes(b"half a file")
                raise KeyboardInterrupt("power cut")
            return write(reader, path, seq)

        monkeypatch.setattr(lake_module, "_write", dies_writing_the_summary)
        with pytest.raises(KeyboardInterrupt):
            s.export_lake(lake)
        monkeypatch.setattr(lake_module, "_write", write)
        (lake / "lead_summary").joinpath(".lead_summary.parquet.e2.tmp").write_bytes(b"junk")
        s.export_lake(lake)
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*) FROM '{lake}/lead_summary/*.parquet'").fetchone()[0] == 300
