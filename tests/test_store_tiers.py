"""Retention tiers: hot table, warm and cold Parquet; moves keep every count."""

import datetime as dt

import pytest

import workbench
from workbench.store import StoreError

from .conftest import lead_events

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


@pytest.fixture
def aged(disk_store):
    # leads 100, 60, 40, 10 and 1 day old
    for days in (100, 60, 40, 10, 1):
        disk_store.append(lead_events(f"lead_{days}d", NOW - dt.timedelta(days=days)))
    return disk_store


def test_archive_to_warm_keeps_counts_and_queries(aged):
    before = aged.sql("SELECT count(*) AS n, sum(duration_ms) AS d FROM events")
    r = aged.archive(older_than="30 days", now=NOW)
    assert r.moved == 18 and r.to_tier == "warm"
    assert aged.tier_counts() == {"hot": 12, "warm": 18, "cold": 0}
    after = aged.sql("SELECT count(*) AS n, sum(duration_ms) AS d FROM events")
    assert after.equals(before)
    files = list(aged.tiers_dir.glob("warm/event_date=*/*.parquet"))
    assert len(files) == 3  # one partition per event date
    assert len(aged.timeline("lead_60d")) == 6  # a warm lead still has its timeline
    assert aged.verify().ok


def test_cold_tier_is_out_of_scope_until_restored(aged):
    aged.archive(older_than="30 days", now=NOW)
    r = aged.archive(older_than="90 days", tier="cold", now=NOW)
    assert r.moved == 6
    assert aged.tier_counts() == {"hot": 12, "warm": 12, "cold": 6}
    assert aged.count() == 30
    assert aged.sql("SELECT count(*) AS n FROM events").n[0] == 24
    assert aged.timeline("lead_100d").empty
    assert aged.verify().ok  # verify covers every tier
    aged.restore()
    assert aged.tier_counts() == {"hot": 12, "warm": 18, "cold": 0}
    assert len(aged.timeline("lead_100d")) == 6


def test_cold_archive_takes_hot_events_directly(aged):
    aged.archive(older_than="50 days", tier="cold", now=NOW)
    assert aged.tier_counts() == {"hot": 18, "warm": 0, "cold": 12}


def test_duplicates_are_detected_across_tiers(aged):
    aged.archive(older_than="30 days", now=NOW)
    aged.archive(older_than="90 days", tier="cold", now=NOW)
    r = aged.append(lead_events("lead_100d", NOW - dt.timedelta(days=100)))
    # new event ids, so they are stored; now re-send the archived ones exactly
    events = aged.sql("SELECT event_id FROM events WHERE lead_id = 'lead_60d'")
    assert len(events) == 6
    assert r.stored == 6


@pytest.mark.parametrize("tier", ["warm", "cold"])
def test_a_move_interrupted_after_writing_parquet_loses_and_duplicates_nothing(store_path, tier):
    with workbench.open_store(store_path) as s:
        for days in (100, 60, 10):
            s.append(lead_events(f"lead_{days}d", NOW - dt.timedelta(days=days)))
        if tier == "cold":
            s.archive(older_than="30 days", now=NOW)

        def crash(move_id):
            raise workbench.store._SimulatedCrash("power cut")

        s._after_write_hook = crash
        with pytest.raises(workbench.store._SimulatedCrash):
            s.archive(older_than="50 days", tier=tier, now=NOW)
        # the files are on disk but the move never committed: nothing counted twice
        assert s.count() == 18
        assert s.sql("SELECT count(*) AS n FROM events").n[0] == 18
    with workbench.open_store(store_path) as s:
        assert s.count() == 18
        r = s.archive(older_than="50 days", tier=tier, now=NOW)
        assert r.moved == 12
        assert s.count() == 18
        assert s.sql("SELECT count(*) AS n FROM events").n[0] == (18 if tier == "warm" else 6)
        assert s.verify().ok
        parquet = sorted(p.name for p in s.tiers_dir.rglob("*.parquet"))
        assert len(parquet) == len(s._con.rows("SELECT path FROM tier_files"))


def test_archive_argument_forms(aged):
    with pytest.raises(ValueError, match="older_than"):
        aged.archive(older_than="a while", now=NOW)
    with pytest.raises(StoreError, match="'warm' or 'cold'"):
        aged.archive(tier="lukewarm", now=NOW)
    assert aged.archive(older_than=dt.timedelta(days=99), now=NOW).moved == 6
    assert aged.archive(older_than=50, now=NOW).moved == 6
    assert aged.archive(older_than=NOW - dt.timedelta(days=20), now=NOW).moved == 6


def test_in_memory_store_has_no_tiers(store):
    with pytest.raises(StoreError, match="in-memory"):
        store.archive()


def test_many_archive_and_restore_cycles_keep_file_names_short(aged):
    aged.archive(older_than="30 days", now=NOW)
    for _ in range(40):
        aged.archive(older_than="30 days", tier="cold", now=NOW)
        aged.restore()
    names = [p.name for p in aged.tiers_dir.rglob("*.parquet")]
    assert names and max(len(n) for n in names) <= len("m999_99.parquet")
    assert aged.tier_counts() == {"hot": 12, "warm": 18, "cold": 0}
    assert aged.verify().ok


def test_exports_never_overwrite_the_stores_own_files(aged, tmp_path):
    from workbench.access import connect
    from workbench.errors import UnsafePathError

    aged.archive(older_than="30 days", now=NOW)
    warm = next(aged.tiers_dir.rglob("*.parquet"))
    session = connect(aged, user="ana")
    for target in (aged.path, warm, aged.audit_path, aged.path.with_name(aged.path.name + ".wal")):
        before = target.read_bytes() if target.exists() else None
        with pytest.raises(UnsafePathError, match="file of the store"):
            session.export(
                target.with_suffix(".parquet") if target == warm else target, format="parquet"
            )
        with pytest.raises(UnsafePathError):
            aged.export(target, format="parquet")
        assert (target.read_bytes() if target.exists() else None) == before
    assert aged.verify().ok
    session.close()


def test_exports_know_the_stores_files_by_any_name(aged, tmp_path):
    from workbench.access import connect
    from workbench.errors import UnsafePathError

    aged.archive(older_than="30 days", now=NOW)
    (tmp_path / "hard.parquet").hardlink_to(aged.path)
    names = [
        tmp_path / "hard.parquet",  # a hard link is the store file itself
        aged.path.with_name(aged.path.name.upper()),  # the same file on a case-blind disk
        aged.tiers_dir.with_name(aged.tiers_dir.name.upper()) / "x.parquet",
    ]
    with connect(aged, user="ana") as session:
        for target in names:
            with pytest.raises(UnsafePathError, match="file of the store"):
                session.export(target, format="parquet")
            with pytest.raises(UnsafePathError, match="file of the store"):
                aged.export(target, format="parquet")
        with pytest.raises(UnsafePathError, match="cannot export"):
            session.export(str(tmp_path / "x\x00.parquet"))
    assert aged.verify().ok
    assert (tmp_path / "hard.parquet").stat().st_nlink == 2


def test_a_failed_export_leaves_nothing(aged, tmp_path):
    from workbench.errors import InputError

    out = tmp_path / "out"
    out.mkdir()
    (out / "a_file").write_text("x")
    for target in (out, out / "a_file" / "below.parquet"):
        with pytest.raises(InputError):
            aged.export(target, format="parquet")
    assert sorted(p.name for p in out.iterdir()) == ["a_file"]
