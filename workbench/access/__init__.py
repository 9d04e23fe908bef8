"""Reads done by people: who may read (``config``), what they see (``masking``), how
their SQL is confined (``sandbox``), how they find a lead by a value (``search``), and
the record of it all (``audit``), brought together by a :class:`Session`.

>>> import workbench
>>> session = connect(workbench.open_store(), user="ana", role="analyst")
>>> session.masked
True
"""

from .audit import AuditError, AuditTrail, AuditVerifyReport
from .columns import mask_frame
from .config import (
    DEFAULT_ROLES,
    DEFAULT_USERS,
    ENV_CONFIG,
    ENV_USER,
    RIGHTS,
    AccessConfig,
    AccessConfigError,
    AccessError,
    GrantError,
    NotPermittedError,
    QueryError,
    RelationNotAllowedError,
    Role,
    RoleNotGrantedError,
    SearchLimitError,
    SessionClosedError,
    UnknownRoleError,
    UnknownUserError,
    load_access_config,
)
from .opening import connect
from .session import SESSION_RELATIONS, Grant, Session

__all__ = [
    "connect",
    "Session",
    "Grant",
    "Role",
    "AccessConfig",
    "load_access_config",
    "mask_frame",
    "RIGHTS",
    "DEFAULT_ROLES",
    "DEFAULT_USERS",
    "ENV_CONFIG",
    "ENV_USER",
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
    "SearchLimitError",
    "SessionClosedError",
    "AuditError",
    "AuditTrail",
    "AuditVerifyReport",
]
