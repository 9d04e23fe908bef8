"""Reading export files: which files, what shape, and every piece of them.

An export is one file or a folder of files (``.json`` arrays, JSON lines, either
gzipped). Reading yields each object with the place it came from, and each piece that
cannot be read (a malformed line, the cut-off tail of a truncated array) as an
:class:`Unreadable` with its raw text and the reason, so nothing in a file goes unseen.
A truncated JSON array keeps every complete object before the cut, a gzip file that
ends early or is damaged keeps what it held before the break (the break is reported as
the file's last unreadable piece), and a document nested deeper than Python can parse
is an unreadable piece, never a RecursionError.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..store.inputs import raw_text
from ._errors import ImportInputError

#: File names an import reads; anything else in a folder is listed as ignored.
SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz")
FORMATS = ("auto", "dotted", "api")

_HEX24 = re.compile(r"^[0-9a-fA-F]{24}$")
_DETECT_PREFIX = 1 << 20
_DETECT_ITEMS = 20


@dataclass(frozen=True)
class Item:
    """One parsed value from a file, and where it was (``item 3``, ``line 7``)."""

    value: object
    file: str
    place: str
    #: a hash of the object's text, to tell a true repeat from an id reused for other
    #: content without encoding every object again (0 when not known)
    digest: int = 0


@dataclass(frozen=True)
class Notice:
    """Something odd about a file that lost nothing (e.g. an array missing its ']')."""

    file: str
    place: str
    message: str


@dataclass(frozen=True)
class Unreadable:
    """A piece of a file that is not JSON (a broken line, a truncated tail)."""

    file: str
    place: str
    reason: str
    raw: str


def is_hex24(value) -> bool:
    return isinstance(value, str) and bool(_HEX24.match(value))


def list_files(path: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    """The files to read under ``path`` as (path, display name), and the ignored names.

    Names are relative to the folder given, so reports never show where it lives.
    """
    if not path.exists():
        raise ImportInputError(
            f"nothing to import at {path}: give an export file (.json, .jsonl, .ndjson, "
            "optionally .gz) or a folder of them"
        )
    if path.is_file():
        if not path.name.lower().endswith(SUFFIXES):
            raise ImportInputError(
                f"cannot import {path}: its name does not end in one of {', '.join(SUFFIXES)}"
            )
        return [(path, path.name)], []
    files, ignored = [], []
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path)
        if not p.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        if p.name.lower().endswith(SUFFIXES):
            files.append((p, rel.as_posix()))
        else:
            ignored.append(rel.as_posix())
    if not files:
        raise ImportInputError(
            f"the folder {path} holds no export files ({', '.join(SUFFIXES)})"
            + (f"; found only {', '.join(ignored[:5])}" if ignored else "")
        )
    return files, ignored


_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_PIECE = 1 << 16  # compressed bytes per step: a damaged step loses only its own
_NOT_GZIP = "is not a gzip file (it is named .gz); nothing in it was read"


def _open_text(path: Path, limit: int | None = None) -> tuple[str, str | None]:
    """The text of a file (its first ``limit`` bytes or so), and why the rest of it
    could not be read (None when it was read whole)."""
    try:
        with open(path, "rb") as fh:
            if path.name.lower().endswith(".gz"):
                data, problem = _gunzip(fh, limit)
            else:
                data, problem = (fh.read() if limit is None else fh.read(limit)), None
    except OSError as e:
        return "", f"cannot be read ({e.strerror or e})"
    return data.decode("utf-8", errors="replace"), problem


def _gunzip(fh, limit: int | None) -> tuple[bytes, str | None]:
    """The bytes of a gzip file's members, up to where it breaks, and how it breaks.
    Read piece by piece, so what came before a damaged or missing end is kept."""
    out: list[bytes] = []
    size = members = 0
    d = None
    data = b""
    while True:
        if not data:
            data = fh.read(_GZIP_PIECE)
            if not data:
                break
        if d is None:  # a member starts here (gzip allows zero bytes between members)
            data = data.lstrip(b"\x00")
            if not data:
                continue
            if len(data) < 2:
                data += fh.read(1)
            if data[:2] != _GZIP_MAGIC:
                if not members:
                    return b"", _NOT_GZIP
                return b"".join(
                    out
                ), "has bytes after its end that are not gzip; they were not read"
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            members += 1
        try:
            piece = d.decompress(data)
        except zlib.error as e:
            return b"".join(out), f"is damaged after {size:,} bytes ({e}); the rest cannot be read"
        out.append(piece)
        size += len(piece)
        if limit is not None and size >= limit:
            return b"".join(out), None
        if d.eof:
            data, d = d.unused_data, None
        else:
            data = b""
    if d is not None:
        return b"".join(out), (
            f"ends early after {size:,} bytes (the compressed data stops before its "
            "end-of-stream marker); the rest cannot be read"
        )
    return b"".join(out), None


def _is_lines(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return name.endswith((".jsonl", ".ndjson"))


def read_items(path: Path, name: str) -> Iterator[Item | Unreadable | Notice]:
    """Every object of one file, in file order, and every piece that could not be read."""
    text, problem = _open_text(path)
    yield from _items(text, path, name)
    if problem:
        # what the file held before the break was read above; the rest is reported
        raw = _raw_bytes(path) if problem == _NOT_GZIP else ""
        yield Unreadable(name, "end of file", f"{name} {problem}", raw)


def _raw_bytes(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return raw_text(data.decode("utf-8", errors="replace"))


def _items(text: str, path: Path, name: str) -> Iterator[Item | Unreadable | Notice]:
    if _is_lines(path):
        yield from _lines(text, name)
        return
    start = _skip_ws(text, 0)
    if start == len(text):
        return
    if text[start] == "[":
        yield from _array(text, start, name)
        return
    try:
        value = json.loads(text)
    except RecursionError:
        yield _too_deep(text, start, name, "document")
        return
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # JSON lines in a file named .json
            yield from _lines(text, name)
            return
        yield _broken(text, start, name, "document", e)
        return
    yield from _values(value, name, "document")


def _too_deep(text: str, pos: int, name: str, what: str) -> Unreadable:
    line, _ = _line_col(text, pos)
    return Unreadable(
        name,
        f"{what} from line {line}",
        "JSON nested too deeply for Python to read; the rest of the file cannot be read",
        raw_text(text[pos:]),
    )


def _values(value, name: str, place: str, text: str = "") -> Iterator[Item]:
    if isinstance(value, list):
        for i, v in enumerate(value):
            yield Item(v, name, f"{place} item {i}")
    else:
        yield Item(value, name, place, hash(text) if text else 0)


def _lines(text: str, name: str) -> Iterator[Item | Unreadable]:
    lines = text.split("\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, line in enumerate(lines):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except RecursionError:
            yield Unreadable(
                name, f"line {i + 1}", "JSON line nested too deeply for Python to read", line
            )
            continue
        except json.JSONDecodeError as e:
            ending = (
                "; the file ends inside this line (truncated)"
                if i == last and not text.endswith("\n")
                else ""
            )
            yield Unreadable(
                name,
                f"line {i + 1}",
                f"malformed JSON line (column {e.colno}): {e.msg}{ending}",
                line,
            )
            continue
        yield from _values(value, name, f"line {i + 1}", line.strip())


def _skip_ws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in " \t\r\n":
        i += 1
    return i


def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def _broken(text: str, pos: int, name: str, what: str, e: json.JSONDecodeError) -> Unreadable:
    line, col = _line_col(text, e.pos if e.pos is not None else pos)
    at_end = _skip_ws(text, e.pos or pos) >= len(text)
    why = "the file ends inside it (truncated)" if at_end else e.msg
    start_line, _ = _line_col(text, pos)
    return Unreadable(
        name,
        f"{what} from line {start_line}",
        f"malformed JSON (line {line} column {col}): {why}",
        text[pos:],
    )


def _array(text: str, start: int, name: str) -> Iterator[Item | Unreadable | Notice]:
    """The items of a JSON array; a truncated or broken array yields its complete items
    and then the rest as one unreadable piece."""
    decoder = json.JSONDecoder()
    i = _skip_ws(text, start + 1)
    index = 0
    n = len(text)
    while True:
        if i >= n:
            if index:
                # every item was complete; only the closing bracket is missing
                yield Notice(
                    name,
                    f"end of file after item {index - 1}",
                    "the JSON array is not closed (no ']'): the file may be truncated; "
                    "every item before the end was complete and read",
                )
            return
        if text[i] == "]" and index == 0:
            return
        try:
            value, end = decoder.raw_decode(text, i)
        except RecursionError:
            yield _too_deep(text, i, name, f"item {index}")
            return
        except json.JSONDecodeError as e:
            yield _broken(text, i, name, f"item {index}", e)
            return
        yield Item(value, name, f"item {index}", hash(text[i:end]))
        index += 1
        i = _skip_ws(text, end)
        if i < n and text[i] == ",":
            i = _skip_ws(text, i + 1)
            continue
        if i < n and text[i] == "]":
            rest = _skip_ws(text, i + 1)
            if rest < n:
                line, col = _line_col(text, rest)
                yield Unreadable(
                    name,
                    f"after the array, line {line}",
                    f"text after the end of the JSON array at line {line} column {col}",
                    text[rest:],
                )
            return
        if i < n:
            line, col = _line_col(text, i)
            yield Unreadable(
                name,
                f"after item {index - 1}",
                f"malformed JSON: expected ',' or ']' at line {line} column {col}",
                text[i:],
            )
            return


# --------------------------------------------------------------------- shapes


def shape_of(value) -> str | None:
    """``"dotted"``, ``"api"`` or None, judged from one object."""
    if not isinstance(value, dict):
        return None
    t = value.get("type")
    if "event_id" in value or (isinstance(t, str) and "." in t and "lead_id" in value):
        return "dotted"
    if is_hex24(value.get("id")) or "vars" in value or "start_timestamp" in value:
        return "api"
    return None


def detect(path: Path, name: str) -> tuple[str | None, list[str]]:
    """The shape of one file from its first objects: (shape or None, keys seen).

    Reads at most the first megabyte unless the first object is longer.
    """
    text, _ = _open_text(path, _DETECT_PREFIX)
    keys: list[str] = []
    for limit in (_DETECT_PREFIX, None):
        if limit is None:
            text, _ = _open_text(path)
        seen = 0
        for piece in _prefix_items(text, path):
            if isinstance(piece, Item):
                shape = shape_of(piece.value)
                if shape:
                    return shape, []
                if isinstance(piece.value, dict) and not keys:
                    keys = sorted(piece.value)[:12]
                seen += 1
                if seen >= _DETECT_ITEMS:
                    return None, keys
        if len(text.encode("utf-8")) < _DETECT_PREFIX:
            break
    return None, keys


def _prefix_items(text: str, path: Path) -> Iterator[Item | Unreadable]:
    if _is_lines(path):
        return _lines(text, path.name)
    start = _skip_ws(text, 0)
    if start < len(text) and text[start] == "[":
        return _array(text, start, path.name)
    try:
        return _values(json.loads(text), path.name, "document")
    except RecursionError:
        return iter(())
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":
            return _lines(text, path.name)
        return iter(())
