"""Mapped events as Arrow record batches, the form the store takes fastest.

Handing the store Arrow batches (of ``ROWS`` events) instead of dicts keeps memory
flat: a batch of dicts is released as soon as it is encoded, and the store holds text,
not Python objects, while it gathers its own larger batches. Every column is text, as
the store's own reader of dicts makes them, so the store's validation and its
quarantine reasons are the same whichever way an event arrives.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator

import pyarrow as pa

from ..store.schema import INPUT_FIELDS as RECORD_FIELDS
from ..store.schema import STORE_FIELDS

#: Fields outside the record when the metadata cannot hold them (it is not an object);
#: the store keeps the column with the event, so a quarantined event keeps them too.
EXTRA_COLUMN = "_import_extra"
SCHEMA = pa.schema([(f, pa.string()) for f in (*RECORD_FIELDS, EXTRA_COLUMN)])
ROWS = 10_000
_KNOWN = frozenset(RECORD_FIELDS) | STORE_FIELDS
_JSON = ("metadata", "lead_snapshot")
_SCALARS = tuple(f for f in RECORD_FIELDS if f not in _JSON and f != "timestamp")


def record_batches(
    events: Iterable[dict], rows: int = ROWS, on_reject: Callable | None = None
) -> pa.RecordBatchReader:
    """A reader over ``events`` (dicts in the record's shape) in batches of ``rows``.
    An event that cannot be written as text (a lone surrogate, a value too deep for
    JSON) goes to ``on_reject(event, reason)`` instead."""
    return pa.RecordBatchReader.from_batches(SCHEMA, _batches(events, rows, on_reject))


def _batches(events: Iterable[dict], rows: int, on_reject) -> Iterator[pa.RecordBatch]:
    buf: list[dict] = []
    for event in events:
        buf.append(event)
        if len(buf) >= rows:
            yield to_batch(buf, on_reject)
            buf = []
    if buf:
        yield to_batch(buf, on_reject)


def to_batch(events: list[dict], on_reject: Callable | None = None) -> pa.RecordBatch:
    cols: dict[str, list] = {name: [] for name in SCHEMA.names}
    for e in events:
        try:
            row = _row(e)
        except ValueError as err:
            if on_reject is None:
                raise
            on_reject(e, str(err))
            continue
        for name, v in row.items():
            cols[name].append(v)
    return pa.record_batch([pa.array(cols[n], pa.string()) for n in SCHEMA.names], schema=SCHEMA)


def _row(e: dict) -> dict:
    """One event's columns as text that can be stored (ValueError: why it cannot)."""
    row: dict[str, str | None] = {}
    md = e.get("metadata")
    extra = {k: v for k, v in e.items() if k not in _KNOWN}
    if extra and (md is None or isinstance(md, dict)):
        # as the store does with extra fields: under metadata._extra
        md = dict(md or {})
        old = md.get("_extra")
        md["_extra"] = {**old, **extra} if isinstance(old, dict) else extra
        extra = {}
    try:
        for f in _SCALARS:
            row[f] = _scalar(e.get(f))
        row["timestamp"] = _timestamp(e.get("timestamp"))
        row["metadata"] = _json(md)
        row["lead_snapshot"] = _json(e.get("lead_snapshot"))
        row[EXTRA_COLUMN] = _json(extra) if extra else None
    except RecursionError:
        raise ValueError("the event nests too deeply to be written as JSON") from None
    except (TypeError, ValueError) as err:
        raise ValueError(f"the event cannot be written as JSON: {err}") from None
    for name, v in row.items():
        if v is not None and not v.isascii():
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(
                    f"{name} holds a lone UTF-16 surrogate, which is not text"
                ) from None
    return row


def _json(v) -> str | None:
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False, default=str)


def _scalar(v) -> str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, default=str)
    return str(v)


def _timestamp(v) -> str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        return repr(v)  # epoch milliseconds: the store reads digits as such
    return str(v)
