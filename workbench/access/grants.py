"""Grants: raw PII for a stated purpose, for minutes, on the record.

A compliance officer or admin asks ``session.unmask(purpose=..., minutes=...)``; the
session checks the purpose (:func:`purpose_problem`: words, at least ten visible
characters; control characters, terminal escape sequences and zero-width characters do
not count) and the role's limit, records the grant on the audit trail (the purpose as
given, its control characters escaped: :func:`escape_controls`), and reads raw until
the grant expires or is revoked.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import weakref
from dataclasses import dataclass, field

from .. import display

__all__ = ["Grant", "visible_text", "purpose_problem", "escape_controls"]


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

    def _repr_html_(self) -> str:
        state = "active" if self.active else "ended"
        return display.card(
            f"Raw PII for {self.user} ({self.role}): {state}",
            [
                ("purpose", self.purpose),
                ("from", f"{self.granted_at:%Y-%m-%d %H:%M:%S} UTC"),
                ("until", f"{self.expires_at:%Y-%m-%d %H:%M:%S} UTC ({self.minutes:g} min)"),
            ],
            status="warn" if self.active else "info",
            notes=["every read while it is active is on the audit trail as a raw read"],
        )

    def __enter__(self) -> Grant:
        return self

    def __exit__(self, *exc) -> None:
        self.revoke()


# Terminal escape sequences (ECMA-48): CSI (colours, cursor moves), OSC (titles, links),
# DCS/SOS/PM/APC strings, and the two-character escapes; in their 7- and 8-bit forms.
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]P^_X]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
_INVISIBLE = ("Cc", "Cf", "Cs", "Co", "Cn")
_WORD = re.compile(r"[^\W\d_]{2,}")

#: The least a purpose must hold: visible characters, letters and digits, letters in words.
PURPOSE_MIN_VISIBLE, PURPOSE_MIN_ALNUM, PURPOSE_MIN_WORD_LETTERS = 10, 6, 5


def visible_text(text: str) -> str:
    """``text`` without terminal escape sequences, control, format (zero-width) and
    surrounding space characters.

    >>> visible_text("\x1b[31mticket\x1b[0m\u200b 4711")
    'ticket 4711'
    """
    text = _ESCAPE_SEQUENCE.sub("", text)
    kept = (c for c in text if unicodedata.category(c) not in _INVISIBLE)
    return " ".join("".join(kept).split())


def purpose_problem(visible: str) -> str | None:
    """What is wrong with a purpose (given as :func:`visible_text`), or None: it must be
    words a person wrote, not escape codes, punctuation or a number.

    >>> purpose_problem("ticket 4711: customer data request") is None
    True
    >>> purpose_problem("[31m[0m[31m[0m[31m[0m")
    'it holds no words'
    """
    if len(visible) < PURPOSE_MIN_VISIBLE:
        return f"it has {len(visible)} visible characters"
    if sum(c.isalnum() for c in visible) < PURPOSE_MIN_ALNUM:
        return "it has too few letters and digits"
    if sum(len(w) for w in _WORD.findall(visible)) < PURPOSE_MIN_WORD_LETTERS:
        return "it holds no words"
    return None


def escape_controls(text: str) -> str:
    r"""``text`` with every control, format, surrogate and unassigned character written as
    an escape (``\x1b``, ``\u200b``), so a record shows what was typed and printing it
    cannot drive a terminal.

    >>> escape_controls("\x1b[31mticket\u200b 4711")
    '\\x1b[31mticket\\u200b 4711'
    """
    if text.isprintable():
        return text
    out = []
    for c in text:
        if unicodedata.category(c) in _INVISIBLE or c in "\u2028\u2029":
            n = ord(c)
            out.append(
                f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"
            )
        else:
            out.append(c)
    return "".join(out)
