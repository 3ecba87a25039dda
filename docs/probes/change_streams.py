"""What SecantusDB's change streams do: event shapes, resuming, failures and speed.

Starts two SecantusDB servers of its own under ``$MIGRATIONKIT_HOME/probe-change-streams``
(one as migrationkit configures it, one with a 20-entry oplog to lose history on
purpose), prints one labelled section per fact that docs/change_streams.md quotes, and
stops both. Usage::

    MIGRATIONKIT_HOME=/tmp/mk-stream .venv/bin/python docs/probes/change_streams.py
    ... change_streams.py --fixtures tests/unit/data   # also store captured events
    ... change_streams.py --only speed                 # one section (see SECTIONS)

Every figure printed comes from this run; nothing is hard-coded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import multiprocessing
import os
import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS, JSONMode, JSONOptions
from bson.raw_bson import RawBSONDocument
from bson.timestamp import Timestamp
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import AsyncMongoClient, MongoClient
from pymongo.errors import OperationFailure, PyMongoError

from migrationkit._servers.embedded.mongo import MongoServer

RELAXED = JSONOptions(json_mode=JSONMode.RELAXED, tz_aware=True)
SMALL_OPLOG = 20
FIXTURES: dict[str, Any] = {}  # name -> raw event, written by --fixtures


def show(label: str, value: Any) -> None:
    """One fact: a label and the value as relaxed Extended JSON (tokens shortened)."""
    print(f"  {label}: {json_util.dumps(shorten(value), json_options=RELAXED)}")


def shorten(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"_data"} and isinstance(value["_data"], str):
            return {"_data": value["_data"][:12] + f"…({len(value['_data'])} hex)"}
        return {key: shorten(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shorten(item) for item in value]
    return value


def failure(action: Callable[[], Any]) -> str:
    """What ``action`` raises, as ``Class code=N codeName=… labels=[…]: message``."""
    try:
        action()
    except OperationFailure as exc:
        details = exc.details or {}
        labels = details.get("errorLabels", [])
        return (
            f"{type(exc).__name__} code={exc.code} codeName={details.get('codeName')} "
            f"labels={labels}: {details.get('errmsg', str(exc))[:150]}"
        )
    except PyMongoError as exc:
        return f"{type(exc).__name__}: {str(exc)[:150]}"
    except StopIteration:
        return "StopIteration (the stream is closed)"
    return "no error"


@contextlib.contextmanager
def secantus(home: Path, config: str = "") -> Iterator[str]:
    """A SecantusDB of our own in ``home`` (fresh data), its URI; stopped on exit."""
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "secantusd.toml").write_text(config)
    server, state = MongoServer(home), {}
    server.launch(state)()
    try:
        yield server.uri(state)
    finally:
        server.stop(state)


def next_events(stream: Any, count: int) -> list[dict[str, Any]]:
    """The next ``count`` events of a pymongo change stream (blocking until they come)."""
    return [stream.next() for _ in range(count)]


# --------------------------------------------------------------------------- event shapes


def events_of(stream: Any, write: Callable[[], Any]) -> list[dict[str, Any]]:
    """Run ``write``, then read the events it caused (until the server sends an empty batch)."""
    write()
    events = []
    while (event := stream.try_next()) is not None:
        events.append(event)
    return events


def section_shapes(client: MongoClient[dict[str, Any]]) -> None:
    print("\n## shapes: insert, update (nested fields, arrays), replace, delete")
    people = client.probe.shapes
    people.drop()
    people.insert_one({"_id": 0})  # the collection exists before the stream opens
    one = {"_id": 1}
    writes: dict[str, Callable[[], Any]] = {
        "insert": lambda: people.insert_one(
            {
                "_id": 1,
                "name": "Ada",
                "address": {"city": "Paris", "zip": "75001"},
                "tags": ["a", "b", "c", "d"],
                "scores": [{"v": 1}, {"v": 2}],
                "gone": True,
            }
        ),
        "$set nested + top": lambda: people.update_one(
            one, {"$set": {"address.city": "Lyon", "name": "Ada L."}}
        ),
        "$unset nested + top": lambda: people.update_one(
            one, {"$unset": {"gone": "", "address.zip": ""}}
        ),
        "$push": lambda: people.update_one(one, {"$push": {"tags": "e"}}),
        "$set array element, nested in array": lambda: people.update_one(
            one, {"$set": {"tags.0": "A", "scores.1.v": 20}}
        ),
        "$set past the array end": lambda: people.update_one(one, {"$set": {"tags.7": "h"}}),
        "$pop last": lambda: people.update_one(one, {"$pop": {"tags": 1}}),
        "$pull": lambda: people.update_one(one, {"$pull": {"tags": None}}),
        "$set whole array, shorter": lambda: people.update_one(one, {"$set": {"tags": ["x"]}}),
        "$set to the same value (no-op)": lambda: people.update_one(
            one, {"$set": {"name": "Ada L."}}
        ),
        "pipeline update ($slice)": lambda: people.update_one(
            one, [{"$set": {"scores": {"$slice": ["$scores", 1]}}}]
        ),
        "$set field with a dot-free numeric name": lambda: people.update_one(
            one, {"$set": {"address.0": "numeric key"}}
        ),
        "replace": lambda: people.replace_one(one, {"name": "Ada Lovelace", "born": 1815}),
        "delete": lambda: people.delete_one(one),
        "update of a missing document": lambda: people.update_one(one, {"$set": {"x": 1}}),
        "update upsert of a missing document": lambda: people.update_one(
            {"_id": 3}, {"$set": {"x": 1}}, upsert=True
        ),
        "replace upsert of a missing document": lambda: people.replace_one(
            {"_id": 4}, {"x": 1}, upsert=True
        ),
        "insert_many of two": lambda: people.insert_many([{"_id": 5}, {"_id": 6}]),
        "insert with an ObjectId _id": lambda: people.insert_one({"name": "generated id"}),
        "delete_many of two": lambda: people.delete_many({"_id": {"$in": [5, 6]}}),
    }
    captured: dict[str, list[dict[str, Any]]] = {}
    sequence = []  # each write to _id 1: its events and the document the server then held
    with people.watch(max_await_time_ms=300) as stream:
        for label, write in writes.items():
            captured[label] = events = events_of(stream, write)
            sequence.append({"write": label, "events": events, "after": people.find_one(one)})
            kept = [
                {
                    key: event[key]
                    for key in ("operationType", "documentKey", "updateDescription", "fullDocument")
                    if key in event
                }
                for event in events
            ]
            show(label, kept[0] if len(kept) == 1 else kept)
    first = captured["insert"][0]
    show("insert event keys, in order", list(first))
    show(
        "clusterTime / wallTime types",
        [type(first["clusterTime"]).__name__, type(first["wallTime"]).__name__],
    )
    FIXTURES.update(
        insert=first,
        update_nested=captured["$set nested + top"][0],
        replace=captured["replace"][0],
        delete=captured["delete"][0],
        insert_objectid=captured["insert with an ObjectId _id"][0],
        shapes_sequence=sequence,
    )


def section_full_document(client: MongoClient[dict[str, Any]]) -> None:
    print("\n## fullDocument modes")
    items = client.probe.lookup
    items.drop()
    items.insert_one({"_id": 0})
    for mode in ("updateLookup", "whenAvailable", "required"):
        with items.watch(full_document=mode) as stream:
            items.update_one({"_id": 0}, {"$set": {"mode": mode}})
            outcome: Any
            try:
                event = stream.next()
                outcome = event.get("fullDocument", "<absent>")
                FIXTURES.setdefault("update_lookup", event)
            except OperationFailure as exc:
                outcome = f"{type(exc).__name__} code={exc.code}: {str(exc)[:90]}"
            show(f"fullDocument={mode}, images off", outcome)
    with items.watch(full_document="updateLookup") as stream:
        items.update_one({"_id": 0}, {"$set": {"step": 1}})
        items.update_one({"_id": 0}, {"$set": {"step": 2}})
        items.delete_one({"_id": 0})
        events = next_events(stream, 3)
        looked_up = [event.get("fullDocument", "<absent>") for event in events]
    FIXTURES["update_lookup_gone"] = events[0]
    show("updateLookup of update, update, delete read after all three", looked_up)
    client.probe.command("collMod", "lookup", changeStreamPreAndPostImages={"enabled": True})
    items.insert_one({"_id": 1, "v": 1})
    with items.watch(full_document="required", full_document_before_change="required") as s:
        items.update_one({"_id": 1}, {"$set": {"v": 2}})
        event = s.next()
    show(
        "required + before-change required, images on",
        {key: event.get(key) for key in ("fullDocument", "fullDocumentBeforeChange")},
    )
    show("delete event (no fullDocument even with updateLookup)", events[-1])


def section_ordering(client: MongoClient[dict[str, Any]]) -> None:
    print("\n## ordering across documents and clusterTime")
    mixed = client.probe.ordering
    mixed.drop()
    mixed.insert_one({"_id": "seed"})
    writes = [(n % 3, n) for n in range(30)]  # three documents, interleaved
    with mixed.watch() as stream:
        for key, n in writes:
            mixed.update_one({"_id": key}, {"$set": {"n": n}}, upsert=True)
        events = next_events(stream, len(writes))
    seen = [
        (
            e["documentKey"]["_id"],
            e["updateDescription"]["updatedFields"]["n"]
            if e["operationType"] == "update"
            else e["fullDocument"]["n"],
        )
        for e in events
    ]
    times = [e["clusterTime"] for e in events]
    show("events in write order", seen == writes)
    show("operationTypes of the first three (upserts)", [e["operationType"] for e in events[:3]])
    show("clusterTime strictly increasing", all(a < b for a, b in itertools.pairwise(times)))
    show("first and last clusterTime", [times[0], times[-1]])


# --------------------------------------------------------------------------- resuming


def token_with_no_events(uri: str) -> dict[str, Any]:
    """With each driver: a token read from a stream that saw no event, resumed later."""
    found: dict[str, Any] = {}

    def sync() -> dict[str, Any]:
        client: MongoClient[dict[str, Any]] = MongoClient(uri)
        with client.probe.tokens.watch() as stream:
            before = stream.resume_token
            assert stream.try_next() is None
            after = stream.resume_token
        client.close()
        return {"right after watch()": before, "after one empty try_next()": after}

    async def pymongo_async() -> dict[str, Any]:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
        async with await client.probe.tokens.watch() as stream:
            before = stream.resume_token
            assert await stream.try_next() is None
            after = stream.resume_token
        await client.close()
        return {"right after watch()": before, "after one empty try_next()": after}

    async def motor() -> dict[str, Any]:
        client: Any = AsyncIOMotorClient(uri)
        async with client.probe.tokens.watch() as stream:
            before = stream.resume_token
            assert await stream.try_next() is None
            after = stream.resume_token
        client.close()
        return {"right after watch()": before, "after one empty try_next()": after}

    found["pymongo MongoClient"] = sync()
    found["pymongo AsyncMongoClient"] = asyncio.run(pymongo_async())
    found["motor AsyncIOMotorClient"] = asyncio.run(motor())
    return found


def section_resume(client: MongoClient[dict[str, Any]]) -> None:
    print("\n## resume: a token taken before any write, resumeAfter / startAfter / time")
    tokens = client.probe.tokens
    tokens.drop()
    tokens.insert_one({"_id": "seed"})
    per_driver = token_with_no_events(URI[0])
    for driver, seen in per_driver.items():
        token = seen["right after watch()"]
        show(
            f"{driver}: resume_token right after watch(), same after an empty try_next()",
            [token, token == seen["after one empty try_next()"]],
        )
    early = per_driver["pymongo AsyncMongoClient"]["after one empty try_next()"]
    hello = client.admin.command("hello")
    show("hello: setName, isWritablePrimary", [hello.get("setName"), hello["isWritablePrimary"]])
    show(
        "hello reply carries $clusterTime / operationTime",
        ["$clusterTime" in hello, "operationTime" in hello],
    )
    operation_time = hello["$clusterTime"]["clusterTime"]
    tokens.insert_many([{"_id": n} for n in range(3)])  # "meanwhile", nobody watching
    tokens.update_one({"_id": 0}, {"$set": {"x": 1}})
    tokens.delete_one({"_id": 1})
    expected = [("insert", 0), ("insert", 1), ("insert", 2), ("update", 0), ("delete", 1)]
    for option, value in (
        ("resume_after", early),
        ("start_after", early),
        ("start_at_operation_time", operation_time),
    ):
        with tokens.watch(max_await_time_ms=300, **{option: value}) as stream:
            seen = [
                (e["operationType"], e["documentKey"]["_id"]) for e in iter(stream.try_next, None)
            ]
        show(f"{option}: the 5 writes made meanwhile, in order", seen == expected)
        if seen != expected:
            show("  seen", seen)
    reply = client.probe.command("insert", "tokens", documents=[{"_id": "marker"}])
    ping = client.probe.command("ping")["operationTime"]
    hello = client.admin.command("hello")["$clusterTime"]["clusterTime"]
    show(
        "insert reply operationTime / next ping operationTime / next hello $clusterTime",
        [reply["operationTime"], ping, hello],
    )
    for label, moment in (("the ping's", ping), ("the hello's", hello)):
        with tokens.watch(start_at_operation_time=moment, max_await_time_ms=300) as stream:
            seen = [e["documentKey"]["_id"] for e in iter(stream.try_next, None)]
        show(f"startAtOperationTime = {label} time: events", seen)
    raw_cursor_doc(client)


def raw_cursor_doc(client: MongoClient[dict[str, Any]]) -> None:
    """The aggregate / getMore replies themselves: postBatchResumeToken and batch sizes."""
    db = client.probe
    opened = db.command("aggregate", "tokens", pipeline=[{"$changeStream": {}}], cursor={})
    cursor = opened["cursor"]
    show("aggregate reply cursor keys", list(cursor))
    db.tokens.insert_many([{"n": n} for n in range(500)])
    more = db.command(
        "getMore", cursor["id"], collection="tokens", batchSize=10_000, maxTimeMS=500
    )["cursor"]
    show("getMore reply cursor keys", list(more))
    show(
        "getMore batchSize=10000 after 500 inserts: nextBatch sizes",
        [len(more["nextBatch"])]
        + [
            len(
                db.command(
                    "getMore", cursor["id"], collection="tokens", batchSize=10_000, maxTimeMS=500
                )["cursor"]["nextBatch"]
            )
            for _ in range(3)
        ],
    )
    pbrt_before = db.command("getMore", cursor["id"], collection="tokens", maxTimeMS=200)["cursor"][
        "postBatchResumeToken"
    ]
    db.elsewhere.insert_one({"unrelated": True})
    pbrt_after = db.command("getMore", cursor["id"], collection="tokens", maxTimeMS=200)["cursor"][
        "postBatchResumeToken"
    ]
    show("empty getMore: PBRT moves past writes to another collection", pbrt_before != pbrt_after)
    db.command("killCursors", "tokens", cursors=[cursor["id"]])


def section_restart(client: MongoClient[dict[str, Any]]) -> None:
    del client  # this section restarts a server of its own
    print("\n## a token across a server restart")
    home = Path(os.environ.get("MIGRATIONKIT_HOME", "/tmp/mk-stream")) / "probe-restart"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    server, state = MongoServer(home), {}
    server.launch(state)()
    try:
        first: MongoClient[dict[str, Any]] = MongoClient(server.uri(state))
        first.probe.kept.insert_one({"_id": "seed"})
        token = first.probe.kept.watch().resume_token
        first.probe.kept.insert_many([{"_id": n} for n in range(3)])
        first.close()
        server.stop(state)
        server.launch(state)()
        again: MongoClient[dict[str, Any]] = MongoClient(server.uri(state))
        with again.probe.kept.watch(resume_after=token, max_await_time_ms=300) as stream:
            seen = [e["documentKey"]["_id"] for e in iter(stream.try_next, None)]
        show("resume_after a token taken before a stop/start: events", seen)
        again.close()
    finally:
        server.stop(state)


# --------------------------------------------------------------------------- failures


def section_failures(client: MongoClient[dict[str, Any]]) -> None:
    print("\n## failures: bad tokens, another collection's token, drop / rename (invalidate)")
    db = client.probe
    db.bad.drop()
    db.bad.insert_one({"_id": 0})
    with db.other.watch() as stream:
        db.other.insert_one({"_id": "x"})
        foreign = stream.next()["_id"]
    real = db.bad.watch().resume_token
    garbage = {
        "not hex": {"_data": "zz"},
        "hex, not BSON": {"_data": "aa"},
        "no _data": {"token": 1},
        "_data not a string": {"_data": 42},
        "truncated real token": {"_data": real["_data"][:20]},
        "another collection's token": foreign,
    }
    for label, token in garbage.items():
        show(f"resume_after {label}", failure(lambda t=token: db.bad.watch(resume_after=t)))
    far = MongoClient(URI[1])  # the small-oplog server: a real token from another deployment
    far.probe.elsewhere.insert_one({"_id": 1})
    alien = far.probe.bad.watch().resume_token
    far.close()

    def uuid_of(database: Any, name: str) -> Any:
        (found,) = database.list_collections(filter={"name": name})
        return found["info"]["uuid"]

    far = MongoClient(URI[1])
    far.probe.bad.insert_one({"_id": 1})
    here, there = uuid_of(db, "bad"), uuid_of(far.probe, "bad")
    db.bad.drop()
    db.bad.insert_one({"_id": 0})
    show(
        "collection UUID (listCollections info.uuid): same on another server? after re-create?",
        [here == there, here == uuid_of(db, "bad")],
    )
    far.close()
    show(
        "resume_after a token of the same namespace from another server",
        failure(lambda: db.bad.watch(resume_after=alien).close()),
    )

    for kind, act in (
        ("drop", lambda: db.bad.drop()),
        ("rename", lambda: db.bad.rename("renamed", dropTarget=True)),
    ):
        db.bad.insert_one({"_id": kind})
        with db.bad.watch() as stream:
            db.bad.insert_one({"_id": "before " + kind})
            act()
            events = [stream.next(), stream.next(), stream.next()]
            show(f"{kind}: events", [e["operationType"] for e in events])
            show(f"{kind}: stream alive after the invalidate", stream.alive)
            show(f"{kind}: next() after the invalidate", failure(stream.next))
        FIXTURES[kind] = events[1]
        FIXTURES[f"{kind}_invalidate"] = events[-1]
        invalidate = events[-1]["_id"]
        show(
            f"{kind}: resume_after the invalidate token",
            failure(lambda t=invalidate: db.bad.watch(resume_after=t).close()),
        )
        with db.bad.watch(start_after=invalidate, max_await_time_ms=300) as stream:
            db.bad.insert_one({"_id": "recreated"})
            seen = [e["documentKey"]["_id"] for e in iter(stream.try_next, None)]
        show(f"{kind}: start_after the invalidate token, then an insert", seen)
        db.bad.drop()
    with db.watch(max_await_time_ms=300) as stream:
        client.drop_database("probe_gone")
        client.probe_gone.c.insert_one({})
        client.drop_database("probe_gone")
        seen = [e["operationType"] for e in iter(stream.try_next, None)]
    show("database-wide watch on another database's drop", seen)
    with client.probe_gone.watch(max_await_time_ms=300) as stream:
        client.probe_gone.c.insert_one({})
        client.drop_database("probe_gone")
        seen = [e["operationType"] for e in iter(stream.try_next, None)]
    show("database-wide watch on its own dropDatabase", seen)


def oldest_oplog_time(client: MongoClient[dict[str, Any]]) -> Timestamp:
    """The time of the oldest entry the server still keeps (``local.oplog.rs``)."""
    oldest = client.local["oplog.rs"].find_one(sort=[("$natural", 1)], projection={"ts": 1})
    assert oldest is not None
    time_: Timestamp = oldest["ts"]
    return time_


def section_history_lost(client: MongoClient[dict[str, Any]]) -> None:
    del client  # this section runs on the small-oplog server
    print(f"\n## history lost: a server whose oplog keeps {SMALL_OPLOG} entries")
    small: MongoClient[dict[str, Any]] = MongoClient(URI[1])
    lost = small.probe.lost
    lost.drop()
    lost.insert_one({"_id": "seed"})
    started = small.admin.command("hello")["$clusterTime"]["clusterTime"]
    early = lost.watch().resume_token
    live = lost.watch(max_await_time_ms=300)
    assert live.try_next() is None  # the cursor is open and positioned
    for n in range(2_500):  # one write at a time: the server prunes every 1000 writes
        lost.insert_one({"_id": n})
    oplog = small.local["oplog.rs"]
    oldest = oplog.find_one(sort=[("$natural", 1)])
    assert oldest is not None
    show(
        "local.oplog.rs after 2,500 inserts: entries, oldest _id, oldest ts",
        [oplog.estimated_document_count(), oldest["o"]["_id"], oldest["ts"]],
    )
    show(
        "oldest ts > the time taken before the writes (the floor check)",
        oldest_oplog_time(small) > started,
    )
    show("resume_after a pruned position", failure(lambda: lost.watch(resume_after=early)))
    show("start_after a pruned position", failure(lambda: lost.watch(start_after=early)))
    outcome: Any
    try:
        seen = [e["documentKey"]["_id"] for e in iter(live.try_next, None)]
        outcome = f"no error, {len(seen)} of 2,500 events, first {seen[:1]}, last {seen[-1:]}"
    except OperationFailure as exc:
        outcome = f"{type(exc).__name__} code={exc.code}"
    show("a stream open since before the writes, read after the prune", outcome)
    live.close()
    with lost.watch(start_at_operation_time=started, max_await_time_ms=300) as stream:
        try:
            seen = [e["documentKey"]["_id"] for e in iter(stream.try_next, None)]
            outcome = f"no error, {len(seen)} of 2,500 events, first {seen[:1]}"
        except OperationFailure as exc:
            outcome = f"{type(exc).__name__} code={exc.code}"
    show("start_at_operation_time older than the oldest entry kept", outcome)
    lost.insert_many([{"p": n} for n in range(100)])
    show(
        "secantusAdmin.pruneOplog (prunes now)",
        small.admin.command("secantusAdmin.pruneOplog")["pruned"],
    )
    try:
        lost.watch(resume_after=early)
    except OperationFailure as exc:
        FIXTURES["error_history_lost"] = exc.details
    small.close()


# --------------------------------------------------------------------------- speed

SPEED_SECONDS = 10.0
BACKLOG = 20_000


def write_for(uri: str, seconds: float, rate: float | None, batch: int, started: Any) -> None:
    """In its own process: insert then update ``batch`` users per step (one command each),
    stamped with the time they were sent, as fast as possible or at ``rate`` steps per
    second; then an end marker."""
    users = MongoClient(uri).probe.speed
    started.set()
    begin = time.time()
    step = 0
    while (now := time.time()) - begin < seconds:
        if rate is not None and (due := begin + step / rate) > now:
            time.sleep(due - now)  # pacing the workload, not waiting for a result
        ids = range(step * batch, (step + 1) * batch)
        users.insert_many(
            [
                {
                    "_id": n,
                    "username": f"user{n}",
                    "email": f"u{n}@example.org",
                    "age": n % 90,
                    "sent": time.time(),
                }
                for n in ids
            ]
        )
        users.update_many(
            {"_id": {"$gte": ids[0], "$lte": ids[-1]}},
            {"$set": {"age": step % 80, "sent": time.time()}},
        )
        step += 1
    users.insert_one({"_id": "end", "writes": 2 * step * batch, "sent": time.time()})


def sent_at(event: dict[str, Any]) -> float:
    if event["operationType"] == "insert":
        stamp: float = event["fullDocument"]["sent"]
    else:
        stamp = event["updateDescription"]["updatedFields"]["sent"]
    return stamp


async def follow_raw(uri: str, *, resume_after: Any = None, stop_at: Any = "end") -> dict[str, Any]:
    """Read with bare aggregate + getMore commands until the event for ``_id: stop_at``;
    the events, their write→event latencies and the size of every non-empty batch."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    db = client.probe
    spec = {"resumeAfter": resume_after} if resume_after else {}
    opened = await db.command("aggregate", "speed", pipeline=[{"$changeStream": spec}], cursor={})
    cursor_id, batch = opened["cursor"]["id"], opened["cursor"]["firstBatch"]
    latencies: list[float] = []
    sizes: list[int] = []
    count, first_at, done = 0, 0.0, False
    while not done:
        if batch:
            arrived = time.time()
            first_at = first_at or time.perf_counter()
            sizes.append(len(batch))
            for event in batch:
                count += 1
                latencies.append(arrived - sent_at(event))
                done = done or event["documentKey"]["_id"] == stop_at
        if not done:
            reply = await db.command(
                "getMore", cursor_id, collection="speed", batchSize=10_000, maxTimeMS=1_000
            )
            batch = reply["cursor"]["nextBatch"]
    elapsed = time.perf_counter() - first_at
    await db.command("killCursors", "speed", cursors=[cursor_id])
    await client.close()
    return {"events": count, "seconds": elapsed, "latencies": latencies, "sizes": sizes}


async def drain_watch(
    uri: str, token: Any, *, raw: bool, full_document: str | None = None
) -> tuple[int, float]:
    """Read a backlog through pymongo's ``watch()`` (decoded or raw BSON): events, seconds."""
    options: dict[str, Any] = {"document_class": RawBSONDocument} if raw else {}
    client: AsyncMongoClient[Any] = AsyncMongoClient(uri, **options)
    count, began = 0, time.perf_counter()
    watch = client.probe.speed.watch(
        resume_after=token, batch_size=10_000, full_document=full_document
    )
    async with await watch as stream:
        async for event in stream:
            count += 1
            if event["documentKey"]["_id"] == "end":
                break
    elapsed = time.perf_counter() - began
    await client.close()
    return count, elapsed


def describe(label: str, run: dict[str, Any], written: float | None = None) -> None:
    latencies = sorted(run["latencies"])
    sizes = run["sizes"]

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    rate = run["events"] / run["seconds"]
    extra = f", writer {written:,.0f} writes/s" if written is not None else ""
    print(
        f"  {label}: {run['events']:,} events in {run['seconds']:.2f} s = {rate:,.0f} events/s"
        f"{extra}; write→event ms p50 {pct(0.5):.0f} p95 {pct(0.95):.0f} max {pct(1.0):.0f}; "
        f"batches {len(sizes)}, size median {statistics.median(sizes):.0f} max {max(sizes)}"
    )


def live_run(uri: str, *, rate: float | None, batch: int) -> tuple[dict[str, Any], float]:
    """Follow while a writer process runs: the reader's figures and the writes per second."""
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    writer = context.Process(target=write_for, args=(uri, SPEED_SECONDS, rate, batch, started))

    async def run() -> dict[str, Any]:
        reading = asyncio.create_task(follow_raw(uri))
        await asyncio.sleep(0)  # let the aggregate go out before the writer starts
        writer.start()
        return await reading

    MongoClient(uri).probe.speed.drop()
    result = asyncio.run(run())
    writer.join()
    end = MongoClient(uri).probe.speed.find_one({"_id": "end"})
    assert end is not None
    return result, end["writes"] / SPEED_SECONDS


def section_speed(client: MongoClient[dict[str, Any]]) -> None:
    print(f"\n## speed: raw change-stream reads ({os.cpu_count()} cores, writer in a process)")
    speed = client.probe.speed
    speed.drop()
    speed.insert_one({"_id": "seed"})
    token = speed.watch().resume_token
    began = time.perf_counter()
    speed.insert_many(
        [
            {
                "_id": n,
                "username": f"user{n}",
                "email": f"u{n}@example.org",
                "age": n % 90,
                "sent": time.time(),
            }
            for n in range(BACKLOG // 2)
        ]
    )
    speed.update_many({"_id": {"$gte": 0}}, [{"$set": {"age": 1, "sent": time.time()}}])
    speed.insert_one({"_id": "end", "sent": time.time()})
    print(
        f"  backlog: {BACKLOG // 2:,} inserts + {BACKLOG // 2:,} updates written in "
        f"{time.perf_counter() - began:.1f} s (insert_many + update_many)"
    )
    backlog = asyncio.run(follow_raw(URI[0], resume_after=token))
    rate = backlog["events"] / backlog["seconds"]
    sizes = backlog["sizes"]
    print(
        f"  drain, bare getMore (batchSize 10000): {backlog['events']:,} events in "
        f"{backlog['seconds']:.2f} s = {rate:,.0f} events/s; batch size median "
        f"{statistics.median(sizes):.0f} max {max(sizes)}"
    )
    for raw, full_document in ((False, None), (True, None), (False, "updateLookup")):
        count, seconds = asyncio.run(
            drain_watch(URI[0], token, raw=raw, full_document=full_document)
        )
        kind = "RawBSONDocument" if raw else "dict"
        print(
            f"  drain, AsyncMongoClient watch() ({kind}, fullDocument={full_document}): "
            f"{count:,} events in {seconds:.2f} s = {count / seconds:,.0f} events/s"
        )
    for batch in (1, 100):
        run, flat_out = live_run(URI[0], rate=None, batch=batch)
        describe(f"live, writer flat out, {batch} document(s) per command", run, flat_out)
    # The server cannot take writes as fast as a stream drains, so "half the rate" is
    # half of what the writer reached flat out (2 writes of 100 documents per step).
    run, written = live_run(URI[0], rate=flat_out / 2 / 200, batch=100)
    describe("live, writer paced at half its flat-out rate, 100 per command", run, written)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, help="store captured events here")
    parser.add_argument("--only", choices=list(SECTIONS), action="append")
    options = parser.parse_args()
    home = Path(os.environ.get("MIGRATIONKIT_HOME", "/tmp/mk-stream")) / "probe-change-streams"
    small = f"[oplog]\nmax_entries = {SMALL_OPLOG}\n"
    with secantus(home / "default") as uri, secantus(home / "small", small) as small_uri:
        URI[:] = [uri, small_uri]
        client: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True)
        for name in options.only or SECTIONS:
            SECTIONS[name](client)
        client.close()
    if options.fixtures:
        for name, event in FIXTURES.items():
            path = options.fixtures / f"change_event_{name}.json"
            path.write_text(json_util.dumps(event, json_options=CANONICAL_JSON_OPTIONS, indent=1))
            print(f"stored {path}")


URI: list[str] = []
SECTIONS: dict[str, Callable[[MongoClient[dict[str, Any]]], None]] = {
    "shapes": section_shapes,
    "full_document": section_full_document,
    "ordering": section_ordering,
    "resume": section_resume,
    "restart": section_restart,
    "failures": section_failures,
    "history_lost": section_history_lost,
    "speed": section_speed,
}

if __name__ == "__main__":
    main()
