"""Incident drills: a fresh store with one hidden incident, found the way an on-call
analyst would find it, and checked.

``new_drill(seed, path)`` simulates three days of the sample flow with one incident
whose kind, entity, window and strength are all drawn from the seed, and keeps the
answer in the store file, out of every relation a Session reads (the ``incidents``
table stays empty). ``check_drill`` says which parts of an answer are right, the
window within :data:`TOLERANCE`; ``reveal`` shows the answer to a trainer or admin.

    workbench drill new --seed 7 --store drill.duckdb
    workbench drill check --store drill.duckdb --incident buyer_endpoint_errors \\
        --entity "Horizon Direct" --since "2026-11-25 14:00" --until "2026-11-25 20:00"
    workbench drill reveal --store drill.duckdb --user adam --role admin
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..access import connect
from ..access.config import NotPermittedError
from ..sim.incidents import INCIDENT_TYPES
from ..store import open_store
from ._base import SOLUTION_ROLES, ExerciseError, Feedback, Part, same_text, time_part
from ._world import build, spec

__all__ = ["Drill", "new_drill", "check_drill", "reveal", "DRILL_KINDS", "TOLERANCE"]

#: How far the window's edges may be from the incident's
TOLERANCE = pd.Timedelta(minutes=90)
_KEY = "drill"
_SOURCES = ("Acme Leads", "BrightPath Media", "Evergreen Life Quotes", "LeadRiver",
            "Summit Affiliates")  # fmt: skip
_BUYERS = ("Apex Insurance Group", "Horizon Direct", "Keystone Life", "Keystone Marketing")

#: kind -> (entity parameter, the entities it may hit, strength parameter, its values)
DRILL_KINDS = {
    "nine_digit_phones": ("source", _SOURCES, "rate", (0.7, 0.9)),
    "source_rejection_spike": ("source", _SOURCES, "rate", (0.7, 0.9)),
    "enhancement_outage": ("service", ("Phone Validation",), "rate", (0.8, 0.95)),
    "enhancement_timeouts": ("service", ("Email Verification",), "rate", (0.6, 0.8)),
    "business_hours_wrong_timezone": ("filter", ("Business Hours",), "timezone", ("UTC",)),
    "buyer_segment_rejection": ("buyer", _BUYERS, "values", ("CA|TX|FL|NY", "CA|TX|FL|NY|PA|OH")),
    "buyer_endpoint_errors": ("buyer", _BUYERS, "rate", (0.6, 0.8)),
    "buyer_acceptance_drop": ("buyer", _BUYERS, "acceptance", (0.3, 0.45)),
}


@dataclass(frozen=True)
class Drill:
    """A drill store: where it is, and the briefing a trainee starts from."""

    seed: int
    store: Path | None
    briefing: str

    def __str__(self) -> str:
        return self.briefing

    def _repr_html_(self) -> str:
        from ..display import card

        return card(
            f"Incident drill {self.seed}",
            [("store", self.store or "in memory")],
            status="warn",
            notes=self.briefing.split("\n\n")[1:],
        )


def _draw(seed: int) -> tuple[str, dict]:
    rng = random.Random(seed * 2_147_483_647 + 11)
    kind = rng.choice(sorted(DRILL_KINDS))
    entity_param, entities, strength_param, strengths = DRILL_KINDS[kind]
    params = {
        entity_param: rng.choice(entities),
        strength_param: rng.choice(strengths),
        "start": f"{rng.randint(20, 70)}%",
        "duration": f"{rng.choice([4, 6, 8, 10])}h",
    }
    if kind == "enhancement_timeouts":
        params["duration"] = "1d"  # it bites in the afternoon hours only
    return kind, params


def new_drill(seed: int, path=None, *, leads: int = 3000, days: float = 3) -> Drill:
    """Build a drill store at ``path`` (a new file; in memory when None) for ``seed``.

    >>> drill = new_drill(7, "drill.duckdb")                           # doctest: +SKIP
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ExerciseError(f"seed={seed!r}: give a whole number >= 0")
    if path is not None:
        path = Path(path)
        if path.exists():
            raise ExerciseError(f"{path} exists: a drill starts from a new store file")
    kind, params = _draw(seed)
    world = build(seed, [spec(kind, **params)], leads=leads, days=days, path=path)
    inc = world.incidents[0]
    first, last = world.observed(inc)  # what the events can show, not the plan
    answer = {
        "seed": seed,
        "incident": kind,
        "entity": inc.entity,
        "since": first.isoformat(),
        "until": last.isoformat(),
        "planned": [inc.starts_at.isoformat(), inc.ends_at.isoformat()],
        "parameters": {k: str(v) for k, v in inc.parameters.items()},
        "description": inc.description,
    }
    world.store.keep_private(_KEY, json.dumps(answer))
    first, last = world.store.sql("SELECT min(timestamp), max(timestamp) FROM events").iloc[0]
    world.close()
    kinds = "\n".join(f"  {k}: {INCIDENT_TYPES[k].summary}" for k in sorted(DRILL_KINDS))
    briefing = (
        f"Incident drill {seed}: {leads:,} leads from {first:%Y-%m-%d %H:%M} to "
        f"{last:%Y-%m-%d %H:%M} UTC.\n\n"
        "Something went wrong for a few hours. Find what (one of the incidents below), which "
        "source, service, filter or buyer it hit, and when it started and ended (UTC, to "
        "within 90 minutes of its first and last sign in the events).\n\n"
        f"{kinds}\n\n"
        "Check your answer: workbench drill check --store STORE --incident KIND --entity NAME "
        "--since TIME --until TIME"
    )
    return Drill(seed, path, briefing)


def _answer(store) -> dict:
    text = store.private(_KEY)
    if text is None:
        raise ExerciseError(
            f"{store.path or 'this store'} is not a drill store (`workbench drill new` makes one)"
        )
    return json.loads(text)


def _open(path):
    p = Path(path)
    if not p.exists():
        raise ExerciseError(f"no drill store at {p} (`workbench drill new --store {p}` makes one)")
    return open_store(p, read_only=True)


def check_drill(path, *, incident, entity, since, until) -> Feedback:
    """Which parts of a drill answer are right: the incident's kind, its entity, and
    the window (each edge within :data:`TOLERANCE`). Never says the answer."""
    with _open(path) as store:
        truth = _answer(store)
    parts = []
    if not isinstance(incident, str) or incident.strip() not in DRILL_KINDS:
        parts.append(Part("incident", False, f"give one of: {', '.join(sorted(DRILL_KINDS))}"))
    else:
        ok = incident.strip() == truth["incident"]
        parts.append(Part("incident", ok, "that is what happened" if ok else
                          "the events point to another incident"))  # fmt: skip
    ok = same_text(entity, truth["entity"] or "")
    parts.append(Part("entity", ok, "that is what it hit" if ok else "it hit something else"))
    for name, given in (("since", since), ("until", until)):
        parts.append(time_part(name, given, truth[name], TOLERANCE, "90 minutes"))
    wrong = [p.name for p in parts if not p.ok]
    hint = ""
    if "incident" in wrong or "entity" in wrong:
        hint = "alerts.alerts(session) and analytics.errors_by_type(session) name the subject"
    elif wrong:
        hint = "count the subject's failures per hour (date_trunc('hour', timestamp))"
    return Feedback(f"drill {truth['seed']}", tuple(parts), hint)


def reveal(path, *, user: str, role: str | None = None) -> dict:
    """The drill's answer, for a trainer or admin (their role is checked by connect)."""
    with _open(path) as store:
        session = connect(store, user=user, role=role)
        try:
            if session.role not in SOLUTION_ROLES:
                raise NotPermittedError(
                    f"{user} is {session.role}: a drill's answer is for "
                    f"{' or '.join(sorted(SOLUTION_ROLES))}"
                )
            return _answer(store)
        finally:
            session.close()
