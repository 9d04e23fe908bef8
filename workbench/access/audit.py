"""The audit trail: an append-only SQLite file in WAL mode beside the store.

Sessions open the store read-only and several notebooks read it at once, while DuckDB
lets one process write a store file: so the trail lives in its own SQLite file
(``<store>.audit.sqlite``), which many processes can append to at once. Each record is
written in its own ``BEGIN IMMEDIATE`` transaction, so concurrent writers queue on
SQLite's lock (with a long busy timeout) instead of losing records. Triggers refuse
UPDATE and DELETE, and every record carries a SHA-256 chained over the record before
it, so ``verify()`` finds any record changed or removed behind SQLite's back.

A chain alone does not show records removed from its end (or all of them): so the
trail also keeps an **anchor**, the number of records and the last hash, in a table
updated in the same transaction as each record and in a file beside the trail
(``<trail>.head``), and ``verify()`` checks the chain against both. For proof against
someone who can rewrite every file, keep the head that ``verify()`` prints somewhere else
and give it back as ``verify(expect=...)``.

Records hold what the access layer gives them; the Session masks free text before it
gets here, so the trail itself holds no raw PII.

>>> trail = AuditTrail.in_memory()
>>> trail.append(user="ana", role="analyst", action="sql", detail="SELECT 1", rows=1)["id"]
1
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
import re
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import WorkbenchError
from ..timeutil import utc_iso
from .masking import STARS, mask_document, mask_free_text

__all__ = [
    "AuditTrail",
    "AuditError",
    "AuditVerifyReport",
    "utc_iso",
    "FIELDS",
    "mask_sql_text",
    "mask_params",
]

#: The columns of an audit record, in order.
FIELDS = (
    "id",
    "timestamp",
    "user",
    "role",
    "action",
    "outcome",
    "masked",
    "purpose",
    "detail",
    "lead_ids",
    "rows",
    "store",
    "session",
    "pid",
    "host",
    "prev_hash",
    "hash",
)

_DDL = """
CREATE TABLE IF NOT EXISTS audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp TEXT NOT NULL,
    user      TEXT NOT NULL,
    role      TEXT NOT NULL,
    action    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    masked    INTEGER NOT NULL,
    purpose   TEXT,
    detail    TEXT,
    lead_ids  TEXT,
    rows      INTEGER,
    store     TEXT,
    session   TEXT,
    pid       INTEGER,
    host      TEXT,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_timestamp ON audit (timestamp);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: records cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: records cannot be deleted'); END;
CREATE TABLE IF NOT EXISTS audit_anchor (
    one     INTEGER PRIMARY KEY CHECK (one = 1),
    records INTEGER NOT NULL,
    head    TEXT NOT NULL
);
"""

GENESIS = "0" * 64
_HASHED = FIELDS[1:-2]  # every field but id and the two hashes
_memory_ids = itertools.count(1)


class AuditError(WorkbenchError, RuntimeError):
    """The audit trail cannot be opened or written; the read it was to record is refused."""


@dataclass(frozen=True)
class AuditVerifyReport:
    """The result of recomputing the audit trail's hash chain."""

    ok: bool
    records: int
    first_bad_id: int | None = None
    problem: str | None = None
    head: str | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        if self.ok:
            text = f"OK: {self.records:,} audit records, hash chain intact"
            if self.head:
                text += f"\nhead {self.head}"
            return "\n".join([text, *self.notes])
        where = f" at audit record {self.first_bad_id}" if self.first_bad_id is not None else ""
        return f"TAMPERED{where}: {self.problem}"


def _record_hash(prev: str, record: dict) -> str:
    body = json.dumps([record.get(k) for k in _HASHED], ensure_ascii=False, default=str)
    return hashlib.sha256((prev + body).encode()).hexdigest()


class AuditTrail:
    """One audit trail (a SQLite database); thread-safe, shared by the sessions of a store."""

    def __init__(self, target: str, *, uri: bool = False, label: str | None = None):
        self.label = label or target
        self.path = None if uri else Path(target)
        self._lock = threading.Lock()
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                target, uri=uri, timeout=60, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA busy_timeout = 60000")
            if not uri:
                self._db.execute("PRAGMA journal_mode = WAL")
                # WAL + NORMAL: a commit survives a crash of the process, not of the OS
                self._db.execute("PRAGMA synchronous = NORMAL")
            had_anchor = self._retry(
                lambda: self._db.execute(
                    "SELECT 1 FROM sqlite_master WHERE name = 'audit_anchor'"
                ).fetchone()
            )
            self._retry(lambda: self._db.executescript(_DDL))
            if not had_anchor:
                # a trail from before anchors: anchor what it holds now
                self._retry(
                    lambda: self._db.execute(
                        "INSERT OR IGNORE INTO audit_anchor SELECT 1, count(*), coalesce("
                        "(SELECT hash FROM audit ORDER BY id DESC LIMIT 1), ?) FROM audit",
                        [GENESIS],
                    )
                )
        except (sqlite3.Error, OSError) as e:
            raise AuditError(
                f"cannot open the audit trail {self.label}: {e}. Sessions record every read "
                "there; give connect(..., audit='PATH') a writable file"
            ) from None

    @classmethod
    def in_memory(cls) -> AuditTrail:
        """A trail that lives as long as this object (for stores in memory)."""
        name = f"file:workbench_audit_{os.getpid()}_{next(_memory_ids)}?mode=memory&cache=shared"
        return cls(name, uri=True, label="memory")

    def _retry(self, fn, attempts: int = 20):
        for i in range(attempts):
            try:
                return fn()
            except sqlite3.OperationalError as e:
                transient = "locked" in str(e) or "busy" in str(e)
                if not transient or i == attempts - 1:
                    raise
                time.sleep(0.01 * (i + 1))

    def append(
        self,
        *,
        user: str,
        role: str,
        action: str,
        outcome: str = "ok",
        masked: bool = True,
        purpose: str | None = None,
        detail: str | None = None,
        lead_ids=None,
        rows: int | None = None,
        store: str | None = None,
        session: str | None = None,
        at: dt.datetime | None = None,
    ) -> dict:
        """Append one record and return it (with its id and hash)."""
        record = {
            "timestamp": utc_iso(at),
            "user": user,
            "role": role,
            "action": action,
            "outcome": outcome,
            "masked": 1 if masked else 0,
            "purpose": purpose,
            "detail": detail,
            "lead_ids": None if lead_ids is None else json.dumps(list(lead_ids)),
            "rows": None if rows is None else int(rows),
            "store": store,
            "session": session,
            "pid": os.getpid(),
            "host": socket.gethostname(),
        }
        with self._lock:
            try:
                return self._retry(lambda: self._insert(record))
            except sqlite3.Error as e:
                raise AuditError(
                    f"cannot write to the audit trail {self.label}: {e}; the read was refused"
                ) from None

    def _insert(self, record: dict) -> dict:
        db = self._db
        db.execute("BEGIN IMMEDIATE")  # take the write lock before reading the last hash
        try:
            row = db.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
            prev = row[0] if row else GENESIS
            rec = dict(record, prev_hash=prev, hash=_record_hash(prev, record))
            cols = [k for k in FIELDS if k != "id"]
            cur = db.execute(
                f"INSERT INTO audit ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [rec[k] for k in cols],
            )
            rec["id"] = cur.lastrowid
            db.execute(
                "INSERT INTO audit_anchor (one, records, head) VALUES (1, 1, ?) "
                "ON CONFLICT (one) DO UPDATE SET records = records + 1, head = excluded.head",
                [rec["hash"]],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._write_anchor_file(rec["id"], rec["hash"])
        return rec

    @property
    def anchor_path(self) -> Path | None:
        return None if self.path is None else self.path.with_name(self.path.name + ".head")

    def _write_anchor_file(self, records: int, head: str) -> None:
        """``records head`` beside the trail, replaced atomically (never half written)."""
        target = self.anchor_path
        if target is None:
            return
        kept = self._read_anchor_file()
        if kept is not None and kept[0] > records:
            return  # never rewind the anchor: a trail that lost records must show it
        try:
            fd, tmp = tempfile.mkstemp(prefix=".audit-head.", dir=target.parent)
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{records} {head}\n")
            os.replace(tmp, target)
        except OSError:
            pass  # the table anchor still holds; verify() says when the file lags

    def _read_anchor_file(self) -> tuple[int, str] | None:
        target = self.anchor_path
        if target is None or not target.exists():
            return None
        try:
            n, head = target.read_text().split()
            return int(n), head
        except (OSError, ValueError):
            return (-1, "")

    def read(
        self,
        *,
        user: str | None = None,
        action: str | None = None,
        since: str | None = None,
        until: str | None = None,
        lead_id: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Records matching every filter given, oldest first (``since``/``until`` as ISO text)."""
        where, params = [], []
        for col, value in (("user", user), ("action", action)):
            if value is not None:
                where.append(f"{col} = ?")
                params.append(value)
        if since is not None:
            where.append("timestamp >= ?")
            params.append(since)
        if until is not None:
            where.append("timestamp < ?")
            params.append(until)
        if lead_id is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(audit.lead_ids) WHERE value = ?)")
            params.append(lead_id)
        q = f"SELECT {', '.join(FIELDS)} FROM audit"
        if where:
            q += " WHERE " + " AND ".join(where)
        q += " ORDER BY id"
        if limit is not None:
            q += " LIMIT ?"
            params.append(int(limit))
        with self._lock:
            rows = self._retry(lambda: self._db.execute(q, params).fetchall())
        df = pd.DataFrame(rows, columns=list(FIELDS))
        df["masked"] = df["masked"].astype(bool)
        df["rows"] = df["rows"].astype("Int64")
        df["pid"] = df["pid"].astype("Int64")
        df["lead_ids"] = pd.Series(
            [json.loads(v) if isinstance(v, str) else [] for v in df["lead_ids"]],
            index=df.index,
            dtype=object,
        )
        return df

    def count(self) -> int:
        with self._lock:
            return self._retry(lambda: self._db.execute("SELECT count(*) FROM audit").fetchone())[0]

    def verify(self, expect: str | None = None) -> AuditVerifyReport:
        """Recompute the hash chain over every record, in id order, and check it against
        the anchors (table and file) and, when given, a head kept from earlier."""
        with self._lock:
            rows = self._retry(
                lambda: self._db.execute(
                    f"SELECT {', '.join(FIELDS)} FROM audit ORDER BY id"
                ).fetchall()
            )
            anchor = self._retry(
                lambda: self._db.execute("SELECT records, head FROM audit_anchor").fetchone()
            )
        prev = GENESIS
        hashes = []
        for n, row in enumerate(rows):
            rec = dict(zip(FIELDS, row, strict=True))
            if rec["prev_hash"] != prev:
                return AuditVerifyReport(
                    False, n, rec["id"], "the record before it was removed or changed"
                )
            if _record_hash(prev, rec) != rec["hash"]:
                return AuditVerifyReport(False, n, rec["id"], "its content no longer matches")
            prev = rec["hash"]
            hashes.append(prev)
        count = len(rows)
        head = hashes[-1] if hashes else None
        anchored = (0, GENESIS) if anchor is None else (int(anchor[0]), anchor[1])
        if anchored != (count, head or GENESIS):
            return AuditVerifyReport(
                False,
                count,
                None,
                f"the trail holds {count:,} records but its anchor says {anchored[0]:,} were "
                "written: records were removed (or the anchor was changed)",
            )
        kept = self._read_anchor_file()
        if kept is not None:
            n, h = kept
            if n < 0 or n > count or (n and hashes[n - 1] != h):
                return AuditVerifyReport(
                    False,
                    count,
                    None,
                    f"the anchor file {self.anchor_path.name} says {max(n, 0):,} records were "
                    f"written with another head; the trail holds {count:,}: records were "
                    "removed or rewritten",
                )
        notes = []
        if expect is not None:
            want = str(expect).strip().lower()
            if len(want) < 16 or any(c not in "0123456789abcdef" for c in want):
                raise ValueError(
                    f"expect={expect!r}: give the head verify() printed (at least 16 hex characters)"
                )
            hit = next((i for i, h in enumerate(hashes) if h.startswith(want)), None)
            if hit is None:
                return AuditVerifyReport(
                    False,
                    count,
                    None,
                    f"the head you kept ({want[:16]}...) is not in this trail's chain: the "
                    "trail was rewritten or replaced since",
                )
            notes.append(
                "the head you kept matches: nothing changed since"
                if hit == count - 1
                else f"the head you kept is record {hit + 1}; {count - hit - 1:,} records were added since"
            )
        return AuditVerifyReport(True, count, head=head, notes=tuple(notes))

    def close(self) -> None:
        with self._lock:
            self._db.close()


# --------------------------------------------------------------------------- what a person typed

# Values typed into SQL that name no person: ids, event types, numbers, times, keywords.
_PLAIN_VALUE = re.compile(
    r"^(?:(?:lead|evt|flow|ent|step|inc|run)_[A-Za-z0-9]+|[a-z_]+(?:\.[a-z_*]+)+|"
    r"[-+]?\d+(?:\.\d+)?|\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?|"
    r"success|failure|error|skipped|\$\.[\w.\[\]\"']+|[%_]*)$"
)
_SQL_STRING = re.compile(r"'((?:[^']|'')*)'")


def _mask_literal(text: str) -> str:
    """A value a person typed (a SQL literal or parameter) as the trail may keep it."""
    if _PLAIN_VALUE.match(text):
        return text
    masked = mask_free_text(text)
    if masked != text:
        return masked
    # no shape to go by: a name, a street... keep its first letter only
    return (text[:1] + STARS) if text.strip() else text


def mask_sql_text(query: str) -> str:
    """SQL text as the audit trail keeps it: string literals that could name a person
    masked (ids, event types, dates, JSON paths kept).

    >>> mask_sql_text("SELECT * FROM events WHERE lead_snapshot->>'first_name' = 'Wilhelmina'")
    "SELECT * FROM events WHERE lead_snapshot->>'f***' = 'W***'"
    """
    return _SQL_STRING.sub(
        lambda m: "'" + _mask_literal(m.group(1).replace("''", "'")).replace("'", "''") + "'", query
    )


def mask_params(params):
    if isinstance(params, Mapping):
        return {str(k): mask_params(v) for k, v in params.items()}
    if isinstance(params, list | tuple):
        return [mask_params(v) for v in params]
    if isinstance(params, str):
        return _mask_literal(params)
    if params is None or isinstance(params, bool | int | float):
        return mask_document(params)
    return _mask_literal(str(params))
