"""The SQL a lake Session runs: user SQL parsed (sqlglot, Spark dialect), refused unless
it is one read of the session's relations, and written out again as it was read; the
analyses' ``$name`` spelled as Spark's ``:name``; a read of ``events`` bounded in time
narrowed to the days of its bounds, so Spark opens only their partitions.
"""

from __future__ import annotations

import re

from ..access import masking as py_masking
from ..access.config import QueryError, RelationNotAllowedError
from ..errors import ReadOnlyViolation
from ..store.schema import PARTITION_COLUMN, PUBLIC_COLUMNS

__all__ = [
    "LAKE_RELATIONS",
    "DATED",
    "checked_spark_sql",
    "date_pruned",
    "inspect_spark_sql",
    "spark_params",
]

#: The relations a lake Session's SQL may read (the lake holds no quarantine or incidents).
LAKE_RELATIONS = ("events", "lead_summary", "steps", "entities", "flows")

# functions that reach outside the views: Java reflection, files, the session's state
_FORBIDDEN_FUNCTIONS = frozenset(
    {
        "reflect",
        "java_method",
        "try_reflect",
        "read_files",
        "input_file_name",
        "input_file_block_start",
        "input_file_block_length",
        "current_user",
        "session_user",
    }
)


def inspect_spark_sql(query: str, relations=LAKE_RELATIONS) -> list[str]:
    """Parse ``query`` as Spark SQL and return what is wrong with it as a session read
    (an empty list when it is one query over ``relations``); raise
    :class:`ReadOnlyViolation` when it is not a single read at all.

    >>> inspect_spark_sql("SELECT count(*) FROM events")
    []
    >>> inspect_spark_sql("SELECT * FROM parquet.`/data/lake/events`")
    ['parquet.`/data/lake/events` is not a relation of this session (events, lead_summary, steps, entities, flows)']
    """
    return _problems(_one_read(query), relations)


def checked_spark_sql(query: str, relations=LAKE_RELATIONS) -> str:
    """The text a session runs for ``query``: the query as the parser read it, written
    out again without its comments, so Spark runs what was checked and nothing a
    comment hid from the parser (Spark's ``--`` comment goes on past a line that ends
    in a backslash; the parser's ends with its line). Raise
    :class:`RelationNotAllowedError` when it reads anything but ``relations``.

    >>> checked_spark_sql("SELECT type /* the kind */ FROM events WHERE seq > :n")
    'SELECT type FROM events WHERE seq > :n'
    """
    stmt = _one_read(query)
    bad = _problems(stmt, relations)
    if bad:
        raise RelationNotAllowedError("refused: " + "; ".join(bad))
    return stmt.sql(dialect="spark", comments=False)


def _one_read(query: str):
    import sqlglot
    from sqlglot import exp

    try:
        statements = [s for s in sqlglot.parse(query, read="spark") if s is not None]
    except sqlglot.errors.SqlglotError as e:
        first = str(e).splitlines()[0] if str(e) else "it does not parse"
        raise QueryError(f"not Spark SQL: {py_masking.mask_free_text(first)}") from None
    if len(statements) != 1:
        raise ReadOnlyViolation(
            f"give one SELECT, not {len(statements)} statements" if statements else "no query"
        )
    stmt = statements[0]
    if not isinstance(stmt, exp.Query):
        raise ReadOnlyViolation(
            f"only a read (SELECT, WITH ... SELECT) may run in a session, not {stmt.key.upper()}"
        )
    return stmt


def _problems(stmt, relations) -> list[str]:
    from sqlglot import exp

    bad: list[str] = []
    for table in stmt.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            bad.append(f"table function {table.this.sql(dialect='spark')[:60]} is not allowed")
            continue
        name = table.name.lower()
        if table.db or table.catalog or name not in (*relations, *_ctes_in_scope(table)):
            shown = table.sql(dialect="spark").split(" AS ")[0]
            bad.append(f"{shown} is not a relation of this session ({', '.join(relations)})")
    for fn in stmt.find_all(exp.Func):
        if _func_name(fn) in _FORBIDDEN_FUNCTIONS:
            bad.append(f"the function {_func_name(fn)}() is not allowed in a session")
    for node in stmt.find_all(exp.Into, exp.Hint):
        bad.append(f"{node.key.upper()} is not allowed in a session")
    return bad


_NONDETERMINISTIC = frozenset(
    {
        "rand",
        "randn",
        "random",
        "randstr",
        "uniform",
        "uuid",
        "shuffle",
        "monotonically_increasing_id",
        "spark_partition_id",
    }
)


def _func_name(fn) -> str:
    from sqlglot import exp

    return (fn.name if isinstance(fn, exp.Anonymous) else fn.sql_name()).lower()


def _ctes_in_scope(table) -> set[str]:
    """The CTE names ``table`` can mean: those of each WITH around it, and in a CTE's
    own body only the CTEs before it (Spark takes any other name, a later CTE's too, as
    a relation of its catalogue)."""
    from sqlglot import exp

    names: set[str] = set()
    child, node = table, table.parent
    while node is not None:
        if isinstance(node, exp.With):
            ctes = list(node.expressions)
            i = next((k for k, c in enumerate(ctes) if c is child), len(ctes))
            upto = i + 1 if node.args.get("recursive") else i
            names.update(c.alias_or_name.lower() for c in ctes[:upto])
        else:
            w = node.args.get("with_") or node.args.get("with")
            if isinstance(w, exp.With) and w is not child:
                names.update(c.alias_or_name.lower() for c in w.expressions)
        child, node = node, node.parent
    return names


# $name (the analyses' and DuckDB's spelling) -> :name (Spark's), outside literals
_PARAM = re.compile(r"('(?:[^'\\]|\\.|'')*'|`[^`]*`)|\$([A-Za-z_]\w*)")


def spark_params(query: str) -> str:
    return _PARAM.sub(lambda m: m.group(1) or f":{m.group(2)}", query)


#: The events view with its partition column (``event_date``), for date_pruned; no SQL
#: a user gives may name it (inspect_spark_sql refuses it as it refuses any other name).
DATED = "_workbench_events_by_date"


def date_pruned(query: str) -> str:
    """``query`` with each read of ``events`` that its WHERE bounds in time (``timestamp
    >= X``, ``<``, ``BETWEEN``, ``=``, with X a constant or a named parameter) narrowed
    to the days of the bounds, so Spark reads only those days' partitions. The result is
    the same; a query it cannot read, or with no such bound, is returned as it is.

    >>> q = date_pruned("SELECT count(*) FROM events WHERE timestamp >= :since")
    >>> q.startswith("SELECT count(*) FROM (SELECT `seq`, ") and q.endswith(
    ...     f"FROM {DATED} WHERE `event_date` >= CAST(CAST(:since AS TIMESTAMP) AS DATE)) "
    ...     "AS events WHERE timestamp >= :since")
    True
    """
    low = query.lower()
    if "events" not in low or "timestamp" not in low:
        return query
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(query, read="spark")
    except sqlglot.errors.SqlglotError:
        return query
    if any(c.alias_or_name.lower() == "events" for c in tree.find_all(exp.CTE)):
        return query
    edits = []
    for table in tree.find_all(exp.Table):
        select = table.find_ancestor(exp.Select)
        if (
            table.name.lower() != "events"
            or table.db
            or table.catalog
            or select is None
            or select.args.get("where") is None
            or "start" not in table.this.meta
            # events AS e(a, b, ...) names its columns anew: its timestamp may be another
            or (table.args.get("alias") is not None and table.args["alias"].columns)
        ):
            continue
        ref = table.alias_or_name.lower()
        single = not select.args.get("joins")
        lo, hi = _bounds(select.args["where"].this, ref, single)
        if not lo and not hi:
            continue
        days = [f"`{PARTITION_COLUMN}` >= {_day(b)}" for b in lo]
        days += [f"`{PARTITION_COLUMN}` <= {_day(b)}" for b in hi]
        cols = ", ".join(f"`{c}`" for c in PUBLIC_COLUMNS)
        text = f"(SELECT {cols} FROM {DATED} WHERE {' AND '.join(days)})"
        if not table.alias:
            text += " AS events"
        edits.append((table.this.meta["start"], table.this.meta["end"] + 1, text))
    for start, end, text in sorted(edits, reverse=True):
        query = query[:start] + text + query[end:]
    return query


def _day(bound) -> str:
    # through TIMESTAMP, so a time with an offset falls on its UTC day, as the partitions do
    return f"CAST(CAST({bound.sql(dialect='spark')} AS TIMESTAMP) AS DATE)"


def _bounds(where, ref: str, single: bool) -> tuple[list, list]:
    """The lower and upper bounds the top-level conjuncts of ``where`` put on the
    ``timestamp`` of the table called ``ref``."""
    from sqlglot import exp

    def is_time(node) -> bool:
        return (
            isinstance(node, exp.Column)
            and node.name.lower() == "timestamp"
            and (node.table.lower() == ref if node.table else single)
        )

    def constant(node) -> bool:
        if isinstance(node, exp.Placeholder):
            return bool(node.this)  # :name, not ? (a repeated ? would shift the others)
        return not any(
            isinstance(n, exp.Column | exp.Subquery | exp.Select | exp.Star)
            or (isinstance(n, exp.Placeholder) and not n.this)
            # a bound that differs each time it is read (rand()) differs in the copy too
            or (isinstance(n, exp.Func) and _func_name(n) in _NONDETERMINISTIC)
            for n in node.walk()
        )

    lo, hi = [], []
    parts = where.flatten() if isinstance(where, exp.And) else [where]
    for c in parts:
        if isinstance(c, exp.Between) and is_time(c.this):
            if constant(c.args["low"]) and constant(c.args["high"]):
                lo.append(c.args["low"])
                hi.append(c.args["high"])
        elif isinstance(c, exp.GTE | exp.GT | exp.LT | exp.LTE | exp.EQ):
            left, right = c.this, c.expression
            if is_time(left) and constant(right):
                bound, flipped = right, False
            elif is_time(right) and constant(left):
                bound, flipped = left, True
            else:
                continue
            if isinstance(c, exp.EQ):
                lo.append(bound)
                hi.append(bound)
            elif isinstance(c, exp.GTE | exp.GT) != flipped:
                lo.append(bound)
            else:
                hi.append(bound)
    return lo, hi
