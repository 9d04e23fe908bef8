"""The Parquet lake: a store's events and tables for other engines, added to in place.

``EventStore.export_lake(LAKE)`` writes (every tier, in seq order)::

    LAKE/events/event_date=2026-11-20/part-00001-000.parquet   the events, Hive-partitioned
    LAKE/lead_summary/lead_summary.parquet                    one row per lead
    LAKE/flows/flows.parquet, entities/…, steps/…             the dimension tables
    LAKE/_workbench_lake.json                                 what was exported (files, the
                                                              keys and names of the events)

as zstd Parquet that DuckDB, Spark, Trino and pyarrow open as they are (a hidden file
or one starting with ``_`` is skipped by each of them). The events carry their lead
snapshot inline, as the tier files do, so a reader needs no join. A second export adds
only the events stored since the first (by seq); the summary and dimension tables,
small beside the events, are written again whole.

An export is crash-safe. Its files are written under names no reader takes for data
(``.part-….parquet.e3.tmp``: hidden for Spark and pyarrow, not ``*.parquet`` for a DuckDB
glob). The manifest, which lists every file of the lake and the pending files of the
newest export, is then replaced in one rename; only after that are the pending files
renamed into place. The next export finishes the renames of an export whose manifest was
written and removes the files of one whose manifest was not, so no event is ever in the
lake twice or half-written. A lake belongs to one store: another store's events, a copy
of the store that went its own way, or an older backup of it are refused, never mixed in
(the manifest keeps the chain hash of the last exported event, which the store must
still hold). One export runs at a time (a lock file in the lake).

The lake holds raw events, like the store's own tier files: protect it as the store is
protected. ``workbench lake export`` asks for a purpose and a role that may unmask, and
puts the export on the audit trail.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from .. import display
from ..errors import InputError, StoreError
from ..timeutil import utcnow
from .schema import PARTITION_COLUMN, PUBLIC_COLUMNS
from .tiers import ROW_GROUP_ROWS, _write_parquet

__all__ = ["LakeReport", "export_lake", "MANIFEST", "LAKE_TABLES"]

MANIFEST = "_workbench_lake.json"
#: The tables written whole with each export, besides the events.
LAKE_TABLES = ("lead_summary", "flows", "entities", "steps")
_FORMAT = 1
#: A JSON key as it stands between its quotes (the same pattern the lake's readers use).
JSON_KEY = r'"((?:[^"\\]|\\.)*)"\s*:'
#: At most this many names (of steps, entities, feedback types) per export.
_NAMES = 20_000


@dataclass(frozen=True)
class LakeReport:
    """What one ``export_lake`` added: events (new files) and the tables rewritten."""

    lake: Path
    export_id: int
    events: int
    files: int
    through_seq: int
    total_events: int
    tables: dict = field(default_factory=dict)

    def __str__(self) -> str:
        head = (
            f"lake {self.lake}: export {self.export_id} added {self.events:,} events "
            f"in {self.files} file(s)"
            if self.events
            else f"lake {self.lake}: export {self.export_id}: no new events"
        )
        tables = ", ".join(f"{t} {n:,} row{'s' if n != 1 else ''}" for t, n in self.tables.items())
        return (
            f"{head}; the lake holds {self.total_events:,} events (seq 1..{self.through_seq:,})"
            + (f"; rewrote {tables}" if tables else "")
        )

    def _repr_html_(self) -> str:
        rows = [
            ("added", f"{self.events:,} events in {self.files} file(s)"),
            ("holds", f"{self.total_events:,} events (through seq {self.through_seq:,})"),
            *[(t, f"{n:,} rows") for t, n in self.tables.items()],
        ]
        return display.card(f"Lake export {self.export_id}: {self.lake}", rows, status="ok")


def _read_manifest(lake: Path) -> dict | None:
    path = lake / MANIFEST
    if not path.exists():
        return None
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
        if m.get("format") != _FORMAT or not isinstance(m.get("exports"), list):
            raise ValueError("unknown format")
        return m
    except (OSError, ValueError) as e:
        raise StoreError(
            f"{path} cannot be read ({e}); it is not a workbench lake, or it was damaged"
        ) from None


def _write_manifest(lake: Path, manifest: dict) -> None:
    tmp = lake / f".{MANIFEST}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, lake / MANIFEST)


def _pending(rel: str, export_id: int) -> str:
    """Where export ``export_id`` writes ``rel`` until its manifest is written."""
    p = Path(rel)
    return str(p.with_name(f".{p.name}.e{export_id}.tmp"))


def _finish(lake: Path, manifest: dict | None) -> None:
    """Move in the files the manifest's newest export wrote; remove every other pending
    file (an export that died before its manifest)."""
    exports = (manifest or {}).get("exports", [])
    if exports:
        last = exports[-1]
        for rel in [*last["files"], *last.get("tables", [])]:
            pending = lake / _pending(rel, last["id"])
            if pending.exists():
                os.replace(pending, lake / rel)
    for sub in ("events", *LAKE_TABLES):
        folder = lake / sub
        if folder.exists():
            for f in folder.rglob(".*.tmp"):
                f.unlink(missing_ok=True)


def _files(folder: Path) -> list[Path]:
    return [f for f in folder.rglob("*") if f.is_file()] if folder.is_dir() else [folder]


def _identity(store) -> dict:
    rows = dict(store._con.rows("SELECT key, value FROM store_meta"))
    return {"created_at": rows.get("created_at"), "hash_probe": rows.get("hash_probe")}


def _inside_store(store, path: Path) -> bool:
    real = path.resolve()
    for own in store.owned_paths():
        try:
            mine = own.resolve()
        except OSError:
            continue
        if real == mine or mine in real.parents:
            return True
    return False


@contextlib.contextmanager
def _locked(lake: Path):
    """One export at a time per lake (a second one waits for the first)."""
    with open(lake / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def export_lake(store, lake, *, progress: bool | None = None) -> LakeReport:
    """Write ``store``'s new events (and its tables) to the lake folder ``lake``."""
    lake = Path(lake).expanduser()
    if lake.exists() and not lake.is_dir():
        raise InputError(f"cannot export a lake to {lake}: it is a file, not a folder")
    if _inside_store(store, lake):
        raise InputError(
            f"refused to export a lake to {lake}: that is inside the store's own files; "
            "choose a folder outside them"
        )
    lake.mkdir(parents=True, exist_ok=True)
    with _locked(lake):
        return _export(store, lake, progress)


def _export(store, lake: Path, progress) -> LakeReport:
    manifest = _read_manifest(lake)
    ident = _identity(store)
    if manifest is None:
        # a first export cut short leaves only empty folders of its own (and pending files)
        ours = {"events", *LAKE_TABLES}
        stray = [
            p.name
            for p in lake.iterdir()
            if not p.name.startswith(".")
            and (p.name not in ours or any(not f.name.startswith(".") for f in _files(p)))
        ]
        if stray:
            raise InputError(
                f"{lake} is not empty and is not a workbench lake ({', '.join(sorted(stray)[:3])}"
                "…): choose an empty or new folder"
            )
        manifest = {"format": _FORMAT, "store": ident, "exports": []}
    elif manifest.get("store") != ident:
        raise StoreError(
            f"{lake} holds the events of another store (made {manifest['store'].get('created_at')}); "
            "export each store to a lake of its own"
        )
    for sub in ("events", *LAKE_TABLES):  # a folder linked into the store's own files
        if (lake / sub).exists() and _inside_store(store, lake / sub):
            raise InputError(
                f"refused to export into {lake / sub}: it leads into the store's files"
            )
    _finish(lake, manifest)
    through = max((e["through_seq"] for e in manifest["exports"]), default=0)
    export_id = len(manifest["exports"]) + 1
    con = store._con.cursor()
    files: list[str] = []
    table_files = {name: f"{name}/{name}.parquet" for name in LAKE_TABLES}
    try:
        con.run("BEGIN TRANSACTION")  # one consistent view of every tier
        src = store.events_source(con, ("hot", "warm", "cold"), PUBLIC_COLUMNS)
        hashes = store.events_source(con, ("hot", "warm", "cold"), ("seq", "chain_hash"))
        if through:
            # the store must still hold the last event the lake has, unchanged: a copy
            # of it that went its own way, or an older backup, must not fill the gaps
            row = con.one(
                f"SELECT CAST(chain_hash AS VARCHAR) FROM ({hashes}) WHERE seq = ?", [through]
            )
            last = manifest["exports"][-1]
            if row is None or row[0] != last.get("through_chain"):
                raise StoreError(
                    f"{lake} holds this store's events through seq {through:,}, but the store "
                    + ("holds no such event" if row is None else "holds another event there")
                    + ": it is a copy or an older backup of the store the lake was made from; "
                    "export it to a lake of its own"
                )
        days = [
            r[0]
            for r in con.rows(
                f"SELECT DISTINCT strftime(timestamp, '%Y-%m-%d') AS d FROM ({src}) "
                "WHERE seq > ? ORDER BY d",
                [through],
            )
        ]
        added, top = 0, through
        bar = _bar(progress, len(days))
        for k, day in enumerate(days):
            rel = f"events/{PARTITION_COLUMN}={day}/part-{export_id:05d}-{k:03d}.parquet"
            reader = con.raw.sql(
                f"SELECT * FROM ({src}) WHERE seq > $through AND timestamp >= CAST($day AS DATE) "
                "AND timestamp < CAST($day AS DATE) + INTERVAL 1 DAY ORDER BY seq",
                params={"through": through, "day": day},
            ).to_arrow_reader(ROW_GROUP_ROWS)
            n, hi = _write(reader, lake / _pending(rel, export_id))
            files.append(rel)
            added += n
            top = max(top, hi)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        db = store._db
        tables = {}
        for name in LAKE_TABLES:
            sql = (
                store.lead_summary_source(con)
                if name == "lead_summary"
                else f'SELECT * FROM "{db}".main.{name}'
            )
            n, _ = _write(
                con.raw.sql(f"SELECT * FROM ({sql}) ORDER BY 1").to_arrow_reader(ROW_GROUP_ROWS),
                lake / _pending(table_files[name], export_id),
                seq=False,
            )
            tables[name] = n
        keys, names = _vocabulary(con, src, through) if added else ([], [])
        chain = con.one(f"SELECT CAST(chain_hash AS VARCHAR) FROM ({hashes}) WHERE seq = ?", [top])
        con.run("COMMIT")
    except BaseException:
        for rel in [*files, *table_files.values()]:
            (lake / _pending(rel, export_id)).unlink(missing_ok=True)
        raise
    finally:
        con.close()
    manifest["exports"].append(
        {
            "id": export_id,
            "at": utcnow().isoformat(),
            "events": added,
            "through_seq": top,
            "through_chain": chain[0] if chain else None,
            "files": files,
            "tables": list(table_files.values()),
            "json_keys": keys,
            "names": names,
        }
    )
    _write_manifest(lake, manifest)  # from here on the export counts: finish it
    _finish(lake, manifest)
    total = sum(e["events"] for e in manifest["exports"])
    return LakeReport(lake, export_id, added, len(files), top, total, tables)


def _vocabulary(con, src: str, through: int) -> tuple[list[str], list[str]]:
    """What a reader needs to know of the new events without reading them all again:
    every key their documents use (so a masking reader knows which keys hold PII) and
    the names of their steps, entities and feedback types (shown as they are)."""
    keys = con.rows(
        f"""
        SELECT DISTINCT k FROM (
            SELECT unnest(regexp_extract_all(metadata, $key, 1)) AS k
            FROM ({src}) WHERE seq > $through
            UNION ALL
            SELECT unnest(regexp_extract_all(lead_snapshot, $key, 1))
            FROM ({src}) WHERE seq > $through
        ) ORDER BY k
        """,
        {"key": JSON_KEY, "through": through},
    )
    names = con.rows(
        f"""
        SELECT DISTINCT n FROM (
            SELECT unnest([step_name, entity_name, feedback_type]) AS n
            FROM ({src}) WHERE seq > $through
        ) WHERE n IS NOT NULL ORDER BY n LIMIT {_NAMES}
        """,
        {"through": through},
    )
    return [k for (k,) in keys], [n for (n,) in names]


def _write(reader: pa.RecordBatchReader, path: Path, seq: bool = True) -> tuple[int, int]:
    """Write ``reader`` to ``path``, on disk before it returns; (rows, highest seq)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n, _, hi, _, _ = _write_parquet(reader, path, sync=True)
    return n, (hi or 0) if seq else 0


def _bar(progress: bool | None, days: int):
    if progress is False or (progress is None and days < 30):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=days, unit=" days", desc="lake export")
