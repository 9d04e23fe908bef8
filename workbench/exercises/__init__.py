"""Practice exercises and incident drills for new staff, with checks.

The guide's four practice exercises, each over a freshly simulated small store of the
trainee's own (the seed picks the lead, the step, the buyer or the incident, so two
trainees get different questions):

>>> sorted(EXERCISES)
['custom_event_report', 'debug_rejected_lead', 'delivery_failure_patterns', 'step_performance']

    ex = exercises.start("debug_rejected_lead", user="tess", seed=3)
    ex                      # the question
    ex.session              # a trainee Session over the exercise's store (PII masked)
    ex.hint()               # one more hint each call
    ex.check(answer)        # which parts are right, which are wrong, and a hint
    ex.solution()           # for a trainer (admin), or once the answer was right

The expected answer is computed at run time from what the simulator generated; it is
never stored in the notebook, the package, or any relation a Session reads.

Incident drills: ``drill(seed, path)`` (or ``workbench drill new``) builds a store with
one hidden incident; ``check_drill`` and ``reveal`` (``workbench drill check`` and
``workbench drill reveal``) check an answer and show it to a trainer.
"""

from __future__ import annotations

from types import ModuleType

from . import custom_report, delivery_failures, rejected_lead, step_performance
from ._base import SOLUTION_ROLES, Exercise, ExerciseError, Feedback, Part, trainee_session
from .drills import DRILL_KINDS, Drill, check_drill, new_drill, reveal

__all__ = [
    "EXERCISES",
    "start",
    "drill",
    "check_drill",
    "reveal",
    "Exercise",
    "Feedback",
    "Part",
    "Drill",
    "ExerciseError",
    "DRILL_KINDS",
    "SOLUTION_ROLES",
]

_MODULES: dict[str, ModuleType] = {
    m.NAME: m for m in (rejected_lead, step_performance, delivery_failures, custom_report)
}
#: name -> title of every practice exercise, in the guide's order
EXERCISES: dict[str, str] = {name: m.TITLE for name, m in _MODULES.items()}


def start(name: str, *, user: str, seed: int = 0, role: str | None = None) -> Exercise:
    """Start exercise ``name`` for ``user`` on a new store of ``seed``.

    >>> ex = start("step_performance", user="tess", seed=1)
    >>> ex.session.role, ex.session.masked
    ('trainee', True)
    >>> print(ex.check({"executions": 1, "avg_duration_ms": 1, "success_rate": 2}).wrong)
    ['executions', 'avg_duration_ms', 'success_rate']
    >>> ex.close()
    """
    if name not in _MODULES:
        raise ExerciseError(f"no exercise {name!r}; the exercises are {', '.join(EXERCISES)}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ExerciseError(f"seed={seed!r}: give a whole number >= 0")
    module = _MODULES[name]
    world, facts = module.make(seed)
    try:
        session = trainee_session(world, user, role)
    except BaseException:
        world.close()
        raise
    return Exercise(
        name=name,
        title=module.TITLE,
        question=module.question(facts),
        session=session,
        world=world,
        hints=module.HINTS,
        given={k: facts[k] for k in module.GIVEN},
        _grade=lambda answer: module.grade(facts, answer),
        _solve=lambda: module.solve(facts),
    )


def drill(seed: int, path=None) -> Drill:
    """A new incident drill for ``seed`` (a store at ``path``, or in memory)."""
    return new_drill(seed, path)
