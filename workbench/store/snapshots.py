"""Lead snapshots, stored once: how a batch's events find (or add) their snapshot.

A snapshot is the whole lead at the moment of an event. It changes only when an
enhancement changes the lead, so most events of a lead carry the same one; the hot table
keeps a ``snapshot_id`` and ``snapshots`` holds each distinct text once, found by its
text (found by a 64-bit hash of it, then compared whole). The id is
the seq of the first event that carried the snapshot, so a lead's snapshots lie beside
its events and a timeline's read of them touches one row group. Texts are kept byte for
byte: two spellings of one object are two snapshots, and export gives back each as it
came.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["snapshot_ids", "insert_sql"]


def insert_sql(norm: str) -> str:
    """INSERT the snapshots first seen in this batch (one row each, see ``snapshot_ids``)."""
    return f"""
INSERT INTO snapshots
SELECT _seq, _h1, lead_snapshot FROM ({norm}) WHERE _new_snap
"""


def given_text(table: pa.Table) -> pa.ChunkedArray | None:
    """The batch's snapshot column when it holds the text as given (as stored), else
    None (then the classify pass renders it)."""
    if "lead_snapshot" not in table.column_names:
        return None
    t = table.schema.field("lead_snapshot").type
    return table.column("lead_snapshot") if pa.types.is_string(t) else None


def snapshot_ids(con, cls: pa.Table, keep: np.ndarray, seq_col: np.ndarray, texts=None) -> dict:
    """Each stored row's snapshot id: the id of the copy already stored with the same
    text, or (first seen here) the seq of the batch's first row carrying it, which
    ``_new_snap`` marks for insertion. Columns ``_sid``, ``_h1`` and ``_new_snap``,
    aligned with the batch.

    Texts are compared whole: Arrow's dictionary encoding groups the batch's texts, and
    the stored copies are found by a 64-bit hash of the text and then the text itself
    (DuckDB's string hash is made for hash tables, not as a content key: 1.24 M
    distinct synthetic snapshots gave 297 colliding hashes)."""
    n = len(keep)
    texts = cls.column("snap_text") if texts is None else texts
    # snap_h1 is NULL where the snapshot is (the text 'null' included) or the row is bad
    has = keep & cls.column("snap_h1").is_valid().to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(has)
    sid = np.zeros(n, dtype=np.int64)
    new = np.zeros(n, dtype=bool)
    h1_all = u64(cls.column("snap_h1"))
    if len(rows):
        # the whole column is encoded (no copy of the rows' texts), the rows' codes kept
        encoded = pc.dictionary_encode(texts.combine_chunks())
        codes = pc.fill_null(encoded.indices, 0).to_numpy().astype(np.int64)[rows]
        used, codes = np.unique(codes, return_inverse=True)  # codes of texts in use, 0..k-1
        # the first row of each distinct text (rows are in seq order); every code occurs
        _, first = np.unique(codes, return_index=True)
        con.register(
            "_keys",
            pa.table(
                {
                    "i": np.arange(len(first)),
                    "h1": pa.array(h1_all[rows[first]], pa.uint64()),
                    "text": encoded.dictionary.take(pa.array(used)),
                }
            ),
        )
        try:
            found = con.raw.sql(
                "SELECT k.i, s.snapshot_id FROM _keys k JOIN snapshots s "
                "ON s.h1 = k.h1 AND CAST(s.lead_snapshot AS VARCHAR) = k.text"
            ).fetchnumpy()
        finally:
            con.unregister("_keys")
        ids = seq_col[rows[first]]
        stored = np.zeros(len(first), dtype=bool)
        if len(found["i"]):
            i = found["i"].astype(np.int64)
            ids[i] = found["snapshot_id"]
            stored[i] = True
        sid[rows] = ids[codes]
        new[rows[first[~stored]]] = True
    return {
        "_sid": pa.array(sid, mask=~has),
        "_h1": pa.array(h1_all, pa.uint64()),
        "_new_snap": pa.array(new),
    }


def u64(column) -> np.ndarray:
    """A uint64 Arrow column as numpy, exactly (nulls become 0, never float64)."""
    return pc.fill_null(column, 0).to_numpy().astype(np.uint64, copy=False)
