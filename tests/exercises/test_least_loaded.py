"""Exercise 4 (least loaded): the solution passes, the stub and common mistakes get their hints.

And the notebook runs end to end: as committed (with the stub: it must not raise) and
with the solution in place of the stub.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from migrationkit.workshop.exercises import least_loaded
from migrationkit.workshop.exercises.feedback import Feedback, Hint
from migrationkit.workshop.exercises.learner import load
from tests.exercises.conftest import EXERCISES, SOLUTIONS

pytestmark = pytest.mark.integration

NOTEBOOK = EXERCISES / "ex4_least_loaded.ipynb"
STEPS = [
    "answers with a worker index, not a count",
    "follows in_flight instead of taking turns",
    "picks the least busy worker",
    "breaks a tie with the lowest index",
    "gives a slow worker fewer batches, on the real servers",
]

MISTAKE = """
import random


class MyLeastLoaded:
    def __init__(self, size):
        self.size = size
        self.turn = 0
        self.dealt = [0] * size

    def choose(self, in_flight):
{body}
"""


async def check(folder: Path) -> Feedback:
    """What ``exercises.check("least_loaded", directory=folder)`` will answer, once listed."""
    try:
        return await least_loaded.check(load("least_loaded", folder))
    except Hint as problem:
        return Feedback(least_loaded.TITLE, failed=("find your code", problem))


async def test_the_solution_passes_every_step() -> None:
    feedback = await check(SOLUTIONS)
    assert feedback.ok, str(feedback)
    assert [title for title, _ in feedback.passed] == STEPS
    seen = feedback.passed[-1][1]
    assert "all 5,000 users copied" in seen
    slow = re.search(r"slow worker 0 got (\d+) of 100 batches", seen)
    assert slow is not None, seen
    assert int(slow[1]) <= least_loaded.SLOW_MAX_BATCHES


async def test_the_untouched_stub_fails_with_the_stub_hint() -> None:
    feedback = await check(EXERCISES)
    assert not feedback.ok
    assert feedback.hint == least_loaded.STUB_HINT
    assert "choose() is not written yet" in str(feedback)
    assert feedback.passed == []


@pytest.mark.parametrize(
    ("body", "step", "hint"),
    [
        (
            "        return max(range(self.size), key=lambda i: in_flight[i])",
            "picks the least busy worker",
            "You picked the busiest worker",
        ),
        (
            "        return min(in_flight)",
            "answers with a worker index, not a count",
            "That is the smallest *count*, not whose it is",
        ),
        (
            "        worker = self.turn\n"
            "        self.turn = (worker + 1) % self.size\n"
            "        return worker",
            "follows in_flight instead of taking turns",
            "that is round robin (exercise 1)",
        ),
        (
            "        worker = min(range(self.size), key=lambda i: self.dealt[i])\n"
            "        self.dealt[worker] += 1\n"
            "        return worker",
            "follows in_flight instead of taking turns",
            "or a count of the batches you dealt",
        ),
        (
            "        best = 0\n"
            "        for i in range(self.size):\n"
            "            if in_flight[i] <= in_flight[best]:\n"
            "                best = i\n"
            "        return best",
            "breaks a tie with the lowest index",
            "only the tie rule differs",
        ),
        (
            "        low = min(in_flight)\n"
            "        return random.choice([i for i, n in enumerate(in_flight) if n == low])",
            "follows in_flight instead of taking turns",
            "The same in_flight got different answers",
        ),
        (
            "        worker = min(range(self.size), key=lambda i: in_flight[i])\n"
            "        in_flight[worker] += 1\n"
            "        return worker",
            "answers with a worker index, not a count",
            "do not change it",
        ),
        (
            "        return in_flight.index(min(in_flight)) + 1",
            "answers with a worker index, not a count",
            "Worker indices run from 0 to 3",
        ),
        (
            "        return str(in_flight.index(min(in_flight)))",
            "answers with a worker index, not a count",
            "must return a worker index, an int",
        ),
    ],
    ids=[
        "max-not-min",
        "returns-the-count",
        "round-robin",
        "counts-its-own-batches",
        "tie-to-the-highest",
        "random-tie",
        "changes-in-flight",
        "off-by-one",
        "returns-text",
    ],
)
async def test_a_common_mistake_gets_its_own_hint(
    body: str, step: str, hint: str, variant: Callable[[str, str], Path]
) -> None:
    feedback = await check(variant("least_loaded", MISTAKE.format(body=body)))
    assert not feedback.ok
    assert feedback.failed is not None
    assert feedback.failed[0] == step
    assert hint in feedback.hint


async def test_dealing_in_turn_in_the_real_run_fails_the_real_step(
    variant: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dispatcher right on fresh lists, but round robin on the cluster's own list."""
    body = (
        "        if in_flight is getattr(self, 'last', None):\n"
        "            self.turn = (self.turn + 1) % self.size\n"
        "            return self.turn\n"
        "        self.last = in_flight\n"
        "        return min(range(self.size), key=lambda i: in_flight[i])"
    )
    monkeypatch.setattr(least_loaded, "SLOW_ROW_S", 2e-3)  # round robin: 25 slow batches
    feedback = await check(variant("least_loaded", MISTAKE.format(body=body)))
    assert feedback.failed is not None
    assert feedback.failed[0] == STEPS[-1]
    assert "the 4 workers got [25, 25, 25, 25] batches" in feedback.failed[1].what
    assert "pick from the in_flight you are given on every call" in feedback.hint


async def test_a_missing_class_is_named(variant: Callable[[str, str], Path]) -> None:
    feedback = await check(variant("least_loaded", "class LeastLoaded:\n    pass\n"))
    assert "has no class MyLeastLoaded" in str(feedback)


# -- the notebook ---------------------------------------------------------------------------

#: Until ``exercises.EXERCISES`` lists exercise 4, the notebook's check cell needs this.
