"""Lead snapshots, stored once: how a batch's events find (or add) their snapshot.

A snapshot is the whole lead at the moment of an event. It changes only when an
enhancement changes the lead, so most events of a lead carry the same one; the hot table
keeps a ``snapshot_id`` and ``snapshots`` holds each distinct text once, found by its
content key (two 64-bit hashes of the text, see ``schema.SNAPSHOT_KEY_SQL``). The id is
the seq of the first event that carried the snapshot, so a lead's snapshots lie beside
its events and a timeline's read of them touches one row group. Texts are kept byte for
byte: two spellings of one object are two snapshots, and export gives back each as it
came.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import StoreError

__all__ = ["snapshot_ids", "insert_sql"]


def insert_sql(norm: str) -> str:
    """INSERT the snapshots first seen in this batch (one row each, see ``_snapshot_ids``)."""
    return f"""
INSERT INTO snapshots
SELECT _seq, _h1, _h2, lead_snapshot FROM ({norm}) WHERE _new_snap
"""


def snapshot_ids(con, cls: pa.Table, keep: np.ndarray, seq_col: np.ndarray) -> dict:
    """Each stored row's snapshot id, found by the snapshot's content key: the id of the
    copy already stored, or (first seen here) the seq of the batch's first row carrying
    it, which ``_new_snap`` marks for insertion. Columns ``_sid``, ``_h1``, ``_h2`` and
    ``_new_snap``, aligned with the batch."""
    n = len(keep)
    has = keep & cls.column("snap_h1").is_valid().to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(has)
    sid = np.zeros(n, dtype=np.int64)
    new = np.zeros(n, dtype=bool)
    h1_all, h2_all = u64(cls.column("snap_h1")), u64(cls.column("snap_h2"))
    if len(rows):
        h1, h2 = h1_all[rows], h2_all[rows]
        keys, first, inverse = np.unique(h1, return_index=True, return_inverse=True)
        if not np.array_equal(h2, h2[first][inverse]):  # pragma: no cover - 2^-64 odds
            raise StoreError("two different lead snapshots share a content key; report this")
        con.register(
            "_keys",
            pa.table({"i": np.arange(len(keys)), "h1": pa.array(keys, pa.uint64())}),
        )
        try:
            found = con.raw.sql(
                "SELECT k.i, s.h2, s.snapshot_id FROM _keys k JOIN snapshots s ON s.h1 = k.h1"
            ).fetchnumpy()
        finally:
            con.unregister("_keys")
        ids = seq_col[rows[first]]
        stored = np.zeros(len(keys), dtype=bool)
        if len(found["i"]):
            i = found["i"].astype(np.int64)
            if not np.array_equal(found["h2"].astype(np.uint64), h2[first][i]):  # pragma: no cover
                raise StoreError("a lead snapshot's content key matches another's; report this")
            ids[i] = found["snapshot_id"]
            stored[i] = True
        sid[rows] = ids[inverse]
        new[rows[first[~stored]]] = True
    return {
        "_sid": pa.array(sid, mask=~has),
        "_h1": pa.array(h1_all, pa.uint64()),
        "_h2": pa.array(h2_all, pa.uint64()),
        "_new_snap": pa.array(new),
    }


def u64(column) -> np.ndarray:
    """A uint64 Arrow column as numpy, exactly (nulls become 0, never float64)."""
    return pc.fill_null(column, 0).to_numpy().astype(np.uint64, copy=False)
