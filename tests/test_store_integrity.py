"""verify() recomputes the hash chain; tampering through raw DuckDB is caught."""

import datetime as dt

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


def test_there_is_no_update_or_delete_api(store):
    public = {n for n in dir(store) if not n.startswith("_")}
    assert not any(
        word in n for n in public for word in ("update", "delete", "remove", "drop", "edit")
    )
