"""Limits on one event, and the screen that finds the events over them.

Python, and so every reader of the store (timelines, masking, explanations), cannot
walk a JSON document nested thousands deep; an object with a hundred thousand keys or
a field of many megabytes makes every read of its lead slow; a lone UTF-16 surrogate
is not text at all. Such an event is quarantined with the limit named in its reason,
and the rest of its batch is stored.

The screen runs in DuckDB, in parallel over a whole column: counting brackets and
colons bounds the depth and the number of keys from above, so only the few rows that
might be over a limit get a closer look in Python (:func:`json_problem`).

>>> json_problem('{"a":' * 70 + "1" + "}" * 70, "metadata")
'metadata nests 70 levels deep; the limit is 64'
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable

import numpy as np
import pyarrow as pa

__all__ = ["MAX_DEPTH", "MAX_KEYS", "MAX_FIELD_BYTES", "json_problem", "screen"]

#: Limits on one event, named in the reason when an event exceeds them: Python (and so
#: every reader of the store) cannot walk a document nested thousands deep.
MAX_DEPTH = 64
MAX_KEYS = 10_000
MAX_FIELD_BYTES = 4 << 20


_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_PAIR = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def _depth(text: str) -> int:
    """How deep a JSON text nests (brackets inside strings do not count)."""
    depth = deepest = 0
    for ch in _BRACKETS.findall(_STRING_LITERAL.sub("", text)):
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _most_keys(node, limit: int) -> int:
    stack, most = [node], 0
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            most = max(most, len(n))
            if most > limit:
                return most
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)
    return most


def json_problem(text: str, what: str) -> str | None:
    """Why a JSON text cannot be stored (over a limit, a lone surrogate), or None."""
    if len(text) > MAX_FIELD_BYTES:
        return f"{what} is {len(text):,} characters; the limit is {MAX_FIELD_BYTES:,}"
    if text.count("{") + text.count("[") > MAX_DEPTH:
        d = _depth(text)
        if d > MAX_DEPTH:
            return f"{what} nests {d:,} levels deep; the limit is {MAX_DEPTH}"
    if text.count(":") > MAX_KEYS:
        try:
            n = _most_keys(json.loads(text), MAX_KEYS)
        except (ValueError, RecursionError):
            n = 0
        if n > MAX_KEYS:
            return f"{what} has an object with {n:,} keys; the limit is {MAX_KEYS:,}"
    if "\\u" in text or "\\U" in text:
        lone = _SURROGATE_ESCAPE.findall(_PAIR.sub("", text))
        if lone:
            return f"{what} holds a lone UTF-16 surrogate ({lone[0]}), which is not text"
    return None


_screen_lock = threading.Lock()
_screen_db = None

# Rows that may be over a limit, found by DuckDB in parallel over the whole column; a
# closer look in Python (json_problem) decides. Counting characters is an upper bound
# of the depth (brackets) and of the keys (colons), so nothing over a limit slips by.
_SUSPECT_SQL = f"""
SELECT i FROM _screen WHERE t IS NOT NULL AND (
    length(t) > {MAX_FIELD_BYTES}
    OR length(t) - length(replace(replace(t, '{{', ''), '[', '')) > {MAX_DEPTH}
    OR length(t) - length(replace(t, ':', '')) > {MAX_KEYS}
    OR contains(t, '\\u') OR contains(t, '\\U'))
"""


def screen(table: pa.Table, columns: Iterable[str]) -> dict[int, str]:
    """Rows of ``table`` whose JSON text is over a limit: row index -> reason."""
    global _screen_db
    bad: dict[int, str] = {}
    for col in columns:
        if col not in table.column_names or not table.num_rows:
            continue
        arr = table.column(col)
        if isinstance(arr.type, pa.BaseExtensionType):
            arr = pa.chunked_array([c.storage for c in arr.chunks], arr.type.storage_type)
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            continue
        rows = pa.table({"i": np.arange(len(arr), dtype=np.int64), "t": arr})
        with _screen_lock:
            if _screen_db is None:
                import duckdb

                _screen_db = duckdb.connect(config={"enable_external_access": False})
            _screen_db.register("_screen", rows)
            try:
                suspects = [r[0] for r in _screen_db.execute(_SUSPECT_SQL).fetchall()]
            finally:
                _screen_db.unregister("_screen")
        for i in sorted(suspects):
            if i in bad:
                continue
            problem = json_problem(arr[i].as_py(), "the line" if col == "line" else col)
            if problem:
                bad[i] = problem
    return bad
