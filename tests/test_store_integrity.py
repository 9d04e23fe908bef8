"""verify() recomputes the hash chain; tampering through raw DuckDB is caught."""

import datetime as dt
import re

import duckdb
import pytest

import workbench

from .conftest import lead_events

T0 = dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)


@pytest.fixture
def sealed(store_path):
    with workbench.open_store(store_path) as s:
        for i in range(5):
            s.append(lead_events(f"lead_{i}", T0 + dt.timedelta(minutes=i)))
        assert s.verify().ok
    return store_path


def tamper(path, sql):
    con = duckdb.connect(str(path))
    con.execute(sql)
    con.close()


def verify(path):
    with workbench.open_store(path, read_only=True) as s:
        return s.verify()


def test_an_untouched_store_verifies(sealed):
    r = verify(sealed)
    assert r.ok and r.events_checked == 30 and bool(r)
    assert "hash chain intact" in str(r)


def test_changed_content_names_the_event(sealed):
    event_id = (
        duckdb.connect(str(sealed))
        .execute("SELECT event_id FROM events WHERE seq = 14")
        .fetchone()[0]
    )
    tamper(sealed, "UPDATE events SET outcome = 'success', duration_ms = 1 WHERE seq = 14")
    r = verify(sealed)
    assert not r.ok
    assert (r.first_bad_seq, r.first_bad_event_id) == (14, event_id)
    assert "TAMPERED at seq 14" in str(r)


def test_changed_json_is_caught(sealed):
    tamper(sealed, """UPDATE events SET metadata = '{"source": "Someone else"}' WHERE seq = 3""")
    assert verify(sealed).first_bad_seq == 3


def test_deleted_event_is_caught(sealed):
    tamper(sealed, "DELETE FROM events WHERE seq = 20")
    r = verify(sealed)
    assert not r.ok and r.first_bad_seq == 20 and "missing" in r.problem


def test_deleted_last_events_are_caught_by_the_ledger(sealed):
    tamper(sealed, "DELETE FROM events WHERE seq >= 29")
    r = verify(sealed)
    assert not r.ok and "deleted from the end" in r.problem


def test_inserted_event_is_caught(sealed):
    tamper(
        sealed, "INSERT INTO events SELECT * REPLACE (seq + 100 AS seq) FROM events WHERE seq = 5"
    )
    assert not verify(sealed).ok


def test_forged_chain_hash_is_caught(sealed):
    tamper(sealed, "UPDATE events SET chain_hash = chain_hash + 1 WHERE seq = 7")
    assert verify(sealed).first_bad_seq == 7


def test_a_changed_id_hash_is_caught_before_an_event_can_be_stored_twice(sealed):
    event_id = (
        duckdb.connect(str(sealed))
        .execute("SELECT event_id FROM events WHERE seq = 9")
        .fetchone()[0]
    )
    tamper(sealed, "UPDATE events SET id_hash = id_hash + 1 WHERE seq = 9")
    r = verify(sealed)
    assert not r.ok
    assert (r.first_bad_seq, r.first_bad_event_id) == (9, event_id)
    assert "id_hash" in r.problem and "TAMPERED at seq 9" in str(r)


def test_a_changed_id_hash_in_a_tier_file_is_caught(store_path):
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    now = T0 + dt.timedelta(days=60)
    with workbench.open_store(store_path) as s:
        s.append(lead_events("lead_old", T0))
        s.archive(older_than="30 days", now=now)
        rel = s.sql("SELECT path FROM tier_files").path[0]
        f = s.tiers_dir / rel
    table = pq.read_table(f)
    i = table.schema.get_field_index("id_hash")
    bumped = pc.add(table.column(i), pa.scalar(1, table.schema.field(i).type))
    pq.write_table(table.set_column(i, "id_hash", bumped), f)
    # re-record the file's size and digest, as someone covering their tracks would
    import hashlib

    data = f.read_bytes()
    tamper(
        store_path,
        f"UPDATE tier_files SET bytes = {len(data)}, "
        f"sha256 = '{hashlib.sha256(data).hexdigest()}' WHERE path = '{rel}'",
    )
    r = verify(store_path)
    assert not r.ok and r.first_bad_seq == 1 and "id_hash" in r.problem


@pytest.mark.parametrize(
    "definition",
    [
        "{}",
        "[1, 2]",
        "null",
        '{"when": "scored", "outcomes": 5}',
        '{"when": "scored", "category": 7}',
        '{"when": "scored", "outcomes": ["won"]}',
        '{"when": "scored", "colour": "red"}',
    ],
)
def test_a_broken_event_types_row_is_named_when_the_store_opens(sealed, capsys, definition):
    from workbench.cli import main

    tamper(sealed, f"INSERT INTO event_types VALUES ('x.y', '{definition}')")
    for read_only in (False, True):
        with pytest.raises(workbench.StoreError, match="event_types row 'x.y'"):
            workbench.open_store(sealed, read_only=read_only)
    assert main(["verify", "--store", str(sealed)]) == 2
    err = capsys.readouterr().err
    assert "event_types row 'x.y'" in err and "internal error" not in err
    tamper(sealed, "DELETE FROM event_types WHERE name = 'x.y'")
    assert verify(sealed).ok


def test_a_registered_event_type_opens_again(store_path):
    with workbench.open_store(store_path) as s:
        s.register_event_type(
            "quality.scored", when="A lead is scored", required_metadata=["score"]
        )
    with workbench.open_store(store_path, read_only=True) as s:
        assert s.catalog.get("quality.scored").required_metadata == ("score",)


def test_there_is_no_update_or_delete_api(store):
    public = {n for n in dir(store) if not n.startswith("_")}
    assert not any(
        word in n for n in public for word in ("update", "delete", "remove", "drop", "edit")
    )


# --------------------------------------------------------------------------- every fact


@pytest.mark.parametrize(
    "column, value",
    [
        ("revenue", "999"),
        ("rejection_reason", "'made up'"),
        ("step_name", "'Other step'"),
        ("cost", "0"),
        ("http_status", "500"),
    ],
)
def test_changed_derived_columns_are_caught(sealed, column, value):
    tamper(sealed, f"UPDATE events SET {column} = {value} WHERE seq = 11")
    r = verify(sealed)
    assert not r.ok and r.first_bad_seq == 11


def test_a_changed_summary_is_caught(sealed):
    tamper(sealed, "UPDATE lead_summary_parts SET revenue = 1e6 WHERE lead_id = 'lead_2'")
    r = verify(sealed)
    assert not r.ok and "lead_2" in r.problem and "summary" in r.problem


def test_a_changed_ingest_history_is_caught(sealed):
    tamper(sealed, "UPDATE ingests SET stored = 3 WHERE ingest_id = 2")
    r = verify(sealed)
    assert not r.ok and "ingest history of ingest 2" in r.problem


def test_a_changed_snapshot_is_caught_at_the_events_that_share_it(sealed):
    """A lead snapshot is stored once for the events that carry it: rewriting that one
    copy changes every one of those events, and verify names the first."""
    with workbench.open_store(sealed) as s:
        first = s.sql("SELECT min(seq) AS seq FROM events WHERE lead_snapshot IS NOT NULL").seq[0]
    tamper(
        sealed,
        'UPDATE snapshots SET lead_snapshot = \'{"first_name": "Mallory"}\' '
        "WHERE snapshot_id = (SELECT min(snapshot_id) FROM snapshots)",
    )
    r = verify(sealed)
    assert not r.ok and r.first_bad_seq == first and "content no longer matches" in r.problem


def test_a_forged_seal_is_caught(sealed):
    tamper(sealed, "UPDATE ledger SET seal = repeat('a', 64) WHERE batch_id = 3")
    r = verify(sealed)
    assert not r.ok and "seal of batch 3" in r.problem


def test_a_crafted_change_that_keeps_the_64_bit_chain_is_caught_by_the_seal(sealed):
    """Whoever rewrites an event and its 64-bit chain hash (or finds a collision) still
    cannot make the SHA-256 seal come out the same."""
    con = duckdb.connect(str(sealed))
    con.execute("UPDATE events SET outcome = 'failure' WHERE seq = 8")
    con.execute("ALTER TABLE events ALTER chain_hash SET DEFAULT 0")  # touch nothing else
    con.close()
    with workbench.open_store(sealed) as s:
        # recompute the 64-bit chain the way an attacker would, leave the seals alone
        from workbench.store.chain import chain
        from workbench.store.schema import EVENT_DIGEST_SQL, hot_select

        db = s._con.val("SELECT current_database()")
        c = s._con.numpy(
            f"SELECT CAST('0x' || left({EVENT_DIGEST_SQL}, 16) AS UBIGINT) AS c "
            f"FROM ({hot_select(db)}) ORDER BY seq"
        )["c"]
        h = chain(c.astype("uint64"))
        s._con.executemany(
            "UPDATE events SET chain_hash = ? WHERE seq = ?",
            [[int(v), i + 1] for i, v in enumerate(h)],
        )
        s._con.run("UPDATE ledger SET head_hash = NULL")
    r = verify(sealed)
    assert not r.ok and "SHA-256 seal" in r.problem


def test_the_head_can_be_kept_and_checked_later(sealed):
    head = verify(sealed).head_hash
    assert len(head) == 64
    with workbench.open_store(sealed) as s:
        assert s.verify(expect=head).ok
        assert "nothing changed" in str(s.verify(expect=head))
        s.append(lead_events("lead_late", T0 + dt.timedelta(hours=1)))
        later = s.verify(expect=head[:20])
        assert later.ok and "6 events" in str(later)
        with pytest.raises(ValueError, match="head digest"):
            s.verify(expect="not hex")
    # a store rebuilt from scratch with other content cannot show that head
    tamper(sealed, "DELETE FROM ledger WHERE batch_id > 2")
    assert not verify(sealed).ok


def test_a_head_from_another_store_is_refused(sealed, tmp_path):
    with workbench.open_store(tmp_path / "other.duckdb") as other:
        other.append(lead_events("lead_x", T0))
        foreign = other.verify().head_hash
    with workbench.open_store(sealed, read_only=True) as s:
        r = s.verify(expect=foreign)
    assert not r.ok and "not in this store's seal chain" in r.problem


def test_quarantined_rows_are_sealed_too(store_path):
    with workbench.open_store(store_path) as s:
        s.append([{"event_id": "evt_bad", "type": "no.such", "lead_id": "l", "timestamp": "x"}])
        assert s.verify().ok
    tamper(store_path, "UPDATE quarantine SET reason = 'fine' WHERE qid = 1")
    r = verify(store_path)
    assert not r.ok and "quarantine" in r.problem


# --------------------------------------------------------------------------- tier files


@pytest.fixture
def tiered(store_path):
    now = T0 + dt.timedelta(days=60)
    with workbench.open_store(store_path) as s:
        s.append(lead_events("lead_old", T0))
        s.append(lead_events("lead_new", now - dt.timedelta(hours=1)))
        s.archive(older_than="30 days", now=now)
        files = [s.tiers_dir / p for p in s.sql("SELECT path FROM tier_files").path]
        assert s.verify().ok
    return store_path, files


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "garbage"])
def test_a_damaged_tier_file_is_named(tiered, damage):
    path, files = tiered
    f = files[0]
    data = f.read_bytes()
    if damage == "truncate":
        f.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        f.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    elif damage == "delete":
        f.unlink()
    else:
        f.write_bytes(b"not parquet at all")
    r = verify(path)
    assert not r.ok and f.name in r.problem and "seq 1..6" in r.problem


def test_the_cli_names_a_damaged_file_without_a_traceback(tiered, capsys):
    from workbench.cli import main

    path, files = tiered
    files[0].write_bytes(b"")
    assert main(["verify", "--store", str(path)]) == 1
    out = capsys.readouterr()
    assert files[0].name in out.out and "Traceback" not in out.err


# --------------------------------------------------------------------------- duplicates


def test_the_same_event_again_is_a_duplicate_other_content_is_quarantined(store):
    events = lead_events("lead_d", T0)
    store.append(events)
    again = [dict(e, metadata={**e["metadata"]}) for e in events]  # equal content
    assert store.append(again).duplicates == 6
    changed = dict(events[2], metadata={**events[2]["metadata"], "cost": 99})
    r = store.append([changed])
    assert (r.stored, r.duplicates, r.quarantined) == (0, 0, 1)
    q = store.quarantined()
    assert q.event_id[0] == events[2]["event_id"]
    digests = re.findall(r"\b[0-9a-f]{64}\b", q.reason[0])
    assert len(digests) == 2 and digests[0] != digests[1]
    assert store.verify().ok


def test_json_spacing_alone_is_not_a_conflict(store):
    import json as _json

    e = lead_events("lead_s", T0)[0]
    store.append([e])
    spaced = dict(e, metadata=_json.dumps(e["metadata"], indent=2))
    assert store.append([spaced]).duplicates == 1


def test_duplicates_of_archived_events_are_checked_against_the_tier(tiered):
    path, _ = tiered
    with workbench.open_store(path) as s:
        fields = [
            "event_id",
            "type",
            "timestamp",
            "lead_id",
            "flow_id",
            "entity_id",
            "step_id",
            "outcome",
            "duration_ms",
            "metadata",
            "lead_snapshot",
        ]
        events = s.events(lead_id="lead_old")[fields].to_dict("records")
        assert s.tier_counts()["hot"] == 6  # lead_old lives in the warm tier only
        assert s.append(events).duplicates == 6
        changed = dict(events[0], lead_id="lead_other")
        assert s.append([changed]).quarantined == 1
