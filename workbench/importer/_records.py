"""Mapped events as Arrow record batches, the form the store takes fastest.

Handing the store Arrow batches (of ``ROWS`` events) instead of dicts keeps memory
flat: a batch of dicts is released as soon as it is encoded, and the store holds text,
not Python objects, while it gathers its own larger batches. Every column is text, as
the store's own reader of dicts makes them, so the store's validation and its
quarantine reasons are the same whichever way an event arrives.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

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


def record_batches(events: Iterable[dict], rows: int = ROWS) -> pa.RecordBatchReader:
    """A reader over ``events`` (dicts in the record's shape) in batches of ``rows``."""
    return pa.RecordBatchReader.from_batches(SCHEMA, _batches(events, rows))


def _batches(events: Iterable[dict], rows: int) -> Iterator[pa.RecordBatch]:
    buf: list[dict] = []
    for event in events:
        buf.append(event)
        if len(buf) >= rows:
            yield to_batch(buf)
            buf = []
    if buf:
        yield to_batch(buf)


def to_batch(events: list[dict]) -> pa.RecordBatch:
    cols: dict[str, list] = {name: [] for name in SCHEMA.names}
    for e in events:
        md = e.get("metadata")
        extra = {k: v for k, v in e.items() if k not in _KNOWN}
        if extra and (md is None or isinstance(md, dict)):
            # as the store does with extra fields: under metadata._extra
            md = dict(md or {})
            old = md.get("_extra")
            md["_extra"] = {**old, **extra} if isinstance(old, dict) else extra
            extra = {}
        for f in _SCALARS:
            cols[f].append(_scalar(e.get(f)))
        cols["timestamp"].append(_timestamp(e.get("timestamp")))
        cols["metadata"].append(_json(md))
        cols["lead_snapshot"].append(_json(e.get("lead_snapshot")))
        cols[EXTRA_COLUMN].append(_json(extra) if extra else None)
    return pa.record_batch([pa.array(cols[n], pa.string()) for n in SCHEMA.names], schema=SCHEMA)


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
