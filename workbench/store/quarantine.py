"""The quarantine: what could not be stored, kept as it arrived, with the reason and the
place it came from (file and line, or batch and row).

Nothing handed to ``append()`` is dropped: every row either becomes an event, is
counted as a duplicate, or lands here, in the same transaction as the events of its
batch, and the batch's seal covers it.
"""

from __future__ import annotations

import json

import pyarrow as pa

from ..errors import InputError
from ..timeutil import utcnow
from . import inputs as _inputs
from .schema import QUARANTINE_COLUMNS, QUARANTINE_TYPES

__all__ = ["quarantine_rows", "with_rejects", "id_text"]


def quarantine_rows(store, batch, bad, given, ingest_id) -> tuple[int, int]:
    """Insert the batch's refused rows; returns their first and last qid."""
    con = store._con
    qid0 = _next_id(con, "quarantine", "qid")
    now = utcnow()
    rows = []
    for i, (pos, reason, event_id, type_, lead_id) in enumerate(sorted(bad, key=lambda b: b[0])):
        text, file, line, b, row = batch.origin(pos)
        rejected = given.get(pos)
        if rejected is not None and rejected.origin:
            text, file, line, b, row = rejected.origin, None, None, None, None
        raw = rejected.raw if rejected is not None else batch.raw(pos)
        rows.append(
            (
                qid0 + i,
                ingest_id,
                now,
                text,
                file,
                line,
                b,
                row,
                reason,
                event_id,
                type_,
                lead_id,
                raw,
            )
        )
    cols = list(zip(*rows, strict=True))
    arrow_types = {
        "BIGINT": pa.int64(),
        "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
        "VARCHAR": pa.string(),
    }
    q = pa.table(
        {
            name: pa.array(
                [_storable(v, QUARANTINE_TYPES[name]) for v in values],
                arrow_types[QUARANTINE_TYPES[name]],
            )
            for name, values in zip(QUARANTINE_COLUMNS, cols, strict=True)
        }
    )
    con.register("_q", q)
    try:
        con.run("INSERT INTO quarantine SELECT * FROM _q")
    finally:
        con.unregister("_q")
    return qid0, qid0 + len(rows) - 1


def _storable(v, sql_type: str = "VARCHAR"):
    """A value the quarantine can keep: text for a text column (ids given as lists or
    bytes become text), with a lone surrogate escaped, never lost."""
    if sql_type == "VARCHAR" and v is not None and not isinstance(v, str):
        v = id_text(v)
    if isinstance(v, str):
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            return v.encode("utf-8", "backslashreplace").decode("utf-8")
    return v


def with_rejects(batches, rejects):
    """The staged batches, then one batch of the caller's own rejects (if any)."""
    yield from batches
    items = list(rejects)
    bad = [r for r in items if not isinstance(r, _inputs.Rejected)]
    if bad:
        raise InputError(
            f"rejects= takes workbench.store.Rejected items, not {type(bad[0]).__name__}"
        )
    if items:
        yield _inputs.StagedBatch(
            "columns",
            pa.table({"_pos": pa.array([], pa.int64())}),
            batch=None,
            rejects=[(i, _with_origin(r, f"rejected item {i}")) for i, r in enumerate(items)],
        )


def _with_origin(r: _inputs.Rejected, origin: str) -> _inputs.Rejected:
    if r.origin:
        return r
    return _inputs.Rejected(r.raw, r.reason, origin, r.event_id, r.type, r.lead_id)


def id_text(v) -> str | None:
    """An id as the quarantine keeps it: text as given, anything else as JSON-ish text."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8", "backslashreplace")
    return json.dumps(v, default=str) if isinstance(v, list | dict) else str(v)


def _next_id(con, table: str, column: str) -> int:
    return con.val(f"SELECT coalesce(max({column}), 0) + 1 FROM {table}")
