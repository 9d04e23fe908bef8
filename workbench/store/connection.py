"""Opening DuckDB for a store, and a connection wrapper that finishes every result.

A store's database is opened with ``enable_external_access = false``: from then on no
statement on any of its connections can read or write a file (``read_parquet``, a quoted
path, ``COPY``, ``ATTACH``), and DuckDB refuses to turn access back on. Whatever a user's
SQL says, it cannot reach the raw tiers, an export or the audit trail by a file name;
the store moves its own files with pyarrow (tiers.py). DuckDB still spills to its own
temporary folder.

>>> con = Connection(connect_duckdb(None))
>>> con.val("SELECT current_setting('enable_external_access')")
False
"""

from __future__ import annotations

import contextlib

import duckdb
import pandas as pd

from ..errors import StoreError
from .queries import frame

__all__ = ["connect_duckdb", "Connection", "SETTINGS"]

#: Set on every connection of a store.
SETTINGS = ("SET TimeZone = 'UTC'", "SET enable_progress_bar = false")


def connect_duckdb(path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to ``path`` (None: in memory) with no access to files."""
    # no files, and no extension fetched or loaded on demand (sqlite_scanner, httpfs...)
    config = {
        "enable_external_access": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    if path is None:
        con = duckdb.connect(":memory:", config=config)
    else:
        con = duckdb.connect(str(path), read_only=read_only, config=config)
    for statement in SETTINGS:
        con.execute(statement)
    return con


class Connection:
    """A DuckDB connection (or cursor) whose every call finishes its result.

    DuckDB 2.x keeps a result open until it is drained, and refuses other work on the
    connection meanwhile; each method here fetches what it returns.
    """

    def __init__(self, raw: duckdb.DuckDBPyConnection):
        self.raw = raw
        self.closed = False

    def _exec(self, sql: str, params=None):
        if self.closed:
            raise StoreError("this store is closed; open it again with open_store(path)")
        return self.raw.execute(sql, params) if params is not None else self.raw.execute(sql)

    def run(self, sql: str, params=None) -> None:
        self._exec(sql, params).fetchall()

    def rows(self, sql: str, params=None) -> list[tuple]:
        return self._exec(sql, params).fetchall()

    def one(self, sql: str, params=None) -> tuple | None:
        rows = self.rows(sql, params)
        return rows[0] if rows else None

    def val(self, sql: str, params=None):
        return self.rows(sql, params)[0][0]

    def numpy(self, sql: str, params=None) -> dict:
        return self._exec(sql, params).fetchnumpy()

    def df(self, sql: str, params=None) -> pd.DataFrame:
        return self._exec(sql, params).df()

    def frame(self, sql: str, params=None) -> pd.DataFrame:
        """Like ``df`` for a few rows of many columns (a timeline), in half the time."""
        if self.closed:
            raise StoreError("this store is closed; open it again with open_store(path)")
        return frame(self.raw.sql(sql, params=params).to_arrow_table())

    def execute(self, sql: str, params=None):
        """The raw result, for streaming (``fetch_record_batch``); drain it."""
        return self._exec(sql, params)

    def executemany(self, sql: str, rows) -> None:
        self.raw.executemany(sql, rows)

    def register(self, name: str, obj) -> None:
        self.raw.register(name, obj)

    def unregister(self, name: str) -> None:
        # after a failed statement the transaction is aborted and DuckDB refuses even
        # this; the name is replaced on the next register, and the real error wins
        with contextlib.suppress(duckdb.TransactionException):
            self.raw.unregister(name)

    def cursor(self) -> Connection:
        cur = Connection(self.raw.cursor())
        for statement in SETTINGS:
            cur.run(statement)
        return cur

    @contextlib.contextmanager
    def snapshot(self):
        """A read-only transaction: every statement inside sees the same data."""
        self.run("BEGIN TRANSACTION")
        try:
            yield self
        finally:
            with contextlib.suppress(duckdb.Error):
                self.run("ROLLBACK")

    def close(self) -> None:
        self.closed = True
        self.raw.close()
