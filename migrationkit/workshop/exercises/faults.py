"""Real PostgreSQL faults, for exercise 5's check and its notebook.

The check (:mod:`migrationkit.workshop.exercises.retry_writes`) holds the steps and hints a
learner sees; what causes and records the faults lives here, so that the check's
notebook can use it too. :func:`terminate` ends server processes with
``pg_terminate_backend`` and waits until they are gone; :func:`noticed` waits until
the client has seen it. :class:`FaultyRun` plugs the learner's ``write_with_retry``
into a real migration (through :func:`retrying_sink`) and terminates every worker's
connection once, mid-run; :func:`attempts_timeline` draws what happened.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg

from migrationkit._executors.worker import Sink, SinkOpener
from migrationkit._normalize.rows import PreparedBatch, Rejection
from migrationkit._retry import retry_listener
from migrationkit._source.connection import CONNECT_TIMEOUT_S
from migrationkit._target.loader import BatchLoader, PostgresTarget
from migrationkit.workshop.exercises.feedback import counted

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: How long to wait for a terminated server process to be gone.
TERMINATE_WAIT_S = 5.0
_POLL_S = 0.01

WriteWithRetry = Callable[..., Awaitable[Any]]


# -- the real migration, with a fault mid-run ------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One call of the ``write`` the sink hands the learner's function (clock: monotonic)."""

    worker: int
    started: float
    ended: float
    error: str = ""  # empty: the batch landed


@dataclass(frozen=True)
class Wait:
    """One ``sleep`` the learner's function asked for."""

    worker: int
    started: float
    seconds: float


@dataclass
class FaultyRun:
    """A real migration through the learner's ``write_with_retry``, with a fault mid-run.

    :meth:`sink` writes each batch with ``UserPostgresRepository.write_batch``, through
    the learner's function. Once ``kill_after`` batches have landed, the next attempts
    wait (up to ``gather_s``) until every worker is about to write, then every worker's
    connection is terminated (``pg_terminate_backend``): a real fault that each worker
    has to ride out. Every attempt, wait and kill is recorded here, for
    :meth:`summary` and :func:`attempts_timeline`. One run per migration, on the
    asyncio backend (the workers share this object and its event loop).
    """

    kill_after: int = 3
    gather_s: float = 1.0
    application_name: str = field(default_factory=lambda: f"mk-ex5-{uuid.uuid4().hex[:8]}")
    attempts: list[Attempt] = field(default_factory=list)
    waits: list[Wait] = field(default_factory=list)
    killed: int = 0
    killed_at: float | None = None
    workers: int = 0  # sinks opened so far
    _gathered: int = field(default=0, init=False, repr=False)
    _struck: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)

    def sink(self, write_with_retry: WriteWithRetry) -> SinkOpener:
        """A sink opener for ``migrate(open_sink=...)`` that writes through ``write_with_retry``."""
        return functools.partial(retrying_sink, run=self, write_with_retry=write_with_retry)

    @property
    def landed(self) -> list[Attempt]:
        return [attempt for attempt in self.attempts if not attempt.error]

    @property
    def failures(self) -> list[Attempt]:
        return [attempt for attempt in self.attempts if attempt.error]

    async def strike_if_due(self, dsn: str, connection: asyncpg.Connection) -> None:
        """Once ``kill_after`` batches landed: gather the workers, terminate their connections."""
        if self._struck.is_set() or len(self.landed) < self.kill_after:
            return
        self._gathered += 1
        if self._gathered == 1:  # the first to arrive strikes; the others are hit waiting
            await self._strike(dsn)
        await self._struck.wait()
        await noticed(connection)

    async def _strike(self, dsn: str) -> None:
        try:
            for _ in range(int(self.gather_s / _POLL_S)):
                if self._gathered >= self.workers:
                    break
                await asyncio.sleep(_POLL_S)
            self.killed_at = time.monotonic()
            self.killed = await terminate_application(dsn, self.application_name)
        finally:
            self._struck.set()

    def summary(self) -> str:
        """What the fault did, and what the learner's function did about it."""
        if self.killed_at is None:
            return f"no fault struck: fewer than {self.kill_after} batches landed"
        errors = sorted({attempt.error.split(":")[0] for attempt in self.failures})
        return "\n".join(
            [
                f"the fault: after {self.kill_after} batches had landed, "
                f"{counted(self.killed, 'worker connection')} terminated (pg_terminate_backend)",
                f"your write_with_retry: {counted(len(self.attempts), 'attempt')}, "
                f"{len(self.failures)} failed ({', '.join(errors) or 'none'}), "
                f"{counted(len(self.waits), 'wait')} "
                f"({seconds_listed([wait.seconds for wait in self.waits])}), "
                f"{counted(len(self.landed), 'batch', 'batches')} landed",
            ]
        )


@asynccontextmanager
async def retrying_sink(
    target: PostgresTarget, *, run: FaultyRun, write_with_retry: WriteWithRetry
) -> AsyncIterator[Sink]:
    """A :data:`SinkOpener`: each batch is written through the learner's function."""
    worker = run.workers
    run.workers += 1

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(
            target.pg_dsn,
            timeout=CONNECT_TIMEOUT_S,
            server_settings={"application_name": run.application_name},
        )

    async def sleep(seconds: float) -> None:
        run.waits.append(Wait(worker, time.monotonic(), seconds))
        if (listener := retry_listener.get()) is not None:
            listener("writing a batch through write_with_retry")  # counted in the report
        await asyncio.sleep(seconds)

    async def write(batch: PreparedBatch) -> list[Rejection]:
        async def attempt(connection: asyncpg.Connection) -> list[Rejection]:
            started = time.monotonic()
            try:
                await run.strike_if_due(target.pg_dsn, connection)
                loader = BatchLoader(connection, mapping=target.mapping, writer=target.writer)
                rejections = await loader.write_batch(batch)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                run.attempts.append(Attempt(worker, started, time.monotonic(), error))
                raise
            run.attempts.append(Attempt(worker, started, time.monotonic()))
            return rejections

        rejections: list[Rejection] = await write_with_retry(connect, attempt, sleep=sleep)
        return rejections

    yield write


def attempts_timeline(run: FaultyRun, *, title: str = "") -> Figure:
    """One lane per worker: each attempt (landed or failed), each wait, and the fault."""
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from migrationkit.workshop.plots import new_figure

    fig, ax = new_figure(width=9.0, height=max(2.4, 0.5 * run.workers + 1.2))
    origin = min((a.started for a in run.attempts), default=0.0)
    wait_style: dict[str, Any] = {"facecolor": "0.85", "hatch": "///", "edgecolor": "0.45"}
    for attempt in run.attempts:
        ax.broken_barh(
            [(attempt.started - origin, max(attempt.ended - attempt.started, 1e-3))],
            (attempt.worker - 0.35, 0.7),
            facecolor="C3" if attempt.error else "C2",
            edgecolor="white",
        )
    for wait in run.waits:
        ax.broken_barh(
            [(wait.started - origin, wait.seconds)], (wait.worker - 0.2, 0.4), **wait_style
        )
    legend: list[Artist] = [
        Patch(facecolor="C2", label="attempt that landed"),
        Patch(facecolor="C3", label="attempt that failed"),
        Patch(**wait_style, label="your wait (sleep)"),
    ]
    if run.killed_at is not None:
        ax.axvline(run.killed_at - origin, color="C3", linestyle="--")
        label = f"{counted(run.killed, 'connection')} terminated"
        legend.append(Line2D([], [], color="C3", linestyle="--", label=label))
    ax.set_yticks(range(run.workers), [f"worker {w}" for w in range(run.workers)])
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first attempt")
    ax.set_title(title or "Your write_with_retry in a real migration, with a fault mid-run")
    ax.legend(handles=legend, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


# -- real faults on the real server ---------------------------------------------------


async def terminate(admin: asyncpg.Connection, pids: list[int]) -> int:
    """``pg_terminate_backend`` each server process in ``pids``, and wait until it is gone.

    Returns how many were terminated. Waiting makes the fault certain: the next query
    on a terminated connection fails, it cannot slip through before the process exits.
    """
    killed = await admin.fetchval(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM unnest($1::int[]) AS pid",
        pids,
    )
    for _ in range(int(TERMINATE_WAIT_S / _POLL_S)):
        gone = not await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids
        )
        if gone:
            break
        await asyncio.sleep(_POLL_S)
    return int(killed)


async def terminate_application(dsn: str, application_name: str) -> int:
    """Terminate every connection that gave ``application_name``; how many there were."""
    admin = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
    try:
        pids = await admin.fetchval(
            "SELECT coalesce(array_agg(pid), '{}') FROM pg_stat_activity "
            "WHERE application_name = $1",
            application_name,
        )
        return await terminate(admin, list(pids))
    finally:
        await admin.close()


async def noticed(connection: asyncpg.Connection) -> None:
    """Wait (a little) until the client has seen that the server closed ``connection``.

    Then the next query fails cleanly, with "connection is closed", instead of racing
    the news of the close.
    """
    for _ in range(int(1.0 / _POLL_S)):
        if connection.is_closed():
            return
        await asyncio.sleep(_POLL_S)


def seconds_listed(delays: list[float]) -> str:
    """``0.05 s, 0.10 s, …`` (the first eight), or ``never``."""
    if not delays:
        return "never"
    return ", ".join(f"{d:.2f} s" for d in delays[:8]) + (" …" if len(delays) > 8 else "")
