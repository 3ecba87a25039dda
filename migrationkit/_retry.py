"""When to retry: transient faults, and a bounded exponential backoff with jitter.

A fault is transient when trying again later can succeed: a dropped connection,
a server restarting. Anything else (bad SQL, bad data) is raised at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import asyncpg
from pymongo.errors import AutoReconnect, ConnectionFailure, CursorNotFound

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
