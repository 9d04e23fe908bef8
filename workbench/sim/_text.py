"""Vectorised text building for events: JSON pieces joined column-wise with pyarrow.

The simulator never formats an event in a Python loop: every metadata object and
snapshot is a concatenation of constant pieces and Arrow string columns, built for a
whole group of leads at once. Names that come from a flow definition enter as JSON
literals made by :func:`lit`, so a quote in a buyer's name cannot break an event.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

B62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype="S1")
_B62_OF_BYTE = B62.view(np.uint8)[np.arange(256) % 62]
_HEX = np.frombuffer(b"0123456789abcdef", dtype="S1")
_EMPTY = pa.array([], pa.string())


def lit(value) -> str:
    """A Python value as JSON text (names, reasons and lists from the flow definition)."""
    return json.dumps(value, separators=(",", ":"))


def ids(rng: np.random.Generator, n: int, prefix: str, length: int) -> pa.Array:
    """``n`` random ids ``prefix`` + ``length`` base62 characters, from ``rng``.

    Each character is a random byte folded onto the 62 letters (bytes 248-255 land on
    the first eight a little more often; ids need to be unique, not uniform).
    """
    if n == 0:
        return _EMPTY
    k = len(prefix)
    out = np.empty((n, k + length), dtype=np.uint8)
    out[:, :k] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    out[:, k:] = _B62_OF_BYTE[np.frombuffer(rng.bytes(n * length), dtype=np.uint8)].reshape(
        n, length
    )
    return pa.array(out.view(f"S{k + length}").ravel(), pa.binary()).cast(pa.string())


def hexes(rng: np.random.Generator, n: int, length: int) -> pa.Array:
    chars = _HEX[rng.integers(0, 16, size=(n, length), dtype=np.uint8)]
    body = np.ascontiguousarray(chars).view(f"S{length}").ravel()
    return pa.array(body, pa.binary()).cast(pa.string())


def num(values) -> pa.Array:
    """Numbers as text (shortest form that reads back the same: 45.0 -> '45')."""
    return pc.cast(pa.array(values), pa.string())


def money(units) -> pa.Array:
    """Amounts held in ten-thousandths of a dollar, as JSON numbers ('1.315', '45')."""
    return pc.cast(pa.array(np.asarray(units, dtype=np.int64) / 10_000.0), pa.string())


def digits(values, width: int) -> pa.Array:
    """Whole numbers zero-padded to ``width`` characters."""
    return pc.utf8_lpad(num(np.asarray(values, dtype=np.int64)), width, "0")


def pick(vocab, codes) -> pa.Array:
    """``vocab[codes]`` as an Arrow string array (vocab: texts)."""
    return pa.array(list(vocab), pa.string()).take(pa.array(np.asarray(codes, dtype=np.int64)))


def when(mask, yes, no="") -> pa.Array:
    """Per row: ``yes`` where ``mask`` else ``no`` (each an array or a constant text)."""
    mask = pa.array(np.asarray(mask, dtype=bool))
    return pc.if_else(mask, yes, no)


def cat(n: int, *parts) -> pa.Array:
    """Join constant texts and string arrays row by row into ``n`` strings."""
    merged: list = []
    for p in parts:
        if isinstance(p, str):
            if merged and isinstance(merged[-1], str):
                merged[-1] += p
            elif p:
                merged.append(p)
        else:
            merged.append(p)
    if n == 0:
        return _EMPTY
    if all(isinstance(p, str) for p in merged):
        return pa.array(["".join(merged)] * n, pa.string())
    if len(merged) == 1 and merged[0].null_count == 0:
        return merged[0]
    # a null piece (see ``masked``) contributes nothing to its row
    return pc.binary_join_element_wise(*merged, "", null_handling="replace", null_replacement="")


def masked(arr: pa.Array, mask) -> pa.Array:
    """``arr`` with rows where ``mask`` is false set to null, sharing its data (no copy):
    a piece of :func:`cat` that is absent from some rows."""
    mask = np.asarray(mask, dtype=bool)
    if mask.all():
        return arr
    if arr.null_count:
        return pc.if_else(pa.array(mask), arr, pa.scalar(None, arr.type))
    off = arr.offset
    bits = np.concatenate([np.zeros(off, dtype=bool), mask]) if off else mask
    bitmap = pa.py_buffer(np.packbits(bits, bitorder="little"))
    return pa.Array.from_buffers(arr.type, len(arr), [bitmap, *arr.buffers()[1:]], offset=off)


def quoted(arr) -> pa.Array:
    """Text values as JSON strings (the values are known to need no escaping)."""
    return pc.binary_join_element_wise('"', arr, '"', "")


def json_list(n: int, pieces) -> pa.Array:
    """A JSON list from optional pieces: each piece is ``""`` or ``,<json value>``."""
    joined = cat(n, *pieces)
    return cat(n, "[", pc.utf8_slice_codeunits(joined, 1), "]")


def json_object(n: int, pieces) -> pa.Array:
    """A JSON object from optional pieces: each ``""`` or ``,"key":<json value>``."""
    joined = cat(n, *pieces)
    return cat(n, "{", pc.utf8_slice_codeunits(joined, 1), "}")
