"""Debugging many leads at once: time patterns by local hour, business hours, errors,
timeouts and retries (the guide's Advanced Debugging). Re-exported by ``analytics``:
``analytics.errors_by_type`` is the address people use.
"""

from __future__ import annotations

import pandas as pd

from .shared import _BUCKET_MS, EVENT_DATE, _bucket_times, _q, _run, _tz_name, _window

__all__ = [
    "events_by_hour",
    "business_hours_check",
    "errors_by_type",
    "timeouts_over_time",
    "retry_effectiveness",
]


# --------------------------------------------------------------------------- debugging many

_BY_HOUR = """
SELECT local_hour(timestamp, $tz) AS hour,
       {key},
       COUNT(*) AS events,
       COUNT(CASE WHEN outcome IN ('failure', 'error') THEN 1 END) AS failures
FROM events
WHERE type LIKE $types AND timestamp >= $since AND timestamp < $until{where}
GROUP BY local_hour(timestamp, $tz), {key}
"""
_q("events_by_hour", _BY_HOUR.format(key="type", where=""))
_q(
    "events_by_hour_by_step",
    _BY_HOUR.format(
        key="step_name",
        where="\n  AND step_name IS NOT NULL AND type <> 'flow.completed'",
    ),
)


def events_by_hour(
    session, types: str = "%", *, by: str = "type", tz: str = "UTC", since=None, until=None
) -> pd.DataFrame:
    """Time-based patterns: events and failures by hour of day in ``tz`` (each event in
    its own local hour), per event type, or with ``by="step"`` per step (each buyer,
    service, filter): per type a failure rate is 0% or 100% (the type says the outcome),
    per step it shows the hours a step fails in.

    >>> events_by_hour(session, "recipient.%", by="step", tz="America/Chicago")  # doctest: +SKIP
    """
    if by not in ("type", "step"):
        raise ValueError(f"by={by!r}: use 'type' or 'step'")
    key = "type" if by == "type" else "step_name"
    raw = _run(
        session,
        "events_by_hour" if by == "type" else "events_by_hour_by_step",
        {"types": types, "tz": _tz_name(tz), **_window(since, until)},
        title="",
        basis=EVENT_DATE,
    )
    df = raw[[key, "hour", "events", "failures"]].sort_values([key, "hour"], ignore_index=True)
    df["failure_rate"] = df.failures / df.events
    what = "" if by == "type" else " by step"
    df.attrs.update(raw.attrs, title=f"Events by hour of day{what} ({tz})", tz=tz)
    return df


_q(
    "filter_hours",
    """
SELECT entity_name AS filter,
       COALESCE(rejection_reason, '') AS rejection_reason,
       local_hour(timestamp, $tz) AS hour,
       COUNT(CASE WHEN type = 'filter.failed' THEN 1 END) AS failed,
       COUNT(*) AS evaluated
FROM events
WHERE type IN ('filter.passed', 'filter.failed') AND timestamp >= $since AND timestamp < $until
GROUP BY entity_name, COALESCE(rejection_reason, ''), local_hour(timestamp, $tz)
""",
)


def business_hours_check(
    session,
    *,
    tz: str = "America/New_York",
    open_hour: int = 9,
    close_hour: int = 17,
    since=None,
    until=None,
) -> pd.DataFrame:
    """Does each filter fail leads in the hours you expect? Per filter and local hour
    (in ``tz``): evaluated, failed, failure rate, and whether the hour is inside
    ``open_hour``-``close_hour``. A business-hours filter set to the wrong time zone
    shows its failures shifted against the expected band (``flag`` says where)."""
    raw = _run(
        session,
        "filter_hours",
        {**_window(since, until), "tz": _tz_name(tz)},
        title="",
        basis=EVENT_DATE,
    )
    df = raw.groupby(["filter", "hour"], as_index=False)[["failed", "evaluated"]].sum()
    df["failure_rate"] = df.failed / df.evaluated
    df["business_hours"] = df.hour.between(open_hour, close_hour - 1)
    closed = df[~df.business_hours].groupby("filter").failure_rate.mean()
    open_ = df[df.business_hours].groupby("filter").failure_rate.mean()
    df["flag"] = [
        "fails inside business hours" if open_.get(f, 0) > closed.get(f, 0) + 0.2 else ""
        for f in df["filter"]
    ]
    df.attrs.update(
        raw.attrs,
        title=f"Filter failures by local hour ({tz})",
        tz=tz,
        business_hours=(open_hour, close_hour),
    )
    return df


_q(
    "errors_by_type",
    """
SELECT entity_name,
       type,
       COALESCE(error_type, 'unknown') AS error_type,
       COUNT(*) AS errors,
       MIN(http_status) AS min_http_status,
       MAX(http_status) AS max_http_status,
       AVG(duration_ms) AS avg_duration
FROM events
WHERE ((type = 'enhancement.failure' AND outcome = 'failure')
       OR (outcome = 'error' AND type NOT IN ('retry.attempted', 'flow.completed')))
  AND timestamp >= $since AND timestamp < $until
GROUP BY entity_name, type, COALESCE(error_type, 'unknown')
ORDER BY errors DESC, entity_name, type, error_type
""",
)


def errors_by_type(session, *, since=None, until=None) -> pd.DataFrame:
    """Intermittent failures: errors (recipient.error, enhancement.error, ...) and
    enhancement failures (a provider that answers ``provider_unavailable``, ``no_match``)
    per service or buyer and error type, with HTTP status range and duration.

    Each failed call counts once: the ``retry.attempted`` event that precedes a retry
    is not an error of its own (its outcome is the retry's, already counted by the
    event the retry produced; see :func:`retry_effectiveness`), nor is a flow that
    completed in error because of one.

    >>> errors_by_type(session).head(3)                        # doctest: +SKIP
    """
    return _run(
        session,
        "errors_by_type",
        _window(since, until),
        title="Errors and enhancement failures",
        basis=EVENT_DATE,
    )


_q(
    "timeouts_over_time",
    """
SELECT epoch_bucket(timestamp, $bucket_ms) AS bucket,
       entity_name,
       COUNT(CASE WHEN error_type = 'timeout' THEN 1 END) AS timeouts,
       COUNT(CASE WHEN outcome = 'error' THEN 1 END) AS errors,
       COUNT(*) AS calls
FROM events
WHERE (type LIKE 'recipient.%' OR type LIKE 'enhancement.%')
  AND timestamp >= $since AND timestamp < $until
GROUP BY epoch_bucket(timestamp, $bucket_ms), entity_name
ORDER BY bucket, entity_name
""",
)


def timeouts_over_time(session, *, bucket: str = "hour", since=None, until=None) -> pd.DataFrame:
    """Timeouts and errors per ``bucket`` (minute, hour, day) and service or buyer."""
    if bucket not in _BUCKET_MS:
        raise ValueError(f"bucket={bucket!r}: use 'minute', 'hour' or 'day'")
    df = _run(
        session,
        "timeouts_over_time",
        {"bucket_ms": _BUCKET_MS[bucket], **_window(since, until)},
        title=f"Timeouts per {bucket}",
        basis=EVENT_DATE,
    )
    df = df[df.calls > 0].reset_index(drop=True)
    df["bucket"] = _bucket_times(df.bucket, _BUCKET_MS[bucket])
    df["timeout_rate"] = df.timeouts / df.calls
    return df


_q(
    "retry_effectiveness",
    """
SELECT retry_count,
       COUNT(*) AS retries,
       COUNT(CASE WHEN outcome = 'success' THEN 1 END) AS succeeded,
       CAST(COUNT(CASE WHEN outcome = 'success' THEN 1 END) AS DOUBLE) / COUNT(*) AS success_rate,
       AVG(duration_ms) AS avg_retry_ms
FROM events
WHERE type = 'retry.attempted' AND timestamp >= $since AND timestamp < $until
GROUP BY retry_count
ORDER BY retry_count
""",
)


def retry_effectiveness(session, *, since=None, until=None) -> pd.DataFrame:
    """Retry effectiveness: per attempt number, how many retries succeeded and how long
    a retry took."""
    return _run(
        session,
        "retry_effectiveness",
        _window(since, until),
        title="Retry effectiveness",
        basis=EVENT_DATE,
    )
