"""A widget or a live stream reads while a simulation appends: no error, no half batch."""

import datetime as dt
import threading

from workbench.access import connect

from .conftest import lead_events

T0 = dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)
BATCHES = 25


def test_reads_during_appends_see_whole_batches(disk_store):
    disk_store.append(lead_events("lead_first", T0))
    session = connect(disk_store, user="ana")
    errors: list[BaseException] = []
    done = threading.Event()

    def writer():
        try:
            for b in range(BATCHES):
                batch = []
                for i in range(5):
                    batch += lead_events(f"lead_{b}_{i}", T0 + dt.timedelta(minutes=b))
                disk_store.append(batch)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            done.set()

    seen = []
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while not done.is_set() or not seen:
            n = int(session.sql("SELECT count(*) AS n FROM events").n[0])
            seen.append(n)
            assert (n - 6) % 30 == 0, f"a read saw part of a batch: {n} events"
            assert len(session.timeline("lead_first")) == 6
            summary = session.lead_summary()
            assert summary.events.sum() == len(summary) * 6
            assert disk_store.count() >= n
            session.events(type="recipient.*", limit=5)
    finally:
        thread.join()
    assert not errors, errors
    assert seen == sorted(seen)
    assert len(set(seen)) > 2, "the reads did not overlap the appends"
    assert session.sql("SELECT count(*) AS n FROM events").n[0] == 6 + BATCHES * 30
    assert disk_store.verify().ok
    session.close()


def test_a_store_read_from_another_thread_does_not_wait_for_the_writer(disk_store):
    disk_store.append(lead_events("lead_a", T0))
    results = []

    def reader():
        results.append(len(disk_store.timeline("lead_a")))

    with disk_store._lock:  # a writer holds the store
        t = threading.Thread(target=reader)
        t.start()
        t.join(timeout=10)
    assert results == [6]


def test_many_sessions_in_threads(disk_store):
    disk_store.append(lead_events("lead_a", T0))
    errors = []

    def work(user):
        try:
            with connect(disk_store, user=user) as s:
                for _ in range(20):
                    assert len(s.timeline("lead_a")) == 6
                    s.sql("SELECT type, count(*) FROM events GROUP BY type")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(u,)) for u in ("ana", "tess", "cora", "adam")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert disk_store.verify().ok
