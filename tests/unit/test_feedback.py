"""What a learner reads when a check fails: the step, their line, and a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrationkit.workshop.exercises.feedback import (
    Hint,
    Step,
    counted,
    learner_code,
    run_steps,
)
from migrationkit.workshop.exercises.learner import load


def test_an_untouched_stub_gets_the_stub_hint() -> None:
    with pytest.raises(Hint) as raised, learner_code("choose()", stub_hint="write choose()"):
        raise NotImplementedError
    assert raised.value.what == "choose() is not written yet (it raises NotImplementedError)"
    assert raised.value.hint == "write choose()"


def test_an_error_in_the_learners_file_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("def f():\n    return {}['missing']\n")
    module = load("mine", tmp_path)
    with pytest.raises(Hint) as raised, learner_code("f()", stub_hint=""):
        module.f()
    assert raised.value.what == (
        "f() raised KeyError: 'missing' (at mine.py line 2: return {}['missing'])"
    )


async def test_the_first_failing_step_stops_the_check() -> None:
    async def fine() -> str:
        return "seen"

    async def broken() -> str:
        raise Hint("it broke", "mend it")

    feedback = await run_steps(
        "demo", [Step("one", fine), Step("two", broken), Step("three", fine)], praise="yay"
    )
    assert not feedback.ok
    assert feedback.passed == [("one", "seen")]
    assert feedback.not_run == ["three"]
    assert str(feedback).splitlines() == [
        "demo: not yet",
        "  PASS  one: seen",
        "  FAIL  two: it broke",
        "  HINT  mend it",
        "  ----  three (runs once the step above passes)",
    ]
    assert "mend it" in feedback._repr_html_()


def test_counted_says_one_or_many() -> None:
    assert (counted(1, "batch", "batches"), counted(3, "row")) == ("1 batch", "3 rows")
