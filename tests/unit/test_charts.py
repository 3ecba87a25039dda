"""Charts of repeated runs: axes from zero, whole-number worker ticks, a legend for every mark."""

from __future__ import annotations

from dataclasses import replace

import pytest

pytest.importorskip("matplotlib")

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from migrationkit._executors.stats import WorkerStats
from migrationkit._run.report import MigrationReport
from migrationkit.workshop import charts, plots
from migrationkit.workshop.lessons.overlap import Spread
from migrationkit.workshop.lessons.results import Measurement


def spread(label: str, workers: int, rates: list[float], *, delay_s: float | None) -> Spread:
    delay = "direct" if delay_s is None else f"{delay_s * 1e3:g} ms away"
    params = {"workers": workers, "delay": delay, "pg_delay_s": delay_s}
    runs = tuple(Measurement(label, 1_000, 1_000 / rate, params) for rate in rates)
    return Spread(label, params, runs)


def sweep() -> list[Spread]:
    far = [
        spread(f"x{n}", n, [900.0 * n, 1_000.0 * n, 1_100.0 * n], delay_s=0.005) for n in (1, 2, 4)
    ]
    direct = [spread(f"x{n}", n, [5_000.0, 5_200.0, 5_400.0], delay_s=None) for n in (1, 2, 4)]
    return far + direct


def source() -> Spread:
    return spread("the source alone", 1, [6_000.0, 6_500.0, 7_000.0], delay_s=None)


def legend_texts(fig: Figure) -> list[str]:
    legend = fig.axes[0].get_legend()
    assert legend is not None
    return [text.get_text() for text in legend.get_texts()]


def test_scaling_starts_both_axes_at_zero() -> None:
    ax = charts.scaling(sweep(), reference=source()).axes[0]
    assert ax.get_ylim()[0] == 0
    assert ax.get_xlim()[0] == 0


def test_scaling_ticks_are_the_worker_counts() -> None:
    ax = charts.scaling(sweep(), reference=source()).axes[0]
    assert list(ax.get_xticks()) == [1, 2, 4]


def test_scaling_names_every_mark_in_its_legend() -> None:
    texts = legend_texts(charts.scaling(sweep(), reference=source()))
    assert "PostgreSQL 5 ms away" in texts
    assert "PostgreSQL direct" in texts
    assert "5 ms away, ideal: N \u00d7 the median of 1" in texts
    assert any(text.startswith("the source alone") and "6,500 rows/s" in text for text in texts)
    assert "point: median of 3 runs" in texts
    assert "whisker: their min\u2013max" in texts


def test_scaling_labels_its_axes_with_units() -> None:
    ax = charts.scaling(sweep(), xlabel="asyncio workers").axes[0]
    assert ax.get_ylabel() == "rows/s"
    assert ax.get_xlabel() == "asyncio workers"


def test_scaling_draws_the_median_with_whiskers_to_the_min_and_max() -> None:
    ax = charts.scaling(sweep()).axes[0]
    far_line = ax.containers[0].lines[0]
    assert list(far_line.get_ydata()) == pytest.approx([1_000.0, 2_000.0, 4_000.0])
    segments = ax.containers[0].lines[2][0].get_segments()
    assert [tuple(point[1] for point in segment) for segment in segments] == [
        pytest.approx((900.0, 1_100.0)),
        pytest.approx((1_800.0, 2_200.0)),
        pytest.approx((3_600.0, 4_400.0)),
    ]


def test_scaling_marks_how_many_times_the_fewest_each_far_point_reached() -> None:
    ax = charts.scaling(sweep()).axes[0]
    assert [text.get_text() for text in ax.texts] == ["2.0\u00d7", "4.0\u00d7"]


def test_speedup_draws_each_group_over_its_fewest_and_the_ideal() -> None:
    far = sweep()[:3]
    flat = sweep()[3:]
    fig = charts.speedup({"waiting": far, "computing": flat}, xlabel="threads")
    ax = fig.axes[0]
    assert list(ax.containers[0].lines[0].get_ydata()) == pytest.approx([1.0, 2.0, 4.0])
    assert list(ax.containers[1].lines[0].get_ydata()) == pytest.approx([1.0, 1.0, 1.0])
    assert ax.get_ylim()[0] == 0
    assert list(ax.get_xticks()) == [1, 2, 4]
    assert {"waiting", "computing", "ideal: N \u00d7"} <= set(legend_texts(fig))
    assert "speed-up" in ax.get_ylabel()


def test_speedup_can_show_the_cores_the_process_used_beside_one_core() -> None:
    computing = [spread(f"x{n}", n, [500.0], delay_s=None) for n in (1, 2, 4)]
    computing = [
        Spread(s.label, s.params, tuple(replace(r, extra={"cpu_share": 0.9}) for r in s.runs))
        for s in computing
    ]
    fig = charts.speedup({"computing": computing}, xlabel="threads", cores=True)
    _, right = fig.axes
    assert list(right.containers[0].lines[0].get_ydata()) == pytest.approx([0.9, 0.9, 0.9])
    assert right.get_ylim()[0] == 0
    assert list(right.get_xticks()) == [1, 2, 4]
    assert "cores" in right.get_ylabel()
    texts = [text.get_text() for text in fig.legends[0].get_texts()]
    assert {"computing", "right: 1 core"} <= set(texts)
    assert any(text.startswith("right: this machine's") for text in texts)


def test_durations_show_milliseconds_from_zero_with_labels() -> None:
    steps = [
        Spread("a thread", {}, tuple(Measurement("a thread", 0, s) for s in (1e-4, 2e-4, 3e-4))),
        Spread("connecting", {}, tuple(Measurement("connecting", 0, s) for s in (0.02, 0.03))),
    ]
    fig = charts.durations(steps)
    ax = fig.axes[0]
    assert [patch.get_width() for patch in ax.patches] == pytest.approx([0.2, 25.0])
    assert ax.get_xlim()[0] == 0
    assert ax.get_xlabel() == "milliseconds (ms)"
    assert [text.get_text() for text in ax.texts] == ["0.2 ms", "25 ms"]
    assert [label.get_text() for label in ax.get_yticklabels()] == ["a thread", "connecting"]
    assert legend_texts(fig) == ["median of \u2265 2 runs", "min\u2013max"]


def bars(*, horizontal: bool) -> Axes:
    _, ax = plots.new_figure()
    charts.median_bars(
        ax,
        [0, 1],
        [10.0, 20.0],
        [8.0, 15.0],
        [13.0, 26.0],
        horizontal=horizontal,
        labels=["ten", "twenty"],
        offset=5,
    )
    return ax


def test_median_bars_draw_one_bar_per_median() -> None:
    ax = bars(horizontal=False)
    assert [patch.get_height() for patch in ax.patches] == pytest.approx([10.0, 20.0])
    assert [patch.get_x() + patch.get_width() / 2 for patch in ax.patches] == [0, 1]


def test_median_bars_whiskers_end_at_the_low_and_the_high() -> None:
    ax = bars(horizontal=False)
    (whiskers,) = ax.containers[1].lines[2]
    assert [tuple(point[1] for point in segment) for segment in whiskers.get_segments()] == [
        pytest.approx((8.0, 13.0)),
        pytest.approx((15.0, 26.0)),
    ]


def test_median_bars_write_each_label_beyond_its_whisker() -> None:
    ax = bars(horizontal=False)
    assert [text.get_text() for text in ax.texts] == ["ten", "twenty"]
    assert [text.xy for text in ax.texts] == [(0, 13.0), (1, 26.0)]
    assert all(text.xyann == (0, 5) for text in ax.texts)


def test_horizontal_median_bars_lie_along_x_with_their_labels_to_the_right() -> None:
    ax = bars(horizontal=True)
    assert [patch.get_width() for patch in ax.patches] == pytest.approx([10.0, 20.0])
    (whiskers,) = ax.containers[1].lines[2]
    assert [tuple(point[0] for point in segment) for segment in whiskers.get_segments()] == [
        pytest.approx((8.0, 13.0)),
        pytest.approx((15.0, 26.0)),
    ]
    assert [text.xy for text in ax.texts] == [(13.0, 0), (26.0, 1)]
    assert all(text.xyann == (5, 0) for text in ax.texts)


def test_ms_text_keeps_the_digits_that_matter() -> None:
    assert [charts.ms_text(value) for value in (0.0612, 1.23, 37.4, 1_234.0)] == [
        "0.061 ms",
        "1.2 ms",
        "37 ms",
        "1,234 ms",
    ]


def migration(
    spans_per_worker: list[list[tuple[float, float]]], *, called_at: float
) -> Measurement:
    stats = [
        WorkerStats(worker, batches=len(spans), spans=spans)
        for worker, spans in enumerate(spans_per_worker)
    ]
    report = MigrationReport("asyncio", len(stats), "copy", 10, 30, 30, 0, 2.0, stats)
    return Measurement("run", 30, 2.0, {"workers": len(stats)}, {"called_at": called_at}, report)


def test_timelines_start_when_migrate_was_called_and_shade_the_wait() -> None:
    one = migration([[(101.0, 101.5), (101.5, 102.0)]], called_at=100.0)
    two = migration([[(100.5, 101.0)], [(100.5, 101.2)]], called_at=100.0)
    fig = charts.timelines({"1 worker": one, "2 workers": two})
    first, second = fig.axes
    assert first.get_xlim()[0] == 0
    assert [len(bars.get_paths()) for bars in second.collections] == [1, 1]
    (wait,) = [patch for patch in first.patches if patch.get_x() == 0]
    assert wait.get_width() == pytest.approx(1.0)
    assert [label.get_text() for label in second.get_yticklabels()] == ["worker 0", "worker 1"]
    assert "seconds" in second.get_xlabel()
    assert legend_texts(fig) == [
        "one batch: taken \u2192 committed",
        "before the first batch arrived",
    ]
