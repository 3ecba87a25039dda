"""What lessons 02 (asyncio) and 03 (threading) run: copies near and far, CPU work, start-ups.

Over loopback a write costs PostgreSQL microseconds, so the lessons put PostgreSQL a
few milliseconds away with :class:`~migrationkit.workshop.latency_proxy.ProxiedEndpoints`
and time the same runs both ways, each setting as a
:class:`~migrationkit.workshop.lessons.spreads.Spread`.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Sequence

from migrationkit._executors.backends import ClusterMigrationFactory
from migrationkit._run.migration import migrate
from migrationkit._run.report import MigrationReport
from migrationkit._settings.settings import Backend
from migrationkit._target.connection import PostgresConnectionHandler
from migrationkit._target.loader import postgres_job
from migrationkit._target.table import UserPostgresRepository
from migrationkit.workshop.latency_proxy import ProxiedEndpoints
from migrationkit.workshop.lessons.lab import LESSON_TRANSFORMS, Choice, Lab, notebook_rows
from migrationkit.workshop.lessons.results import Measurement
from migrationkit.workshop.lessons.simulation import (
    discarding_sink,
    in_batches,
    run_batches,
    simulation_job,
    user_documents,
)
from migrationkit.workshop.lessons.spreads import REPEATS, Setting, Spread, repeat_rounds

#: The users both lessons move: fewer than the other lessons' 50,000, because one
#: worker 5 ms from PostgreSQL needs ~15 s for 50,000 and every setting runs 3 times.
ROWS = 20_000
#: Rows per batch, for the kit's workers and the lessons' own code alike.
BATCH_SIZE = 250
#: The one-way delay the proxy adds between the workers and PostgreSQL (10 ms a round trip).
DELAY_S = 0.005

#: ``copy(mongo_uri, pg_dsn, workers=N)``: a lesson's own copy code; returns the rows copied.
CopyCode = Callable[..., Awaitable[int]]


def lesson_rows() -> int:
    """How many users lessons 02 and 03 move: :data:`ROWS`, or what CI sets."""
    return notebook_rows(default=ROWS)


def delay_name(pg_delay_s: float | None) -> str:
    """``"direct"``, or how far the proxy puts PostgreSQL: ``"5 ms away"``."""
    return "direct" if pg_delay_s is None else f"{pg_delay_s * 1e3:g} ms away"


# -- the servers --------------------------------------------------------------------------


async def empty_users_table(pg_dsn: str, table: str) -> None:
    """Create ``table`` as the kit's users table if needed, and empty it."""
    async with PostgresConnectionHandler(pg_dsn, min_size=1, max_size=1) as pool:
        users = UserPostgresRepository(pool, table=table)
        await users.create_table()
        await users.truncate()


async def count_rows(pg_dsn: str, table: str) -> int:
    async with PostgresConnectionHandler(pg_dsn, min_size=1, max_size=1) as pool:
        return await UserPostgresRepository(pool, table=table).count()


async def round_trip_s(pg_dsn: str, *, count: int = 20) -> float:
    """The median time of one ``SELECT 1`` on an open connection: one round trip."""
    async with (
        PostgresConnectionHandler(pg_dsn, min_size=1, max_size=1) as pool,
        pool.acquire() as connection,
    ):
        durations = []
        for _ in range(count):
            started = time.perf_counter()
            await connection.fetchval("SELECT 1")
            durations.append(time.perf_counter() - started)
    return statistics.median(durations)


async def read_alone(lab: Lab, *, batch_size: int = BATCH_SIZE, repeats: int = REPEATS) -> Spread:
    """Read the lab's collection with the kit's reader and write nothing: the source's limit."""

    async def read() -> int:
        rows = 0
        async with lab.collection() as users:
            async for batch in users.iter_batches(batch_size):
                rows += len(batch)
        return rows

    setting: Setting = ("the source alone", {"workers": 1, "batch_size": batch_size}, read)
    return (await repeat_rounds([setting], repeats=repeats))[0]


# -- the runs -----------------------------------------------------------------------------


async def copy_runs(
    copy: CopyCode,
    lab: Lab,
    *,
    table: str,
    workers: Sequence[int],
    pg_delay_s: float = DELAY_S,
    repeats: int = REPEATS,
) -> list[Spread]:
    """Time a lesson's ``copy`` code with PostgreSQL ``pg_delay_s`` away, and direct.

    Runs ``copy(mongo_uri, pg_dsn, workers=N)`` for every worker count both ways, in
    whole rounds, with ``table`` emptied before each run. Far runs come first.
    """
    direct = lab.endpoints
    async with ProxiedEndpoints(direct, pg_delay_s=pg_delay_s, mongo_delay_s=None) as via:
        settings: list[Setting] = []
        for delay, pg_dsn in ((pg_delay_s, via.endpoints.pg_dsn), (None, direct.pg_dsn)):
            for count in workers:

                async def run(pg_dsn: str = pg_dsn, count: int = count) -> int:
                    return await copy(direct.mongo_uri, pg_dsn, workers=count)

                params = {"workers": count, "delay": delay_name(delay), "pg_delay_s": delay}
                settings.append((f"{delay_name(delay)} x{count}", params, run))
        return await repeat_rounds(
            settings, repeats=repeats, before=lambda: empty_users_table(direct.pg_dsn, table)
        )


async def migrations(
    lab: Lab,
    *,
    backend: Backend,
    workers: Sequence[int],
    pg_delay_s: float | None = None,
    batch_size: int = BATCH_SIZE,
    repeats: int = REPEATS,
) -> list[Spread]:
    """Real ``migrate()`` runs of the lab's collection, one Spread per worker count.

    With ``pg_delay_s`` every PostgreSQL connection (the workers' and the coordinator's)
    goes through a proxy that delays each direction that long; MongoDB stays direct.
    A run's ``seconds`` are its report's ``elapsed_s``: the copy, from the first batch
    asked for to the last committed, without the set-up before it (connecting, creating
    the table), which costs more round trips far away but does not change with workers.
    ``extra``: ``busy_share``, the share of the copy each worker had a batch in hand;
    ``called_at``, when ``migrate()`` was called, on the clock of the report's spans.
    """
    await lab.ensure_seeded(lab.seeded or lesson_rows())
    reports: dict[int, list[tuple[float, MigrationReport]]] = {count: [] for count in workers}
    async with ProxiedEndpoints(lab.endpoints, pg_delay_s=pg_delay_s, mongo_delay_s=None) as via:

        def run_with(count: int) -> Callable[[], Awaitable[int]]:
            choice = Choice(backend=backend, workers=count, batch_size=batch_size)
            settings = lab.settings_for(choice)

            async def run() -> int:
                called = time.monotonic()  # the clock of the reports' batch spans
                report = await migrate(settings, endpoints=via.endpoints)
                reports[count].append((called, report))
                return report.rows_written

            return run

        params = {"backend": backend, "delay": delay_name(pg_delay_s), "pg_delay_s": pg_delay_s}
        spreads = await repeat_rounds(
            [(f"x{n}", {**params, "workers": n}, run_with(n)) for n in workers], repeats=repeats
        )
    return [_copy_times(spread, reports[spread.workers]) for spread in spreads]


def _copy_times(spread: Spread, reports: Sequence[tuple[float, MigrationReport]]) -> Spread:
    """The spread with each run timed by its report, and its workers' busy share added."""
    runs = []
    for run, (called, report) in zip(spread.runs, reports, strict=True):
        in_hand = sum(stats.busy_s for stats in report.per_worker)
        elapsed = report.elapsed_s
        busy = in_hand / (elapsed * report.workers) if elapsed > 0 else 0.0
        extra = {**run.extra, "busy_share": busy, "called_at": called}
        runs.append(Measurement(run.label, run.rows, elapsed, run.params, extra, report=report))
    return Spread(spread.label, spread.params, tuple(runs))


async def cpu_bound(
    backend: Backend,
    workers: Sequence[int],
    *,
    rows: int,
    transform: str = "pseudonymise-heavy",
    batch_size: int = BATCH_SIZE,
    repeats: int = REPEATS,
) -> list[Spread]:
    """``transform`` over in-memory users on each worker count, rows thrown away: CPU only."""
    batches = in_batches(user_documents(rows), batch_size)
    job = simulation_job(discarding_sink, LESSON_TRANSFORMS[transform])

    def run_with(count: int) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            report = await run_batches(batches, backend=backend, workers=count, job=job)
            return report.rows_written

        return run

    params = {"backend": backend, "transform": transform, "delay": "no database"}
    settings = [(f"x{n}", {**params, "workers": n}, run_with(n)) for n in workers]
    return await repeat_rounds(settings, repeats=repeats)


# -- start-up -----------------------------------------------------------------------------


def start_a_thread() -> None:
    """Start a thread that does nothing, and wait for it to end."""
    thread = threading.Thread(target=lambda: None)
    thread.start()
    thread.join()


def start_a_thread_with_a_loop() -> None:
    """Start a thread that runs its own event loop (``asyncio.run``); wait until it ran."""
    ran = threading.Event()

    async def signal() -> None:
        ran.set()

    thread = threading.Thread(target=asyncio.run, args=(signal(),))
    thread.start()
    ran.wait()
    thread.join()


async def startup_times(
    lab: Lab,
    *,
    workers: int = 4,
    pg_delay_s: float = DELAY_S,
    repeats: int = 20,
) -> list[Spread]:
    """What starting thread workers costs, piece by piece (each Spread's ``seconds``).

    A bare thread; a thread running its own event loop; the kit's threading cluster of
    ``workers``, each worker opening its PostgreSQL connection, direct and far.
    """

    def blocking(step: Callable[[], None]) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            step()
            return 0

        return run

    def cluster_start(pg_dsn: str) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            job = postgres_job(pg_dsn, table=lab.settings.pg_table)
            cluster = ClusterMigrationFactory.create("threading", workers, job=job)
            await cluster.start()  # returns once every worker has said it is ready
            await cluster.close()
            return 0

        return run

    threads: list[Setting] = [
        ("one thread", {"what": "thread"}, blocking(start_a_thread)),
        ("one thread + its event loop", {"what": "loop"}, blocking(start_a_thread_with_a_loop)),
    ]
    bare = await repeat_rounds(threads, repeats=repeats)
    async with ProxiedEndpoints(lab.endpoints, pg_delay_s=pg_delay_s, mongo_delay_s=None) as via:
        clusters: list[Setting] = [
            (
                f"{workers} workers + connections, {delay_name(delay)}",
                {"what": "cluster", "workers": workers, "delay": delay_name(delay)},
                cluster_start(pg_dsn),
            )
            for delay, pg_dsn in ((None, lab.endpoints.pg_dsn), (pg_delay_s, via.endpoints.pg_dsn))
        ]
        started = await repeat_rounds(clusters, repeats=max(REPEATS, repeats // 4))
    return bare + started
