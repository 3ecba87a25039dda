"""Exercise 1 (round robin): the solution passes, the stub and common mistakes get their hints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from migrationkit.workshop import exercises
from migrationkit.workshop.exercises import round_robin
from tests.exercises.conftest import EXERCISES, SOLUTIONS

pytestmark = pytest.mark.integration

MISTAKE = """
class MyRoundRobin:
    def __init__(self, size):
        self.size = size
        self.turn = 0

    def choose(self, in_flight):
{body}
"""


async def test_the_solution_passes_every_step() -> None:
    feedback = await exercises.check("round_robin", directory=SOLUTIONS)
    assert feedback.ok, str(feedback)
    last_step = feedback.passed[-1][0]
    assert last_step == "moves real data from MongoDB to PostgreSQL"
    assert "2,000 users copied into PostgreSQL" in str(feedback)


async def test_the_untouched_stub_fails_with_the_stub_hint() -> None:
    feedback = await exercises.check("round_robin", directory=EXERCISES)
    assert not feedback.ok
    assert feedback.hint == round_robin.STUB_HINT
    assert "choose() is not written yet" in str(feedback)


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        ("        return 0", "Every batch went to worker 0"),
        ("        self.turn += 1\n        return self.turn", "Worker indices run from 0 to 3"),
        ("        return min(range(self.size), key=lambda i: in_flight[i])", "Every batch went"),
        ('        return "0"', "must return a worker index"),
    ],
    ids=["always-zero", "off-by-one", "least-loaded-instead", "returns-text"],
)
async def test_a_common_mistake_gets_its_own_hint(
    body: str, hint: str, variant: Callable[[str, str], Path]
) -> None:
    folder = variant("round_robin", MISTAKE.format(body=body))
    feedback = await exercises.check("round_robin", directory=folder)
    assert not feedback.ok
    assert hint in feedback.hint


async def test_a_shared_turn_is_named(variant: Callable[[str, str], Path]) -> None:
    source = """
class MyRoundRobin:
    turn = 0

    def __init__(self, size):
        self.size = size

    def choose(self, in_flight):
        worker = MyRoundRobin.turn % self.size
        MyRoundRobin.turn += 1
        return worker
"""
    feedback = await exercises.check("round_robin", directory=variant("round_robin", source))
    assert not feedback.ok
    assert "keep it on self" in feedback.hint


async def test_a_missing_class_is_named(variant: Callable[[str, str], Path]) -> None:
    feedback = await exercises.check("round_robin", directory=variant("round_robin", "x = 1\n"))
    assert "has no class MyRoundRobin" in str(feedback)


async def test_a_syntax_error_names_the_line(variant: Callable[[str, str], Path]) -> None:
    folder = variant("round_robin", "class MyRoundRobin:\n    def choose(self\n")
    feedback = await exercises.check("round_robin", directory=folder)
    assert "does not parse" in str(feedback)
