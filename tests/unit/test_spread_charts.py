"""Lessons 06 and 07's charts: axes from zero with units, whiskers to the min-max, a legend."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")

from matplotlib.figure import Figure

from migrationkit.workshop import spread_charts
from migrationkit.workshop.lessons import paging as P
from migrationkit.workshop.lessons.overlap import Spread
from migrationkit.workshop.lessons.results import Measurement


def setting(backend: str, writer: str, rates: list[float]) -> Spread:
    params = {"backend": backend, "writer": writer, "workers": 2}
    runs = tuple(Measurement(f"{backend}/{writer}", 1_000, 1_000 / r, params) for r in rates)
    return Spread(f"{backend}/{writer}", params, runs)


def grid() -> list[Spread]:
    return [
        setting(backend, writer, [base * 0.9, base, base * 1.1])
        for backend, factor in (("asyncio", 1.0), ("threading", 0.8))
        for writer, base in (("copy", 20_000.0 * factor), ("insert", 7_000.0 * factor))
    ]


def source() -> Spread:
    params = {"workers": 1}
    runs = tuple(Measurement("the source alone", 1_000, 1_000 / r, params) for r in (3e4, 3.2e4))
    return Spread("the source alone", params, runs)


def legend_texts(fig: Figure) -> list[str]:
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    legends += list(fig.legends)
    return [text.get_text() for legend in legends for text in legend.get_texts()]


def test_the_grid_starts_at_zero_with_rows_per_second_on_its_axis() -> None:
    ax = spread_charts.grid(grid(), group="backend", series="writer", reference=source()).axes[0]
    assert ax.get_ylim()[0] == 0
    assert ax.get_ylabel() == "rows/s"
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["asyncio", "threading"]


def test_the_grid_legend_names_every_writer_the_reference_and_the_whisker() -> None:
    fig = spread_charts.grid(grid(), group="backend", series="writer", reference=source())
    texts = legend_texts(fig)
    assert {"copy", "insert"} <= set(texts)
    assert any(text.startswith("the source alone, reading only: 31,000 rows/s") for text in texts)
    assert any("min\u2013max" in text for text in texts)
    assert fig.axes[0].get_legend().get_title().get_text() == "bar: median of 3 runs"


def test_the_grid_whiskers_reach_the_fastest_and_slowest_run() -> None:
    ax = spread_charts.grid(grid(), group="backend", series="writer").axes[0]
    tops = [
        max(segment[:, 1]) for collection in ax.collections for segment in collection.get_segments()
    ]
    assert max(tops) == pytest.approx(22_000.0)


def test_the_grid_can_draw_seconds_instead() -> None:
    ax = spread_charts.grid(grid(), group="backend", series="writer", seconds=True).axes[0]
    assert ax.get_ylabel() == "seconds (s)"


def paged(name: str, pages: list[float]) -> Spread:
    params = {"pager": name}
    runs = tuple(
        Measurement(name, 100, sum(pages) * k, params, {"page_s": tuple(p * k for p in pages)})
        for k in (0.9, 1.0, 1.1)
    )
    return Spread(name, params, runs)


def test_paged_reads_draw_every_page_in_ms_and_every_read_in_seconds() -> None:
    reads = [paged(P.SKIP_LIMIT, [0.1] * 20), paged(P.ONE_CURSOR, [0.1] + [0.004] * 19)]
    fig = spread_charts.paged_reads(reads)
    pages_ax, total_ax = fig.axes
    assert pages_ax.get_ylabel() == "milliseconds for the page (ms)"
    assert total_ax.get_ylabel() == "seconds (s)"
    assert pages_ax.get_ylim()[0] == 0
    assert total_ax.get_ylim()[0] == 0
    assert all(float(tick).is_integer() for tick in pages_ax.get_xticks())
    texts = legend_texts(fig)
    assert f"(1) {P.SKIP_LIMIT}" in texts
    assert f"(2) {P.ONE_CURSOR}" in texts


def test_query_costs_name_each_query_and_its_plan() -> None:
    params = {"key": "one", "rows": 10, "returned": 1, "plan": "COLLSCAN \u2192 LIMIT"}
    runs = tuple(Measurement("1 user", 1, s, params) for s in (0.1, 0.2, 0.3))
    ax = spread_charts.query_costs([Spread("1 user", params, runs)]).axes[0]
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["1 user"]
    assert ax.get_xlim()[0] == 0
    assert any("plan: COLLSCAN \u2192 LIMIT" in text.get_text() for text in ax.texts)
