"""``migrationkit bench --suite nested`` on a tiny data set and the real servers.

Nothing here asserts a speed (a tiny run on a shared machine says nothing about
one). What must hold: every section moves every document at a positive rate,
every ratio is the quotient of the figures it relates, every target is judged
from its numbers and printed with a verdict, and nothing is left behind. The dlt
part runs only where dlt is installed (the ``bench`` extra, which CI does not
install); elsewhere its targets must be listed as not judged, with the reason.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import statistics
from dataclasses import replace
from typing import Any

import pytest
from pydantic import SecretStr

from migrationkit import Endpoints, PostgresConnectionHandler, Settings
from migrationkit._cli.main import build_parser
from migrationkit._run.migration import Migration
from migrationkit.workshop.bench.nested import DLT_DATASETS, TABLE_PREFIX, run_nested_benchmark
from migrationkit.workshop.bench.nested_report import NestedReport
from migrationkit.workshop.bench.nested_table import format_nested_report

pytestmark = pytest.mark.integration

CUSTOMERS, USERS, SCALE = 300, 1_000, 2
BACKENDS = ["asyncio", "threading", "multiprocessing"]
HAS_DLT = importlib.util.find_spec("dlt") is not None
TARGETS = 6  # nested / read, nested / dlt, memory, users / read, users / original, users / dlt
needs_dlt = pytest.mark.skipif(not HAS_DLT, reason="dlt is not installed (the bench extra)")


def close(value: float, expected: float) -> bool:
    """Equal up to the rounding the JSON file applies (4 decimals, or 1 on rows/s).

    Ratios recomputed here come from trial times the file rounds to 0.1 ms,
    and this tiny run's trials last tens of milliseconds: 2 % covers that rounding.
    """
    return math.isclose(value, expected, rel_tol=2e-2, abs_tol=1e-3)


@pytest.fixture(scope="module")
async def bench(
    servers: Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> tuple[NestedReport, dict[str, Any]]:
    """One tiny run in a database of its own; the original's pager gets no time budget."""
    path = tmp_path_factory.mktemp("bench-nested") / "nested.json"
    settings = Settings(
        mongo_uri=SecretStr(servers.mongo_uri),
        pg_dsn=SecretStr(servers.pg_dsn),
        mongo_database="bench_nested_test",
    )
    inferred: list[str] = []

    async def infer_mapping(run: Migration, *, resume: bool) -> None:
        inferred.append(run.source_name)
        await real_infer_mapping(run, resume=resume)

    real_infer_mapping = Migration._infer_mapping
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Migration, "_infer_mapping", infer_mapping)
        report = await run_nested_benchmark(
            CUSTOMERS, scale=SCALE, users_count=USERS, settings=settings, endpoints=servers,
            batch_size=100, users_batch_size=500, repeats=1, original_budget_s=0.0,
            with_dlt=HAS_DLT, json_path=path,
        )  # fmt: skip
    data = json.loads(path.read_text())
    return report, data | {"inferred by migrate": inferred}


def test_the_json_file_has_every_section(bench: Any) -> None:
    _, data = bench
    assert {"machine", "config", "nested", "memory", "users", "original", "rounds"} <= data.keys()
    assert {"targets", "unjudged", "skipped"} <= data.keys()
    assert data["machine"]["servers"]["postgresql"]
    assert data["config"]["count"] == CUSTOMERS
    assert data["config"]["users_count"] == USERS


def test_every_migration_is_given_its_mapping_so_no_run_times_an_inference(bench: Any) -> None:
    # The users runs take the built-in users mapping (today's path), named explicitly:
    # their collection is not called ``users``, so migrate() would otherwise infer one.
    _, data = bench
    assert data["inferred by migrate"] == []


def test_every_backend_and_every_nesting_moves_every_customer_at_a_positive_rate(
    bench: Any,
) -> None:
    report, _ = bench
    nested = report.nested
    other = layouts_backend(report)
    wanted = {f"{backend} jsonb" for backend in BACKENDS} | {f"{other} child", f"{other} flatten"}
    assert wanted <= nested.runs.keys()
    for timing in [nested.read, *nested.runs.values()]:
        assert timing.rows == CUSTOMERS
        assert timing.rows_per_s > 0


def layouts_backend(report: NestedReport) -> str:
    """The backend that ran the child-table and flattened mappings (the warm-up's fastest)."""
    (label,) = [label for label in report.nested.runs if label.endswith(" child")]
    return label.removesuffix(" child")


def test_the_best_backend_is_the_best_median_over_the_rounds_on_each_collection(
    bench: Any,
) -> None:
    report, _ = bench
    nested, users = report.nested, report.users
    jsonb_runs = [f"{backend} jsonb" for backend in BACKENDS]
    assert nested.best == max(jsonb_runs, key=lambda label: nested.runs[label].rows_per_s)
    assert set(BACKENDS) <= users.runs.keys()  # every backend, every round, on the users too
    assert users.best == max(BACKENDS, key=lambda label: users.runs[label].rows_per_s)


def test_child_tables_and_flattened_columns_are_what_the_inferred_mappings_write(
    bench: Any,
) -> None:
    report, _ = bench
    shapes = report.nested.shapes
    other = layouts_backend(report)
    assert shapes[f"{other} jsonb"].tables == 1
    assert shapes[f"{other} flatten"].tables == 1
    assert shapes[f"{other} flatten"].columns > shapes[f"{other} jsonb"].columns
    assert shapes[f"{other} child"].tables > 1  # orders, accounts, tags


def test_the_users_path_is_measured_beside_its_raw_read_and_the_original(bench: Any) -> None:
    report, data = bench
    users = report.users
    assert users.best in BACKENDS
    for timing in (users.read, users.runs[users.best]):
        assert timing.rows == USERS
        assert timing.rows_per_s > 0
    assert data["original"]["rows_total"] == USERS
    assert data["original"]["rows_per_s"] > 0


def paired(numerators: list[float], denominators: list[float]) -> float:
    return statistics.median(n / d for n, d in zip(numerators, denominators, strict=True))


def test_ratios_are_the_medians_of_each_rounds_ratios(bench: Any) -> None:
    _, data = bench
    for section in (data["nested"], data["users"]):
        read = section["source_read"]
        dlt = section["runs"].get("dlt")
        for run in section["runs"].values():
            by_round = paired(
                [run["rows"] * t for t in read["trials"]],
                [read["rows"] * t for t in run["trials"]],
            )
            assert close(run["ratio_to_source_read"], by_round)
            if dlt is None:
                assert run["ratio_to_dlt"] is None
            else:
                whole = run["whole_trials"] or run["trials"]
                by_round = paired([run["rows"] * t for t in dlt["trials"]],
                                  [dlt["rows"] * t for t in whole])  # fmt: skip
                assert close(run["ratio_to_dlt"], by_round)
    best = data["users"]["runs"][data["users"]["best"]]["rows_per_s"]
    assert close(data["original"]["speedup"], best / data["original"]["rows_per_s"])


def test_memory_is_measured_at_n_and_scale_times_n_in_child_processes(bench: Any) -> None:
    _, data = bench
    memory = data["memory"]
    assert (memory["small"]["count"], memory["large"]["count"]) == (CUSTOMERS, SCALE * CUSTOMERS)
    assert memory["small"]["peak_rss_bytes"] > 0
    assert memory["large"]["hwm_bytes"] > 0
    ratio = memory["large"]["peak_rss_bytes"] / memory["small"]["peak_rss_bytes"]
    assert close(memory["rss_ratio"], ratio)


@needs_dlt
def test_dlt_loads_every_document_into_child_tables_of_its_own(bench: Any) -> None:
    report, _ = bench
    for section, count in ((report.nested, CUSTOMERS), (report.users, USERS)):
        assert section.dlt == "dlt"
        assert section.runs["dlt"].rows == count
        assert section.runs["dlt"].rows_per_s > 0
    assert report.nested.shapes["dlt"].tables > 1  # its normalizer makes child tables
    assert report.users.shapes["dlt"].tables == 1


def test_every_target_is_judged_from_its_numbers_or_listed_with_why_not(bench: Any) -> None:
    _, data = bench
    assert len(data["targets"]) + len(data["unjudged"]) == TARGETS
    assert len(data["unjudged"]) == (0 if HAS_DLT else 2)
    for target in data["targets"]:
        below = target["measured"] <= target["threshold"]
        above = target["measured"] >= target["threshold"]
        assert target["passed"] == (below if target["comparison"] == "<=" else above)


def test_the_table_prints_every_section_and_a_verdict_per_target(bench: Any) -> None:
    report, _ = bench
    table = format_nested_report(report)
    for header in ("NESTED", "MEMORY", "USERS", "original", "TARGETS"):
        assert header in table
    judged = table.split("TARGETS\n")[1]
    verdicts = re.findall(r"^  (PASS|MISS|SKIP)  \S", judged, flags=re.MULTILINE)
    assert len(verdicts) == TARGETS


@needs_dlt
def test_the_table_says_what_the_dlt_target_asks_of_the_raw_read(bench: Any) -> None:
    report, _ = bench
    share = report.nested.read_ratio(report.nested.dlt)
    assert (
        f"dlt ran at {share:.2f}x the raw read of the customers: 5x dlt means "
        f"{5 * share:.2f}x the raw read"
    ) in format_nested_report(report)


def test_without_dlt_its_targets_are_skipped_with_the_reason(bench: Any) -> None:
    report, _ = bench
    without = replace(
        report,
        nested=replace(report.nested, dlt=None),
        users=replace(report.users, dlt=None),
        skipped={"nested dlt": "not installed here", "users dlt": "not installed here"},
    )
    assert len(without.targets()) == TARGETS - 2
    assert set(without.unjudged().values()) == {"not installed here"}
    assert format_nested_report(without).count("SKIP ") == 2


async def test_scratch_tables_and_dlt_schemas_are_dropped_after_the_run(
    bench: Any, servers: Endpoints
) -> None:
    async with PostgresConnectionHandler(servers.pg_dsn) as pool:
        tables = await pool.fetch(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE $1", f"{TABLE_PREFIX}%"
        )
        schemas = await pool.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE ANY($1::text[])",
            [f"{name}%" for name in DLT_DATASETS.values()],
        )
    assert (tables, schemas) == ([], [])


def test_the_command_line_reaches_the_nested_suite() -> None:
    args = build_parser().parse_args(
        ["bench", "--suite", "nested", "--customers", "1000", "--no-dlt", "--repeats", "3"]
    )
    assert (args.suite, args.customers, args.no_dlt, args.repeats) == ("nested", 1000, True, 3)
