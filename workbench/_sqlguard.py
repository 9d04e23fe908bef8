"""Decide whether user SQL only reads, with DuckDB's own parser (never a regex).

``check_read_only`` refuses anything but a single SELECT statement (SELECT, FROM-first,
WITH, SUMMARIZE, DESCRIBE, SHOW and PIVOT all parse as reads). ``relations`` lists the
tables and table functions a query touches, from DuckDB's serialised syntax tree, so
the access layer can confine a query to the views a role may see.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb

# Table functions that change the database file although they appear inside a SELECT.
_WRITING_TABLE_FUNCTIONS = frozenset({"checkpoint", "force_checkpoint"})


class ReadOnlyViolation(PermissionError):
    """User SQL that would change something, or that cannot be checked."""


@dataclass(frozen=True)
class Relations:
    """What a SELECT reads: base tables (as written) and table functions."""

    tables: frozenset[tuple[str, ...]]
    table_functions: frozenset[str]


def _kinds(statements) -> list[str]:
    return [str(s.type).rsplit(".", 1)[-1] for s in statements]


def check_read_only(query: str) -> str:
    """Return the single SELECT statement in ``query`` or raise :class:`ReadOnlyViolation`.

    >>> check_read_only("SELECT 1;")
    'SELECT 1'
    """
    if not isinstance(query, str) or not query.strip():
        raise ReadOnlyViolation("the query is empty; write one SELECT statement")
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as e:
        raise ReadOnlyViolation(f"the query does not parse: {_first_line(e)}") from None
    kinds = _kinds(statements)
    if not statements:
        raise ReadOnlyViolation("the query holds no statement; write one SELECT statement")
    writes = [k for k in kinds if k != "SELECT"]
    if writes:
        what = ", ".join(dict.fromkeys(writes))
        raise ReadOnlyViolation(
            f"refused: this store is read-only to queries, and the query contains {what} "
            f"(statements found: {', '.join(kinds)}). Events are immutable; only a single "
            "SELECT (or FROM ..., WITH ..., DESCRIBE, SUMMARIZE, SHOW) may run here."
        )
    if len(statements) > 1:
        raise ReadOnlyViolation(
            f"refused: send one statement at a time (found {len(statements)} SELECT statements)"
        )
    rel = relations(query, strict=False)
    bad = sorted(rel.table_functions & _WRITING_TABLE_FUNCTIONS) if rel else []
    if bad:
        raise ReadOnlyViolation(f"refused: {', '.join(bad)}() writes to the store file")
    return statements[0].query.strip().rstrip(";").strip()


def relations(query: str, *, strict: bool = True) -> Relations | None:
    """The tables and table functions a single SELECT reads.

    With ``strict`` a query DuckDB cannot serialise raises; otherwise None is returned.
    """
    try:
        tree = duckdb.execute("SELECT json_serialize_sql(?::VARCHAR)", [query]).fetchone()[0]
        doc = json.loads(tree)
    except duckdb.Error as e:
        if strict:
            raise ReadOnlyViolation(f"the query cannot be checked: {_first_line(e)}") from None
        return None
    if doc.get("error"):
        if strict:
            raise ReadOnlyViolation(
                f"the query cannot be checked: {doc.get('error_message', 'unsupported statement')}"
            )
        return None
    tables: set[tuple[str, ...]] = set()
    functions: set[str] = set()
    ctes: set[str] = set()
    _walk(doc, tables, functions, ctes)
    # A name defined by a WITH clause is not a table.
    tables = {t for t in tables if not (len(t) == 1 and t[0].lower() in ctes)}
    return Relations(frozenset(tables), frozenset(functions))


def _walk(node, tables, functions, ctes) -> None:
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "BASE_TABLE":
            parts = tuple(
                p
                for p in (node.get("catalog_name"), node.get("schema_name"), node.get("table_name"))
                if p
            )
            tables.add(tuple(p.lower() for p in parts))
        elif kind == "TABLE_FUNCTION":
            fn = node.get("function") or {}
            name = fn.get("function_name")
            if name:
                functions.add(name.lower())
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            for entry in cte_map.get("map", []):
                key = entry.get("key")
                if isinstance(key, str):
                    ctes.add(key.lower())
        for v in node.values():
            _walk(v, tables, functions, ctes)
    elif isinstance(node, list):
        for v in node:
            _walk(v, tables, functions, ctes)


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0]
