"""The README's "Your own collections" walk-through as a user runs it: a nested collection,
only its database, collection and table set; migrate infers, writes, moves everything;
verify agrees; infer → review → migrate --mapping uses the reviewed file."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from migrationkit import Endpoints, MongoConnectionHandler
from migrationkit.workshop.samples import CustomerFactory

pytestmark = pytest.mark.integration

COUNT = 400


async def seed(uri: str, collection: str) -> None:
    async with MongoConnectionHandler(uri) as client:
        target = client["migrationkit"][collection]
        await target.drop()
        await target.insert_many(list(CustomerFactory(seed=11).customers(COUNT)))


@pytest.fixture
def run(servers: Endpoints, tmp_path: Path) -> Any:
    def run(collection: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "MIGRATIONKIT_MONGO_URI": servers.mongo_uri,
            "MIGRATIONKIT_PG_DSN": servers.pg_dsn,
            "MIGRATIONKIT_MONGO_COLLECTION": collection,
            "MIGRATIONKIT_PG_TABLE": collection,
            "MIGRATIONKIT_WORKERS": "2",
        }
        env.pop("MIGRATIONKIT_MAPPING", None)
        return subprocess.run(
            [sys.executable, "-m", "migrationkit", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    return run


def test_migrate_with_no_mapping_infers_one_says_where_and_moves_every_document(
    run: Any, servers: Endpoints, tmp_path: Path
) -> None:
    asyncio.run(seed(servers.mongo_uri, "own_customers"))
    done = run("own_customers", "migrate", "--json", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "inferred one from" in done.stderr
    assert "own_customers.mapping.toml" in done.stderr
    assert (tmp_path / "own_customers.mapping.toml").exists()
    report = json.loads(done.stdout)
    assert (report["rows_read"], report["rows_written"]) == (COUNT, COUNT)
    checked = run("own_customers", "verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith("OK:")
    again = run("own_customers", "migrate", "--json", "--quiet")
    assert again.returncode == 0, again.stderr
    assert "using the mapping in own_customers.mapping.toml" in again.stderr


def test_infer_then_migrate_with_the_reviewed_file_writes_its_child_tables(
    run: Any, servers: Endpoints, tmp_path: Path
) -> None:
    asyncio.run(seed(servers.mongo_uri, "own_orders"))
    inferred = run("own_orders", "infer", "--nested", "child", "--quiet", "--out", "orders.toml")
    assert inferred.returncode == 0, inferred.stderr
    done = run("own_orders", "migrate", "--mapping", "orders.toml", "--json", "--quiet")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows_written"] == COUNT
    checked = run("own_orders", "verify", "--mapping", "orders.toml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "own_orders__orders" in (tmp_path / "orders.toml").read_text()


def test_several_collections_refuse_one_table_name_for_all(run: Any) -> None:
    done = run("many_a", "migrate", "--collections", "many_a,many_b", "--quiet")
    assert done.returncode == 1
    assert "each to a table of its own name: unset pg_table" in done.stderr


def test_several_collections_each_land_in_a_table_of_its_name(
    servers: Endpoints, tmp_path: Path
) -> None:
    asyncio.run(seed(servers.mongo_uri, "many_c"))
    asyncio.run(seed(servers.mongo_uri, "many_d"))
    env = {
        **os.environ,
        "MIGRATIONKIT_MONGO_URI": servers.mongo_uri,
        "MIGRATIONKIT_PG_DSN": servers.pg_dsn,
        "MIGRATIONKIT_WORKERS": "2",
    }
    for key in ("MIGRATIONKIT_MAPPING", "MIGRATIONKIT_PG_TABLE", "MIGRATIONKIT_MONGO_COLLECTION"):
        env.pop(key, None)
    done = subprocess.run(
        [sys.executable, "-m", "migrationkit", "migrate", "--collections", "many_c,many_d",
         "--quiet"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("many_c -> many_c") and f"{COUNT:,}" in line for line in lines)
    assert any(line.startswith("many_d -> many_d") and f"{COUNT:,}" in line for line in lines)
    assert any(line.startswith("2 collections") and f"{2 * COUNT:,}" in line for line in lines)
    assert (tmp_path / "many_c.mapping.toml").exists()
    assert (tmp_path / "many_d.mapping.toml").exists()
