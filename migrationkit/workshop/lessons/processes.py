"""Lesson 04's processes: the code a spawned child runs, and what the lesson measures of it.

A process started with ``spawn`` is a new interpreter. It imports the module that
holds its target and unpickles its arguments, functions by module and name; a
function defined in a notebook cell lives in ``__main__``, which the child cannot
import. So the code the lesson's child processes run lives here (:func:`write_batches`,
:func:`say_ready`), as the kit's lives in ``migrationkit._executors.worker``
(``blocking_worker_main``). The rest times what processes cost and buy: starting one,
sending it a batch, and Python work on 1 to N of them beside threads and asyncio tasks.
Every sentence the lesson prints about a number is made here, from the runs.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import resource
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import bson

from migrationkit._executors.backends import ClusterMigrationFactory
from migrationkit._executors.processes import WorkerContext, worker_processes
from migrationkit._normalize.rows import Transform, document_to_row
from migrationkit._settings.settings import Backend
from migrationkit.workshop.lessons.experiments import first_batch
from migrationkit.workshop.lessons.lab import LESSON_TRANSFORMS, Lab
from migrationkit.workshop.lessons.overlap import (
    BATCH_SIZE,
    BUSY_SHARE,
    CPU_SATURATED,
    NEAR_READ_SHARE,
    READER,
    REPEATS,
    SOURCE_READ,
    TIMES,
    Setting,
    Spread,
    busy_share,
    by_workers,
    first_batch_s,
    machine_cpu_ticks,
    ms,
    ratio,
    repeat_rounds,
    rows_per_s,
    series,
    speedups,
)
from migrationkit.workshop.lessons.results import Measurement
from migrationkit.workshop.lessons.simulation import (
    discarding_sink,
    in_batches,
    simulation_job,
    user_documents,
)

#: The users table's columns, in the order of :func:`document_to_row`'s tuple.
COLUMNS = ("mongo_id", "username", "email", "age", "registered_at")
#: The lesson's start method: a fresh interpreter, the same on every OS. (The kit's own
#: workers are forked from a fork server instead: :func:`worker_processes`.)
SPAWN = multiprocessing.get_context("spawn")
#: How long the parent waits for a new process's first message before giving up.
START_TIMEOUT_S = 60.0
#: The CPU-bound runs move one in this many of the lesson's users (the heavy transform is slow).
CPU_ROWS_SHARE = 5
#: Rows per batch in the CPU-heavy runs: small, so that 4 workers get even shares.
CPU_BATCH_SIZE = 50
#: The CPU-heavy transform of the lesson, by its name in ``LESSON_TRANSFORMS``.
HEAVY = "pseudonymise-heavy"
#: Linux's per-process counters; ``os.sysconf("SC_CLK_TCK")`` ticks a second.
PROC = Path("/proc")

#: A first-batch wait this much longer with processes than with tasks is their start-up.
START_SHOWS_S = 0.05

#: What else bounds a migration here, besides :data:`SOURCE_READ` and :data:`READER`.
WORKERS_CPU = "the workers' own work (busy from their first batch on)"


def cpu_rows(rows: int) -> int:
    """How many users the CPU-bound runs move: a fifth of ``rows``, at least 200."""
    return max(200, rows // CPU_ROWS_SHARE)


# -- what a child process runs --------------------------------------------------------------


def say_ready(outbox: Any) -> None:
    """A child's first and only message: its process id."""
    outbox.put(os.getpid())


def write_batches(
    inbox: Any, outbox: Any, pg_dsn: str, table: str, transform: Transform = document_to_row
) -> None:
    """One child process's life: its own event loop and connection, batches until ``None``.

    A batch is a list of raw BSON documents (``bytes``: cheap to pickle); the child
    decodes, transforms and COPYs it. At the end it puts the rows it wrote on ``outbox``,
    or the error that stopped it, as text; after an error it still takes every batch
    until ``None``, so the parent is never left blocked on a full queue.
    """
    try:
        outbox.put(asyncio.run(copy_batches(inbox, pg_dsn, table, transform)))
    except (OSError, ValueError, asyncpg.PostgresError) as error:
        outbox.put(f"{type(error).__name__}: {error}")
        while inbox.get() is not None:
            pass


async def copy_batches(inbox: Any, pg_dsn: str, table: str, transform: Transform) -> int:
    """Take raw BSON batches from ``inbox`` until ``None``; decode, transform, COPY each."""
    written = 0
    pg = await asyncpg.connect(pg_dsn)
    try:
        while (batch := inbox.get()) is not None:  # blocks this process only
            rows = [transform(bson.decode(raw)) for raw in batch]  # decoded here, in parallel
            async with pg.transaction():
                await pg.copy_records_to_table(table, records=rows, columns=COLUMNS)
            written += len(rows)
    finally:
        await pg.close()
    return written


# -- the price: starting a process, sending it a batch ----------------------------------------


def start_a_process(context: WorkerContext = SPAWN) -> int:
    """Start one process and wait for its first message (its pid); wait for it to end."""
    outbox = context.Queue()
    child = context.Process(target=say_ready, args=(outbox,))
    child.start()
    pid: int = outbox.get(timeout=START_TIMEOUT_S)
    child.join()
    outbox.close()
    return pid


def pickle_round_trip(batch: Sequence[Any]) -> int:
    """Pickle a batch and unpickle it, as a queue does at its two ends; the bytes it took."""
    data = pickle.dumps(list(batch), protocol=pickle.HIGHEST_PROTOCOL)
    pickle.loads(data)
    return len(data)


def transform_batch(documents: Sequence[Mapping[str, Any]], transform: Transform) -> int:
    """Run ``transform`` over every document: the work a worker does on a batch."""
    return len([transform(document) for document in documents])


async def price_of_a_batch(
    lab: Lab, *, batch_size: int = BATCH_SIZE, repeats: int = 7
) -> list[Spread]:
    """Each in milliseconds, ``repeats`` times: start a process; pickle a batch; transform it.

    The batch is the collection's first ``batch_size`` documents, decoded and as raw
    BSON. ``params``: ``what`` (start, pickle, transform), and ``bytes`` for a pickle.
    """
    decoded = await first_batch(lab, batch_size)
    raw = await first_batch(lab, batch_size, raw=True)
    size = len(decoded)
    sizes = {"decoded": len(pickle.dumps(decoded)), "raw": len(pickle.dumps(raw))}

    def step(work: Callable[[], object]) -> Callable[[], Any]:
        async def run() -> int:
            work()
            return size

        return run

    def start(context: WorkerContext) -> Callable[[], Any]:
        async def run() -> int:
            await asyncio.to_thread(start_a_process, context)
            return 0

        return run

    forked = worker_processes()
    steps: list[Setting] = [
        (
            "start a process (spawn)",
            {"what": "start", "kind": "spawn"},
            start(SPAWN),
        ),
        (
            f"start a process, the kit's way ({forked.get_start_method()})",
            {"what": "start", "kind": "kit", "method": forked.get_start_method()},
            start(forked),
        ),
        (
            f"pickle + unpickle {size:,} decoded documents",
            {"what": "pickle", "kind": "decoded", "bytes": sizes["decoded"]},
            step(lambda: pickle_round_trip(decoded)),
        ),
        (
            f"pickle + unpickle {size:,} raw BSON documents",
            {"what": "pickle", "kind": "raw", "bytes": sizes["raw"]},
            step(lambda: pickle_round_trip(raw)),
        ),
        (
            f"validate {size:,} documents (document_to_row)",
            {"what": "transform", "transform": "validate"},
            step(lambda: transform_batch(decoded, document_to_row)),
        ),
        (
            f"{HEAVY} {size:,} documents",
            {"what": "transform", "transform": HEAVY},
            step(lambda: transform_batch(decoded, LESSON_TRANSFORMS[HEAVY])),
        ),
    ]
    return await repeat_rounds(steps, repeats=repeats)


def _step(price: Sequence[Spread], what: str, **match: str) -> Spread:
    for spread in price:
        if spread.params["what"] == what and all(
            spread.params.get(k) == v for k, v in match.items()
        ):
            return spread
    raise KeyError(f"no {what} {match} among {[s.label for s in price]}")


def _kit_start_note(spawned: Spread, kit: Spread) -> str:
    """Why the kit's start costs what it does (a fork server, where the OS has one)."""
    if kit.params["method"] != "forkserver":
        return "this OS has no fork server, so the kit spawns too"
    return (
        f"forked from a fork server that imported the package once, at its first use "
        f"({ms(kit.runs[0].seconds)} for the first start, which started that server), "
        f"{ratio(spawned.seconds / kit.seconds)} less time than spawning"
    )


def kib(size: float) -> str:
    return f"{size / 1024:,.0f} KiB" if size >= 10 * 1024 else f"{size / 1024:.1f} KiB"


def price_note(price: Sequence[Spread], *, batch_size: int = BATCH_SIZE) -> str:
    """Markdown: what starting a process and sending a batch cost, beside a batch's work."""
    start = _step(price, "start", kind="spawn")
    kit = _step(price, "start", kind="kit")
    decoded = _step(price, "pickle", kind="decoded")
    raw = _step(price, "pickle", kind="raw")
    light = _step(price, "transform", transform="validate")
    heavy = _step(price, "transform", transform=HEAVY)
    send = raw.seconds
    return "\n".join(
        [
            f"- **Starting one process** took **{ms(start.seconds)}** (median of "
            f"{len(start.runs)}): a new interpreter that imports the package before it runs a "
            f"line of the lesson's code; {ratio(start.seconds / heavy.seconds)} one heavy batch. "
            f"The kit's way (`{kit.params['method']}`) took **{ms(kit.seconds)}**: "
            f"{_kit_start_note(start, kit)}.",
            f"- **Sending a batch of {batch_size:,}:** decoded documents pickle to "
            f"{kib(decoded.params['bytes'])} and take **{ms(decoded.seconds)}** to pickle and "
            f"unpickle; raw BSON {kib(raw.params['bytes'])}, **{ms(send)}** "
            f"({ratio(decoded.seconds / send)} less time).",
            f"- **Working on the same batch:** validate **{ms(light.seconds)}** "
            f"({ratio(light.seconds / send)} sending it raw); {HEAVY} **{ms(heavy.seconds)}** "
            f"({heavy.seconds / send:,.0f}{TIMES} sending it raw).",
        ]
    )


# -- where processes help: Python work on 1 to N workers ---------------------------------------


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def live_cpu_s(pids: Sequence[int], *, proc: Path = PROC) -> float | None:
    """CPU time (user and system) that running processes used so far; None without ``/proc``."""
    ticks = 0
    for pid in pids:
        try:
            stat = (proc / str(pid) / "stat").read_text(encoding="ascii")
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat
    return ticks / os.sysconf("SC_CLK_TCK")


#: How often :class:`_WorkerCpu` reads the workers' CPU: what it can miss of each one's end.
CPU_SAMPLE_S = 0.01


class _WorkerCpu:
    """The CPU time worker processes used, read from ``/proc`` while they run.

    The kit forks its workers from a fork server, so they are that server's children,
    not this process's: their CPU never reaches ``RUSAGE_CHILDREN``. The last reading of
    each is kept; what a worker used in its last :data:`CPU_SAMPLE_S` is missed.
    """

    def __init__(self, pids: Sequence[int]) -> None:
        self._last = {pid: live_cpu_s([pid]) or 0.0 for pid in pids}
        self.at_start = sum(self._last.values())

    def read(self) -> None:
        for pid in self._last:
            now = live_cpu_s([pid])
            if now is not None:
                self._last[pid] = now

    async def follow(self) -> None:
        """Read every :data:`CPU_SAMPLE_S` until cancelled."""
        while True:
            self.read()
            await asyncio.sleep(CPU_SAMPLE_S)

    @property
    def used_s(self) -> float:
        return sum(self._last.values()) - self.at_start


async def cpu_run(
    backend: Backend, workers: int, batches: Sequence[Sequence[Any]], *, transform: str = HEAVY
) -> Measurement:
    """Push in-memory ``batches`` through the kit's cluster, rows thrown away; the work timed.

    The clock starts once every worker is ready: section 2 timed the start-up. ``extra``:
    ``cpu_share``, the CPU of this process and its worker processes over the work, in
    cores (the workers' start-up left out; theirs is read from ``/proc`` while they run,
    see :class:`_WorkerCpu`); ``start_s``; ``machine_busy``, the share of all CPUs busy,
    every program included.
    """
    job = simulation_job(discarding_sink, LESSON_TRANSFORMS[transform])
    cluster = ClusterMigrationFactory.create(backend, workers, job=job)
    before = {child.pid for child in multiprocessing.active_children()}
    asked = time.perf_counter()
    await cluster.start()
    ready = time.perf_counter()
    pids = [c.pid for c in multiprocessing.active_children() if c.pid and c.pid not in before]
    worker_cpu = _WorkerCpu(pids)
    own, ticks = _own_cpu_s(), machine_cpu_ticks()
    sampling = asyncio.create_task(worker_cpu.follow())
    try:
        for batch in batches:
            await cluster.submit(batch)
        await cluster.close()
    except BaseException:
        await cluster.abort()
        raise
    finally:
        sampling.cancel()
        await asyncio.gather(sampling, return_exceptions=True)
    seconds = time.perf_counter() - ready
    used = _own_cpu_s() - own + worker_cpu.used_s
    rows = sum(stats.rows_written for stats in cluster.stats)
    extra = {
        "cpu_share": used / seconds if seconds > 0 else 0.0,
        "start_s": ready - asked,
        "machine_busy": busy_share(ticks, machine_cpu_ticks()),
    }
    params = {"backend": backend, "workers": workers, "transform": transform}
    return Measurement(f"{backend} x{workers}", rows, seconds, params, extra)


async def cpu_runs(
    backends: Sequence[Backend],
    workers: Sequence[int],
    *,
    rows: int,
    transform: str = HEAVY,
    batch_size: int = CPU_BATCH_SIZE,
    repeats: int = REPEATS,
) -> list[Spread]:
    """:func:`cpu_run` of every backend and worker count, in ``repeats`` whole rounds."""
    batches = in_batches(user_documents(rows), batch_size)
    runs: dict[tuple[str, int], list[Measurement]] = {
        (backend, count): [] for backend in backends for count in workers
    }
    for _ in range(max(1, repeats)):
        for backend, count in runs:
            run = await cpu_run(backend, count, batches, transform=transform)
            runs[(backend, count)].append(run)
    return [
        Spread(f"{backend} x{count}", measured[0].params, tuple(measured))
        for (backend, count), measured in runs.items()
    ]


def cores(spreads: Sequence[Spread]) -> dict[int, float]:
    """The median CPU a setting used, in cores, by worker count."""
    return {n: s.median_of("cpu_share") or 0.0 for n, s in sorted(by_workers(spreads).items())}


#: The names the CPU-bound lines go by in the lesson's charts and sentences.
WORKER_NAMES = {"asyncio": "asyncio tasks", "threading": "threads", "multiprocessing": "processes"}


def cpu_groups(spreads: Sequence[Spread]) -> dict[str, list[Spread]]:
    """The CPU-bound runs by backend, named as the chart's legend names them."""
    return {
        f"{WORKER_NAMES.get(name, name)} ({name})": group
        for name, group in series(spreads, "backend").items()
    }


def _best(spreads: Sequence[Spread]) -> Spread:
    return max(spreads, key=lambda spread: spread.rate)


def top_gain(spreads: Sequence[Spread]) -> tuple[int, float]:
    """The worker count above the fewest that gained most, and its gain (the fewest alone: 1.0)."""
    gains = speedups(spreads)
    more = {count: gain for count, gain in gains.items() if count > min(gains)}
    if not more:
        return min(gains), 1.0
    count = max(more, key=lambda n: more[n])
    return count, more[count]


def workers_name(count: int, unit: str = "workers") -> str:
    """``1 worker``, ``4 workers``."""
    return f"{count} {unit.removesuffix('s') if count == 1 else unit}"


def cpu_note(spreads: Sequence[Spread], *, cpus: int | None = None) -> str:
    """Markdown: each backend's speed-ups and cores, the processes against the GIL-bound ones."""
    cpus = cpus or os.cpu_count() or 1
    groups = series(spreads, "backend")
    lines = []
    for name, group in groups.items():
        gains = ", ".join(f"{n}: {ratio(g)}" for n, g in speedups(group).items() if n > 1)
        used = " / ".join(f"{c:.2f}" for c in cores(group).values())
        counts = " / ".join(str(n) for n in sorted(by_workers(group)))
        fewest = by_workers(group)[min(by_workers(group))]
        lines.append(
            f"- **{WORKER_NAMES.get(name, name).capitalize()}** ({rows_per_s(fewest.rate)} with "
            f"{fewest.workers}): {gains}; CPU used {used} cores with {counts}."
        )
    processes = groups.get("multiprocessing")
    bound = [group for name, group in groups.items() if name != "multiprocessing"]
    if processes and bound:
        best = _best(processes)
        top = max(max(cores(group).values()) for group in bound)
        rivals = "; ".join(
            f"{ratio(best.rate / _best(group).rate)} the fastest {WORKER_NAMES.get(name, name)} "
            f"({_best(group).workers})"
            for name, group in groups.items()
            if name != "multiprocessing"
        )
        lines.append(
            f"- The fastest processes ({best.workers}) ran {rivals}. Threads and tasks never "
            f"used more than **{top:.2f} cores**: one thread at a time runs Python (the GIL). "
            f"Processes used up to **{max(cores(processes).values()):.2f}** of this machine's "
            f"{cpus} CPUs."
        )
        lines += _beyond_cpus(processes, cpus=cpus)
    return "\n".join(lines)


def _beyond_cpus(processes: Sequence[Spread], *, cpus: int) -> list[str]:
    """A sentence on the process counts above the machine's CPUs, and on a crowded machine."""
    runs, gains, used = by_workers(processes), speedups(processes), cores(processes)
    lines = []
    within = [n for n in runs if n <= cpus]
    above = [n for n in runs if n > cpus]
    if within and above:
        top = max(within)
        lines.append(
            f"- {max(above)} processes on {cpus} CPUs: {ratio(gains[max(above)])}, against "
            f"{ratio(gains[top])} with {top}: beyond the CPUs, processes only take turns."
        )
    crowded = [
        n
        for n, spread in runs.items()
        if (spread.median_of("machine_busy") or 0.0) >= CPU_SATURATED
        and used[n] < CPU_SATURATED * min(n, cpus)
    ]
    if crowded:
        lines.append(
            f"- During the runs with {', '.join(str(n) for n in crowded)} processes every CPU "
            f"was busy, other programs included, and the processes got less than "
            f"{'a core each' if max(crowded) <= cpus else 'the whole machine'}: their "
            f"speed-up shows the share of the CPUs they were given."
        )
    return lines


# -- the package: migrate(backend="multiprocessing") --------------------------------------------


def held_after_first(run: Measurement) -> float | None:
    """The share of the time from the first batch taken to the last committed that the
    workers held a batch: the copy's busy share without the wait for the first batch.

    The wait (the processes' start-up, or the source's first answer) shows on its own in
    :func:`first_wait_s`; left in, it would make busy workers look starved.
    """
    if run.report is None:
        return None
    spans = [span for stats in run.report.per_worker for span in stats.spans]
    if not spans:
        return None
    window = max(end for _, end in spans) - min(start for start, _ in spans)
    held = sum(end - start for start, end in spans)
    return held / (window * run.report.workers) if window > 0 else None


def busy_after_first(spread: Spread) -> float | None:
    """The median of :func:`held_after_first` over the runs (else their ``busy_share``)."""
    shares = [share for run in spread.runs if (share := held_after_first(run)) is not None]
    return statistics.median(shares) if shares else spread.median_of("busy_share")


def bound_by(spread: Spread, *, read_rate: float, cpus: int | None = None) -> str:
    """Which resource set a migration's pace, from its own runs.

    Near the source's own read rate: the source. Workers often without a batch in hand
    once the first had arrived: the reader fed them too slowly. More workers than CPUs:
    the CPUs. Else the workers' own work.
    """
    cpus = cpus or os.cpu_count() or 1
    if spread.rate >= NEAR_READ_SHARE * read_rate:
        return SOURCE_READ
    busy = busy_after_first(spread)
    if busy is not None and busy < BUSY_SHARE:
        return READER
    if spread.workers > cpus:
        return f"the CPUs ({spread.workers} workers on {cpus} CPUs take turns)"
    return WORKERS_CPU


def first_wait_s(spread: Spread) -> float:
    """The median time from ``migrate()`` called to the first batch in a worker's hands."""
    return statistics.median(first_batch_s(run) for run in spread.runs)


def _limits_table(spreads: Sequence[Spread], *, read: Spread) -> list[str]:
    lines = [
        "| run | rows/s (median) | first batch after | workers held a batch, from then on "
        "| bound by |"
    ]
    lines.append("|---|---:|---:|---:|---|")
    for spread in spreads:
        busy = busy_after_first(spread) or 0.0
        first = first_wait_s(spread)
        lines.append(
            f"| {spread.params['backend']} {spread.params['transform']} x{spread.workers} | "
            f"{spread.rate:,.0f} | {first:.2f} s | {busy:.0%} of the time | "
            f"{bound_by(spread, read_rate=read.rate)} |"
        )
    return lines


def package_note(heavy: Sequence[Spread], light: Sequence[Spread], *, read: Spread) -> str:
    """Markdown: the kit's process workers on the heavy and the light transform, and limits."""
    lines = []
    for name, group in series(heavy, "backend").items():
        gains = ", ".join(f"{n}: {ratio(g)}" for n, g in speedups(group).items() if n > 1)
        fewest = by_workers(group)[min(by_workers(group))]
        lines.append(
            f"- **{HEAVY}, {name}:** {fewest.workers} worker {rows_per_s(fewest.rate)}; "
            f"{gains} (start-up included)."
        )
    for name, group in series(light, "backend").items():
        runs = by_workers(group)
        rates = "; ".join(f"{n}: {runs[n].rate:,.0f}" for n in sorted(runs))
        best = _best(group)
        lines.append(
            f"- **validate, {name}:** {rates} rows/s, the fastest at "
            f"{best.rate / read.rate:.0%} of the source alone ({rows_per_s(read.rate)})."
        )
    groups = series(light, "backend")
    if {"asyncio", "multiprocessing"} <= set(groups):
        waits = {name: max(first_wait_s(s) for s in group) for name, group in groups.items()}
        processes, tasks = waits["multiprocessing"], waits["asyncio"]
        why = (
            "the difference is the processes' start-up"
            if processes > tasks + START_SHOWS_S
            else "the processes' start-up hides behind the wait for the source's first batch"
        )
        lines.append(
            f"- The first batch reached a worker up to **{processes:.2f} s** after "
            f"`migrate()` was called with processes, **{tasks:.2f} s** with asyncio "
            f"(medians): {why}."
        )
    return "\n".join([*lines, "", *_limits_table([*heavy, *light], read=read)])


def recap(
    price: Sequence[Spread],
    cpu: Sequence[Spread],
    heavy: Sequence[Spread],
    light: Sequence[Spread],
    *,
    read: Spread,
) -> str:
    """The lesson's three lines, each number from the runs."""
    start, send = _step(price, "start", kind="spawn"), _step(price, "pickle", kind="raw")
    kit = _step(price, "start", kind="kit")
    work = _step(price, "transform", transform=HEAVY)
    groups = series(cpu, "backend")
    processes = groups["multiprocessing"]
    count, gain = top_gain(processes)
    others = [
        f"{WORKER_NAMES.get(name, name)} {ratio(top_gain(group)[1])}"
        for name, group in groups.items()
        if name != "multiprocessing"
    ]
    top = max(
        max(cores(group).values()) for name, group in groups.items() if name != "multiprocessing"
    )
    kit_count, kit_gain = top_gain(series(heavy, "backend")["multiprocessing"])
    light_groups = series(light, "backend")
    light_line = ""
    if {"asyncio", "multiprocessing"} <= set(light_groups):
        mp, aio = _best(light_groups["multiprocessing"]), _best(light_groups["asyncio"])
        light_line = (
            f"; with validate the fastest processes ran at {ratio(mp.rate / aio.rate)} the "
            f"fastest asyncio run, bound by {bound_by(mp, read_rate=read.rate)}"
        )
    return "\n".join(
        [
            f"1. A spawned process is a new interpreter that imports its code by module and name "
            f"(a function from a cell lives in `__main__` and fails): starting one took "
            f"{ms(start.seconds)} (the kit's way, `{kit.params['method']}`: {ms(kit.seconds)}); "
            f"sending it a batch as raw BSON {ms(send.seconds)}, against "
            f"{ms(work.seconds)} of heavy work on it.",
            f"2. Processes run Python in parallel: the heavy transform ran {ratio(gain)} as fast "
            f"on {workers_name(count, 'processes')} as on one; {', '.join(others)}, never above "
            f"{top:.2f} cores (the GIL).",
            f"3. `migrate(backend='multiprocessing')` does the same with "
            f"`ClusterMigrationMultiprocessing` (workers forked from a fork server that "
            f"imported the package once, a `multiprocessing.Queue` per worker, raw BSON): "
            f"{ratio(kit_gain)} with {workers_name(kit_count)} on the heavy transform{light_line}.",
        ]
    )


def relabel_cores_axis(figure: Any) -> Any:
    """:func:`~migrationkit.workshop.charts.speedup`'s CPU panel counts worker processes too."""
    axes = figure.axes
    if len(axes) > 1:
        axes[1].set_ylabel("CPU used: this process and its workers (cores)")
    return figure
