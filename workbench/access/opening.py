"""Opening a :class:`Session`: the store (an open one, or a file opened read-only), the
user and role from the access configuration, and the audit trail the session writes to.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path

from ..errors import InputError
from ..store import EventStore, open_store
from .audit import AuditTrail
from .config import ENV_USER, SessionClosedError, resolve_config
from .session import Session

__all__ = ["connect"]

# a store in memory keeps one audit trail for all its sessions, as long as it lives
_MEMORY_TRAILS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MEMORY_TRAILS_LOCK = threading.Lock()


def _trail_for(store: EventStore, audit) -> tuple[AuditTrail, bool]:
    if isinstance(audit, AuditTrail):
        return audit, False
    if audit is not None:
        if not isinstance(audit, str | os.PathLike) or not str(audit).strip():
            raise InputError(
                f"audit={audit!r}: give the path of an audit trail file (SQLite) or an "
                "AuditTrail; leave it out to use the store's own trail"
            )
        return AuditTrail(str(audit)), True
    if store.audit_path is not None:
        return AuditTrail(str(store.audit_path)), True
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
    client: str | None = None,
) -> Session:
    """Open a :class:`Session` on a store for ``user`` in ``role``.

    ``store_or_path`` is an open :class:`EventStore` (reused: a notebook may hold it open
    for writing) or the path of a store file (opened read-only, closed with the session).
    ``user`` defaults to ``$WORKBENCH_USER``; ``role`` to the user's first role. Users and
    roles come from ``config`` (a YAML/JSON file or a mapping), else
    ``$WORKBENCH_ACCESS_CONFIG``, else ``<store>.access.yaml`` beside the store, else the
    built-in ones (``DEFAULT_USERS``). The audit trail is ``audit`` (a SQLite path),
    else ``<store>.audit.sqlite`` beside the store, else (a store in memory) in memory.
    ``client`` says what the session runs in (e.g. the CLI and the OS user), for the trail.

    >>> import workbench
    >>> session = connect(workbench.open_store(), user="ana", role="analyst")
    >>> session.masked
    True
    """
    if isinstance(store_or_path, EventStore):
        store, owns = store_or_path, False
        if store.closed:
            raise SessionClosedError("the store is closed; open it again and connect()")
    elif isinstance(store_or_path, str | os.PathLike):
        store, owns = None, True
    else:
        raise TypeError(
            f"connect() takes an EventStore or the path of a store file, not "
            f"{type(store_or_path).__name__}"
        )
    user = user if user is not None else os.environ.get(ENV_USER)
    # check the user and role before opening anything
    cfg = resolve_config(config, Path(store_or_path) if store is None else store.path)
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
            client=client,
        )
    except BaseException:
        if owns_trail:
            trail.close()
        if owns:
            store.close()
        raise
