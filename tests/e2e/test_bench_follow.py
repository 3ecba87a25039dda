"""``migrationkit bench --suite follow`` on a tiny backlog and the real servers.

Nothing here asserts a speed (a tiny run on a shared machine says nothing about one).
What must hold: each round drains every change it made, raw and through both mappings,
ends with both targets equal to the source, the ratios are the medians of the rounds'
own quotients, each target is printed with a verdict from its numbers, and the scratch
collection and tables are gone afterwards.
"""

from __future__ import annotations

import math
import statistics

import pytest
from pydantic import SecretStr

from migrationkit import Endpoints, PostgresConnectionHandler, Settings
from migrationkit._cli.main import build_parser
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit.workshop.bench.follow import (
    COLLECTION,
    JSONB_TABLE,
    TARGET_LAG_S,
    TARGET_RATIO,
    FollowBenchReport,
    format_follow_report,
    run_follow_benchmark,
)

pytestmark = pytest.mark.integration

DOCUMENTS, CHANGES, ROUNDS = 200, 600, 2
DATABASE = "bench_follow_test"


@pytest.fixture(scope="module")
async def bench(servers: Endpoints) -> FollowBenchReport:
    settings = Settings(
        mongo_uri=SecretStr(servers.mongo_uri),
        pg_dsn=SecretStr(servers.pg_dsn),
        mongo_database=DATABASE,
        mongo_driver="pymongo",
    )
    return await run_follow_benchmark(
        settings,
        documents=DOCUMENTS,
        changes=CHANGES,
        rounds=ROUNDS,
        lag_seconds=1.0,
        echo=lambda _line: None,
    )


def test_every_round_drains_every_change_and_both_targets_end_equal(
    bench: FollowBenchReport,
) -> None:
    assert len(bench.rounds) == ROUNDS
    for one in bench.rounds:
        assert one.changes == CHANGES, "the raw drain reads every change of the backlog"
        assert min(one.raw_per_s, one.exact_per_s, one.exact_jsonb_per_s) > 0
        assert one.catch_up_per_s > 0
        assert one.verified, "verify found a target unequal to the source"


def test_ratios_are_the_medians_of_each_rounds_ratios(bench: FollowBenchReport) -> None:
    rounds = bench.rounds
    expected = {
        "child": statistics.median(r.exact_per_s / r.raw_per_s for r in rounds),
        "jsonb": statistics.median(r.exact_jsonb_per_s / r.raw_per_s for r in rounds),
        "catch-up": statistics.median(r.catch_up_per_s / r.raw_per_s for r in rounds),
    }
    found = {
        "child": bench.exact_ratio,
        "jsonb": bench.exact_jsonb_ratio,
        "catch-up": bench.catch_up_ratio,
    }
    assert all(math.isclose(found[k], expected[k]) for k in expected), (found, expected)


def test_the_lag_is_measured_at_both_shares_of_the_writers_limit(
    bench: FollowBenchReport,
) -> None:
    assert bench.write_limit_per_s > 0
    assert [run.asked_per_s for run in bench.lag] == pytest.approx(
        [0.5 * bench.write_limit_per_s, bench.write_limit_per_s]
    )
    for run in bench.lag:
        assert min(run.written_per_s, run.applied_per_s) > 0
        assert 0 <= run.lag_p50_s <= run.lag_p95_s <= run.lag_max_s


def test_the_report_prints_every_round_and_a_verdict_per_target(bench: FollowBenchReport) -> None:
    text = format_follow_report(bench)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "|---" not in line]
    assert len(rows) == 2 + ROUNDS + len(bench.lag)  # two headers, the rounds, the lag runs

    def verdict(met: bool) -> str:
        return "PASS" if met else "MISS"

    assert (
        f"child tables: {bench.exact_ratio:.2f} (target >= {TARGET_RATIO}: "
        + verdict(bench.exact_ratio >= TARGET_RATIO)
        in text
    )
    assert (
        f"(jsonb): {bench.exact_jsonb_ratio:.2f} (target >= {TARGET_RATIO}: "
        + verdict(bench.exact_jsonb_ratio >= TARGET_RATIO)
        in text
    )
    for run in bench.lag:
        assert f"{run.lag_max_s:.2f} | {verdict(run.lag_max_s < TARGET_LAG_S)} |" in text


async def test_the_scratch_collection_and_tables_are_dropped(
    bench: FollowBenchReport, servers: Endpoints
) -> None:
    async with PostgresConnectionHandler(servers.pg_dsn) as pool:
        tables = await pool.fetch(
            "SELECT tablename FROM pg_tables WHERE tablename = ANY($1::text[]) "
            "OR tablename LIKE $2",
            [COLLECTION, JSONB_TABLE],
            f"{COLLECTION}\\_\\_%",
        )
    async with MongoConnectionHandler(servers.mongo_uri) as client:
        collections = await client[DATABASE].list_collection_names()
    assert (tables, COLLECTION in collections) == ([], False)


def test_the_command_line_reaches_the_follow_suite() -> None:
    args = build_parser().parse_args(
        ["bench", "--suite", "follow", "--follow-documents", "300", "--changes", "900"]
    )
    assert (args.suite, args.follow_documents, args.changes) == ("follow", 300, 900)
