"""What ``EventStore.append`` accepts, turned into staged Arrow batches.

Accepted: a pyarrow Table, RecordBatch or RecordBatchReader, a pandas DataFrame, an
iterable of dicts, or a path to a JSONL (optionally gzipped) / JSON-array / Parquet
file. Every staged batch remembers where each row came from (file and line, or batch
and row) and can give back a row's raw text, so an event that cannot be taken is
quarantined as it arrived.

One bad event never sinks its batch. What cannot even be staged (a line that is not
UTF-8, a value that is no text, a key that is no string, a document nested deeper than
:data:`MAX_DEPTH`, an object with more than :data:`MAX_KEYS` keys, a field larger than
:data:`MAX_FIELD_BYTES`, a lone UTF-16 surrogate) becomes a :class:`Rejected` with its
reason; the rest of the batch goes on. What cannot be read at all (a missing file, a
corrupt Parquet footer, a file that is no gzip) raises :class:`InputError` naming the
file and the problem. The catalogue's rules are checked later, in SQL, by the store.
"""

from __future__ import annotations

import bisect
import contextlib
import gzip
import json
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..errors import InputError
from .limits import MAX_DEPTH, MAX_FIELD_BYTES, screen
from .schema import INPUT_FIELDS, JSON_FIELDS, STORE_FIELDS, STRING_FIELDS

__all__ = [
    "stage",
    "Rejected",
    "StagedBatch",
    "StagedInput",
    "InputError",
    "BATCH_ROWS",
    "raw_text",
]

#: Rows per staged batch: DuckDB is ~7x slower on small batches.
BATCH_ROWS = 250_000

# kept for the record's own fields as users name them
RECORD_FIELDS = INPUT_FIELDS


@dataclass(frozen=True)
class Rejected:
    """Something that could not be turned into an event.

    The store makes these for input it cannot stage; a caller (an importer, say) may
    pass its own among the events of ``append()``, or in its ``rejects=`` argument. Each
    is quarantined as given, with its reason and origin, and counted in the report.
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
    ``rejects`` are (position, Rejected) pairs for rows that could not be staged.
    """

    kind: str
    table: pa.Table
    file: str | None = None
    batch: int | None = None
    rejects: list[tuple[int, Rejected]] = field(default_factory=list)
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
        positions = t.column("_pos").to_numpy()
        idx = int(np.searchsorted(positions, pos))
        row = t.slice(idx, 1).to_pylist()[0]
        row.pop("_pos", None)
        if self.kind == "lines":
            return row["line"]
        extra = row.pop("_extra", None)
        if extra:
            with contextlib.suppress(ValueError, RecursionError):
                row.update(json.loads(extra))
        for key in JSON_FIELDS:
            # JSON carried as text reads better as JSON inside the raw record
            if isinstance(row.get(key), str):
                with contextlib.suppress(ValueError, RecursionError):
                    row[key] = json.loads(row[key])
        return raw_text(row)

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
    if isinstance(events, str | os.PathLike):
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
    if isinstance(events, dict | Rejected):
        events = [events]
    if isinstance(events, bytes | bytearray):
        raise InputError("append() got bytes; pass a path, a table, a DataFrame or dicts")
    if isinstance(events, Iterable):
        total = len(events) if hasattr(events, "__len__") else None
        return StagedInput("events", _stage_dicts(events, batch_rows), total)
    raise InputError(
        f"append() cannot read a {type(events).__name__}; pass a pyarrow Table or "
        "RecordBatchReader, a pandas DataFrame, an iterable of dicts, or a path to a "
        ".jsonl/.json/.parquet file"
    )


def _drop_rows(table: pa.Table, rows: Iterable[int]) -> pa.Table:
    mask = np.ones(table.num_rows, dtype=bool)
    mask[list(rows)] = False
    return table.filter(pa.array(mask))


# --------------------------------------------------------------------- dicts


def _json_text(v):
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v, default=str, ensure_ascii=False)


def _scalar_text(v):
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, dict | list):
        return json.dumps(v, default=str, ensure_ascii=False)
    return str(v)


def _checked_text(v, convert, what: str) -> str | None:
    """``convert(v)`` as text that can be stored, or raise ValueError with the reason."""
    try:
        text = convert(v)
    except RecursionError:
        raise ValueError(f"{what} nests too deeply (the limit is {MAX_DEPTH} levels)") from None
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} cannot be read as JSON: {e}") from None
    if text is None or text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} holds a lone UTF-16 surrogate, which is not text") from None
    return text


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
    cols: dict[str, list] = {f: [] for f in (*INPUT_FIELDS, "_extra")}
    positions: list[int] = []
    rejects: list[tuple[int, Rejected]] = []
    ts_is_number = False
    for i, item in enumerate(chunk):
        pos = pos0 + i
        if isinstance(item, Rejected):
            rejects.append((pos, item))
            continue
        if not isinstance(item, dict):
            reason = f"event is a {type(item).__name__}, not an object"
            rejects.append((pos, Rejected(raw_text(item), reason)))
            continue
        try:
            row = _dict_row(item)
        except ValueError as e:
            rejects.append((pos, Rejected(raw_text(item), str(e), **_ids_of(item))))
            continue
        if isinstance(row["timestamp"], int | float) and not isinstance(row["timestamp"], bool):
            ts_is_number = True
        positions.append(pos)
        for f, v in row.items():
            cols[f].append(v)
    cols["timestamp"] = _timestamp_column(cols["timestamp"], ts_is_number)
    arrays = {"_pos": pa.array(positions, pa.int64())}
    for f, values in cols.items():
        arrays[f] = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
    table = pa.table(arrays)
    screened = screen(table, (*JSON_FIELDS, "_extra"))
    if screened:
        for i, reason in screened.items():
            pos = int(table.column("_pos")[i].as_py())
            item = chunk[pos - pos0]
            rejects.append((pos, Rejected(raw_text(item), reason, **_ids_of(item))))
        table = _drop_rows(table, screened)

    def raw_of(pos: int) -> str:
        return raw_text(chunk[pos - pos0])

    return StagedBatch(
        "columns", table, batch=b, rejects=sorted(rejects, key=_first), raw_of=raw_of
    )


def _first(pair):
    return pair[0]


def _dict_row(item: dict) -> dict:
    """One event dict as the staged columns' text values (ValueError: why it cannot be)."""
    row = {}
    for k in item:
        if not isinstance(k, str):
            raise ValueError(f"a field name is a {type(k).__name__} ({k!r}), not text")
    for f in STRING_FIELDS:
        row[f] = _checked_text(item.get(f), _scalar_text, f)
    ts = item.get("timestamp")
    row["timestamp"] = ts
    row["duration_ms"] = _checked_text(item.get("duration_ms"), _scalar_text, "duration_ms")
    for f in JSON_FIELDS:
        row[f] = _checked_text(item.get(f), _json_text, f)
    extra = {k: v for k, v in item.items() if k not in INPUT_FIELDS and k not in STORE_FIELDS}
    row["_extra"] = (
        _checked_text(extra, _json_text, "the fields outside the record") if extra else None
    )
    if isinstance(ts, str):
        _checked_text(ts, str, "timestamp")
    return row


def _ids_of(item) -> dict:
    if not isinstance(item, dict):
        return {}
    out = {}
    for key in ("event_id", "type", "lead_id"):
        v = item.get(key)
        if isinstance(v, str) and v.isprintable() and len(v) <= 200:
            with contextlib.suppress(UnicodeEncodeError):
                v.encode("utf-8")
                out[key] = v
    return out


def _timestamp_column(values: list, any_number: bool) -> pa.Array:
    """Timestamps as text (ISO-8601, epoch numbers as digits, datetimes via isoformat)."""
    out = []
    for v in values:
        if v is None or isinstance(v, str):
            out.append(v)
        elif isinstance(v, bool):
            out.append(str(v))
        elif isinstance(v, int | float):
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


def raw_text(item) -> str:
    """The raw form of something that could not be stored, as text that can be kept
    (lone surrogates escaped, a document too deep for JSON shown by its repr)."""
    if isinstance(item, str):
        text = item
    else:
        try:
            text = json.dumps(item, default=str, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            try:
                text = repr(item)
            except RecursionError:
                text = f"<a {type(item).__name__} nested too deeply to show>"
    if len(text) > MAX_FIELD_BYTES:
        text = text[:MAX_FIELD_BYTES] + f"... ({len(text):,} characters in all)"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# --------------------------------------------------------------------- arrow / pandas


@dataclass(frozen=True)
class _LostRows:
    """Rows of a file that cannot be read (a damaged Parquet row group): how many, and
    why. Each becomes a quarantined row of its own, so every event of the file counts."""

    rows: int
    reason: str


def _stage_arrow(
    batches: Iterable[pa.RecordBatch | _LostRows], batch_rows: int, file: str | None = None
) -> Iterator[StagedBatch]:
    pending: list[pa.RecordBatch] = []
    n = 0
    b = 0
    pos0 = 0
    for rb in batches:
        if isinstance(rb, _LostRows):
            # what came before is staged first, so every row keeps its place in the file
            if pending:
                yield _arrow_batch(pa.Table.from_batches(pending), b, pos0, file)
                b += 1
                pos0 += n
                pending, n = [], 0
            yield StagedBatch(
                "columns",
                pa.table({"_pos": pa.array([], pa.int64())}),
                file=file,
                batch=b,
                rejects=[(pos0 + k, Rejected("", rb.reason)) for k in range(rb.rows)],
                unit="row",
            )
            b += 1
            pos0 += rb.rows
            continue
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
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        where = f"{file}: " if file else ""
        raise InputError(
            f"{where}the input has duplicate column names ({', '.join(dupes)}); "
            "each field of the event record may appear once"
        )
    extra = [c for c in names if c not in INPUT_FIELDS and c not in STORE_FIELDS]
    keep = [c for c in names if c in INPUT_FIELDS]
    out = table.select(keep)
    out = out.append_column(
        "_pos", pa.array(np.arange(pos0, pos0 + table.num_rows, dtype=np.int64))
    )
    bad: dict[int, str] = {}
    for c in keep:
        t = out.column(c).type
        wider = _readable_type(t)
        if wider is not None:
            i = out.schema.get_field_index(c)
            out = out.set_column(i, c, out.column(c).cast(wider))
            continue
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            # ids given as bytes: text when they are UTF-8, a reason when not
            texts = []
            for i, v in enumerate(out.column(c).to_pylist()):
                try:
                    texts.append(None if v is None else v.decode("utf-8"))
                except UnicodeDecodeError:
                    texts.append(None)
                    bad.setdefault(i, f"{c} is binary data, not UTF-8 text")
            out = out.set_column(out.schema.get_field_index(c), c, pa.array(texts, pa.string()))
    if extra:
        rows = table.select(extra).to_pylist()
        texts = []
        for i, r in enumerate(rows):
            if not any(v is not None for v in r.values()):
                texts.append(None)
                continue
            try:
                texts.append(
                    _checked_text(
                        {k: v for k, v in r.items() if v is not None},
                        lambda d: json.dumps(d, default=str),
                        "the fields outside the record",
                    )
                )
            except ValueError as e:
                texts.append(None)
                bad.setdefault(i, str(e))
        out = out.append_column("_extra", pa.array(texts, pa.string()))
    for i, reason in screen(out, (*JSON_FIELDS, "_extra")).items():
        bad.setdefault(i, reason)
    rejects = []
    if bad:
        for i in sorted(bad):
            rejects.append((pos0 + i, Rejected(raw_text(_row_of(table, i)), bad[i])))
        out = _drop_rows(out, bad)
    return StagedBatch("columns", out, batch=b, file=file, unit="row", rejects=rejects)


def _readable_type(t: pa.DataType) -> pa.DataType | None:
    """A type DuckDB reads that holds every value of ``t``, for the few Arrow types it
    cannot take (half floats, 256-bit decimals); None when ``t`` is fine as it is."""
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_decimal256(t):
        return pa.string()  # every digit kept; the store reads numbers from text
    return None


def _row_of(table: pa.Table, i: int) -> dict:
    try:
        return table.slice(i, 1).to_pylist()[0]
    except (pa.ArrowException, ValueError):
        return {"row": i}


def _stage_pandas(df, batch_rows: int) -> Iterator[StagedBatch]:
    dupes = sorted({str(c) for c in df.columns if list(df.columns).count(c) > 1})
    if dupes:
        raise InputError(
            f"the DataFrame has duplicate column names ({', '.join(dupes)}); "
            "each field of the event record may appear once"
        )
    bad_names = [c for c in df.columns if not isinstance(c, str)]
    if bad_names:
        raise InputError(
            f"the DataFrame has column names that are not text ({bad_names[0]!r}); "
            "name its columns after the event record's fields"
        )
    for b, start in enumerate(range(0, len(df), batch_rows)):
        part = df.iloc[start : start + batch_rows]
        data = {}
        bad: dict[int, str] = {}
        for c in part.columns:
            s = part[c]
            if s.dtype == object or c in JSON_FIELDS:
                convert = _json_text if c in JSON_FIELDS else _pandas_text
                values = []
                for i, v in enumerate(s):
                    try:
                        values.append(_checked_text(None if _isna(v) else v, convert, c))
                    except ValueError as e:
                        values.append(None)
                        bad.setdefault(i, str(e))
                data[c] = pa.array(values, pa.string())
            else:
                try:
                    data[c] = pa.Array.from_pandas(s)
                except (pa.ArrowException, TypeError, ValueError) as e:
                    raise InputError(f"column {c!r} of the DataFrame cannot be read: {e}") from None
        table = pa.table(data) if data else pa.table({"_empty": pa.nulls(len(part))})
        staged = _arrow_batch(table, b, start)
        if bad:
            rows = {int(p) - start for p in staged.table.column("_pos").to_pylist()}
            keep = [i for i in range(len(part)) if i not in bad and i in rows]
            positions = np.array([start + i for i in keep], dtype=np.int64)
            staged.table = staged.table.filter(
                pa.array(np.isin(staged.table.column("_pos").to_numpy(), positions))
            )
            for i, reason in bad.items():
                raw = raw_text({str(k): _plain(v) for k, v in part.iloc[i].items()})
                staged.rejects.append((start + i, Rejected(raw, reason)))
            staged.rejects.sort(key=_first)
        yield staged


def _plain(v):
    if isinstance(v, str | int | float | bool | dict | list) or v is None:
        return v
    return str(v)


def _pandas_text(v):
    if v is None or isinstance(v, str):
        return v
    if hasattr(v, "isoformat"):
        return _iso(v)
    return _scalar_text(v)


def _isna(v) -> bool:
    try:
        import pandas as pd

        return v is None or (not isinstance(v, list | dict) and bool(pd.isna(v)))
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
    try:
        size = path.stat().st_size
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as e:
            raise InputError(f"{path} is not a readable Parquet file ({_first_line(e)})") from None
        return StagedInput(
            str(path),
            _stage_arrow(_row_groups(pf, path, batch_rows), batch_rows, file=str(path)),
            pf.metadata.num_rows,
        )
    if name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")):
        reader = _LineReader(path, batch_rows)
        reader.check()
        return StagedInput(str(path), iter(reader), None, size, reader.bytes_done)
    if name.endswith(".json"):
        return StagedInput(str(path), _stage_json_document(path, batch_rows), None, size)
    raise InputError(
        f"cannot tell the format of {path}: name it .jsonl (one event per line), "
        ".jsonl.gz, .json (an array of events) or .parquet"
    )


def _row_groups(pf, path: Path, batch_rows: int):
    """Record batches of each row group. The rows of a row group that cannot be read
    (as many as the file's footer says it holds, less those read before it broke)
    come as one :class:`_LostRows`, and reading goes on with the next group."""
    for g in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        done = 0
        try:
            for rb in pf.iter_batches(batch_size=batch_rows, row_groups=[g]):
                done += rb.num_rows
                yield rb
        except (OSError, pa.ArrowException) as e:
            if n > done:
                yield _LostRows(
                    n - done,
                    f"row group {g} of {path.name} ({n:,} events) cannot be read: {_first_line(e)}",
                )


class _LineReader:
    """JSON lines read as raw text with their line numbers, in large blocks.

    Lines are kept verbatim: a malformed line is quarantined exactly as it was. A gzip
    file that ends early keeps what it held; the missing end is quarantined as one
    record saying where it broke.
    """

    def __init__(self, path: Path, batch_rows: int):
        self.path = path
        self.batch_rows = batch_rows
        self._done = 0
        self.gz = path.name.lower().endswith(".gz")

    def bytes_done(self) -> int:
        return self._done

    def check(self) -> None:
        """Refuse at once a file that is no gzip although named so."""
        if not self.gz:
            return
        with open(self.path, "rb") as fh:
            head = fh.read(2)
        if head and head != b"\x1f\x8b":
            raise InputError(f"{self.path} is not a gzip file (it is named .gz)")

    def __iter__(self) -> Iterator[StagedBatch]:
        opener = gzip.open if self.gz else open
        lineno = 0
        b = 0
        lines: list[str] = []
        positions: list[int] = []
        rejects: list[tuple[int, Rejected]] = []
        with opener(self.path, "rb") as fh:
            raw_lines = iter(fh)
            while True:
                try:
                    raw = next(raw_lines)
                except StopIteration:
                    break
                except (EOFError, OSError, zlib.error) as e:
                    reason = (
                        f"{self.path.name} ends early after line {lineno} "
                        f"({_first_line(e) or 'truncated'}); the rest cannot be read"
                    )
                    rejects.append((lineno, Rejected("", reason)))
                    break
                self._done += len(raw)
                pos = lineno
                lineno += 1
                if pos == 0 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]  # a UTF-8 byte order mark, not part of the event
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    rejects.append(
                        (
                            pos,
                            Rejected(
                                raw.decode("utf-8", "replace").rstrip("\r\n"),
                                f"line is not UTF-8 ({e.reason})",
                            ),
                        )
                    )
                    continue
                text = text.rstrip("\r\n")
                if not text.strip():
                    continue  # blank lines hold no event
                lines.append(text)
                positions.append(pos)
                if len(lines) >= self.batch_rows:
                    yield self._batch(lines, positions, rejects, b)
                    b += 1
                    lines, positions, rejects = [], [], []
        if lines or rejects:
            yield self._batch(lines, positions, rejects, b)

    def _batch(self, lines, positions, rejects, b) -> StagedBatch:
        table = pa.table(
            {"_pos": pa.array(positions, pa.int64()), "line": pa.array(lines, pa.string())}
        )
        screened = screen(table, ("line",))
        if screened:
            rejects = rejects + [
                (positions[i], Rejected(_clip(lines[i]), reason)) for i, reason in screened.items()
            ]
            table = _drop_rows(table, screened)
            rejects.sort(key=_first)

        def raw_of(pos: int) -> str:
            # positions increase through the batch
            i = bisect.bisect_left(positions, pos)
            return lines[i] if i < len(lines) and positions[i] == pos else ""

        return StagedBatch(
            "lines", table, file=str(self.path), batch=b, rejects=rejects, raw_of=raw_of
        )


def _clip(text: str) -> str:
    if len(text) > MAX_FIELD_BYTES:
        return text[:MAX_FIELD_BYTES] + f"... ({len(text):,} characters in all)"
    return text


def _stage_json_document(path: Path, batch_rows: int) -> Iterator[StagedBatch]:
    """A JSON array of events (or one event object), read whole."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        # A truncated or broken array: nothing in it can be trusted as separate events,
        # so the whole document is kept aside with the place it broke.
        if isinstance(e, RecursionError):
            reason, line = f"JSON document nests too deeply (the limit is {MAX_DEPTH} levels)", 0
        else:
            reason = f"malformed JSON document: {e.msg} at line {e.lineno} column {e.colno}"
            line = max(e.lineno - 1, 0)
        yield StagedBatch(
            "columns",
            pa.table({"_pos": pa.array([], pa.int64())}),
            file=str(path),
            batch=0,
            rejects=[(line, Rejected(_clip(text), reason))],
        )
        return
    items = doc if isinstance(doc, list) else [doc]
    for b, start in enumerate(range(0, max(len(items), 1), batch_rows)):
        batch = _dict_batch(items[start : start + batch_rows], b, start)
        batch.file, batch.unit = str(path), "item"
        yield batch


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""
