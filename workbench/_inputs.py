"""Turn whatever a user hands to ``EventStore.append`` into staged Arrow batches.

Accepted: a pyarrow Table, RecordBatch or RecordBatchReader, a pandas DataFrame, an
iterable of dicts, or a path to a JSONL / JSON-array / Parquet file. Every staged batch
remembers where each row came from (file and line, or batch and row) and can give back
a row's raw text, so an event that cannot be taken is quarantined as it arrived.

Nothing here validates events; that is done in SQL over a whole batch by the store.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

#: The event record's own fields, as a user supplies them (seq is assigned by the store).
RECORD_FIELDS = (
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
_STRING_FIELDS = ("event_id", "type", "lead_id", "flow_id", "entity_id", "step_id", "outcome")
_JSON_FIELDS = ("metadata", "lead_snapshot")
#: Fields a store computes itself; present in exports, ignored (not "extra") on input.
STORE_FIELDS = frozenset(
    {
        "seq",
        "step_name",
        "entity_name",
        "rejection_reason",
        "error_type",
        "http_status",
        "cost",
        "revenue",
        "id_hash",
        "chain_hash",
        "event_date",
    }
)

#: Rows per staged batch: DuckDB is ~7x slower on small batches.
BATCH_ROWS = 250_000
_LINE_BLOCK = 64 << 20


class InputError(ValueError):
    """The input as a whole cannot be read (not a per-event problem)."""


@dataclass
class Reject:
    """A row that could not even be staged (e.g. a malformed JSON line)."""

    pos: int
    raw: str
    reason: str
    origin: str | None = None
    event_id: str | None = None
    type: str | None = None
    lead_id: str | None = None


@dataclass(frozen=True)
class Rejected:
    """Something a caller (an importer, say) could not turn into an event.

    Pass it among the events of ``append()``, or in its ``rejects=`` argument: it is
    quarantined as given, with this reason and origin, and counted in the report.
    """

    raw: str
    reason: str
    origin: str | None = None
    event_id: str | None = None
    type: str | None = None
    lead_id: str | None = None


@dataclass
class StagedBatch:
    """One batch of input rows, in one of two shapes.

    ``kind == "columns"``: ``table`` has record fields as columns (any Arrow types) plus
    ``_pos`` and optionally ``_extra`` (JSON text of fields outside the record).
    ``kind == "lines"``: ``table`` has ``_pos`` and ``line`` (one JSON text per row).
    """

    kind: str
    table: pa.Table
    file: str | None = None
    batch: int | None = None
    rejects: list[Reject] = field(default_factory=list)
    raw_of: Callable[[int], str] | None = None
    #: how a position is named in a file: "line" (1-based), "item" or "row" (0-based)
    unit: str = "line"

    def origin(self, pos: int) -> tuple[str, str | None, int | None, int | None, int | None]:
        """(text, file, line, batch, row) for the row at ``pos``."""
        if self.file is not None:
            if self.unit == "line":
                return f"{self.file}:{pos + 1}", self.file, pos + 1, None, None
            return f"{self.file} {self.unit} {pos}", self.file, None, None, pos
        return f"batch {self.batch} row {pos}", None, None, self.batch, pos

    def raw(self, pos: int) -> str:
        if self.raw_of is not None:
            return self.raw_of(pos)
        t = self.table
        idx = pos - t.column("_pos")[0].as_py() if t.num_rows else 0
        row = t.slice(idx, 1).to_pylist()[0]
        row.pop("_pos", None)
        if self.kind == "lines":
            return row["line"]
        extra = row.pop("_extra", None)
        if extra:
            row.update(json.loads(extra))
        for key in ("metadata", "lead_snapshot"):
            # JSON carried as text reads better as JSON inside the raw record
            if isinstance(row.get(key), str):
                with contextlib.suppress(ValueError):
                    row[key] = json.loads(row[key])
        return json.dumps(row, default=str, ensure_ascii=False)

    @property
    def received(self) -> int:
        return self.table.num_rows + len(self.rejects)


@dataclass
class StagedInput:
    """An input ready to stage: its batches (lazily), a label and a size for progress."""

    label: str
    batches: Iterator[StagedBatch]
    total_rows: int | None = None
    total_bytes: int | None = None
    bytes_done: Callable[[], int] | None = None


def stage(events, *, batch_rows: int = BATCH_ROWS) -> StagedInput:
    """Recognise the input's kind and return its staged batches."""
    if isinstance(events, (str, os.PathLike)):
        return _stage_path(Path(events), batch_rows)
    if isinstance(events, pa.Table):
        return StagedInput(
            "arrow table", _stage_arrow(events.to_batches(), batch_rows), events.num_rows
        )
    if isinstance(events, pa.RecordBatch):
        return StagedInput("arrow batch", _stage_arrow([events], batch_rows), events.num_rows)
    if isinstance(events, pa.RecordBatchReader):
        return StagedInput("arrow stream", _stage_arrow(events, batch_rows))
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        pd = None
    if pd is not None and isinstance(events, pd.DataFrame):
        return StagedInput("pandas DataFrame", _stage_pandas(events, batch_rows), len(events))
    if isinstance(events, dict):
        events = [events]
    if isinstance(events, (bytes, bytearray)):
        raise InputError("append() got bytes; pass a path, a table, a DataFrame or dicts")
    if isinstance(events, Iterable):
        total = len(events) if hasattr(events, "__len__") else None
        return StagedInput("events", _stage_dicts(events, batch_rows), total)
    raise InputError(
        f"append() cannot read a {type(events).__name__}; pass a pyarrow Table or "
        "RecordBatchReader, a pandas DataFrame, an iterable of dicts, or a path to a "
        ".jsonl/.json/.parquet file"
    )


# --------------------------------------------------------------------- dicts


def _json_text(v):
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v, default=str, ensure_ascii=False)


def _scalar_text(v):
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str, ensure_ascii=False)
    return str(v)


def _stage_dicts(items: Iterable, batch_rows: int) -> Iterator[StagedBatch]:
    chunk: list = []
    b = 0
    pos0 = 0
    for item in items:
        chunk.append(item)
        if len(chunk) >= batch_rows:
            yield _dict_batch(chunk, b, pos0)
            pos0 += len(chunk)
            b += 1
            chunk = []
    if chunk:
        yield _dict_batch(chunk, b, pos0)


def _dict_batch(chunk: list, b: int, pos0: int) -> StagedBatch:
    cols: dict[str, list] = {f: [] for f in (*RECORD_FIELDS, "_extra")}
    positions: list[int] = []
    rejects: list[Reject] = []
    ts_is_number = False
    for i, item in enumerate(chunk):
        pos = pos0 + i
        if isinstance(item, Rejected):
            rejects.append(
                Reject(
                    pos, item.raw, item.reason, item.origin, item.event_id, item.type, item.lead_id
                )
            )
            continue
        if not isinstance(item, dict):
            rejects.append(
                Reject(pos, _raw_text(item), f"event is a {type(item).__name__}, not an object")
            )
            continue
        positions.append(pos)
        for f in _STRING_FIELDS:
            cols[f].append(_scalar_text(item.get(f)))
        ts = item.get("timestamp")
        if isinstance(ts, (int, float)) and not isinstance(ts, bool):
            ts_is_number = True
        cols["timestamp"].append(ts)
        cols["duration_ms"].append(_scalar_text(item.get("duration_ms")))
        for f in _JSON_FIELDS:
            cols[f].append(_json_text(item.get(f)))
        extra = {k: v for k, v in item.items() if k not in RECORD_FIELDS and k not in STORE_FIELDS}
        cols["_extra"].append(json.dumps(extra, default=str, ensure_ascii=False) if extra else None)
    cols["timestamp"] = _timestamp_column(cols["timestamp"], ts_is_number)
    arrays = {"_pos": pa.array(positions, pa.int64())}
    for f, values in cols.items():
        arrays[f] = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
    table = pa.table(arrays)

    def raw_of(pos: int) -> str:
        return _raw_text(chunk[pos - pos0])

    return StagedBatch("columns", table, batch=b, rejects=rejects, raw_of=raw_of)


def _timestamp_column(values: list, any_number: bool) -> pa.Array:
    """Timestamps as text (ISO-8601, epoch numbers as digits, datetimes via isoformat)."""
    out = []
    for v in values:
        if v is None or isinstance(v, str):
            out.append(v)
        elif isinstance(v, bool):
            out.append(str(v))
        elif isinstance(v, (int, float)):
            out.append(repr(v))
        elif hasattr(v, "isoformat"):
            out.append(_iso(v))
        else:
            out.append(str(v))
    return pa.array(out, pa.string())


def _iso(v) -> str:
    # Naive datetimes are UTC by the event record's definition.
    if getattr(v, "tzinfo", None) is None:
        return v.isoformat() + "+00:00"
    return v.isoformat()


def _raw_text(item) -> str:
    if isinstance(item, str):
        return item
    try:
        return json.dumps(item, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(item)


# --------------------------------------------------------------------- arrow / pandas


def _stage_arrow(
    batches: Iterable[pa.RecordBatch], batch_rows: int, file: str | None = None
) -> Iterator[StagedBatch]:
    pending: list[pa.RecordBatch] = []
    n = 0
    b = 0
    pos0 = 0
    for rb in batches:
        if rb.num_rows == 0:
            continue
        pending.append(rb)
        n += rb.num_rows
        if n >= batch_rows:
            yield _arrow_batch(pa.Table.from_batches(pending), b, pos0, file)
            b += 1
            pos0 += n
            pending, n = [], 0
    if pending:
        yield _arrow_batch(pa.Table.from_batches(pending), b, pos0, file)


def _arrow_batch(table: pa.Table, b: int, pos0: int, file: str | None = None) -> StagedBatch:
    names = table.column_names
    extra = [c for c in names if c not in RECORD_FIELDS and c not in STORE_FIELDS]
    keep = [c for c in names if c in RECORD_FIELDS]
    out = table.select(keep)
    out = out.append_column(
        "_pos", pa.array(np.arange(pos0, pos0 + table.num_rows, dtype=np.int64))
    )
    if extra:
        rows = table.select(extra).to_pylist()
        texts = [
            json.dumps({k: v for k, v in r.items() if v is not None}, default=str)
            if any(v is not None for v in r.values())
            else None
            for r in rows
        ]
        out = out.append_column("_extra", pa.array(texts, pa.string()))
    return StagedBatch("columns", out, batch=b, file=file, unit="row")


def _stage_pandas(df, batch_rows: int) -> Iterator[StagedBatch]:
    for b, start in enumerate(range(0, len(df), batch_rows)):
        part = df.iloc[start : start + batch_rows]
        data = {}
        for c in part.columns:
            s = part[c]
            if c in _JSON_FIELDS and s.dtype == object:
                data[c] = pa.array([_json_text(v) for v in s], pa.string())
            elif s.dtype == object:
                data[c] = pa.array(
                    [
                        None
                        if _isna(v)
                        else (_iso(v) if hasattr(v, "isoformat") else _scalar_text(v))
                        for v in s
                    ],
                    pa.string(),
                )
            else:
                data[c] = pa.Array.from_pandas(s)
        table = pa.table(data) if data else pa.table({"_empty": pa.nulls(len(part))})
        yield _arrow_batch(table, b, start)


def _isna(v) -> bool:
    try:
        import pandas as pd

        return v is None or (not isinstance(v, (list, dict)) and bool(pd.isna(v)))
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------- files


def _stage_path(path: Path, batch_rows: int) -> StagedInput:
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.is_dir():
        raise InputError(
            f"{path} is a folder; append() takes one file (use `workbench import` for folders)"
        )
    name = path.name.lower()
    size = path.stat().st_size
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        return StagedInput(
            str(path),
            _stage_arrow(pf.iter_batches(batch_size=batch_rows), batch_rows, file=str(path)),
            pf.metadata.num_rows,
        )
    if name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")):
        reader = _LineReader(path, batch_rows)
        return StagedInput(str(path), iter(reader), None, size, reader.bytes_done)
    if name.endswith(".json"):
        return StagedInput(str(path), _stage_json_document(path, batch_rows), None, size)
    raise InputError(
        f"cannot tell the format of {path}: name it .jsonl (one event per line), "
        ".json (an array of events) or .parquet"
    )


class _LineReader:
    """JSON lines read as raw text with their line numbers, in large blocks.

    Lines are kept verbatim: a malformed line is quarantined exactly as it was.
    """

    def __init__(self, path: Path, batch_rows: int):
        self.path = path
        self.batch_rows = batch_rows
        self._done = 0

    def bytes_done(self) -> int:
        return self._done

    def __iter__(self) -> Iterator[StagedBatch]:
        import gzip

        opener = gzip.open if self.path.name.lower().endswith(".gz") else open
        lineno = 0
        b = 0
        with opener(self.path, "rb") as fh:
            buf_lines: list[str] = []
            positions: list[int] = []
            rejects: list[Reject] = []
            for raw in fh:
                self._done += len(raw)
                pos = lineno
                lineno += 1
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    rejects.append(
                        Reject(
                            pos,
                            raw.decode("utf-8", "replace").rstrip("\r\n"),
                            f"line is not UTF-8 ({e.reason})",
                        )
                    )
                    continue
                text = text.rstrip("\r\n")
                if not text.strip():
                    continue  # blank lines hold no event
                buf_lines.append(text)
                positions.append(pos)
                if len(buf_lines) >= self.batch_rows:
                    yield self._batch(buf_lines, positions, rejects, b)
                    b += 1
                    buf_lines, positions, rejects = [], [], []
            if buf_lines or rejects:
                yield self._batch(buf_lines, positions, rejects, b)

    def _batch(self, lines, positions, rejects, b) -> StagedBatch:
        table = pa.table(
            {"_pos": pa.array(positions, pa.int64()), "line": pa.array(lines, pa.string())}
        )

        def raw_of(pos: int) -> str:
            # positions increase through the batch
            i = bisect.bisect_left(positions, pos)
            return lines[i] if i < len(lines) and positions[i] == pos else ""

        return StagedBatch(
            "lines", table, file=str(self.path), batch=b, rejects=rejects, raw_of=raw_of
        )


def _stage_json_document(path: Path, batch_rows: int) -> Iterator[StagedBatch]:
    """A JSON array of events (or one event object), read whole."""
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        # A truncated or broken array: nothing in it can be trusted as separate events,
        # so the whole document is kept aside with the place it broke.
        yield StagedBatch(
            "columns",
            pa.table({"_pos": pa.array([], pa.int64())}),
            file=str(path),
            batch=0,
            rejects=[
                Reject(
                    max(e.lineno - 1, 0),
                    text,
                    f"malformed JSON document: {e.msg} at line {e.lineno} column {e.colno}",
                )
            ],
        )
        return
    items = doc if isinstance(doc, list) else [doc]
    for b, start in enumerate(range(0, max(len(items), 1), batch_rows)):
        batch = _dict_batch(items[start : start + batch_rows], b, start)
        batch.file, batch.unit = str(path), "item"
        yield batch
