"""Reading a store while a stream lands events in it: the newest events and the rates.

Rates are per minute of event time over the last few minutes before the newest event,
so a stream running faster than real time shows the rates of its own clock.

>>> rates(session, minutes=5).columns.tolist()                  # doctest: +SKIP
['type', 'events', 'per_minute', 'failures']
"""

from __future__ import annotations

import pandas as pd

from . import explore

__all__ = ["newest", "rates", "latest_time"]


def newest(session, n: int = 20) -> pd.DataFrame:
    """The ``n`` newest events (newest first), the columns an explorer page shows."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10_000:
        raise ValueError(f"n={n!r}: give a whole number of events from 1 to 10000")
    return explore.page(session, explore.Filters(), 0, n)


def latest_time(session) -> pd.Timestamp | None:
    """The newest event's time (None for an empty store)."""
    hi = session.sql("SELECT max(timestamp) AS hi FROM events").hi.iloc[0]
    return None if pd.isna(hi) else pd.Timestamp(hi)


def rates(session, minutes: float = 5, *, now=None) -> pd.DataFrame:
    """Events per type over the ``minutes`` before ``now`` (default: the newest event):
    columns type, events, per_minute, failures (failure or error outcomes), most first."""
    if isinstance(minutes, bool) or not isinstance(minutes, int | float) or not minutes > 0:
        raise ValueError(f"minutes={minutes!r}: give a number of minutes above 0")
    end = pd.Timestamp(now) if now is not None else latest_time(session)
    cols = ["type", "events", "per_minute", "failures"]
    if end is None:
        return pd.DataFrame(columns=cols)
    if end.tzinfo is None:
        end = end.tz_localize("UTC")
    start = end - pd.Timedelta(minutes=minutes)
    df = session.sql(
        "SELECT type, count(*) AS events, "
        "count(CASE WHEN outcome IN ('failure', 'error') THEN 1 END) AS failures "
        "FROM events WHERE timestamp > ? AND timestamp <= ? GROUP BY type "
        "ORDER BY events DESC, type",
        [start.to_pydatetime(), end.to_pydatetime()],
    )
    df["per_minute"] = df.events / float(minutes)
    df.attrs.update(title=f"Events per minute, {minutes:g} minutes to {end:%H:%M:%S} UTC")
    return df[cols]
