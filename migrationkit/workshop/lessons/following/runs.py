"""The follower as a task of the notebook's loop, and the lag measured at several paces."""

from __future__ import annotations

import asyncio
import resource
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bson.timestamp import Timestamp
from pymongo import AsyncMongoClient

from migrationkit._run.follow import FollowOptions, FollowStatus
from migrationkit._run.migration import Migration
from migrationkit._run.report import MigrationReport
from migrationkit._source.stream import SourceCollection
from migrationkit.workshop.lessons import overlap
from migrationkit.workshop.lessons.following.lesson import (
    BURST_S,
    RATES,
    REPEATS,
    WAIT_TIMEOUT_S,
    Customers,
)
from migrationkit.workshop.lessons.following.recorder import (
    FollowRecorder,
    applied_at,
    change_delays,
    since,
)
from migrationkit.workshop.lessons.following.writer import SteadyWriter


class Following:
    """``migrate(follow=...)`` as a task of the notebook's event loop, and waits on it.

    The load and then the follower run while the notebook's cells go on;
    :meth:`stop` ends it between two batches, as Ctrl-C does on the command line.
    Every wait is on the follower's own reports, never on a timer.
    """

    def __init__(
        self,
        customers: Customers,
        *,
        recorder: FollowRecorder | None = None,
        max_wait_s: float = FollowOptions.max_wait_s,
        safe_lag_s: float = FollowOptions.safe_lag_s,
    ) -> None:
        self.customers = customers
        self.max_wait_s, self.safe_lag_s = max_wait_s, safe_lag_s
        self.recorder = recorder or FollowRecorder()
        self.run = Migration(
            customers.settings,
            endpoints=customers.endpoints,
            mapping=customers.mapping,
            progress=self.recorder,
            on_follow_batch=self.recorder,
        )
        self._stop = asyncio.Event()
        self.task: asyncio.Task[MigrationReport] | None = None
        self._client: AsyncMongoClient[Any] | None = None
        self.source: SourceCollection | None = None

    async def start(self) -> None:
        """Take the stream's position, then load, then follow: all in a task."""
        settings = self.customers.settings
        self._client = self.customers.client()
        self.source = SourceCollection(
            self._client,
            settings.mongo_database,
            settings.mongo_collection,
            uri=self.customers.endpoints.mongo_uri,
        )
        await self.run.__aenter__()
        options = FollowOptions(
            stop=self._stop, max_wait_s=self.max_wait_s, safe_lag_s=self.safe_lag_s
        )
        self.task = asyncio.ensure_future(self.run.migrate(follow=options))

    async def loading(self) -> None:
        """Until the load has begun (the stream's position is saved by then)."""
        await self._wait(lambda: self.recorder.load_started is not None)

    async def following(self) -> FollowStatus:
        """Until the load is done and the follower has reported one batch."""
        await self._wait(lambda: self.recorder.status is not None)
        assert self.recorder.status is not None
        return self.recorder.status

    async def followed_for(self, seconds: float) -> FollowStatus:
        """Until the follower has been following for ``seconds`` (by its batch reports)."""
        status = await self.following()
        began = self.recorder.samples[0].at

        def long_enough() -> bool:
            return self.recorder.clock() - began >= seconds

        await self._wait(long_enough)
        return status

    async def caught_up(self, until: Timestamp | None = None) -> FollowStatus:
        """Until every change made up to ``until`` (default: the source's time now) is applied."""
        assert self.source is not None, "start() first"
        goal = until or await self.source.cluster_time()
        recorder = self.recorder

        def caught() -> bool:
            return recorder.status is not None and recorder.status.caught_up_to >= goal

        await self._wait(caught)
        assert recorder.status is not None
        return recorder.status

    async def stop(self) -> MigrationReport:
        """Stop between two batches; the load's report."""
        self._stop.set()
        assert self.task is not None, "start() first"
        try:
            return await self.task
        finally:
            await self._close()

    async def _close(self) -> None:
        await self.run.__aexit__(None, None, None)
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _wait(self, condition: Callable[[], bool]) -> None:
        assert self.task is not None, "start() first"
        async with asyncio.timeout(WAIT_TIMEOUT_S):
            while not condition():
                if self.task.done():
                    self.task.result()  # raises what stopped it
                    raise RuntimeError("the follower stopped by itself")
                self.recorder.reported.clear()
                told = asyncio.ensure_future(self.recorder.reported.wait())
                await asyncio.wait([told, self.task], return_when=asyncio.FIRST_COMPLETED)
                told.cancel()


# -- the measurement ----------------------------------------------------------------------


@dataclass(frozen=True)
class RateRun:
    """One run of the writer at one pace, and what the follower did with its writes."""

    asked: float
    writes: int
    seconds: float
    delays: tuple[float, ...]
    lags: tuple[float, ...]
    #: From the writer's stop until the follower had applied every write of the run.
    catch_up_s: float
    #: This process's CPU time over the run's (writer and follower: 1.0 is a core).
    cpu_share: float
    #: The share of all the machine's CPUs that were busy (``None`` without /proc/stat).
    machine_busy: float | None

    @property
    def achieved(self) -> float:
        return self.writes / self.seconds if self.seconds > 0 else 0.0

    @property
    def median_delay(self) -> float:
        return statistics.median(self.delays) if self.delays else 0.0

    @property
    def max_delay(self) -> float:
        return max(self.delays, default=0.0)

    @property
    def max_lag(self) -> float:
        return max(self.lags, default=0.0)


async def rate_run(
    following: Following, writer: SteadyWriter, *, rate: float, seconds: float
) -> RateRun:
    """Write at ``rate`` for ``seconds``, from a caught-up follower; wait until it has it all."""
    status = following.recorder.status
    assert status is not None, "wait until the follower has caught up first"
    first_event = status.events_applied  # caught up: every write so far is applied
    recorder = following.recorder
    ticks, cpu = overlap.machine_cpu_ticks(), process_cpu_s()
    done = await writer.run(rate=rate, seconds=seconds)
    stopped = recorder.clock()
    used = process_cpu_s() - cpu
    busy = overlap.busy_share(ticks, overlap.machine_cpu_ticks())
    await following.caught_up()  # the next run starts from here
    samples = since(recorder.samples, done.started)
    acked = writer.acked[done.first :]
    delays = change_delays(acked, samples, first_event=first_event)
    applied = applied_at(acked, samples, moment=stopped, first_event=first_event)
    return RateRun(
        asked=rate,
        writes=done.writes,
        seconds=done.seconds,
        delays=tuple(delay for _, delay in delays),
        lags=tuple(sample.lag_s for sample in samples),
        catch_up_s=max((applied or stopped) - stopped, 0.0),
        cpu_share=used / done.seconds if done.seconds > 0 else 0.0,
        machine_busy=busy,
    )


def process_cpu_s() -> float:
    """CPU time of this whole process, user and system (the writer's and the follower's)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def lag_at_rates(
    following: Following,
    writer: SteadyWriter,
    *,
    rates: Sequence[float] = RATES,
    seconds: float = BURST_S,
    repeats: int = REPEATS,
) -> list[RateRun]:
    """Every pace once a round, ``repeats`` rounds (a busy spell hits every pace alike)."""
    await following.caught_up()
    runs = []
    for _ in range(max(1, repeats)):
        for rate in rates:
            runs.append(await rate_run(following, writer, rate=rate, seconds=seconds))
    return runs


def by_rate(runs: Sequence[RateRun]) -> dict[float, list[RateRun]]:
    """The runs of each asked pace, slowest pace first."""
    groups: dict[float, list[RateRun]] = {}
    for run in sorted(runs, key=lambda run: run.asked):
        groups.setdefault(run.asked, []).append(run)
    return groups


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)


def per_rate(
    runs: Sequence[RateRun], measure: Callable[[RateRun], float]
) -> dict[float, tuple[float, float, float]]:
    """Each pace's (median, min, max) of ``measure`` over its runs."""
    return {rate: spread([measure(run) for run in group]) for rate, group in by_rate(runs).items()}
