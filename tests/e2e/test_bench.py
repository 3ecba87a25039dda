"""``migrationkit bench`` on a tiny data set and the real servers: a well-formed report.

Nothing here asserts a speed: a tiny run on a shared machine says nothing about
speed. What must hold is that every section is measured, every ratio is the
quotient of the numbers it relates, and every target is judged from them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from migrationkit import Endpoints, PostgresConnectionHandler, Settings
from migrationkit.workshop.bench import BenchmarkReport, Target, format_report, run_benchmark
from migrationkit.workshop.bench.original import fit_line, remaining_seconds
from migrationkit.workshop.bench.report import PageTime
from migrationkit.workshop.bench.runner import TABLES

pytestmark = pytest.mark.integration

COUNT = 2_000
BACKENDS = ["asyncio", "threading", "multiprocessing"]
WRITERS = ["copy", "executemany", "insert"]
TARGETS = 5 + len(BACKENDS) + 1  # best, each backend, original, time, memory, CPU, COPY


def close(value: float, expected: float) -> bool:
    """Equal up to the rounding the JSON file applies (4 decimals, or 1 on rows/s)."""
    return math.isclose(value, expected, rel_tol=1e-3, abs_tol=1e-3)


@pytest.fixture(scope="module")
async def bench(
    servers: Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> tuple[BenchmarkReport, dict[str, Any], Path]:
    """One tiny benchmark run; the original's pager gets no time budget, so it extrapolates."""
    out = tmp_path_factory.mktemp("bench")
    report = await run_benchmark(
        COUNT,
        scale=2,
        settings=Settings(mongo_uri=SecretStr(servers.mongo_uri), pg_dsn=SecretStr(servers.pg_dsn)),
        endpoints=servers,
        workers=[1],
        batch_sizes=[250],
        repeats=1,
        insert_rows=300,
        original_budget_s=0.0,
        transform_workers=2,
        json_path=out / "bench.json",
        chart_path=out / "bench.png",
    )
    return report, json.loads((out / "bench.json").read_text()), out


def test_the_json_file_has_every_section(bench: Any) -> None:
    _, data, _ = bench
    sections = {"machine", "config", "limits", "sweep", "backends", "rounds", "original", "writers"}
    assert sections | {"scaling", "transform", "targets"} <= data.keys()
    assert data["count"] == COUNT
    assert set(data["limits"]["source_reads"]) == {"natural", "id_hinted", "id_sorted"}
    assert set(data["backends"]) == set(BACKENDS)
    assert set(data["writers"]["rates"]) == set(WRITERS)
    assert set(data["transform"]["backends"]) == set(BACKENDS)
    assert data["machine"]["nproc"] >= 1
    assert data["machine"]["servers"]["postgresql"]


def test_every_rate_moves_every_row_at_a_positive_speed(bench: Any) -> None:
    report, data, _ = bench
    rates = [*report.limits.source_reads.values(), report.limits.sink_copy]
    rates += [point.rate for point in [*report.sweep, *report.transform.values()]]
    rates += [rate for name, rate in report.writers.items() if name != "insert"]
    assert all(rate.rows == COUNT and rate.rows_per_s > 0 for rate in rates)
    assert report.writers["insert"].rows == 300
    assert len(data["sweep"]) == len(BACKENDS)  # 1 worker count x 1 batch size


def test_ratios_are_computed_from_the_rates_they_relate(bench: Any) -> None:
    _, data, _ = bench
    raw_read = data["limits"]["source_read"]["rows_per_s"]
    for backend, point in data["backends"].items():
        assert close(point["ratio_to_source_read"], point["rows_per_s"] / raw_read)
        paired = max(r[backend] / r["source_read"] for r in data["rounds"])
        assert close(point["paired_ratio_to_source_read"], paired)
    best = max(point["rows_per_s"] for point in data["backends"].values())
    assert close(data["original"]["speedup"], best / data["original"]["rows_per_s"])
    writers = data["writers"]
    copy = writers["rates"]["copy"]["rows_per_s"]
    assert close(
        writers["copy_ratio_to_raw_copy"], copy / data["limits"]["sink_copy"]["rows_per_s"]
    )
    assert close(
        writers["ratio_to_copy"]["insert"], writers["rates"]["insert"]["rows_per_s"] / copy
    )
    heavy = data["transform"]["backends"]
    assert close(
        data["transform"]["multiprocessing_over_asyncio"],
        heavy["multiprocessing"]["rows_per_s"] / heavy["asyncio"]["rows_per_s"],
    )


def test_scaling_measures_both_sizes_in_child_processes(bench: Any) -> None:
    _, data, _ = bench
    scaling = data["scaling"]
    small, large = scaling["small"], scaling["large"]
    assert (small["count"], large["count"]) == (COUNT, 2 * COUNT)
    assert small["peak_rss_bytes"] > 0
    assert large["peak_rss_bytes"] > 0
    assert small["hwm_bytes"] > 0
    assert small["processes"] >= 1
    assert close(scaling["time_ratio"], large["seconds"] / small["seconds"])
    assert close(scaling["rss_ratio"], large["peak_rss_bytes"] / small["peak_rss_bytes"])


def test_the_original_is_extrapolated_only_beyond_its_measured_pages(bench: Any) -> None:
    _report, data, _ = bench
    original = data["original"]
    assert original["extrapolated"] is True  # no time budget: only the minimum of pages
    assert original["rows_measured"] == 3 * original["batch_size"]
    assert len(original["pages"]) == 3
    assert original["seconds_total"] > original["seconds_measured"] > 0
    assert original["rows_total"] == COUNT


def test_every_target_is_judged_from_its_numbers(bench: Any) -> None:
    report, data, _ = bench
    assert len(data["targets"]) == TARGETS
    for target in data["targets"]:
        below = target["measured"] <= target["threshold"]
        above = target["measured"] >= target["threshold"]
        assert target["passed"] == (below if target["comparison"] == "<=" else above)
    time_target = next(t for t in report.targets() if t.name.startswith("time"))
    assert time_target.threshold == pytest.approx(2.2)  # 1.1 x the scale factor


def test_the_table_prints_every_section_and_a_verdict_per_target(bench: Any) -> None:
    report, _, _ = bench
    table = format_report(report)
    for header in ("LIMITS", "MIGRATIONKIT", "ORIGINAL", "WRITERS", "SCALING", "CPU-HEAVY"):
        assert header in table
    assert table.count("PASS ") + table.count("MISS ") == TARGETS


def test_the_chart_is_a_png(bench: Any) -> None:
    _, _, out = bench
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_scratch_tables_are_dropped_after_the_run(bench: Any, servers: Endpoints) -> None:
    async with PostgresConnectionHandler(servers.pg_dsn) as pool:
        left = await pool.fetch(
            "SELECT tablename FROM pg_tables WHERE tablename = ANY($1::text[])", list(TABLES)
        )
    assert left == []


def test_a_line_fit_recovers_a_linear_page_cost_and_extrapolates_with_it() -> None:
    pages = [PageTime(skip, 0.5 + 2e-6 * skip) for skip in (0, 1_000, 2_000)]
    intercept, slope, r2 = fit_line([(p.skip, p.seconds) for p in pages])
    assert (intercept, slope, r2) == pytest.approx((0.5, 2e-6, 1.0))
    rest, *_ = remaining_seconds(pages, rows_done=3_000, rows_total=5_000, batch_size=1_000)
    assert rest == pytest.approx((0.5 + 2e-6 * 3_000) + (0.5 + 2e-6 * 4_000))


def test_a_falling_line_of_page_costs_is_read_as_flat_noise() -> None:
    pages = [PageTime(skip, seconds) for skip, seconds in ((0, 0.05), (1_000, 0.02), (2_000, 0.01))]
    intercept, slope, _ = fit_line([(p.skip, p.seconds) for p in pages])
    assert (intercept, slope) == pytest.approx((0.08 / 3, 0.0))
    rest, *_ = remaining_seconds(pages, rows_done=3_000, rows_total=9_000, batch_size=1_000)
    assert rest == pytest.approx(6 * 0.08 / 3)  # the mean per page, never below zero


def test_a_target_passes_on_its_side_of_the_threshold() -> None:
    assert Target("at least", 0.9, 0.9).passed
    assert not Target("at least", 0.89, 0.9).passed
    assert Target("at most", 1.3, 1.3, at_most=True).passed
    assert not Target("at most", 1.31, 1.3, at_most=True).passed
