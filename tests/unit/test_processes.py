"""Lesson 04's pure helpers: sizes, pickling, CPU from /proc, and sentences from the runs."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from migrationkit._executors.stats import WorkerStats
from migrationkit._run.report import MigrationReport
from migrationkit.workshop.lessons import overlap as O
from migrationkit.workshop.lessons import processes as P
from migrationkit.workshop.lessons.results import Measurement

TIMES = "\u00d7"


def spread(backend: str, workers: int, rates: list[float], **extra: Any) -> O.Spread:
    params = {"backend": backend, "workers": workers, "transform": P.HEAVY}
    runs = tuple(
        Measurement(f"{backend} x{workers}", 1_000, 1_000 / rate, params, dict(extra))
        for rate in rates
    )
    return O.Spread(f"{backend} x{workers}", params, runs)


def cpu_sweep(*, process_cores: float = 1.9, machine: float = 0.5) -> list[O.Spread]:
    """Processes that scale to 2 of 2 CPUs, threads and tasks flat on one core."""
    runs = []
    for n, gain in ((1, 1.0), (2, 1.9), (4, 1.9)):
        cores = 1.0 if n == 1 else process_cores
        runs.append(
            spread("multiprocessing", n, [100.0 * gain], cpu_share=cores, machine_busy=machine)
        )
    for backend in ("threading", "asyncio"):
        runs += [
            spread(backend, n, [100.0], cpu_share=0.98, machine_busy=machine) for n in (1, 2, 4)
        ]
    return runs


def step(label: str, seconds: float, **params: Any) -> O.Spread:
    return O.Spread(label, params, (Measurement(label, 250, seconds, params),))


def price() -> list[O.Spread]:
    return [
        step("start", 0.4, what="start", kind="spawn"),
        O.Spread(
            "kit",
            {"what": "start", "kind": "kit", "method": "forkserver"},
            tuple(Measurement("kit", 0, seconds, {}) for seconds in (0.5, 0.02, 0.02)),
        ),
        step("decoded", 0.0012, what="pickle", kind="decoded", bytes=36_000),
        step("raw", 0.00004, what="pickle", kind="raw", bytes=32_000),
        step("validate", 0.0008, what="transform", transform="validate"),
        step("heavy", 0.25, what="transform", transform=P.HEAVY),
    ]


def migration(backend: str, workers: int, rate: float, *, busy: float, first_s: float) -> O.Spread:
    params = {"backend": backend, "workers": workers, "transform": "validate"}
    spans = [(10.0 + first_s, 10.0 + first_s + busy), (11.0 + first_s, 11.0 + first_s)]
    stats = [WorkerStats(w, batches=2, spans=spans) for w in range(workers)]
    report = MigrationReport(backend, workers, "copy", 250, 1_000, 1_000, 0, 1_000 / rate, stats)
    run = Measurement(
        f"x{workers}", 1_000, 1_000 / rate, params, {"busy_share": busy, "called_at": 10.0}, report
    )
    return O.Spread(f"{backend} x{workers}", params, (run,))


# -- sizes, pickling, work ------------------------------------------------------------------


def test_the_cpu_runs_move_a_fifth_of_the_users_and_never_fewer_than_200() -> None:
    assert P.cpu_rows(20_000) == 4_000
    assert P.cpu_rows(900) == 200


def test_a_pickle_round_trip_returns_the_size_of_the_pickle() -> None:
    batch = [b"\x05\x00\x00\x00\x00", b"\x05\x00\x00\x00\x00"]
    assert P.pickle_round_trip(batch) == len(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))


def test_a_lesson_function_pickles_as_its_module_and_name() -> None:
    data = pickle.dumps(P.write_batches)
    assert b"migrationkit.workshop.lessons.processes" in data
    assert b"write_batches" in data


def test_transform_batch_runs_the_transform_on_every_document() -> None:
    seen: list[int] = []
    assert P.transform_batch([{"n": 1}, {"n": 2}], lambda d: seen.append(d["n"]) or ()) == 2
    assert seen == [1, 2]


def test_live_cpu_comes_from_each_process_stat(tmp_path: Path) -> None:
    tick = os.sysconf("SC_CLK_TCK")
    for pid, (user, system) in {11: (tick, tick), 12: (2 * tick, 0)}.items():
        (tmp_path / str(pid)).mkdir()
        fields = ["S", *["0"] * 10, str(user), str(system), *["0"] * 10]
        (tmp_path / str(pid) / "stat").write_text(f"{pid} (a (b) c) {' '.join(fields)}\n")
    assert P.live_cpu_s([11, 12], proc=tmp_path) == pytest.approx(4.0)


def test_live_cpu_is_unknown_without_the_process_stat(tmp_path: Path) -> None:
    assert P.live_cpu_s([99], proc=tmp_path) is None


# -- sentences ----------------------------------------------------------------------------


def test_the_price_note_puts_each_cost_beside_a_batch_of_work() -> None:
    note = P.price_note(price(), batch_size=250)
    assert "**400 ms**" in note
    assert f"1.6{TIMES} one heavy batch" in note
    assert "**1.2 ms**" in note
    assert "**0.04 ms**" in note
    assert f"(30.0{TIMES} less time)" in note
    assert f"(6,250{TIMES} sending it raw)" in note


def test_the_price_note_says_the_kit_forks_its_workers_from_a_fork_server() -> None:
    note = P.price_note(price(), batch_size=250)
    assert "The kit's way (`forkserver`) took **20 ms**" in note
    assert "(500 ms for the first start, which started that server)" in note
    assert f"20.0{TIMES} less time than spawning" in note


def test_the_cpu_note_sets_processes_against_the_gil_bound_backends() -> None:
    note = P.cpu_note(cpu_sweep(), cpus=2)
    assert f"**Processes** (100 rows/s with 1): 2: 1.9{TIMES}, 4: 1.9{TIMES}" in note
    assert f"**Threads** (100 rows/s with 1): 2: 1.0{TIMES}, 4: 1.0{TIMES}" in note
    assert "never used more than **0.98 cores**" in note
    assert "Processes used up to **1.90** of this machine's 2 CPUs" in note
    assert f"4 processes on 2 CPUs: 1.9{TIMES}, against 1.9{TIMES} with 2" in note
    assert "other programs included" not in note


def test_the_cpu_note_says_when_other_programs_took_the_cpus() -> None:
    note = P.cpu_note(cpu_sweep(process_cores=1.1, machine=1.0), cpus=2)
    assert "every CPU was busy, other programs included" in note


def test_top_gain_skips_the_fewest_workers() -> None:
    flat = [spread("threading", n, [r]) for n, r in ((1, 100.0), (2, 90.0), (4, 95.0))]
    assert P.top_gain(flat) == (4, pytest.approx(0.95))
    assert P.top_gain(flat[:1]) == (1, 1.0)


def test_worker_names_are_singular_for_one() -> None:
    assert P.workers_name(1) == "1 worker"
    assert P.workers_name(4, "processes") == "4 processes"


def test_a_run_near_the_source_rate_is_bound_by_the_read() -> None:
    run = migration("asyncio", 1, 900.0, busy=0.5, first_s=0.1)
    assert P.bound_by(run, read_rate=1_000.0) == O.SOURCE_READ


def test_idle_workers_are_bound_by_the_reader() -> None:
    run = migration("multiprocessing", 2, 300.0, busy=0.2, first_s=1.0)
    assert P.bound_by(run, read_rate=1_000.0) == O.READER


def test_busy_workers_beyond_the_cpus_are_bound_by_the_cpus() -> None:
    run = migration("multiprocessing", 4, 300.0, busy=0.99, first_s=1.0)
    assert P.bound_by(run, read_rate=1_000.0, cpus=2).startswith("the CPUs (4 workers on 2")
    assert P.bound_by(run, read_rate=1_000.0, cpus=4) == P.WORKERS_CPU


def test_the_package_note_compares_the_first_batch_of_processes_and_tasks() -> None:
    heavy = [
        migration("multiprocessing", n, r, busy=0.95, first_s=0.5)
        for n, r in ((1, 90.0), (2, 162.0))
    ]
    light = [
        migration("asyncio", 1, 900.0, busy=0.5, first_s=0.2),
        migration("multiprocessing", 1, 400.0, busy=0.2, first_s=1.3),
    ]
    note = P.package_note(heavy, light, read=spread("source", 1, [1_000.0]))
    assert f"1 worker 90 rows/s; 2: 1.8{TIMES}" in note
    assert "the fastest at 90% of the source alone (1,000 rows/s)" in note
    assert "up to **1.30 s** after `migrate()` was called with processes, **0.20 s**" in note
    assert "the difference is the processes' start-up" in note
    assert "| multiprocessing validate x1 | 400 | 1.30 s | 20% of the time |" in note


def test_a_start_up_hidden_behind_the_first_batch_is_not_blamed_for_the_wait() -> None:
    heavy = [migration("multiprocessing", 1, 90.0, busy=0.95, first_s=0.3)]
    light = [
        migration("asyncio", 1, 900.0, busy=0.5, first_s=0.34),
        migration("multiprocessing", 1, 1_200.0, busy=0.8, first_s=0.31),
    ]
    note = P.package_note(heavy, light, read=spread("source", 1, [2_000.0]))
    assert "start-up hides behind the wait for the source's first batch" in note
    assert "the difference is" not in note


def test_the_wait_for_the_first_batch_is_not_counted_as_idle() -> None:
    run = migration("multiprocessing", 2, 300.0, busy=0.9, first_s=2.0)
    assert P.busy_after_first(run) == pytest.approx(0.9)
    assert P.bound_by(run, read_rate=1_000.0, cpus=2) == P.WORKERS_CPU


def test_without_a_report_the_busy_share_of_the_copy_stands() -> None:
    params = {"backend": "asyncio", "workers": 1}
    runs = (Measurement("x1", 100, 1.0, params, {"busy_share": 0.3}),)
    assert P.busy_after_first(O.Spread("x1", params, runs)) == pytest.approx(0.3)


def test_the_recap_takes_every_number_from_the_runs() -> None:
    heavy = [
        migration("multiprocessing", n, r, busy=0.95, first_s=0.5)
        for n, r in ((1, 100.0), (2, 180.0), (4, 170.0))
    ]
    light = [
        migration("asyncio", 2, 900.0, busy=0.5, first_s=0.2),
        migration("multiprocessing", 2, 450.0, busy=0.2, first_s=1.3),
    ]
    text = P.recap(price(), cpu_sweep(), heavy, light, read=spread("source", 1, [1_000.0]))
    assert "starting one took 400 ms (the kit's way, `forkserver`: 20 ms)" in text
    assert f"ran 1.9{TIMES} as fast on 2 processes as on one" in text
    assert "never above 0.98 cores" in text
    assert f"1.8{TIMES} with 2 workers on the heavy transform" in text
    assert f"ran at 0.5{TIMES} the fastest asyncio run" in text


def test_the_cpu_groups_name_each_backend_by_its_workers() -> None:
    assert list(P.cpu_groups(cpu_sweep())) == [
        "processes (multiprocessing)",
        "threads (threading)",
        "asyncio tasks (asyncio)",
    ]
