"""The dashboard's business figures: key figures against the period before, and the
leads behind each drop-off of the funnel. Queries as in ``analytics`` (registered in
``analytics.QUERIES``, the DuckDB/Spark subset), counted by submission date.

>>> kpis(session).kpi.tolist()                                       # doctest: +SKIP
['leads', 'acceptance_rate', 'delivery_rate', 'revenue', 'returned_revenue', 'net_revenue', 'costs', 'profit']
"""

from __future__ import annotations

import pandas as pd

from . import portable as _portable
from .analytics import QUERIES, RETURNS, SUBMISSION_DATE, _q, _window

__all__ = ["kpis", "KPIS", "LOWER_IS_BETTER", "STILL_COMING", "dropoff_leads", "DROPOFFS"]


_q(
    "kpis",
    f"""
SELECT COUNT(*) AS leads,
       COUNT(CASE WHEN accepted THEN 1 END) AS accepted,
       COUNT(CASE WHEN delivered THEN 1 END) AS delivered,
       SUM(revenue) AS revenue,
       SUM(COALESCE(r.returned_revenue, 0)) AS returned_revenue,
       SUM(total_cost) AS costs
FROM lead_summary
LEFT JOIN ({RETURNS}) r ON r.lead_id = lead_summary.lead_id
WHERE submitted_at >= $since AND submitted_at < $until
""",
)


def _narrow(sql: str, params: dict, column: str, values, key: str) -> tuple[str, dict]:
    """``sql`` with ``AND column IN (...)`` for ``values`` (bound one by one)."""
    values = [values] if isinstance(values, str) else list(values or ())
    if not values:
        return sql, params
    names = [f"{key}{i}" for i in range(len(values))]
    params = {**params, **dict(zip(names, values, strict=True))}
    cond = f"\n  AND {column} IN ({', '.join('$' + n for n in names)})"
    return sql.rstrip() + cond + "\n", params


#: The dashboard's key figures, in order: name -> (label, kind).
KPIS = {
    "leads": ("Leads", "count"),
    "acceptance_rate": ("Acceptance rate", "rate"),
    "delivery_rate": ("Delivery rate", "rate"),
    "revenue": ("Revenue", "money"),
    "returned_revenue": ("Returned revenue", "money"),
    "net_revenue": ("Net revenue", "money"),
    "costs": ("Costs", "money"),
    "profit": ("Profit", "money"),
}
#: Key figures where less is better (a fall is shown as good news).
LOWER_IS_BETTER = frozenset({"costs"})
#: Key figures a recent period has not finished: its leads have had less time to be
#: returned than the period before, so their change is shown, not judged.
STILL_COMING = frozenset({"returned_revenue", "net_revenue"})


def kpis(session, *, since=None, until=None, sources=(), buyers=()) -> pd.DataFrame:
    """The business at a glance, by submission date: leads, acceptance rate (accepted /
    submitted), delivery rate (delivered / accepted), revenue, returned revenue (what
    buyers took back when they returned leads, however late), net revenue (revenue less
    returns), costs and profit (the guide's: revenue less costs) in the window (returns
    come days after delivery: a recent window's returned revenue is not complete yet,
    so compare it with the period before with care, see ``STILL_COMING``), beside the same figures for the window of the same length just before it;
    ``sources`` and ``buyers`` narrow it to leads from those sources or delivered to
    those buyers.

    Without a window: the seven days up to the latest submission.

    >>> kpis(session).set_index("kpi").loc["leads", "value"]          # doctest: +SKIP
    20000.0
    """
    if since is None and until is None:
        hi = session.sql("SELECT max(submitted_at) AS hi FROM lead_summary").hi.iloc[0]
        until = (
            pd.Timestamp(hi) if not pd.isna(hi) else pd.Timestamp.now(tz="UTC")
        ) + pd.Timedelta(milliseconds=1)
        since = until - pd.Timedelta(days=7)
    w = _window(since, until)
    if since is None:
        raise ValueError("kpis needs since= when until= is given (the window's start)")
    length = w["until"] - w["since"]
    before = {"since": w["since"] - length, "until": w["since"]}
    sql = QUERIES["kpis"]

    def figures(params) -> dict:
        q, p = _narrow(sql, params, "source", sources, "src")
        q, p = _narrow(q, p, "recipient", buyers, "buyer")
        r = session.sql(_portable.render(q, _portable.dialect_of(session)), p).iloc[0]
        leads, accepted, delivered, revenue, returned, costs = (
            0.0 if pd.isna(r[c]) else float(r[c])
            for c in ("leads", "accepted", "delivered", "revenue", "returned_revenue", "costs")
        )
        return {
            "leads": leads,
            "acceptance_rate": accepted / leads if leads else float("nan"),
            "delivery_rate": delivered / accepted if accepted else float("nan"),
            "revenue": revenue,
            "returned_revenue": returned,
            "net_revenue": revenue - returned,
            "costs": costs,
            "profit": revenue - costs,
        }

    now, then = figures(w), figures(before)
    rows = []
    for name, (label, kind) in KPIS.items():
        value, previous = now[name], then[name]
        if kind == "rate":
            change = value - previous  # in points of the rate
        else:
            change = (value - previous) / abs(previous) if previous else float("nan")
        rows.append(
            {
                "kpi": name,
                "label": label,
                "kind": kind,
                "value": value,
                "previous": previous,
                "change": change,
            }
        )
    df = pd.DataFrame(rows)
    df.attrs.update(
        title="Key figures",
        date_basis=SUBMISSION_DATE,
        sql=_portable.render(sql),
        since=w["since"],
        until=w["until"],
        previous=(before["since"], before["until"]),
    )
    return df


#: Where a lead can drop out of the funnel: the stage it reached and the one it missed.
DROPOFFS = {
    "accepted": ("submitted", "accepted"),
    "delivered": ("accepted", "delivered"),
    "converted": ("delivered", "converted"),
}

_q(
    "dropoff_leads",
    """
SELECT lead_id FROM lead_summary
WHERE submitted_at >= $since AND submitted_at < $until
""",
)


def dropoff_leads(
    session, stage: str, *, since=None, until=None, sources=(), limit: int = 50_000
) -> list[str]:
    """The leads that reached the stage before ``stage`` but not ``stage`` itself (the
    funnel's drop-off there), by submission date: e.g. ``"delivered"`` gives leads
    accepted but never delivered.

    >>> dropoff_leads(session, "accepted")[:2]                          # doctest: +SKIP
    ['lead_0Bq...', 'lead_1cX...']
    """
    if stage not in DROPOFFS:
        raise ValueError(
            f"stage={stage!r}: a drop-off is at one of {', '.join(DROPOFFS)} (the stage missed)"
        )
    reached, missed = DROPOFFS[stage]
    sql = QUERIES["dropoff_leads"].rstrip() + f"\n  AND {reached} AND NOT {missed}\n"
    sql, params = _narrow(sql, _window(since, until), "source", sources, "src")
    sql = sql.rstrip() + f"\nORDER BY lead_id\nLIMIT {int(limit)}\n"
    return session.sql(
        _portable.render(sql, _portable.dialect_of(session)), params
    ).lead_id.tolist()
