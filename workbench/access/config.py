"""Who may read a store, in which roles, with which rights.

A user is a name listed in the access config with the roles they may take; ``connect``
refuses an unknown user, an unknown role, or a role the user was not given. The
built-in config (:data:`DEFAULT_ROLES`, :data:`DEFAULT_USERS`: ``ana`` analyst,
``tess`` trainee, ``cora`` compliance, ``adam`` admin) serves the sample store,
notebooks and tests; a deployment lists its own users in YAML
(``$WORKBENCH_ACCESS_CONFIG``, or ``<store>.access.yaml`` beside the store)::

    roles:                       # merged over the built-in roles
      auditor: {rights: [read, audit]}
      support:
        rights: [read, search]
        max_searches_per_minute: 10   # find_leads() calls per user (default 30)
        max_searches_per_day: 100     # ... and in any 24 hours (default 300)
    users:                       # replaces the built-in users
      alice: [analyst, auditor]  # the first role is the default
      bob: [compliance]

A role's keys: ``rights`` (of :data:`RIGHTS`); ``max_unmask_minutes``, the longest grant
(roles that may unmask; default 60); ``max_searches_per_minute`` and
``max_searches_per_day``, how many searches by raw value (``Session.find_leads``) a *user*
may make in any 60 seconds and in any 24 hours, counted on the audit trail over all their
sessions and processes, refused searches included (defaults 30 and 300); and
``description``.

The config guards against accidents and makes every read accountable; it is not a
barrier against someone who runs Python with access to the store file.

>>> sorted(load_access_config().roles)
['admin', 'analyst', 'compliance', 'trainee']
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import StoreError, WorkbenchError

__all__ = [
    "RIGHTS",
    "DEFAULT_ROLES",
    "DEFAULT_USERS",
    "ENV_CONFIG",
    "ENV_USER",
    "Role",
    "AccessConfig",
    "load_access_config",
    "resolve_config",
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
    "SearchLimitError",
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

# --------------------------------------------------------------------------- errors


class AccessError(WorkbenchError, PermissionError):
    """A read or an action the session's user or role may not do."""


class AccessConfigError(WorkbenchError, ValueError):
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


class GrantError(WorkbenchError, ValueError):
    """An unmask request with a missing purpose or a duration outside the role's limit."""


class QueryError(StoreError):
    """A session query DuckDB could not run (its message masked)."""


class SessionClosedError(StoreError):
    """A read on a session (or a store) that was closed."""


class SearchLimitError(AccessError):
    """Too many searches by raw value in too short a time (see ``Session.find_leads``)."""


# --------------------------------------------------------------------------- roles


@dataclass(frozen=True)
class Role:
    """A role: its rights, for roles that may unmask the longest grant in minutes, and
    how many searches by raw value its user may make per minute and per day (over all
    their sessions)."""

    name: str
    rights: frozenset[str]
    max_unmask_minutes: float = 0
    description: str = ""
    max_searches_per_minute: int = 30
    max_searches_per_day: int = 300

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
    limits = {}
    for key, default in (("max_searches_per_minute", 30), ("max_searches_per_day", 300)):
        n = spec.get(key, default)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise AccessConfigError(
                f"role {name!r} in {source}: {key} must be a whole number >= 0, got {n!r}"
            )
        limits[key] = n
    unknown = set(spec) - {"rights", "max_unmask_minutes", "description", *limits}
    if unknown:
        raise AccessConfigError(
            f"role {name!r} in {source}: unknown key(s) {sorted(unknown)}; accepted: rights, "
            "max_unmask_minutes, max_searches_per_minute, max_searches_per_day, description"
        )
    return Role(name, frozenset(rights), float(minutes), str(spec.get("description", "")), **limits)


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
        doc = _read_config_file(source)
        path = Path(source)
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


def _read_config_file(source):
    """The document of an access config file, or an AccessConfigError naming the file
    and what is wrong with it (no such file, a folder, not UTF-8, not YAML)."""
    if not isinstance(source, str | os.PathLike) or not str(source).strip():
        raise AccessConfigError(
            f"config={source!r}: give the path of a YAML or JSON file, a mapping of "
            "'roles' and 'users', or None for the built-in roles and users"
        )
    path = Path(source)
    if not path.exists():
        raise AccessConfigError(f"no access config at {path}; give a YAML or JSON file")
    if path.is_dir():
        raise AccessConfigError(
            f"the access config {path} is a folder; give the path of a YAML or JSON file"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise AccessConfigError(
            f"the access config {path} is not UTF-8 text (byte {e.start}); save it as UTF-8"
        ) from None
    except OSError as e:
        raise AccessConfigError(
            f"cannot read the access config {path}: {e.strerror or e}"
        ) from None
    import yaml

    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise AccessConfigError(f"{path} is not valid YAML: {e}") from None


def resolve_config(config, store_path: Path | None) -> AccessConfig:
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
