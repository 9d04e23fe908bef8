"""What the analyses share: the registry of their SQL (``QUERIES``, the DuckDB/Spark
subset), how a query runs through a Session and says what it is (``attrs``), the
window of time, the date bases and time zones. A leaf of ``analysis``: the analyses'
modules import it, it imports none of them.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd

from ..timeutil import as_utc as _utc
from . import portable as _portable

__all__ = ["QUERIES", "EVENT_DATE", "SUBMISSION_DATE", "BASES"]

EVENT_DATE = "event date"
SUBMISSION_DATE = "submission date"
BASES = {"event": EVENT_DATE, "submission": SUBMISSION_DATE}

#: Every analysis query by name, for the portability checks and for reading.
QUERIES: dict[str, str] = {}


def _q(name: str, sql: str) -> str:
    QUERIES[name] = sql
    return sql


_FAR_PAST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_FAR_FUTURE = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


def _window(since, until) -> dict:
    return {
        "since": _FAR_PAST if since is None else _utc(since, "since"),
        "until": _FAR_FUTURE if until is None else _utc(until, "until"),
    }


_HOUR_MS = 3_600_000
_BUCKET_MS = {"minute": 60_000, "hour": _HOUR_MS, "day": 86_400_000}


def _bucket_times(numbers: pd.Series, ms: int) -> pd.Series:
    """Bucket numbers (milliseconds since 1970 // ms) as UTC timestamps."""
    return pd.to_datetime(numbers.astype("int64") * ms, unit="ms", utc=True)


def _basis(basis: str) -> str:
    if basis not in BASES:
        raise ValueError(f"basis={basis!r}: use 'submission' (by when leads arrived) or 'event'")
    return BASES[basis]


def _run(session, name: str, params: dict, *, title: str, basis: str, **attrs) -> pd.DataFrame:
    sql = _portable.render(QUERIES[name], _portable.dialect_of(session))
    df = session.sql(sql, params)
    df.attrs.update(title=title, date_basis=basis, sql=sql, **attrs)
    for edge, far in (("since", _FAR_PAST), ("until", _FAR_FUTURE)):
        if params.get(edge) is not None and params[edge] != far:
            df.attrs[edge] = params[edge]  # the window asked for, shown under a chart
    if "since" not in df.attrs or "until" not in df.attrs:
        _extent(session, params, df.attrs)
    return df


def _extent(session, params: dict, attrs: dict) -> None:
    """The first and last event the open-ended window holds, as ``attrs["first_event"]``
    and ``attrs["last_event"]``, so a chart over "everything" still says which days."""
    window = {k: params.get(k) or far for k, far in (("since", _FAR_PAST), ("until", _FAR_FUTURE))}
    ext = session.sql(
        "SELECT min(timestamp) AS first_event, max(timestamp) AS last_event FROM events "
        "WHERE timestamp >= $since AND timestamp < $until",
        window,
    )
    if len(ext) and not pd.isna(ext.first_event[0]):
        attrs["first_event"], attrs["last_event"] = ext.first_event[0], ext.last_event[0]


def _tz_name(tz: str) -> str:
    """``tz`` checked as an IANA zone name, as the SQL takes it."""
    return _tz(tz).key


def _tz(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except Exception:
        raise ValueError(
            f"unknown time zone {tz!r}; use an IANA name such as 'America/Chicago'"
        ) from None
