"""Lesson 09's helpers on the real servers: the writer's changes all end in the target,
cutover agrees, and every measured change has its delay."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import asyncpg
import pytest

from migrationkit import Endpoints, cutover
from migrationkit._target.stream_positions import StreamPositionRepository
from migrationkit._target.tables import drop_target
from migrationkit.workshop.lessons import following as F

pytestmark = pytest.mark.integration

ROWS = 200
_names = itertools.count()


@pytest.fixture
async def customers(servers: Endpoints) -> AsyncIterator[F.Customers]:
    lesson = await F.open_customers(
        f"t09_{next(_names)}", rows=ROWS, mongo_uri=servers.mongo_uri, pg_dsn=servers.pg_dsn
    )
    yield lesson
    db = await asyncpg.connect(servers.pg_dsn)
    await drop_target(db, lesson.mapping)
    await StreamPositionRepository(db).clear(lesson.mapping.table)
    await db.close()
    async with lesson.client() as client:
        await client[lesson.settings.mongo_database].drop_collection(
            lesson.settings.mongo_collection
        )


async def test_the_writers_changes_during_and_after_the_load_all_end_in_the_target(
    customers: F.Customers,
) -> None:
    follow = F.Following(customers)
    writer = F.SteadyWriter.for_customers(customers, clock=follow.recorder.clock)
    await follow.start()
    try:
        await follow.loading()
        writing = asyncio.ensure_future(writer.run(rate=100.0))
        await follow.followed_for(1.0)
        writer.stop()
        live = await writing
        status = await follow.caught_up()
        cut = await cutover(
            customers.settings,
            timeout_s=60,
            mapping=customers.mapping,
            endpoints=customers.endpoints,
        )
    finally:
        await follow.stop()
        await writer.close()
    assert live.writes == writer.writes > 0
    assert status.events_applied == writer.writes  # one change per write, none lost
    assert cut.verified.ok, cut.verified.summary()
    delays = F.change_delays(writer.acked, follow.recorder.samples)
    assert len(delays) == writer.writes  # every write's delay is known
    assert "**Once caught up**" in F.live_note(follow.recorder, writer, live=live)


async def test_every_pace_runs_in_rounds_and_each_of_its_writes_has_a_delay(
    customers: F.Customers,
) -> None:
    follow = F.Following(customers)
    writer = F.SteadyWriter.for_customers(customers, clock=follow.recorder.clock)
    await follow.start()
    try:
        await follow.following()
        runs = await F.lag_at_rates(follow, writer, rates=(20.0, 40.0), seconds=0.5, repeats=2)
    finally:
        await follow.stop()
        await writer.close()
    assert [run.asked for run in runs] == [20.0, 40.0, 20.0, 40.0]
    for run in runs:
        assert run.writes > 0
        assert len(run.delays) == run.writes
        assert all(delay >= 0 for delay in run.delays)
    assert sum(run.writes for run in runs) == writer.writes
    assert "asked:** the writer made" in F.rates_note(runs)
