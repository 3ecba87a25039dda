"""PostgreSQL connections: an asyncpg pool handler and a connection that survives restarts.

Both translate "cannot connect" driver errors into :class:`ServerUnavailableError`
with the address redacted, so a wrong password never reaches a log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self, TypeVar

import asyncpg

from migrationkit._errors import ServerUnavailableError, TransientFaultError
from migrationkit._redact import redact_uri
from migrationkit._retry import POSTGRES_TRANSIENT, RetryPolicy, retry_listener

CONNECT_TIMEOUT_S = 10.0
#: How long to wait for PostgreSQL to acknowledge closing a connection.
CLOSE_TIMEOUT_S = 2.0
T = TypeVar("T")
log = logging.getLogger(__name__)


class PostgresConnectionHandler:
    """``async with PostgresConnectionHandler(dsn) as pool:`` — an open asyncpg pool."""

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 4) -> None:
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None

    async def __aenter__(self) -> asyncpg.Pool:
        self._pool = await open_postgres_pool(
            self._dsn, min_size=self._min_size, max_size=self._max_size
        )
        return self._pool

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


async def open_postgres_pool(dsn: str, *, min_size: int, max_size: int) -> asyncpg.Pool:
    """Create an asyncpg pool, turning connection failures into one clear error."""
    try:
        pool: asyncpg.Pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, timeout=CONNECT_TIMEOUT_S
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise postgres_unreachable(dsn, exc) from exc
    return pool


def postgres_unreachable(dsn: str, exc: BaseException) -> ServerUnavailableError:
    """One clear error for a failed connection, with the password hidden."""
    return ServerUnavailableError(
        f"cannot reach PostgreSQL at {redact_uri(dsn)}: "
        f"{type(exc).__name__}: {redact_uri(str(exc))}"
    )


class ReconnectingConnection:
    """One PostgreSQL connection that survives server restarts.

    ``await connection.run(operation, what=...)`` calls ``operation(asyncpg_connection)``
    and, after a transient fault, re-opens the connection and calls it again, with
    backoff (see :mod:`migrationkit._retry`). ``operation`` must be safe to repeat: a
    whole transaction, not half of one.
    """

    def __init__(self, dsn: str, *, policy: RetryPolicy | None = None) -> None:
        self._dsn = dsn
        self._policy = policy or RetryPolicy()
        self._connection: asyncpg.Connection | None = None

    async def __aenter__(self) -> Self:
        # The first connection is not retried: a server that is down before the run
        # starts is a setting to fix, reported at once, not a fault to wait out.
        try:
            await self._reconnect()
        except (*POSTGRES_TRANSIENT, asyncpg.PostgresError) as exc:
            raise postgres_unreachable(self._dsn, exc) from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is None or connection.is_closed():
            return
        try:
            await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT_S)
        except BaseException:
            connection.terminate()  # stuck mid-operation (e.g. after a cancel): cut it
            raise

    def sibling(self) -> ReconnectingConnection:
        """Another connection to the same server, with the same retry policy (unopened)."""
        return ReconnectingConnection(self._dsn, policy=self._policy)

    async def run(self, operation: Callable[[asyncpg.Connection], Awaitable[T]], *, what: str) -> T:
        return await retry(
            lambda: operation(self._open()),
            policy=self._policy,
            transient=POSTGRES_TRANSIENT,
            what=what,
            before_retry=self._reconnect,
        )

    def _open(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            raise asyncpg.InterfaceError("the connection is closed")
        return self._connection

    async def _reconnect(self) -> None:
        if self._connection is not None:
            self._connection.terminate()
            self._connection = None
        self._connection = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_S)


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
