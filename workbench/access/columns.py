"""Masking whole columns: Arrow arrays for the masked views' functions (with a cache of
recent values), DataFrames a session returns, and how each column of a relation is
masked (``column_kind``). The value rules themselves are in :mod:`.masking`.
"""

from __future__ import annotations

import json
import threading

import pyarrow as pa
import pyarrow.compute as pc

from .. import catalog
from ..catalog import FieldType
from .masking import (
    STARS,
    _clean,
    _keeps_numbers,
    _mask_typed,
    _resolve,
    mask_document,
    mask_free_text,
    mask_json_text,
    mask_raw_text,
    mask_value,
    refresh_field_types,
)

__all__ = ["Masker", "field_masker", "mask_field_arrow", "column_kind", "mask_column", "mask_frame"]


class Masker:
    """Masks Arrow arrays for DuckDB functions, with a cache of recent values.

    Consecutive events of a lead carry the same snapshot, so a small cache saves most
    of the parsing. The cache forgets everything when it is full or when a field
    declaration changed.
    """

    def __init__(self, fn, *, cache_size: int = 20_000):
        self._fn = fn
        self._cache: dict = {}
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def __call__(self, value):
        refresh_field_types()
        return self._one(value)

    def _one(self, value):
        if value is None:
            return None
        hit = self._cache.get(value)
        if hit is not None:
            return hit
        try:
            out = _clean(self._fn(value))
        except Exception:  # never raise with a raw value in the message
            out = json.dumps(STARS) if self._fn is mask_json_text else STARS
        with self._lock:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[value] = out
        return out

    def arrow(self, array, out_type: pa.DataType | None = None) -> pa.Array:
        """Mask every value of an Arrow array (the signature DuckDB's arrow UDFs use)."""
        refresh_field_types()
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if isinstance(array.type, pa.BaseExtensionType):
            array = array.storage
        # mask each distinct value once: a reason repeats on many events, a snapshot on
        # every event of its lead; take() then spreads the masks over the rows in C++
        encoded = pc.dictionary_encode(array)
        masked = [self._one(v) for v in encoded.dictionary.to_pylist()]
        out = pc.take(pa.array(masked, pa.string()), encoded.indices)
        if out_type is not None and isinstance(out_type, pa.BaseExtensionType):
            return pa.ExtensionArray.from_storage(out_type, out)
        return out

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


_field_maskers: dict[str, Masker] = {}


def field_masker(label: str) -> Masker:
    """The (cached) masker of values of one field type or field name."""
    m = _field_maskers.get(label)
    if m is None:
        ft = _resolve(label)
        m = _field_maskers[label] = Masker(lambda v, ft=ft: _mask_typed(ft, v, ()))
    return m


def mask_field_arrow(labels, values) -> pa.Array:
    """Mask ``values`` by the field type named in ``labels`` (a DuckDB arrow function of
    two columns; the label is the same on every row in practice)."""
    refresh_field_types()
    if isinstance(labels, pa.ChunkedArray):
        labels = labels.combine_chunks()
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    distinct = [x for x in pc.unique(labels).to_pylist() if x is not None]
    if len(distinct) == 1:
        return field_masker(distinct[0]).arrow(values)
    out = [
        None if v is None else _clean(str(mask_value(label or "text", v)))
        for label, v in zip(labels.to_pylist(), values.to_pylist(), strict=True)
    ]
    return pa.array(out, pa.string())


# --------------------------------------------------------------------------- relations

#: Columns of the session relations that hold identifiers or fixed vocabulary (ids, event
#: types, outcomes, stages), shown as stored. Nothing a source or buyer typed is here.
PLAIN_COLUMNS: dict[str, frozenset[str]] = {
    "events": frozenset(
        {"event_id", "type", "lead_id", "flow_id", "entity_id", "step_id", "outcome"}
    ),
    "lead_summary": frozenset({"lead_id", "flow_id", "source_id", "stage", "outcome"}),
    "steps": frozenset({"step_id", "flow_id", "kind", "entity_id"}),
    "entities": frozenset({"entity_id", "kind"}),
    "flows": frozenset({"flow_id"}),
    "incidents": frozenset({"incident_id", "entity_id", "run_id"}),
    "quarantine": frozenset(),  # unvalidated input: every text column is masked
}
#: Columns that name things, not people (steps, sources, buyers, reasons): masked by the
#: shape of their value only, so "Buyer 3" stays and an email given as a name does not.
#: SQL sends a value to Python only where :func:`needs_work_re2` says masking may change
#: it, the test every masked text column makes, so SQL and Python show the same text.
SHAPE_COLUMNS: dict[str, frozenset[str]] = {
    "events": frozenset({"step_name", "entity_name", "feedback_type"}),
    "lead_summary": frozenset({"source", "recipient", "final_outcome"}),
    "steps": frozenset({"name"}),
    "entities": frozenset({"name"}),
    "flows": frozenset({"name", "description"}),
    "incidents": frozenset({"name", "entity", "description"}),
}
_PLAIN_NAMES = frozenset().union(*PLAIN_COLUMNS.values())
_SHAPE_NAMES = frozenset().union(*SHAPE_COLUMNS.values())


def column_kind(relation: str, column: str, sql_type: str) -> tuple[str, str | None]:
    """How a column of a session relation is masked: ``json`` (by keys), ``raw`` (input
    text), ``field`` (a PII-typed column, by its type), ``text`` (by shape) or ``plain``
    (identifiers, numbers and times). Every text column not known to be plain is masked,
    so a column a schema change adds is masked until declared."""
    if sql_type == "JSON":
        return ("json", None)
    if relation == "quarantine" and column == "raw":
        return ("raw", None)
    if column in PLAIN_COLUMNS.get(relation, ()):
        return ("plain", None)
    if column in SHAPE_COLUMNS.get(relation, ()):
        return ("shape", None)
    ft = catalog.field_type(column)
    if ft.pii:
        return ("field", ft.label)
    if sql_type == "VARCHAR" or sql_type.startswith("VARCHAR"):
        return ("text", None)
    return ("plain", None)


def mask_column(values, what: str, label: str | None) -> list:
    """Mask a column's values (a list or Series) as a masked view would (see
    :func:`column_kind`); each distinct value is masked once."""
    cache: dict = {}
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and v != v):
            out.append(v)
            continue
        key = v if isinstance(v, str | int | float) else None
        if key is not None and key in cache:
            out.append(cache[key])
            continue
        if what == "json":
            m = mask_json_text(v) if isinstance(v, str) else mask_document(v)
        elif what == "raw":
            m = mask_raw_text(v)
        elif what == "field":
            m = mask_value(label, v)
        elif what in ("text", "shape"):
            m = mask_free_text(v) if isinstance(v, str) else mask_document(v)
        else:
            m = v
        if key is not None:
            cache[key] = m
        out.append(m)
    return out


def mask_frame(df):
    """A copy of ``df`` with every column masked by its name's field type, JSON and dict
    values by their keys, and text by its shape; ids and fixed vocabulary stay.

    >>> import pandas as pd
    >>> mask_frame(pd.DataFrame({"email": ["john@example.com"]})).email[0]
    'j***@example.com'
    """
    import pandas as pd

    out = df.copy()
    for col in out.columns:
        out[col] = _mask_series(str(col), out[col])
    out.columns = [mask_free_text(c) if isinstance(c, str) else c for c in out.columns]
    if out.index.dtype == object or pd.api.types.is_string_dtype(out.index):
        out.index = pd.Index([_mask_cell(FieldType.TEXT, v) for v in out.index], name=df.index.name)
    return out


def _mask_series(name: str, s):
    import pandas as pd

    if name in _PLAIN_NAMES:  # ids and fixed vocabulary, as the views show them
        return s
    ft = FieldType.TEXT if name in _SHAPE_NAMES else catalog.field_type(name)
    api = pd.api.types
    if not ft.pii:
        if api.is_bool_dtype(s) or api.is_datetime64_any_dtype(s):
            return s
        if api.is_timedelta64_dtype(s):
            return s
        # numbers pass unless one has ten or more digits (a phone number, maybe)
        numeric = api.is_integer_dtype(s) or api.is_float_dtype(s)
        if numeric and (_keeps_numbers(name, ft) or not (s.abs() >= 10**9).any()):
            return s
    json_text = name in ("metadata", "lead_snapshot", "parameters")
    cache: dict = {}
    out = []
    for v in s:
        key = v if isinstance(v, str | int) else None
        if key is not None and key in cache:
            out.append(cache[key])
            continue
        m = _mask_cell(ft, v, json_text)
        if key is not None:
            cache[key] = m
        out.append(m)
    return pd.Series(out, index=s.index, name=s.name, dtype=object)


def _mask_cell(ft: FieldType, v, json_text: bool = False):
    if v is None or (isinstance(v, float) and v != v):
        return v
    if ft.pii:
        return mask_value(ft, v)
    if isinstance(v, dict | list | tuple):
        return mask_document(v)
    if isinstance(v, str):
        if json_text:
            return mask_json_text(v)
        return mask_free_text(v)
    if isinstance(v, int | float) and not isinstance(v, bool):
        return mask_document(v)
    return v
