"""``migrationkit bench --suite follow``: the follower against the change stream alone.

Each round, side by side on the same servers and the same changes:

1. a customers collection is seeded, loaded and followed; the follower is stopped;
2. a backlog of random changes (:mod:`.follow_load`) is written while nobody follows;
3. **raw**: the change stream alone drains the backlog from the follower's saved token
   (raw BSON, no lookups): the rate the server can hand out changes;
4. **exact**: a follower drains it from the same position, applying every change from
   its contents (the steady path), twice: into child tables (``orders`` one row per
   element) and into a second table with the default mapping (nested values as jsonb),
   loaded from the same documents; the two take turns going first;
5. **catch-up**: again from that position with the re-read floor raised to now, as after
   a crash: every changed document is read again from the source;
6. ``verify`` checks that both targets equal the source.

Then **lag**: a writer in another process changes the collection at a steady rate
while the follower runs; the lag is how long the oldest change of each applied batch
had waited (:attr:`~migrationkit._run.follow.FollowStatus.lag_s`).
"""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Literal

from bson.timestamp import Timestamp

from migrationkit._mapping.infer import infer_mapping
from migrationkit._mapping.normalize import transform_for
from migrationkit._mapping.spec import TableMapping
from migrationkit._run.follow import Follower, FollowOptions, FollowStatus, raised_floor
from migrationkit._run.migration import Migration
from migrationkit._run.verify import verify
from migrationkit._servers.resolve import resolve_endpoints
from migrationkit._settings.settings import Settings
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit._source.keyset import raw_documents
from migrationkit._source.stream import SourceCollection
from migrationkit._target.connection import ReconnectingConnection
from migrationkit._target.stream_positions import StreamPosition, StreamPositionRepository
from migrationkit._target.tables import drop_target
from migrationkit.workshop.bench.follow_load import RandomChanges, customers

COLLECTION = "bench_follow"
#: The table the default (jsonb) mapping writes, beside the child tables of COLLECTION.
JSONB_TABLE = f"{COLLECTION}_jsonb"
#: Changes per bulk write: one command carries this many (the server's write limit).
WRITE_BATCH = 100
#: The targets of issue #16.
TARGET_RATIO = 0.8
TARGET_LAG_S = 2.0

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Round:
    """One round's rates (changes per second) and whether the target ended equal."""

    changes: int
    raw_per_s: float
    exact_per_s: float
    exact_jsonb_per_s: float
    catch_up_per_s: float
    verified: bool


@dataclass(frozen=True)
class LagRun:
    """A steady writer and the follower: what the writer achieved, and the lag seen."""

    asked_per_s: float
    written_per_s: float
    applied_per_s: float
    lag_p50_s: float
    lag_p95_s: float
    lag_max_s: float


@dataclass
class FollowBenchReport:
    documents: int
    changes: int
    rounds: list[Round] = field(default_factory=list)
    lag: list[LagRun] = field(default_factory=list)
    write_limit_per_s: float = 0.0

    @staticmethod
    def _median(values: list[float]) -> float:
        return statistics.median(values) if values else 0.0

    @property
    def exact_ratio(self) -> float:
        return self._median([r.exact_per_s / r.raw_per_s for r in self.rounds])

    @property
    def exact_jsonb_ratio(self) -> float:
        return self._median([r.exact_jsonb_per_s / r.raw_per_s for r in self.rounds])

    @property
    def catch_up_ratio(self) -> float:
        return self._median([r.catch_up_per_s / r.raw_per_s for r in self.rounds])


async def run_follow_benchmark(
    settings: Settings,
    *,
    documents: int = 5_000,
    changes: int = 20_000,
    rounds: int = 3,
    lag_seconds: float = 15.0,
    lag_shares: tuple[float, ...] = (0.5, 1.0),
    echo: Echo = print,
) -> FollowBenchReport:
    """Every measurement of the suite, in one run (see the module docstring)."""
    endpoints = await asyncio.to_thread(resolve_endpoints, settings)
    settings = settings.model_copy(
        update={"mongo_collection": COLLECTION, "pg_table": COLLECTION, "mapping": None}
    )
    report = FollowBenchReport(documents, changes)
    seed = customers(documents, seed=1)
    mapping = _customers_mapping(seed, COLLECTION, "child")
    jsonb = _customers_mapping(seed, JSONB_TABLE, "jsonb")
    async with (
        MongoConnectionHandler(endpoints.mongo_uri, driver=settings.mongo_driver) as client,
        ReconnectingConnection(endpoints.pg_dsn, policy=settings.retry_policy) as postgres,
    ):
        source = SourceCollection(
            client, settings.mongo_database, COLLECTION, uri=endpoints.mongo_uri
        )
        for number in range(rounds):
            one = await _round(settings, (mapping, jsonb), source, postgres, seed, changes, number)
            report.rounds.append(one)
            echo(
                f"round {number + 1}: {changes:,} changes; raw {one.raw_per_s:,.0f}/s, "
                f"exact {one.exact_per_s:,.0f}/s (jsonb {one.exact_jsonb_per_s:,.0f}/s), "
                f"catch-up {one.catch_up_per_s:,.0f}/s, "
                f"verify {'OK' if one.verified else 'MISMATCH'}"
            )
        report.write_limit_per_s = await _write_limit(source, seed)
        echo(f"writer flat out: {report.write_limit_per_s:,.0f} changes/s")
        for share in lag_shares:
            rate = share * report.write_limit_per_s
            run = await _lag_run(
                settings, mapping, source, endpoints.mongo_uri, seed, rate, lag_seconds
            )
            report.lag.append(run)
            echo(
                f"lag at {run.written_per_s:,.0f} writes/s (asked {rate:,.0f}): "
                f"p50 {run.lag_p50_s:.2f} s, p95 {run.lag_p95_s:.2f} s, max {run.lag_max_s:.2f} s"
            )
        for dropped in (mapping, jsonb):
            await postgres.run(partial(drop_target, mapping=dropped), what="dropping")
        await client[settings.mongo_database][COLLECTION].drop()
    return report


def _customers_mapping(
    seed: list[dict[str, Any]], table: str, nested: Literal["child", "jsonb"]
) -> TableMapping:
    return infer_mapping(
        seed, collection=COLLECTION, table=table, sampled=len(seed), total=len(seed), nested=nested
    ).mapping


async def _seeded(source: SourceCollection, seed: list[dict[str, Any]]) -> None:
    await source.collection.drop()
    await source.collection.insert_many([dict(document) for document in seed])


async def _followed_load(settings: Settings, mapping: TableMapping) -> StreamPosition:
    """Load and follow until idle; the position the follower stopped at."""
    stop = asyncio.Event()
    run = Migration(settings, mapping=mapping, on_follow_batch=lambda _: stop.set())
    async with run:
        await run.migrate(follow=FollowOptions(stop=stop))
        position = await run.postgres.run(
            lambda db: StreamPositionRepository(db).load(mapping.table), what="position"
        )
    assert position is not None
    return position


async def _round(
    settings: Settings,
    mappings: tuple[TableMapping, TableMapping],
    source: SourceCollection,
    postgres: ReconnectingConnection,
    seed: list[dict[str, Any]],
    changes: int,
    number: int,
) -> Round:
    """One round; ``mappings`` are the child-table mapping, then the default (jsonb) one."""
    await _seeded(source, seed)
    positions = [await _followed_load(settings, mapping) for mapping in mappings]
    writer = RandomChanges(range(len(seed)), seed=100 + number)
    for _ in range(0, changes, WRITE_BATCH):
        await source.collection.bulk_write(writer.take(WRITE_BATCH))
    end = await source.cluster_time()
    raw = await _raw_drain(source, positions[0].token, end)
    exact: dict[str, FollowStatus] = {}
    turns = list(zip(mappings, positions, strict=True))
    for mapping, position in turns if number % 2 == 0 else turns[::-1]:
        exact[mapping.table] = await _drain(source, postgres, mapping, position, end)
    child, jsonb = (exact[mapping.table] for mapping in mappings)
    catch_up = await _drain(
        source,
        postgres,
        mappings[0],
        raised_floor(positions[0], await source.cluster_time()),
        end,
    )
    checks = [await verify(settings, mapping=mapping) for mapping in mappings]
    return Round(
        changes=raw[0],
        raw_per_s=raw[0] / raw[1],
        exact_per_s=child.events_applied / child.elapsed_s,
        exact_jsonb_per_s=jsonb.events_applied / jsonb.elapsed_s,
        catch_up_per_s=catch_up.events_applied / catch_up.elapsed_s,
        verified=all(check.ok for check in checks),
    )


async def _raw_drain(source: SourceCollection, token: Any, end: Timestamp) -> tuple[int, float]:
    """The change stream alone (raw BSON, nothing decoded): events until ``end``, seconds.

    It asks for batches as large as the follower's: the server's rate depends on it
    (SecantusDB answers at most 200 events a ``getMore``, 100 when not asked for more).
    """
    events, last = 0, Timestamp(0, 0)
    opened = raw_documents(source.collection).watch(
        resume_after=token, max_await_time_ms=300, batch_size=FollowOptions().max_events
    )
    if inspect.isawaitable(opened):  # PyMongo's async client; Motor returns the stream
        opened = await opened
    async with opened as stream:
        started = time.perf_counter()
        asked: Timestamp | None = None  # the server's time before the last empty answer
        while True:
            event = await stream.try_next()
            if event is None:
                # Done once an empty answer came after a time past ``end`` (the server's
                # clock can move on without a change to this collection).
                if last >= end or (asked is not None and asked >= end):
                    break
                asked = await source.cluster_time()
                continue
            asked = None
            events += 1
            last = event["clusterTime"]
        return events, time.perf_counter() - started


async def _drain(
    source: SourceCollection,
    postgres: ReconnectingConnection,
    mapping: TableMapping,
    position: StreamPosition,
    end: Timestamp,
) -> FollowStatus:
    follower = Follower(
        source=source,
        postgres=postgres,
        mapping=mapping,
        transform=transform_for(mapping),
        position=replace(position),
    )
    return await follower.run(FollowOptions(until=end))


async def _write_limit(source: SourceCollection, seed: list[dict[str, Any]]) -> float:
    """Changes per second one writer reaches flat out, in bulk writes (nobody follows)."""
    await source.collection.drop()
    await source.collection.insert_many([dict(document) for document in seed])
    writer = RandomChanges(range(len(seed)), seed=7)
    started = time.perf_counter()
    for _ in range(30):
        await source.collection.bulk_write(writer.take(WRITE_BATCH))
    return 30 * WRITE_BATCH / (time.perf_counter() - started)


async def _lag_run(
    settings: Settings,
    mapping: TableMapping,
    source: SourceCollection,
    mongo_uri: str,
    seed: list[dict[str, Any]],
    rate: float,
    seconds: float,
) -> LagRun:
    """Follow while a writer process changes the collection at ``rate`` for ``seconds``."""
    await _seeded(source, seed)
    await _followed_load(settings, mapping)
    lags: list[float] = []
    stop, reported = asyncio.Event(), asyncio.Event()

    def record(status: FollowStatus) -> None:
        if status.lag_s > 0:
            lags.append(status.lag_s)
        reported.set()

    run = Migration(settings, mapping=mapping, on_follow_batch=record)
    context = multiprocessing.get_context("spawn")
    written = context.Value("q", 0)
    process = context.Process(
        target=write_steadily,
        args=(mongo_uri, settings.mongo_database, len(seed), rate, seconds, written),
    )
    async with run:
        follower = asyncio.ensure_future(run.migrate(resume=True, follow=FollowOptions(stop=stop)))
        started = time.perf_counter()
        process.start()
        await asyncio.to_thread(process.join)
        elapsed = time.perf_counter() - started
        end = await source.cluster_time()
        while run.follow_status is None or run.follow_status.caught_up_to < end:
            reported.clear()
            await reported.wait()  # the follower reports after every batch, idle ones too
        stop.set()
        await follower
    status = run.follow_status
    assert status is not None
    ordered = sorted(lags) or [0.0]
    return LagRun(
        asked_per_s=rate,
        written_per_s=written.value / seconds,
        applied_per_s=status.events_applied / elapsed,
        lag_p50_s=statistics.median(ordered),
        lag_p95_s=ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        lag_max_s=ordered[-1],
    )


def write_steadily(
    mongo_uri: str, database: str, documents: int, rate: float, seconds: float, written: Any
) -> None:
    """The lag run's writer (a process of its own): bulk writes paced at ``rate``."""
    from pymongo import MongoClient

    client: Any = MongoClient(mongo_uri)
    collection = client[database][COLLECTION]
    writer = RandomChanges(range(documents), seed=3)
    started = time.perf_counter()
    sent = 0
    while (elapsed := time.perf_counter() - started) < seconds:
        due = int(rate * elapsed) - sent
        if due <= 0:
            time.sleep(0.01)
            continue
        count = min(due, WRITE_BATCH)
        collection.bulk_write(writer.take(count))
        sent += count
    written.value = sent
    client.close()


def format_follow_report(report: FollowBenchReport) -> str:
    """Markdown: every round's rates and ratios, the medians against the targets, the lag."""
    lines = [
        f"Follower, {report.documents:,} customers, {report.changes:,} random changes a round "
        "(inserts, nested updates, $push/$pop, replaces, deletes)",
        "",
        "| round | raw stream (changes/s) | exact, child tables (changes/s) | exact / raw "
        "| exact, jsonb (changes/s) | jsonb / raw "
        "| catch-up (changes/s) | catch-up / raw | verify |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for number, one in enumerate(report.rounds, start=1):
        lines.append(
            f"| {number} | {one.raw_per_s:,.0f} | {one.exact_per_s:,.0f} | "
            f"{one.exact_per_s / one.raw_per_s:.2f} | {one.exact_jsonb_per_s:,.0f} | "
            f"{one.exact_jsonb_per_s / one.raw_per_s:.2f} | {one.catch_up_per_s:,.0f} | "
            f"{one.catch_up_per_s / one.raw_per_s:.2f} | {'OK' if one.verified else 'MISMATCH'} |"
        )
    lines += [
        "",
        f"Median exact / raw, child tables: {report.exact_ratio:.2f} "
        f"(target >= {TARGET_RATIO}: {_verdict(report.exact_ratio >= TARGET_RATIO)}); "
        f"the default mapping (jsonb): {report.exact_jsonb_ratio:.2f} "
        f"(target >= {TARGET_RATIO}: {_verdict(report.exact_jsonb_ratio >= TARGET_RATIO)}); "
        f"catch-up / raw: {report.catch_up_ratio:.2f} (no target: it re-reads every document).",
        "",
        f"One writer flat out, {WRITE_BATCH} changes a command: "
        f"{report.write_limit_per_s:,.0f} changes/s.",
        "",
        "| writer asked (changes/s) | written (changes/s) | applied (changes/s) "
        "| lag p50 (s) | lag p95 (s) | lag max (s) | max < 2 s |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in report.lag:
        lines.append(
            f"| {run.asked_per_s:,.0f} | {run.written_per_s:,.0f} | {run.applied_per_s:,.0f} | "
            f"{run.lag_p50_s:.2f} | {run.lag_p95_s:.2f} | {run.lag_max_s:.2f} | "
            f"{_verdict(run.lag_max_s < TARGET_LAG_S)} |"
        )
    return "\n".join(lines)


def _verdict(met: bool) -> str:
    return "PASS" if met else "MISS"
