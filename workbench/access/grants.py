"""Grants: raw PII for a stated purpose, for minutes, on the record.

A compliance officer or admin asks ``session.unmask(purpose=..., minutes=...)``; the
session checks the purpose (at least ten visible characters: control and zero-width
characters do not count) and the role's limit, records the grant on the audit trail,
and reads raw until the grant expires or is revoked.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
import weakref
from dataclasses import dataclass, field

__all__ = ["Grant", "visible_text"]


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


def visible_text(text: str) -> str:
    """``text`` without control, format (zero-width) and surrounding space characters."""
    kept = (c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    return " ".join("".join(kept).split())
