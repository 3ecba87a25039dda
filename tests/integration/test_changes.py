"""Change streams on the real embedded server: a position taken before any write, resumed
later, yields exactly the changes made meanwhile; a lost position fails loudly."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from migrationkit import MongoConnectionHandler, Settings
from migrationkit._errors import ChangeHistoryLostError, ServerUnavailableError
from migrationkit._servers.embedded import find_secantusd
from migrationkit._servers.embedded.mongo import MongoServer
from migrationkit._settings.settings import MongoDriver
from migrationkit._source.changes import (
    check_history_kept,
    fold_changes,
    oldest_kept_time,
    parse_event,
    translating_stream_errors,
)

pytestmark = pytest.mark.integration

try:
    find_secantusd()
except ServerUnavailableError:
    pytest.skip("needs pip install 'migrationkit[embedded]'", allow_module_level=True)


async def watch(collection: Any, **options: Any) -> Any:
    """A change stream to use with ``async with``, from Motor (a stream) or PyMongo (a
    coroutine returning one)."""
    stream = collection.watch(**options)
    return await stream if inspect.isawaitable(stream) else stream


async def drain(stream: Any) -> list[dict[str, Any]]:
    """Every event the stream has now: read until the server answers with an empty batch."""
    events = []
    while (event := await stream.try_next()) is not None:
        events.append(event)
    return events


@pytest.fixture(params=["motor", "pymongo"])
async def collection(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Any]:
    """The test's collection, existing and empty, through each supported driver."""
    driver: MongoDriver = request.param
    assert settings.mongo_uri is not None
    uri = settings.mongo_uri.get_secret_value()
    async with MongoConnectionHandler(uri, driver=driver) as client:
        users = client[settings.mongo_database][settings.mongo_collection]
        await users.drop()
        await users.insert_one({"_id": "before the token"})
        yield users
        await users.drop()


async def test_a_token_taken_before_any_write_resumes_with_exactly_the_later_changes(
    collection: Any,
) -> None:
    async with await watch(collection, max_await_time_ms=200) as opened:
        assert await opened.try_next() is None  # nothing has happened yet
        token = opened.resume_token
    assert token is not None
    await collection.insert_many([{"_id": 1, "v": 1}, {"_id": 2, "v": 1}])
    await collection.update_one({"_id": 1}, {"$set": {"v": 2, "tags": ["a"]}})
    await collection.delete_one({"_id": 2})

    async with await watch(collection, resume_after=token, max_await_time_ms=200) as resumed:
        events = [parse_event(raw) for raw in await drain(resumed)]

    assert [(e.operation, e.document_id) for e in events] == [
        ("insert", 1),
        ("insert", 2),
        ("update", 1),
        ("delete", 2),
    ]
    net = {change.key: change for change in fold_changes(events)}
    assert net["1"].kind == "upsert"
    assert net["1"].document == {"_id": 1, "v": 2, "tags": ["a"]}
    assert net["2"].kind == "delete"


# --------------------------------------------------------------------------- history lost

SMALL_OPLOG = 20


@pytest.fixture(scope="module")
def small_oplog_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SecantusDB of its own whose oplog keeps only ``SMALL_OPLOG`` entries."""
    home = tmp_path_factory.mktemp("small-oplog")
    (home / "secantusd.toml").write_text(f"[oplog]\nmax_entries = {SMALL_OPLOG}\n")
    server, state = MongoServer(home), dict[str, Any]()
    server.launch(state)()
    try:
        yield server.uri(state)
    finally:
        server.stop(state)


@pytest.fixture
async def small_oplog(small_oplog_uri: str) -> AsyncIterator[Any]:
    async with MongoConnectionHandler(small_oplog_uri, driver="pymongo") as client:
        await client.probe.lost.drop()
        await client.probe.lost.insert_one({"_id": "seed"})
        yield client


async def test_resuming_after_pruned_history_fails_naming_it_and_the_recovery(
    small_oplog: Any,
) -> None:
    lost = small_oplog.probe.lost
    async with await lost.watch() as stream:
        token = stream.resume_token
    await lost.insert_many([{"_id": n} for n in range(3 * SMALL_OPLOG)])
    assert (await small_oplog.admin.command("secantusAdmin.pruneOplog"))["pruned"] > 0

    with pytest.raises(ChangeHistoryLostError) as caught, translating_stream_errors("probe.lost"):
        await lost.watch(resume_after=token)
    assert caught.value.reason == "history_lost"
    assert "code 286" in str(caught.value)
    assert "migrationkit migrate --follow" in str(caught.value)


async def test_a_live_stream_overtaken_by_pruning_fails_loudly_with_the_history_check(
    small_oplog: Any,
) -> None:
    # SecantusDB's own stream skips what was pruned without an error (docs/change_streams.md);
    # real MongoDB fails it with code 286. Either way the follower must stop, loudly.
    lost = small_oplog.probe.lost
    position = (await small_oplog.admin.command("hello"))["$clusterTime"]["clusterTime"]
    check_history_kept(await oldest_kept_time(small_oplog), position, namespace="probe.lost")
    with pytest.raises(ChangeHistoryLostError, match=r"pruned|code 286"):  # noqa: PT012
        with translating_stream_errors("probe.lost"):
            async with await lost.watch(max_await_time_ms=200) as stream:
                await lost.insert_many([{"_id": n} for n in range(3 * SMALL_OPLOG)])
                await small_oplog.admin.command("secantusAdmin.pruneOplog")
                await drain(stream)
        oldest = await oldest_kept_time(small_oplog)
        check_history_kept(oldest, position, namespace="probe.lost")
