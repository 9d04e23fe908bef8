"""Practice exercise 2 of the guide: calculate step performance from events.

The trainee computes, for one step and one day, how often the step ran, how long it
took on average and how often it succeeded. The expected figures are counted from the
events as the simulator generated them, not from the store.
"""

from __future__ import annotations

import datetime as dt
import random

import pyarrow.compute as pc

from ._base import Part, close_number, keyed
from ._world import END, World, build

NAME = "step_performance"
TITLE = "Calculate step performance from events"
#: What the question gives the trainee (``ex.given``)
GIVEN = ("step", "day")
KEYS = ("executions", "avg_duration_ms", "success_rate")
_STEPS = ("Phone Validation", "TrustedForm", "Email Verification", "Apex Insurance Group",
          "Horizon Direct", "Keystone Life", "Keystone Marketing", "Beacon Call Center")  # fmt: skip


def make(seed: int) -> tuple[World, dict]:
    rng = random.Random(seed * 104729 + 2)
    world = build(seed, [])
    # the last whole UTC day of the world, and a step that ran often enough that day
    day = (END - dt.timedelta(days=1)).date()
    since = dt.datetime.combine(day, dt.time(), dt.UTC)
    until = since + dt.timedelta(days=1)
    ev = world.events
    in_day = pc.and_(
        pc.and_(pc.greater_equal(ev["timestamp"], since), pc.less(ev["timestamp"], until)),
        pc.and_(pc.is_valid(ev["duration_ms"]), pc.not_equal(ev["type"], "flow.completed")),
    )
    ids = world.step_ids()
    day_events = ev.filter(in_day)
    counts = {
        name: pc.sum(pc.equal(day_events["step_id"], ids[name])).as_py() or 0 for name in _STEPS
    }
    step = rng.choice([name for name in _STEPS if counts[name] >= 50] or list(_STEPS))
    rows = day_events.filter(pc.equal(day_events["step_id"], ids[step]))
    n = rows.num_rows
    facts = {
        "step": step,
        "day": day,
        "executions": n,
        "avg_duration_ms": pc.mean(rows["duration_ms"]).as_py() if n else 0.0,
        "success_rate": (pc.sum(pc.equal(rows["outcome"], "success")).as_py() / n) if n else 0.0,
    }
    return world, facts


def question(facts: dict) -> str:
    return (
        f"How did the step {facts['step']} perform on {facts['day']:%Y-%m-%d} (UTC, midnight "
        "to midnight)? From its events, count:\n\n"
        "  executions: how many of its events carry a duration (every call, retries included)\n"
        "  avg_duration_ms: their average duration in milliseconds\n"
        "  success_rate: the share of them whose outcome is success, between 0 and 1\n\n"
        'Answer with a dict: {"executions": 123, "avg_duration_ms": 456.7, "success_rate": 0.95}.'
    )


HINTS = (
    "Read the step's events with ex.session.sql(...): WHERE step_name = '…' and a time range "
    "on timestamp.",
    "The day runs from 00:00 UTC to the next day's 00:00 UTC: timestamp >= '… 00:00:00+00' "
    "AND timestamp < '… 00:00:00+00'.",
    "One query does it: SELECT count(*), avg(duration_ms), avg(CASE WHEN outcome = 'success' "
    "THEN 1 ELSE 0 END) FROM events WHERE … AND duration_ms IS NOT NULL.",
)


def grade(facts: dict, answer) -> tuple[list[Part], str]:
    example = '{"executions": 123, "avg_duration_ms": 456.7, "success_rate": 0.95}'
    got, parts = keyed(answer, KEYS, example)
    if got is None:
        return parts, HINTS[0]
    if "executions" in got:
        ok = close_number(got["executions"], facts["executions"], rel=0, abs_=0.5)
        parts.append(
            Part(
                "executions",
                ok,
                "the number of the step's events that day"
                if ok
                else "not the count of the step's events with a duration that day",
            )  # fmt: skip
        )
    if "avg_duration_ms" in got:
        ok = close_number(got["avg_duration_ms"], facts["avg_duration_ms"], rel=1e-3, abs_=0.5)
        parts.append(
            Part(
                "avg_duration_ms",
                ok,
                "their average duration"
                if ok
                else "not their average duration in ms (within half a millisecond)",
            )  # fmt: skip
        )
    if "success_rate" in got:
        given = got["success_rate"]
        ok = close_number(given, facts["success_rate"], rel=0, abs_=5e-4)
        says = "the share that succeeded" if ok else "not the share of them that succeeded"
        if not ok and close_number(given, facts["success_rate"] * 100, rel=0, abs_=0.05):
            says = "give the share between 0 and 1, not a percentage"
        parts.append(Part("success_rate", ok, says))
    wrong = [p.name for p in parts if not p.ok]
    if not wrong:
        return parts, ""
    if "executions" in wrong:
        return parts, HINTS[1]
    return parts, HINTS[2]


def solve(facts: dict) -> dict:
    return {k: facts[k] for k in KEYS}
