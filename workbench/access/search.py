"""Finding leads by a raw personal value, without becoming an oracle for it.

A masked role may search by a value it was given (a customer's email on a ticket) and
learn which leads hold it; it must not learn the value of a lead it cannot see. So:

* a search matches **whole values only**, compared normalised by field type (the case
  of an email or a name, the punctuation of a phone number or an SSN); a prefix, a
  substring or a partial number matches nothing, and an incomplete value (``jo@``, six
  digits of a phone) is refused with a message;
* a *user* may search :data:`SEARCHES_PER_MINUTE` times a minute and
  :data:`SEARCHES_PER_DAY` times a day (a role's ``max_searches_per_minute`` and
  ``max_searches_per_day`` override them), over all their sessions and processes: the
  searches are counted on the audit trail, which they share and which outlives them,
  refused searches included; beyond that, searches are refused until enough have aged;
* every search is audited with the value masked, refusals too (see ``Session.find_leads``).

>>> normalise(FieldType.PHONE, "+1 (512) 555-0123")
'5125550123'
>>> check_whole(FieldType.EMAIL, normalise(FieldType.EMAIL, "jo@"))
Traceback (most recent call last):
...
ValueError: email: the value is not a whole email address (name@domain.tld); search matches whole values only
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping

from ..catalog import FieldType
from .masking import key_type

__all__ = [
    "normalise",
    "check_whole",
    "search_token",
    "document_has",
    "SEARCHES_PER_MINUTE",
    "SEARCHES_PER_DAY",
    "leads_with",
]

#: Searches by raw value one user may make per minute and per day (over all their
#: sessions), unless their role says otherwise (``config.Role``).
SEARCHES_PER_MINUTE = 30
SEARCHES_PER_DAY = 300


def _digits(v) -> str:
    return "".join(c for c in str(v) if c.isdigit())


def normalise(ft: FieldType, value) -> str:
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


_WHOLE_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_EMAIL_IN_TEXT = re.compile(r"[\w.%+-]+@[^\W_][\w-]*(?:\.[\w-]+)+")
_PHONE_IN_TEXT = re.compile(r"(?<!\d)(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?!\d)")
_SSN_IN_TEXT = re.compile(r"(?<!\d)\d{3}[- ]?\d{2}[- ]?\d{4}(?!\d)")


def check_whole(ft: FieldType, norm: str, name: str | None = None) -> None:
    """Refuse a value that is not whole for its type (ValueError naming it)."""
    label = name or ft.label
    problem = None
    if ft is FieldType.EMAIL and not _WHOLE_EMAIL.match(norm):
        problem = "is not a whole email address (name@domain.tld)"
    elif ft is FieldType.PHONE and len(norm) != 10:
        problem = f"has {len(norm)} digits; a whole phone number has 10 (or 11 with a leading 1)"
    elif ft is FieldType.SSN and len(norm) != 9:
        problem = f"has {len(norm)} digits; a whole SSN has 9"
    elif ft is FieldType.DATE_OF_BIRTH and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", norm):
        problem = "is not a whole date (e.g. 1980-01-02 or 01/02/1980)"
    elif ft is FieldType.IP_ADDRESS and not (norm.count(".") == 3 or norm.count(":") >= 2):
        problem = "is not a whole IP address"
    elif len(norm) < 2:
        problem = "is too short to be a whole value"
    if problem:
        raise ValueError(f"{label}: the value {problem}; search matches whole values only")


def search_token(ft: FieldType, norm: str) -> str:
    """A piece of the raw text every match must contain (for the DuckDB pre-filter)."""
    if ft in (FieldType.PHONE, FieldType.SSN):
        return norm[-4:]
    if ft is FieldType.DATE_OF_BIRTH:
        return norm[:4]
    if ft is FieldType.EMAIL:
        return norm.split("@", 1)[0][:64] or norm
    return norm.split(" ", 1)[0]


def document_has(text: str, ft: FieldType, norm: str) -> bool:
    """Does the JSON ``text`` hold a value of type ``ft`` equal to ``norm`` (whole)?"""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return _node_has(doc, None, (), ft, norm)


def _node_has(node, typed: FieldType | None, path: tuple, ft: FieldType, norm: str) -> bool:
    """Does ``node`` hold a value of type ``ft`` equal to ``norm``? ``typed`` is the type
    of the PII key above it: the parts of a typed field object inherit it."""
    stack = [(node, typed, path)]
    while stack:
        n, t, p = stack.pop()
        if isinstance(n, Mapping):
            for k, v in n.items():
                kt = key_type(str(k), p)
                stack.append((v, kt if kt.pii else t, (*p, str(k))))
        elif isinstance(n, list):
            stack.extend((v, t, p) for v in n)
        elif n is None or isinstance(n, bool):
            continue
        elif t is ft and normalise(ft, n) == norm or isinstance(n, str) and _text_has(n, ft, norm):
            return True
    return False


def _text_has(s: str, ft: FieldType, norm: str) -> bool:
    """A whole value given in free text (a request body, a reason) also counts."""
    if ft is FieldType.EMAIL:
        return "@" in s and any(m.casefold() == norm for m in _EMAIL_IN_TEXT.findall(s))
    if ft is FieldType.PHONE:
        return any(normalise(ft, m) == norm for m in _PHONE_IN_TEXT.findall(s))
    if ft is FieldType.SSN:
        return any(_digits(m) == norm for m in _SSN_IN_TEXT.findall(s))
    return False


def leads_with(con, ft: FieldType, norm: str) -> set[str]:
    """Leads (of the raw ``events`` view on ``con``) holding a value of type ``ft`` equal
    to ``norm``: a text pre-filter in DuckDB, then an exact check in Python."""
    token = search_token(ft, norm)
    pattern = "%" + token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = con.rows(
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
            if text and document_has(text, ft, norm):
                hits.add(lead_id)
                break
    return hits
