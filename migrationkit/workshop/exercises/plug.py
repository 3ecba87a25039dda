"""Run a learner's dispatcher or writer inside the real migration, on the real servers.

Each exercise has its own collection and table (``ex_<name>_users``), seeded with
reproducible users, so checks never touch the teaching notebooks' data.
"""

from __future__ import annotations

from typing import Any

from migrationkit._executors.dispatch import Dispatcher
from migrationkit._executors.worker import SinkOpener
from migrationkit._normalize.rows import Transform, document_to_row
from migrationkit._observe.progress import NullProgress, Progress
from migrationkit._run.migration import migrate
from migrationkit._run.report import MigrationReport, format_reports
from migrationkit._settings.settings import Backend
from migrationkit.workshop.lessons.lab import Lab, open_lab


async def exercise_lab(exercise: str, rows: int) -> Lab:
    """The exercise's collection, holding exactly ``rows`` seeded users."""
    lab = await open_lab(f"ex_{exercise}")
    await lab.seed(rows)
    return lab


async def run_real_migration(
    exercise: str,
    *,
    rows: int,
    workers: int = 4,
    batch_size: int = 500,
    backend: Backend = "asyncio",
    dispatch: str = "round-robin",
    dispatcher: Dispatcher | None = None,
    writer: str = "copy",
    progress: Progress | None = None,
    transform: Transform = document_to_row,
    open_sink: SinkOpener | None = None,
    **options: Any,
) -> MigrationReport:
    """``migrate()`` on the exercise's own data, with a dispatcher/writer by name or object.

    ``dispatch`` and ``writer`` are registered names or import paths
    (``"round_robin:MyRoundRobin"``), exactly as ``migrationkit migrate`` takes them;
    ``transform`` and ``open_sink`` go to :func:`migrate`; ``options`` are settings.
    """
    lab = await exercise_lab(exercise, rows)
    settings = lab.settings.model_copy(
        update={
            "backend": backend,
            "workers": workers,
            "batch_size": batch_size,
            "dispatch": dispatch,
            "writer": writer,
            **options,
        }
    )
    return await migrate(
        settings,
        endpoints=lab.endpoints,
        progress=progress or NullProgress(),
        dispatcher=dispatcher,
        transform=transform,
        open_sink=open_sink,
    )


def show_report(report: MigrationReport) -> str:
    """The table ``migrationkit migrate`` prints, and what each worker did."""
    lines = [format_reports([report]), ""]
    lines += [
        f"worker {w.worker}: {w.batches:>3} batches {w.rows_written:>8,} rows "
        f"busy {w.busy_s:6.2f} s"
        for w in report.per_worker
    ]
    return "\n".join(lines)
