"""The notebooks' measurement helpers, on the real servers (and a few pure ones beside them)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from migrationkit import Endpoints, Settings
from migrationkit._errors import ConfigurationError
from migrationkit.workshop import lessons as L
from migrationkit.workshop.lessons.simulation import scenario_batches

pytestmark = pytest.mark.integration


@pytest.fixture
def lab(make_settings: Callable[..., Settings], servers: Endpoints) -> L.Lab:
    return L.Lab(make_settings(), servers)


# -- choices, rows, tables (no servers) -----------------------------------------------


def test_notebook_rows_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(L.ROWS_ENV, "5_000")
    assert L.notebook_rows() == 5_000
    assert L.default_choice().rows == 5_000
    monkeypatch.delenv(L.ROWS_ENV)
    assert L.notebook_rows() == L.DEFAULT_ROWS


def test_notebook_rows_refuses_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(L.ROWS_ENV, "0")
    with pytest.raises(ValueError, match=L.ROWS_ENV):
        L.notebook_rows()


def test_default_choice_gives_every_worker_several_batches() -> None:
    assert L.default_choice(50_000).batch_size == 2_500
    assert L.default_choice(1_000).batch_size == 50


def test_results_table_reads_as_text_and_html() -> None:
    runs = [L.Measurement("slow", 1_000, 2.0), L.Measurement("fast", 1_000, 0.5)]
    table = L.results_table(runs, speedup=True)
    assert repr(table).splitlines()[2].split() == ["slow", "1,000", "2.00", "500", "1.00x"]
    assert "<td>4.00x</td>" in table._repr_html_()


def test_pivot_puts_one_value_per_cell() -> None:
    runs = [
        L.Measurement("", 100, 1.0, {"backend": b, "writer": w})
        for b in ("asyncio", "threading")
        for w in ("copy", "insert")
    ]
    table = L.pivot(runs, rows=lambda m: m.params["backend"], columns=lambda m: m.params["writer"])
    assert table.columns == ["", "copy", "insert"]
    assert table.rows == [["asyncio", 100.0, 100.0], ["threading", 100.0, 100.0]]


@pytest.mark.parametrize("scenario", L.SCENARIOS)
def test_scenario_batches_keep_every_document_once(scenario: str) -> None:
    batches = scenario_batches(scenario, 10_000, 400)
    ids = [document["_id"] for batch in batches for document in batch]
    assert ids == list(range(10_000))


def test_skewed_batches_mix_small_and_large() -> None:
    sizes = {len(batch) for batch in scenario_batches("skewed", 10_000, 400)[:-1]}
    assert sizes == {200, 1_200}


def test_a_dispatcher_is_made_by_name() -> None:
    assert [L.make_dispatcher("round-robin", 3).choose([0, 0, 0]) for _ in range(2)] == [0, 0]
    assert L.make_dispatcher("least-loaded", 3).choose([2, 0, 1]) == 1
    with pytest.raises(ConfigurationError, match="unknown dispatcher 'random'"):
        L.make_dispatcher("random", 3)


# -- environment checks ---------------------------------------------------------------------


def test_package_checks_pass_in_the_test_environment() -> None:
    checks = L.check_packages()
    assert all(check.ok for check in checks if check.name != "SecantusDB")


async def test_server_checks_pass_and_hide_the_password(servers: Endpoints) -> None:
    checks = await L.check_servers(servers)
    assert [check.ok for check in checks] == [True, True]
    password = urlsplit(servers.pg_dsn).password
    assert password
    assert all(password not in check.detail for check in checks)


async def test_an_unreachable_server_fails_with_a_fix() -> None:
    checks = await L.check_servers(
        Endpoints(
            mongo_uri="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300",
            pg_dsn="postgresql://someone:hunter2@127.0.0.1:9/db",
        )
    )
    assert [check.ok for check in checks] == [False, False]
    assert all("servers start" in check.fix for check in checks)
    assert all("hunter2" not in check.detail for check in checks)


# -- migrations on the lab -------------------------------------------------------------------


async def test_a_lab_run_migrates_every_seeded_user(lab: L.Lab) -> None:
    measurement = await lab.run(L.Choice(rows=1_200, batch_size=250))
    assert lab.seeded == 1_200
    assert measurement.rows == 1_200
    assert measurement.report is not None
    assert measurement.report.rows_written == 1_200
    assert measurement.label == "asyncio/copy x2"


async def test_sweep_runs_every_combination_with_a_label_of_what_varies(lab: L.Lab) -> None:
    base = L.Choice(rows=600, batch_size=200)
    runs = await L.sweep(lab, base, writer=["copy", "insert"], workers=[1, 2])
    assert [m.label for m in runs] == ["copy x1", "copy x2", "insert x1", "insert x2"]
    assert all(m.rows == 600 for m in runs)


async def test_time_seeding_seeds_once_per_batch_size(lab: L.Lab) -> None:
    runs = await L.time_seeding(lab, 500, [50, 500])
    assert [(m.label, m.rows) for m in runs] == [("batch 50", 500), ("batch 500", 500)]


@pytest.mark.parametrize("backend", ["asyncio", "threading", "multiprocessing"])
async def test_the_slow_worker_is_slow_in_every_backend(backend: str) -> None:
    choice = L.Choice(
        backend=backend, workers=2, rows=2_000, batch_size=100, scenario="slow worker"
    )
    report = (await L.run_dispatch(choice)).report
    assert report is not None
    slow, normal = (stats.busy_s / stats.rows_written for stats in report.per_worker)
    assert slow > 2 * normal


async def test_least_loaded_gives_a_slow_worker_less_and_round_robin_does_not() -> None:
    choice = L.Choice(workers=3, rows=6_000, batch_size=100, scenario="slow worker")
    robin = (await L.run_dispatch(choice)).report
    least = (await L.run_dispatch(choice.but(dispatch="least-loaded"))).report
    assert robin is not None
    assert least is not None
    assert [s.rows_written for s in robin.per_worker] == [2_000, 2_000, 2_000]
    slow, *others = (s.rows_written for s in least.per_worker)
    assert slow < min(others)


async def test_bounded_queues_hold_less_memory_than_an_unbounded_one(lab: L.Lab) -> None:
    await lab.seed(3_000)
    # The writers must be clearly slower than the embedded server reads: at 6,000 rows/s
    # an unbounded inbox barely filled on a slow day (peak 0.46 MiB), and the test failed.
    unbounded, bounded = await L.measure_backpressure(
        lab, queue_depths=(0, 2), writers_rows_per_s=2_000
    )
    assert unbounded.rows == bounded.rows == 3_000
    assert bounded.extra["peak_mib"] < unbounded.extra["peak_mib"] / 2
    assert bounded.extra["samples"]


async def test_sweep_with_repeat_keeps_the_fastest_run_per_combination(lab: L.Lab) -> None:
    runs = await L.sweep(lab, L.Choice(rows=300, batch_size=100), repeat=2, workers=[1, 2])
    assert [m.label for m in runs] == ["x1", "x2"]
    assert all(m.rows == 300 for m in runs)


def test_user_generation_is_timed_for_the_requested_count() -> None:
    assert L.time_user_factory(300).rows == 300
    assert L.time_faker_per_user(20).rows == 20
