"""Reading the platform's values: ids, times, numbers, text in typed field objects,
the lead as a step saw it, error classes. Small functions the API mapper is made of.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

#: ``vars`` keys that describe the context, not the lead; other keys are earlier steps'
#: appended data and join the snapshot.
CONTEXT_VARS = frozenset(
    {"lead", "flow", "source", "submission", "account", "recipient", "random", "feedback"}
)
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def stable_event_id(*parts: str) -> str:
    """``evt_`` + 20 base62 characters, the same for the same parts on every import.

    >>> stable_event_id("api", "65a1b2c3d4e5f60718293c01") == stable_event_id(
    ...     "api", "65a1b2c3d4e5f60718293c01")
    True
    """
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    # one character per byte: ~119 bits, ample for unique ids (the slight bias of
    # `% 62` does not matter for an id)
    return "evt_" + "".join([_B62[b % 62] for b in digest[:20]])


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC text with milliseconds.

    >>> iso_ms(1705329000040)
    '2024-01-15T14:30:00.040Z'
    """
    t = _EPOCH + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


_MIN_MS = -62_135_596_800_000
_MAX_MS = 253_402_300_799_999


def epoch_ms(value) -> int | None:
    """Epoch milliseconds from a number, digits, or ISO-8601 text (None if none of these)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        # years 1..9999: what a timestamp can hold
        return int(round(value)) if _MIN_MS <= value <= _MAX_MS else None
    if isinstance(value, str):
        s = value.strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", s):
            return epoch_ms(float(s))
        try:
            t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            return None
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.UTC)
        try:
            return epoch_ms((t - _EPOCH) // dt.timedelta(milliseconds=1))
        except OverflowError:
            return None
    return None


def number(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().lstrip("$"))
        except ValueError:
            return None
    if isinstance(value, dict):  # a typed value
        return number(value.get("normal", value.get("raw")))
    return None


def whole_ms(value) -> int | None:
    n = number(value)
    if n is None or n < 0 or n > 2_147_483_647:
        return None
    return int(round(n))


def text(value) -> str | None:
    if isinstance(value, dict):  # a typed value: analyses read `normal`
        value = value.get("normal", value.get("raw"))
    if value is None or isinstance(value, (dict, list)):
        return None
    s = str(value).strip()
    return s or None


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def is_typed(value) -> bool:
    return isinstance(value, dict) and ("raw" in value or "normal" in value)


def flatten(prefix: str, value, out: dict) -> None:
    """Earlier steps' appended data as dotted keys (``trustedform.age_seconds``); typed
    field objects and lists stay whole."""
    if isinstance(value, dict) and value and not is_typed(value):
        for k, v in value.items():
            flatten(f"{prefix}.{k}", v, out)
        return
    key = prefix if prefix not in out else f"appended.{prefix}"
    out[key] = value


def snapshot(vars_: dict) -> dict:
    """The lead as the step saw it: ``vars.lead`` verbatim plus earlier steps' data.

    >>> snapshot({"lead": {"id": "L1", "phone_1": {"normal": "5125550123", "valid": True}},
    ...           "trustedform": {"age_seconds": 12}, "flow": {"id": "F1"}})
    {'id': 'L1', 'phone_1': {'normal': '5125550123', 'valid': True}, 'trustedform.age_seconds': 12}
    """
    snap = dict(as_dict(vars_.get("lead")))
    for k, v in vars_.items():
        if k not in CONTEXT_VARS:
            flatten(k, v, snap)
    return snap


def error_type(reason, status) -> str | None:
    """A short error class from the reason text and HTTP status (None when unclear)."""
    r = (reason or "").lower() if isinstance(reason, str) else ""
    if "timeout" in r or "timed out" in r:
        return "timeout"
    if isinstance(status, int) and status >= 400:
        return f"http_{status}"
    if any(w in r for w in ("connect", "refused", "reset", "unreachable", "dns")):
        return "connection"
    return None


MAX_DURATION_MS = 2**31 - 1


def feedback_type(value) -> str | None:
    v = str(value).strip().lower() if value is not None else ""
    if v in ("return", "returned", "returns"):
        return "return"
    if v in ("conversion", "converted", "conversions", "convert"):
        return "conversion"
    return None


def timeout(reason) -> dict | None:
    return {"timed_out": True} if error_type(reason, None) == "timeout" else None


def price(obj: dict, appended, consumed: set) -> float | None:
    for k in ("price", "purchase_price"):
        n = number(obj.get(k))
        if n is not None:
            consumed.add(k)
            return n
    return number(as_dict(appended).get("price"))


def buyer_lead_id(appended) -> str | None:
    a = as_dict(appended)
    return (
        text(as_dict(a.get("lead")).get("id"))
        or text(a.get("buyer_lead_id"))
        or text(a.get("lead_id"))
        or text(a.get("id"))
    )


def ip(request: dict) -> str | None:
    for k in ("ip", "remote_ip", "remote_address", "client_ip"):
        if text(request.get(k)):
            return text(request.get(k))
    headers = as_dict(request.get("headers"))
    for k, v in headers.items():
        if str(k).lower() == "x-forwarded-for" and isinstance(v, str):
            return v.split(",")[0].strip() or None
    return None
