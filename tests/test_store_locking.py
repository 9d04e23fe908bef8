"""One writer or many readers per store file, across processes, with clear errors."""

import subprocess
import sys
import textwrap

import pytest

import workbench
from workbench import StoreLockedError, StoreNotFoundError

from .conftest import make_event

HOLD = textwrap.dedent(
    """
    import sys, time, workbench
    s = workbench.open_store(sys.argv[1], read_only=sys.argv[2] == "ro")
    print("ready", flush=True)
    sys.stdin.readline()
    """
)


class Holder:
    """Another process that holds the store open until told to stop."""

    def __init__(self, path, mode):
        self.p = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(path), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.p.stdout.readline().strip() == "ready"

    def stop(self):
        self.p.communicate("\n", timeout=30)


@pytest.fixture
def existing(store_path):
    with workbench.open_store(store_path) as s:
        s.append([make_event()])
    return store_path


def test_several_readers_at_once(existing):
    h = Holder(existing, "ro")
    try:
        with workbench.open_store(existing, read_only=True) as s:
            assert s.count() == 1
    finally:
        h.stop()


def test_second_writer_gets_a_clear_error(existing):
    h = Holder(existing, "rw")
    try:
        with pytest.raises(StoreLockedError, match=r"held by .*PID \d+.*one process write"):
            workbench.open_store(existing)
        with pytest.raises(StoreLockedError, match="cannot read"):
            workbench.open_store(existing, read_only=True)
    finally:
        h.stop()
    with workbench.open_store(existing) as s:  # free again once the holder is gone
        assert s.count() == 1


def test_writer_while_readers_hold_it(existing):
    h = Holder(existing, "ro")
    try:
        with pytest.raises(
            StoreLockedError, match="read_only=True once the writer is done|held by"
        ):
            workbench.open_store(existing)
    finally:
        h.stop()


def test_read_only_store_refuses_writes(existing):
    with (
        workbench.open_store(existing, read_only=True) as s,
        pytest.raises(workbench.ReadOnlyStoreError, match="opened read-only"),
    ):
        s.append([make_event()])


def test_opening_a_missing_store_read_only(tmp_path):
    with pytest.raises(StoreNotFoundError, match="no store at"):
        workbench.open_store(tmp_path / "nope.duckdb", read_only=True)


def test_a_duckdb_file_that_is_not_a_store(tmp_path):
    import duckdb

    path = tmp_path / "other.duckdb"
    duckdb.connect(str(path)).execute("CREATE TABLE t (a INT)").close()
    with pytest.raises(workbench.StoreError, match="not a workbench store"):
        workbench.open_store(path)


def test_closed_store_says_so(existing):
    s = workbench.open_store(existing)
    s.close()
    with pytest.raises(workbench.StoreError, match="closed"):
        s.timeline("lead_T1")
