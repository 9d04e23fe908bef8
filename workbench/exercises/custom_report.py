"""Practice exercise 4 of the guide: build a custom event report.

Management asks for one table: per source, the leads it submitted, how many were
delivered, the delivery rate and the revenue buyers paid, over one day. The checker
says which columns and which sources are right; the expected table is counted from
the events as the simulator generated them.
"""

from __future__ import annotations

import datetime as dt
import json
import random

import pandas as pd

from ._base import Part
from ._world import END, World, build

NAME = "custom_event_report"
TITLE = "Build a custom event report"
#: What the question gives the trainee (``ex.given``)
GIVEN = ("day",)
COLUMNS = ("source", "submitted", "delivered", "delivery_rate", "revenue")


def make(seed: int) -> tuple[World, dict]:
    rng = random.Random(seed * 32452843 + 4)
    world = build(seed, [])
    day = (END - dt.timedelta(days=rng.choice([1, 2]))).date()
    since = pd.Timestamp(day, tz="UTC")
    until = since + pd.Timedelta(days=1)
    ev = world.events.select(["type", "timestamp", "lead_id", "metadata"]).to_pandas()
    sub = ev[ev.type == "source.submitted"]
    sub = sub[(sub.timestamp >= since) & (sub.timestamp < until)]
    source_of = {
        lead: json.loads(m).get("source") for lead, m in zip(sub.lead_id, sub.metadata, strict=True)
    }
    deliv = ev[(ev.type == "recipient.delivered") & ev.lead_id.isin(source_of)]
    deliv = deliv.assign(
        source=deliv.lead_id.map(source_of),
        revenue=[float(json.loads(m).get("revenue") or 0) for m in deliv.metadata],
    )
    table = (
        pd.DataFrame({"source": list(source_of.values())})
        .value_counts()
        .rename("submitted")
        .reset_index()
    )
    got = deliv.groupby("source").agg(delivered=("lead_id", "nunique"), revenue=("revenue", "sum"))
    table = table.merge(got, on="source", how="left").fillna({"delivered": 0, "revenue": 0.0})
    table["delivered"] = table.delivered.astype(int)
    table["delivery_rate"] = table.delivered / table.submitted
    table = table[list(COLUMNS)].sort_values("source").reset_index(drop=True)
    return world, {"day": day, "table": table}


def question(facts: dict) -> str:
    return (
        f"Management wants one table for {facts['day']:%Y-%m-%d} (UTC): for each source, the "
        "leads it submitted that day and what became of them. Build a DataFrame with one row "
        "per source and the columns:\n\n"
        "  source: the source's name\n"
        "  submitted: leads it submitted that day (source.submitted events)\n"
        "  delivered: how many of those leads a buyer took (recipient.delivered)\n"
        "  delivery_rate: delivered / submitted, between 0 and 1\n"
        "  revenue: what buyers paid for them, in dollars (the revenue of recipient.delivered)\n\n"
        "Then check it: ex.check(df). A chart of it (workbench.charts) makes the report."
    )


HINTS = (
    "Count by submission date: start from the source.submitted events of that day, then "
    "follow their leads (a lead submitted late in the day may be delivered after midnight).",
    "lead_summary has one row per lead with source, submitted_at, delivered and revenue: "
    "GROUP BY source over the leads submitted that day.",
    "delivery_rate is a share (0.85), not a percentage (85); revenue is the sum of the "
    "delivered events' revenue.",
)


def grade(facts: dict, answer) -> tuple[list[Part], str]:
    want: pd.DataFrame = facts["table"]
    if not isinstance(answer, pd.DataFrame):
        return [
            Part("answer", False, f"give a DataFrame with the columns {', '.join(COLUMNS)}")
        ], HINTS[1]
    missing = [c for c in COLUMNS if c not in answer.columns]
    if missing:
        return [Part(c, False, "missing column") for c in missing], HINTS[1]
    got = answer.copy()
    got["source"] = got["source"].astype(str).str.strip()
    extra = sorted(set(got.source) - set(want.source))
    absent = sorted(set(want.source) - set(got.source))
    parts = [
        Part(
            "source",
            not extra and not absent and got.source.is_unique,
            "one row per source"
            if not extra and not absent and got.source.is_unique
            else "; ".join(
                x
                for x in (
                    f"no source called {', '.join(extra)} submitted that day" if extra else "",
                    f"{len(absent)} source(s) missing" if absent else "",
                    "a source appears twice" if not got.source.is_unique else "",
                )
                if x
            ),
        )
    ]
    merged = want.merge(
        got.drop_duplicates("source"), on="source", how="left", suffixes=("", "_got")
    )
    tolerance = {"submitted": 0.5, "delivered": 0.5, "delivery_rate": 5e-4, "revenue": 0.005}
    for col, tol in tolerance.items():
        given = pd.to_numeric(merged[f"{col}_got"], errors="coerce")
        off = merged.source[~((given - merged[col]).abs() <= tol)].tolist()
        if not off:
            parts.append(Part(col, True, "right for every source"))
        else:
            said = f"off for {len(off)} of {len(merged)} sources ({', '.join(off[:3])}{'…' if len(off) > 3 else ''})"
            if col == "delivery_rate" and ((given / 100 - merged[col]).abs() <= tol).all():
                said = "give the share between 0 and 1, not a percentage"
            parts.append(Part(col, False, said))
    wrong = [p.name for p in parts if not p.ok]
    if not wrong:
        return parts, ""
    if "submitted" in wrong or "source" in wrong:
        return parts, HINTS[0]
    return parts, HINTS[2] if {"delivery_rate", "revenue"} & set(wrong) else HINTS[1]


def solve(facts: dict) -> pd.DataFrame:
    return facts["table"].copy()
