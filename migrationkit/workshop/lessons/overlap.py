"""What lessons 02 (asyncio) and 03 (threading) measure: waits that overlap, limits that don't.

Over loopback a write costs PostgreSQL microseconds, so more workers have no waits
to overlap and every run is bound by something else: the source's read, or the CPU.
The lessons put PostgreSQL a few milliseconds away with
:class:`~migrationkit.workshop.latency_proxy.ProxiedEndpoints` and time the same runs
both ways. Every setting runs ``repeats`` times in whole rounds (a busy spell on a
shared machine then hits every setting alike) and is kept as a :class:`Spread`: its
median and range, which the charts draw as whiskers. Every sentence a lesson prints
about a number is made here, from the runs.
"""

from __future__ import annotations

import asyncio
import os
import platform
import resource
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

#: The users both lessons move: fewer than the other lessons' 50,000, because one
#: worker 5 ms from PostgreSQL needs ~15 s for 50,000 and every setting runs 3 times.
ROWS = 20_000
#: Rows per batch, for the kit's workers and the lessons' own code alike.
BATCH_SIZE = 250
#: The one-way delay the proxy adds between the workers and PostgreSQL (10 ms a round trip).
DELAY_S = 0.005
#: Runs of every setting; the charts show their median and range.
REPEATS = 3
#: N workers count as "N times one worker" while they keep this share of it.
LINEAR_SHARE = 0.8
#: A run within this share of the source's own read rate is bound by the source.
NEAR_READ_SHARE = 0.85
#: Workers that had a batch in hand this share of the time were the slow part.
BUSY_SHARE = 0.75
#: A process (or a machine) using this share of its CPU is bound by it.
CPU_SATURATED = 0.9
#: The multiplication sign and the en dash of the lessons' text and charts (2.5x, 1-4).
TIMES, DASH = "\u00d7", "\u2013"
#: Where Linux counts every CPU's busy and idle time.
PROC_STAT = Path("/proc/stat")

#: The resources a run can be bound by, as the lessons name them.
ROUND_TRIPS = "waiting on PostgreSQL's round trips"
SOURCE_READ = "the source's read"
ONE_THREAD = "Python's one thread (the process used a whole core)"
MACHINE_CPU = "the CPUs (all busy: servers, workers, other programs)"
WRITES = "the writes to PostgreSQL"
READER = "the reader (the writers waited for batches)"

#: ``copy(mongo_uri, pg_dsn, workers=N)``: a lesson's own copy code; returns the rows copied.
CopyCode = Callable[..., Awaitable[int]]


def lesson_rows() -> int:
    """How many users lessons 02 and 03 move: :data:`ROWS`, or what CI sets."""
    return notebook_rows(default=ROWS)


def delay_name(pg_delay_s: float | None) -> str:
    """``"direct"``, or how far the proxy puts PostgreSQL: ``"5 ms away"``."""
    return "direct" if pg_delay_s is None else f"{pg_delay_s * 1e3:g} ms away"


@dataclass(frozen=True)
class Spread:
    """Several runs of one setting: the median and the range of their speed and time."""

    label: str
    params: Mapping[str, Any]
    runs: tuple[Measurement, ...] = field(repr=False)

    @property
    def workers(self) -> int:
        return int(self.params["workers"])

    @property
    def rates(self) -> list[float]:
        return [run.rows_per_s for run in self.runs]

    @property
    def rate(self) -> float:
        """The median rows/s."""
        return statistics.median(self.rates)

    @property
    def rate_range(self) -> tuple[float, float]:
        return min(self.rates), max(self.rates)

    @property
    def seconds(self) -> float:
        """The median duration."""
        return statistics.median(run.seconds for run in self.runs)

    @property
    def seconds_range(self) -> tuple[float, float]:
        durations = [run.seconds for run in self.runs]
        return min(durations), max(durations)

    @property
    def median_run(self) -> Measurement:
        """The run whose rows/s is the median (the lower middle one of an even count)."""
        ordered = sorted(self.runs, key=lambda run: run.rows_per_s)
        return ordered[(len(ordered) - 1) // 2]

    def median_of(self, name: str) -> float | None:
        """The median of ``extra[name]`` over the runs that have it (CPU share, busy share)."""
        values = [float(run.extra[name]) for run in self.runs if run.extra.get(name) is not None]
        return statistics.median(values) if values else None


# -- timing -------------------------------------------------------------------------------


def _process_cpu_s() -> float:
    """CPU time of this whole process (every thread, the proxy's too), user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_cpu_ticks(stat: Path = PROC_STAT) -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs since boot, from Linux's ``/proc/stat``; else None."""
    try:
        fields = stat.read_text(encoding="ascii").split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = [int(value) for value in fields[1:]]
    idle = sum(ticks[3:5])  # idle and iowait
    return sum(ticks) - idle, sum(ticks)


def busy_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of all CPUs' time that was busy between two :func:`machine_cpu_ticks`."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


async def timed(
    run: Callable[[], Awaitable[int]], *, label: str, params: Mapping[str, Any] | None = None
) -> Measurement:
    """Await ``run()`` (it returns the rows it moved): its wall time, and the CPU it used.

    ``extra``: ``cpu_share``, this process's CPU time over the wall time (1.0 is one
    core busy throughout); ``machine_busy``, the share of all the machine's CPUs that
    were busy, every program included (``None`` without ``/proc/stat``).
    """
    ticks, cpu, started = machine_cpu_ticks(), _process_cpu_s(), time.perf_counter()
    rows = await run()
    seconds = time.perf_counter() - started
    extra = {
        "cpu_share": (_process_cpu_s() - cpu) / seconds if seconds > 0 else 0.0,
        "machine_busy": busy_share(ticks, machine_cpu_ticks()),
    }
    return Measurement(label, rows, seconds, dict(params or {}), extra)


Setting = tuple[str, Mapping[str, Any], Callable[[], Awaitable[int]]]


async def repeat_rounds(
    settings: Sequence[Setting],
    *,
    repeats: int = REPEATS,
    before: Callable[[], Awaitable[None]] | None = None,
) -> list[Spread]:
    """Time every ``(label, params, run)`` once a round for ``repeats`` rounds; a Spread each.

    ``before`` runs, untimed, before every run (to empty a table, say).
    """
    trials: dict[str, list[Measurement]] = {label: [] for label, _, _ in settings}
    for _ in range(max(1, repeats)):
        for label, params, run in settings:
            if before is not None:
                await before()
            trials[label].append(await timed(run, label=label, params=params))
    return [Spread(label, runs[0].params, tuple(runs)) for label, runs in trials.items()]


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


# -- reading the results ------------------------------------------------------------------


def by_workers(spreads: Sequence[Spread]) -> dict[int, Spread]:
    return {spread.workers: spread for spread in spreads}


def series(spreads: Sequence[Spread], key: str = "delay") -> dict[str, list[Spread]]:
    """Spreads grouped by ``params[key]``, in the order first seen."""
    groups: dict[str, list[Spread]] = {}
    for spread in spreads:
        groups.setdefault(str(spread.params[key]), []).append(spread)
    return groups


def speedups(spreads: Sequence[Spread]) -> dict[int, float]:
    """Each worker count's median rows/s over that of the fewest workers."""
    runs = by_workers(spreads)
    base = runs[min(runs)].rate
    return {count: spread.rate / base if base else 0.0 for count, spread in sorted(runs.items())}


def overlap_limit(spreads: Sequence[Spread]) -> int:
    """The most workers up to which every count kept :data:`LINEAR_SHARE` of N x the fewest."""
    gains = speedups(spreads)
    fewest = min(gains)
    top = fewest
    for count, gain in gains.items():
        if gain < LINEAR_SHARE * count / fewest:
            break
        top = count
    return top


def bound_by(spread: Spread, *, read_rate: float, fewest_rate: float, fewest: int = 1) -> str:
    """Which resource set this setting's pace, judged from its own runs.

    Far from PostgreSQL and still about N times the fewest workers: the waits. Else
    near the source's own read rate: the source. Else a whole core busy in this
    process: Python's one thread. Else workers often without a batch: the reader fed
    them too slowly. Else every CPU of the machine busy: the CPUs. Else the writes.
    """
    far = spread.params.get("pg_delay_s") is not None
    linear = spread.rate >= LINEAR_SHARE * fewest_rate * spread.workers / fewest
    if far and linear:
        return ROUND_TRIPS
    if spread.rate >= NEAR_READ_SHARE * read_rate:
        return SOURCE_READ
    if (spread.median_of("cpu_share") or 0.0) >= CPU_SATURATED:
        return ONE_THREAD
    busy = spread.median_of("busy_share")
    if busy is not None and busy < BUSY_SHARE:
        return READER
    if (spread.median_of("machine_busy") or 0.0) >= CPU_SATURATED:
        return MACHINE_CPU
    return ROUND_TRIPS if far else WRITES


def ratio(value: float) -> str:
    return f"{value:.1f}{TIMES}"


def rows_per_s(value: float) -> str:
    return f"{value:,.0f} rows/s"


def ms(seconds: float) -> str:
    """Milliseconds with the digits that matter: 0.061 ms, 1.2 ms, 37 ms."""
    value = seconds * 1e3
    return f"{value:.2g} ms" if value < 10 else f"{value:,.0f} ms"


def series_line(spreads: Sequence[Spread], *, unit: str) -> str:
    """``1 worker 3,008 rows/s; 2: 5,209 (1.7x); ...`` for one series, from the medians."""
    runs, gains = by_workers(spreads), speedups(spreads)
    counts = sorted(runs)
    name = singular(unit) if counts[0] == 1 else unit
    first = f"{counts[0]} {name} {rows_per_s(runs[counts[0]].rate)}"
    rest = [f"{n}: {runs[n].rate:,.0f} ({ratio(gains[n])})" for n in counts[1:]]
    return "; ".join([first, *rest])


def singular(unit: str) -> str:
    return unit.removesuffix("s")


def scaling_summary(spreads: Sequence[Spread], *, read: Spread, unit: str = "workers") -> str:
    """Markdown: each series' medians and gains, the source's rate, and each run's limit."""
    groups = series(spreads)
    lines = [
        f"- **PostgreSQL {name}:** {series_line(group, unit=unit)}."
        for name, group in groups.items()
    ]
    lines.append(f"- **The source alone** (reading, writing nothing): {rows_per_s(read.rate)}.")
    for name, group in groups.items():
        if group[0].params.get("pg_delay_s") is None:
            continue
        lines.append(f"- {name.capitalize()}: {_overlap_sentence(group, unit=unit)}")
    lines += ["", "| " + unit + " | " + " | ".join(f"{name}: bound by" for name in groups) + " |"]
    lines.append("|---:|" + "---|" * len(groups))
    counts = sorted({spread.workers for spread in spreads})
    for count in counts:
        cells = []
        for group in groups.values():
            runs = by_workers(group)
            fewest = min(runs)
            cells.append(
                bound_by(
                    runs[count], read_rate=read.rate, fewest_rate=runs[fewest].rate, fewest=fewest
                )
                if count in runs
                else ""
            )
        lines.append(f"| {count} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _overlap_sentence(spreads: Sequence[Spread], *, unit: str) -> str:
    counts = sorted(by_workers(spreads))
    top = overlap_limit(spreads)
    share = f"{LINEAR_SHARE:.0%} of N {TIMES} the speed of {counts[0]}"
    if top == counts[-1]:
        return f"every count, up to {top} {unit}, kept within {share}."
    after = counts[counts.index(top) + 1]
    if top == counts[0]:
        return f"already {after} {unit} fell below {share}."
    return f"up to {top} {unit} kept within {share}; from {after} on, another limit took over."


def batch_in_hand_s(spread: Spread, *, batch_size: int = BATCH_SIZE) -> float:
    """The median time a worker held one batch (took it → committed it), from ``busy_share``."""
    batches = max(1, -(-spread.runs[0].rows // batch_size))
    busy = spread.median_of("busy_share")
    if busy is None:
        raise ValueError(f"{spread.label}: no busy_share (only migrations() measure it)")
    return busy * spread.seconds * spread.workers / batches


# -- what the lessons say -----------------------------------------------------------------


def setup_note(lab: Lab, *, rows: int) -> str:
    """Markdown: the sizes of this run and the machine it ran on."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    busy = (
        f" Load average over the minute before this cell: {load:.1f} on {os.cpu_count()} CPUs"
        + (" (other programs are running: expect spread between runs)." if load > 1 else ".")
        if load is not None
        else ""
    )
    return (
        f"**This run:** {lab.seeded or rows:,} users in `{lab.settings.mongo_collection}`, "
        f"batches of {BATCH_SIZE}, PostgreSQL {delay_name(DELAY_S)} when far, "
        f"{REPEATS} runs a setting. **Machine:** {platform.system()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; both servers on this machine.{busy}"
    )


def _fewest(spreads: Sequence[Spread]) -> Spread:
    runs = by_workers(spreads)
    return runs[min(runs)]


def _top_gain(spreads: Sequence[Spread]) -> tuple[int, float]:
    gains = speedups(spreads)
    count = max(gains, key=lambda n: gains[n])
    return count, gains[count]


def _limits(spreads: Sequence[Spread], *, read: Spread) -> str:
    fewest = _fewest(spreads)
    names = [
        bound_by(s, read_rate=read.rate, fewest_rate=fewest.rate, fewest=fewest.workers)
        for s in spreads
    ]
    return " / ".join(dict.fromkeys(names))


def held_batch_s(report: MigrationReport) -> float:
    """The median time a worker of ``report`` held a batch (took it -> committed it)."""
    spans = [end - start for stats in report.per_worker for start, end in stats.spans]
    return statistics.median(spans) if spans else 0.0


def first_batch_s(run: Measurement) -> float:
    """How long after ``migrate()`` was called the first batch reached a worker."""
    assert run.report is not None, "only migrations() keep their reports"
    starts = [start for stats in run.report.per_worker for start, _ in stats.spans]
    return min(starts) - float(run.extra["called_at"])


def timeline_note(runs: Mapping[str, Measurement]) -> str:
    """Markdown: each run's wait for its first batch, its copy, and how long a batch was held."""
    lines = []
    first = None
    for name, run in runs.items():
        assert run.report is not None, "only migrations() keep their reports"
        held = held_batch_s(run.report)
        versus = f", {ratio(held / first)} the first run's" if first else ""
        first = first or held
        batches = sum(stats.batches for stats in run.report.per_worker)
        lines.append(
            f"- **{name}:** the first batch reached a worker {first_batch_s(run):.2f} s after "
            f"`migrate()` was called; the copy took **{run.seconds:.2f} s**; a worker held a "
            f"batch for **{ms(held)}** (median of {batches}{versus})."
        )
    return "\n".join(lines)


def batch_note(far: Sequence[Spread], round_trip: float) -> str:
    """Markdown: how long one far worker held a batch, in round trips of the proxy."""
    one = _fewest(far)
    held = batch_in_hand_s(one)
    return (
        f"With {one.workers} worker {delay_name(one.params['pg_delay_s'])}, a worker held "
        f"each batch for **{ms(held)}** (median): about **{held / round_trip:.0f} round trips** "
        f"of {ms(round_trip)}. That is the wait more workers overlap."
    )


def _flat(direct: Sequence[Spread]) -> tuple[float, float]:
    gains = speedups(direct).values()
    return min(gains), max(gains)


def recap_asyncio(
    tasks: Sequence[Spread], far: Sequence[Spread], direct: Sequence[Spread], *, read: Spread
) -> str:
    """The lesson's three lines, each number from the runs."""
    own = series(tasks)
    far_own = next(group for group in own.values() if group[0].params["pg_delay_s"] is not None)
    own_count, own_gain = _top_gain(far_own)
    count, gain = _top_gain(far)
    low, high = _flat(direct)
    return "\n".join(
        [
            f"1. Tasks on one event loop overlap their waits: with PostgreSQL "
            f"{far[0].params['delay']}, {own_count} of your tasks copied {ratio(own_gain)} as "
            f"fast as one, and `migrate()` reached {ratio(gain)} with {count} workers.",
            f"2. With nothing to wait for there is nothing to overlap: direct, every worker "
            f"count ran at {ratio(low)}{DASH}{ratio(high)} of one worker's rate, bound by "
            f"{_limits(direct, read=read)}; the source alone reads {rows_per_s(read.rate)}.",
            "3. `migrate()` runs the same pattern: `ClusterMigrationAsyncio` starts one "
            "`run_worker` task per worker, each fed through a bounded `asyncio.Queue`.",
        ]
    )


def startup_note(startup: Sequence[Spread]) -> str:
    """Markdown: what each start-up step took, and how the connections compare."""
    steps = {
        spread.params["what"]: spread for spread in startup if spread.params["what"] != "cluster"
    }
    clusters = [spread for spread in startup if spread.params["what"] == "cluster"]
    thread, loop = steps["thread"], steps["loop"]
    lines = [
        f"- A thread started and ended in **{ms(thread.seconds)}**; one that ran its own event "
        f"loop in **{ms(loop.seconds)}** (medians of {len(thread.runs)}).",
    ]
    for spread in clusters:
        lines.append(
            f"- The kit's {spread.params['workers']} workers, each connecting to PostgreSQL "
            f"{spread.params['delay']}: **{ms(spread.seconds)}**, "
            f"{spread.seconds / loop.seconds:,.0f}{TIMES} a thread with its loop."
        )
    return "\n".join(lines)


#: Below this many times the fewest threads' speed, a CPU-bound run counts as flat.
FLAT_GAIN = 1.25
#: A process using at most this many cores ran Python on one thread at a time.
ONE_CORE = 1.1


def cores(spreads: Sequence[Spread]) -> dict[int, float]:
    """The median CPU this process used in each setting, in cores (1.0: one core throughout)."""
    return {
        count: s.median_of("cpu_share") or 0.0 for count, s in sorted(by_workers(spreads).items())
    }


def _crowded(spreads: Sequence[Spread]) -> bool:
    """Every CPU of the machine busy while this process got less than a core: a shared machine."""
    return any(
        (s.median_of("machine_busy") or 0.0) >= CPU_SATURATED
        and (s.median_of("cpu_share") or 0.0) < CPU_SATURATED
        for s in spreads
    )


def gil_note(computing: Sequence[Spread], waiting: Sequence[Spread]) -> str:
    """Markdown: the speed-ups and CPU of computing and of waiting threads, side by side."""

    def gains(spreads: Sequence[Spread]) -> str:
        return ", ".join(f"{n}: {ratio(g)}" for n, g in speedups(spreads).items() if n > 1)

    def used(spreads: Sequence[Spread]) -> str:
        return " / ".join(f"{c:.2f}" for c in cores(spreads).values())

    counts = " / ".join(str(n) for n in sorted(by_workers(computing)))
    top = max(cores(computing).values())
    lines = [
        f"- **Computing** ({rows_per_s(_fewest(computing).rate)} on one thread): "
        f"{gains(computing)}. The process used {used(computing)} cores with {counts} threads: "
        + (
            "never more than one, as the GIL allows one thread to run Python at a time."
            if top <= ONE_CORE
            else f"up to {top:.2f}, so part of the work ran outside the GIL (C code releases it)."
        ),
        f"- **Waiting** on PostgreSQL {waiting[0].params['delay']}: {gains(waiting)}, using "
        f"{used(waiting)} cores.",
    ]
    if _crowded(computing):
        lines.append(
            "- Every CPU of this machine was busy during the computing runs (other programs "
            "included) and the process got less than a core: their speed follows the share of "
            "CPU the operating system gave it, so the computing line can move up or down "
            "without two threads ever computing at once (the right panel)."
        )
    return "\n".join(lines)


def recap_threading(
    startup: Sequence[Spread],
    far: Sequence[Spread],
    direct: Sequence[Spread],
    computing: Sequence[Spread],
    *,
    read: Spread,
) -> str:
    """The lesson's three lines, each number from the runs."""
    loop = next(spread for spread in startup if spread.params["what"] == "loop")
    connect = next(spread for spread in startup if spread.params["what"] == "cluster")
    count, gain = _top_gain(far)
    low, high = _flat(direct)
    cpu_count, cpu_gain = max(speedups(computing).items())
    top = max(cores(computing).values())
    used = cores(computing)
    counts = sorted(used)
    computing_line = (
        f"3. They do not overlap Python work: the CPU-bound transform ran {ratio(cpu_gain)} "
        f"as fast on {cpu_count} threads as on one, the process never above {top:.2f} cores."
        if cpu_gain < FLAT_GAIN
        else f"3. The CPU-bound transform ran {ratio(cpu_gain)} as fast on {cpu_count} threads, "
        f"the process using {used[counts[0]]:.2f} {DASH} {used[counts[-1]]:.2f} cores: "
        f"never more than {top:.2f} at a time."
    )
    return "\n".join(
        [
            f"1. A thread with its own event loop starts in {ms(loop.seconds)}; the kit's "
            f"{connect.params['workers']} workers with their PostgreSQL connections took "
            f"{ms(connect.seconds)} ({connect.params['delay']}): connecting is the start-up cost.",
            f"2. Threads overlap waits: with PostgreSQL {far[0].params['delay']}, {count} thread "
            f"workers ran {ratio(gain)} as fast as one; direct, {ratio(low)}{DASH}{ratio(high)}, "
            f"bound by {_limits(direct, read=read)}.",
            computing_line + " For computing in parallel: processes, lesson 04.",
        ]
    )
