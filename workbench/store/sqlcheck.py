"""The one inspector of user SQL: is it a single read, and what does it name?

:func:`inspect` parses a query once, with DuckDB's own parser (never a regex), and
returns an :class:`Inspection`: the statement, the tables it names (as written, and
those named where no WITH in scope defines them), the table and scalar functions it
calls, the WITH names and table aliases it defines, and whether it is a ``SHOW``. Anything but a single SELECT (SELECT, FROM-first, WITH, VALUES, DESCRIBE,
SUMMARIZE, SHOW and PIVOT all parse as reads) raises :class:`ReadOnlyViolation` before
it runs. The store uses it to keep its own SQL read-only; a Session also confines the
query to its views (``access``), with a sandbox that binds it where nothing else exists.

>>> i = inspect("WITH x AS (SELECT 1) SELECT * FROM events e JOIN read_parquet('p') USING (seq)")
>>> sorted(i.tables), sorted(i.table_functions), sorted(i.ctes), sorted(i.aliases)
([('events',)], ['read_parquet'], ['x'], ['e'])
>>> sorted(inspect("SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) a, x").free_tables)
[('x',)]
>>> check_read_only("SELECT 1;")
'SELECT 1'
"""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass, field

import duckdb

from ..errors import ReadOnlyViolation

__all__ = ["Inspection", "inspect", "check_read_only", "ReadOnlyViolation"]

# Table functions that change the database file although they appear inside a SELECT.
_WRITING_TABLE_FUNCTIONS = frozenset({"checkpoint", "force_checkpoint"})

_parser_lock = threading.Lock()
_parser: duckdb.DuckDBPyConnection | None = None


@dataclass(frozen=True)
class Inspection:
    """What one read-only statement names."""

    statement: str
    tables: frozenset[tuple[str, ...]]
    table_functions: frozenset[str]
    functions: frozenset[str]
    ctes: frozenset[str]
    node_types: frozenset[str]
    #: "tables" for SHOW TABLES / SHOW ALL TABLES, another word for other SHOW forms,
    #: None when the statement is no SHOW of the catalogue (DESCRIBE x is a read of x)
    show: str | None = None
    #: the tables named where no WITH in scope defines that name: these read the catalogue
    free_tables: frozenset[tuple[str, ...]] = frozenset()
    #: the aliases given to tables, subqueries and table functions (``FROM events AS e``)
    aliases: frozenset[str] = frozenset()


def _serialise(query: str) -> dict:
    global _parser
    with _parser_lock:
        if _parser is None:
            _parser = duckdb.connect(":memory:", config={"enable_external_access": False})
        text = _parser.execute("SELECT json_serialize_sql(?::VARCHAR)", [query]).fetchone()[0]
    return json.loads(text)


def _kinds(query: str) -> list[str]:
    """Statement kinds, for the message of a refusal (only parsed on that path)."""
    try:
        return [str(s.type).rsplit(".", 1)[-1] for s in duckdb.extract_statements(query)]
    except duckdb.Error:
        return []


@functools.lru_cache(maxsize=1024)
def inspect(query: str) -> Inspection:
    """Parse ``query`` once: its single SELECT and what it names, or ReadOnlyViolation."""
    if not isinstance(query, str) or not query.strip():
        raise ReadOnlyViolation("the query is empty; write one SELECT statement")
    try:
        doc = _serialise(query)
    except duckdb.Error as e:
        raise ReadOnlyViolation(f"the query does not parse: {_first_line(e)}") from None
    if doc.get("error"):
        kinds = _kinds(query)
        writes = [k for k in kinds if k != "SELECT"]
        if writes:
            what = ", ".join(dict.fromkeys(writes))
            raise ReadOnlyViolation(
                f"refused: queries here only read, and this one contains {what} "
                f"(statements found: {', '.join(kinds)}). Events are immutable; only a single "
                "SELECT (or FROM ..., WITH ..., DESCRIBE, SUMMARIZE, SHOW) may run here."
            )
        message = doc.get("error_message") or "unsupported statement"
        if not kinds:
            raise ReadOnlyViolation(f"the query does not parse: {message}")
        raise ReadOnlyViolation(
            f"refused: the query cannot be checked ({message}); write it as one SELECT "
            "(FROM events PIVOT (...) instead of a PIVOT statement)"
        )
    statements = doc.get("statements") or []
    if not statements:
        raise ReadOnlyViolation("the query holds no statement; write one SELECT statement")
    if len(statements) > 1:
        raise ReadOnlyViolation(
            f"refused: send one statement at a time (found {len(statements)} statements)"
        )
    seen = _Names()
    _walk(statements[0], seen)
    table_functions = seen.table_functions
    bad = sorted(table_functions & _WRITING_TABLE_FUNCTIONS)
    if bad:
        raise ReadOnlyViolation(f"refused: {', '.join(bad)}() writes to the store file")
    statement = query.strip()
    while statement.endswith(";"):
        statement = statement[:-1].rstrip()
    return Inspection(
        statement=statement,
        tables=frozenset(seen.tables),
        table_functions=frozenset(table_functions),
        functions=frozenset(seen.functions),
        ctes=frozenset(seen.ctes),
        node_types=frozenset(seen.node_types),
        show=seen.shows[0] if seen.shows else None,
        free_tables=frozenset(seen.free_tables),
        aliases=frozenset(seen.aliases),
    )


def check_read_only(query: str) -> str:
    """Return the single SELECT statement in ``query`` or raise :class:`ReadOnlyViolation`.

    >>> check_read_only("SELECT 1;")
    'SELECT 1'
    """
    return inspect(query).statement


# Table references that may carry an alias (expressions carry aliases too: not these).
_TABLE_REFS = frozenset(
    {"BASE_TABLE", "SUBQUERY", "TABLE_FUNCTION", "EXPRESSION_LIST", "PIVOT", "JOIN"}
)


@dataclass
class _Names:
    """What a walk of a parsed statement collects."""

    tables: set = field(default_factory=set)
    free_tables: set = field(default_factory=set)
    table_functions: set = field(default_factory=set)
    functions: set = field(default_factory=set)
    ctes: set = field(default_factory=set)
    aliases: set = field(default_factory=set)
    node_types: set = field(default_factory=set)
    shows: list = field(default_factory=list)


def _walk(node, seen: _Names) -> None:
    """Collect the names of a parsed statement; a WITH's names are in scope for the
    query node that defines them (its body, its subqueries and its WITH bodies), so a
    name used outside that node is a *free* table: one the catalogue must hold."""
    stack: list = [(node, frozenset())]
    while stack:
        n, scope = stack.pop()
        if isinstance(n, dict):
            kind = n.get("type")
            if not isinstance(kind, str):  # a type of a value (a CAST, a constant)
                kind = None
            else:
                seen.node_types.add(kind)
            if kind in _TABLE_REFS and n.get("alias"):
                seen.aliases.add(str(n["alias"]).lower())
            cte_map = n.get("cte_map")
            if isinstance(cte_map, dict):
                names = {
                    str(e["key"]).lower()
                    for e in cte_map.get("map", [])
                    if isinstance(e, dict) and isinstance(e.get("key"), str)
                }
                if names:
                    seen.ctes |= names
                    scope = scope | names
            if kind == "BASE_TABLE":
                parts = (n.get("catalog_name"), n.get("schema_name"), n.get("table_name"))
                name = tuple(str(p).lower() for p in parts if p)
                seen.tables.add(name)
                if len(name) != 1 or name[0] not in scope:
                    seen.free_tables.add(name)
            elif kind == "SHOW_REF" and n.get("query") is None:
                # SHOW TABLES, SHOW ALL TABLES, SHOW DATABASES ...: a look at the catalogue
                name = str(n.get("table_name") or "").strip('"').lower() or "show"
                seen.shows.append("all_tables" if name == "__show_tables_expanded" else name)
            elif kind == "TABLE_FUNCTION":
                fn = n.get("function") or {}
                name = fn.get("function_name")
                if name:
                    seen.table_functions.add(str(name).lower())
                    # the function expression itself is not a scalar call
                    stack.extend((v, scope) for k, v in fn.items() if k != "function_name")
                    stack.extend((v, scope) for k, v in n.items() if k != "function")
                    continue
            elif kind == "FUNCTION" and n.get("function_name"):
                seen.functions.add(str(n["function_name"]).lower())
            stack.extend((v, scope) for v in n.values())
        elif isinstance(n, list):
            stack.extend((v, scope) for v in n)


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0]
