"""The change stream's own commands on the real embedded server: batches in source order
within a limit, the position after each, and a cursor the server forgot resumed from
there with no event lost or handed over twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import bson
import pytest
from pymongo import MongoClient

from migrationkit import Settings
from migrationkit._errors import ServerUnavailableError
from migrationkit._servers.embedded import find_secantusd
from migrationkit._source.change_cursor import ChangeCursor

pytestmark = pytest.mark.integration

try:
    find_secantusd()
except ServerUnavailableError:
    pytest.skip("needs pip install 'migrationkit[embedded]'", allow_module_level=True)


@pytest.fixture
def client(settings: Settings) -> Iterator[MongoClient[dict[str, Any]]]:
    assert settings.mongo_uri is not None
    with MongoClient(settings.mongo_uri.get_secret_value()) as mongo:
        mongo[settings.mongo_database].drop_collection(settings.mongo_collection)
        mongo[settings.mongo_database].create_collection(settings.mongo_collection)
        yield mongo
        mongo[settings.mongo_database].drop_collection(settings.mongo_collection)


def inserted_ids(events: list[Any]) -> list[int]:
    return [bson.decode(event.raw)["documentKey"]["_id"] for event in events]


def read_all(cursor: ChangeCursor, limit: int) -> list[Any]:
    events: list[Any] = []
    while read := cursor.read(limit):
        assert len(read) <= limit
        events += read
    return events


def test_reads_in_order_within_the_limit_and_resumes_where_it_stopped(
    client: MongoClient[dict[str, Any]], settings: Settings
) -> None:
    namespace = f"{settings.mongo_database}.{settings.mongo_collection}"
    collection = client[settings.mongo_database][settings.mongo_collection]
    cursor = ChangeCursor(client, namespace, resume_after=None, max_await_ms=100)
    cursor.open()
    start = cursor.token
    assert start is not None
    collection.insert_many([{"_id": number} for number in range(250)])
    try:
        first = cursor.read(30)
        assert inserted_ids(first) == list(range(30))
        middle = cursor.token
        assert bson.decode(middle.raw) == bson.decode(first[-1]["_id"].raw)
        assert inserted_ids(read_all(cursor, 100)) == list(range(30, 250))
    finally:
        cursor.close()
    again = ChangeCursor(client, namespace, resume_after=middle, max_await_ms=100)
    again.open()
    try:
        assert inserted_ids(read_all(again, 1_000)) == list(range(30, 250))
    finally:
        again.close()


def test_a_cursor_the_server_forgot_is_opened_again_from_the_last_position(
    client: MongoClient[dict[str, Any]], settings: Settings
) -> None:
    namespace = f"{settings.mongo_database}.{settings.mongo_collection}"
    database = client[settings.mongo_database]
    cursor = ChangeCursor(client, namespace, resume_after=None, max_await_ms=100)
    cursor.open()
    database[settings.mongo_collection].insert_many([{"_id": number} for number in range(50)])
    try:
        assert inserted_ids(cursor.read(20)) == list(range(20))
        killed = database.command(
            "killCursors",
            settings.mongo_collection,
            cursors=[cursor._cursor_id],
            session=cursor._session,  # MongoDB kills a cursor only from its own session
        )
        assert killed["cursorsKilled"]  # the next getMore meets CursorNotFound
        assert inserted_ids(read_all(cursor, 1_000)) == list(range(20, 50))
    finally:
        cursor.close()
