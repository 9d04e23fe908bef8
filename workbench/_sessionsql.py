"""Confine user SQL of a Session to the relations it may read, decided by DuckDB's parser.

``check_read_only`` (``_sqlguard``) already refuses anything but one SELECT. This
module reads the statement's serialised syntax tree and lists every base table, table
function and scalar function it names, then applies an allow-list: a Session's SQL may
read its own views by their bare names (``events``, ``lead_summary``, ...), the names its
own WITH clauses define, and a few table functions that read no file. So a qualified
name of a raw table (``main.events``, ``<db>.main.quarantine``), a file read through
``read_parquet``/``read_text``/``FROM 'x.parquet'``, a query in a string
(``query()``, ``query_table()``, ``json_execute_serialized_sql()``) and the catalogue
functions are all refused before the query runs. A statement DuckDB cannot serialise is
refused too: what cannot be checked does not run.

>>> shape = inspect_query("SELECT * FROM events e JOIN read_parquet('x') p USING (seq)")
>>> sorted(shape.tables), sorted(shape.table_functions)
([('events',)], ['read_parquet'])
"""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass

import duckdb

__all__ = ["QueryShape", "inspect_query", "problems", "ALLOWED_TABLE_FUNCTIONS"]

#: Table functions a Session's SQL may call: they compute rows and read no file or table.
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {"range", "generate_series", "unnest", "json_each", "json_tree"}
)

#: Scalar functions refused although they read no table: they reach outside the data.
REFUSED_FUNCTIONS = frozenset({"getenv", "getvariable"})

# Table references that only the Python API creates; never accepted from text.
_REFUSED_NODE_TYPES = frozenset({"COLUMN_DATA", "DELIM_GET", "BOUND_TABLE_REF"})

_parser_lock = threading.Lock()
_parser: duckdb.DuckDBPyConnection | None = None


class UncheckableQuery(ValueError):
    """DuckDB cannot serialise the statement, so its relations cannot be listed."""


@dataclass(frozen=True)
class QueryShape:
    """What a statement names: base tables (as written), table and scalar functions, CTEs."""

    tables: frozenset[tuple[str, ...]]
    table_functions: frozenset[str]
    functions: frozenset[str]
    ctes: frozenset[str]
    node_types: frozenset[str]


def _serialise(query: str) -> dict:
    global _parser
    with _parser_lock:
        if _parser is None:
            _parser = duckdb.connect(":memory:")
        text = _parser.execute("SELECT json_serialize_sql(?::VARCHAR)", [query]).fetchone()[0]
    return json.loads(text)


@functools.lru_cache(maxsize=512)
def inspect_query(query: str) -> QueryShape:
    """List what one SELECT statement reads (raises :class:`UncheckableQuery`)."""
    try:
        doc = _serialise(query)
    except duckdb.Error as e:
        raise UncheckableQuery(str(e).strip().splitlines()[0]) from None
    if doc.get("error"):
        raise UncheckableQuery(doc.get("error_message") or "unsupported statement")
    tables: set = set()
    table_functions: set = set()
    functions: set = set()
    ctes: set = set()
    node_types: set = set()
    _walk(doc, tables, table_functions, functions, ctes, node_types)
    return QueryShape(
        frozenset(tables),
        frozenset(table_functions),
        frozenset(functions),
        frozenset(ctes),
        frozenset(node_types),
    )


def _walk(node, tables, table_functions, functions, ctes, node_types) -> None:
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            kind = n.get("type")
            if isinstance(kind, str):
                node_types.add(kind)
            if kind == "BASE_TABLE":
                parts = (n.get("catalog_name"), n.get("schema_name"), n.get("table_name"))
                tables.add(tuple(str(p).lower() for p in parts if p))
            elif kind == "TABLE_FUNCTION":
                fn = n.get("function") or {}
                name = fn.get("function_name")
                if name:
                    table_functions.add(str(name).lower())
                    # the function expression itself is not a scalar call
                    stack.extend(v for k, v in fn.items() if k != "function_name")
                    stack.extend(v for k, v in n.items() if k != "function")
                    continue
            elif kind == "FUNCTION" and n.get("function_name"):
                functions.add(str(n["function_name"]).lower())
            cte_map = n.get("cte_map")
            if isinstance(cte_map, dict):
                for entry in cte_map.get("map", []):
                    key = entry.get("key") if isinstance(entry, dict) else None
                    if isinstance(key, str):
                        ctes.add(key.lower())
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)


def problems(shape: QueryShape, allowed: frozenset[str], existing: frozenset[str]) -> list[str]:
    """Why a statement of ``shape`` may not run in a Session (empty when it may).

    ``allowed`` are the Session's relation names; ``existing`` every table and view name
    in the database, so a WITH name cannot stand in for a raw table elsewhere in the query.
    """
    out = []
    for t in sorted(shape.tables):
        name = ".".join(t)
        if len(t) > 1:
            out.append(
                f"{name!r} is a qualified name: a session reads its own views by their bare "
                f"names ({', '.join(sorted(allowed))})"
            )
        elif t[0] in allowed:
            continue
        elif t[0] in shape.ctes:
            if t[0] in existing:
                out.append(
                    f"the WITH name {t[0]!r} is also the name of a table of the store; "
                    "rename it so the query cannot read that table by mistake"
                )
        else:
            out.append(
                f"{name!r} is not readable in a session (file names and other tables "
                f"included); readable: {', '.join(sorted(allowed))}"
            )
    for fn in sorted(shape.table_functions - ALLOWED_TABLE_FUNCTIONS):
        out.append(
            f"table function {fn}() is not allowed in a session (it reads files, tables or "
            f"SQL text); allowed: {', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))}"
        )
    for fn in sorted(shape.functions & REFUSED_FUNCTIONS):
        out.append(f"function {fn}() is not allowed in a session")
    for kind in sorted(shape.node_types & _REFUSED_NODE_TYPES):
        out.append(f"a {kind} reference is not allowed in a session")
    return out
