"""Masking rules: a PII value by its field type, a JSON document by its keys, free text by
the shapes of emails, phone numbers, SSNs and IP addresses.

The field type of a value comes from the catalogue (``catalog.field_type``), so declaring
a field's type is all it takes to mask it. Every rule is idempotent (masking a masked
value changes nothing), keeps already-masked values masked, and never raises: a value
that cannot be read is masked as a whole. Masks use a fixed number of asterisks so a
mask does not reveal a value's length.

>>> mask_value("email", "john.smith@example.com")
'j***@example.com'
>>> mask_text("call (512) 555-1234 or mail jo@example.com")
'call (512) ***-**** or mail j***@example.com'
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Mapping
from urllib.parse import quote_plus, unquote_plus

from .. import catalog
from ..catalog import FieldType

__all__ = [
    "mask_value",
    "mask_text",
    "mask_free_text",
    "mask_document",
    "mask_json_text",
    "mask_raw_text",
    "key_type",
]

STARS = "***"

# --------------------------------------------------------------------------- values


def _as_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def mask_email(value: str) -> str:
    """``john.smith@example.com`` -> ``j***@example.com`` (the domain stays)."""
    local, at, domain = value.strip().partition("@")
    if not local and not at:
        return value
    first = local[:1] if local[:1] not in ("*", "") else ""
    return f"{first}{STARS}{at}{mask_text(domain) if at else ''}"


_PHONE_CHARS = re.compile(r"[^0-9*]")
# an international number: "+44 20 7946 0958" shows its country code only
_COUNTRY_CODE = re.compile(r"\s*(?:tel:)?\s*\+\s*(\d+)")


def mask_phone(value: str) -> str:
    """``(512) 555-1234`` -> ``(512) ***-****``: the area code only; an international
    number shows its country code only (``+44 ***-****``)."""
    chars = _PHONE_CHARS.sub("", value)
    cc = _COUNTRY_CODE.match(value) if "+" in value else None
    if cc and not cc.group(1).startswith("1") and len(chars) >= 8:
        code = cc.group(1)
        return f"+{code if len(code) <= 3 else code[:2]} ***-****"
    if len(chars) == 11 and chars[0] == "1":
        chars = chars[1:]
    if len(chars) >= 10 and chars[:3].isdigit():
        return f"({chars[:3]}) ***-****"
    return mask_text(re.sub(r"\d", "*", value))


def mask_ssn(value: str) -> str:
    """``123-45-6789`` -> ``***-**-6789``: the last four digits only."""
    chars = _PHONE_CHARS.sub("", value)
    if len(chars) >= 9:
        last4 = chars[-4:] if chars[-4:].isdigit() else "****"
        return f"***-**-{last4}"
    return re.sub(r"\d", "*", value)


def mask_name(value: str) -> str:
    """``John Smith`` -> ``J*** S***``: each word's first letter and asterisks. An email
    given for a person (``"contact": "jo@example.com"``) is masked as an email."""
    words = value.split()
    if len(words) == 1:
        w = words[0]
        if "@" in w:
            return mask_email(value)
        return f"{w[0] if w[0] != '*' else ''}{STARS}"
    if not words:
        return value
    return " ".join(f"{w[0] if w[0] != '*' else ''}{STARS}" for w in words)


def mask_street(value: str) -> str:
    """``123 Main St`` -> ``*** M***``: no house number, the street's first letter."""
    for token in value.split():
        if any(c.isalpha() for c in token):
            letter = next(c for c in token if c.isalpha())
            return f"{STARS} {letter}{STARS}"
    return STARS if value.strip() else value


def mask_ip(value: str) -> str:
    """``203.0.113.9`` -> ``203.0.***.***``; IPv6 keeps its first two groups."""
    s = value.strip()
    if ":" in s and "." not in s and _IPV6_VALUE.match(s):
        groups = s.split(":")
        return ":".join(groups[:2]) + ":****"
    parts = s.split(".")
    if len(parts) == 4 and (parts[0].isdigit() or _DIGIT.search(s)):
        head = [p if p.isdigit() else "***" for p in parts[:2]]
        return ".".join(head + ["***", "***"])
    return _DIGIT.sub("*", value)  # no digits: no address, nothing to hide ("unknown")


# an IPv6 address: hex groups, compressed ("::") or all eight
# (a zone may follow), or one masked already ("2001:db8:****")
_IPV6_VALUE = re.compile(
    r"^(?:[0-9A-Fa-f:]*(?:::|(?:[0-9A-Fa-f]{1,4}:){7})[0-9A-Fa-f:]*(?:%\S*)?"
    r"|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:\*{4})$"
)

_DIGIT = re.compile(r"\d")
_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")


def mask_dob(value: str) -> str:
    """``1980-01-02`` -> ``1980-**-**``, ``01/02/1980`` -> ``**/**/1980``: the year only."""
    m = _YEAR.search(value)
    out = re.sub(r"[0-9A-Za-z]", "*", value)
    if m:
        out = out[: m.start()] + m.group(1) + out[m.end() :]
    return out


_BY_TYPE = {
    FieldType.EMAIL: mask_email,
    FieldType.PHONE: mask_phone,
    FieldType.SSN: mask_ssn,
    FieldType.FIRST_NAME: mask_name,
    FieldType.LAST_NAME: mask_name,
    FieldType.FULL_NAME: mask_name,
    FieldType.STREET_ADDRESS: mask_street,
    FieldType.IP_ADDRESS: mask_ip,
    FieldType.DATE_OF_BIRTH: mask_dob,
}

# Parts of a typed field object (``{"normal": ..., "raw": ..., "area": ...}``) that may stay:
# they are facts about the value or the part the mask itself shows.
_KEEP_ANY = frozenset(
    {
        "type",
        "kind",
        "valid",
        "masked",
        "verified",
        "deliverable",
        "status",
        "country",
        "country_code",
        "line_type",
        "carrier",
        "is_mobile",
        "is_valid",
        "version",
    }
)
_KEEP_BY_TYPE = {
    FieldType.PHONE: frozenset({"area", "area_code", "npa"}),
    FieldType.EMAIL: frozenset({"domain", "host", "tld"}),
    FieldType.SSN: frozenset({"serial", "last4", "last_four"}),
    FieldType.DATE_OF_BIRTH: frozenset({"year"}),
    FieldType.STREET_ADDRESS: frozenset(
        {"city", "state", "zip", "zip_code", "postal_code", "county"}
    ),
}


def _resolve(ftype) -> FieldType:
    if isinstance(ftype, FieldType):
        return ftype
    if isinstance(ftype, str):
        for t in FieldType:
            if t.label == ftype:
                return t
        return catalog.field_type(ftype)
    raise TypeError(
        f"field type {ftype!r} is neither a FieldType nor a field name or type label "
        f"(e.g. 'email', 'phone_1', {', '.join(t.label for t in FieldType if t.pii)})"
    )


def mask_value(ftype, value):
    """Mask ``value`` as a value of ``ftype`` (a FieldType, a type label or a field name).

    Values of non-PII types are masked as free text; dicts and lists are masked whole.

    >>> mask_value("ssn", "123-45-6789"), mask_value("phone_1", 5125551234)
    ('***-**-6789', '(512) ***-****')
    """
    refresh_field_types()
    ft = _resolve(ftype)
    try:
        return _clean(_mask_typed(ft, value, ()))
    except Exception:  # never let a value through because it could not be read
        return STARS


def _mask_typed(ft: FieldType, value, path: tuple):
    if type(value) is str:
        rule = _BY_TYPE.get(ft)
        if rule is not None:
            try:
                out = rule(value)
                return out if out.isascii() else _clean(out)
            except Exception:  # never let a value through because it could not be read
                return STARS
    if value is None or isinstance(value, bool):
        return value
    if not ft.pii:
        return _mask_plain(value, path)
    if isinstance(value, Mapping):
        return _mask_typed_object(ft, value, path)
    if isinstance(value, (list, tuple)):
        return [_mask_typed(ft, v, path) for v in value]
    try:
        return _BY_TYPE[ft](_as_text(value))
    except Exception:  # never let a value through because it could not be read
        return STARS


def _mask_typed_object(ft: FieldType, obj: Mapping, path: tuple) -> dict:
    keep = _KEEP_ANY | _KEEP_BY_TYPE.get(ft, frozenset())
    out = {}
    for k, v in obj.items():
        key = _mask_key(k)
        lk = str(k).lower()
        sub = key_type(str(k), path)
        if sub.pii and lk not in keep:
            out[key] = _mask_typed(sub, v, (*path, str(k)))
        elif lk in keep and (v is None or isinstance(v, (bool, int, float, str))):
            out[key] = v if not isinstance(v, str) else mask_text(v)
        else:
            out[key] = _mask_typed(ft, v, (*path, str(k)))
    return out


def _mask_plain(value, path: tuple):
    """A value whose key says nothing about PII: mask what its shape reveals."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _mask_string(value)
    if isinstance(value, int | float):
        return value if -(10**9) < value < 10**9 else _mask_number(value)
    if isinstance(value, Mapping):
        return _mask_mapping(value, path)
    if isinstance(value, (list, tuple)):
        return [_mask_plain(v, path) for v in value]
    return _mask_string(_as_text(value))


def _mask_number(value):
    """A number of ten or more digits may be a phone number (``5125550123``, also as
    ``5125550123.0``): masked as one. Smaller numbers (a price, a count) are kept."""
    if isinstance(value, float) and not math.isfinite(value):
        return value
    try:
        digits = str(abs(int(value)))
    except ValueError:  # more digits than Python prints
        return STARS
    return mask_phone(digits) if len(digits) >= 10 else value


# numbers under these keys are quantities or times ("epoch_ms", "created_at"), not phones
_NUMERIC_TYPES = (FieldType.NUMBER, FieldType.DATE)
_TIME_KEY = re.compile(r"(?i)(?:^|[._\-])(?:ts|epoch)$|(?:time|stamp|_at|_on)$")


def _keeps_numbers(key, ft: FieldType) -> bool:
    """Whether numbers under ``key`` are quantities or times (kept) rather than maybe
    phone numbers (ten or more digits are masked)."""
    return ft in _NUMERIC_TYPES or (isinstance(key, str) and bool(_TIME_KEY.search(key)))


# {"field": "last_name", "value": "Smith"}: a value named by a sibling key
_LABEL_KEYS = ("field", "name", "key", "field_name", "fieldName", "param", "attribute")
_VALUE_KEYS = ("value", "val", "values")


def _labelled_type(obj: Mapping) -> FieldType | None:
    """The PII type a label key of ``obj`` names (``obj`` holds a value key)."""
    if len(obj) > 8:
        return None
    for lk in _LABEL_KEYS:
        label = obj.get(lk)
        if type(label) is str and label:
            ft = key_type(label)
            if ft.pii:
                return ft
    return None


def _mask_mapping(obj: Mapping, path: tuple) -> dict:
    out = {}
    infos = _key_infos
    strings = _strings_cache
    for k, v in obj.items():
        info = infos.get((k, path))
        if info is None:
            info = _key_info(k, path)
        ft, mk, numbers = info
        if v is None or v is True or v is False:
            out[mk] = v
        elif type(v) is float:
            out[mk] = v if -1e9 < v < 1e9 or numbers else _mask_number(v)
        elif ft.pii:
            out[mk] = _mask_typed(ft, v, (*path, str(k)))
        elif type(v) is str:
            m = strings.get(v)
            if m is None:
                m = _mask_string(v)
                if len(v) <= 256 and len(strings) < 200_000:
                    strings[v] = m
            out[mk] = m
        elif type(v) is int:
            out[mk] = v if -(10**9) < v < 10**9 or numbers else _mask_number(v)
        else:
            out[mk] = _mask_plain(v, (*path, str(k)))
    if "value" in obj or "val" in obj or "values" in obj:
        labelled = _labelled_type(obj)
        if labelled is not None:
            for k, v in obj.items():
                if k in _VALUE_KEYS and v is not None and not isinstance(v, bool):
                    out[_mask_key(k)] = _mask_typed(labelled, v, (*path, str(k)))
    return out


# (key, path) -> (field type, masked key, keeps numbers); plain text -> masked text. Both
# depend on the catalogue's field declarations and are cleared with them
# (refresh_field_types).
_key_infos: dict[tuple, tuple[FieldType, object, bool]] = {}
_strings_cache: dict[str, str] = {}


def _key_info(k, path: tuple) -> tuple[FieldType, object, bool]:
    sk = k if isinstance(k, str) else str(k)
    ft = key_type(sk, path)
    info = (ft, _mask_key(k), _keeps_numbers(sk, ft))
    if len(_key_infos) < 100_000:
        _key_infos[(k, path)] = info
    return info


_keys_cache: dict[str, str] = {}


def _mask_key(k):
    if not isinstance(k, str):
        return k
    hit = _keys_cache.get(k)
    if hit is None:
        hit = mask_text(k) if _MAYBE_PII.search(k) else _clean(k)
        if len(_keys_cache) < 50_000:
            _keys_cache[k] = hit
    return hit


def mask_document(doc, *, field: str | None = None):
    """Mask a decoded JSON document (dicts, lists, scalars) by its keys and its text.

    >>> mask_document({"lead": {"email": "jo@example.com", "state": "TX"}})
    {'lead': {'email': 'j***@example.com', 'state': 'TX'}}
    """
    refresh_field_types()
    try:
        if field is not None:
            return _clean(_mask_typed(key_type(field, ()), doc, (field,)))
        return _clean(_mask_plain(doc, ()))
    except Exception:  # a document we cannot walk (nested too deep) is withheld
        return STARS


# --------------------------------------------------------------------------- field types

_types_lock = threading.Lock()
_types_cache: dict[tuple, FieldType] = {}
_types_snapshot: dict = {}


def key_type(key: str, path: tuple = ()) -> FieldType:
    """The field type of ``key`` found under ``path`` (outer keys), from the catalogue.

    A dotted name declared with ``register_field("applicant.tax_id", "ssn")`` matches the
    key ``tax_id`` under ``applicant``.

    >>> key_type("email").label, key_type("tax_id", ("applicant",)).label
    ('email', 'text')
    """
    cache_key = (key, *path[-2:])
    ft = _types_cache.get(cache_key)
    if ft is not None:
        return ft
    ft = catalog.field_type(key)
    if ft is FieldType.TEXT and path:
        for depth in (1, 2):
            if len(path) >= depth:
                dotted = ".".join((*path[-depth:], key))
                if dotted.lower() in catalog.FIELD_TYPES:
                    ft = catalog.FIELD_TYPES[dotted.lower()]
                    break
    with _types_lock:
        _types_cache[cache_key] = ft
    return ft


def refresh_field_types() -> None:
    """Forget cached field types when the catalogue's declarations changed."""
    global _types_snapshot
    current = catalog.FIELD_TYPES
    if current != _types_snapshot:
        with _types_lock:
            _types_cache.clear()
            _key_infos.clear()
            _strings_cache.clear()
            _types_snapshot = dict(current)


# --------------------------------------------------------------------------- free text

_HEX_ID = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{24}(?![0-9A-Za-z])")
# text that may hold a shape mask_text masks (anything else is returned as it is)
_MAYBE_PII = re.compile(r"[@\uff20]|%40|&#|\+\d|::|\d(?:\d\d|\.\d+\.\d)")
# "@" as text may spell it: plain, URL-encoded, fullwidth, an HTML entity
_AT = r"(@|%40|\uff20|&#0*64;|&#[xX]0*40;)"
# a domain (any script: IDN), a host without dots ("localhost") or an address literal
_DOMAIN = r"(\[[0-9A-Fa-f:.]+\]|[^\W_][\w-]*(?:\.[\w-]+)*)"
_EMAIL = re.compile(rf"(?<![\w.%+-])([\w.%+-])[\w.%+-]*{_AT}{_DOMAIN}")
# a quoted local part: "john smith"@example.com
_QUOTED_EMAIL = re.compile(rf'"([^\s"\\@:,;<>\[\]])[^"\\\n@:,;<>\[\]]{{0,63}}"{_AT}{_DOMAIN}')
# a date near words that say it is a birth date ("DOB 01/02/1980", "born on 1980-01-02")
_BIRTH_DATE = re.compile(
    r"(?i)\b(d\.?o\.?b\.?|born(?:\s+on)?|birth\s*date|birthday|b-?day|date\s+of\s+birth)"
    r"(\W{1,4})(\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{1,2}\s+[A-Za-z]{3,9}\.?,?\s+\d{4}"
    r"|[A-Za-z]{3,9}\.?\s+\d{1,2},?\s+\d{4})"
)
# separators of the groups of a phone number or an SSN: space, dot, slash, underscore,
# hyphen and the dashes and minus sign that word processors put in their place
_SEP = r"[\s./_\-\u2010-\u2015\u2212]"
_SSN = re.compile(r"(?<![\d*])\d{3}([- ./\u2010-\u2015\u2212])\d{2}\1(\d{4})(?!\d)")
_PHONE = re.compile(
    rf"(?<![\d*])(?:\+?1{_SEP}?)?\(?([2-9]\d{{2}})\)?{_SEP}?\d{{3}}{_SEP}?\d{{4}}(?![\d*])"
)
# "+44 20 7946 0958", "+49 30 8675309": the country code stays (not +1: see _PHONE)
_INTL_PHONE = re.compile(
    rf"(?<![\w+*])\+(?!1)(\d{{1,3}})(?:{_SEP}?\(?\d{{1,5}}\)?){{2,7}}(?![\d*])"
)
_LOCAL_PHONE = re.compile(
    r"(?<![\d*\-\u2010-\u2015])\d{3}[-\u2010-\u2015]\d{4}(?![\d*\-\u2010-\u2015])"
)
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}(?!\.?\d)")
_H = r"[0-9A-Fa-f]{1,4}"
# an IPv6 address: all eight groups, or compressed ("2001:db8::1", "dead:beef::cafe"),
# perhaps ending in an IPv4 address ("::ffff:203.0.113.9")
_IPV6 = re.compile(
    rf"(?<![\w:.])(?:{_H}(?::{_H}){{7}}|(?:{_H}(?::{_H}){{0,6}})?::(?:{_H}(?::{_H}){{0,6}})?)"
    r"(?:\.\d{1,3}){0,3}(?![\w:])"
)
_LONG_DIGITS = re.compile(r"\d{7,}")
_DIGITS3 = re.compile(r"\d{3}")
# Strings that may hold structure or PII; anything else is returned as it is. A wider
# test in DuckDB's RE2 dialect lets SQL skip the masking function for plain text: it
# matches whatever this one matches (Python's \d is any Unicode digit, so any non-ASCII
# text goes to Python), and compiles fast (a view is bound, and its regexes compiled, on
# every query; Unicode classes would cost ~0.5 ms each time).
_NEEDS_WORK = re.compile(r"[{\[<=:@%\uff20]|&#|\+\d|\d(?:\d\d|\.\d)")
NEEDS_WORK_RE2 = r"[{\[<=:@%]|&#|[+][0-9]|[0-9]{3}|[0-9][.][0-9]|[^\x00-\x7F]"

# Words a PII key's name contains (the catalogue's rules), for needs_work_re2() below.
# Phones, SSNs and IP addresses are masked only where their value has digits (or an
# IPv6 address's "::", which the pattern finds anyway).
_DIGIT_KEY_WORDS = ("phone", "mobile", "ssn", "ip", "security")
_ANY_KEY_WORDS = ("name", "email", "mail", "dob", "birth", "address", "street")
_DIGIT_TYPES = (FieldType.PHONE, FieldType.SSN, FieldType.IP_ADDRESS)


def needs_work_re2() -> str:
    """An RE2 pattern that matches every text :func:`mask_free_text` would change.

    The one test the SQL views make before they call the masking function on a text
    column (free text and names of things alike), so SQL and Python mask the same text.
    A ``:`` or ``=`` counts only after a key whose name could be PII (and, for phones,
    SSNs and IPs, only with a digit after it), so a reason such as "Invalid phone:
    number is disconnected" skips Python altogether (tests prove text it does not match
    masks to itself). Built from the catalogue's PII field names, so a field declared
    later is covered once the pattern is rebuilt.
    """
    digit_words, any_words = set(_DIGIT_KEY_WORDS), set(_ANY_KEY_WORDS)
    for k, ft in catalog.FIELD_TYPES.items():
        if ft.pii:
            (digit_words if ft in _DIGIT_TYPES else any_words).add(k.lower())
    # a word that holds another ("first_name" holds "name") adds nothing to what the
    # pattern matches, only to the time DuckDB takes to compile it (on every query)
    any_words = {w for w in any_words if not any(u != w and u in w for u in any_words)}
    digit_words = {
        w for w in digit_words if not any(u != w and u in w for u in digit_words | any_words)
    }

    def alt(words):
        # "tax_id" also as the text may write it: "tax-id", "taxId", "TAXID"
        return "|".join(sorted(re.escape(w).replace("_", "[_-]?") for w in words))

    key_end = r"[A-Za-z0-9_.\-]*[\x22']?\s*[:=]"
    return (
        r"[@{\[<]|%40|&#|::|[+][0-9]|[0-9]{3}|[0-9][.][0-9]|[^\x00-\x7F]"
        r"|(?:[0-9A-Fa-f]{1,4}:){7}"
        rf"|(?i:(?:{alt(any_words)}){key_end})"
        rf"|(?i:(?:{alt(digit_words)}){key_end}[^\n]*[0-9*])"
    )


# "key": "value" and key=value pairs in text that is not (valid) JSON
_LOOSE_PAIR = re.compile(
    r"""(["']?)([A-Za-z_][\w.\-]{0,63})\1(\s*[:=]\s*)("(?:[^"\\\n]|\\.)*"?|'[^'\n]*'?|[^\s,;&}\])(<>"']+)"""
)
# a further word of a name given without quotes ("Name: John Smith"): not a next key
_NAME_WORD = re.compile(r"[ \t]+([^\W\d_][\w'\u2019.\-]*)\b(?![\w'\u2019.\-]*\s*[:=])")
_NAME_TYPES = frozenset({FieldType.FIRST_NAME, FieldType.LAST_NAME, FieldType.FULL_NAME})
# words that end a name given without quotes ("first_name=john was rejected")
_NAME_STOP = frozenset(
    {
        *("a", "an", "and", "are", "as", "at", "because", "but", "by", "failed", "for"),
        *("from", "had", "has", "in", "is", "no", "not", "of", "on", "or", "rejected"),
        *("returned", "the", "to", "via", "was", "were", "with"),
    }
)
_SURROGATES = re.compile("[\ud800-\udfff]")


def _clean(s):
    """Text every encoder takes: a lone UTF-16 surrogate (a JSON escape such as
    ``\\ud800`` decodes to one) becomes U+FFFD."""
    if type(s) is str and not s.isascii():
        return _SURROGATES.sub("\ufffd", s)
    return s


def _ipv6_repl(m):
    text = m.group(0)
    if not any(c not in ":." for c in text):  # a bare "::" is punctuation
        return text
    return ":".join(text.split(":")[:2]) + ":****"


def _intl_repl(m):
    text = m.group(0)
    if sum(c.isdigit() for c in text) < 8:
        return text
    return f"+{m.group(1)} ***-****"


def mask_text(text: str) -> str:
    """Mask emails, phone numbers, SSNs, IP addresses and runs of 7+ digits in text.

    >>> mask_text("SSN 123-45-6789, ip 203.0.113.9")
    'SSN ***-**-6789, ip 203.0.***.***'
    """
    if not isinstance(text, str):
        return text
    if not _MAYBE_PII.search(text) and text.count(":") < 7:  # (7: an IPv6 address)
        return text if text.isascii() else _clean(text)
    # a platform's 24-hex object id holds digit runs but no person: keep it whole
    ids = _HEX_ID.findall(text)
    s = _HEX_ID.sub("\x00", text) if ids else text
    if "@" in s or "%40" in s or "\uff20" in s or "&#" in s:
        if '"' in s:
            s = _QUOTED_EMAIL.sub(lambda m: f'"{m.group(1)}{STARS}"{m.group(2)}{m.group(3)}', s)
        s = _EMAIL.sub(lambda m: f"{m.group(1)}{STARS}{m.group(2)}{m.group(3)}", s)
    if ":" in s and ("::" in s or s.count(":") >= 7):
        s = _IPV6.sub(_ipv6_repl, s)
    if _DIGITS3.search(s) or "+" in s:
        s = _BIRTH_DATE.sub(lambda m: m.group(1) + m.group(2) + mask_dob(m.group(3)), s)
        s = _SSN.sub(lambda m: f"***-**-{m.group(2)}", s)
        if "+" in s:
            s = _INTL_PHONE.sub(_intl_repl, s)
        s = _PHONE.sub(lambda m: f"({m.group(1)}) ***-****", s)
        s = _LOCAL_PHONE.sub("***-****", s)
        s = _LONG_DIGITS.sub(lambda m: "*" * len(m.group(0)), s)
    if "." in s:
        s = _IPV4.sub(lambda m: f"{m.group(1)}.{m.group(2)}.***.***", s)
    if ids:
        parts = s.split("\x00")
        s = "".join(p + (ids[i] if i < len(ids) else "") for i, p in enumerate(parts))
    return _clean(s)


def _mask_loose_pairs(text: str, depth: int = 0) -> str:
    """``"email": "jo@x.com"`` or ``ssn=123-45-6789`` in broken JSON or plain text; a pair
    inside another pair's value (``reason: first_name=John``, a URL's query) too."""
    out = []
    pos = 0
    while True:
        m = _LOOSE_PAIR.search(text, pos)
        if m is None:
            break
        out.append(text[pos : m.start()])
        pos = m.end()
        raw = m.group(4)
        quote = raw[0] if raw[:1] in ("'", '"') else ""
        inner = raw[len(quote) :]
        closing = quote if quote and inner.endswith(quote) and len(inner) >= 1 else ""
        if closing:
            inner = inner[:-1]
        ft = key_type(m.group(2))
        if not ft.pii:
            if "=" in inner or ":" in inner:
                if not quote:  # read on from the value: its own pairs come next
                    out.append(text[m.start() : m.start(4)])
                    pos = m.start(4)
                    continue
                if depth < 4:
                    inner = _mask_loose_pairs(inner, depth + 1)
            masked = inner
        else:
            if ft in _NAME_TYPES and not quote and inner:
                # an unquoted name runs on over the words that follow it (up to three,
                # capitalised like its first word): "Name: John Smith"
                upper = inner[:1].isupper()
                for _ in range(3):
                    w = _NAME_WORD.match(text, pos)
                    if w is None or w.group(1)[:1].isupper() != upper:
                        break
                    if w.group(1).lower() in _NAME_STOP:
                        break
                    inner += w.group(0)
                    pos = w.end()
            masked = _BY_TYPE[ft](inner) if inner else inner
        out.append(f"{m.group(1)}{m.group(2)}{m.group(1)}{m.group(3)}{quote}{masked}{closing}")
    out.append(text[pos:])
    return "".join(out)


_FORM = re.compile(r"^[A-Za-z_][\w.\-\[\]]*=[^&\s]*(&[A-Za-z_][\w.\-\[\]]*=[^&\s]*)+$")
_TAG = re.compile(r"<([A-Za-z_][\w.\-]*)>([^<]*)</\1>")


def _mask_form(s: str) -> str:
    """``a=1&first_name=John``: the values of PII keys masked, every other pair as it is."""
    parts = []
    for pair in s.split("&"):
        k, eq, v = pair.partition("=")
        ft = key_type(unquote_plus(k))
        if eq and ft.pii:
            masked = _mask_typed(ft, unquote_plus(v), ())
            parts.append(f"{k}={quote_plus(str(masked), safe='*@()')}")
        else:
            parts.append(pair)
    return mask_text("&".join(parts))


def _mask_string(s: str) -> str:
    """A string under a non-PII key: embedded JSON (also encoded twice), form data, XML
    tags, then free text; lone surrogates replaced."""
    return _clean(_mask_structured(s))


def _mask_structured(s: str) -> str:
    if not _NEEDS_WORK.search(s):
        return s
    stripped = s.strip()
    first = stripped[:1]
    if first in ("{", "[") and len(stripped) > 1:
        try:
            doc = json.loads(stripped)
        except ValueError:
            doc = None
        if isinstance(doc, (dict, list)):
            return json.dumps(_mask_plain(doc, ()), ensure_ascii=False, separators=(",", ":"))
    elif first == '"' and stripped[-1:] == '"' and ("{" in stripped or "[" in stripped):
        # a JSON document encoded as a JSON string: "{\"first_name\": \"John\"}"
        try:
            inner = json.loads(stripped)
        except ValueError:
            inner = None
        if isinstance(inner, str) and inner.strip()[:1] in ("{", "["):
            masked = _mask_string(inner)
            if masked != inner:
                return json.dumps(masked, ensure_ascii=False)
    if "=" in s and _FORM.match(stripped):
        return _mask_form(stripped)
    if "<" in s and "</" in s:
        s = _TAG.sub(
            lambda m: (
                f"<{m.group(1)}>{_mask_typed(key_type(m.group(1)), m.group(2), ())}</{m.group(1)}>"
            ),
            s,
        )
    s = mask_text(s)
    if ("=" in s or ":" in s) and any(c.isalpha() for c in s):
        s = _mask_loose_pairs(s)
    return s


def mask_free_text(text):
    """Mask a free-text value (a reason, an error message, a request body): embedded JSON,
    form data and XML by their keys, ``key: value`` pairs by the key's type, then shapes.
    Never raises: text that cannot be read is withheld.

    >>> mask_free_text("Invalid email: john@example.com (first_name=Jonathan)")
    'Invalid email: j***@example.com (first_name=J***)'
    """
    if not isinstance(text, str):
        return text
    refresh_field_types()
    try:
        return _clean(_mask_string(text))
    except Exception:  # never let text through because it could not be read
        return STARS


def _dumps(doc) -> str:
    return _clean(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))


def mask_json_text(text: str | None) -> str | None:
    """Mask a JSON text (a ``metadata`` or ``lead_snapshot`` value); compact output.

    >>> mask_json_text('{"phone": "5125551234", "state": "TX"}')
    '{"phone":"(512) ***-****","state":"TX"}'
    """
    if text is None:
        return None
    try:
        try:
            doc = json.loads(text)
        except (ValueError, TypeError):
            return _clean(json.dumps(mask_raw_text(str(text)), ensure_ascii=False))
        return _dumps(_mask_plain(doc, ()))
    except Exception:  # a document we cannot walk (nested too deep) is withheld
        return json.dumps(STARS)


def mask_raw_text(text: str | None) -> str | None:
    """Mask raw input text (a quarantined line): as JSON when it parses, else by its
    ``key: value`` pairs and free text."""
    if text is None:
        return None
    try:
        try:
            doc = json.loads(text)
        except (ValueError, TypeError):
            doc = None
        if isinstance(doc, (dict, list)):
            return _clean(json.dumps(_mask_plain(doc, ()), ensure_ascii=False))
        return _clean(_mask_string(text if isinstance(text, str) else _as_text(text)))
    except Exception:  # never let text through because it could not be read
        return STARS
