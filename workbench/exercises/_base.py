"""What every practice exercise shares: the trainee's Session over a world of its own,
the question, graded hints, a checker that says which part is right and which is wrong
(never the expected value), and a solution for a trainer or after a correct answer.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from ..access import connect
from ..access.config import NotPermittedError
from ..display import card
from ..errors import WorkbenchError
from ._world import World

__all__ = ["Exercise", "Feedback", "Part", "ExerciseError", "SOLUTION_ROLES"]

#: Roles that may read an exercise's solution before answering it
SOLUTION_ROLES = frozenset({"admin", "trainer"})


class ExerciseError(WorkbenchError, ValueError):
    """An exercise asked for by a name, seed or user it cannot take."""


@dataclass(frozen=True)
class Part:
    """One part of an answer: right or not, and what to look at when it is not."""

    name: str
    ok: bool
    says: str


@dataclass(frozen=True)
class Feedback:
    """What ``check()`` says: each part right or wrong, with a hint for the wrong ones.
    It never holds the expected answer."""

    exercise: str
    parts: tuple[Part, ...]
    hint: str = ""

    @property
    def correct(self) -> bool:
        return bool(self.parts) and all(p.ok for p in self.parts)

    @property
    def right(self) -> list[str]:
        return [p.name for p in self.parts if p.ok]

    @property
    def wrong(self) -> list[str]:
        return [p.name for p in self.parts if not p.ok]

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        head = (
            f"{self.exercise}: correct, well done"
            if self.correct
            else f"{self.exercise}: {len(self.right)} of {len(self.parts)} parts right"
        )
        lines = [head] + [f"  {'✓' if p.ok else '✗'} {p.name}: {p.says}" for p in self.parts]
        if self.hint and not self.correct:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        rows = [(("✓ " if p.ok else "✗ ") + p.name, p.says) for p in self.parts]
        return card(
            "Correct, well done"
            if self.correct
            else f"{len(self.right)} of {len(self.parts)} parts right",
            rows,
            status="ok" if self.correct else "warn",
            subtitle=self.exercise,
            notes=[f"Hint: {self.hint}"] if self.hint and not self.correct else [],
        )


@dataclass
class Exercise:
    """A practice exercise in progress: ``question``, ``given`` (what the question
    names: a lead id, a step, a day), ``session``, ``hint()``, ``check(answer)``,
    ``solution()``.

    >>> from workbench import exercises
    >>> ex = exercises.start("debug_rejected_lead", user="tess", seed=3)   # doctest: +SKIP
    >>> ex.check({"step": "LeadRiver", "reason": "…", "cause": "nine_digit_phones"})  # doctest: +SKIP
    """

    name: str
    title: str
    question: str
    session: object
    world: World = field(repr=False)
    hints: tuple[str, ...] = field(repr=False)
    _grade: Callable = field(repr=False)
    _solve: Callable = field(repr=False)
    given: dict = field(default_factory=dict)
    _hints_given: int = field(default=0, repr=False)
    solved: bool = False
    attempts: int = 0

    def __repr__(self) -> str:
        return f"Exercise({self.name!r}, seed={self.world.seed}, user={self.session.user!r})"

    def __str__(self) -> str:
        return f"{self.title}\n\n{self.question}"

    def _repr_html_(self) -> str:
        paragraphs = "".join(
            f"<p style='margin:4px 0'>{_html(p)}</p>" for p in self.question.split("\n\n")
        )
        return card(
            self.title,
            [("trainee", self.session.user), ("seed", self.world.seed)],
            status="info",
            extra_html=paragraphs
            + "<p style='color:#555'>ex.hint() for a hint · ex.check(answer) to check</p>",
        )

    def hint(self) -> str:
        """The next hint (each call gives one more; the last one repeats)."""
        i = min(self._hints_given, len(self.hints) - 1)
        self._hints_given = min(self._hints_given + 1, len(self.hints))
        return f"Hint {i + 1} of {len(self.hints)}: {self.hints[i]}"

    def check(self, answer) -> Feedback:
        """Which parts of ``answer`` are right and which are wrong, with a hint for the
        first wrong part. The expected answer is never shown."""
        self.attempts += 1
        parts, hint = self._grade(answer)
        fb = Feedback(self.name, tuple(parts), hint)
        if fb.correct:
            self.solved = True
        return fb

    def solution(self):
        """The model answer (``check(solution())`` passes): for a trainer or admin, or
        once the exercise is solved."""
        if not self.solved and self.session.role not in SOLUTION_ROLES:
            raise NotPermittedError(
                f"the solution of {self.name} opens after a correct answer, or to a trainer "
                f"(roles {', '.join(sorted(SOLUTION_ROLES))}); {self.session.user} is "
                f"{self.session.role}: try ex.hint()"
            )
        return self._solve()

    def close(self) -> None:
        self.session.close()
        self.world.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _html(text: str) -> str:
    import html

    return html.escape(text).replace("\n", "<br>")


def trainee_session(world: World, user: str, role: str | None):
    """The trainee's Session over the world's store (masked unless the role unmasks)."""
    if not isinstance(user, str) or not user:
        raise ExerciseError("give the trainee's user name, e.g. start(name, user='tess')")
    return connect(world.store, user=user, role=role)


# --------------------------------------------------------------------------- checking


def same_text(given, expected: str) -> bool:
    """Text equal up to case, spaces and surrounding quotes."""
    if not isinstance(given, str):
        return False
    norm = lambda s: " ".join(s.strip().strip("'\"").lower().split())  # noqa: E731
    return norm(given) == norm(expected)


def close_number(given, expected: float, *, rel: float = 1e-3, abs_: float = 0.0) -> bool:
    """A number within ``rel`` (relative) or ``abs_`` of the expected one."""
    try:
        g = float(given)
    except (TypeError, ValueError):
        return False
    if math.isnan(g):
        return False
    return math.isclose(g, float(expected), rel_tol=rel, abs_tol=abs_)


def as_time(value) -> pd.Timestamp | None:
    """A time a trainee wrote (text, datetime, Timestamp) in UTC, or None."""
    try:
        t = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if pd.isna(t):
        return None
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def time_part(name: str, given, real, tolerance: pd.Timedelta, within: str) -> Part:
    """A time a trainee gave, right when within ``tolerance`` of ``real``; when not,
    which way to look (never the time itself)."""
    t = as_time(given)
    if t is None:
        return Part(name, False, "give a time, e.g. '2026-11-25 14:00' (UTC)")
    real = pd.Timestamp(real)
    if abs(t - real) <= tolerance:
        return Part(name, True, f"within {within}")
    return Part(name, False, f"more than {within} off: look {'later' if t < real else 'earlier'}")


def keyed(answer, keys: tuple[str, ...], example: str) -> tuple[Mapping | None, list[Part]]:
    """``answer`` as a mapping with ``keys``; or the parts that say what shape it needs."""
    if not isinstance(answer, Mapping):
        return None, [
            Part("answer", False, f"give a dict with the keys {', '.join(keys)}, e.g. {example}")
        ]
    missing = [k for k in keys if k not in answer]
    if missing:
        return answer, [Part(k, False, "missing from the answer") for k in missing]
    return answer, []


def day_text(t: dt.datetime) -> str:
    return f"{t:%Y-%m-%d}"
