"""Sessions: every read a person sees goes through one, masked by role, unmasked only on
purpose and for minutes, and recorded on an append-only audit trail.

``connect(store_or_path, user=..., role=...)`` checks the user and role against the
access config (``config.py``) and returns a :class:`Session`. Its reads (``timeline``,
``events``, ``sql``, ``lead_summary``, ``quarantined``, ``export``, ``find_leads``) run
on cursors of their own, whose views (``events``, ``lead_summary``, ``steps``,
``entities``, ``flows``, ``incidents``, ``quarantine``) mask PII by the catalogue's
field types and by the shape of values (``masking.py``); user SQL may read only those
views (``sandbox.py``). Masking is a function per column, so a query that touches no
``metadata``, ``lead_snapshot`` or free-text column costs what it costs on the raw
store. A compliance officer or admin may ``unmask(purpose=..., minutes=...)``: reads then
run on raw views until the grant expires. Every read, search, export, refusal and grant
lands on the audit trail (``audit.py``), which admins read with ``audit()``.

A session reads a consistent snapshot on its own cursors, so a notebook may read while
another thread appends to the same store (a live simulation): reads never wait for the
writer and never see half a batch.

>>> import workbench
>>> store = workbench.open_store()
>>> session = connect(store, user="ana", role="analyst")
>>> session.sql("SELECT count(*) AS n FROM events").n[0]
np.int64(0)
>>> session.mask_value("email", "john@example.com")
'j***@example.com'
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import math
import os
import threading
import uuid
import weakref
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pandas as pd

from ..errors import InputError, ReadOnlyViolation
from ..store import EventStore
from ..store.connection import Connection
from ..store.queries import decode, events_query, timeline_query
from ..store.schema import export_select
from ..store.sqlcheck import inspect
from ..store.tiers import EXPORT_FORMATS, check_target, write_query
from ..timeutil import as_utc, utc_iso
from . import columns, masking, search
from .audit import (
    AuditError,
    AuditTrail,
    AuditVerifyReport,
    Vocabulary,
    mask_params,
    mask_sql_text,
    placeholder,
)
from .config import (
    AccessConfig,
    GrantError,
    NotPermittedError,
    QueryError,
    RelationNotAllowedError,
    Role,
    SearchLimitError,
    SessionClosedError,
)
from .grants import Grant, escape_controls, purpose_problem, visible_text
from .sandbox import problems
from .views import SESSION_RELATIONS, MaskedViews

__all__ = ["Session", "Grant", "SESSION_RELATIONS"]

_RIGHT_WORDS = {
    "read": "read events",
    "search": "search leads by a raw value",
    "export": "export events",
    "unmask": "unmask PII",
    "audit": "read the audit trail",
}


# --------------------------------------------------------------------------- session

_session_ids = itertools.count(1)


def _release(cursors, udfs, sandbox, trail_to_close, store_to_close) -> None:
    """Close a session's cursors (removing its functions first), sandbox, trail, store."""
    masked = cursors[0]
    for name in udfs:
        with contextlib.suppress(duckdb.Error, ValueError, RuntimeError):
            masked.raw.remove_function(name)
    for con in cursors:
        with contextlib.suppress(duckdb.Error):
            con.close()
    with contextlib.suppress(duckdb.Error):
        sandbox.close()
    if trail_to_close is not None:
        trail_to_close.close()
    if store_to_close is not None:
        store_to_close.close()


class Session:
    """A user's reads of one store, in one role (see :func:`connect`).

    The one door every read a person makes passes through, so its methods are the
    reads themselves; each is a few lines over the views (``views``), the sandbox, the
    search and the audit trail, which do the work. That is why the class is long."""

    def __init__(
        self,
        store: EventStore,
        *,
        user: str,
        role: Role,
        config: AccessConfig,
        trail: AuditTrail,
        owns_store: bool = False,
        owns_trail: bool = True,
        client: str | None = None,
    ):
        self.user = user
        self.role = role.name
        self._role = role
        self._config = config
        self._store = store
        self._trail = trail
        self._lock = threading.RLock()
        self.id = f"{os.getpid()}-{next(_session_ids)}-{uuid.uuid4().hex[:6]}"
        self._grant: Grant | None = None
        self._grant_purpose: str | None = None  # the grant's purpose as the trail keeps it
        self._clock = lambda: dt.datetime.now(dt.UTC)
        self._views = MaskedViews(store, uuid.uuid4().hex[:10])
        # what the trail may keep of what this session's user types (the store's words
        # are read once, the first time a value is not known otherwise)
        self._vocabulary = Vocabulary(load=self._views.vocabulary)
        # the two cursors (masked views, raw views) and the sandbox user SQL is bound in
        self._masked_con, self._raw_con = self._views.masked, self._views.raw
        self._sandbox, self._db = self._views.sandbox, self._views.db
        self._finalizer = weakref.finalize(
            self,
            _release,
            (self._masked_con, self._raw_con),
            tuple(self._views.fn.values()),
            self._sandbox,
            trail if owns_trail else None,
            store if owns_store else None,
        )
        store.on_close(self._finalizer)
        try:
            via = f" via {client}" if client else ""
            self._record("connect", detail=f"{self._store_label()} as {self.role}{via}")
        except BaseException:
            self._finalizer()
            raise

    # ------------------------------------------------------------------ basics

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("masked" if self.masked else "UNMASKED")
        return f"<Session {self.user} as {self.role} on {self._store_label()} ({state})>"

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """End the session (an open grant ends with it); a store opened by connect()
        from a path is closed too."""
        with self._lock:
            if self._finalizer.alive:
                if self._active_grant() is not None:
                    self._revoke(self._grant)
                self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    @property
    def rights(self) -> frozenset[str]:
        """What this session's role may do (see :data:`RIGHTS`)."""
        return self._role.rights

    @property
    def masked(self) -> bool:
        """True unless an unmask grant is active: reads show PII masked."""
        return self._active_grant() is None

    @property
    def grant(self) -> Grant | None:
        """The active unmask grant, or None."""
        return self._active_grant()

    @property
    def relations(self) -> tuple[str, ...]:
        """The names ``sql()`` may read."""
        return SESSION_RELATIONS

    @property
    def store(self) -> EventStore:
        """The store this session reads (its raw methods are for its owner, not people)."""
        return self._store

    def _store_label(self) -> str:
        return str(self._store.path) if self._store.path is not None else "memory"

    def _now(self) -> dt.datetime:
        return self._clock()

    def _check_open(self) -> None:
        if self.closed:
            raise SessionClosedError("this session is closed; connect() again to read")
        if self._store.closed:
            self._finalizer()
            raise SessionClosedError(
                "the store of this session was closed; open it and connect() again"
            )

    def _require(self, right: str, action: str) -> None:
        if not self._role.can(right):
            holders = [r.name for r in self._config.roles.values() if r.can(right)]
            self._record(action, outcome="refused", detail=f"role {self.role} lacks {right!r}")
            raise NotPermittedError(
                f"the role {self.role!r} may not {_RIGHT_WORDS[right]}; "
                f"roles that may: {', '.join(holders) or 'none'}"
            )

    def _con(self) -> Connection:
        """The cursor reads run on: masked views, or raw ones while a grant is active."""
        self._check_open()
        self._views.current()
        return self._masked_con if self.masked else self._raw_con

    # ------------------------------------------------------------------ grants

    def _active_grant(self) -> Grant | None:
        g = self._grant
        if g is None:
            return None
        if self._now() >= g.expires_at:
            self._grant = None
            self._record(
                "expire",
                masked=True,
                purpose=self._grant_purpose,
                detail=f"grant of {g.minutes:g} min expired at {utc_iso(g.expires_at)}",
            )
            return None
        return g

    def unmask(self, purpose: str, minutes: float = 15) -> Grant:
        """Read raw PII for ``minutes``, for a stated ``purpose`` (compliance and admin).

        Every read while the grant is active is recorded as a raw read with the purpose.

        >>> session = connect(open_store(), user="cora", role="compliance")
        >>> session.unmask(purpose="ticket 4711: customer data request", minutes=10).minutes
        10.0
        """
        with self._lock:
            self._check_open()
            self._require("unmask", "unmask")
            visible = visible_text(purpose) if isinstance(purpose, str) else ""
            problem = purpose_problem(visible) if isinstance(purpose, str) else "it is no text"
            if problem:
                self._record(
                    "unmask",
                    outcome="refused",
                    purpose=_purpose_on_record(purpose) if isinstance(purpose, str) else None,
                    detail=f"no purpose stated: {problem}",
                )
                shown = repr(purpose) if len(repr(purpose)) <= 60 else repr(purpose)[:57] + "..."
                raise GrantError(
                    f"purpose={shown}: {problem}. State why you need raw PII in words, at least "
                    "10 visible characters (control characters, terminal escape sequences and "
                    "zero-width characters do not count), e.g. "
                    "'ticket 4711: customer asked for their data'"
                )
            limit = self._role.max_unmask_minutes
            ok_number = isinstance(minutes, int | float) and not isinstance(minutes, bool)
            if not ok_number or not 0 < minutes <= limit:
                self._record("unmask", outcome="refused", detail=f"minutes={minutes!r}")
                raise GrantError(
                    f"minutes={minutes!r}: a grant lasts more than 0 and at most {limit:g} "
                    f"minutes for the role {self.role!r}"
                )
            now = self._now()
            if self._active_grant() is not None:
                self._revoke(self._grant, reason="replaced by a new grant")
            grant = Grant(
                self.user,
                self.role,
                visible,
                float(minutes),
                now,
                now + dt.timedelta(minutes=minutes),
                weakref.ref(self),
            )
            self._grant_purpose = _purpose_on_record(purpose)
            self._record(
                "unmask",
                masked=False,
                purpose=self._grant_purpose,
                detail=f"raw reads for {minutes:g} min, until {utc_iso(grant.expires_at)}",
            )
            self._grant = grant
            return grant

    def _revoke(self, grant: Grant, reason: str = "revoked") -> None:
        with self._lock:
            if self._grant is grant:
                self._grant = None
                self._record("revoke", masked=True, purpose=self._grant_purpose, detail=reason)

    # ------------------------------------------------------------------ audit

    def _record(
        self,
        action: str,
        *,
        outcome: str = "ok",
        masked: bool | None = None,
        purpose: str | None = None,
        detail: str | None = None,
        lead_ids=None,
        rows: int | None = None,
        quota=(),
    ) -> dict:
        """Append a record of this session (and return it); ``detail`` is masked as free
        text unless its maker masked it already (a :class:`_Masked` text: SQL, search
        values). ``quota`` as for ``AuditTrail.append``."""
        grant = self._grant
        if masked is None:
            masked = grant is None
        if purpose is None and not masked and grant is not None:
            purpose = self._grant_purpose
        return self._trail.append(
            user=self.user,
            role=self.role,
            action=action,
            outcome=outcome,
            masked=masked,
            purpose=purpose,
            detail=detail
            if detail is None or isinstance(detail, _Masked)
            else masking.mask_free_text(detail),
            lead_ids=lead_ids,
            rows=rows,
            store=self._store_label(),
            session=self.id,
            at=self._now(),
            quota=quota,
        )

    def _read(self, action: str, detail, run, *, lead_ids=None, relation=None):
        """Run one read on the masked or raw views (in one snapshot), recorded on the
        trail either way. ``detail`` is the text of the record, or a function of the
        rows read (None when the read failed) that gives it.

        With ``relation``, a masked read runs on the raw view and masks the rows in
        Python with the view's own rules: for the few rows of a timeline this saves the
        per-call cost of DuckDB's Python functions."""
        with self._lock:
            self._check_open()
            self._require("read", action)
            con = self._con()
            masked = con is self._masked_con
            try:
                if masked and relation is not None:
                    with self._raw_con.snapshot():
                        df = self._views.mask_rows(relation, run(self._raw_con))
                else:
                    with con.snapshot():
                        df = run(con)
            except duckdb.Error as e:
                msg = masking.mask_free_text(str(e).strip().splitlines()[0])
                if masked and relation is not None:
                    msg = "(message withheld: it may quote a raw value)"
                text = detail(None) if callable(detail) else detail
                self._record(action, outcome="failed", masked=masked, detail=text)
                raise QueryError(f"{action} failed: {msg}") from None
            if lead_ids is None:
                lead_ids = _lead_ids(df, 100 if masked else 10_000)
            text = detail(df) if callable(detail) else detail
            self._record(action, masked=masked, detail=text, lead_ids=lead_ids, rows=len(df))
            return df

    def _typed(self, value):
        """A value a person gave a read, as the trail keeps it (see ``audit.Vocabulary``)."""
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return self._vocabulary.mask(value)
        if isinstance(value, list | tuple | set | frozenset):
            return [self._typed(v) for v in value]
        return mask_params(value, self._vocabulary)

    def _refuse_invalid_text(self, action: str, detail, *values) -> None:
        """Refuse (on the record) a read given text that is not valid Unicode: a lone
        surrogate cannot be encoded, so no query, search or record could hold it."""
        where = search.invalid_text(values)
        if where is None:
            return
        text = detail() if callable(detail) else detail
        note = f"{text} (invalid text: {where})"
        self._record(
            action, outcome="refused", detail=_Masked(note) if isinstance(text, _Masked) else note
        )
        raise InputError(
            f"{action}: {where} holds a lone surrogate (a half of a UTF-16 pair, e.g. "
            "'\\ud800'), which is not text; give the value as valid Unicode"
        )

    def audit(
        self,
        user: str | None = None,
        action: str | None = None,
        since=None,
        until=None,
        lead_id: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Audit records (admins): who, role, when (UTC), action, purpose, what, rows.

        >>> store = open_store()
        >>> connect(store, user="ana").close()
        >>> connect(store, user="adam", role="admin").audit().action.tolist()
        ['connect', 'connect']
        """
        with self._lock:
            self._check_open()
            self._require("audit", "audit")
            df = self._trail.read(
                user=user,
                action=action,
                since=None if since is None else utc_iso(as_utc(since, "since")),
                until=None if until is None else utc_iso(as_utc(until, "until")),
                lead_id=lead_id,
                limit=limit,
            )
            filters = _call("audit", user=user, action=action, since=since, until=until)
            self._record("audit", detail=filters, rows=len(df))
            return df

    def verify_audit(self, expect: str | None = None) -> AuditVerifyReport:
        """Recompute the audit trail's hash chain (admins): did anyone change, remove or
        add a record? ``expect`` is a head kept from an earlier check."""
        with self._lock:
            self._check_open()
            self._require("audit", "verify_audit")
            report = self._trail.verify(expect=expect)
            self._record("verify_audit", detail=str(report).splitlines()[0], rows=report.records)
            return report

    # ------------------------------------------------------------------ reads

    def sql(self, query: str, params=None) -> pd.DataFrame:
        """Run one read-only SELECT over the session's views and return a DataFrame.

        ``events``, ``lead_summary``, ``steps``, ``entities``, ``flows``, ``incidents``
        and ``quarantine`` may be read, by their bare names; PII in them is masked unless
        a grant is active. ``SHOW TABLES`` lists them; ``DESCRIBE events`` shows a
        relation's columns. Pass values as ``params`` (``?`` or ``$name``).

        >>> session.sql("SELECT type, count(*) AS n FROM events GROUP BY type")  # doctest: +SKIP
        """
        with self._lock:
            self._check_open()
            detail = mask_sql_text(str(query), self._vocabulary)
            if params is not None:
                detail += f"  params={mask_params(params, self._vocabulary)!r}"
            detail = _Masked(detail)
            self._require("read", "sql")
            self._refuse_invalid_text("sql", detail, query, params)
            try:
                shape = inspect(query)
            except ReadOnlyViolation:
                self._record("sql", outcome="refused", detail=detail)
                raise
            if shape.show in ("tables", "all_tables"):
                return self._show_tables(detail, shape.show)
            bad = problems(shape, frozenset(SESSION_RELATIONS))
            if shape.show is not None and shape.show not in SESSION_RELATIONS:
                bad.append(f"SHOW {shape.show.upper()} is not available in a session")
            if bad:
                self._record("sql", outcome="refused", detail=detail)
                raise RelationNotAllowedError("refused: " + "; ".join(bad))
            self._con()  # the views, and the sandbox's copy of their shapes, are current
            try:
                self._sandbox.bind(shape.statement)
            except RelationNotAllowedError:
                self._record("sql", outcome="refused", detail=detail)
                raise
            except QueryError as e:
                self._record("sql", outcome="failed", detail=detail)
                raise QueryError(masking.mask_free_text(str(e))) from None
            statement = shape.statement

            def run(con):
                return con.df(statement, params) if params is not None else con.df(statement)

            return self._read("sql", detail, run)

    def _show_tables(self, detail: str, kind: str) -> pd.DataFrame:
        """``SHOW TABLES`` in a session: its relations, nothing of the raw schema."""
        self._con()
        if kind == "tables":
            df = pd.DataFrame({"name": list(SESSION_RELATIONS)})
        else:
            df = pd.DataFrame(
                {
                    "name": list(SESSION_RELATIONS),
                    "column_names": [list(self._views.kinds[r]) for r in SESSION_RELATIONS],
                }
            )
        self._record("sql", detail=detail, rows=len(df))
        return df

    def timeline(self, lead_id: str) -> pd.DataFrame:
        """Every event of one lead, in (timestamp, seq) order, metadata as (masked) dicts.

        >>> session.timeline("lead_5T8nK3mP9Q2wR7xN").type.tolist()[:2]   # doctest: +SKIP
        ['source.submitted', 'source.accepted']
        """
        db = self._db

        def run(con):
            q, params = timeline_query(self._raw_con, lead_id, db)
            if q is None:
                return decode(con.df("SELECT * FROM events LIMIT 0"))
            return decode(con.frame(q, params))

        def detail(df=None):
            # an id that names a lead of the store is kept; any other text is not
            found = df is not None and len(df) > 0
            return _call("timeline", lead_id if found else self._typed(lead_id))

        with self._lock:
            self._refuse_invalid_text("timeline", detail, lead_id)
            return self._read("timeline", detail, run, relation="events")

    def events(
        self,
        type: str | Sequence[str] | None = None,
        outcome: str | Sequence[str] | None = None,
        lead_id: str | None = None,
        entity_id: str | None = None,
        flow_id: str | None = None,
        since=None,
        until=None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Events matching every filter given, in (timestamp, seq) order (as the store's).

        >>> session.events(type="recipient.*", limit=10)                  # doctest: +SKIP
        """
        q, params = events_query(type, outcome, lead_id, entity_id, flow_id, since, until, limit)

        def detail(df=None):
            found = df is not None and len(df) > 0  # a lead_id that matched is a lead's id
            return _call(
                "events",
                type=self._typed(type),
                outcome=self._typed(outcome),
                lead_id=lead_id if found or lead_id is None else self._typed(lead_id),
                entity_id=self._typed(entity_id),
                flow_id=self._typed(flow_id),
                since=None if since is None else self._typed(utc_iso(as_utc(since, "since"))),
                until=None if until is None else self._typed(utc_iso(as_utc(until, "until"))),
                limit=limit,
            )

        with self._lock:
            self._refuse_invalid_text("events", detail, type, outcome, lead_id, entity_id, flow_id)
            return self._read(
                "events", detail, lambda con: decode(con.df(q, params)), relation="events"
            )

    def lead_summary(self, lead_id: str | None = None) -> pd.DataFrame:
        """The per-lead summary (source, stage reached, outcome, cost, revenue).

        >>> session.lead_summary().outcome.value_counts()                 # doctest: +SKIP
        """
        if lead_id is None:
            q, params = "SELECT * FROM lead_summary ORDER BY first_seen, lead_id", []
        else:
            q, params = "SELECT * FROM lead_summary WHERE lead_id = ?", [lead_id]

        def detail(df=None):
            found = df is not None and len(df) > 0
            return _call("lead_summary", lead_id if found else self._typed(lead_id))

        with self._lock:
            self._refuse_invalid_text("lead_summary", detail, lead_id)
            return self._read("lead_summary", detail, lambda con: con.df(q, params))

    def quarantined(self, limit: int | None = None) -> pd.DataFrame:
        """Events the store could not take, with reason, origin and (masked) raw text.

        >>> session.quarantined(limit=5)                                   # doctest: +SKIP
        """
        q, params = "SELECT * FROM quarantine ORDER BY qid", []
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise ValueError(f"limit must be a whole number >= 0, got {limit!r}")
            q += " LIMIT ?"
            params.append(limit)
        detail = _call("quarantined", limit=limit)
        return self._read("quarantined", detail, lambda con: con.df(q, params))

    def owned_paths(self) -> set[Path]:
        """Files no export of this session may write: the store's, and its audit trail."""
        owned = set(self._store.owned_paths())
        if self._trail.path is not None:
            t = self._trail.path
            owned |= {t, *(t.with_name(t.name + s) for s in ("-wal", "-shm", "-journal", ".head"))}
        return owned

    def export(self, path, *, format: str | None = None) -> int:
        """Write the events this session sees (hot and warm tiers) to Parquet or JSONL,
        masked unless a grant is active. Returns the number of events. The file is
        written whole or not at all, and never onto a file of the store.

        >>> session.export("out/events.parquet")                           # doctest: +SKIP
        25
        """
        p = Path(path)
        with self._lock:
            self._check_open()
            self._require("export", "export")
            try:
                p = check_target(p, self.owned_paths())
            except (PermissionError, ValueError) as e:
                self._record("export", outcome="refused", detail=f"export to {p}: {e}")
                raise
            fmt = format or EXPORT_FORMATS.get(p.suffix.lower())
            if fmt not in ("parquet", "jsonl"):
                raise ValueError(
                    f"cannot tell the export format of {p}: use .parquet or .jsonl, or format="
                )
            sel = "SELECT * FROM events ORDER BY seq" if fmt == "parquet" else export_select()

            def run(con):
                n = write_query(con, sel, None, p, fmt)
                return pd.DataFrame(index=range(n))

            df = self._read("export", f"export to {p} ({fmt})", run, lead_ids=[])
            return len(df)

    def find_leads(self, email=None, phone=None, ssn=None, **fields) -> list[str]:
        """The ids of leads whose data holds every raw value given (nothing else is shown).

        Values are compared whole, normalised by their field type (case of emails and
        names, punctuation of phone numbers and SSNs): a prefix or part of a value finds
        nothing. Any PII field name of the catalogue may be given, e.g.
        ``first_name="John"``. A user may search ``max_searches_per_minute`` times a
        minute and ``max_searches_per_day`` times a day (their role's, counted on the
        audit trail over all their sessions, refused searches included); every search is
        audited with the values masked.

        >>> session.find_leads(email="john@example.com")                   # doctest: +SKIP
        ['lead_5T8nK3mP9Q2wR7xN']
        """
        criteria = dict(email=email, phone=phone, ssn=ssn, **fields)
        criteria = {k: v for k, v in criteria.items() if v is not None}
        with self._lock:
            self._check_open()
            self._require("search", "find_leads")
            typed, shown, problem = search.search_terms(
                criteria, self._vocabulary.keeps, self._typed
            )
            detail = _Masked("find_leads(" + ", ".join(shown) + ")")
            quota = (
                (60, self._role.max_searches_per_minute),
                (86_400, self._role.max_searches_per_day),
            )
            over = self._trail.over_quota(self.user, "find_leads", quota, at=self._now())
            if over is not None:
                note = f"refused: {over.limit} in {over.label} used up"
                self._record("find_leads", outcome="refused", detail=_Masked(f"{detail} ({note})"))
                raise self._search_limit(over)
            if problem is not None:
                self._record(
                    "find_leads", outcome="refused", detail=_Masked(f"{detail} ({problem[0]})")
                )
                raise problem[1]
            result = sorted(self._search(typed))
            # the quota is checked again where the record is appended: searches made at
            # once from other sessions or processes cannot both pass it
            rec = self._record(
                "find_leads", detail=detail, lead_ids=result, rows=len(result), quota=quota
            )
            if rec.get("over_quota") is not None:
                raise self._search_limit(rec["over_quota"])  # the result is not shown
            return result

    def _search(self, typed: dict) -> set[str]:
        """The leads holding every (field type, normalised value) of ``typed``, raw."""
        self._con()  # views up to date
        found: set[str] | None = None
        with self._raw_con.snapshot():
            for ft, norm in typed.values():
                leads = search.leads_with(self._raw_con, ft, norm)
                found = leads if found is None else found & leads
        return found or set()

    def leads_where(self, field: str, value) -> list[str]:
        """The leads whose data, as submitted, has the non-personal ``field`` equal to
        ``value`` (e.g. ``leads_where("state", "TX")``): what the masked ``events`` view
        shows alike, found without masking every snapshot. A personal field (email,
        phone, name...) is searched with :meth:`find_leads` instead (whole values,
        limited, audited); a value that looks personal is refused.

        >>> session.leads_where("state", "TX")[:2]                        # doctest: +SKIP
        ['lead_0Bq...', 'lead_1cX...']
        """
        path, text = search.lead_field_value(field, value)  # refused: InputError
        with self._lock:
            self._check_open()
            self._require("read", "leads_where")
            self._con()  # views up to date
            with self._raw_con.snapshot():
                rows = self._raw_con.rows(search.LEADS_WHERE_SQL, {"path": path, "value": text})
            result = sorted(r[0] for r in rows)
            label = field if self._vocabulary.keeps(field) else placeholder(field)
            shown = text if self._vocabulary.keeps(text) else placeholder(text)
            self._record("leads_where", detail=f"leads_where({label}={shown!r})", rows=len(result))
            return result

    def _search_limit(self, over) -> SearchLimitError:
        return SearchLimitError(
            f"search limit reached: user {self.user!r} may search by raw value "
            f"{over.limit} times {over.label} (over all their sessions, refused searches "
            f"included); try again in {math.ceil(over.wait)} s"
        )

    # ------------------------------------------------------------------ masking helpers

    def mask_value(self, field_name, value):
        """``value`` masked as a value of ``field_name`` (a field name, type label or
        FieldType) when this session reads masked; unchanged during a grant.

        >>> session = connect(open_store(), user="ana")
        >>> session.mask_value("phone", "5125551234")
        '(512) ***-****'
        """
        if not self.masked:
            return value
        return masking.mask_value(field_name, value)

    def mask_text(self, text):
        """Free text with emails, phone numbers, SSNs and IP addresses masked (when masked).

        >>> connect(open_store(), user="ana").mask_text("call 512-555-1234")
        'call (512) ***-****'
        """
        if not self.masked or not isinstance(text, str):
            return text
        return masking.mask_free_text(text)

    def mask_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``df`` with every value masked by its column's field type, JSON and
        dict values by their keys, and text by its shape (when this session reads masked).

        >>> session = connect(open_store(), user="ana")
        >>> session.mask_frame(pd.DataFrame({"email": ["john@example.com"]})).email[0]
        'j***@example.com'
        """
        if not self.masked:
            return df
        return columns.mask_frame(df)


# --------------------------------------------------------------------------- helpers


def _lead_ids(df: pd.DataFrame, cap: int) -> list[str] | None:
    if "lead_id" not in df.columns or df.empty:
        return None
    ids = pd.unique(df["lead_id"].dropna())
    return [str(x) for x in ids[:cap]]


class _Masked(str):
    """Text for the trail that its maker has masked (the trail keeps it as it is)."""

    __slots__ = ()


def _purpose_on_record(purpose: str) -> str:
    """A purpose as the trail keeps it: as given, PII masked, control characters escaped
    (so printing the trail cannot drive a terminal), at most 500 characters."""
    text = escape_controls(masking.mask_free_text(purpose))
    return text if len(text) <= 500 else text[:497] + "..."


def _call(name: str, *args, **kwargs) -> str:
    parts = [repr(a) for a in args]
    parts += [f"{k}={v!r}" for k, v in kwargs.items() if v is not None]
    return f"{name}({', '.join(parts)})"


__all__ += ["AuditError", "mask_sql_text"]
