"""``verify`` finds what is wrong in the target, not only what is missing."""

from __future__ import annotations

from typing import Any

import pytest

from migrationkit import DeadLetterRepository, Settings, UserMongoRepository, migrate
from migrationkit._run.verify import verify
from migrationkit._target.table import UserPostgresRepository
from migrationkit.workshop import seed_users

pytestmark = pytest.mark.integration


@pytest.fixture
async def migrated(
    settings: Settings, source: UserMongoRepository, target: UserPostgresRepository
) -> Settings:
    await seed_users(source, 2_500)
    await source.insert_many([{"_id": "bad", "username": "x", "email": "nope", "age": 3}])
    await migrate(settings)
    return settings


async def some_key(target: UserPostgresRepository) -> str:
    return str(await target._db.fetchval(f"SELECT mongo_id FROM {target._quoted} LIMIT 1"))


async def test_a_correct_migration_verifies(migrated: Settings) -> None:
    report = await verify(migrated, range_size=1_000)
    assert report.ok, report.summary()
    assert (report.source_documents, report.table_rows, report.rejected_rows) == (2_501, 2_500, 1)
    assert report.ranges == 3
    assert report.summary().startswith("OK:")


async def test_a_changed_value_is_found_and_named(
    migrated: Settings, target: UserPostgresRepository
) -> None:
    key = await some_key(target)
    await target._db.execute(
        f"UPDATE {target._quoted} SET email = 'someone@else.org' WHERE mongo_id = $1", key
    )
    report = await verify(migrated, range_size=1_000)
    assert not report.ok
    assert report.ranges_differing == 1
    assert [str(d) for d in report.differences] == [
        f"_id {key}: email is 'someone@else.org', source says "
        + repr(await source_email(migrated, key))
    ]


async def source_email(settings: Settings, key: str) -> str:
    from bson import ObjectId

    from migrationkit import MongoConnectionHandler

    assert settings.mongo_uri is not None
    async with MongoConnectionHandler(settings.mongo_uri.get_secret_value()) as client:
        document = await client[settings.mongo_database][settings.mongo_collection].find_one(
            {"_id": ObjectId(key)}
        )
    return str(document["email"])


async def test_a_missing_row_is_found(migrated: Settings, target: UserPostgresRepository) -> None:
    key = await some_key(target)
    await target._db.execute(f"DELETE FROM {target._quoted} WHERE mongo_id = $1", key)
    report = await verify(migrated)
    assert [str(d) for d in report.differences] == [f"_id {key}: missing from the table"]


async def test_a_row_without_a_source_document_is_found(
    migrated: Settings, target: UserPostgresRepository
) -> None:
    await target._db.execute(
        f"INSERT INTO {target._quoted} (mongo_id, username, email, age) "
        "VALUES ('ghost', 'g', 'g@x.org', 1)"
    )
    report = await verify(migrated)
    assert report.extra_rows == 1
    assert not report.ok


async def test_an_invalid_document_missing_from_the_dead_letter_table_is_found(
    migrated: Settings, target: UserPostgresRepository
) -> None:
    await DeadLetterRepository(target._db, table=target.table).truncate()
    report = await verify(migrated)
    assert [str(d) for d in report.differences] == [
        '_id "bad": invalid in the source, but not set aside'
    ]


async def test_verify_exits_1_with_the_first_differences_from_the_cli(
    migrated: Settings, target: UserPostgresRepository, servers: Any
) -> None:
    import asyncio
    import os
    import subprocess
    import sys

    key = await some_key(target)
    await target._db.execute(f"DELETE FROM {target._quoted} WHERE mongo_id = $1", key)
    env = {
        **os.environ,
        "MIGRATIONKIT_MONGO_URI": servers.mongo_uri,
        "MIGRATIONKIT_PG_DSN": servers.pg_dsn,
        "MIGRATIONKIT_MONGO_COLLECTION": migrated.mongo_collection,
        "MIGRATIONKIT_PG_TABLE": migrated.pg_table,
        "MIGRATIONKIT_MAPPING": "users",
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "migrationkit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "MISMATCH" in done.stderr
    assert f"_id {key}: missing from the table" in done.stderr


async def test_a_changed_value_in_a_document_set_aside_is_found(
    migrated: Settings, target: UserPostgresRepository
) -> None:
    dead_letters = DeadLetterRepository(target._db, table=target.table)
    await target._db.execute(
        f'UPDATE "{dead_letters.table}" SET document = document || \'{{"age": 1}}\'::jsonb'
    )
    report = await verify(migrated)
    assert not report.ok
    assert [str(d) for d in report.differences] == [
        '_id "bad": set aside, but the stored document differs from the source'
    ]
