"""Confine a Session's SQL to its masked views, behind two walls.

**The first wall judges the statement DuckDB will run, not the names it shows.** The
query is inspected once (``store.sqlcheck``): one SELECT, no qualified names, only a few
table functions that read nothing (:data:`ALLOWED_TABLE_FUNCTIONS`), none of the scalar
functions that disclose the machine (:data:`REFUSED_FUNCTIONS`), every table it names
either a session relation or a WITH name *in scope where it is used*, and no WITH name
or alias that reuses the name of a system relation (:func:`system_name`: ``pg_settings``,
``duckdb_databases``, ``sqlite_master``...), which DuckDB would otherwise resolve, outside
the WITH, to the real catalogue view. Then it is *bound* in a
sandbox: an in-memory DuckDB that holds nothing but empty tables named and shaped like
the session's relations, and that cannot touch a file. Whatever scoping trick a query
plays (a WITH that shadows a relation, refers to itself, hides in a scalar subquery),
every name in it must resolve there, so it can only resolve to a session relation or
to a name the query defined itself; a raw table, a macro, a registered Arrow dataset or
a file path does not exist in the sandbox, and the query is refused with DuckDB's own
message.

**The second wall is the store itself:** its database was opened without access to
files, for good (``store.connection``), so a case the first wall missed still cannot
read a Parquet file, a CSV or the audit trail.

>>> box = Sandbox()
>>> box.load({"events": [("seq", "BIGINT"), ("type", "VARCHAR")]})
>>> box.bind("SELECT type FROM events WHERE seq = ?")
>>> box.bind('WITH events AS (SELECT * FROM "x.parquet") SELECT * FROM events')
Traceback (most recent call last):
...
workbench.access.config.RelationNotAllowedError: refused: the query reads something outside the session's relations (Permission Error: Cannot access file "x.parquet" - file system operations are disabled by configuration)
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading

import duckdb

from ..store.sqlcheck import Inspection
from .config import QueryError, RelationNotAllowedError

__all__ = [
    "Sandbox",
    "problems",
    "system_name",
    "ALLOWED_TABLE_FUNCTIONS",
    "REFUSED_FUNCTIONS",
]

#: Table functions a Session's SQL may call: they compute rows and read no file or table.
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {"range", "generate_series", "unnest", "json_each", "json_tree"}
)

#: Scalar functions refused although they read no table: they disclose the machine (the
#: environment, settings holding paths, the database's name) rather than the data.
REFUSED_FUNCTIONS = frozenset(
    {
        "getenv",
        "getvariable",
        "current_setting",
        "current_database",
        "current_catalog",
        "current_schema",
        "current_schemas",
    }
)

# Table references that only the Python API creates; never accepted from text.
_REFUSED_NODE_TYPES = frozenset({"COLUMN_DATA", "DELIM_GET", "BOUND_TABLE_REF"})

# The families of DuckDB's catalogue relations and table functions (and the SQLite and
# Postgres look-alikes it serves): a query may not define a name of theirs.
_SYSTEM_PREFIX = re.compile(r"^(pg_|duckdb_|sqlite_|pragma_|information_schema)")


@functools.cache
def _catalogue_names() -> frozenset[str]:
    """The relations an empty DuckDB of this version finds by a bare name (its system
    views; those of information_schema need the schema's name, refused anyway), and the
    table functions it may call without arguments."""
    db = duckdb.connect(":memory:", config={"enable_external_access": False})
    try:
        rows = db.execute(
            "SELECT lower(view_name) FROM duckdb_views() "
            "WHERE schema_name <> 'information_schema' "
            "UNION SELECT lower(table_name) FROM duckdb_tables() "
            "UNION SELECT lower(function_name) FROM duckdb_functions() "
            "WHERE function_type IN ('table', 'table_macro') AND len(parameters) = 0"
        ).fetchall()
    finally:
        db.close()
    return frozenset(r[0] for r in rows)


def system_name(name: str) -> bool:
    """Is ``name`` (a WITH name or an alias) the name of one of DuckDB's own relations
    or table functions, which a query may not reuse?

    >>> system_name("pg_settings"), system_name("PRAGMA_database_list"), system_name("recent")
    (True, True, False)
    """
    n = name.lower()
    return bool(_SYSTEM_PREFIX.match(n)) or n in _catalogue_names()


def problems(shape: Inspection, allowed: frozenset[str]) -> list[str]:
    """Why a statement of ``shape`` may not run in a Session, by the names it shows
    (empty when none; the sandbox then decides what the names resolve to)."""
    out = []
    reused = sorted(n for n in shape.ctes | shape.aliases if n not in allowed and system_name(n))
    for n in reused:
        out.append(
            f"{n!r} is the name of a system relation of DuckDB: a WITH name or alias in a "
            "session may not reuse it (choose another name)"
        )
    for t in sorted(shape.free_tables):
        name = ".".join(t)
        if len(t) > 1:
            out.append(
                f"{name!r} is a qualified name: a session reads its own relations by their "
                f"bare names ({', '.join(sorted(allowed))})"
            )
        elif t[0] not in allowed:
            out.append(
                f"{name!r} is not readable in a session (files and other tables included); "
                f"readable: {', '.join(sorted(allowed))}"
            )
    for fn in sorted(shape.table_functions - ALLOWED_TABLE_FUNCTIONS):
        out.append(
            f"table function {fn}() is not allowed in a session (it reads files, tables or "
            f"SQL text); allowed: {', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))}"
        )
    for fn in sorted(shape.functions & REFUSED_FUNCTIONS):
        out.append(f"function {fn}() is not allowed in a session (it shows the machine, not data)")
    for kind in sorted(shape.node_types & _REFUSED_NODE_TYPES):
        out.append(f"a {kind} reference is not allowed in a session")
    return out


class Sandbox:
    """An empty DuckDB where a session's queries are bound before they run."""

    def __init__(self):
        self._db = duckdb.connect(":memory:", config={"enable_external_access": False})
        self._db.execute("SET TimeZone = 'UTC'")
        self._lock = threading.Lock()
        self._tables: tuple = ()
        self._bound: dict[str, None] = {}

    def load(self, relations: dict[str, list[tuple[str, str]]]) -> None:
        """Make the sandbox hold exactly ``relations`` (name -> [(column, type)]), empty."""
        key = tuple((name, tuple(cols)) for name, cols in sorted(relations.items()))
        with self._lock:
            if key == self._tables:
                return
            for (name,) in self._db.execute(
                "SELECT table_name FROM duckdb_tables() WHERE temporary"
            ).fetchall():
                self._db.execute(f'DROP TABLE temp.main."{name}"')
            for name, cols in relations.items():
                body = ", ".join(f'"{c}" {t}' for c, t in cols)
                self._db.execute(f'CREATE TEMP TABLE "{name}" ({body})')
            self._tables = key
            self._bound.clear()

    def bind(self, statement: str) -> None:
        """Bind ``statement`` here, or raise RelationNotAllowedError with DuckDB's reason."""
        with self._lock:
            if statement in self._bound:
                return
            try:
                self._db.execute(f"PREPARE _wb_check AS {statement}")
            except (duckdb.PermissionException, duckdb.CatalogException) as e:
                raise RelationNotAllowedError(
                    "refused: the query reads something outside the session's relations "
                    f"({_first_line(e)})"
                ) from None
            except duckdb.Error as e:
                raise QueryError(f"sql failed: {_first_line(e)}") from None
            finally:
                with contextlib.suppress(duckdb.Error):
                    self._db.execute("DEALLOCATE _wb_check")
            if len(self._bound) > 2048:
                self._bound.clear()
            self._bound[statement] = None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0]
