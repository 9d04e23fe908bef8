"""Practice exercises and drills: a model answer passes, a wrong one fails, a half-right
one is told which half, the expected answer never shows, and a trainee cannot read it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from workbench import exercises
from workbench.access.config import NotPermittedError

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture(scope="module", params=sorted(exercises.EXERCISES))
def ex(request):
    e = exercises.start(request.param, user="tess", seed=11)
    yield e
    e.close()


def _wrong(name, model):
    """An answer wrong in every part, and one right in the first part only."""
    if name == "custom_event_report":
        wrong = model.assign(submitted=model.submitted + 7, delivered=model.delivered + 3,
                             delivery_rate=model.delivery_rate / 2, revenue=model.revenue + 99)  # fmt: skip
        half = model.assign(revenue=model.revenue + 99, delivery_rate=model.delivery_rate * 100)
        return wrong, half
    if name == "debug_rejected_lead":
        other = (
            "nine_digit_phones"
            if model["cause"] != "nine_digit_phones"
            else "source_rejection_spike"
        )
        wrong = {"step": "Nowhere", "reason": "no reason", "cause": other}
    elif name == "step_performance":
        wrong = {k: v * 3 + 1 for k, v in model.items()}
    else:
        wrong = {
            "buyer": "Beacon Call Center",
            "failure": "business" if model["failure"] == "technical" else "technical",
            "started": str(pd.Timestamp(model["started"]) + pd.Timedelta(hours=9)),
        }
    first = next(iter(model))
    half = dict(wrong, **{first: model[first]})
    return wrong, half


def _secrets(name, model) -> list[str]:
    """Expected values that must never appear in what a trainee is told."""
    if name == "custom_event_report":
        return [f"{v:,.2f}" for v in model.revenue] + [str(v) for v in model.submitted]
    if name == "step_performance":
        return [str(model["executions"]), f"{model['avg_duration_ms']:.1f}"]
    if name == "debug_rejected_lead":
        return [model["reason"]]
    return [model["buyer"]]


def test_the_model_answer_passes_and_opens_the_solution(ex):
    with pytest.raises(NotPermittedError, match="after a correct answer"):
        ex.solution()  # a trainee, before answering
    model = ex._solve()
    fb = ex.check(model)
    assert fb.correct and not fb.wrong and bool(fb)
    assert "correct" in str(fb) and "Correct" in fb._repr_html_()
    given = ex.solution()  # now it opens, and passes
    assert ex.check(given).correct


def test_a_wrong_answer_fails_without_saying_the_answer(ex):
    model = ex._solve()
    wrong, half = _wrong(ex.name, model)
    fb = ex.check(wrong)
    assert not fb.correct and fb.hint
    said = str(fb) + fb._repr_html_()
    for secret in _secrets(ex.name, model):
        assert secret not in said, f"the feedback gives away {secret!r}"
    partial = ex.check(half)
    assert not partial.correct and partial.right and partial.wrong, str(partial)


def test_careless_answers_get_a_clear_word_not_a_traceback(ex):
    for answer in (None, 42, "the buyer", {}, pd.DataFrame()):
        fb = ex.check(answer)
        assert not fb.correct and fb.parts
        assert all(p.says for p in fb.parts)


def test_hints_are_graded_and_the_question_names_no_answer(ex):
    hints = [ex.hint() for _ in range(len(ex.hints) + 1)]
    assert hints[0].startswith("Hint 1 of") and hints[-1] == hints[-2]
    assert len(set(hints)) == len(ex.hints)
    model = ex._solve()
    text = ex.question + str(ex) + ex._repr_html_()
    for secret in _secrets(ex.name, model):
        if ex.name == "debug_rejected_lead":
            assert secret not in text


def test_the_trainee_session_is_masked_and_holds_no_ground_truth(ex):
    s = ex.session
    assert s.role == "trainee" and s.masked
    assert s.sql("SELECT count(*) AS n FROM incidents").n[0] == 0
    with pytest.raises(Exception, match="store_meta|not allowed|refused"):
        s.sql("SELECT * FROM store_meta")


def test_a_trainer_sees_the_solution_at_once():
    ex = exercises.start("delivery_failure_patterns", user="adam", seed=4)
    try:
        assert ex.check(ex.solution()).correct
    finally:
        ex.close()


def test_seeds_give_different_questions():
    asked = set()
    for seed in (1, 2, 3):
        ex = exercises.start("debug_rejected_lead", user="tess", seed=seed)
        asked.add(re.search(r"Lead (\S+)", ex.question).group(1))
        ex.close()
    assert len(asked) == 3


def test_the_answer_can_be_found_through_the_session_as_a_trainee_would():
    ex = exercises.start("custom_event_report", user="tess", seed=6)
    try:
        day = re.search(r"table for (\S+)", ex.question).group(1)
        df = ex.session.sql(
            "SELECT source, count(*) AS submitted, count(*) FILTER (WHERE delivered) AS delivered, "
            "count(*) FILTER (WHERE delivered) / count(*) AS delivery_rate, "
            "coalesce(sum(revenue), 0) AS revenue FROM lead_summary "
            "WHERE submitted_at >= CAST($d AS TIMESTAMPTZ) "
            "AND submitted_at < CAST($d AS TIMESTAMPTZ) + INTERVAL 1 DAY GROUP BY source",
            {"d": f"{day} 00:00:00+00"},
        )
        assert ex.check(df).correct
    finally:
        ex.close()


def test_unknown_exercise_and_bad_seed_are_named():
    with pytest.raises(exercises.ExerciseError, match="debug_rejected_lead"):
        exercises.start("debug", user="tess")
    with pytest.raises(exercises.ExerciseError, match="seed"):
        exercises.start("step_performance", user="tess", seed=-1)


# --------------------------------------------------------------------------- drills


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def drill_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("drill") / "drill.duckdb"
    r = _cli("drill", "new", "--seed", "5", "--store", str(path))
    assert r.returncode == 0, r.stderr
    assert "Incident drill 5" in r.stdout
    return path


def test_a_drill_is_checked_part_by_part(drill_store):
    r = _cli("drill", "reveal", "--store", str(drill_store), "--user", "tess")
    assert r.returncode == 2 and ("trainer" in r.stderr or "admin" in r.stderr), r.stderr
    truth = exercises.reveal(drill_store, user="adam", role="admin")
    right = ["--incident", truth["incident"], "--entity", truth["entity"],
             "--since", str(pd.Timestamp(truth["since"]) + pd.Timedelta(minutes=40)),
             "--until", str(pd.Timestamp(truth["until"]) - pd.Timedelta(minutes=40))]  # fmt: skip
    r = _cli("drill", "check", "--store", str(drill_store), *right)
    assert r.returncode == 0, r.stdout + r.stderr
    late = right[:4] + ["--since", str(pd.Timestamp(truth["since"]) + pd.Timedelta(hours=3))]
    late += right[6:]
    r = _cli("drill", "check", "--store", str(drill_store), *late)
    assert r.returncode == 1 and "✓ incident" in r.stdout and "✗ since" in r.stdout
    assert truth["since"][:16] not in r.stdout and "look earlier" in r.stdout


def test_a_trainee_cannot_read_the_drills_answer(drill_store):
    import workbench

    with workbench.connect(drill_store, user="tess", role="trainee") as s:
        assert s.sql("SELECT count(*) AS n FROM incidents").n[0] == 0
        for query in ("SELECT * FROM store_meta", "SELECT * FROM duckdb_tables()"):
            with pytest.raises(Exception):  # noqa: B017 - any refusal will do
                s.sql(query)
        with pytest.raises(NotPermittedError):
            exercises.reveal(drill_store, user="tess")


def test_different_seeds_give_different_drills(tmp_path):
    seen = set()
    for seed in (1, 2, 3, 4):
        from workbench.exercises.drills import _draw

        kind, params = _draw(seed)
        seen.add((kind, tuple(sorted(params.items()))))
    assert len(seen) == 4
    d = exercises.drill(9, tmp_path / "d9.duckdb")
    assert d.store.exists() and "Incident drill 9" in str(d)
    with pytest.raises(exercises.ExerciseError, match="exists"):
        exercises.drill(9, tmp_path / "d9.duckdb")


# --------------------------------------------------------------------------- masking


def test_questions_feedback_and_solutions_hold_no_raw_pii(ex):
    from tests.test_leak_outputs import assert_text_holds_none_of, pii_of

    model = ex._solve()
    wrong, half = _wrong(ex.name, model)
    said = [ex.question, str(ex), ex._repr_html_(), *ex.hints, repr(model)]
    for answer in (model, wrong, half, None):
        fb = ex.check(answer)
        said += [str(fb), fb._repr_html_()]
    assert_text_holds_none_of("\n".join(said), pii_of(ex.world.store), ex.name)


def test_drill_messages_hold_no_raw_pii(drill_store):
    import workbench
    from tests.test_leak_outputs import assert_text_holds_none_of, pii_of

    truth = exercises.reveal(drill_store, user="adam", role="admin")
    fb = exercises.check_drill(drill_store, incident=truth["incident"], entity="x",
                               since=truth["since"], until="soon")  # fmt: skip
    with workbench.open_store(drill_store, read_only=True) as s:
        assert_text_holds_none_of(str(fb) + fb._repr_html_() + str(truth), pii_of(s), "drill")


NOTEBOOK_WORLDS = {
    "01_debug_rejected_lead": "debug_rejected_lead",
    "02_step_performance": "step_performance",
    "03_delivery_failure_patterns": "delivery_failure_patterns",
    "04_custom_event_report": "custom_event_report",
}
EXERCISE_NOTEBOOKS = sorted(
    p.relative_to(NOTEBOOKS) for p in (NOTEBOOKS / "exercises").rglob("*.ipynb")
)


_PII: dict = {}


def _world_pii(name: str, tmp_path) -> dict:
    """The raw PII of seed 1's world of exercise ``name`` (or drill 1), built once."""
    import workbench
    from tests.test_leak_outputs import pii_of
    from workbench.exercises import _MODULES

    if name not in _PII:
        if name == "drill":
            drill = exercises.drill(1, tmp_path / "d.duckdb")
            with workbench.open_store(drill.store, read_only=True) as s:
                _PII[name] = pii_of(s)
        else:
            world, _ = _MODULES[name].make(1)
            try:
                _PII[name] = pii_of(world.store)
            finally:
                world.close()
    return _PII[name]


@pytest.mark.parametrize("notebook", EXERCISE_NOTEBOOKS, ids=str)
def test_exercise_notebook_outputs_hold_no_raw_pii(notebook, tmp_path):
    """Each exercise notebook runs seed 1: its world's raw PII must not be in its outputs."""
    from tests.test_leak_outputs import assert_text_holds_none_of, outputs_text

    text = outputs_text(NOTEBOOKS / notebook)
    pii = _world_pii(NOTEBOOK_WORLDS.get(notebook.stem, "drill"), tmp_path)
    assert sum(len(v) for v in pii.values()) > 100  # the check has something to look for
    assert_text_holds_none_of(text, pii, str(notebook))
