"""Each lead snapshot is stored once: the hot table refers to it, every read gives the
snapshot back as it came, and a store of the earlier layout (schema 4, snapshot inline
in every event) is upgraded in place by open_store without changing any event."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pytest

import workbench
from workbench.errors import StoreError
from workbench.sim import simulate
from workbench.store import migrate as migrate_module
from workbench.store.schema import RECORD_TYPES, export_select

END = "2026-11-27T12:00:00Z"
DONE = (
    '{"final_outcome": "delivered", "total_duration_ms": 300, "steps_executed": 5, '
    '"total_cost": 1.0, "total_revenue": 30.0}'
)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A store of 400 simulated leads (two days, an enhancement outage) and its export."""
    folder = tmp_path_factory.mktemp("snapshots")
    path = folder / "run.duckdb"
    with workbench.open_store(path) as store:
        simulate(
            leads=400, days=2, end=END, seed=11, store=store, incidents=["enhancement_timeouts"]
        )
        store.export(folder / "before.parquet")
    return path, folder / "before.parquet"


def _export_rows(path) -> list[tuple]:
    with workbench.open_store(path, read_only=True) as s:
        return s._query_con().rows(export_select())


def test_a_snapshot_shared_by_events_is_stored_once(small_run):
    path, _ = small_run
    with workbench.open_store(path, read_only=True) as s:
        n = s.sql(
            "SELECT count(*) AS events, count(lead_snapshot) AS with_snapshot, "
            "count(DISTINCT lead_snapshot::VARCHAR) AS distinct_snapshots FROM events"
        ).iloc[0]
        stored = s._con.val("SELECT count(*) FROM snapshots")
    assert n.with_snapshot > 2 * n.distinct_snapshots  # the simulator's leads share them
    assert stored == n.distinct_snapshots


def test_every_event_reads_back_the_snapshot_it_came_with(small_run):
    path, before = small_run
    import pyarrow.parquet as pq

    given = pq.read_table(before, columns=["seq", "lead_snapshot"]).to_pydict()
    with workbench.open_store(path, read_only=True) as s:
        back = s.sql("SELECT seq, lead_snapshot::VARCHAR AS s FROM events ORDER BY seq")
    assert back.seq.tolist() == given["seq"]
    assert back.s.tolist() == given["lead_snapshot"]


def test_a_later_batch_refers_to_the_copy_already_stored():
    store = workbench.open_store()
    snap = '{"first_name": "Ada", "phone": "5125550100"}'
    t0 = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)

    def event(i, snapshot):
        return {
            "event_id": f"evt_snap{i:016d}",
            "type": "flow.completed",
            "timestamp": t0 + dt.timedelta(seconds=i),
            "lead_id": "lead_snapshots01",
            "metadata": DONE,
            "lead_snapshot": snapshot,
        }

    assert store.append([event(1, snap), event(2, snap)]).stored == 2
    later = store.append([event(3, snap), event(4, '{"first_name": "Ada"}'), event(5, None)])
    assert later.stored == 3
    assert store._con.val("SELECT count(*) FROM snapshots") == 2
    tl = store.timeline("lead_snapshots01")
    assert [s.get("phone") if s else None for s in tl.lead_snapshot] == [
        "5125550100",
        "5125550100",
        "5125550100",
        None,
        None,
    ]
    assert tl.lead_snapshot.iloc[-1] is None
    assert store.verify().ok


def test_a_read_that_does_not_need_snapshots_does_not_join_them(small_run):
    """DuckDB drops the snapshot join from queries that do not read lead_snapshot, so
    the analyses pay nothing for it."""
    path, _ = small_run
    with workbench.open_store(path, read_only=True) as s:
        plan = s._query_con().val("EXPLAIN SELECT type, count(*) FROM events GROUP BY type")
        assert "snapshots" not in str(plan).lower() and "HASH_JOIN" not in str(plan)


# --------------------------------------------------------------------------- archive


def test_archived_events_carry_their_snapshot_and_the_hot_copies_go(tmp_path):
    path = tmp_path / "a.duckdb"
    with workbench.open_store(path) as s:
        simulate(leads=150, days=2, end=END, seed=3, store=s)
        lead = s.sql("SELECT lead_id FROM events ORDER BY seq LIMIT 1").lead_id[0]
        before = s.timeline(lead).lead_snapshot.tolist()
        s.archive(older_than="1 day", now=END)
        assert s.tier_counts()["warm"] > 0
        # no hot snapshot is left that no hot event refers to
        assert not s._con.val(
            "SELECT count(*) FROM snapshots WHERE snapshot_id NOT IN "
            "(SELECT snapshot_id FROM events WHERE snapshot_id IS NOT NULL)"
        )
        assert s.timeline(lead).lead_snapshot.tolist() == before
        assert s.verify().ok
        tier_file = next(s.tiers_dir.rglob("*.parquet"))
    import pyarrow.parquet as pq

    assert "lead_snapshot" in pq.read_schema(tier_file).names  # a tier file stands alone


# --------------------------------------------------------------------------- migration


def _as_schema_4(path) -> None:
    """Rewrite a store in the layout of schema 4: each event with its snapshot inline."""
    con = duckdb.connect(str(path))
    db = con.execute("SELECT current_database()").fetchone()[0]
    from workbench.store.schema import ALL_COLUMNS, hot_select

    types = {**RECORD_TYPES}
    con.execute("BEGIN")
    con.execute(f"CREATE TABLE events_v4 AS {hot_select(db, ALL_COLUMNS)} ORDER BY seq")
    con.execute("DROP TABLE events")
    con.execute("DROP TABLE snapshots")
    con.execute("ALTER TABLE events_v4 RENAME TO events")
    con.execute("UPDATE store_meta SET value = '4' WHERE key = 'schema_version'")
    con.execute("COMMIT")
    assert [r[0] for r in con.execute("DESCRIBE events").fetchall()][11] == "lead_snapshot"
    assert types["lead_snapshot"] == "JSON"
    con.close()


@pytest.fixture
def old_store(small_run, tmp_path):
    import shutil

    path = tmp_path / "old.duckdb"
    shutil.copyfile(small_run[0], path)
    _as_schema_4(path)
    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute(export_select()).fetchall()
    con.close()
    return path, rows


def test_open_store_upgrades_a_schema_4_store_without_changing_an_event(old_store):
    path, before = old_store
    with workbench.open_store(path) as s:
        assert s._meta("schema_version") == "5"
        assert s.verify().ok
        assert s._con.val("SELECT count(*) FROM snapshots") < s.count() / 2
    assert _export_rows(path) == [tuple(r) for r in before]


def test_a_schema_4_store_opened_read_only_says_how_to_upgrade(old_store):
    path, _ = old_store
    with pytest.raises(StoreError, match="open it once for writing"):
        workbench.open_store(path, read_only=True)


def test_an_upgrade_cut_short_leaves_the_old_store_as_it_was(old_store, monkeypatch):
    path, before = old_store

    def power_cut():
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(migrate_module, "utcnow", power_cut)
    with pytest.raises(KeyboardInterrupt):
        workbench.open_store(path)
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT value FROM store_meta WHERE key = 'schema_version'").fetchone() == (
        "4",
    )
    assert con.execute(export_select()).fetchall() == before
    con.close()
    monkeypatch.undo()
    with workbench.open_store(path) as s:  # the next open upgrades it
        assert s.verify().ok
    assert _export_rows(path) == [tuple(r) for r in before]


def test_the_snapshot_key_tells_apart_texts_that_differ_only_in_spacing():
    """Snapshots are kept byte for byte (export gives back what came in), so two
    spellings of the same object are two stored copies, never merged."""
    store = workbench.open_store()
    base = {
        "type": "flow.completed",
        "timestamp": "2026-11-20T12:00:00Z",
        "lead_id": "lead_spacing0001",
        "metadata": DONE,
    }
    stored = store.append(
        pa.Table.from_pylist(
            [
                {**base, "event_id": "evt_spacing000000000001", "lead_snapshot": '{"a": 1}'},
                {**base, "event_id": "evt_spacing000000000002", "lead_snapshot": '{"a":1}'},
            ]
        )
    ).stored
    assert stored == 2
    texts = store.sql("SELECT lead_snapshot::VARCHAR AS s FROM events ORDER BY seq").s.tolist()
    assert texts == ['{"a": 1}', '{"a":1}']


def test_snapshots_whose_hashes_collide_stay_apart(monkeypatch):
    """The hash only finds candidates; the text decides. With a hash that collides for
    every snapshot of the same length, each distinct text is still stored once and
    every event reads back its own."""
    from workbench.store import ingest

    monkeypatch.setattr(ingest, "SNAPSHOT_KEY_SQL", "CAST(length(CAST({x} AS VARCHAR)) AS UBIGINT)")
    store = workbench.open_store()
    base = {"type": "flow.completed", "lead_id": "lead_collide00001", "metadata": DONE}
    snaps = ['{"a":1}', '{"b":2}', '{"a":1}', '{"c":3}']
    for k, batch in enumerate((snaps[:2], snaps[2:])):
        store.append(
            [
                {
                    **base,
                    "event_id": f"evt_collide{k}{i:012d}",
                    "timestamp": f"2026-11-20T12:00:0{2 * k + i}Z",
                    "lead_snapshot": s,
                }
                for i, s in enumerate(batch)
            ]
        )
    assert store._con.val("SELECT count(*) FROM snapshots") == 3
    back = store.timeline("lead_collide00001").lead_snapshot.tolist()
    assert back == [{"a": 1}, {"b": 2}, {"a": 1}, {"c": 3}]
    assert store.verify().ok


def test_the_upgrade_command_upgrades_an_old_store_that_read_commands_refuse(old_store):
    import subprocess
    import sys

    path, before = old_store
    cli = [sys.executable, "-m", "workbench.cli"]
    refused = subprocess.run(
        [*cli, "verify", "--store", str(path)], capture_output=True, text=True, check=False
    )
    assert refused.returncode == 2 and "workbench upgrade --store" in refused.stderr
    done = subprocess.run(
        [*cli, "upgrade", "--store", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "upgraded to store schema 5" in done.stdout, done.stderr
    assert _export_rows(path) == [tuple(r) for r in before]
    again = subprocess.run(
        [*cli, "verify", "--store", str(path)], capture_output=True, text=True, check=False
    )
    assert again.returncode == 0, again.stderr
    twice = subprocess.run(
        [*cli, "upgrade", "--store", str(path)], capture_output=True, text=True, check=False
    )
    assert twice.returncode == 0 and "nothing to upgrade" in twice.stdout


def test_a_session_read_that_does_not_need_snapshots_does_not_join_them(small_run):
    """A Session masks every column; the snapshot is joined above the masking, so the
    analyses people run through a Session pay nothing for it either, and a read that
    does want the snapshot gets it masked."""
    path, _ = small_run
    with workbench.open_store(path, read_only=True) as s:
        session = workbench.connect(s, user="ana", role="analyst")
        plan = session._views.masked.raw.execute(
            "EXPLAIN SELECT type, count(*) FROM events GROUP BY type"
        ).fetchall()[0][1]
        assert "snapshot_id" not in plan and "HASH_JOIN" not in plan.upper().replace(" ", "_")
        lead = s.sql("SELECT lead_id FROM events ORDER BY seq LIMIT 1").lead_id[0]
        raw = s.timeline(lead).lead_snapshot.iloc[0]
        seen = session.timeline(lead).lead_snapshot.iloc[0]
        assert set(seen) == set(raw) and seen["email"] != raw["email"]
        assert "*" in seen["email"]
        session.close()


def test_a_second_copy_of_a_snapshot_slipped_in_is_caught_by_verify(tmp_path):
    """Reads pick one row per snapshot id; a second row under an id (or a row no event
    refers to), added outside the store, is named by verify."""
    path = tmp_path / "s.duckdb"
    with workbench.open_store(path) as s:
        simulate(leads=20, days=1, end=END, seed=1, store=s)
        first = s._con.val("SELECT min(snapshot_id) FROM snapshots")
    for sql, words in (
        (
            f'INSERT INTO snapshots VALUES ({first}, 0, \'{{"email": "forged@x.com"}}\')',
            "stored 2 times",
        ),
        ("INSERT INTO snapshots VALUES (999999, 0, '{}')", "no event refers to it"),
    ):
        import shutil

        copy = tmp_path / f"t{len(words)}.duckdb"
        shutil.copyfile(path, copy)
        con = duckdb.connect(str(copy))
        con.execute(sql)
        con.close()
        with workbench.open_store(copy, read_only=True) as t:
            r = t.verify()
        assert not r.ok and words in r.problem


def test_a_timeline_sharing_an_old_snapshot_reads_only_the_ids_it_needs(tmp_path):
    """A lead whose snapshot text equals a much older event's shares that stored copy;
    its timeline still reads just its own ids (and gets the right text)."""
    store = workbench.open_store()
    old = {"type": "flow.completed", "metadata": DONE, "lead_snapshot": "{}"}
    store.append(
        [
            {
                **old,
                "event_id": "evt_oldsnapshot00000001",
                "lead_id": "lead_old000000001",
                "timestamp": "2026-11-01T00:00:00Z",
            }
        ]
    )
    simulate(leads=50, days=1, end=END, seed=2, store=store)
    store.append(
        [
            {
                **old,
                "event_id": "evt_newsnapshot00000001",
                "lead_id": "lead_new000000001",
                "timestamp": "2026-11-27T13:00:00Z",
            }
        ]
    )
    tl = store.timeline("lead_new000000001")
    assert tl.lead_snapshot.tolist() == [{}]
    assert store._con.val("SELECT count(*) FROM snapshots WHERE lead_snapshot = '{}'") == 1
