"""Practice exercise 1 of the guide: debug a rejected lead using events.

The trainee's world has one planted problem that rejects leads (a source sending bad
phones, a source leaving out a field, a buyer refusing a segment, a field mapping that
corrupts zips, a business-hours filter in the wrong zone); the trainee is given one
lead it rejected and answers which step rejected it, the reason that step gave, and
which of the problems caused it.
"""

from __future__ import annotations

from ._base import Part, keyed, same_text
from ._world import World, build, spec

NAME = "debug_rejected_lead"
TITLE = "Debug a rejected lead using events"
#: What the question gives the trainee (``ex.given``)
GIVEN = ("lead",)

#: The problems a rejected lead of this exercise may come from, as the trainee sees them
CAUSES = {
    "nine_digit_phones": "a source sends phone numbers with 9 digits",
    "source_rejection_spike": "a source's leads arrive without a required field",
    "buyer_segment_rejection": "a buyer stops buying a segment of leads (a business rule)",
    "field_mapping_corruption": "a field mapping after enhancement corrupts a field",
    "business_hours_wrong_timezone": "a business-hours filter is checked in the wrong time zone",
}
_REJECTING = ("source.rejected", "filter.failed", "recipient.failed")
KEYS = ("step", "reason", "cause")


def _plant(world_rng, sources, buyers) -> tuple[str, dict]:
    kind = world_rng.choice(sorted(CAUSES))
    start = {"start": f"{world_rng.randint(15, 45)}%", "duration": "14h"}
    if kind == "nine_digit_phones":
        return kind, {"source": world_rng.choice(sources), "rate": 0.9, **start}
    if kind == "source_rejection_spike":
        return kind, {"source": world_rng.choice(sources), "field": "email", "rate": 0.8, **start}
    if kind == "buyer_segment_rejection":
        return kind, {"buyer": world_rng.choice(buyers), "field": "state",
                      "values": "CA|TX|FL|NY|PA|OH|IL|GA", **start}  # fmt: skip
    if kind == "field_mapping_corruption":
        return kind, {"field": "zip", "transform": "truncate", "reject_rate": 0.9, **start}
    return kind, {"filter": "Business Hours", "timezone": "UTC", **start}


def make(seed: int) -> tuple[World, dict]:
    """The world of ``seed`` and the private facts its checker needs."""
    import random

    rng = random.Random(seed * 7919 + 1)
    sources = ["Acme Leads", "BrightPath Media", "Evergreen Life Quotes", "LeadRiver",
               "Summit Affiliates"]  # fmt: skip
    buyers = ["Apex Insurance Group", "Horizon Direct", "Keystone Life", "Keystone Marketing"]
    kind, params = _plant(rng, sources, buyers)
    world = build(seed, [spec(kind, **params)])
    inc = world.incidents[0]
    changed = sorted(world.incident_leads.get(inc.incident_id, ()))
    # leads the problem changed that a step rejected: finally rejected ones first (a
    # buyer refusing a segment may see its lead bought by the next buyer)
    found = world.store.sql(
        "SELECT lead_id, bool_or(outcome IN ('rejected', 'filtered', 'buyer_rejected')) AS final "
        "FROM lead_summary WHERE list_contains($ids, lead_id) AND lead_id IN (SELECT lead_id "
        "FROM events WHERE type IN ('source.rejected', 'filter.failed', 'recipient.failed')) "
        "GROUP BY lead_id ORDER BY lead_id",
        {"ids": changed},
    )
    rejected = found.lead_id[found.final].tolist() or found.lead_id.tolist()
    if not rejected:  # the planted problem rejected nothing this time: say so plainly
        world.close()
        raise RuntimeError(f"seed {seed}: the planted {kind} rejected no lead; try another seed")
    lead = rng.choice(rejected)
    steps = world.store.sql(
        "SELECT coalesce(step_name, entity_name) AS step, entity_name, rejection_reason "
        "FROM events WHERE lead_id = ? "
        "AND type IN ('source.rejected', 'filter.failed', 'recipient.failed') ORDER BY seq",
        [lead],
    )
    named = dict(zip(steps.step, steps.rejection_reason, strict=True))
    for entity, reason in zip(steps.entity_name, steps.rejection_reason, strict=True):
        named.setdefault(entity, reason)  # the step's name or its entity's name will do
    facts = {"lead": lead, "kind": kind, "steps": named}
    return world, facts


def question(facts: dict) -> str:
    causes = "\n".join(f"  {k}: {v}" for k, v in CAUSES.items())
    return (
        f"Lead {facts['lead']} was rejected by a step of the flow. Using its events, find which step rejected it, "
        "the reason that step gave, and which of these problems caused it:\n\n"
        f"{causes}\n\n"
        'Answer with a dict: {"step": "<step name>", "reason": "<the reason, as the event '
        'gives it>", "cause": "<one of the names above>"}.'
    )


HINTS = (
    "Start from the lead's timeline: ex.session.timeline(lead_id). Which events have the "
    "outcome failure?",
    "The step's name is in the event's step_name (or entity_name) column, its reason in "
    "rejection_reason.",
    "To find the cause, compare with other leads: did the same step reject many leads with "
    "the same reason at the same time? Look at the lead's snapshot: is a field odd (a short "
    "phone, a missing email, a 4-digit zip, a state)?",
    "investigate.explain(ex.session, lead_id) names the scenario; the lead snapshot before "
    "and after each step (investigate.diff_snapshots) shows what changed.",
)


def grade(facts: dict, answer) -> tuple[list[Part], str]:
    example = '{"step": "Horizon Direct", "reason": "…", "cause": "buyer_segment_rejection"}'
    got, parts = keyed(answer, KEYS, example)
    if parts and got is None:
        return parts, HINTS[0]
    steps = facts["steps"]
    step = next((s for s in steps if same_text(got.get("step"), s)), None)
    if "step" in got:
        parts.append(
            Part("step", True, "that step rejected the lead")
            if step
            else Part("step", False, "no step of that name rejected this lead")
        )
    if "reason" in got:
        if step is not None:
            ok = same_text(got.get("reason"), steps[step])
        else:
            ok = any(same_text(got.get("reason"), r) for r in steps.values())
        parts.append(
            Part("reason", True, "the reason the step gave")
            if ok
            else Part("reason", False, "not the reason the rejecting step gave, word for word")
        )
    if "cause" in got:
        cause = got.get("cause")
        if isinstance(cause, str) and cause.strip() not in CAUSES:
            parts.append(Part("cause", False, f"give one of: {', '.join(CAUSES)}"))
        else:
            ok = isinstance(cause, str) and cause.strip() == facts["kind"]
            parts.append(
                Part("cause", True, "that problem rejected it")
                if ok
                else Part("cause", False, "the events point to another of the problems")
            )
    order = {"step": 1, "reason": 1, "cause": 2}
    wrong = [p for p in parts if not p.ok]
    return parts, (HINTS[min(order.get(wrong[0].name, 0), len(HINTS) - 1)] if wrong else "")


def solve(facts: dict) -> dict:
    step, reason = next(iter(facts["steps"].items()))
    return {"step": step, "reason": reason, "cause": facts["kind"]}
