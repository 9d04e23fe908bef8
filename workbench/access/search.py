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

from ..catalog import FieldType, field_type
from ..errors import InputError
from . import masking
from .audit import placeholder
from .masking import key_type

__all__ = [
    "normalise",
    "check_whole",
    "search_token",
    "document_has",
    "SEARCHES_PER_MINUTE",
    "SEARCHES_PER_DAY",
    "leads_with",
    "search_terms",
    "lead_field_value",
    "invalid_text",
    "LEADS_WHERE_SQL",
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


# --------------------------------------------------------------------------- a search's terms


def invalid_text(values) -> str | None:
    """Where in ``values`` (text, lists, mappings) a lone surrogate is, or None."""
    stack = [("the value", v) for v in values]
    while stack:
        where, v = stack.pop()
        if isinstance(v, list | tuple) and len(v) > 64 and all(type(x) is str for x in v):
            try:  # a long list of ids: one encode, not one walk step per item
                "".join(v).encode("utf-8")
                continue
            except UnicodeEncodeError:
                pass
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError as e:
                return f"position {e.start} of {where}"
        elif isinstance(v, Mapping):
            stack.extend((f"the value of {k!a}", x) for k, x in v.items())
            stack.extend(("a name", k) for k in v)
        elif isinstance(v, list | tuple | set | frozenset):
            stack.extend((where, x) for x in v)
    return None


def search_terms(criteria: dict, keeps, typed):
    """The values of a ``find_leads`` search, normalised by field type; how the trail
    shows each (``keeps(text)``: may the trail keep it; ``typed(text)``: a non-personal
    value as the trail shows it); and the first problem with them (a note for the trail
    and the InputError), or None."""
    terms, shown, problem = {}, [], None

    def refuse(note: str, error: Exception):
        nonlocal problem
        if problem is None:
            problem = (note, error)

    for name, value in criteria.items():
        label = name if keeps(name) else placeholder(name)
        if invalid_text([name, value]) is not None:
            shown.append(f"{label}=<invalid text>")
            refuse(
                "invalid text",
                InputError(
                    f"find_leads({label}=...): the value holds a lone surrogate (a half "
                    "of a UTF-16 pair, e.g. '\\ud800'), which is not text"
                ),
            )
            continue
        ft = field_type(name)
        if not ft.pii:
            shown.append(f"{label}={typed(str(value))!r}")
            refuse(
                "not a personal field",
                InputError(
                    f"find_leads searches by a personal value; {name!r} is a {ft.label} "
                    "field. Give email=, phone=, ssn= or another PII field (first_name=, "
                    "date_of_birth=, ...); filter other fields with sql()"
                ),
            )
            continue
        if not isinstance(value, str | int) or isinstance(value, bool):
            shown.append(f"{label}=<{type(value).__name__}>")
            refuse("not text", InputError(f"find_leads({name}=...): give the value as text"))
            continue
        norm = normalise(ft, value)
        try:
            if not norm:
                raise ValueError(f"find_leads({name}=...): the value is empty")
            check_whole(ft, norm, name)
        except ValueError as e:
            shown.append(f"{label}={placeholder(str(value))!r}")
            refuse("not a whole value", InputError(str(e)))
            continue
        shown.append(f"{label}={masking.mask_value(ft, norm)!r}")
        terms[name] = (ft, norm)
    if not criteria:
        refuse("no value", InputError("find_leads needs a value to search for, e.g. email='...'"))
    return terms, shown, problem


# --------------------------------------------------------------------------- a lead field

#: A lead field's name as ``Session.leads_where`` takes it.
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,80}$")

#: The leads whose submitted data has a field equal to a value ($path, $value).
LEADS_WHERE_SQL = (
    "SELECT DISTINCT lead_id FROM events WHERE type = 'source.submitted' "
    "AND json_extract_string(lead_snapshot, $path) = $value"
)


def lead_field_value(field: str, value) -> tuple[str, str]:
    """The JSON path and the text a ``leads_where(field, value)`` looks for, or an
    InputError: a personal field is searched with ``find_leads``, and a value that
    looks personal is refused."""
    if not isinstance(field, str) or not _FIELD_NAME.match(field):
        raise InputError(f"leads_where: {field!r} is not a field name (letters, digits, _ . -)")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InputError(f"leads_where({field}=...): give the value as text or a number")
    ft = field_type(field)
    if ft.pii:
        raise InputError(
            f"{field!r} is personal data ({ft.label}): search it with find_leads({field}=...)"
        )
    text = str(value)
    if masking.mask_free_text(text) != text:
        raise InputError(
            f"leads_where({field}=...): the value looks like personal data; "
            "search personal values with find_leads()"
        )
    return "$." + ".".join(f'"{p}"' for p in field.split(".")), text
