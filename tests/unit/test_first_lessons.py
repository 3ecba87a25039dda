"""Lessons 00 (setup) and 01 (seeding): their sums, sentences and charts, from made-up runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from migrationkit import Endpoints
from migrationkit._servers.doctor import Check, Diagnosis
from migrationkit.workshop.lessons import seeding_lesson as S
from migrationkit.workshop.lessons import setup_lesson as T
from migrationkit.workshop.lessons.overlap import DASH, TIMES, Spread
from migrationkit.workshop.lessons.results import Measurement

#: A server that costs 1 ms a request and 100 µs a document.
PER_REQUEST_S, PER_DOCUMENT_S = 1e-3, 1e-4


def rates_spread(label: str, rates: list[float], **params: object) -> Spread:
    runs = tuple(Measurement(label, 1_000, 1_000 / rate, params) for rate in rates)
    return Spread(label, params, runs)


def timed_spread(label: str, seconds: list[float]) -> Spread:
    return Spread(label, {"what": label}, tuple(Measurement(label, 1, s) for s in seconds))


def seeding(
    per_request: float = PER_REQUEST_S, per_document: float = PER_DOCUMENT_S
) -> list[Spread]:
    """Your loop at every batch size and seed_users, exactly as the two costs predict."""
    spreads = []
    for size in S.BATCH_SIZES:
        rate = 1 / (per_request / size + per_document)
        spreads.append(
            rates_spread(
                f"batch {size:,}",
                [0.9 * rate, rate, 1.1 * rate],
                batch_size=size,
                code=S.YOURS,
                users=S.users_for(size, 20_000),
            )
        )
    rate = 1 / (per_request / S.PACKAGE_BATCH + per_document)
    package = rates_spread(
        S.PACKAGE, [rate], batch_size=S.PACKAGE_BATCH, code=S.PACKAGE, users=20_000
    )
    return [*spreads, package]


def making() -> list[Spread]:
    return [
        rates_spread("Faker, one call per field", [7_000.0, 8_000.0, 9_000.0]),
        rates_spread("UserFactory (pooled names)", [200_000.0, 240_000.0, 250_000.0]),
    ]


# -- lesson 01: costs, bounds, sentences ------------------------------------------------------


def test_small_batch_sizes_insert_only_so_many_requests_worth() -> None:
    assert S.users_for(1, 20_000) == S.MAX_REQUESTS
    assert S.users_for(10, 20_000) == min(20_000, 10 * S.MAX_REQUESTS)
    assert S.users_for(10_000, 20_000) == 20_000


def test_the_fit_finds_the_cost_of_a_request_and_of_a_document() -> None:
    costs = S.fit_costs(S.yours_only(seeding()))
    assert costs.per_request_s == pytest.approx(PER_REQUEST_S, rel=1e-6)
    assert costs.per_document_s == pytest.approx(PER_DOCUMENT_S, rel=1e-6)
    assert costs.ceiling == pytest.approx(10_000)
    assert costs.rate(10) == pytest.approx(1 / (1e-4 + 1e-4))
    assert costs.request_share(10) == pytest.approx(0.5)


def test_a_fit_with_no_fixed_cost_says_so_instead_of_going_negative() -> None:
    flat = [rates_spread(f"b{n}", [5_000.0], batch_size=n) for n in (1, 10, 100)]
    flat[0] = rates_spread("b1", [5_100.0], batch_size=1)  # slightly faster at batch 1
    costs = S.fit_costs(flat)
    assert costs.per_request_s == 0.0
    assert costs.per_document_s == pytest.approx(1 / 5_000.0)


def test_a_fit_needs_two_batch_sizes() -> None:
    with pytest.raises(ValueError, match="two batch sizes"):
        S.fit_costs([rates_spread("b1", [100.0], batch_size=1)])


def test_each_batch_size_is_bound_by_what_its_numbers_show() -> None:
    costs = S.Costs(per_request_s=1e-3, per_document_s=1e-4)
    one = rates_spread("b1", [900.0], batch_size=1)
    assert S.bound_by(one, costs) == S.REQUESTS
    big = Spread("b", {"batch_size": 10_000}, (Measurement("b", 1, 1.0, extra={}),))
    assert S.bound_by(big, costs) == S.DOCUMENTS
    busy_server = Measurement("b", 1, 1.0, extra={"server_cores": 0.97, "machine_busy": 0.6})
    assert S.bound_by(Spread("b", {"batch_size": 10_000}, (busy_server,)), costs) == S.SERVER_CPU
    busy_machine = Measurement("b", 1, 1.0, extra={"server_cores": 0.5, "machine_busy": 0.95})
    assert S.bound_by(Spread("b", {"batch_size": 10_000}, (busy_machine,)), costs) == S.MACHINE


def test_the_summary_takes_every_number_from_the_runs() -> None:
    summary = S.seeding_summary(seeding(), making())
    assert "**10,000 documents per request** inserted 9,990 documents/s" in summary
    assert f"**11{TIMES}** the 909 of **1 per request**" in summary
    assert "a request costs about **1.00 ms**" in summary
    assert "a document about **100 µs**" in summary
    assert "passes about 10,000 documents/s" in summary
    assert "inserted 9,990 documents/s, **100%** of your loop's 9,990" in summary
    assert f"the factory makes 240,000 users/s, 24{TIMES} what the server stores at best" in summary
    assert f"| 1 | {S.MAX_REQUESTS} | 909 | 818{DASH}1,000 | 91% |" in summary


def test_the_generation_note_compares_the_two_ways() -> None:
    note = S.generation_note(making())
    assert "8,000 users/s (median of 3)" in note
    assert f"**30{TIMES}** as fast" in note


def test_the_recap_has_three_lines_from_the_runs() -> None:
    lines = S.recap(making(), seeding()).splitlines()
    assert [line[:3] for line in lines] == ["1. ", "2. ", "3. "]
    assert "(8,000 users/s here)" in lines[0]
    assert "about 1.00 ms each here" in lines[1]
    assert f"batches of {S.PACKAGE_BATCH:,}): 9,990 documents/s" in lines[2]


def test_the_cpu_of_a_process_is_read_from_its_proc_stat(tmp_path: Path) -> None:
    import os

    ticks = os.sysconf("SC_CLK_TCK")
    fields = ["S", *["0"] * 10, str(3 * ticks), str(ticks), *["0"] * 20]
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "stat").write_text(f"42 (secantus (db)) {' '.join(fields)}\n")
    assert S.process_cpu_s(42, proc=tmp_path) == pytest.approx(4.0)
    assert S.process_cpu_s(43, proc=tmp_path) is None
    assert S.process_cpu_s(None, proc=tmp_path) is None


def test_users_made_twice_compare_equal_without_their_ids() -> None:
    user = {"username": "a0", "age": 30}
    assert S.same_users([{"_id": 1, **user}], [user])
    assert not S.same_users([{"_id": 1, **user}], [{**user, "age": 31}])


# -- lesson 00: connections, doctor, runs -----------------------------------------------------


def connection_spreads() -> list[Spread]:
    return [
        timed_spread(T.MONGO_OPEN, [0.010, 0.012, 0.020]),
        timed_spread(T.MONGO_TRIP, [0.0004, 0.0005, 0.0009]),
        timed_spread(T.PG_OPEN, [0.030, 0.031, 0.040]),
        timed_spread(T.PG_TRIP, [0.0002, 0.0003, 0.0004]),
    ]


def test_the_connection_note_compares_opening_with_a_round_trip() -> None:
    note = T.connection_note(connection_spreads())
    assert "**MongoDB:** opening a connection (and one request on it) took **12 ms**" in note
    assert f"**24{TIMES}** one round trip on an open connection (0.5 ms; 0.4 ms{DASH}0.9 ms" in note
    assert "**PostgreSQL:**" in note
    assert f"**103{TIMES}**" in note


async def test_calls_are_timed_in_whole_rounds() -> None:
    order: list[str] = []

    def call(name: str) -> T.Call:
        async def run() -> None:
            order.append(name)
            await asyncio.sleep(0)

        return run

    spreads = await T.time_calls([("a", call("a")), ("b", call("b"))], repeats=3)
    assert order == ["a", "b"] * 3
    assert [len(spread.runs) for spread in spreads] == [3, 3]


def test_the_servers_note_shows_both_addresses_and_no_password() -> None:
    endpoints = Endpoints("mongodb://127.0.0.1:1/", "postgresql://kit:hunter2@127.0.0.1:2/db")
    note = T.servers_note(endpoints, mongo_version="8.0", pg_version="15.1")
    assert "version **8.0**" in note
    assert "PostgreSQL: postgresql://kit:***@127.0.0.1:2/db" in note
    assert "hunter2" not in note
    assert "is not in these lines" in note


def test_the_doctor_table_marks_each_check_and_the_note_names_the_fixes() -> None:
    diagnosis = Diagnosis(
        [
            Check("Installed", "python", "ok", "3.11"),
            Check("Servers", "MongoDB", "problem", "does not answer", "migrationkit servers start"),
        ]
    )
    table = T.doctor_table(diagnosis)
    assert [row[2] for row in table.rows] == ["ok", "FAIL"]
    assert "**MongoDB**: `migrationkit servers start`" in T.doctor_note(diagnosis)
    assert "no problem found" in T.doctor_note(Diagnosis(diagnosis.checks[:1]))


def test_the_runs_note_gives_their_spread_and_what_set_the_pace() -> None:
    runs = [Measurement("asyncio/copy x2", 20_000, s) for s in (1.0, 0.8, 1.25)]
    read = rates_spread("the source alone", [25_000.0, 26_000.0, 30_000.0])
    note = T.runs_note(runs, read=read, near_share=0.85)
    assert f"**16,000{DASH}25,000 rows/s** (median 20,000)" in note
    assert "**56%** faster than the slowest" in note
    assert "**77%** of the rate" in note
    assert "something else set the pace" in note
    fast = [Measurement("x", 25_000, 1.0)] * 3
    assert "the source's read set the pace" in T.runs_note(fast, read=read, near_share=0.85)


def test_the_setup_recap_has_three_lines_from_the_runs() -> None:
    runs = [Measurement("asyncio/copy x2", 20_000, s) for s in (1.0, 0.8, 1.25)]
    diagnosis = Diagnosis([Check("Installed", "python", "ok", "3.11")])
    lines = T.recap(
        connection_spreads(), diagnosis, runs, mongo_version="8.0", pg_version="15.1"
    ).splitlines()
    assert len(lines) == 3
    assert f"costs 24{DASH}103{TIMES} a round trip" in lines[1]
    assert "1 checks and found nothing to fix" in lines[2]
    assert f"16,000{DASH}25,000 rows/s" in lines[2]


# -- lesson 01's charts -----------------------------------------------------------------------


def test_the_seeding_chart_starts_at_zero_and_names_every_mark() -> None:
    pytest.importorskip("matplotlib")
    from migrationkit.workshop import seeding_charts

    ax = seeding_charts.by_batch_size(seeding(), title="t").axes[0]
    assert ax.get_ylim()[0] == 0
    assert ax.get_xscale() == "log"
    assert [tick.get_text() for tick in ax.get_xticklabels()] == [
        "1",
        "10",
        "100",
        "1,000",
        "10,000",
    ]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels[0] == "fit: 1.00 ms a request + 100 µs a document"
    assert "the fit's limit: 10,000 documents/s" in labels
    assert "your insert_many loop" in labels
    assert "point: median of 1 runs" in labels  # the package ran once in these made-up runs


def test_the_generation_chart_draws_a_bar_per_way_from_zero() -> None:
    pytest.importorskip("matplotlib")
    from migrationkit.workshop import seeding_charts

    ax = seeding_charts.generation(making()).axes[0]
    assert ax.get_xlim()[0] == 0
    assert len(ax.patches) == 2
    assert "users/s" in ax.get_xlabel()
