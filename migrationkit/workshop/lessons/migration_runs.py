"""Repeated ``migrate()`` runs of any :class:`~migrationkit.workshop.lessons.lab.Choice`.

:func:`~migrationkit.workshop.lessons.overlap.migrations` varies the workers of one
backend; lessons 04 and 05 also vary the transform and the writer. The runs go in
whole rounds as there (:func:`~migrationkit.workshop.lessons.overlap.repeat_rounds`),
and each is timed by its report's ``elapsed_s`` with the share of the copy its workers
held a batch (``busy_share``) and when ``migrate()`` was called (``called_at``), so the
lessons can name the same limits and draw the same timelines.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from migrationkit._run.migration import migrate
from migrationkit._run.report import MigrationReport
from migrationkit.workshop.lessons.lab import LESSON_TRANSFORMS, Choice, Lab
from migrationkit.workshop.lessons.overlap import REPEATS, Setting, Spread, repeat_rounds
from migrationkit.workshop.lessons.results import Measurement


def choice_params(choice: Choice) -> dict[str, object]:
    """What a chart or a sentence may group runs by: the choice's backend, writer, ..."""
    return {
        "backend": choice.backend,
        "workers": choice.workers,
        "writer": choice.writer,
        "transform": choice.transform,
        "batch_size": choice.batch_size,
    }


async def choice_migrations(
    lab: Lab, choices: Mapping[str, Choice], *, repeats: int = REPEATS
) -> list[Spread]:
    """Migrate the lab's collection once per labelled choice a round; a Spread per label.

    The collection is migrated as it is (seed it first); ``choice.rows`` is not used.
    """
    reports: dict[str, list[tuple[float, MigrationReport]]] = {label: [] for label in choices}

    def run_with(label: str, choice: Choice) -> Callable[[], Awaitable[int]]:
        settings = lab.settings_for(choice)
        transform = LESSON_TRANSFORMS[choice.transform]

        async def run() -> int:
            called = time.monotonic()  # the clock of the reports' batch spans
            report = await migrate(settings, endpoints=lab.endpoints, transform=transform)
            reports[label].append((called, report))
            return report.rows_written

        return run

    settings: list[Setting] = [
        (label, choice_params(choice), run_with(label, choice)) for label, choice in choices.items()
    ]
    spreads = await repeat_rounds(settings, repeats=repeats)
    return [timed_by_reports(spread, reports[spread.label]) for spread in spreads]


def timed_by_reports(spread: Spread, reports: Sequence[tuple[float, MigrationReport]]) -> Spread:
    """The spread with each run timed by its report, its workers' busy share added."""
    runs = []
    for run, (called, report) in zip(spread.runs, reports, strict=True):
        elapsed = report.elapsed_s
        held = sum(stats.busy_s for stats in report.per_worker)
        busy = held / (elapsed * report.workers) if elapsed > 0 else 0.0
        extra = {**run.extra, "busy_share": busy, "called_at": called}
        runs.append(Measurement(run.label, run.rows, elapsed, run.params, extra, report=report))
    return Spread(spread.label, spread.params, tuple(runs))
