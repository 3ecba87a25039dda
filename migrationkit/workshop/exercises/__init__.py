"""Workshop exercises: learners write a part of the migration; a check says when it is right.

Each exercise is a notebook in ``notebooks/exercises/`` and a file beside it that
the learner fills in (generated from ``solutions/`` by :mod:`.stubs`). The notebook
calls :func:`check`, which loads the learner's file afresh and runs the
exercise's steps against the real servers::

    from migrationkit.workshop import exercises
    await exercises.check("round_robin")   # reads ./round_robin.py
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from migrationkit.workshop.exercises import (
    insert_values,
    keyset_pager,
    least_loaded,
    retry_writes,
    round_robin,
)
from migrationkit.workshop.exercises.feedback import Feedback, Hint
from migrationkit.workshop.exercises.learner import load
from migrationkit.workshop.exercises.plug import run_real_migration, show_report

#: The exercises in workshop order: learner file name → its check module.
EXERCISES: dict[str, ModuleType] = {
    "round_robin": round_robin,
    "keyset_pager": keyset_pager,
    "insert_values": insert_values,
    "least_loaded": least_loaded,
    "retry_writes": retry_writes,
}


async def check(name: str, *, directory: Path | str | None = None) -> Feedback:
    """Check the learner's ``<directory>/<name>.py`` (default: the current folder)."""
    try:
        exercise = EXERCISES[name]
    except KeyError:
        raise ValueError(f"no exercise {name!r}; choose one of {', '.join(EXERCISES)}") from None
    try:
        return await exercise.check(load(name, directory))  # type: ignore[no-any-return]
    except Hint as problem:
        return Feedback(exercise.TITLE, failed=("find your code", problem))


__all__ = ["EXERCISES", "Feedback", "check", "load", "run_real_migration", "show_report"]
