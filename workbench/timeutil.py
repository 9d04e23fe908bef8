"""UTC times shared by every layer: parse what a person types, format what they read.

Events are stamped in UTC (the record's definition); every ``since``/``until`` a user
gives, as a datetime, a date, a pandas Timestamp or ISO-8601 text, becomes an aware UTC
datetime here, with one error message for text that is not a time.

>>> as_utc("2024-01-15T10:30:45Z", "since").isoformat()
'2024-01-15T10:30:45+00:00'
>>> utc_iso(as_utc("2024-01-15 10:30:45.123456", "at"))
'2024-01-15T10:30:45.123Z'
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["as_utc", "utcnow", "utc_iso", "cutoff"]


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def as_utc(value, what: str) -> dt.datetime:
    """A datetime, date, pandas Timestamp or ISO-8601 text as an aware UTC datetime
    (naive values are taken as UTC); a ValueError naming ``what`` otherwise."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{what}={value!r} is not an ISO-8601 date or time") from None
    if hasattr(value, "to_pydatetime"):  # a pandas Timestamp
        value = value.to_pydatetime()
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise ValueError(f"{what} must be a datetime or ISO-8601 text, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def utc_iso(t: dt.datetime | None = None) -> str:
    """A UTC time as ISO-8601 with milliseconds and ``Z``: ``2026-11-27T14:30:45.123Z``."""
    t = (t or utcnow()).astimezone(dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


_DURATION = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(d|day|days|h|hour|hours|m|min|minute|minutes|w|week|weeks)\s*$"
)


def cutoff(older_than, now=None, *, what: str = "older_than") -> dt.datetime:
    """The moment ``older_than`` before ``now``: a timedelta, a number of days, text such
    as ``"30 days"`` or ``"12 hours"``, or an absolute datetime (returned as it is).

    >>> cutoff("2 days", now="2024-01-03T00:00:00Z").isoformat()
    '2024-01-01T00:00:00+00:00'
    """
    now = as_utc(now, "now") if now is not None else utcnow()
    if isinstance(older_than, dt.timedelta):
        return _before(now, older_than, older_than, what)
    if isinstance(older_than, int | float) and not isinstance(older_than, bool):
        return _before(now, {"days": older_than}, older_than, what)
    if isinstance(older_than, str):
        m = _DURATION.match(older_than.lower())
        if m:
            n, unit = float(m.group(1)), m.group(2)[0]
            span = {"d": "days", "h": "hours", "m": "minutes", "w": "weeks"}[unit]
            return _before(now, {span: n}, older_than, what)
        try:
            return as_utc(older_than, what)
        except ValueError:
            pass
    elif isinstance(older_than, dt.datetime | dt.date) or hasattr(older_than, "to_pydatetime"):
        return as_utc(older_than, what)
    raise ValueError(
        f"{what}={older_than!r}: give a timedelta, a number of days, text such as "
        "'30 days' or '12 hours', or a datetime"
    )


def _before(now: dt.datetime, span, given, what: str) -> dt.datetime:
    """``now`` less ``span`` (a timedelta, or its keyword arguments), or an error naming
    ``what`` and the spans that fit the calendar (back to the year 1)."""
    most = (now - dt.datetime.min.replace(tzinfo=dt.UTC)).days
    try:
        delta = span if isinstance(span, dt.timedelta) else dt.timedelta(**span)
        return now - delta
    except OverflowError:
        why = "reaches before the year 1"
    except ValueError:  # NaN
        why = "is not a span of time"
    raise ValueError(f"{what}={given!r} {why}; give a span of 0 to {most:,} days")
