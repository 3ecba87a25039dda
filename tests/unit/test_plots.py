"""Charts: the right number of bars, lines and lanes, without a display."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

from migrationkit._executors.stats import WorkerStats
from migrationkit._run.report import MigrationReport
from migrationkit.workshop import plots
from migrationkit.workshop.lessons import Measurement


def grid() -> list[Measurement]:
    return [
        Measurement(f"{backend} {writer}", 1_000, seconds, {"backend": backend, "writer": writer})
        for backend, seconds in (("asyncio", 1.0), ("threading", 2.0))
        for writer in ("copy", "insert", "executemany")
    ]


def report(spans_per_worker: list[list[tuple[float, float]]]) -> MigrationReport:
    stats = [
        WorkerStats(worker, batches=len(spans), spans=spans)
        for worker, spans in enumerate(spans_per_worker)
    ]
    return MigrationReport("asyncio", len(stats), "copy", 10, 0, 0, 0, 1.5, stats)


def test_importing_the_package_does_not_import_matplotlib() -> None:
    code = (
        "import sys, migrationkit, migrationkit.workshop.plots, migrationkit.workshop.lessons; "
        "sys.exit('matplotlib' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_throughput_draws_one_labelled_bar_per_measurement() -> None:
    fig = plots.throughput(grid(), title="six runs")
    ax = fig.axes[0]
    assert len(ax.patches) == 6
    assert ax.get_xticklabels()[0].get_text() == "asyncio copy"
    assert ax.get_title() == "six runs"


def test_bars_take_any_values() -> None:
    fig = plots.bars({"a": 1.0, "b": 3.0}, ylabel="MiB")
    assert [p.get_height() for p in fig.axes[0].patches] == [1.0, 3.0]
    assert fig.axes[0].get_ylabel() == "MiB"


def test_grouped_bars_draw_a_bar_per_group_and_series() -> None:
    fig = plots.grouped_bars(
        grid(), group=lambda m: m.params["backend"], series=lambda m: m.params["writer"]
    )
    ax = fig.axes[0]
    assert len(ax.patches) == 2 * 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["copy", "insert", "executemany"]


def test_lines_draw_one_line_per_series_through_its_points() -> None:
    fig = plots.lines(grid(), x=lambda m: m.seconds, series=lambda m: m.params["writer"], logx=True)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 3
    assert all(len(line.get_xdata()) == 2 for line in ax.get_lines())
    assert ax.get_xscale() == "log"


def test_timeline_draws_a_lane_per_worker_and_a_bar_per_batch() -> None:
    fig = plots.timeline(report([[(10.0, 10.5), (10.6, 11.0)], [(10.1, 10.9)]]))
    ax = fig.axes[0]
    assert len(ax.collections) == 2
    assert [len(c.get_paths()) for c in ax.collections] == [2, 1]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["worker 0", "worker 1"]


def test_timelines_stack_one_panel_per_run() -> None:
    runs = {"round-robin": report([[(0.0, 1.0)]]), "least-loaded": report([[(0.0, 0.5)]])}
    fig = plots.timelines(runs)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title().startswith("round-robin")


def test_memory_over_time_draws_a_line_per_run() -> None:
    runs = [
        Measurement("unbounded", 10, 1.0, extra={"samples": [(0.0, 0), (0.5, 2**21)]}),
        Measurement("bounded", 10, 1.0, extra={"samples": [(0.0, 0), (0.5, 2**19)]}),
    ]
    ax = plots.memory_over_time(runs).axes[0]
    assert len(ax.get_lines()) == 2
    assert list(ax.get_lines()[0].get_ydata()) == [0.0, 2.0]


def test_figure_png_is_a_png() -> None:
    assert plots.figure_png(plots.bars({"a": 1.0})).startswith(b"\x89PNG\r\n")


def test_grouped_bars_can_show_each_group_relative_to_one_series() -> None:
    fig = plots.grouped_bars(
        grid(),
        group=lambda m: m.params["writer"],
        series=lambda m: m.params["backend"],
        relative_to="asyncio",
    )
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    assert fig.axes[0].get_ylabel() == "rows/s relative to asyncio"
