# Your copy of the exercise: fill in the parts marked TODO, then run the check
# in the notebook. (Generated from solutions/retry_writes.py by
# `python -m migrationkit.workshop.exercises.stubs`; `--reset retry_writes` restores it.)
"""Exercise 5 · Ride out a dropped connection: retry a write, but not every error.

A long migration meets faults that pass: PostgreSQL restarts, a proxy drops the
connection, an operator ends a session. The batch being written did not land (its
transaction was rolled back), so the worker can open a new connection, wait a
little, and write it again. Other errors do not pass: an age out of range is still
out of range on the tenth try, so they go straight up to the caller.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

T = TypeVar("T")

#: The faults worth another try: on a new connection, a little later, the write can succeed.
TRANSIENT: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,  # the connection was lost or refused (SQLSTATE 08…)
    asyncpg.AdminShutdownError,  # a restart or an operator ended the session (57P01)
    asyncpg.CannotConnectNowError,  # the server is starting up or shutting down (57P03)
    asyncpg.InterfaceError,  # "connection is closed": the connection died under us
    asyncpg.InternalClientError,  # "another operation is in progress": the same, told late
    OSError,  # the network: connection refused, reset, unreachable
)


async def write_with_retry(
    connect: Callable[[], Awaitable[asyncpg.Connection]],
    write: Callable[[asyncpg.Connection], Awaitable[T]],
    *,
    attempts: int = 5,
    first_delay_s: float = 0.05,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """Return ``await write(connection)``, trying up to ``attempts`` times in all.

    - Each try opens a new connection with ``await connect()`` and closes it when
      done, whether the write worked or not. A connection the server has closed
      stays closed: writing on it again fails every time.
    - ``write`` writes one batch in one transaction, so a try that fails leaves
      nothing behind, and trying again cannot double a row.
    - After a :data:`TRANSIENT` error, wait before the next try: ``first_delay_s``
      the first time, then twice as long each time (exponential backoff), so a
      server that needs longer to come back gets longer, and fewer knocks.
      Wait with ``await sleep(seconds)``: the check passes its own ``sleep`` to see
      your waits without waiting for them.
    - After the last try, raise its error: returning would tell the worker the
      batch landed when it did not.
    - Any other error (``asyncpg.DataError``: a value PostgreSQL refuses) is raised
      at once: it would fail the same way every time.
    """
    # TODO: write this part.
    raise NotImplementedError("retry_writes: write this part")
