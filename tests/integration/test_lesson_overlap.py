"""Lessons 02 and 03's helpers: timing, the proxy's waits, limits named from the runs."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from migrationkit import Endpoints, Settings
from migrationkit.workshop import lessons as L
from migrationkit.workshop.latency_proxy import ProxiedEndpoints
from migrationkit.workshop.lessons import overlap as O
from migrationkit.workshop.lessons.results import Measurement

pytestmark = pytest.mark.integration

FAR = "5 ms away"


def spread(
    workers: int,
    rates: list[float],
    *,
    delay_s: float | None = None,
    **extra: float | None,
) -> O.Spread:
    params = {"workers": workers, "delay": O.delay_name(delay_s), "pg_delay_s": delay_s}
    runs = tuple(Measurement(f"x{workers}", 1_000, 1_000 / r, params, dict(extra)) for r in rates)
    return O.Spread(f"x{workers}", params, runs)


@pytest.fixture
def lab(make_settings: Callable[..., Settings], servers: Endpoints) -> L.Lab:
    return L.Lab(make_settings(), servers)


# -- pure: spreads, limits, sentences --------------------------------------------------------


def test_a_spread_keeps_the_median_and_the_range_of_its_runs() -> None:
    runs = spread(2, [100.0, 300.0, 200.0])
    assert runs.rate == pytest.approx(200.0)
    assert runs.rate_range == pytest.approx((100.0, 300.0))
    assert runs.seconds == pytest.approx(5.0)
    assert runs.seconds_range == pytest.approx((1_000 / 300, 10.0))


def test_speedups_divide_by_the_fewest_workers_median() -> None:
    runs = [spread(1, [100.0]), spread(2, [190.0]), spread(4, [250.0])]
    assert O.speedups(runs) == pytest.approx({1: 1.0, 2: 1.9, 4: 2.5})
    assert O.overlap_limit(runs) == 2


def test_a_far_run_still_near_n_times_is_bound_by_the_waits() -> None:
    four = spread(4, [380.0], delay_s=0.005, machine_busy=1.0)
    assert O.bound_by(four, read_rate=1_000.0, fewest_rate=100.0) == O.ROUND_TRIPS


def test_a_run_near_the_source_rate_is_bound_by_the_source() -> None:
    direct = spread(4, [900.0], machine_busy=1.0, busy_share=0.2)
    assert O.bound_by(direct, read_rate=1_000.0, fewest_rate=900.0) == O.SOURCE_READ


def test_a_process_using_a_whole_core_is_bound_by_its_one_thread() -> None:
    direct = spread(2, [500.0], cpu_share=0.97, machine_busy=0.6)
    assert O.bound_by(direct, read_rate=1_000.0, fewest_rate=500.0) == O.ONE_THREAD


def test_a_run_with_every_cpu_busy_is_bound_by_the_cpus() -> None:
    far = spread(8, [300.0], delay_s=0.005, cpu_share=0.3, machine_busy=0.99)
    assert O.bound_by(far, read_rate=1_000.0, fewest_rate=100.0) == O.MACHINE_CPU


def test_idle_workers_mean_the_reader_was_the_slow_part() -> None:
    direct = spread(4, [500.0], cpu_share=0.3, machine_busy=0.5, busy_share=0.4)
    assert O.bound_by(direct, read_rate=1_000.0, fewest_rate=500.0) == O.READER


def test_busy_workers_mean_the_writes_were_the_slow_part() -> None:
    direct = spread(4, [500.0], cpu_share=0.3, machine_busy=0.5, busy_share=0.95)
    assert O.bound_by(direct, read_rate=1_000.0, fewest_rate=500.0) == O.WRITES


def test_the_summary_states_every_median_and_names_each_limit() -> None:
    far = [spread(n, [100.0 * n], delay_s=0.005, machine_busy=0.5) for n in (1, 2, 4)]
    direct = [spread(n, [950.0], machine_busy=0.5) for n in (1, 2, 4)]
    text = O.scaling_summary(far + direct, read=spread(1, [1_000.0]))
    assert "1 worker 100 rows/s; 2: 200 (2.0\u00d7); 4: 400 (4.0\u00d7)" in text
    assert "1 worker 950 rows/s; 2: 950 (1.0\u00d7); 4: 950 (1.0\u00d7)" in text
    assert "1,000 rows/s" in text
    assert "every count, up to 4 workers, kept within 80%" in text
    assert f"| 4 | {O.ROUND_TRIPS} | {O.SOURCE_READ} |" in text


def test_the_summary_says_where_another_limit_took_over() -> None:
    far = [
        spread(n, [r], delay_s=0.005, machine_busy=1.0)
        for n, r in ((1, 100.0), (2, 190.0), (4, 220.0))
    ]
    direct = [spread(n, [950.0]) for n in (1, 2, 4)]
    text = O.scaling_summary(far + direct, read=spread(1, [1_000.0]))
    assert "up to 2 workers kept within 80%" in text
    assert "from 4 on, another limit took over" in text


def test_milliseconds_keep_the_digits_that_matter() -> None:
    assert O.ms(0.000061) == "0.061 ms"
    assert O.ms(0.0012) == "1.2 ms"
    assert O.ms(0.037) == "37 ms"


def test_machine_busy_share_comes_from_proc_stat(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3\n", encoding="ascii")
    before = O.machine_cpu_ticks(stat)
    stat.write_text("cpu  250 0 150 800 100 0 0 0 0 0\n", encoding="ascii")
    assert before == (200, 1_000)
    assert O.busy_share(before, O.machine_cpu_ticks(stat)) == pytest.approx(200 / 300)


def test_without_proc_stat_the_machine_share_is_unknown(tmp_path: Path) -> None:
    assert O.machine_cpu_ticks(tmp_path / "missing") is None
    assert O.busy_share(None, None) is None


async def test_rounds_run_every_setting_in_turn_and_before_each_run() -> None:
    order: list[str] = []

    def setting(name: str) -> O.Setting:
        async def run() -> int:
            order.append(name)
            return 10

        return (name, {"workers": 1}, run)

    async def before() -> None:
        order.append("before")

    spreads = await O.repeat_rounds([setting("a"), setting("b")], repeats=2, before=before)
    assert order == ["before", "a", "before", "b"] * 2
    assert [(s.label, len(s.runs)) for s in spreads] == [("a", 2), ("b", 2)]
    assert all(run.rows == 10 and "cpu_share" in run.extra for s in spreads for run in s.runs)


# -- on the servers --------------------------------------------------------------------------


async def test_a_round_trip_through_the_proxy_costs_twice_the_delay(servers: Endpoints) -> None:
    async with ProxiedEndpoints(servers, pg_delay_s=0.005, mongo_delay_s=None) as far:
        far_trip = await O.round_trip_s(far.endpoints.pg_dsn, count=5)
    assert far_trip >= 0.010
    assert await O.round_trip_s(servers.pg_dsn, count=5) < far_trip


async def test_the_source_alone_reads_every_seeded_user(lab: L.Lab) -> None:
    await lab.seed(600)
    read = await O.read_alone(lab, batch_size=250, repeats=2)
    assert [run.rows for run in read.runs] == [600, 600]
    assert read.rate > 0


async def test_copy_runs_time_the_code_far_then_direct_on_an_empty_table(lab: L.Lab) -> None:
    table = f"{lab.settings.pg_table}_copy"
    seen: list[tuple[str, int, int]] = []

    async def copy(mongo_uri: str, pg_dsn: str, *, workers: int) -> int:
        connection = await asyncpg.connect(pg_dsn)
        try:
            before = await connection.fetchval(f"SELECT count(*) FROM {table}")
            await connection.execute(
                f"INSERT INTO {table} (mongo_id, username, email, age) VALUES ($1, 'u', 'e', 1)",
                f"id-{len(seen)}",
            )
        finally:
            await connection.close()
        seen.append((pg_dsn, workers, before))
        return 1

    spreads = await O.copy_runs(copy, lab, table=table, workers=[1, 2], repeats=2)
    assert [(s.params["delay"], s.workers) for s in spreads] == [
        (FAR, 1),
        (FAR, 2),
        ("direct", 1),
        ("direct", 2),
    ]
    assert all(before == 0 for _, _, before in seen)
    assert {dsn for dsn, _, _ in seen[:2]} != {lab.endpoints.pg_dsn}
    assert seen[2][0] == lab.endpoints.pg_dsn


async def test_copy_runs_show_waits_overlapping(lab: L.Lab) -> None:
    async def wait_in_parallel(mongo_uri: str, pg_dsn: str, *, workers: int) -> int:
        async def one() -> None:
            connection = await asyncpg.connect(pg_dsn)
            try:
                for _ in range(80 // workers):
                    await connection.fetchval("SELECT 1")
            finally:
                await connection.close()

        await asyncio.gather(*(one() for _ in range(workers)))
        return 80

    table = f"{lab.settings.pg_table}_waits"
    spreads = await O.copy_runs(wait_in_parallel, lab, table=table, workers=[1, 4], repeats=1)
    far = [s for s in spreads if s.params["delay"] == FAR]
    assert O.speedups(far)[4] > 2.0


async def test_migrations_move_every_user_and_time_the_copy(lab: L.Lab) -> None:
    await lab.seed(1_000)
    spreads = await O.migrations(
        lab, backend="asyncio", workers=[1, 2], pg_delay_s=0.002, batch_size=250, repeats=1
    )
    assert [(s.workers, s.params["delay"]) for s in spreads] == [(1, "2 ms away"), (2, "2 ms away")]
    for run in (run for s in spreads for run in s.runs):
        assert run.report is not None
        assert run.rows == run.report.rows_written == 1_000
        assert run.seconds == run.report.elapsed_s
        assert 0 < run.extra["busy_share"] <= 1.0
        assert O.first_batch_s(run) > 0
    note = O.timeline_note({"1 worker": spreads[0].median_run, "2 workers": spreads[1].median_run})
    assert note.count("the first batch reached a worker") == 2
    assert "the first run's" in note


async def test_a_batch_held_far_away_costs_several_round_trips(lab: L.Lab) -> None:
    await lab.seed(500)
    far = await O.migrations(
        lab, backend="threading", workers=[1], pg_delay_s=0.005, batch_size=250, repeats=1
    )
    assert O.batch_in_hand_s(far[0]) > 2 * 0.010


async def test_cpu_bound_runs_transform_every_user(lab: L.Lab) -> None:
    spreads = await O.cpu_bound("threading", [1, 2], rows=60, batch_size=20, repeats=1)
    assert [(s.workers, s.runs[0].rows) for s in spreads] == [(1, 60), (2, 60)]


async def test_startup_times_every_step_and_connecting_far_costs_round_trips(lab: L.Lab) -> None:
    steps = await O.startup_times(lab, workers=2, pg_delay_s=0.005, repeats=4)
    assert [s.params["what"] for s in steps] == ["thread", "loop", "cluster", "cluster"]
    assert all(s.seconds > 0 for s in steps)
    assert steps[3].seconds >= 0.010
    shown = re.findall(r"\*\*([\d.,]+) ms\*\*", O.startup_note(steps))
    assert len(shown) == 4
    assert all(float(value.replace(",", "")) > 0 for value in shown)


def computing(gains: list[float], *, cpu: float, machine: float) -> list[O.Spread]:
    return [
        spread(n, [100.0 * g], cpu_share=cpu, machine_busy=machine)
        for n, g in zip((1, 2, 4), gains, strict=True)
    ]


def test_the_gil_note_says_computing_threads_stayed_within_one_core() -> None:
    waiting = [spread(n, [100.0 * n], delay_s=0.005, cpu_share=0.2) for n in (1, 2, 4)]
    note = O.gil_note(computing([1.0, 1.0, 1.0], cpu=0.98, machine=0.5), waiting)
    assert "2: 1.0\u00d7, 4: 1.0\u00d7" in note
    assert "0.98 / 0.98 / 0.98 cores with 1 / 2 / 4 threads: never more than one" in note
    assert "2: 2.0\u00d7, 4: 4.0\u00d7, using 0.20 / 0.20 / 0.20 cores" in note
    assert "Every CPU of this machine was busy" not in note


def test_the_gil_note_warns_when_other_programs_took_the_cpus() -> None:
    waiting = [spread(n, [100.0 * n], delay_s=0.005, cpu_share=0.2) for n in (1, 2, 4)]
    note = O.gil_note(computing([1.0, 1.5, 1.6], cpu=0.45, machine=1.0), waiting)
    assert "Every CPU of this machine was busy" in note


def test_the_threading_recap_states_flat_or_not_from_the_runs() -> None:
    startup = [
        O.Spread(what, {"what": what, "workers": 4, "delay": "direct"}, (Measurement(what, 0, s),))
        for what, s in (("thread", 1e-4), ("loop", 3e-4), ("cluster", 0.04))
    ]
    far = [spread(n, [100.0 * n], delay_s=0.005) for n in (1, 2, 4)]
    direct = [spread(n, [900.0]) for n in (1, 2, 4)]
    read = spread(1, [1_000.0])
    flat = O.recap_threading(
        startup, far, direct, computing([1.0, 1.0, 1.1], cpu=0.97, machine=0.5), read=read
    )
    assert "They do not overlap Python work: the CPU-bound transform ran 1.1\u00d7" in flat
    assert "0.3 ms" in flat
    assert "40 ms" in flat
    moved = O.recap_threading(
        startup, far, direct, computing([1.0, 1.4, 1.6], cpu=0.45, machine=1.0), read=read
    )
    assert "ran 1.6\u00d7 as fast on 4 threads" in moved
    assert "never more than 0.45 at a time" in moved


def test_the_asyncio_recap_takes_every_number_from_the_runs() -> None:
    tasks = [spread(n, [100.0 * n * 0.9 if n > 1 else 100.0], delay_s=0.005) for n in (1, 4)]
    tasks += [spread(n, [800.0]) for n in (1, 4)]
    far = [spread(n, [100.0 * n], delay_s=0.005) for n in (1, 2, 4, 8)]
    direct = [spread(n, [950.0]) for n in (1, 2, 4, 8)]
    recap = O.recap_asyncio(tasks, far, direct, read=spread(1, [1_000.0]))
    assert "4 of your tasks copied 3.6\u00d7 as fast as one" in recap
    assert "reached 8.0\u00d7 with 8 workers" in recap
    assert "1.0\u00d7\u20131.0\u00d7" in recap
    assert "1,000 rows/s" in recap
