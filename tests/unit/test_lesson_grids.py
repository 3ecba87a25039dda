"""Lessons 06 and 07's pure helpers: ties, tiers, limits and sentences made from the runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from migrationkit._executors.stats import WorkerStats
from migrationkit._run.report import MigrationReport
from migrationkit.workshop.lessons import compare as C
from migrationkit.workshop.lessons import dealing as D
from migrationkit.workshop.lessons import overlap as O
from migrationkit.workshop.lessons import paging as P
from migrationkit.workshop.lessons import showdown as S
from migrationkit.workshop.lessons.results import Measurement


def spread(
    label: str,
    rates: list[float],
    params: Mapping[str, Any] | None = None,
    *,
    rows: int = 1_000,
    **extra: Any,
) -> O.Spread:
    values = {"workers": 2, **(params or {})}
    runs = tuple(Measurement(label, rows, rows / rate, values, dict(extra)) for rate in rates)
    return O.Spread(label, values, runs)


def timed(label: str, seconds: list[float], params: Mapping[str, Any], **extra: Any) -> O.Spread:
    runs = tuple(Measurement(label, 1, s, dict(params), dict(extra)) for s in seconds)
    return O.Spread(label, dict(params), runs)


# -- ties and tiers --------------------------------------------------------------------------


def test_ranges_that_share_a_value_overlap() -> None:
    assert C.overlaps(spread("a", [100.0, 200.0]), spread("b", [200.0, 300.0]))
    assert not C.overlaps(spread("a", [100.0, 199.0]), spread("b", [200.0, 300.0]))


def test_tiers_chain_overlapping_ranges_and_split_at_a_gap() -> None:
    fast = spread("fast", [900.0, 1_000.0])
    middle = spread("middle", [800.0, 950.0])
    chained = spread("chained", [700.0, 850.0])  # overlaps middle, not fast
    slow = spread("slow", [100.0, 200.0])
    groups = C.tiers([slow, chained, fast, middle])
    assert [[s.label for s in group] for group in groups] == [
        ["fast", "middle", "chained"],
        ["slow"],
    ]


def test_a_ratio_is_stated_only_between_ranges_that_part() -> None:
    assert C.versus(spread("a", [300.0, 310.0]), spread("b", [100.0, 110.0])) == "2.9\u00d7"
    assert "tie" in C.versus(spread("a", [100.0, 300.0]), spread("b", [150.0, 160.0]))


def test_ratios_near_one_keep_two_decimals() -> None:
    assert C.times(1.22) == "1.22\u00d7"
    assert C.times(3.14) == "3.1\u00d7"


# -- 07: the grid ---------------------------------------------------------------------------


def grid(**overrides: list[float]) -> list[O.Spread]:
    rates = {
        ("asyncio", "copy"): [20_000.0, 21_000.0, 22_000.0],
        ("asyncio", "insert"): [7_000.0, 7_500.0, 8_000.0],
        ("multiprocessing", "copy"): [10_000.0, 11_000.0, 12_000.0],
        ("multiprocessing", "insert"): [5_000.0, 5_500.0, 6_000.0],
    }
    for key, values in overrides.items():
        backend, writer = key.split("_")
        rates[backend, writer] = values
    return [
        spread(S.label(b, w), r, {"backend": b, "writer": w}, busy_share=0.9, overhead_s=0.0)
        for (b, w), r in rates.items()
    ]


def test_copy_beating_insert_everywhere_is_said_with_the_range_of_ratios() -> None:
    note = S.writer_note(grid())
    assert note.startswith("`copy` beat `insert` in every backend, by 2.0\u00d7\u20132.8\u00d7")
    assert "asyncio 2.8\u00d7" in note
    assert "multiprocessing 2.0\u00d7" in note


def test_a_backend_where_the_writers_overlap_is_a_tie_not_a_ratio() -> None:
    ratios = S.writer_ratios(grid(multiprocessing_copy=[5_500.0, 9_000.0, 12_000.0]))
    assert ratios["multiprocessing"] is None
    assert ratios["asyncio"] == pytest.approx(21_000 / 7_500)
    assert "differs by backend" in S.writer_note(grid(multiprocessing_copy=[5_500.0, 12_000.0]))


def test_the_ranking_names_a_tie_instead_of_ordering_it() -> None:
    note = S.ranking_note(grid(multiprocessing_copy=[19_000.0, 20_500.0, 21_000.0]))
    first = note.splitlines()[0]
    assert first.startswith("1. **A tie** between `asyncio/copy`, `multiprocessing/copy`")


def test_the_grid_table_shows_each_median_with_its_range() -> None:
    table = S.grid_table(grid())
    assert table.columns[1:] == ["copy", "insert"]
    assert table.rows[0] == ["asyncio", "21,000 (20,000\u201322,000)", "7,500 (7,000\u20138,000)"]


def test_a_run_spent_mostly_outside_its_batches_is_bound_by_its_start_and_end() -> None:
    read = spread("the source alone", [50_000.0])
    slow_start = spread("x", [1_000.0], {"backend": "multiprocessing"}, overhead_s=0.8)
    assert S.limit_of(slow_start, read=read) == S.STARTUP
    near_the_source = spread("y", [48_000.0], overhead_s=0.001, busy_share=0.9)
    assert S.limit_of(near_the_source, read=read) == O.SOURCE_READ


def test_the_time_outside_the_batches_comes_from_the_report_spans() -> None:
    stats = [WorkerStats(worker=0, spans=[(10.0, 10.5), (10.5, 11.0)])]
    report = MigrationReport(
        backend="asyncio", workers=1, writer="copy", batch_size=1, rows_read=2,
        rows_written=2, rows_rejected=0, elapsed_s=1.5, per_worker=stats,
    )  # fmt: skip
    assert S.overhead_s(report) == pytest.approx(0.5)


def test_one_more_run_is_placed_against_the_grid_range() -> None:
    setting = spread("asyncio/copy", [20_000.0, 22_000.0])
    above = Measurement("again", 1_000, 1_000 / 25_000)
    assert "above its 2 grid runs' range (20,000\u201322,000)" in S.again_note(above, setting)


def test_the_recap_names_a_tie_at_the_top_and_every_ratio() -> None:
    spreads = grid(multiprocessing_copy=[19_000.0, 20_500.0, 21_000.0])
    text = S.recap(spreads, read=spread("the source alone", [30_000.0]))
    assert "2 settings tie at the top (`asyncio/copy`, `multiprocessing/copy`)" in text
    assert "30,000 rows/s" in text
    assert "asyncio 2.8\u00d7" in text


# -- 06: dealing --------------------------------------------------------------------------


def dispatch(
    robin: list[float], least: list[float], scenario: str = "slow worker"
) -> list[O.Spread]:
    return [
        timed(f"{name}, {scenario}", seconds, {"dispatch": name, "scenario": scenario})
        for name, seconds in (("round-robin", robin), ("least-loaded", least))
    ]


def test_dispatchers_whose_times_part_get_a_ratio() -> None:
    text = D.compare_dispatchers(dispatch([0.40, 0.42, 0.44], [0.20, 0.21, 0.22]), "slow worker")
    assert text == "least-loaded 0.21 s, round-robin 0.42 s: 2.0\u00d7 as long"


def test_dispatchers_whose_times_overlap_are_a_tie() -> None:
    text = D.compare_dispatchers(dispatch([0.20, 0.25], [0.22, 0.30], "uniform"), "uniform")
    assert text.startswith("a tie")


def test_the_dealt_note_counts_batches_and_checks_every_user_arrived() -> None:
    assert D.dealt_note([2, 2, 1], rows=250, in_table=250).endswith(
        "(5 in all); every user arrived."
    )
    assert "240 of 250 users arrived" in D.dealt_note([2, 2, 1], rows=250, in_table=240)


def test_the_backpressure_note_compares_the_peaks() -> None:
    memory = [
        Measurement("unbounded", 100, 2.0, {"queue_depth": 0}, {"peak_mib": 30.0}),
        Measurement("queue_depth=2", 100, 2.0, {"queue_depth": 2}, {"peak_mib": 5.0}),
    ]
    assert "Unbounded held 6.0\u00d7 the memory of queue_depth=2, in 1.00\u00d7 its time" in (
        D.backpressure_note(memory)
    )


# -- 06: paging ---------------------------------------------------------------------------


def read(name: str, pages: list[list[float]]) -> O.Spread:
    runs = tuple(
        Measurement(name, 100 * len(p), sum(p), {"pager": name}, {"page_s": tuple(p)})
        for p in pages
    )
    return O.Spread(name, {"pager": name}, runs)


def test_the_page_profile_is_each_page_median_and_range_over_the_runs() -> None:
    profile = P.page_profile(read("x", [[0.1, 0.3], [0.2, 0.1, 0.9], [0.3, 0.2]]))
    assert len(profile) == 2  # cut to the shortest run
    assert profile[0] == pytest.approx((0.2, 0.1, 0.3))
    assert profile[1] == pytest.approx((0.2, 0.1, 0.3))


def test_the_paging_note_compares_the_pagers_from_their_runs() -> None:
    reads = [
        read(P.SKIP_LIMIT, [[0.1] * 20, [0.11] * 20, [0.12] * 20]),
        read(P.KEYSET, [[0.2] * 20, [0.22] * 20, [0.24] * 20]),
        read(P.ONE_CURSOR, [[0.1] + [0.005] * 19] * 3),
    ]
    note = P.paging_note(reads)
    assert "The keyset pager took 2.0\u00d7 the time of skip/limit." in note
    assert "first page took 51% of its time" in note


def test_an_explained_plan_reads_in_the_order_data_flows() -> None:
    secantus = {
        "queryPlanner": {
            "winningPlan": {"stage": "SORT", "inputStage": {"stage": "COLLSCAN"}},
        }
    }
    assert P.plan_of(secantus) == "COLLSCAN \u2192 SORT"
    slot_based = {
        "queryPlanner": {
            "winningPlan": {
                "queryPlan": {
                    "stage": "LIMIT",
                    "inputStage": {"stage": "FETCH", "inputStage": {"stage": "IXSCAN"}},
                }
            }
        }
    }
    assert P.plan_of(slot_based) == "IXSCAN \u2192 FETCH \u2192 LIMIT"
    assert P.plan_of({}) == "unknown"


def costs(**ms: float) -> list[O.Spread]:
    defaults = {
        "one": 300.0, "one_small": 80.0, "page": 300.0, "skip_last": 290.0,
        "keyset_first": 650.0, "keyset_last": 550.0, "keyset_last_hinted": 500.0, "all": 480.0,
    }  # fmt: skip
    defaults.update(ms)
    spreads = []
    for key, value in defaults.items():
        rows = 5_000 if key == "one_small" else 20_000
        params = {"key": key, "rows": rows, "returned": 1_000, "plan": "COLLSCAN"}
        spreads.append(timed(key, [value / 1e3] * 3, params))
    return spreads


def test_a_query_costing_the_collection_is_called_a_scan() -> None:
    assert P.scans_the_collection(costs())
    assert P.query_note(costs()).startswith("- **A query costs what the collection costs")


def test_a_query_costing_what_it_returns_is_not_called_a_scan() -> None:
    cheap = costs(one=2.0, one_small=2.0)
    assert not P.scans_the_collection(cheap)
    assert P.query_note(cheap).startswith("- **What a query returns, and what it costs.**")
