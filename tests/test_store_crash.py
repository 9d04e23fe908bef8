"""A power cut in the middle of a write: kill a writer (SIGKILL) at random moments and
check that the next open finds a store that verifies, whose counts add up and whose
ingest history agrees with its ledger."""

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import workbench

from .conftest import lead_events

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
ROOT = Path(__file__).resolve().parents[1]

_CHILD = textwrap.dedent(
    """
    import datetime as dt, sys
    sys.path.insert(0, {root!r})
    import workbench
    from tests.conftest import lead_events
    mode, path = sys.argv[1], sys.argv[2]
    now = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
    store = workbench.open_store(path)
    print("ready", flush=True)
    k = 0
    while True:
        k += 1
        if mode == "append":
            events = []
            for i in range(300):
                events += lead_events(f"lead_{{k}}_{{i}}", now - dt.timedelta(days=i % 50))
            store.append(events, batch_rows=400)
        else:
            store.archive(older_than="20 days", tier="cold", now=now)
            store.restore()
            store.archive(older_than="10 days", now=now)
    """
)


def _kill_during(mode: str, path: Path, delay: float) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(root=str(ROOT)), mode, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline()
        assert line.strip() == "ready", child.stderr.read()
        time.sleep(delay)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()


@pytest.mark.parametrize("mode", ["append", "tiers"])
def test_a_killed_writer_leaves_a_store_that_verifies(tmp_path, mode):
    path = tmp_path / "events.duckdb"
    with workbench.open_store(path) as s:
        for i in range(40):
            s.append(lead_events(f"lead_seed_{i}", NOW - dt.timedelta(days=i)))
        total = s.count()
    rng = random.Random(7)
    interrupted = 0
    for _ in range(4):
        _kill_during(mode, path, rng.uniform(0.05, 0.8))
        with workbench.open_store(path) as s:  # a writable open finishes or rolls back
            report = s.verify()
            assert report.ok, str(report)
            counts = s.tier_counts()
            assert sum(counts.values()) == s.count()
            sealed = s._con.val("SELECT coalesce(sum(events), 0) FROM ledger")
            assert s.count() == sealed
            states = [r[0] for r in s._con.rows("SELECT state FROM ingests")]
            assert set(states) <= {"done", "interrupted"}
            interrupted = states.count("interrupted")
            if mode == "tiers":
                assert s.count() == total  # moves never change the count
                registered = {r[0] for r in s._con.rows("SELECT path FROM tier_files")}
                on_disk = {
                    p.relative_to(s.tiers_dir).as_posix() for p in s.tiers_dir.rglob("*.parquet")
                }
                assert on_disk == registered
    if mode == "append":
        assert interrupted, "no kill landed inside an append: the test proved nothing"
