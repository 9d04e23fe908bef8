"""Duplicates and conflicts: is an incoming event one the store already holds?

An event whose event_id the store holds (in any tier), or that came earlier in the
same input, is a **duplicate** when its record is the same (its fields, with JSON
compared as DuckDB re-writes it, so spacing does not count) and is skipped and
counted. The same event_id with **other content** is a conflict: the new version goes
to the quarantine with both records' SHA-256 digests in its reason, and the stored
event stays as it was. Hashes of event ids find the candidates in one pass; ids and
record digests decide.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .schema import INPUT_FIELDS, content_text_sql

__all__ = ["duplicates"]


def duplicates(store, table: pa.Table, digest_sql: str, cls: pa.Table, ok: np.ndarray):
    """Valid rows whose event_id is already stored (in any tier) or appears earlier in
    the batch: a mask of true duplicates (the same record), and {row: reason} for
    conflicts (the same event_id with other content). Hashes find candidates; ids and
    record digests decide."""
    con = store._con
    dup = np.zeros(len(ok), dtype=bool)
    conflicts: dict[int, str] = {}
    idx = np.flatnonzero(ok)
    if not len(idx):
        return dup, conflicts
    h = _u64(cls.column("id_hash"))[idx]
    ids = cls.column("event_id").take(pa.array(idx))  # as normalised: text
    stored = store._tiers.source_sql(con, ("hot", "warm", "cold"), ("id_hash", "event_id"))
    con.register(
        "_ids", pa.table({"i": np.arange(len(idx)), "h": pa.array(h, pa.uint64()), "event_id": ids})
    )
    try:
        if store._hash_ok:
            hits = con.rows(
                f"SELECT i, event_id FROM _ids WHERE h IN (SELECT id_hash FROM ({stored})) "
                f"AND event_id IN (SELECT event_id FROM ({stored}) "
                "WHERE id_hash IN (SELECT h FROM _ids))"
            )
        else:
            # DuckDB's hash() changed since the store was made: compare ids directly.
            hits = con.rows(
                f"SELECT i, event_id FROM _ids WHERE event_id IN (SELECT event_id FROM ({stored}))"
            )
    finally:
        con.unregister("_ids")
    against_store = {int(idx[i]): ev for i, ev in hits}
    # repeated within the batch: each later row is compared with the first
    first_row: dict[int, int] = {}
    _, counts = np.unique(h, return_counts=True)
    if (counts > 1).any():
        seen: dict[str, int] = {}
        for k, ev in enumerate(ids.to_pylist()):
            row = int(idx[k])
            if ev in seen:
                first_row[row] = seen[ev]
            else:
                seen[ev] = row
    if not against_store and not first_row:
        return dup, conflicts
    rows = sorted(set(against_store) | set(first_row) | set(first_row.values()))
    mine = _record_digests(con, table, digest_sql, rows)
    theirs = _stored_record_digests(store, set(against_store.values()))
    for row in rows:
        event_id = cls.column("event_id")[row].as_py()
        if row in against_store:
            other, where = theirs.get(against_store[row]), "already stored"
        elif row in first_row:
            other, where = mine.get(first_row[row]), "given earlier in the same input"
        else:
            continue  # the first of its repeats, and new to the store
        if other == mine.get(row):
            dup[row] = True
        else:
            conflicts[row] = (
                f"event_id {_clip(event_id)} is {where} with other content (that record's "
                f"sha256 {other}, this one's {mine.get(row)}); only an identical event is a "
                "duplicate"
            )
    return dup, conflicts


def _stored_record_digests(store, event_ids: set[str]) -> dict[str, str]:
    if not event_ids:
        return {}
    con = store._con
    src = store._tiers.source_sql(con, ("hot", "warm", "cold"), INPUT_FIELDS)
    text = content_text_sql(columns=INPUT_FIELDS, normal_json=True)
    con.register("_cand", pa.table({"event_id": sorted(event_ids)}))
    try:
        return dict(
            con.rows(
                f"SELECT event_id, sha256({text}) FROM ({src}) "
                "WHERE event_id IN (SELECT event_id FROM _cand)"
            )
        )
    finally:
        con.unregister("_cand")


def _record_digests(con, table: pa.Table, digest_sql: str, rows: list[int]) -> dict[int, str]:
    """Record digests of the given rows (indexes into ``table``) of the batch."""
    positions = table.column("_pos").take(pa.array(rows)).to_pylist()
    back = dict(zip(positions, rows, strict=True))
    con.register("_in", table)
    con.register("_want", pa.table({"p": pa.array(positions, pa.int64())}))
    try:
        got = con.rows(f"SELECT _pos, d FROM ({digest_sql}) WHERE _pos IN (SELECT p FROM _want)")
    finally:
        con.unregister("_want")
        con.unregister("_in")
    return {back[int(p)]: d for p, d in got}


def _u64(column) -> np.ndarray:
    """A uint64 Arrow column as numpy, exactly (nulls become 0, never float64)."""
    return pc.fill_null(column, 0).to_numpy().astype(np.uint64, copy=False)


def _clip(v, n: int = 80) -> str:
    s = str(v)
    return s if len(s) <= n else s[:n] + "..."
