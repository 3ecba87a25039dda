"""What a run that sets documents aside tells its operator: one summary, a distinct exit."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from migrationkit import Endpoints, MongoConnectionHandler
from migrationkit.workshop import UserFactory

pytestmark = pytest.mark.integration

COLLECTION = "cli_rejects_users"


async def seed_with_bad_documents(uri: str) -> None:
    """300 valid users; 40 too old, 25 without an e-mail, and one with an extra field."""
    users: list[dict[str, Any]] = list(UserFactory(seed=5).users(366))
    for user in users[300:340]:
        user["age"] = 200 + len(user["username"])  # a different value each: one reason
    for user in users[340:365]:
        del user["email"]
    users[365]["nickname"] = "no column for me"
    async with MongoConnectionHandler(uri) as client:
        collection = client["migrationkit"][COLLECTION]
        await collection.drop()
        await collection.insert_many(users)


@pytest.fixture(scope="module")
def migrate_cli(servers: Endpoints) -> Any:
    asyncio.run(seed_with_bad_documents(servers.mongo_uri))
    env = {
        **os.environ,
        "MIGRATIONKIT_MONGO_URI": servers.mongo_uri,
        "MIGRATIONKIT_PG_DSN": servers.pg_dsn,
        "MIGRATIONKIT_MONGO_COLLECTION": COLLECTION,
        "MIGRATIONKIT_PG_TABLE": COLLECTION,
        "MIGRATIONKIT_MAPPING": "users",
        "MIGRATIONKIT_WORKERS": "2",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "migrationkit", "migrate", "--quiet", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    return run


def test_a_run_that_sets_documents_aside_completes_then_exits_4(migrate_cli: Any) -> None:
    done = migrate_cli()
    assert done.returncode == 4, done.stderr
    assert "65 of 366 documents were set aside" in done.stderr
    assert "migrationkit rejects" in done.stderr


def test_the_summary_groups_the_documents_by_reason_with_a_few_ids(migrate_cli: Any) -> None:
    done = migrate_cli()
    lines = [line for line in done.stdout.splitlines() if "(e.g. _id" in line]
    assert len(lines) == 2, done.stdout  # one line per reason, not one per document
    too_old, no_email = lines
    assert too_old.split()[0] == "40"
    assert "age" in too_old
    assert no_email.split()[0] == "25"
    assert "email: Field required" in no_email
    assert too_old.count(", ") == 2  # three _ids
    assert "rejected document" not in done.stderr  # no log line per document


def test_fields_the_users_table_has_no_column_for_are_named(migrate_cli: Any) -> None:
    done = migrate_cli()
    assert "Fields with no column, not written (documents): nickname (1)" in done.stdout


def test_max_rejected_allows_some_as_a_count_or_a_share(migrate_cli: Any) -> None:
    assert migrate_cli("--max-rejected", "65").returncode == 0
    assert migrate_cli("--max-rejected", "64").returncode == 4
    assert migrate_cli("--max-rejected", "20%").returncode == 0
    assert migrate_cli("--max-rejected", "10%").returncode == 4


def test_the_json_report_has_the_reasons_and_the_exit_status_is_the_same(migrate_cli: Any) -> None:
    done = migrate_cli("--json")
    assert done.returncode == 4
    report = json.loads(done.stdout)
    reasons = {group["reason"]: group["documents"] for group in report["rejections_by_reason"]}
    assert sorted(reasons.values()) == [25, 40]
    assert report["fields_dropped"] == {"nickname": 1}
