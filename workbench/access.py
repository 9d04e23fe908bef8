"""Sessions: every read a person sees goes through one, masked by role, unmasked only on
purpose and for minutes, and recorded on an append-only audit trail.

``connect(store_or_path, user=..., role=...)`` checks the user and role against the
access config (roles and their rights, users and the roles they may take) and returns a
:class:`Session`. Its reads (``timeline``, ``events``, ``sql``, ``lead_summary``,
``quarantined``, ``export``, ``find_leads``) run on a DuckDB cursor of the store whose
views (``events``, ``lead_summary``, ``steps``, ``entities``, ``flows``, ``incidents``,
``quarantine``) mask PII by the catalogue's field types; user SQL may read only those
views (see ``_sessionsql``). Masking is a function per column, so a query that does not
touch ``metadata``, ``lead_snapshot`` or a free-text column costs what it costs on the raw
store. A compliance officer or admin may ``unmask(purpose=..., minutes=...)``: reads then
run on raw views until the grant expires. Every read, search, export, refusal and grant
lands on the audit trail (``<store>.audit.sqlite``), which admins read with ``audit()``.

Users and roles: a user is a name listed in the access config with the roles they may
take; ``connect`` refuses an unknown user, an unknown role, or a role the user was not
given. The built-in config (:data:`DEFAULT_ROLES`, :data:`DEFAULT_USERS`: ``ana`` analyst,
``tess`` trainee, ``cora`` compliance, ``adam`` admin) serves the sample store, notebooks
and tests; a deployment lists its own users in YAML (``$WORKBENCH_ACCESS_CONFIG``, or
``<store>.access.yaml`` beside the store)::

    roles:                       # merged over the built-in roles
      auditor: {rights: [read, audit]}
    users:                       # replaces the built-in users
      alice: [analyst, auditor]  # the first role is the default
      bob: [compliance]

The config guards against accidents and makes every read accountable; it is not a
barrier against someone who runs Python with access to the store file.

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
import json
import os
import re
import threading
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
from duckdb.sqltypes import VARCHAR, DuckDBPyType

from . import _masking, _sessionsql, catalog
from ._audit import AuditError, AuditTrail, AuditVerifyReport, utc_iso
from ._sqlguard import ReadOnlyViolation, check_read_only
from .catalog import FieldType, field_type
from .store import (
    EventStore,
    StoreError,
    _as_utc,
    _decode,
    _events_query,
    _sql_str,
    _timeline_query,
    open_store,
)

__all__ = [
    "connect",
    "Session",
    "Grant",
    "Role",
    "AccessConfig",
    "load_access_config",
    "RIGHTS",
    "DEFAULT_ROLES",
    "DEFAULT_USERS",
    "SESSION_RELATIONS",
    "AccessError",
    "AccessConfigError",
    "UnknownUserError",
    "UnknownRoleError",
    "RoleNotGrantedError",
    "NotPermittedError",
    "RelationNotAllowedError",
    "GrantError",
    "QueryError",
    "SessionClosedError",
    "AuditError",
    "AuditVerifyReport",
]

# --------------------------------------------------------------------------- config

#: What a role may do: read (masked unless a grant is active), search by a raw value,
#: export, unmask (with a purpose, for minutes), read the audit trail.
RIGHTS = ("read", "search", "export", "unmask", "audit")

#: The built-in roles; a config file may add roles or redefine these.
DEFAULT_ROLES: dict[str, dict] = {
    "analyst": {
        "rights": ["read", "search", "export"],
        "description": "explores events and answers questions; sees PII masked",
    },
    "trainee": {
        "rights": ["read", "search"],
        "description": "works through exercises and drills; sees PII masked, cannot export",
    },
    "compliance": {
        "rights": ["read", "search", "export", "unmask"],
        "max_unmask_minutes": 60,
        "description": "sees raw PII with a stated purpose, for a limited time, on the record",
    },
    "admin": {
        "rights": ["read", "search", "export", "unmask", "audit"],
        "max_unmask_minutes": 60,
        "description": "may do what compliance does, and read the audit trail",
    },
}

#: The built-in users (for the sample store, notebooks and tests); a config file that
#: lists ``users`` replaces them.
DEFAULT_USERS: dict[str, list[str]] = {
    "ana": ["analyst"],
    "tess": ["trainee"],
    "cora": ["compliance"],
    "adam": ["admin"],
}

ENV_CONFIG = "WORKBENCH_ACCESS_CONFIG"
ENV_USER = "WORKBENCH_USER"

#: The relations a Session's SQL may read, each a masked view (or raw during a grant).
#: A new table of the store becomes readable by adding its name here (and the names of its
#: text columns that hold no PII to ``_PLAIN_COLUMNS``; other text columns are masked).
SESSION_RELATIONS = (
    "events",
    "lead_summary",
    "steps",
    "entities",
    "flows",
    "incidents",
    "quarantine",
)

# Text columns that hold identifiers or names of flows, steps and entities, never PII:
# they pass unmasked so analyses that group by them cost nothing. Every other text or
# JSON column (and any column a schema change adds) is masked.
_PLAIN_COLUMNS = {
    "events": {
        "event_id",
        "type",
        "lead_id",
        "flow_id",
        "entity_id",
        "step_id",
        "outcome",
        "step_name",
        "entity_name",
        "feedback_type",
    },
    "lead_summary": {
        "lead_id",
        "flow_id",
        "source",
        "source_id",
        "stage",
        "outcome",
        "final_outcome",
        "recipient",
    },
    "steps": {"step_id", "flow_id", "kind", "name", "entity_id"},
    "entities": {"entity_id", "name", "kind"},
    "flows": {"flow_id", "name"},
    "incidents": {"incident_id", "name", "entity", "entity_id", "run_id"},
    "quarantine": set(),  # unvalidated input: every text column is masked
}


# --------------------------------------------------------------------------- errors


class AccessError(PermissionError):
    """A read or an action the session's user or role may not do."""


class AccessConfigError(ValueError):
    """An access config (roles, rights, users) that cannot be used."""


class UnknownUserError(AccessError):
    """A user the access config does not list."""


class UnknownRoleError(AccessError):
    """A role the access config does not define."""


class RoleNotGrantedError(AccessError):
    """A known user asking for a role the config does not give them."""


class NotPermittedError(AccessError):
    """An action the session's role has no right to (unmask, audit, export...)."""


class RelationNotAllowedError(AccessError):
    """User SQL that names something outside the session's views."""


class GrantError(ValueError):
    """An unmask request with a missing purpose or a duration outside the role's limit."""


class QueryError(StoreError):
    """A session query DuckDB could not run (its message masked)."""


class SessionClosedError(StoreError):
    """A read on a session (or a store) that was closed."""


# --------------------------------------------------------------------------- roles


@dataclass(frozen=True)
class Role:
    """A role: its rights and, for roles that may unmask, the longest grant in minutes."""

    name: str
    rights: frozenset[str]
    max_unmask_minutes: float = 0
    description: str = ""

    def can(self, right: str) -> bool:
        return right in self.rights


@dataclass(frozen=True)
class AccessConfig:
    """Roles and users: who may connect, in which roles, with which rights.

    >>> cfg = load_access_config({"users": {"alice": ["analyst"]}})
    >>> cfg.role_for("alice", None).name
    'analyst'
    """

    roles: Mapping[str, Role]
    users: Mapping[str, tuple[str, ...]]
    source: str = "built-in defaults"

    def role_for(self, user: str | None, role: str | None) -> Role:
        """The role ``user`` takes (their first role when ``role`` is None), or an error."""
        if not user:
            raise UnknownUserError(
                f"say who you are: connect(..., user='name') or set ${ENV_USER}; "
                f"known users ({self.source}): {', '.join(sorted(self.users))}"
            )
        if role is not None and role not in self.roles:
            raise UnknownRoleError(
                f"unknown role {role!r}; roles ({self.source}): {', '.join(self.roles)}"
            )
        if user not in self.users:
            raise UnknownUserError(
                f"unknown user {user!r}; known users ({self.source}): "
                f"{', '.join(sorted(self.users))}. Add the user to an access config "
                f"(${ENV_CONFIG}, or <store>.access.yaml beside the store)"
            )
        allowed = self.users[user]
        if role is None:
            role = allowed[0]
        elif role not in allowed:
            raise RoleNotGrantedError(
                f"user {user!r} may not take the role {role!r}; their roles: {', '.join(allowed)}"
            )
        return self.roles[role]


def _role(name: str, spec: Mapping, source: str) -> Role:
    if not isinstance(spec, Mapping):
        raise AccessConfigError(f"role {name!r} in {source}: expected a mapping with 'rights'")
    rights = spec.get("rights", [])
    if isinstance(rights, str):
        rights = [rights]
    bad = [r for r in rights if r not in RIGHTS]
    if bad:
        raise AccessConfigError(
            f"role {name!r} in {source}: unknown right(s) {bad}; accepted: {', '.join(RIGHTS)}"
        )
    minutes = spec.get("max_unmask_minutes", 60 if "unmask" in rights else 0)
    if not isinstance(minutes, (int, float)) or isinstance(minutes, bool) or minutes < 0:
        raise AccessConfigError(
            f"role {name!r} in {source}: max_unmask_minutes must be a number >= 0, got {minutes!r}"
        )
    return Role(name, frozenset(rights), float(minutes), str(spec.get("description", "")))


def load_access_config(source=None) -> AccessConfig:
    """Read an access config: None (built-in), a mapping, or a YAML/JSON file.

    ``roles`` are merged over the built-in roles; ``users`` (name -> list of roles)
    replace the built-in users when given.

    >>> sorted(load_access_config().roles)
    ['admin', 'analyst', 'compliance', 'trainee']
    """
    label = "built-in defaults"
    doc: Mapping = {}
    if isinstance(source, AccessConfig):
        return source
    if isinstance(source, Mapping):
        doc, label = source, "the config given to connect()"
    elif source is not None:
        path = Path(source)
        if not path.exists():
            raise AccessConfigError(f"no access config at {path}; give a YAML or JSON file")
        import yaml

        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise AccessConfigError(f"{path} is not valid YAML: {e}") from None
        label = str(path)
        if not isinstance(doc, Mapping):
            raise AccessConfigError(f"{path}: expected a mapping with 'roles' and/or 'users'")
    unknown = set(doc) - {"roles", "users"}
    if unknown:
        raise AccessConfigError(
            f"{label}: unknown key(s) {sorted(unknown)}; accepted: 'roles', 'users'"
        )
    role_specs = dict(DEFAULT_ROLES)
    role_specs.update(doc.get("roles") or {})
    roles = {name: _role(name, spec, label) for name, spec in role_specs.items()}
    users_doc = doc.get("users")
    users_doc = DEFAULT_USERS if users_doc is None else users_doc
    if not isinstance(users_doc, Mapping):
        raise AccessConfigError(f"{label}: 'users' must map user names to lists of roles")
    users = {}
    for user, user_roles in users_doc.items():
        user_roles = [user_roles] if isinstance(user_roles, str) else list(user_roles or [])
        if not user_roles:
            raise AccessConfigError(f"{label}: user {user!r} has no roles")
        bad = [r for r in user_roles if r not in roles]
        if bad:
            raise AccessConfigError(
                f"{label}: user {user!r} has unknown role(s) {bad}; roles: {', '.join(roles)}"
            )
        users[str(user)] = tuple(user_roles)
    return AccessConfig(roles, users, label)


def _resolve_config(config, store_path: Path | None) -> AccessConfig:
    if config is not None:
        return load_access_config(config)
    env = os.environ.get(ENV_CONFIG)
    if env:
        return load_access_config(env)
    if store_path is not None:
        beside = store_path.with_name(store_path.name + ".access.yaml")
        if beside.exists():
            return load_access_config(beside)
    return load_access_config(None)


# --------------------------------------------------------------------------- grants


@dataclass(frozen=True)
class Grant:
    """A time-limited permission to read raw PII, given for a stated purpose.

    Use it as a context manager to end it early:

    >>> with session.unmask(purpose="ticket 4711: customer data request", minutes=5):
    ...     raw = session.timeline("lead_5T8nK3mP9Q2wR7xN")      # doctest: +SKIP
    """

    user: str
    role: str
    purpose: str
    minutes: float
    granted_at: dt.datetime
    expires_at: dt.datetime
    _session: weakref.ref = field(repr=False, compare=False, default=None)

    @property
    def active(self) -> bool:
        """True while the grant is its session's grant and has not expired."""
        s = self._session() if self._session is not None else None
        return s is not None and s._active_grant() is self

    @property
    def remaining(self) -> dt.timedelta:
        """Time left (zero once expired or revoked)."""
        s = self._session() if self._session is not None else None
        if s is None or not self.active:
            return dt.timedelta(0)
        return max(dt.timedelta(0), self.expires_at - s._now())

    def revoke(self) -> None:
        """End the grant now; reads are masked again."""
        s = self._session() if self._session is not None else None
        if s is not None:
            s._revoke(self)

    def __enter__(self) -> Grant:
        return self

    def __exit__(self, *exc) -> None:
        self.revoke()


# --------------------------------------------------------------------------- session

_session_ids = itertools.count(1)
_JSON_ARROW = pa.json_(pa.string())
_MEMORY_TRAILS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MEMORY_TRAILS_LOCK = threading.Lock()

# The masking functions, one instance each (their caches are shared by all sessions).
_JSON_MASKER = _masking.Masker(_masking.mask_json_text)
_TEXT_MASKER = _masking.Masker(_masking.mask_free_text)
_RAW_MASKER = _masking.Masker(_masking.mask_raw_text)


def _release(cursors, udfs, trail_to_close, store_to_close) -> None:
    """Close a session's cursors (removing its functions first), trail and owned store."""
    masked = cursors[0]
    for name in udfs:
        with contextlib.suppress(duckdb.Error, ValueError, RuntimeError):
            masked.raw.remove_function(name)
    for con in cursors:
        with contextlib.suppress(duckdb.Error):
            con.close()
    if trail_to_close is not None:
        trail_to_close.close()
    if store_to_close is not None:
        store_to_close.close()


def _on_store_close(store: EventStore, callback) -> None:
    """Run ``callback`` when ``store.close()`` is called, so a session's cursors never keep
    a store file open after its owner closed it."""
    store.on_close(callback)


class Session:
    """A user's reads of one store, in one role (see :func:`connect`)."""

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
        self._clock = lambda: dt.datetime.now(dt.UTC)
        self._views_version = None
        self._existing: frozenset[str] = frozenset()
        tag = uuid.uuid4().hex[:10]
        self._fn = {"json": f"_wb_mask_json_{tag}", "text": f"_wb_mask_text_{tag}"}
        self._fn["raw"] = f"_wb_mask_raw_{tag}"
        self._fn["field"] = f"_wb_mask_field_{tag}"
        with store._lock:
            store._check_open()
            self._masked_con = store._con.cursor()
            self._raw_con = store._con.cursor()
            self._db = store._con.val("SELECT current_database()")
        for con in (self._masked_con, self._raw_con):
            con.run("SET TimeZone = 'UTC'")
            # a bare name never reads a pandas frame or Arrow table of the caller's frames
            con.run("SET python_enable_replacements = false")
        self._register_functions()
        self._finalizer = weakref.finalize(
            self,
            _release,
            (self._masked_con, self._raw_con),
            tuple(self._fn.values()),
            trail if owns_trail else None,
            store if owns_store else None,
        )
        _on_store_close(store, self._finalizer)
        try:
            self._record("connect", detail=f"{self._store_label()} as {self.role}")
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

    # ------------------------------------------------------------------ views

    def _register_functions(self) -> None:
        con = self._masked_con.raw
        functions = (
            (self._fn["json"], lambda a: _JSON_MASKER.arrow(a, _JSON_ARROW), DuckDBPyType("JSON")),
            (self._fn["text"], lambda a: _TEXT_MASKER.arrow(a), VARCHAR),
            (self._fn["raw"], lambda a: _RAW_MASKER.arrow(a), VARCHAR),
        )
        for name, fn, returns in functions:
            con.create_function(name, fn, [VARCHAR], returns, type="arrow", side_effects=False)
        con.create_function(
            self._fn["field"],
            _masking.mask_field_arrow,
            [VARCHAR, VARCHAR],
            VARCHAR,
            type="arrow",
            side_effects=False,
        )

    def _con(self):
        """The cursor reads run on: masked views, or raw ones while a grant is active."""
        self._check_open()
        with self._store._lock:
            # tiers moved, or a PII field declared since: the views' SQL is stale
            version = (self._store._tier_version, tuple(sorted(catalog.FIELD_TYPES.items())))
            if version != self._views_version:
                self._build_views()
                self._views_version = version
        return self._masked_con if self.masked else self._raw_con

    def _build_views(self) -> None:
        store, db = self._store, self._db
        # events span the hot table and the warm tier; lead_summary is the store's view
        # over its parts; every other relation is the store's table of that name
        raw_sources = {
            name: f'SELECT * FROM "{db}".main.{name}'
            for name in SESSION_RELATIONS
            if name not in ("events", "lead_summary")
        }
        raw_sources["events"] = store._events_source()
        raw = self._raw_con
        for name, src in raw_sources.items():
            raw.run(f"CREATE OR REPLACE TEMP VIEW {name} AS {src}")
        summary = store._lead_summary_select()
        raw.run(f"CREATE OR REPLACE TEMP VIEW lead_summary AS {summary}")
        masked = self._masked_con
        self._kinds = {}
        for name in SESSION_RELATIONS:
            columns = raw.rows(f"DESCRIBE SELECT * FROM {name}")
            self._kinds[name] = {c[0]: _column_kind(name, c[0], c[1]) for c in columns}
            exprs = ", ".join(self._masked_expr(c, k) for c, k in self._kinds[name].items())
            src = raw_sources.get(name)
            if src is None:  # lead_summary: the store's view over its parts
                src = summary
            masked.run(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {exprs} FROM ({src})")
        self._existing = frozenset(
            r[0].lower()
            for r in raw.rows(
                "SELECT table_name FROM duckdb_tables() UNION SELECT view_name FROM duckdb_views()"
            )
        )
        # macros and Python functions defined in the store or the process could read a raw
        # table inside their body, out of the parser's sight: user SQL may call none of them
        self._defined_functions = frozenset(
            r[0].lower()
            for r in raw.rows(
                "SELECT DISTINCT function_name FROM duckdb_functions() WHERE NOT internal"
            )
        )

    def _masked_expr(self, column: str, kind: tuple[str, str | None]) -> str:
        """The masked SQL form of one column of the given kind (see ``_column_kind``).

        Text is masked by a Python function only where a regex says it may hold PII, so a
        column of plain reasons costs a regex per row, not a Python call."""
        col = '"' + column.replace('"', '""') + '"'
        what, label = kind
        if what == "json":
            return f"{self._fn['json']}({col}) AS {col}"
        if what == "raw":
            return f"{self._fn['raw']}({col}) AS {col}"
        if what == "field":
            return f"{self._fn['field']}('{label}', CAST({col} AS VARCHAR)) AS {col}"
        if what == "text":
            needs = _masking.needs_work_re2().replace("'", "''")
            return (
                f"CASE WHEN regexp_matches({col}, '{needs}') THEN {self._fn['text']}({col}) "
                f"ELSE {col} END AS {col}"
            )
        return col

    def _mask_rows(self, relation: str, df: pd.DataFrame) -> pd.DataFrame:
        """Mask a frame read from the raw view ``relation`` exactly as its masked view
        would (used where Python must decode the rows anyway: timeline, events)."""
        kinds = self._kinds[relation]
        try:
            for col in df.columns:
                what, label = kinds.get(col, ("text", None))
                if what != "plain":
                    df[col] = _mask_column(df[col], what, label)
        except Exception:  # never a message that could quote a value
            raise QueryError(f"masking the {relation} rows failed") from None
        return df

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
                purpose=_masking.mask_free_text(g.purpose),
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
            if not isinstance(purpose, str) or len(purpose.strip()) < 10:
                self._record("unmask", outcome="refused", detail="no purpose stated")
                raise GrantError(
                    f"purpose={purpose!r}: state why you need raw PII in at least 10 "
                    "characters, e.g. 'ticket 4711: customer asked for their data'"
                )
            limit = self._role.max_unmask_minutes
            ok_number = isinstance(minutes, (int, float)) and not isinstance(minutes, bool)
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
                purpose.strip(),
                float(minutes),
                now,
                now + dt.timedelta(minutes=minutes),
                weakref.ref(self),
            )
            self._record(
                "unmask",
                masked=False,
                purpose=_masking.mask_free_text(grant.purpose),
                detail=f"raw reads for {minutes:g} min, until {utc_iso(grant.expires_at)}",
            )
            self._grant = grant
            return grant

    def _revoke(self, grant: Grant, reason: str = "revoked") -> None:
        with self._lock:
            if self._grant is grant:
                self._grant = None
                self._record(
                    "revoke",
                    masked=True,
                    purpose=_masking.mask_free_text(grant.purpose),
                    detail=reason,
                )

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
    ) -> None:
        grant = self._grant
        if masked is None:
            masked = grant is None
        if purpose is None and not masked and grant is not None:
            purpose = _masking.mask_free_text(grant.purpose)
        self._trail.append(
            user=self.user,
            role=self.role,
            action=action,
            outcome=outcome,
            masked=masked,
            purpose=purpose,
            detail=None if detail is None else _masking.mask_free_text(detail),
            lead_ids=lead_ids,
            rows=rows,
            store=self._store_label(),
            session=self.id,
            at=self._now(),
        )

    def _read(self, action: str, detail: str, run, *, lead_ids=None, relation=None):
        """Run one read on the masked or raw views, recorded on the trail either way.

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
                    df = self._mask_rows(relation, run(self._raw_con))
                else:
                    df = run(con)
            except duckdb.Error as e:
                msg = _masking.mask_free_text(str(e).strip())
                if masked and relation is not None:
                    msg = "(message withheld: it may quote a raw value)"
                self._record(action, outcome="failed", masked=masked, detail=detail)
                raise QueryError(f"{action} failed: {msg}") from None
            if lead_ids is None:
                lead_ids = _lead_ids(df, 100 if masked else 10_000)
            self._record(action, masked=masked, detail=detail, lead_ids=lead_ids, rows=len(df))
            return df

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
                since=None if since is None else utc_iso(_as_utc(since, "since")),
                until=None if until is None else utc_iso(_as_utc(until, "until")),
                lead_id=lead_id,
                limit=limit,
            )
            filters = _call("audit", user=user, action=action, since=since, until=until)
            self._record("audit", detail=filters, rows=len(df))
            return df

    def verify_audit(self) -> AuditVerifyReport:
        """Recompute the audit trail's hash chain (admins): did anyone change a record?"""
        with self._lock:
            self._check_open()
            self._require("audit", "verify_audit")
            report = self._trail.verify()
            self._record("verify_audit", detail=str(report), rows=report.records)
            return report

    # ------------------------------------------------------------------ reads

    def sql(self, query: str, params=None) -> pd.DataFrame:
        """Run one read-only SELECT over the session's views and return a DataFrame.

        ``events``, ``lead_summary``, ``steps``, ``entities``, ``flows``, ``incidents``
        and ``quarantine`` may be read, by their bare names; PII in them is masked unless
        a grant is active. Pass values as ``params`` (``?`` or ``$name``).

        >>> session.sql("SELECT type, count(*) AS n FROM events GROUP BY type")  # doctest: +SKIP
        """
        detail = _masking.mask_free_text(str(query))
        if params is not None:
            detail += f"  params={_masking.mask_document(_jsonable(params))!r}"
        with self._lock:
            self._check_open()
            self._require("read", "sql")
            try:
                statement = check_read_only(query)
                shape = _sessionsql.inspect_query(statement)
            except (ReadOnlyViolation, _sessionsql.UncheckableQuery) as e:
                self._record("sql", outcome="refused", detail=detail)
                if isinstance(e, ReadOnlyViolation):
                    raise
                raise RelationNotAllowedError(
                    f"refused: the query cannot be checked ({e}); write it as one SELECT "
                    "(FROM events PIVOT (...) instead of a PIVOT statement)"
                ) from None
            self._con()  # the views, and the names of the store's tables, are current
            bad = _sessionsql.problems(shape, frozenset(SESSION_RELATIONS), self._existing)
            bad += [
                f"{fn}() is a function defined in the store or this process; only DuckDB's "
                "own functions may be called in a session"
                for fn in sorted(
                    (shape.functions | shape.table_functions) & self._defined_functions
                )
            ]
            if bad:
                self._record("sql", outcome="refused", detail=detail)
                raise RelationNotAllowedError("refused: " + "; ".join(bad))

            def run(con):
                con.run("BEGIN TRANSACTION")
                try:
                    return con.df(statement, params) if params is not None else con.df(statement)
                finally:
                    con.run("ROLLBACK")

            return self._read("sql", detail, run)

    def timeline(self, lead_id: str) -> pd.DataFrame:
        """Every event of one lead, in (timestamp, seq) order, metadata as (masked) dicts.

        >>> session.timeline("lead_5T8nK3mP9Q2wR7xN").type.tolist()[:2]   # doctest: +SKIP
        ['source.submitted', 'source.accepted']
        """
        db = self._db

        def run(con):
            q, params = _timeline_query(self._raw_con, lead_id, db)
            if q is None:
                return _decode(con.df("SELECT * FROM events LIMIT 0"))
            return _decode(con.frame(q, params))

        detail = _call("timeline", lead_id)
        return self._read("timeline", detail, run, lead_ids=[lead_id], relation="events")

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
        q, params = _events_query(type, outcome, lead_id, entity_id, flow_id, since, until, limit)
        detail = _call(
            "events",
            type=type,
            outcome=outcome,
            lead_id=lead_id,
            entity_id=entity_id,
            flow_id=flow_id,
            since=since,
            until=until,
            limit=limit,
        )
        run = lambda con: _decode(con.df(q, params))  # noqa: E731
        return self._read("events", detail, run, relation="events")

    def lead_summary(self, lead_id: str | None = None) -> pd.DataFrame:
        """The per-lead summary (source, stage reached, outcome, cost, revenue).

        >>> session.lead_summary().outcome.value_counts()                 # doctest: +SKIP
        """
        if lead_id is None:
            q, params = "SELECT * FROM lead_summary ORDER BY first_seen, lead_id", []
        else:
            q, params = "SELECT * FROM lead_summary WHERE lead_id = ?", [lead_id]
        detail = _call("lead_summary", lead_id)
        return self._read("lead_summary", detail, lambda con: con.df(q, params))

    def quarantined(self, limit: int | None = None) -> pd.DataFrame:
        """Events the store could not take, with reason, origin and (masked) raw text.

        >>> session.quarantined(limit=5)                                   # doctest: +SKIP
        """
        q, params = "SELECT * FROM quarantine ORDER BY qid", []
        if limit is not None:
            if int(limit) < 0:
                raise ValueError(f"limit must be >= 0, got {limit}")
            q += " LIMIT ?"
            params.append(int(limit))
        detail = _call("quarantined", limit=limit)
        return self._read("quarantined", detail, lambda con: con.df(q, params))

    def export(self, path, *, format: str | None = None) -> int:
        """Write the events this session sees (hot and warm tiers) to Parquet or JSONL,
        masked unless a grant is active. Returns the number of events.

        >>> session.export("out/events.parquet")                           # doctest: +SKIP
        25
        """
        p = Path(path)
        fmt = format or {".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(p.suffix)
        if fmt not in ("parquet", "jsonl"):
            raise ValueError(
                f"cannot tell the export format of {p}: use .parquet or .jsonl, or format="
            )
        with self._lock:
            self._check_open()
            self._require("export", "export")
            p.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "parquet":
                sel = "SELECT * FROM events ORDER BY seq"
                opts = "FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880"
            else:
                sel = (
                    "SELECT seq, event_id, type, "
                    "strftime(timestamp, '%Y-%m-%dT%H:%M:%S.%gZ') AS timestamp, lead_id, "
                    "flow_id, entity_id, step_id, outcome, duration_ms, metadata, lead_snapshot "
                    "FROM events ORDER BY seq"
                )
                opts = "FORMAT json"

            def run(con):
                con.run(f"COPY ({sel}) TO '{_sql_str(str(p))}' ({opts})")
                n = int(con.val("SELECT count(*) FROM events"))
                return pd.DataFrame(index=range(n))

            df = self._read("export", f"export to {p} ({fmt})", run, lead_ids=[])
            return len(df)

    def find_leads(self, email=None, phone=None, ssn=None, **fields) -> list[str]:
        """The ids of leads whose data holds every raw value given (nothing else is shown).

        Values are compared normalised by their field type (case of emails and names,
        punctuation of phone numbers and SSNs). Any PII field name of the catalogue may be
        given, e.g. ``first_name="John"``.

        >>> session.find_leads(email="john@example.com")                   # doctest: +SKIP
        ['lead_5T8nK3mP9Q2wR7xN']
        """
        criteria = {k: v for k, v in dict(email=email, phone=phone, ssn=ssn, **fields).items()}
        criteria = {k: v for k, v in criteria.items() if v is not None}
        typed = {}
        for name, value in criteria.items():
            ft = field_type(name)
            if not ft.pii:
                raise ValueError(
                    f"find_leads searches by a personal value; {name!r} is a {ft.label} field. "
                    "Give email=, phone=, ssn= or another PII field (first_name=, "
                    "date_of_birth=, ...); filter other fields with sql()"
                )
            norm = _normalise(ft, value)
            if not norm:
                raise ValueError(f"find_leads({name}={value!r}): the value is empty")
            typed[name] = (ft, norm)
        if not typed:
            raise ValueError("find_leads needs a value to search for, e.g. email='...'")
        detail = "find_leads(" + ", ".join(
            f"{k}={_masking.mask_value(ft, v)!r}" for k, (ft, v) in typed.items()
        )
        detail += ")"
        with self._lock:
            self._check_open()
            self._require("search", "find_leads")
            self._con()  # views up to date
            found: set[str] | None = None
            for ft, norm in typed.values():
                leads = self._search(ft, norm)
                found = leads if found is None else found & leads
            result = sorted(found or ())
            self._record("find_leads", detail=detail, lead_ids=result, rows=len(result))
            return result

    def _search(self, ft: FieldType, norm: str) -> set[str]:
        """Leads with a value of type ``ft`` equal to ``norm``: a text pre-filter in DuckDB,
        then an exact check of the candidates' fields in Python."""
        token = _search_token(ft, norm)
        pattern = "%" + token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._raw_con.rows(
            "SELECT lead_id, lead_snapshot::VARCHAR, metadata::VARCHAR FROM events "
            "WHERE lead_snapshot::VARCHAR ILIKE $p ESCAPE '\\' "
            "OR metadata::VARCHAR ILIKE $p ESCAPE '\\'",
            {"p": pattern},
        )
        hits = set()
        for lead_id, snapshot, metadata in rows:
            if lead_id in hits:
                continue
            for text in (snapshot, metadata):
                if text and _document_has(text, ft, norm):
                    hits.add(lead_id)
                    break
        return hits

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
        return _masking.mask_value(field_name, value)

    def mask_text(self, text):
        """Free text with emails, phone numbers, SSNs and IP addresses masked (when masked).

        >>> connect(open_store(), user="ana").mask_text("call 512-555-1234")
        'call (512) ***-****'
        """
        if not self.masked or not isinstance(text, str):
            return text
        return _masking.mask_free_text(text)

    def mask_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``df`` with every value masked by its column's field type, JSON and
        dict values by their keys, and text by its shape (when this session reads masked).

        >>> session = connect(open_store(), user="ana")
        >>> session.mask_frame(pd.DataFrame({"email": ["john@example.com"]})).email[0]
        'j***@example.com'
        """
        if not self.masked:
            return df
        return mask_frame(df)


_PLAIN_NAMES = frozenset(
    c for cols in _PLAIN_COLUMNS.values() for c in cols if not field_type(c).pii
)

_RIGHT_WORDS = {
    "read": "read events",
    "search": "search leads by a raw value",
    "export": "export events",
    "unmask": "unmask PII",
    "audit": "read the audit trail",
}


# --------------------------------------------------------------------------- helpers


def mask_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every column masked (see :meth:`Session.mask_frame`)."""
    out = df.copy()
    for col in out.columns:
        out[col] = _mask_series(str(col), out[col])
    out.columns = [_masking.mask_free_text(c) if isinstance(c, str) else c for c in out.columns]
    if out.index.dtype == object or pd.api.types.is_string_dtype(out.index):
        out.index = pd.Index([_mask_cell(FieldType.TEXT, v) for v in out.index], name=df.index.name)
    return out


def _mask_series(name: str, s: pd.Series) -> pd.Series:
    if name in _PLAIN_NAMES:  # ids and step/entity names, as the views show them
        return s
    ft = field_type(name)
    api = pd.api.types
    if not ft.pii:
        if api.is_bool_dtype(s) or api.is_float_dtype(s) or api.is_datetime64_any_dtype(s):
            return s
        if api.is_timedelta64_dtype(s):
            return s
        # integers pass unless one reads as a phone number
        if api.is_integer_dtype(s) and not (s.abs() >= 10**9).any():
            return s
    json_text = name in ("metadata", "lead_snapshot", "parameters")
    cache: dict = {}
    out = []
    for v in s:
        key = v if isinstance(v, (str, int)) else None
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
        return _masking.mask_value(ft, v)
    if isinstance(v, (dict, list, tuple)):
        return _masking.mask_document(v)
    if isinstance(v, str):
        if json_text:
            return _masking.mask_json_text(v)
        return _masking.mask_free_text(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return _masking.mask_document(v)
    return v


def _column_kind(relation: str, column: str, sql_type: str) -> tuple[str, str | None]:
    """How a column of a session relation is masked: ``json`` (by keys), ``raw`` (input
    text), ``field`` (a PII-typed column, by its type), ``text`` (by shape) or ``plain``
    (identifiers, names, numbers and times). Every text column not known to be plain
    is masked, so a column a schema change adds is masked until declared plain."""
    if sql_type == "JSON":
        return ("json", None)
    if relation == "quarantine" and column == "raw":
        return ("raw", None)
    if column in _PLAIN_COLUMNS.get(relation, ()):  # e.g. steps.name: a step, not a person
        return ("plain", None)
    ft = field_type(column)
    if ft.pii:
        return ("field", ft.label)
    if sql_type == "VARCHAR":
        return ("text", None)
    return ("plain", None)


def _mask_column(s: pd.Series, what: str, label: str | None) -> pd.Series:
    cache: dict = {}
    out = []
    for v in s:
        if v is None or (isinstance(v, float) and v != v):
            out.append(v)
            continue
        key = v if isinstance(v, (str, int, float)) else None
        if key is not None and key in cache:
            out.append(cache[key])
            continue
        if what == "json":
            m = _masking.mask_json_text(v) if isinstance(v, str) else _masking.mask_document(v)
        elif what == "raw":
            m = _masking.mask_raw_text(v)
        elif what == "field":
            m = _masking.mask_value(label, v)
        else:
            m = _masking.mask_free_text(v) if isinstance(v, str) else _masking.mask_document(v)
        if key is not None:
            cache[key] = m
        out.append(m)
    return pd.Series(out, index=s.index, name=s.name, dtype=object)


def _lead_ids(df: pd.DataFrame, cap: int) -> list[str] | None:
    if "lead_id" not in df.columns or df.empty:
        return None
    ids = pd.unique(df["lead_id"].dropna())
    return [str(x) for x in ids[:cap]]


def _jsonable(v):
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def _call(name: str, *args, **kwargs) -> str:
    parts = [repr(a) for a in args]
    parts += [f"{k}={v!r}" for k, v in kwargs.items() if v is not None]
    return f"{name}({', '.join(parts)})"


# --------------------------------------------------------------------------- search


def _digits(v) -> str:
    return "".join(c for c in str(v) if c.isdigit())


def _normalise(ft: FieldType, value) -> str:
    """A raw value as search compares it: digits of phones and SSNs, case-folded text."""
    if isinstance(value, Mapping):
        value = value.get("normal") or value.get("raw") or ""
    s = str(value).strip()
    if ft is FieldType.PHONE:
        d = _digits(s)
        return d[1:] if len(d) == 11 and d[0] == "1" else d
    if ft is FieldType.SSN:
        return _digits(s)
    if ft is FieldType.DATE_OF_BIRTH:
        return _normalise_date(s)
    return " ".join(s.casefold().split())


def _normalise_date(s: str) -> str:
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%m-%d-%Y", "%Y/%m/%d", "%d.%m.%Y", "%Y%m%d"):
        try:
            return dt.datetime.strptime(s[:10], fmt).date().isoformat()
        except ValueError:
            continue
    return _digits(s)


def _search_token(ft: FieldType, norm: str) -> str:
    """A piece of the raw text every match must contain (for the DuckDB pre-filter)."""
    if ft in (FieldType.PHONE, FieldType.SSN):
        return norm[-4:]
    if ft is FieldType.DATE_OF_BIRTH:
        return norm[:4]
    if ft is FieldType.EMAIL:
        return norm.split("@", 1)[0][:64] or norm
    return norm.split(" ", 1)[0]


def _document_has(text: str, ft: FieldType, norm: str) -> bool:
    try:
        doc = json.loads(text)
    except ValueError:
        return False
    return _node_has(doc, None, (), ft, norm)


def _node_has(node, typed: FieldType | None, path: tuple, ft: FieldType, norm: str) -> bool:
    """Does ``node`` hold a value of type ``ft`` equal to ``norm``? ``typed`` is the type
    of the PII key above it: the parts of a typed field object inherit it."""
    if isinstance(node, Mapping):
        for k, v in node.items():
            kt = _masking.key_type(str(k), path)
            if _node_has(v, kt if kt.pii else typed, (*path, str(k)), ft, norm):
                return True
        return False
    if isinstance(node, list):
        return any(_node_has(v, typed, path, ft, norm) for v in node)
    if node is None or isinstance(node, bool):
        return False
    if typed is ft and _normalise(ft, node) == norm:
        return True
    return isinstance(node, str) and _text_has(node, ft, norm)


_PHONE_IN_TEXT = re.compile(r"(?<!\d)(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?!\d)")
_SSN_IN_TEXT = re.compile(r"(?<!\d)\d{3}[- ]?\d{2}[- ]?\d{4}(?!\d)")


def _text_has(s: str, ft: FieldType, norm: str) -> bool:
    """A value given in free text (a request body, a reason) also counts as a match."""
    if ft is FieldType.EMAIL:
        return norm in s.casefold()
    if ft is FieldType.PHONE:
        return any(_normalise(ft, m) == norm for m in _PHONE_IN_TEXT.findall(s))
    if ft is FieldType.SSN:
        return any(_digits(m) == norm for m in _SSN_IN_TEXT.findall(s))
    return False


# --------------------------------------------------------------------------- connect


def _trail_for(store: EventStore, audit) -> tuple[AuditTrail, bool]:
    if isinstance(audit, AuditTrail):
        return audit, False
    if audit is not None:
        return AuditTrail(str(audit)), True
    if store.path is not None:
        return AuditTrail(str(store.path.with_name(store.path.name + ".audit.sqlite"))), True
    # a store in memory keeps its trail in memory, shared by its sessions, as long as it lives
    with _MEMORY_TRAILS_LOCK:
        trail = _MEMORY_TRAILS.get(store)
        if trail is None:
            trail = _MEMORY_TRAILS[store] = AuditTrail.in_memory()
    return trail, False


def connect(
    store_or_path,
    user: str | None = None,
    role: str | None = None,
    *,
    config=None,
    audit=None,
) -> Session:
    """Open a :class:`Session` on a store for ``user`` in ``role``.

    ``store_or_path`` is an open :class:`EventStore` (reused: a notebook may hold it open
    for writing) or the path of a store file (opened read-only, closed with the session).
    ``user`` defaults to ``$WORKBENCH_USER``; ``role`` to the user's first role. Users and
    roles come from ``config`` (a YAML/JSON file or a mapping), else
    ``$WORKBENCH_ACCESS_CONFIG``, else ``<store>.access.yaml`` beside the store, else the
    built-in ones (:data:`DEFAULT_USERS`). The audit trail is ``audit`` (a SQLite path),
    else ``<store>.audit.sqlite`` beside the store, else (a store in memory) in memory.

    >>> import workbench
    >>> session = connect(workbench.open_store(), user="ana", role="analyst")
    >>> session.masked
    True
    """
    if isinstance(store_or_path, EventStore):
        store, owns = store_or_path, False
        if store.closed:
            raise SessionClosedError("the store is closed; open it again and connect()")
    elif isinstance(store_or_path, (str, os.PathLike)):
        store, owns = None, True
    else:
        raise TypeError(
            f"connect() takes an EventStore or the path of a store file, not "
            f"{type(store_or_path).__name__}"
        )
    user = user if user is not None else os.environ.get(ENV_USER)
    # check the user and role before opening anything
    cfg = _resolve_config(config, Path(store_or_path) if store is None else store.path)
    the_role = cfg.role_for(user, role)
    if store is None:
        store = open_store(store_or_path, read_only=True)
    try:
        trail, owns_trail = _trail_for(store, audit)
    except BaseException:
        if owns:
            store.close()
        raise
    try:
        return Session(
            store,
            user=user,
            role=the_role,
            config=cfg,
            trail=trail,
            owns_store=owns,
            owns_trail=owns_trail,
        )
    except BaseException:
        if owns_trail:
            trail.close()
        if owns:
            store.close()
        raise
