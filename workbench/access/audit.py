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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import catalog, display
from ..errors import WorkbenchError
from ..timeutil import utc_iso
from .masking import mask_document, mask_text

__all__ = [
    "AuditTrail",
    "AuditError",
    "AuditVerifyReport",
    "QuotaState",
    "utc_iso",
    "FIELDS",
    "mask_sql_text",
    "mask_params",
    "Vocabulary",
    "placeholder",
    "fingerprint",
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
CREATE INDEX IF NOT EXISTS audit_user_action ON audit (user, action, timestamp);
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

    def _repr_html_(self) -> str:
        if self.ok:
            rows = [("records", f"{self.records:,}"), ("head", self.head or "-")]
            return display.card("Audit trail intact", rows, status="ok", notes=self.notes)
        rows = [("first bad record", self.first_bad_id), ("problem", self.problem)]
        return display.card("Audit trail TAMPERED", rows, status="bad")


def _valid_text(text: str) -> str:
    """``text`` as UTF-8 can hold it: a lone surrogate (which no file or hash can encode)
    is written as its escape, ``\\ud800``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


@dataclass(frozen=True)
class QuotaState:
    """A quota used up: ``limit`` records in ``seconds``; ``count`` made; the next
    allowed in ``wait`` seconds."""

    seconds: float
    limit: int
    count: int
    wait: float

    @property
    def label(self) -> str:
        """The window in words: 'a minute', 'a day', '90 seconds'."""
        return {60: "a minute", 3600: "an hour", 86400: "a day"}.get(
            int(self.seconds), f"{self.seconds:g} seconds"
        )


def _parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


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
        quota: Sequence[tuple[float, int]] = (),
    ) -> dict:
        """Append one record and return it (with its id and hash).

        ``quota`` limits how often ``user`` may do ``action``: ``(seconds, limit)`` pairs,
        each at most ``limit`` records (whatever their outcome) in the ``seconds`` before
        ``at``. It is checked in the transaction that appends, so processes that append
        at once cannot both pass it. A record beyond a quota is appended as refused (it
        counts too), without its lead ids, and returned with ``"over_quota"``: a
        :class:`QuotaState`."""
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
        for k, v in record.items():
            if isinstance(v, str) and not v.isascii():
                record[k] = _valid_text(v)
        with self._lock:
            try:
                return self._retry(lambda: self._insert(record, quota))
            except sqlite3.Error as e:
                raise AuditError(
                    f"cannot write to the audit trail {self.label}: {e}; the read was refused"
                ) from None

    def _insert(self, record: dict, quota=()) -> dict:
        db = self._db
        db.execute("BEGIN IMMEDIATE")  # take the write lock before reading the last hash
        try:
            over = self._over_quota(record["user"], record["action"], record["timestamp"], quota)
            if over is not None:
                note = f" (refused: {over.limit} in {over.label} used up)"
                record = dict(
                    record,
                    outcome="refused",
                    detail=(record["detail"] or "") + note,
                    lead_ids=None,
                    rows=None,
                )
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
        if over is not None:
            rec["over_quota"] = over
        return rec

    def _over_quota(self, user: str, action: str, at: str, quota) -> QuotaState | None:
        """The first of ``quota`` that ``user`` has used up at ``at`` (ISO text), or None."""
        now = _parse_iso(at)
        for seconds, limit in quota:
            since = utc_iso(now - dt.timedelta(seconds=seconds))
            (n,) = self._db.execute(
                "SELECT count(*) FROM audit WHERE user = ? AND action = ? AND timestamp >= ?",
                [user, action, since],
            ).fetchone()
            if n >= limit:
                # the record whose ageing out brings the count below the limit
                row = self._db.execute(
                    "SELECT timestamp FROM audit WHERE user = ? AND action = ? AND timestamp >= ? "
                    "ORDER BY timestamp LIMIT 1 OFFSET ?",
                    [user, action, since, n - limit],
                ).fetchone()
                free = _parse_iso(row[0]) + dt.timedelta(seconds=seconds) if row else now
                return QuotaState(seconds, limit, n, max(0.0, (free - now).total_seconds()))
        return None

    def over_quota(
        self, user: str, action: str, quota: Sequence[tuple[float, int]], at=None
    ) -> QuotaState | None:
        """Has ``user`` used up one of ``quota`` (see :meth:`append`) at ``at`` (now)?"""
        with self._lock:
            return self._retry(lambda: self._over_quota(user, action, utc_iso(at), quota))

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

#: How many hex digits of a value's SHA-256 a placeholder shows.
FINGERPRINT_DIGITS = 6


def fingerprint(text: str) -> str:
    """The first hex digits of the SHA-256 of ``text`` (UTF-8, no salt): what a
    placeholder on the trail shows, so an auditor holding a raw value can confirm it was
    the one typed. A short prefix confirms, it does not identify; but a value of few
    possibilities (a birth date) can be found by trying them all, as with any hash.

    >>> fingerprint("1979-03-14")
    '13d892'
    """
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:FINGERPRINT_DIGITS]


def placeholder(text: str) -> str:
    """What the trail keeps of a value it may not keep: its length and fingerprint.

    >>> placeholder("Wilhelmina")
    '<text:10 chars #6e3dce>'
    """
    return f"<text:{len(text)} chars #{fingerprint(text)}>"


_OUTCOMES = ("success", "failure", "error", "skipped")
# Words of SQL a literal may hold: date parts, time zones, type names, constants.
_SQL_WORDS_TEXT = (
    "century decade year years quarter month months week weeks day days dayofweek dow "
    "dayofyear doy isodow isoyear yearweek hour hours minute minutes second seconds "
    "millisecond milliseconds microsecond microseconds epoch era julian timezone utc gmt "
    "true false null nan inf infinity -infinity varchar text integer int bigint double "
    "float decimal boolean json date time timestamp timestamptz interval uuid blob "
    "asc desc nulls first last"
)
_SQL_WORDS = frozenset(_SQL_WORDS_TEXT.split())
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_INTERVAL_UNIT = (
    r"(?:(?:micro|milli)?seconds?|[mu]?s|secs?|minutes?|mins?|m|hours?|hrs?|h|days?|d|"
    r"weeks?|w|months?|mons?|years?|yrs?|y|quarters?|decades?|centur(?:y|ies))"
)
_INTERVAL = re.compile(
    rf"(?i)(?:[-+]?\d+(?:\.\d+)?\s*{_INTERVAL_UNIT}\s*)+|\d{{1,2}}:\d{{2}}(?::\d{{2}}(?:\.\d+)?)?"
)
_STRFTIME = re.compile(
    r"(?:%-?[A-Za-z%]|[-/:., T_]|\d{1,2})*%-?[A-Za-z](?:%-?[A-Za-z%]|[-/:., T_]|\d{1,2})*"
)
_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ]\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)?"
    r"\s*(?:Z|[+-]\d{2}(?::?\d{2})?|UTC)?",
    re.IGNORECASE,
)
_ID = re.compile(r"(lead|evt|flow|ent|step|inc|run)_[A-Za-z0-9_-]+")
_JSON_PATH = re.compile(r"\$(?:\.[\w-]+|\.\"[^\"]*\"|\[\d+\]|\[\*\]|\.\*)*")
_PATH_PART = re.compile(r"\.\"([^\"]*)\"|\.([\w-]+)")
_WILDCARDS = re.compile(r"[%*]+")


def _catalogue_words() -> frozenset[str]:
    """Event types and their groups, outcomes, field names and metadata keys of the
    catalogue (read each time: a custom type or a declared field may come at any time)."""
    key = (len(catalog.DEFAULT_CATALOG), len(catalog.FIELD_TYPES))
    cached = _catalogue_cache.get(key)
    if cached is not None:
        return cached
    words: set[str] = set(_OUTCOMES) | set(_SQL_WORDS)
    for et in catalog.DEFAULT_CATALOG:
        words.add(et.name)
        words.add(et.category)
        parts = et.name.split(".")
        words.update(".".join(parts[: i + 1]) for i in range(len(parts)))
        words.update(parts)
        words.update(et.required_metadata)
        words.update(et.optional_metadata)
        words.update(et.outcomes)
    words.update(catalog.FIELD_TYPES)
    out = frozenset(w.casefold() for w in words)
    _catalogue_cache.clear()
    _catalogue_cache[key] = out
    return out


_catalogue_cache: dict = {}


@dataclass
class Vocabulary:
    """Text a person may type into a read that names no person: the trail keeps it; any
    other text it keeps as a :func:`placeholder`.

    Known: the catalogue's event types and groups (``recipient.%``), outcomes, field
    names and metadata keys; SQL's date parts and type names; numbers (a long run of
    digits is masked on the trail anyway), intervals and ``strftime`` formats; and,
    given by a Session, its relations and their columns, the store's names and ids of
    flows, entities (sources, buyers), steps and incidents, the keys its documents use,
    lead and event ids that exist, and dates near the store's events (a birth date is
    decades older). JSON paths and LIKE patterns are known when their parts are.

    >>> v = Vocabulary()
    >>> v.keeps("recipient.%"), v.keeps("$.raw_data.first_name"), v.keeps("24 hours")
    (True, True, True)
    >>> v.keeps("1979-03-14"), v.keeps("mary.jones"), v.keeps("Wilhelmina")
    (False, False, False)
    """

    words: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()
    #: the first and last day of the store's events; dates near them are kept
    period: tuple[dt.date, dt.date] | None = None
    #: ``f(ids) -> the ones that exist`` (lead and event ids), asked once per id
    exists: object = None
    #: ``f() -> Vocabulary`` with the store's words, asked once, when a value is not known
    load: object = None
    _seen_ids: dict = field(default_factory=dict, repr=False)
    _loaded: object = field(default=None, repr=False)

    def keeps(self, text: str) -> bool:
        """May the trail keep ``text`` (a literal, a parameter, an argument) as it is?"""
        t = text.strip()
        if len(t) <= 2:  # a separator, a letter: nothing to find a person by
            return True
        if len(t) > 200:
            return False
        if self._shape_known(t):
            return True
        m = _DATE.fullmatch(t)
        if m:
            return self._near_events(m)
        if _ID.fullmatch(t):
            return self._id_known(t)
        folded = t.casefold()
        if self._knows(folded):
            return True
        if t.startswith("$") and _JSON_PATH.fullmatch(t):
            return all(self._knows((a or b).casefold()) for a, b in _PATH_PART.findall(t))
        if "%" in t or "*" in t:
            pieces = [p.strip("._ ") for p in _WILDCARDS.split(folded)]
            return all(not p or self._piece_known(p) for p in pieces)
        return False

    # -- the parts

    @staticmethod
    def _shape_known(t: str) -> bool:
        return bool(
            _NUMBER.fullmatch(t)
            or _INTERVAL.fullmatch(t)
            or (("%" in t) and _STRFTIME.fullmatch(t))
            or not t.strip("%_*")
        )

    def _knows(self, word: str) -> bool:
        """Is ``word`` (case-folded) a word of the catalogue, of the session, of the
        store (whose words are read only when the others do not know it)?"""
        return word in _catalogue_words() or word in self.words or word in self._store().words

    def _store(self) -> Vocabulary:
        """The store's words, read once (only when something typed is not known else)."""
        if self._loaded is None:
            try:
                self._loaded = self.load() if callable(self.load) else Vocabulary()
            except Exception:  # the store's words cannot be read: nothing more is known
                self._loaded = Vocabulary()
        return self._loaded

    def _piece_known(self, piece: str) -> bool:
        """A piece of a LIKE pattern: a word, or the start of an event type's name."""
        if self._knows(piece):
            return True
        return len(piece) >= 3 and any(n.startswith(piece) for n in catalog.DEFAULT_CATALOG.names())

    def _near_events(self, m: re.Match) -> bool:
        try:
            day = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return False
        today = dt.datetime.now(dt.UTC).date()
        period = self.period or self._store().period or (today, today)
        first, last = min(period[0], today), max(period[1], today)
        return first - dt.timedelta(days=3 * 366) <= day <= last + dt.timedelta(days=366)

    def _id_known(self, t: str) -> bool:
        if t in self.ids or t in self._store().ids:
            return True
        exists = self.exists or self._store().exists
        if not t.startswith(("lead_", "evt_")) or not callable(exists):
            return False
        if t not in self._seen_ids:
            if len(self._seen_ids) > 10_000:
                self._seen_ids.clear()
            self._seen_ids[t] = t in exists([t])
        return self._seen_ids[t]

    def mask(self, text: str) -> str:
        """``text`` if the trail may keep it (its long digit runs, phone numbers and such
        masked all the same), else its placeholder."""
        return mask_text(text) if self.keeps(text) else placeholder(text)


_PLAIN = Vocabulary()


# One lexical unit of SQL that may hold text a person typed: a comment (dropped), a
# string constant ('', E'' with backslash escapes, $tag$...$tag$) or a quoted name.
_SQL_OPENING = re.compile(
    r"--|/\*|(?<![\w$])[eE]'|'|\"|\$(?:[A-Za-z_\x80-\U0010ffff][\w\x80-\U0010ffff]*)?\$"
)


def _close_quote(query: str, i: int, quote: str, backslash: bool) -> tuple[int, int]:
    """Where the body of a constant opened before ``i`` ends, and where its closing
    quote ends (a doubled quote is one quote; with ``backslash``, ``\\'`` too); both
    the end of the text when it is not closed."""
    n = len(query)
    while i < n:
        c = query[i]
        if backslash and c == "\\":
            i += 2
            continue
        if c == quote:
            if i + 1 < n and query[i + 1] == quote:
                i += 2
                continue
            return i, i + 1
        i += 1
    return n, n


def _close_comment(query: str, i: int) -> int:
    """Past the ``*/`` closing a block comment opened before ``i`` (they nest)."""
    depth, n = 1, len(query)
    while i < n and depth:
        if query.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif query.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i


def mask_sql_text(query: str, vocabulary: Vocabulary | None = None) -> str:
    """SQL text as the audit trail keeps it: comments dropped; every string constant
    (``'...'``, ``E'...'``, ``$$...$$``) and every quoted name kept only when the
    ``vocabulary`` knows it, else a :func:`placeholder`; in what is kept, digit runs,
    phone numbers, SSNs, emails and IP addresses masked (``masking.mask_text``).

    >>> mask_sql_text("SELECT * FROM events WHERE lead_snapshot->>'first_name' = 'Wilhelmina'")
    "SELECT * FROM events WHERE lead_snapshot->>'first_name' = '<text:10 chars #6e3dce>'"
    >>> mask_sql_text("SELECT count(*) FROM events -- 1979-03-14\\nWHERE type LIKE 'recipient.%'")
    "SELECT count(*) FROM events \\nWHERE type LIKE 'recipient.%'"
    """
    vocab = vocabulary or _PLAIN
    out, i, n = [], 0, len(query)
    while i < n:
        m = _SQL_OPENING.search(query, i)
        if m is None:
            out.append(mask_text(query[i:]))
            break
        out.append(mask_text(query[i : m.start()]))
        opening = m.group(0)
        if opening == "--":
            end = query.find("\n", m.end())
            i = n if end < 0 else end
            continue
        if opening == "/*":
            i = _close_comment(query, m.end())
            out.append(" ")
            continue
        if opening.startswith("$"):
            end = query.find(opening, m.end())
            stop = n if end < 0 else end + len(opening)
            value, close = query[m.end() : end if end >= 0 else n], opening
        else:
            quote = opening[-1]
            end, stop = _close_quote(query, m.end(), quote, backslash=len(opening) == 2)
            value = query[m.end() : end].replace(quote * 2, quote)
            if len(opening) == 2:
                value = re.sub(r"\\(.)", r"\1", value)
            close = quote
        if vocab.keeps(value):
            out.append(mask_text(query[m.start() : stop]))
        else:
            out.append(opening + placeholder(value) + close)
        i = stop
    return "".join(out)


#: a list parameter longer than this is kept on the trail as its first LIST_SHOWN values
#: and a count (an explorer filter may pass thousands of lead ids)
LONG_LIST, LIST_SHOWN = 50, 5


def mask_params(params, vocabulary: Vocabulary | None = None):
    """Query parameters (or call arguments) as the trail keeps them: text by the
    ``vocabulary`` (see :func:`mask_sql_text`), numbers as the masking of documents
    would show them, times near the store's events as they are."""
    vocab = vocabulary or _PLAIN
    if isinstance(params, Mapping):
        return {_mask_key(str(k), vocab): mask_params(v, vocab) for k, v in params.items()}
    if isinstance(params, list | tuple):
        if len(params) > LONG_LIST:  # a list of lead ids behind a filter: its start, its size
            shown = [mask_params(v, vocab) for v in params[:LIST_SHOWN]]
            # each value with its length first, so no two lists give the same text
            rest = "".join(f"{len(t)}:{t}" for t in map(str, params[LIST_SHOWN:]))
            more = f"<... {len(params) - LIST_SHOWN:,} more values #{fingerprint(rest)}>"
            return [*shown, more]
        return [mask_params(v, vocab) for v in params]
    if isinstance(params, str):
        return vocab.mask(params)
    if params is None or isinstance(params, bool | int | float):
        return mask_document(params)
    if isinstance(params, dt.datetime | dt.date | pd.Timestamp):
        text = params.isoformat()
        return text if vocab.keeps(text) else placeholder(text)
    return vocab.mask(str(params))


def _mask_key(key: str, vocab: Vocabulary) -> str:
    """A parameter's name: a word a person chose, kept when it is a plain name."""
    return (
        key
        if re.fullmatch(r"[A-Za-z_]\w{0,30}", key) and not _ID.fullmatch(key)
        else vocab.mask(key)
    )
