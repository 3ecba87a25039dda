"""Retrying transient faults: bounded exponential backoff with jitter.

A fault is transient when trying again later can succeed: a dropped connection,
a server restarting. Anything else (bad SQL, bad data) is raised at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
from pymongo.errors import AutoReconnect, ConnectionFailure, CursorNotFound

from migrationkit._errors import TransientFaultError

log = logging.getLogger(__name__)
T = TypeVar("T")

POSTGRES_TRANSIENT: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # connection lost or refused (SQLSTATE class 08)
    asyncpg.CannotConnectNowError,  # the server is starting up or shutting down
    asyncpg.AdminShutdownError,  # pg_ctl stop/restart ended our session
    asyncpg.CrashShutdownError,
    asyncpg.InterfaceError,  # "connection is closed" after the above
    # An idle connection that got the server's shutdown notice answers its next
    # query with "another operation is in progress": only a new connection helps.
    asyncpg.InternalClientError,
    OSError,  # refused, reset, unreachable
    TimeoutError,
)
MONGO_TRANSIENT: tuple[type[BaseException], ...] = (
    AutoReconnect,
    ConnectionFailure,
    CursorNotFound,
)


#: Told about every retry in the current context (a worker reports them as events).
retry_listener: ContextVar[Callable[[str], object] | None] = ContextVar(
    "retry_listener", default=None
)


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to try, and how long to wait between tries (doubling, capped)."""

    attempts: int = 8
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0

    def delays(self) -> Iterator[float]:
        """One wait before each retry: half the capped exponential, plus up to as much jitter."""
        for attempt in range(self.attempts - 1):
            ceiling = min(self.max_delay_s, self.base_delay_s * 2**attempt)
            yield ceiling / 2 + random.uniform(0, ceiling / 2)


async def retry(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    transient: tuple[type[BaseException], ...],
    what: str,
    before_retry: Callable[[], Awaitable[None]] | None = None,
) -> T:
    """Await ``call()``, retrying transient faults; then one :class:`TransientFaultError`."""
    delays = policy.delays()
    while True:
        try:
            return await call()
        except transient as exc:
            delay = next(delays, None)
            if delay is None:
                raise TransientFaultError(
                    f"{what} failed {policy.attempts} times; last error: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            log.warning(
                "%s failed (%s: %s); retrying in %.2f s", what, type(exc).__name__, exc, delay
            )
            if (listener := retry_listener.get()) is not None:
                listener(what)
            await asyncio.sleep(delay)
            if before_retry is not None:
                try:
                    await before_retry()
                except transient as again:
                    log.warning("%s: could not reconnect yet (%s)", what, type(again).__name__)
