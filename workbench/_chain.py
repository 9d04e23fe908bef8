"""The hash chain that makes tampering with stored events visible.

Each event gets a content hash ``c`` (computed in SQL over every field of its record)
and a chain hash ``h = c + K * h_prev (mod 2**64)``: each event's chain hash covers its
own content and the chain hash of the event before it, so changing, removing or
inserting any event changes every chain hash from that point on.

The recurrence is linear, so a whole batch is chained at once with numpy
(``h_i = K**i * (K*h_prev + sum_j c_j * K**-j)``) instead of a Python loop per event.
This detects accidental and casual edits (a raw UPDATE or DELETE through DuckDB); it is
not a signature, since whoever can rewrite the file can also recompute the chain.
"""

from __future__ import annotations

import numpy as np

K = np.uint64(0x9E3779B97F4A7C15)
_K_INV = np.uint64(pow(int(K), -1, 2**64))
GENESIS = 0

#: SQL expression of an event's content hash; every part is cast so the same record
#: hashes the same way whether it is read from the table or from a Parquet tier.
CONTENT_HASH_SQL = (
    "hash({event_id}::VARCHAR, {type}::VARCHAR, epoch_ms({timestamp})::BIGINT, "
    "{lead_id}::VARCHAR, {flow_id}::VARCHAR, {entity_id}::VARCHAR, {step_id}::VARCHAR, "
    "{outcome}::VARCHAR, {duration_ms}::INTEGER, {metadata}::VARCHAR, {lead_snapshot}::VARCHAR)"
)


def content_hash_sql(prefix: str = "", **overrides: str) -> str:
    """The content-hash expression over columns named ``prefix + field``."""
    names = {
        f: overrides.get(f, f"{prefix}{f}")
        for f in (
            "event_id",
            "type",
            "timestamp",
            "lead_id",
            "flow_id",
            "entity_id",
            "step_id",
            "outcome",
            "duration_ms",
            "metadata",
            "lead_snapshot",
        )
    }
    return CONTENT_HASH_SQL.format(**names)


def _powers(base: np.uint64, n: int) -> np.ndarray:
    p = np.full(n, base, dtype=np.uint64)
    p[0] = np.uint64(1)
    with np.errstate(over="ignore"):
        return np.cumprod(p, dtype=np.uint64)


def chain(content: np.ndarray, prev: int = GENESIS) -> np.ndarray:
    """Chain hashes for ``content`` hashes that follow an event whose chain hash is ``prev``.

    >>> import numpy as np
    >>> h = chain(np.array([1, 2, 3], dtype=np.uint64))
    >>> int(h[1]) == (2 + int(K) * 1) % 2**64
    True
    """
    c = np.asarray(content, dtype=np.uint64)
    n = len(c)
    if n == 0:
        return c.copy()
    with np.errstate(over="ignore"):
        kp = _powers(K, n)  # K**i
        kinv = _powers(_K_INV, n)  # K**-i
        acc = np.cumsum(c * kinv, dtype=np.uint64)
        acc += K * np.uint64(prev)
        return kp * acc
