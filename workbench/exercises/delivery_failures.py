"""Practice exercise 3 of the guide: find patterns in delivery failures.

One buyer's deliveries go wrong for some hours of the trainee's two days: its endpoint
fails technically, its acceptance sinks, or it stops buying a segment. The trainee
names the buyer, says whether the failures are technical or business rejections, and
when they started.
"""

from __future__ import annotations

import random

import pandas as pd

from ._base import Part, keyed, same_text, time_part
from ._world import World, build, spec

NAME = "delivery_failure_patterns"
TITLE = "Find patterns in delivery failures"
#: What the question gives the trainee (``ex.given``)
GIVEN = ()
KEYS = ("buyer", "failure", "started")
FAILURES = ("technical", "business")
_KINDS = {
    "buyer_endpoint_errors": ("technical", {"rate": 0.9}),
    "buyer_acceptance_drop": ("business", {"acceptance": 0.15}),
    "buyer_segment_rejection": (
        "business",
        {"field": "state", "values": "CA|TX|FL|NY|PA|OH|IL|GA|NC|MI"},
    ),
}
_BUYERS = ("Apex Insurance Group", "Horizon Direct", "Keystone Life", "Keystone Marketing")
#: How far from the real start a trainee's start may be
TOLERANCE = pd.Timedelta(hours=1)


def make(seed: int) -> tuple[World, dict]:
    rng = random.Random(seed * 15485863 + 3)
    kind = rng.choice(sorted(_KINDS))
    failure, params = _KINDS[kind]
    buyer = rng.choice(_BUYERS)
    world = build(
        seed,
        [spec(kind, buyer=buyer, start=f"{rng.randint(20, 55)}%", duration="10h", **params)],
        leads=4000,
    )
    inc = world.incidents[0]
    return world, {
        "kind": kind,
        "buyer": inc.entity or buyer,
        "failure": failure,
        "started": pd.Timestamp(world.observed(inc)[0]),  # the first failure it caused
    }


def question(facts: dict) -> str:
    return (
        "For some hours of these two days one buyer's deliveries went wrong. Find the "
        "pattern in the delivery failures (recipient.failed and recipient.error events):\n\n"
        "  buyer: which buyer\n"
        "  failure: 'technical' (errors: timeouts, 5xx, refused connections) or 'business' "
        "(the buyer answered and refused leads)\n"
        "  started: when it started: its first failed delivery (UTC, to within an hour)\n\n"
        'Answer with a dict: {"buyer": "…", "failure": "technical", '
        '"started": "2026-11-26 14:00"}.'
    )


HINTS = (
    "Count delivery failures per buyer and hour: SELECT entity_name, date_trunc('hour', "
    "timestamp) AS hour, type, count(*) FROM events WHERE type IN ('recipient.failed', "
    "'recipient.error') GROUP BY ALL.",
    "A technical failure is a recipient.error (error_type, http_status); a business "
    "rejection is a recipient.failed with a rejection_reason.",
    "The start is the first hour in which the buyer's failures jump above its usual level; "
    "charts.timeouts_figure or a line per buyer shows it.",
)


def grade(facts: dict, answer) -> tuple[list[Part], str]:
    example = '{"buyer": "Horizon Direct", "failure": "technical", "started": "2026-11-26 14:00"}'
    got, parts = keyed(answer, KEYS, example)
    if got is None:
        return parts, HINTS[0]
    if "buyer" in got:
        ok = same_text(got["buyer"], facts["buyer"])
        parts.append(Part("buyer", ok, "that buyer" if ok else "another buyer shows the pattern"))
    if "failure" in got:
        f = got["failure"]
        if not isinstance(f, str) or f.strip().lower() not in FAILURES:
            parts.append(Part("failure", False, "say 'technical' or 'business'"))
        else:
            ok = f.strip().lower() == facts["failure"]
            parts.append(
                Part(
                    "failure",
                    ok,
                    "that kind of failure"
                    if ok
                    else "look at which event type the failures are, and what they carry",
                )  # fmt: skip
            )
    if "started" in got:
        parts.append(time_part("started", got["started"], facts["started"], TOLERANCE, "an hour"))
    wrong = [p.name for p in parts if not p.ok]
    if not wrong:
        return parts, ""
    return parts, HINTS[{"buyer": 0, "failure": 1, "started": 2}.get(wrong[0], 0)]


def solve(facts: dict) -> dict:
    return {
        "buyer": facts["buyer"],
        "failure": facts["failure"],
        "started": f"{facts['started']:%Y-%m-%d %H:%M}",
    }
