"""The measurements the notebooks make, one function each, returning :class:`Measurement`s.

Each helper does one experiment end to end (seed, run, time) so a notebook cell
is one call; the plots module draws what they return.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
import tracemalloc
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from faker import Faker

from migrationkit._executors.backends import ClusterMigrationFactory
from migrationkit._executors.dispatch import make_dispatcher
from migrationkit._observe.progress import Progress
from migrationkit.workshop.lessons.lab import Choice, Lab
from migrationkit.workshop.lessons.results import Measurement, best
from migrationkit.workshop.lessons.simulation import (
    run_batches,
    scenario_batches,
    scenario_sink,
    simulated_sink,
    simulation_job,
)
from migrationkit.workshop.seeding import UserFactory


def describe(name: str, value: Any) -> str:
    """How a varied setting reads in a label: ``x4`` workers, ``batch 1,000``, else the value."""
    if name == "workers":
        return f"x{value}"
    if name == "batch_size":
        return f"batch {value:,}"
    return str(value)


async def sweep(
    lab: Lab,
    base: Choice,
    *,
    repeat: int = 1,
    progress: Progress | None = None,
    **axes: Sequence[Any],
) -> list[Measurement]:
    """Migrate once per combination of ``axes`` (e.g. ``backend=[...], writer=[...]``).

    Every run starts from ``base``; the label names the values that vary. With
    ``repeat`` > 1 each combination runs that many times and the fastest run is
    kept: other programs on the machine only ever make a run slower.
    """
    names = list(axes)
    results = []
    for values in itertools.product(*axes.values()):
        changes = dict(zip(names, values, strict=True))
        runs = [await lab.run(base.but(**changes), progress) for _ in range(max(1, repeat))]
        label = " ".join(describe(name, value) for name, value in changes.items())
        results.append(replace(best(runs), label=label))
    return results


# -- 01 seeding ----------------------------------------------------------------------


async def time_seeding(lab: Lab, rows: int, batch_sizes: Sequence[int]) -> list[Measurement]:
    """Seed ``rows`` users once per batch size: fewer, larger inserts are faster."""
    return [await lab.seed(rows, batch_size=size) for size in batch_sizes]


def time_user_factory(rows: int) -> Measurement:
    """Generate ``rows`` users in memory (no database): the factory's own speed."""
    started = time.perf_counter()
    count = sum(1 for _ in UserFactory(seed=0).users(rows))
    return Measurement("UserFactory (pooled names)", count, time.perf_counter() - started)


def time_faker_per_user(rows: int) -> Measurement:
    """Ask Faker for a fresh name and e-mail per user: what the factory's pools avoid."""
    faker = Faker()
    faker.seed_instance(0)
    started = time.perf_counter()
    for _ in range(rows):
        faker.user_name(), faker.email(), faker.date_time()
    return Measurement("Faker call per user", rows, time.perf_counter() - started)


# -- 01 seeding, 04 processes: what a worker receives ----------------------------


async def first_batch(lab: Lab, batch_size: int, *, raw: bool = False) -> list[Any]:
    """The first ``batch_size`` documents of the lab's collection, as workers receive them.

    Decoded dicts, or with ``raw`` the BSON bytes that process workers are sent.
    """
    async with lab.collection() as users:
        async for batch in users.iter_batches(batch_size, raw=raw):
            return list(batch)
    return []


# -- 06 dispatch, backpressure --------------------------------------------------


async def run_dispatch(choice: Choice, progress: Progress | None = None) -> Measurement:
    """Simulated writers (no database) fed ``choice.scenario`` batches by ``choice.dispatch``."""
    batches = scenario_batches(choice.scenario, choice.rows, choice.batch_size)
    report = await run_batches(
        batches,
        backend=choice.backend,
        workers=choice.workers,
        job=simulation_job(scenario_sink(choice.scenario)),
        dispatcher=make_dispatcher(choice.dispatch, choice.workers),
        progress=progress,
    )
    params = {"dispatch": choice.dispatch, "scenario": choice.scenario, "workers": choice.workers}
    label = f"{choice.dispatch}, {choice.scenario}"
    return Measurement(label, report.rows_read, report.elapsed_s, params, report=report)


async def measure_backpressure(
    lab: Lab,
    *,
    queue_depths: Sequence[int] = (0, 2),
    workers: int = 2,
    batches: int = 50,
    writers_rows_per_s: float = 4_000,
) -> list[Measurement]:
    """Peak traced memory while a fast reader feeds slow writers, per inbox size (0: unbounded).

    Reads the lab's collection for real, in about ``batches`` batches; the writers
    only wait, managing ``writers_rows_per_s`` together (slower than the reader).
    ``extra`` holds ``peak_mib`` and ``samples``: (seconds, bytes) over the run.
    """
    async with lab.collection() as users:
        total = await users.count()
    batch_size = max(1, total // batches)
    row_cost_s = workers / writers_rows_per_s
    job = simulation_job(functools.partial(simulated_sink, row_cost_s=row_cost_s))
    results = []
    for depth in queue_depths:
        async with lab.collection() as users, traced_memory() as trace:
            cluster = ClusterMigrationFactory.create("asyncio", workers, job=job, queue_depth=depth)
            started = time.perf_counter()
            async with cluster:
                async for batch in users.iter_batches(batch_size):
                    await cluster.submit(batch)
            seconds = time.perf_counter() - started
        rows = sum(worker.rows_written for worker in cluster.stats)
        label = "unbounded" if depth == 0 else f"queue_depth={depth}"
        params = {"queue_depth": depth, "batch_size": batch_size}
        extra = {"peak_mib": trace.peak / 2**20, "samples": trace.samples}
        results.append(Measurement(label, rows, seconds, params, extra))
    return results


@dataclass
class MemoryTrace:
    """Traced bytes above the starting point: sampled over time, and the peak."""

    samples: list[tuple[float, int]] = field(default_factory=list)
    peak: int = 0


@asynccontextmanager
async def traced_memory(every_s: float = 0.01) -> AsyncIterator[MemoryTrace]:
    """Trace Python allocations (all threads) for the block, sampling every ``every_s``."""
    trace = MemoryTrace()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()

    async def sample() -> None:
        while True:
            current = tracemalloc.get_traced_memory()[0] - base
            trace.samples.append((time.perf_counter() - started, max(0, current)))
            await asyncio.sleep(every_s)

    sampler = asyncio.create_task(sample())
    try:
        yield trace
    finally:
        sampler.cancel()
        trace.peak = max(0, tracemalloc.get_traced_memory()[1] - base)
        if not was_tracing:
            tracemalloc.stop()
