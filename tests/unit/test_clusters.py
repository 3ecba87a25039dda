"""The shared cluster protocol, on every backend, with fake sinks (no database)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from migrationkit._errors import WorkerCrashedError, WorkerError
from migrationkit._executors.backends import ClusterMigrationFactory
from migrationkit._executors.clusters.base import ClusterMigrationBase
from migrationkit._executors.worker import WorkerJob
from migrationkit._observe.progress import CountingProgress
from tests.unit import fakes

BACKENDS = ["asyncio", "threading", "multiprocessing"]


def job(sink: fakes.SinkOpenerType = fakes.counting_sink) -> WorkerJob:
    return fakes.job(sink)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    fakes.GATE.clear()
    yield fakes.GATE
    fakes.GATE.set()  # never leave a worker blocked behind a failed test


async def test_batches_are_dealt_round_robin(backend: str) -> None:
    cluster = ClusterMigrationFactory.create(backend, 3, job=job())
    async with cluster:
        start = 0
        for size in range(1, 8):  # batch sizes 1..7 make each worker's total unique
            await cluster.submit(fakes.documents(start, size))
            start += size
    assert [s.rows_written for s in cluster.stats] == [1 + 4 + 7, 2 + 5, 3 + 6]
    assert [s.batches for s in cluster.stats] == [3, 2, 2]


async def test_closing_waits_for_every_batch_and_reports_progress(backend: str) -> None:
    progress = CountingProgress()
    cluster = ClusterMigrationFactory.create(backend, 2, job=job(), progress=progress)
    async with cluster:
        for start in range(0, 1000, 100):
            await cluster.submit(fakes.documents(start, 100))
    assert sum(s.rows_written for s in cluster.stats) == 1000
    assert progress.count == 1000
    assert all(s.busy_s >= 0 and len(s.spans) == s.batches for s in cluster.stats)


async def test_rejected_documents_are_counted_with_reasons_and_not_written(backend: str) -> None:
    cluster = ClusterMigrationFactory.create(backend, 2, job=job())
    async with cluster:
        await cluster.submit(fakes.documents(0, 10))
        await cluster.submit(fakes.documents(10, 3, bad=True))
    assert sum(s.rows_written for s in cluster.stats) == 10
    assert sum(s.rows_rejected for s in cluster.stats) == 3
    assert cluster.rejected == [(str(n), "marked bad by the test") for n in (10, 11, 12)]


@pytest.mark.parametrize("backend", ["asyncio", "threading"])
async def test_a_full_inbox_makes_submit_wait(backend: str, gate: threading.Event) -> None:
    workers, depth = 2, 2
    cluster = ClusterMigrationFactory.create(
        backend, workers, job=job(fakes.gated_sink), queue_depth=depth
    )
    submitted = 0

    async def feed() -> None:
        nonlocal submitted
        for start in range(100):
            await cluster.submit(fakes.documents(start, 1))
            submitted += 1

    async with cluster:
        feeder = asyncio.create_task(feed())
        # Each worker holds one batch in its sink and `depth` in its inbox.
        await wait_for(lambda: submitted == workers * (depth + 1))
        await asyncio.sleep(0.5)  # a bound with no progress is the behaviour under test
        assert submitted == workers * (depth + 1)
        assert not feeder.done()
        gate.set()
        await feeder
    assert sum(s.rows_written for s in cluster.stats) == 100


async def test_a_failing_worker_raises_one_error_with_its_traceback(backend: str) -> None:
    cluster = ClusterMigrationFactory.create(backend, 2, job=job(fakes.failing_sink))
    started = time.monotonic()
    with pytest.raises(WorkerError, match="disk on fire") as raised:
        await feed(cluster, batches=20)
    assert time.monotonic() - started < 15
    assert "fakes.py" in raised.value.remote_traceback  # the frame where it was raised
    assert "Worker traceback" in str(raised.value)
    await assert_workers_gone(cluster)


async def test_a_killed_worker_process_is_reported_within_seconds() -> None:
    cluster = ClusterMigrationFactory.create("multiprocessing", 2, job=job(fakes.dying_sink))
    started = time.monotonic()
    with pytest.raises(WorkerCrashedError, match="killed by SIGKILL"):
        await feed(cluster, batches=20)
    assert time.monotonic() - started < 15
    await assert_workers_gone(cluster)


async def test_a_worker_that_cannot_connect_fails_start(backend: str) -> None:
    cluster = ClusterMigrationFactory.create(backend, 2, job=job(fakes.unopenable_sink))
    with pytest.raises(WorkerError, match="nobody listens"):
        await cluster.start()
    await assert_workers_gone(cluster)


async def test_an_error_in_the_caller_stops_the_workers(backend: str) -> None:
    cluster = ClusterMigrationFactory.create(backend, 2, job=job())
    with pytest.raises(KeyError, match="the reader broke"):
        await feed(cluster, batches=1, then_raise=KeyError("the reader broke"))
    await assert_workers_gone(cluster)


async def feed(
    cluster: ClusterMigrationBase, *, batches: int, then_raise: Exception | None = None
) -> None:
    """Run the cluster over ``batches`` batches of 10 documents, like a migration does."""
    async with cluster:
        for number in range(batches):
            await cluster.submit(fakes.documents(number * 10, 10))
        if then_raise is not None:
            raise then_raise


async def wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def assert_workers_gone(cluster: object) -> None:
    workers = getattr(cluster, "_workers", None) or getattr(cluster, "_tasks", [])
    for worker in workers:
        alive = worker.is_alive() if hasattr(worker, "is_alive") else not worker.done()
        assert not alive, f"{worker} is still running"
