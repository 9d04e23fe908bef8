"""The warm and cold tiers, exports, and the files a store owns.

Old events move out of the hot table into zstd Parquet files partitioned by event date
(``<store>.tiers/warm/event_date=2024-01-15/m3_0.parquet``), which DuckDB, Spark and
any Parquet reader open. Queries see the warm tier through the ``events`` view; the
cold tier only after :func:`restore`.

The store's DuckDB database has no access to files at all (``enable_external_access``
is off from the moment it opens), so no query, whoever writes it, can read a Parquet
file, a CSV or the audit trail by naming it. The tiers are read and written here with
pyarrow instead: a tier is handed to DuckDB as an Arrow dataset registered on the
cursor that reads it, and files are written from Arrow batches of a query.

A move is crash-safe: its files are written first, unregistered (no query counts
them); one DuckDB transaction then registers them and deletes the rows they replace;
files left behind by a move that did not commit are removed by the next writable open.
Every file's size and SHA-256 are recorded, so ``verify()`` names a file that was
truncated, changed or deleted.

A tier file carries each event's lead snapshot inline, where the hot table refers to
its one stored copy: a file stands alone (any engine reads it without a join, a cold
file is restored by copying it, verify recomputes its digests alone), and Parquet's
dictionary pages and zstd already store a lead's repeated snapshot about once, so
inline costs little on disk. A move drops the hot copies only its events used.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from ..errors import InputError, StoreError, UnsafePathError
from ..timeutil import as_utc, cutoff, utcnow
from .schema import (
    ALL_COLUMNS,
    PARTITION_COLUMN,
    PUBLIC_COLUMNS,
    RECORD_COLUMNS,
    export_select,
    hot_select,
)

__all__ = ["MoveReport", "Tiers", "write_query", "check_target", "EXPORT_FORMATS"]

ROW_GROUP_ROWS = 122_880
_BLOOM = {"lead_id": {"ndv": 1_000_000, "fpp": 0.05}, "event_id": {"ndv": 1_000_000, "fpp": 0.05}}
EXPORT_FORMATS = {".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class MoveReport:
    """What a tier move (archive or restore) did; counts before and after are equal."""

    moved: int
    to_tier: str
    files: int
    counts_before: dict
    counts_after: dict

    def __str__(self) -> str:
        return (
            f"moved {self.moved:,} events to {self.to_tier} in {self.files} file(s); "
            f"hot/warm/cold now {self.counts_after['hot']:,}/{self.counts_after['warm']:,}/"
            f"{self.counts_after['cold']:,}"
        )


class _SimulatedCrash(RuntimeError):
    """Raised by tests to stop a tier move between its steps."""


# --------------------------------------------------------------------------- writing


def _file_digest(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


def check_target(path, owned: set[Path], *, what: str = "export") -> Path:
    """The path ``what`` may write, or an error saying why not (a file the store owns,
    a folder, a place below a regular file).

    A file of the store is recognised however the path is spelled: relative, through
    ``..`` or a symbolic link, with a trailing slash, as a hard link to it, or in other
    letter case (on a case-insensitive disk that is the same file)."""
    p = Path(path).expanduser()
    try:
        real = p.resolve()
        places = [real, *real.parents]
        ids = {_file_id(c) for c in places} - {None}
    except (OSError, RuntimeError, ValueError) as e:
        raise UnsafePathError(f"cannot {what} to {p}: {e}") from None
    for own in owned:
        try:
            mine = own.resolve()
            mine_id = _file_id(mine)
        except (OSError, RuntimeError, ValueError):
            continue
        folded = str(mine).casefold()
        if mine_id in ids or any(c == mine or str(c).casefold() == folded for c in places):
            raise UnsafePathError(
                f"refused to {what} to {p}: that is a file of the store itself ({own.name}); "
                "choose a path outside the store's files"
            )
    if real.is_dir():
        raise InputError(f"cannot {what} to {p}: it is a folder; give a file name inside it")
    for parent in real.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"cannot {what} to {p}: {parent} is a file, not a folder")
            break
    return p


def _file_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file or folder: the same for every name of it."""
    try:
        st = path.stat()
    except OSError:  # not there (yet), or not ours to look at
        return None
    return st.st_dev, st.st_ino


@contextlib.contextmanager
def _atomic(path: Path, what: str):
    """Write to a temporary file beside ``path``, then move it in place: a failed write
    leaves nothing behind, and a reader never sees half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as e:
        raise InputError(f"cannot {what} to {path}: {e.strerror or e}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        raise InputError(f"cannot {what} to {path}: {e.strerror or e}") from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_query(con, sql: str, params, path: Path, fmt: str, *, what: str = "export") -> int:
    """Write the rows of ``sql`` (run on ``con``, a cursor of its own) to ``path`` as
    zstd Parquet or JSON lines, atomically. Returns the number of rows."""
    rows = 0
    with _atomic(path, what) as tmp:
        if fmt == "jsonl":
            # one JSON text per row, made by DuckDB; Python only writes the bytes
            from .chain import string_bytes

            reader = con.raw.sql(
                f"SELECT to_json(t)::VARCHAR || chr(10) AS line FROM ({sql}) t", params=params
            ).to_arrow_reader(ROW_GROUP_ROWS)
            with open(tmp, "wb") as fh:
                for rb in reader:
                    rows += rb.num_rows
                    for view in string_bytes(rb.column(0)):
                        fh.write(view)
        else:
            reader = con.raw.sql(sql, params=params).to_arrow_reader(ROW_GROUP_ROWS)
            writer = pq.ParquetWriter(tmp, reader.schema, compression="zstd")
            try:
                for rb in reader:
                    rows += rb.num_rows
                    writer.write_batch(rb, row_group_size=ROW_GROUP_ROWS)
            finally:
                writer.close()
    return rows


# --------------------------------------------------------------------------- the tiers


class Tiers:
    """The warm and cold tiers of one store (see the module docstring)."""

    def __init__(self, store):
        self._store = store
        self.dir: Path | None = (
            None if store.path is None else store.path.with_name(store.path.name + ".tiers")
        )
        self._datasets: dict[tuple, pads.Dataset] = {}

    # ------------------------------------------------------------------ reading

    def files(self, con, tiers) -> list[tuple[str, int, int]]:
        """(path relative to the tiers folder, min_seq, max_seq) of the files of ``tiers``."""
        tiers = [t for t in tiers if t != "hot"]
        if not tiers or self.dir is None:
            return []
        return con.rows(
            "SELECT path, min_seq, max_seq FROM tier_files "
            "WHERE list_contains(?::VARCHAR[], tier) ORDER BY min_seq",
            [tiers],
        )

    def dataset(self, paths: tuple[str, ...]) -> pads.Dataset:
        ds = self._datasets.get(paths)
        if ds is None:
            full = [str(self.dir / p) for p in paths]
            try:
                schema = pq.read_schema(full[0])
                ds = pads.dataset(full, format="parquet", schema=schema)
            except (OSError, pa.ArrowException) as e:
                raise StoreError(
                    f"a tier file of {self._store.path} cannot be read ({_first_line(e)}); "
                    "run verify() to see which"
                ) from None
            if len(self._datasets) > 32:
                self._datasets.clear()
            self._datasets[paths] = ds
        return ds

    def source_sql(
        self, con, tiers=("hot", "warm"), columns=PUBLIC_COLUMNS, db=None, *, apart=False
    ) -> str:
        """SQL (a subquery text) of the events of ``tiers``, for queries on ``con``: the
        files of the warm/cold tiers are registered on ``con`` as an Arrow dataset.

        With ``apart``, ``lead_snapshot`` is left for the caller to join: in its place
        come ``_snapshot_id`` (hot events) and ``_inline_snapshot`` (tier files), see
        :func:`~workbench.store.schema.snapshot_join`."""
        if db is None:
            db = con.val("SELECT current_database()")
        split = apart and "lead_snapshot" in columns

        def listed(snapshot_id: str, inline: str, plain) -> str:
            out = []
            for c in columns:
                if c == "lead_snapshot" and split:
                    out += [f"{snapshot_id} AS _snapshot_id", f"{inline} AS _inline_snapshot"]
                else:
                    out.append(plain(c))
            return ", ".join(out)

        parts = []
        if "hot" in tiers:
            if split:
                hot = listed("snapshot_id", "NULL::JSON", str)
                parts.append(f'SELECT {hot} FROM "{db}".main.events')
            else:
                parts.append(hot_select(db, columns))
        files = self.files(con, tiers)
        if files:
            paths = tuple(f[0] for f in files)
            name = f"_wb_tier_{abs(hash(paths)):x}"
            con.register(name, self.dataset(paths))
            typed = listed(
                "NULL::BIGINT",
                "lead_snapshot::JSON",
                lambda c: f"{c}::JSON AS {c}" if c in ("metadata", "lead_snapshot") else c,
            )
            parts.append(f"SELECT {typed} FROM {name}")
        if parts:
            return " UNION ALL ".join(parts)
        if split:
            return f'SELECT {listed("snapshot_id", "NULL::JSON", str)} FROM "{db}".main.events WHERE false'
        return f"{hot_select(db, columns)} WHERE false"

    def check_files(self, con) -> list[tuple[str, str, int, int]]:
        """Registered files that are missing, changed or unreadable:
        (path, problem, min_seq, max_seq) each."""
        if self.dir is None:
            return []
        bad = []
        for path, n, lo, hi, size, digest in con.rows(
            "SELECT path, events, min_seq, max_seq, bytes, sha256 FROM tier_files ORDER BY min_seq"
        ):
            full = self.dir / path
            if not full.exists():
                bad.append((path, "the file is missing (deleted outside the store)", lo, hi))
                continue
            actual_size, actual = _file_digest(full)
            if actual_size != size:
                how = "truncated" if actual_size < size else "longer than written"
                bad.append(
                    (path, f"the file is {how} ({actual_size:,} bytes, {size:,} written)", lo, hi)
                )
            elif actual != digest:
                bad.append(
                    (path, "the file's bytes changed since it was written (SHA-256)", lo, hi)
                )
            else:
                try:
                    rows = pq.ParquetFile(full).metadata.num_rows
                except (OSError, pa.ArrowException) as e:
                    bad.append((path, f"the file cannot be read: {_first_line(e)}", lo, hi))
                    continue
                if rows != n:
                    bad.append(
                        (path, f"the file holds {rows:,} events, {n:,} were written", lo, hi)
                    )
        return bad

    def counts(self, con) -> dict[str, int]:
        db = con.val("SELECT current_database()")
        hot = con.val(f'SELECT count(*) FROM "{db}".main.events')
        rows = dict(
            con.rows(f'SELECT tier, sum(events)::BIGINT FROM "{db}".main.tier_files GROUP BY tier')
        )
        return {
            "hot": int(hot),
            "warm": int(rows.get("warm") or 0),
            "cold": int(rows.get("cold") or 0),
        }

    # ------------------------------------------------------------------ moves

    def archive(self, older_than="30 days", *, tier: str = "warm", now=None) -> MoveReport:
        store = self._store
        if tier not in ("warm", "cold"):
            raise StoreError(f"archive tier must be 'warm' or 'cold', not {tier!r}")
        if self.dir is None:
            raise StoreError("an in-memory store has no tiers; open a store on disk to archive")
        cut = cutoff(older_than, now)
        from_tiers = ("hot",) if tier == "warm" else ("hot", "warm")
        con = store._con
        self.recover()
        before = self.counts(con)
        move_id = _next_id(con, "tier_moves", "move_id")
        con.run(
            "INSERT INTO tier_moves VALUES (?, ?, ?, ?, 'writing', NULL, ?, NULL)",
            [move_id, ",".join(from_tiers), tier, cut, utcnow()],
        )
        written: list[tuple] = []
        moved = 0
        n_hot = con.val("SELECT count(*) FROM events WHERE timestamp < ?", [cut])
        max_hot_seq = None
        if n_hot:
            max_hot_seq = con.val("SELECT max(seq) FROM events WHERE timestamp < ?", [cut])
            written += self._write_hot(move_id, tier, cut, max_hot_seq)
            moved += n_hot
        replaced = []
        if tier == "cold":
            rows = con.rows(
                "SELECT path, events, min_seq, max_seq, min_ts, max_ts FROM tier_files "
                "WHERE tier = 'warm' AND max_ts < ? ORDER BY min_seq",
                [cut],
            )
            for k, row in enumerate(rows):
                written.append(self._copy(move_id, "cold", row, len(written) + k))
                replaced.append(row[0])
                moved += row[1]
        store._after_write_hook(move_id)
        self._commit(move_id, cut, max_hot_seq, n_hot, written, replaced, moved)
        for path in replaced:
            (self.dir / path).unlink(missing_ok=True)
        store._tier_version += 1
        after = self.counts(con)
        return MoveReport(moved, tier, len(written), before, after)

    def restore(self, since=None, until=None) -> MoveReport:
        store = self._store
        if self.dir is None:
            raise StoreError("an in-memory store has no tiers")
        con = store._con
        self.recover()
        before = self.counts(con)
        move_id = _next_id(con, "tier_moves", "move_id")
        q = "SELECT path, events, min_seq, max_seq, min_ts, max_ts FROM tier_files WHERE tier = 'cold'"
        params = []
        if since is not None:
            q += " AND max_ts >= ?"
            params.append(as_utc(since, "since"))
        if until is not None:
            q += " AND min_ts < ?"
            params.append(as_utc(until, "until"))
        files = con.rows(q + " ORDER BY min_seq", params)
        con.run(
            "INSERT INTO tier_moves VALUES (?, 'cold', 'warm', NULL, 'writing', NULL, ?, NULL)",
            [move_id, utcnow()],
        )
        written, replaced, moved = [], [], 0
        for k, row in enumerate(files):
            written.append(self._copy(move_id, "warm", row, k))
            replaced.append(row[0])
            moved += row[1]
        store._after_write_hook(move_id)
        self._commit(move_id, None, None, 0, written, replaced, moved)
        for path in replaced:
            (self.dir / path).unlink(missing_ok=True)
        store._tier_version += 1
        return MoveReport(moved, "warm", len(written), before, self.counts(con))

    def _write_hot(self, move_id: int, tier: str, cut, max_seq) -> list[tuple]:
        """Hot events older than ``cut`` (up to ``max_seq``) -> one file per event date."""
        con = self._store._con
        cols = ", ".join(ALL_COLUMNS)
        dates = [
            r[0]
            for r in con.rows(
                "SELECT DISTINCT strftime(timestamp, '%Y-%m-%d') AS d FROM events "
                "WHERE timestamp < ? AND seq <= ? ORDER BY d",
                [cut, max_seq],
            )
        ]
        rows = []
        for k, day in enumerate(dates):
            rel = Path(tier) / f"{PARTITION_COLUMN}={day}" / f"m{move_id}_{k}.parquet"
            full = self.dir / rel
            full.parent.mkdir(parents=True, exist_ok=True)
            lo = as_utc(day, "day")
            cur = con.cursor()
            try:
                db = cur.val("SELECT current_database()")
                reader = cur.raw.sql(
                    f"SELECT {cols} FROM ({hot_select(db)}) WHERE timestamp < $cut AND seq <= $max "
                    "AND timestamp >= $lo AND timestamp < $lo + INTERVAL 1 DAY ORDER BY seq",
                    params={"cut": cut, "max": max_seq, "lo": lo},
                ).to_arrow_reader(ROW_GROUP_ROWS)
                stats = _write_parquet(reader, full)
            finally:
                cur.close()
            rows.append(self._file_row(move_id, tier, rel, *stats))
        return rows

    def _copy(self, move_id: int, tier: str, row: tuple, k: int) -> tuple:
        """A registered file copied into ``tier`` under a fresh name (names never grow)."""
        path, n, lo, hi, tlo, thi = row
        day_folder = Path(path).parent.name
        rel = Path(tier) / day_folder / f"m{move_id}_{k}.parquet"
        (self.dir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.dir / path, self.dir / rel)
        return self._file_row(move_id, tier, rel, n, lo, hi, tlo, thi)

    def _file_row(self, move_id, tier, rel: Path, n, lo, hi, tlo, thi) -> tuple:
        size, digest = _file_digest(self.dir / rel)
        return (move_id, tier, rel.as_posix(), n, lo, hi, tlo, thi, size, digest)

    def _commit(self, move_id, cut, max_hot_seq, n_hot, written, replaced, moved) -> None:
        con = self._store._con
        con.run("BEGIN TRANSACTION")
        try:
            if n_hot:
                deleted = con.val(
                    "DELETE FROM events WHERE timestamp < ? AND seq <= ?", [cut, max_hot_seq]
                )
                if deleted != n_hot:
                    raise StoreError(
                        f"tier move {move_id}: expected to move {n_hot} events, found {deleted}"
                    )
                # snapshots only the moved events held travel inline in the tier files
                con.run(
                    "DELETE FROM snapshots WHERE snapshot_id NOT IN "
                    "(SELECT snapshot_id FROM events WHERE snapshot_id IS NOT NULL)"
                )
            if sum(w[3] for w in written) != moved:
                raise StoreError(
                    f"tier move {move_id}: files hold {sum(w[3] for w in written)} events, "
                    f"expected {moved}"
                )
            for path in replaced:
                con.run("DELETE FROM tier_files WHERE path = ?", [path])
            if written:
                con.executemany(
                    "INSERT INTO tier_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [list(w) for w in written],
                )
            con.run(
                "UPDATE tier_moves SET state = 'done', events = ?, finished_at = ? WHERE move_id = ?",
                [moved, utcnow(), move_id],
            )
            con.run("COMMIT")
        except BaseException:
            con.run("ROLLBACK")
            raise

    def recover(self) -> None:
        """Finish what an interrupted move left: its files are not registered, so no
        query counted them; remove them and mark the move abandoned."""
        if self.dir is None:
            return
        con = self._store._con
        pending = con.rows("SELECT move_id FROM tier_moves WHERE state = 'writing'")
        registered = {r[0] for r in con.rows("SELECT path FROM tier_files")}
        if self.dir.exists():
            for f in self.dir.rglob("*"):
                if f.is_file() and f.relative_to(self.dir).as_posix() not in registered:
                    f.unlink(missing_ok=True)
        for (move_id,) in pending:
            con.run(
                "UPDATE tier_moves SET state = 'abandoned', finished_at = ? WHERE move_id = ?",
                [utcnow(), move_id],
            )
        if pending:
            self._store._tier_version += 1

    # ------------------------------------------------------------------ export

    def export(self, path, *, format: str | None = None, tiers=("hot", "warm", "cold")) -> int:
        store = self._store
        p = check_target(Path(path), store.owned_paths())
        fmt = format or EXPORT_FORMATS.get(p.suffix.lower())
        if fmt not in ("parquet", "jsonl"):
            raise StoreError(
                f"cannot tell the export format of {p}: use .parquet or .jsonl, or format="
            )
        cur = store._con.cursor()
        try:
            cur.run("BEGIN TRANSACTION")
            src = self.source_sql(cur, tiers, RECORD_COLUMNS)
            if fmt == "parquet":
                sel = f"SELECT * FROM ({src}) ORDER BY seq"
            else:
                sel = export_select(f"({src})")
            return write_query(cur, sel, None, p, fmt)
        finally:
            cur.close()


def _write_parquet(reader: pa.RecordBatchReader, path: Path, *, sync: bool = False) -> tuple:
    """Write ``reader`` to ``path`` as zstd Parquet (bloom filters on the ids it has);
    return (rows, min_seq, max_seq, min_ts, max_ts), the ranges None where the reader has
    no such column. ``sync`` flushes the file to disk before returning."""
    import pyarrow.compute as pc

    names = reader.schema.names
    stats = [c for c in ("seq", "timestamp") if c in names]
    low: dict = {}
    high: dict = {}
    n = 0
    bloom = {c: o for c, o in _BLOOM.items() if c in names}
    writer = pq.ParquetWriter(path, reader.schema, compression="zstd", bloom_filter_options=bloom)
    try:
        for rb in reader:
            if not rb.num_rows:
                continue
            writer.write_batch(rb, row_group_size=ROW_GROUP_ROWS)
            n += rb.num_rows
            for c in stats:
                m = pc.min_max(rb.column(c))
                lo, hi = m["min"].as_py(), m["max"].as_py()
                low[c] = lo if c not in low else min(low[c], lo)
                high[c] = hi if c not in high else max(high[c], hi)
    finally:
        writer.close()
    if sync:
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
    return n, low.get("seq"), high.get("seq"), low.get("timestamp"), high.get("timestamp")


def _next_id(con, table: str, column: str) -> int:
    return con.val(f"SELECT coalesce(max({column}), 0) + 1 FROM {table}")


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
