"""The guide's analyses over many leads, each a function returning a DataFrame.

Every function takes a Session (anything with ``sql(query, params)``), reads through
it, and returns a plain DataFrame whose ``attrs`` say what it is: ``title``,
``date_basis`` (``"event date"``: events counted when they happened, or ``"submission
date"``: leads counted by when they arrived, so late feedback is credited to the
lead's own day — the two disagree when feedback comes days later) and the ``sql``
that ran. The SQL is the subset DuckDB and Spark share (see ``workbench._portable``),
so the same text can run over the Parquet tiers on a cluster.

>>> import workbench
>>> session = workbench.open_store()          # a Session in notebooks; anything with .sql()
>>> rejection_analysis(session).attrs["date_basis"]
'event date'
"""

from __future__ import annotations

import pandas as pd

from .shared import (  # noqa: F401  the registry and helpers, kept at their old address
    _FAR_FUTURE,
    _FAR_PAST,
    BASES,
    EVENT_DATE,
    QUERIES,
    SUBMISSION_DATE,
    _basis,
    _q,
    _run,
    _tz_name,
    _window,
)

__all__ = [
    "step_durations",
    "step_duration_samples",
    "success_rates",
    "rejection_analysis",
    "enhancement_value",
    "source_performance",
    "buyer_behaviour",
    "buyer_acceptance_by_hour",
    "buyer_rejection_reasons",
    "funnel_by_source",
    "lead_paths",
    "events_by_hour",
    "business_hours_check",
    "errors_by_type",
    "timeouts_over_time",
    "retry_effectiveness",
    "QUERIES",
]


# --------------------------------------------------------------------------- performance

_q(
    "step_durations",
    """
SELECT step_name,
       AVG(duration_ms) AS avg_duration,
       MIN(duration_ms) AS min_duration,
       MAX(duration_ms) AS max_duration,
       COUNT(*) AS executions
FROM events
WHERE timestamp >= $since AND timestamp < $until
  AND duration_ms IS NOT NULL AND type <> 'flow.completed'
GROUP BY step_name
ORDER BY avg_duration DESC
""",
)


def step_durations(session, *, since=None, until=None) -> pd.DataFrame:
    """The guide's Step Duration analysis: average, min, max and count per step.

    ``flow.completed`` is left out: its duration is the whole flow's, not a step's.

    >>> step_durations(session, since="2026-11-20").columns.tolist()[:2]   # doctest: +SKIP
    ['step_name', 'avg_duration']
    """
    return _run(
        session, "step_durations", _window(since, until), title="Step durations", basis=EVENT_DATE
    )


_q(
    "step_duration_samples",
    """
SELECT step_name, duration_ms
FROM events
WHERE timestamp >= $since AND timestamp < $until
  AND duration_ms IS NOT NULL AND type <> 'flow.completed'
  AND seq % $every = 0
ORDER BY seq
""",
)


def step_duration_samples(
    session, *, since=None, until=None, max_rows: int = 50_000
) -> pd.DataFrame:
    """Durations of (about ``max_rows``) step events, for a box plot per step.

    Every k-th event by seq is kept, so the sample is spread evenly and repeatable."""
    counts = session.sql(
        "SELECT COUNT(*) AS n FROM events WHERE timestamp >= $since AND timestamp < $until",
        _window(since, until),
    )
    every = max(1, int(counts.n.iloc[0]) // max_rows + 1)
    return _run(
        session,
        "step_duration_samples",
        {**_window(since, until), "every": every},
        title="Step duration samples",
        basis=EVENT_DATE,
        every=every,
    )


_q(
    "success_rates",
    """
SELECT type, outcome,
       COUNT(*) AS count,
       CAST(COUNT(*) AS DOUBLE) * 100 / SUM(COUNT(*)) OVER (PARTITION BY type) AS percentage
FROM events
WHERE type LIKE $types AND timestamp >= $since AND timestamp < $until
GROUP BY type, outcome
ORDER BY type, outcome
""",
)


_q(
    "success_rates_by_step",
    """
SELECT step_name, outcome,
       COUNT(*) AS count,
       CAST(COUNT(*) AS DOUBLE) * 100 / SUM(COUNT(*)) OVER (PARTITION BY step_name) AS percentage
FROM events
WHERE type LIKE $types AND timestamp >= $since AND timestamp < $until
GROUP BY step_name, outcome
ORDER BY step_name, outcome
""",
)


def success_rates(
    session, types: str = "recipient.%", *, by: str = "type", since=None, until=None
) -> pd.DataFrame:
    """The guide's Success Rates: outcome counts and percentage per event type.

    ``types`` is a LIKE pattern (default ``'recipient.%'``, as in the guide). Most event
    types have one outcome (``recipient.failed`` is always a failure), so per type the
    shares are 100%; ``by="step"`` gives each step's (each buyer's, each service's)
    shares of success, failure and error instead, the view that compares them.

    >>> success_rates(session, by="step").head(3)                  # doctest: +SKIP
    """
    if by not in ("type", "step"):
        raise ValueError(f"by={by!r}: use 'type' (the guide's query) or 'step'")
    return _run(
        session,
        "success_rates" if by == "type" else "success_rates_by_step",
        {"types": types, **_window(since, until)},
        title=f"Outcomes of {types} by {'event type' if by == 'type' else 'step'}",
        basis=EVENT_DATE,
    )


# --------------------------------------------------------------------------- quality

_REJECTION_TYPES = ("source.rejected", "filter.failed", "recipient.failed")

_q(
    "rejection_analysis",
    """
SELECT e.type AS stage,
       COALESCE(e.rejection_reason, 'unknown') AS rejection_reason,
       COUNT(*) AS rejections,
       CAST(COUNT(*) AS DOUBLE) / SUM(COUNT(*)) OVER (PARTITION BY e.type) AS share
FROM events e
WHERE e.outcome = 'failure' AND e.type IN ('source.rejected', 'filter.failed', 'recipient.failed')
  AND e.timestamp >= $since AND e.timestamp < $until
GROUP BY e.type, COALESCE(e.rejection_reason, 'unknown')
ORDER BY stage, rejections DESC, rejection_reason
""",
)
_q(
    "rejection_analysis_by_source",
    """
SELECT e.type AS stage,
       COALESCE(e.rejection_reason, 'unknown') AS rejection_reason,
       COALESCE(s.source, 'unknown') AS source,
       COUNT(*) AS rejections,
       CAST(COUNT(*) AS DOUBLE) / SUM(COUNT(*)) OVER (PARTITION BY e.type) AS share
FROM events e
LEFT JOIN lead_summary s ON s.lead_id = e.lead_id
WHERE e.outcome = 'failure' AND e.type IN ('source.rejected', 'filter.failed', 'recipient.failed')
  AND e.timestamp >= $since AND e.timestamp < $until
GROUP BY e.type, COALESCE(e.rejection_reason, 'unknown'), COALESCE(s.source, 'unknown')
ORDER BY stage, rejections DESC, rejection_reason, source
""",
)


def rejection_analysis(
    session,
    stages=_REJECTION_TYPES,
    *,
    by_source: bool = False,
    since=None,
    until=None,
) -> pd.DataFrame:
    """Why leads are rejected: rejections per reason and their share within each stage
    (source.rejected, filter.failed, recipient.failed). ``by_source=True`` traces each
    rejection back to the lead's source (the guide's Data Quality Patterns)."""
    stages = [stages] if isinstance(stages, str) else list(stages)
    unknown = [x for x in stages if x not in _REJECTION_TYPES]
    if unknown:
        raise ValueError(
            f"stages {unknown} are not rejection events; use {', '.join(_REJECTION_TYPES)}"
        )
    df = _run(
        session,
        "rejection_analysis_by_source" if by_source else "rejection_analysis",
        _window(since, until),
        title="Rejections by reason" + (" and source" if by_source else ""),
        basis=EVENT_DATE,
    )
    # the share is within each stage, so keeping some stages leaves the others' intact
    out = df[df.stage.isin(stages)].reset_index(drop=True)
    out.attrs.update(df.attrs)
    return out


_q(
    "enhancement_value",
    """
SELECT CASE WHEN x.lead_id IS NULL THEN 'not reached'
            WHEN x.validated = 1 THEN 'with' ELSE 'without' END AS grp,
       COUNT(*) AS leads,
       COUNT(CASE WHEN s.delivered THEN 1 END) AS delivered,
       CAST(COUNT(CASE WHEN s.delivered THEN 1 END) AS DOUBLE) / COUNT(*) AS delivery_rate,
       SUM(COALESCE(x.cost, 0)) AS enhancement_cost,
       SUM(s.revenue) AS revenue
FROM lead_summary s
LEFT JOIN (
    SELECT lead_id,
           MAX(CASE WHEN type = 'enhancement.success' AND outcome = 'success' THEN 1 ELSE 0 END)
               AS validated,
           SUM(COALESCE(cost, 0)) AS cost
    FROM events
    WHERE type LIKE 'enhancement.%' AND entity_name = $service
    GROUP BY lead_id
) x ON x.lead_id = s.lead_id
WHERE s.accepted AND s.submitted_at >= $since AND s.submitted_at < $until
GROUP BY CASE WHEN x.lead_id IS NULL THEN 'not reached'
              WHEN x.validated = 1 THEN 'with' ELSE 'without' END
""",
)

_GROUP_MEANS = {
    "with": "reached {service} and were validated",
    "without": "reached {service} and were not validated (failed, error, skipped, outage)",
}


def enhancement_value(
    session, service: str = "Phone Validation", *, since=None, until=None
) -> pd.DataFrame:
    """Is an enhancement worth it? Like for like: of the accepted leads that *reached*
    the ``service`` step, those it validated (``with``) against those it did not
    (``without``: it failed, erred, was skipped or was down). Per group: leads,
    delivered, delivery rate, what the service cost, revenue, and the revenue the
    difference in delivery rate is worth (``added_revenue``, on the "with" row).

    Leads that never reached the step (filtered or rejected before it) are not
    compared: their count is in ``attrs["not_reached"]``, and ``compared`` says which
    leads each row holds.

    >>> v = enhancement_value(session, "Phone Validation")       # doctest: +SKIP
    >>> v[["group", "leads", "delivery_rate", "added_revenue"]]  # doctest: +SKIP
    """
    raw = _run(
        session,
        "enhancement_value",
        {"service": service, **_window(since, until)},
        title=f"Value of {service}",
        basis=SUBMISSION_DATE,
        service=service,
    ).rename(columns={"grp": "group"})
    not_reached = int(raw.loc[raw.group == "not reached", "leads"].sum())
    df = (
        raw[raw.group.isin(list(_GROUP_MEANS))]
        .set_index("group")
        .reindex(list(_GROUP_MEANS))
        .reset_index()
    )
    df["leads"] = df.leads.fillna(0).astype("int64")
    df["delivered"] = df.delivered.fillna(0).astype("int64")
    df[["enhancement_cost", "revenue"]] = df[["enhancement_cost", "revenue"]].fillna(0.0)
    df = df[df.leads > 0].reset_index(drop=True)
    df["compared"] = [
        f"accepted leads that {_GROUP_MEANS[g].format(service=service)}" for g in df.group
    ]
    df["cost_per_lead"] = df.enhancement_cost / df.leads
    rates = df.set_index("group").delivery_rate
    uplift = float("nan")
    if {"with", "without"} <= set(rates.index):
        with_ = df.group == "with"
        per_delivery = df.loc[with_, "revenue"].iloc[0] / max(df.loc[with_, "delivered"].iloc[0], 1)
        uplift = rates["with"] - rates["without"]
        df["added_revenue"] = [
            uplift * n * per_delivery if g == "with" else 0.0
            for g, n in zip(df.group, df.leads, strict=True)
        ]
    else:
        df["added_revenue"] = 0.0
    df.attrs.update(
        raw.attrs,
        delivery_rate_uplift=uplift,
        not_reached=not_reached,
        leads_compared=int(df.leads.sum()),
        compared=(
            f"accepted leads that reached {service}: {int(df.leads.sum()):,} "
            f"({', '.join(f'{g} {n:,}' for g, n in zip(df.group, df.leads, strict=True))}); "
            f"{not_reached:,} accepted leads never reached it and are left out"
        ),
    )
    return df


# --------------------------------------------------------------------------- business


#: Revenue buyers took back, per lead: each return's ``revenue_adjustment`` (negative
#: in the feedback event) as a positive amount. Joined to the lead summary by lead; a
#: return comes after its lead's submission, so only returns from a day before ``$since``
#: on are read (the day allows for clocks that disagree).
def _returned_amount(table: str = "") -> str:
    """What one return took back, positive: its ``revenue_adjustment``, negated."""
    return f"-COALESCE(CAST(json_field({table}metadata, 'revenue_adjustment') AS DOUBLE), 0)"


RETURNS = f"""
    SELECT lead_id,
           SUM({_returned_amount()})
               AS returned_revenue
    FROM events
    WHERE type = 'feedback.received' AND feedback_type = 'return'
      AND timestamp >= $since - INTERVAL 1 DAY
    GROUP BY lead_id"""
_q(
    "source_performance_submission",
    f"""
SELECT COALESCE(source, 'unknown') AS source,
       COUNT(CASE WHEN submitted THEN 1 END) AS submitted,
       COUNT(CASE WHEN accepted THEN 1 END) AS accepted,
       CAST(COUNT(CASE WHEN accepted THEN 1 END) AS DOUBLE)
           / NULLIF(COUNT(CASE WHEN submitted THEN 1 END), 0) AS acceptance_rate,
       COUNT(CASE WHEN delivered THEN 1 END) AS delivered,
       CAST(COUNT(CASE WHEN delivered THEN 1 END) AS DOUBLE)
           / NULLIF(COUNT(CASE WHEN accepted THEN 1 END), 0) AS delivery_rate,
       SUM(lead_cost) AS lead_cost,
       SUM(enhancement_cost) AS enhancement_cost,
       SUM(revenue) AS revenue,
       SUM(COALESCE(r.returned_revenue, 0)) AS returned_revenue,
       SUM(revenue) - SUM(COALESCE(r.returned_revenue, 0)) AS net_revenue,
       SUM(revenue) - SUM(total_cost) AS profit,
       SUM(revenue) - SUM(COALESCE(r.returned_revenue, 0)) - SUM(total_cost) AS net_profit
FROM lead_summary
LEFT JOIN ({RETURNS}) r ON r.lead_id = lead_summary.lead_id
WHERE submitted_at >= $since AND submitted_at < $until
GROUP BY COALESCE(source, 'unknown')
ORDER BY profit DESC
""",
)
_q(
    "source_performance_event",
    # the returns apart, over feedback events only: read in the one aggregate, each
    # event's metadata would be decoded (and on a masked view, masked) to find them
    f"""
WITH moved AS (
    SELECT COALESCE(s.source, 'unknown') AS source,
           COUNT(CASE WHEN e.type = 'source.submitted' THEN 1 END) AS submitted,
           COUNT(CASE WHEN e.type = 'source.accepted' THEN 1 END) AS accepted,
           COUNT(CASE WHEN e.type = 'recipient.delivered' AND e.outcome = 'success' THEN 1 END)
               AS delivered,
           SUM(CASE WHEN e.type LIKE 'source.%' THEN COALESCE(e.cost, 0) ELSE 0 END) AS lead_cost,
           SUM(CASE WHEN e.type LIKE 'enhancement.%' THEN COALESCE(e.cost, 0) ELSE 0 END)
               AS enhancement_cost,
           SUM(CASE WHEN e.type = 'recipient.delivered' AND e.outcome = 'success'
                    THEN COALESCE(e.revenue, 0) ELSE 0 END) AS revenue,
           SUM(COALESCE(e.cost, 0)) AS total_cost
    FROM events e
    LEFT JOIN lead_summary s ON s.lead_id = e.lead_id
    WHERE e.timestamp >= $since AND e.timestamp < $until
    GROUP BY COALESCE(s.source, 'unknown')
),
returned AS (
    SELECT COALESCE(s.source, 'unknown') AS source,
           SUM({_returned_amount("e.")}) AS returned_revenue
    FROM events e
    LEFT JOIN lead_summary s ON s.lead_id = e.lead_id
    WHERE e.type = 'feedback.received' AND e.feedback_type = 'return'
      AND e.timestamp >= $since AND e.timestamp < $until
    GROUP BY COALESCE(s.source, 'unknown')
)
SELECT m.source, m.submitted, m.accepted,
       CAST(m.accepted AS DOUBLE) / NULLIF(m.submitted, 0) AS acceptance_rate,
       m.delivered,
       CAST(m.delivered AS DOUBLE) / NULLIF(m.accepted, 0) AS delivery_rate,
       m.lead_cost, m.enhancement_cost, m.revenue,
       COALESCE(r.returned_revenue, 0) AS returned_revenue,
       m.revenue - COALESCE(r.returned_revenue, 0) AS net_revenue,
       m.revenue - m.total_cost AS profit,
       m.revenue - COALESCE(r.returned_revenue, 0) - m.total_cost AS net_profit
FROM moved m
LEFT JOIN returned r ON r.source = m.source
ORDER BY profit DESC, m.source
""",
)


def source_performance(
    session, *, basis: str = "submission", since=None, until=None
) -> pd.DataFrame:
    """The guide's Source Performance: per source, leads submitted, acceptance rate,
    enhancement cost, delivery rate (delivered / accepted), revenue and profit
    (revenue minus lead and enhancement costs), and beside them what returns took back:
    ``returned_revenue``, ``net_revenue`` (revenue less returns) and ``net_profit``.

    ``basis="submission"`` counts leads submitted in the window with everything that
    later happened to them; ``basis="event"`` counts what happened in the window."""
    label = _basis(basis)
    return _run(
        session,
        f"source_performance_{basis}",
        _window(since, until),
        title="Source performance",
        basis=label,
    )


_q(
    "buyer_behaviour",
    f"""
SELECT e.entity_name AS recipient,
       COUNT(*) AS attempts,
       COUNT(CASE WHEN e.type = 'recipient.delivered' AND e.outcome = 'success' THEN 1 END) AS accepted,
       COUNT(CASE WHEN e.type = 'recipient.failed' THEN 1 END) AS rejected,
       COUNT(CASE WHEN e.type = 'recipient.error' THEN 1 END) AS errors,
       CAST(COUNT(CASE WHEN e.type = 'recipient.delivered' AND e.outcome = 'success' THEN 1 END) AS DOUBLE)
           / NULLIF(COUNT(CASE WHEN e.type IN ('recipient.delivered', 'recipient.failed') THEN 1 END), 0)
           AS acceptance_rate,
       AVG(e.duration_ms) AS avg_response_ms,
       SUM(COALESCE(e.revenue, 0)) AS revenue,
       SUM(COALESCE(e.revenue, 0))
           / NULLIF(COUNT(CASE WHEN e.type = 'recipient.delivered' AND e.outcome = 'success' THEN 1 END), 0)
           AS revenue_per_lead,
       MAX(f.conversions) AS conversions,
       MAX(f.returns) AS returns,
       MAX(f.returned_revenue) AS returned_revenue
FROM events e
LEFT JOIN (
    SELECT entity_name,
           COUNT(CASE WHEN feedback_type = 'conversion' THEN 1 END) AS conversions,
           COUNT(CASE WHEN feedback_type = 'return' THEN 1 END) AS returns,
           SUM(CASE WHEN feedback_type = 'return'
                    THEN {_returned_amount()}
                    ELSE 0 END) AS returned_revenue
    FROM events
    WHERE type = 'feedback.received' AND timestamp >= $since AND timestamp < $until
    GROUP BY entity_name
) f ON f.entity_name = e.entity_name
WHERE e.type LIKE 'recipient.%' AND e.timestamp >= $since AND e.timestamp < $until
GROUP BY e.entity_name
ORDER BY acceptance_rate
""",
)


def buyer_behaviour(session, *, since=None, until=None) -> pd.DataFrame:
    """The guide's Buyer Behavior: per buyer, attempts, acceptance rate, average
    response time, revenue per accepted lead, and feedback quality (conversions and
    returns per accepted lead; ``returned_revenue`` the buyer took back with its returns
    in the window, ``net_revenue`` the revenue less that)."""
    df = _run(
        session, "buyer_behaviour", _window(since, until), title="Buyer behaviour", basis=EVENT_DATE
    )
    for col in ("conversions", "returns"):
        df[col] = df[col].fillna(0).astype("int64")  # buyers with no feedback yet
    df["returned_revenue"] = df.returned_revenue.fillna(0.0)
    df["net_revenue"] = df.revenue - df.returned_revenue
    df["conversion_rate"] = df.conversions / df.accepted.where(df.accepted > 0)
    df["return_rate"] = df.returns / df.accepted.where(df.accepted > 0)
    return df


_q(
    "recipient_hours",
    """
SELECT entity_name AS recipient,
       local_hour(timestamp, $tz) AS hour,
       COUNT(CASE WHEN type = 'recipient.delivered' AND outcome = 'success' THEN 1 END) AS accepted,
       COUNT(CASE WHEN type IN ('recipient.delivered', 'recipient.failed') THEN 1 END) AS decided
FROM events
WHERE type IN ('recipient.delivered', 'recipient.failed')
  AND timestamp >= $since AND timestamp < $until
GROUP BY entity_name, local_hour(timestamp, $tz)
""",
)


def buyer_acceptance_by_hour(session, *, tz: str = "UTC", since=None, until=None) -> pd.DataFrame:
    """Each buyer's acceptance rate by hour of day in time zone ``tz``.

    Each decision counts in its own local hour (the SQL converts every timestamp), so
    zones half an hour from UTC (Asia/Kolkata) and days that change their offset (a
    daylight-saving change) come out right."""
    raw = _run(
        session,
        "recipient_hours",
        {**_window(since, until), "tz": _tz_name(tz)},
        title="",
        basis=EVENT_DATE,
    )
    df = raw[["recipient", "hour", "accepted", "decided"]].sort_values(
        ["recipient", "hour"], ignore_index=True
    )
    df["acceptance_rate"] = df.accepted / df.decided
    df.attrs.update(raw.attrs, title=f"Buyer acceptance by hour ({tz})", tz=tz)
    return df


_q(
    "buyer_rejection_reasons",
    """
SELECT entity_name AS recipient,
       COALESCE(rejection_reason, 'unknown') AS rejection_reason,
       COUNT(*) AS rejections,
       CAST(COUNT(*) AS DOUBLE) / SUM(COUNT(*)) OVER (PARTITION BY entity_name) AS share
FROM events
WHERE type = 'recipient.failed' AND timestamp >= $since AND timestamp < $until
GROUP BY entity_name, COALESCE(rejection_reason, 'unknown')
ORDER BY recipient, rejections DESC
""",
)


def buyer_rejection_reasons(session, *, since=None, until=None) -> pd.DataFrame:
    """Each buyer's rejection reasons and their share of that buyer's rejections."""
    return _run(
        session,
        "buyer_rejection_reasons",
        _window(since, until),
        title="Buyer rejection reasons",
        basis=EVENT_DATE,
    )


_q(
    "funnel_submission",
    """
SELECT COALESCE(source, 'unknown') AS source,
       COUNT(CASE WHEN submitted THEN 1 END) AS submitted,
       COUNT(CASE WHEN accepted THEN 1 END) AS accepted,
       COUNT(CASE WHEN delivered THEN 1 END) AS delivered,
       COUNT(CASE WHEN converted THEN 1 END) AS converted
FROM lead_summary
WHERE submitted_at >= $since AND submitted_at < $until
GROUP BY COALESCE(source, 'unknown')
ORDER BY submitted DESC
""",
)
_q(
    "funnel_event",
    """
SELECT COALESCE(s.source, 'unknown') AS source,
       COUNT(CASE WHEN e.type = 'source.submitted' THEN 1 END) AS submitted,
       COUNT(CASE WHEN e.type = 'source.accepted' THEN 1 END) AS accepted,
       COUNT(CASE WHEN e.type = 'recipient.delivered' AND e.outcome = 'success' THEN 1 END) AS delivered,
       COUNT(CASE WHEN e.type = 'feedback.received'
                 AND e.feedback_type = 'conversion' THEN 1 END) AS converted
FROM events e
LEFT JOIN lead_summary s ON s.lead_id = e.lead_id
WHERE e.type IN ('source.submitted', 'source.accepted', 'recipient.delivered', 'feedback.received')
  AND e.timestamp >= $since AND e.timestamp < $until
GROUP BY COALESCE(s.source, 'unknown')
ORDER BY submitted DESC
""",
)


def funnel_by_source(session, *, basis: str = "submission", since=None, until=None) -> pd.DataFrame:
    """Submitted -> accepted -> delivered -> converted, per source, with stage rates.

    By submission date a conversion that arrives days later is credited to the window
    its lead arrived in; by event date it counts in the window it happened."""
    label = _basis(basis)
    df = _run(
        session, f"funnel_{basis}", _window(since, until), title="Funnel by source", basis=label
    )
    for a, b in (("accepted", "submitted"), ("delivered", "accepted"), ("converted", "delivered")):
        df[f"{a}_rate"] = df[a] / df[b].where(df[b] > 0)
    return df


_q(
    "lead_paths",
    """
SELECT COALESCE(source, 'unknown') AS source,
       outcome,
       COALESCE(recipient, '(no buyer)') AS recipient,
       COUNT(*) AS leads
FROM lead_summary
WHERE submitted_at >= $since AND submitted_at < $until
GROUP BY COALESCE(source, 'unknown'), outcome, COALESCE(recipient, '(no buyer)')
ORDER BY leads DESC, source, outcome, recipient
""",
)


def lead_paths(session, *, since=None, until=None) -> pd.DataFrame:
    """Source -> outcome -> buyer with the number of leads on each path (a Sankey's input)."""
    return _run(
        session, "lead_paths", _window(since, until), title="Lead paths", basis=SUBMISSION_DATE
    )


# the guide's Advanced Debugging over many leads lives in .patterns; here is its address
from .patterns import (  # noqa: E402
    business_hours_check,
    errors_by_type,
    events_by_hour,
    retry_effectiveness,
    timeouts_over_time,
)
