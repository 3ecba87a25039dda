"""Repeated migrations of any choice: what each run keeps of its report."""

from __future__ import annotations

import pytest

from migrationkit._executors.stats import WorkerStats
from migrationkit._run.report import MigrationReport
from migrationkit.workshop.lessons.lab import Choice
from migrationkit.workshop.lessons.migration_runs import choice_params, timed_by_reports
from migrationkit.workshop.lessons.overlap import Spread
from migrationkit.workshop.lessons.results import Measurement


def report(elapsed_s: float, busy: list[float]) -> MigrationReport:
    stats = [WorkerStats(w, busy_s=b) for w, b in enumerate(busy)]
    return MigrationReport("asyncio", len(busy), "copy", 250, 500, 500, 0, elapsed_s, stats)


def test_the_params_name_everything_a_chart_may_group_by() -> None:
    params = choice_params(Choice(backend="threading", workers=3, writer="insert"))
    assert params == {
        "backend": "threading",
        "workers": 3,
        "writer": "insert",
        "transform": "validate",
        "batch_size": 5_000,
    }


def test_each_run_is_timed_by_its_report_with_its_workers_busy_share() -> None:
    params = {"workers": 2}
    wall = (Measurement("x2", 500, 9.0, params, {"cpu_share": 0.4}),)
    spread = timed_by_reports(Spread("x2", params, wall), [(100.0, report(2.0, [1.0, 0.6]))])
    (run,) = spread.runs
    assert run.seconds == 2.0
    assert run.extra["busy_share"] == pytest.approx(0.4)
    assert run.extra["called_at"] == 100.0
    assert run.extra["cpu_share"] == 0.4
    assert run.report is not None
