"""``migrationkit infer``, ``types`` and ``config show`` as a user runs them, on real servers."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from pymongo import MongoClient

from migrationkit import Endpoints
from migrationkit._mapping.toml import mappings_from_toml
from migrationkit._mapping.types import MAPPING_BSON_OPTIONS, format_type_map
from migrationkit.workshop.samples import CustomerFactory

pytestmark = pytest.mark.integration

DATABASE = "migrationkit_cli_infer"
COLLECTION = "customers"
CUSTOMERS = 1_500

Run = Callable[..., subprocess.CompletedProcess[str]]

REVIEWED = """\
[mappings.customers]
table = "customers"
columns = [{ path = "name", name = "name", pg_type = "text" }]
"""


@pytest.fixture(scope="module")
def customers(servers: Endpoints) -> Iterator[int]:
    """A generated collection of nested customers (id-keyed maps, arrays of orders, decimals)."""
    with MongoClient(servers.mongo_uri) as client:
        collection = client[DATABASE].get_collection(COLLECTION, codec_options=MAPPING_BSON_OPTIONS)
        collection.drop()
        collection.insert_many(list(CustomerFactory(seed=7).customers(CUSTOMERS)))
        yield CUSTOMERS
        client.drop_database(DATABASE)


@pytest.fixture
def run(servers: Endpoints, customers: int, tmp_path: Path) -> Run:
    """``python -m migrationkit ARGS`` in a fresh working folder, on the customers collection."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("MIGRATIONKIT_")
    } | {
        "MIGRATIONKIT_MONGO_URI": servers.mongo_uri,
        "MIGRATIONKIT_PG_DSN": servers.pg_dsn,
        "MIGRATIONKIT_MONGO_DATABASE": DATABASE,
        "MIGRATIONKIT_MONGO_COLLECTION": COLLECTION,
    }

    def run(*args: str, **env_overrides: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "migrationkit", *args],
            env=env | env_overrides,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


def password_of(servers: Endpoints) -> str:
    return servers.mongo_uri.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


def test_infer_writes_a_mapping_to_review_reports_each_field_and_says_what_to_run_next(
    run: Run, servers: Endpoints, tmp_path: Path
) -> None:
    done = run("infer", "--nested", "child")
    assert done.returncode == 0, done.stderr
    report = done.stdout
    assert "Inferred mapping: collection 'customers' -> table 'customers'" in report
    assert f"1,000 of {CUSTOMERS:,} documents" in report
    assert "a sample of up to 1,000" in report
    assert "keys look like values" in report  # tier_and_details: one jsonb column
    assert report.rstrip().endswith("migrationkit migrate --mapping customers.mapping.toml")
    mapping = mappings_from_toml((tmp_path / "customers.mapping.toml").read_text())["customers"]
    columns = {column.path: column for column in mapping.columns}
    assert columns["tier_and_details"].pg_type == "jsonb"
    assert columns["balance"].pg_type == "numeric"
    assert columns["address.city"].name == "address__city"
    assert {child.path for child in mapping.children} >= {"orders", "accounts"}
    assert password_of(servers) not in done.stdout + done.stderr


def test_infer_all_json_reads_every_document_and_names_the_file_and_next_command(
    run: Run,
) -> None:
    done = run("infer", "--all", "--json", "--out", "all.toml")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["documents"], report["sampled"], report["total"]) == (CUSTOMERS, None, CUSTOMERS)
    assert report["mapping_file"] == "all.toml"
    assert report["next_command"] == "migrationkit migrate --mapping all.toml"
    fields = {field["path"]: field for field in report["fields"]}
    assert fields["name"]["presence"] == 100.0
    assert fields["loyalty_points"]["pg_type"] == "bigint"  # int32 and int64 seen: widened
    assert fields["referrer"]["nullable"] is True


def test_infer_reads_no_more_than_the_sample_it_is_given(run: Run) -> None:
    done = run("infer", "--sample", "250", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["documents"], report["sampled"]) == (250, 250)


def test_infer_refuses_to_overwrite_a_mapping_without_force(run: Run, tmp_path: Path) -> None:
    reviewed = tmp_path / "customers.mapping.toml"
    reviewed.write_text("# reviewed by hand\n")
    refused = run("infer", "--quiet")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "migrationkit: error: customers.mapping.toml exists: pass --force to replace it, "
        "or --out PATH to write elsewhere"
    )
    assert reviewed.read_text() == "# reviewed by hand\n"
    forced = run("infer", "--quiet", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "[mappings.customers]" in reviewed.read_text()


def test_infer_only_reads_the_databases(run: Run, servers: Endpoints) -> None:
    assert run("infer", "--quiet", "--all", "--out", "read-only.toml").returncode == 0
    with MongoClient(servers.mongo_uri) as client:
        assert client[DATABASE].list_collection_names() == [COLLECTION]
        assert client[DATABASE][COLLECTION].count_documents({}) == CUSTOMERS

    async def tables() -> list[str]:
        connection = await asyncpg.connect(servers.pg_dsn)
        try:
            rows = await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'customers%'"
            )
        finally:
            await connection.close()
        return [row["tablename"] for row in rows]

    assert asyncio.run(tables()) == []


def test_infer_on_an_empty_collection_is_one_clear_line(run: Run) -> None:
    done = run("infer", MIGRATIONKIT_MONGO_COLLECTION="nobody_here")
    assert done.returncode == 1
    assert done.stderr.strip().startswith(
        f"migrationkit: error: {DATABASE}.nobody_here holds no documents"
    )


def test_types_prints_the_bson_type_map(run: Run) -> None:
    done = run("types")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == format_type_map()
    assert "| decimal | bson.Decimal128 | numeric |" in done.stdout


def test_config_show_names_where_the_mapping_comes_from(run: Run, tmp_path: Path) -> None:
    (tmp_path / "customers.mapping.toml").write_text(REVIEWED)
    with_file = run("config", "show", "--mapping", "customers.mapping.toml")
    assert with_file.returncode == 0, with_file.stderr
    assert with_file.stdout.splitlines()[-1] == (
        "mapping for 'customers': file:customers.mapping.toml (mapping = 'customers.mapping.toml')"
    )
    (tmp_path / "migrationkit.toml").write_text(REVIEWED)
    declared = run("config", "show")
    assert declared.returncode == 0, declared.stderr
    assert declared.stdout.splitlines()[-1] == (
        "mapping for 'customers': migrationkit.toml [mappings.customers] "
        "(declared for collection 'customers')"
    )
