"""Check for exercise 5: ``write_with_retry`` in the learner's ``retry_writes.py``.

Every fault is real, on the real PostgreSQL: the check terminates the learner's
connection in the middle of a write (``pg_terminate_backend`` from a second
connection), points it at a port where no server listens, and feeds it a value
PostgreSQL refuses. It hands the learner's function its own ``sleep``, which
records each wait instead of waiting, so backoff is judged on the delays asked
for, never on the clock. Last, :class:`~migrationkit.workshop.exercises.faults.FaultyRun`
plugs the function into a real migration and terminates every worker's connection
once, mid-run. The faults themselves live in :mod:`migrationkit.workshop.exercises.faults`.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, cast

import asyncpg

from migrationkit._source.connection import CONNECT_TIMEOUT_S
from migrationkit._target.writers import quote_identifier
from migrationkit.workshop.exercises.faults import (
    FaultyRun,
    WriteWithRetry,
    noticed,
    seconds_listed,
    terminate,
)
from migrationkit.workshop.exercises.feedback import (
    Feedback,
    Hint,
    Step,
    counted,
    learner_code,
    run_steps,
)
from migrationkit.workshop.exercises.learner import attribute
from migrationkit.workshop.exercises.plug import run_real_migration
from migrationkit.workshop.lessons.lab import open_lab

TITLE = "Exercise 5 · a write that survives a dropped connection"
STUB_HINT = (
    "Loop for attempt 1 to `attempts`: open a connection with `await connect()`, "
    "`return await write(connection)` and close the connection (try/finally). On a TRANSIENT "
    "error, `await sleep(delay)`, double the delay and go round again; after the last "
    "attempt, `raise`."
)
ROWS, BATCH, WORKERS = 2_000, 200, 4
#: Rows the first step writes: half before its connection is killed, half after.
STEP_ROWS = 100
#: Calls (connections, writes, waits) after which a loop is taken not to give up.
RUNAWAY_CALLS = 50
#: Wall-clock limit on one call of the learner's function (it never needs a second).
BUDGET_S = 60.0

#: Faults the check causes: a killed connection, a port where no server listens.
_CAUSED = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)
_TABLE_NAME = "ex_retry_writes_users_check"  # a workshop name: reset_workshop() tidies it
_TABLE = quote_identifier(_TABLE_NAME)
_WHAT = "write_with_retry()"
#: Errors that say the learner's code has a bug, not a choice of error to raise.
_BUGS = (NameError, AttributeError, TypeError)

NO_RETRY = (
    "A killed connection is a transient fault: put the attempt inside "
    "`try: … except TRANSIENT:` and go round the loop again, up to `attempts` times."
)
NO_RECONNECT = (
    "A connection the server has closed stays closed: every write on it fails with "
    "'connection is closed'. Call `await connect()` inside the loop, so that each attempt "
    "writes on a new connection."
)
STALE_CONNECTION = (
    "Your function opened a new connection but wrote on the old, dead one: pass the "
    "connection you have just opened to write()."
)
NEVER_GIVES_UP = (
    "Count the attempts and stop after `attempts` of them (`for attempt in range(1, "
    "attempts + 1):`), then raise the last error: a server that stays down must not hold "
    "the migration forever."
)
SWALLOWED_LAST = (
    "After the last attempt, raise its error (a bare `raise` inside the `except` block): "
    "returning tells the worker that the batch landed when it did not."
)
RETURN_RESULT = (
    "Return what `write(connection)` returns: in the migration that is the batch's list "
    "of rejected rows, which the worker reports."
)
DOUBLED = (
    "After a write succeeds, return its result at once (`return await write(connection)`) "
    "instead of going round the loop again: each extra write lands the rows again."
)
LEAKED = (
    "Close each connection when its attempt is over, whether the write worked or not: "
    "`try: return await write(connection)` then `finally: await connection.close()`. "
    "A connection leaked per batch soon uses up PostgreSQL's max_connections."
)
CONNECT_OUTSIDE_TRY = (
    "Your function gave up after the first refused connection: put `await connect()` "
    "inside the `try`, so that a refused connection is retried too (the server may be "
    "restarting)."
)
RERAISE = (
    "Give up by raising the last error itself (a bare `raise` inside `except`, or your "
    "own error `raise … from` it), so that the caller sees why: here, connection refused."
)
NO_WAITS = (
    "Wait between attempts with `await sleep(delay)`, using the `sleep` argument, not "
    "asyncio.sleep or time.sleep: the check passes its own, which records each wait "
    "without waiting."
)
GROWING = (
    "Each wait should be at least as long as the one before, and the last at least twice "
    "the first: start at first_delay_s and double the delay after each wait."
)
RETRIED_DATA = (
    "An integer out of range is still out of range on the next try: catch only the "
    "transient faults (`except TRANSIENT:`, not `except Exception:`) and let every other "
    "error go straight up."
)
SWALLOWED_DATA = (
    "Do not catch the errors you do not retry: let them go up to the caller, which "
    "decides what to do with a batch PostgreSQL refused."
)
NOT_AWAITED = (
    "connect() and write() are coroutine functions: calling one only makes a coroutine, "
    "which does nothing until you `await` it."
)
LEAKED_ON_ERROR = (
    "Close the connection in a `finally:` block, so that it is closed when write() "
    "raises too, not only when it succeeds."
)

Write = Callable[[asyncpg.Connection], Awaitable[Any]]


async def check(module: ModuleType) -> Feedback:
    function = cast(WriteWithRetry, attribute(module, "write_with_retry", kind="function"))
    lab = await open_lab("ex_retry_writes")
    dsn = lab.endpoints.pg_dsn
    async with _check_table(dsn) as admin:
        return await run_steps(
            TITLE,
            [
                Step(
                    "rides out a connection killed in the middle of a write",
                    lambda: rides_out_a_killed_connection(function, dsn, admin),
                ),
                Step(
                    "gives up on a server that stays down, with its error",
                    lambda: gives_up_in_the_end(function),
                ),
                Step("waits longer after each failure", lambda: backs_off(function)),
                Step(
                    "raises a data error at once, without retrying",
                    lambda: does_not_retry_data_errors(function, dsn, admin),
                ),
                Step(
                    "keeps a real migration going through a fault",
                    lambda: survives_a_fault_mid_run(function),
                ),
            ],
            praise="Your write_with_retry rode out real faults without losing or doubling "
            "a row. Watch it inside a full migration in the next cells.",
        )


# -- the steps ------------------------------------------------------------------------


async def rides_out_a_killed_connection(
    function: WriteWithRetry, dsn: str, admin: asyncpg.Connection
) -> str:
    """The first write's connection is terminated halfway through its transaction."""
    await admin.execute(f"TRUNCATE {_TABLE}")
    calls = Calls(dsn)
    rows = [(1, n) for n in range(STEP_ROWS)]

    async def write(connection: asyncpg.Connection) -> int:
        calls.wrote(connection)
        async with connection.transaction():
            await connection.copy_records_to_table(_TABLE_NAME, records=rows[: STEP_ROWS // 2])
            if calls.writes == 1:
                await terminate(admin, [connection.get_server_pid()])
                await noticed(connection)
            await connection.copy_records_to_table(_TABLE_NAME, records=rows[STEP_ROWS // 2 :])
        return STEP_ROWS

    outcome = await calls.run(function, write)
    landed = int(await admin.fetchval(f"SELECT count(*) FROM {_TABLE}"))
    said = f"the connection under the first write() was killed mid-transaction; {calls.tally()}"
    _not_awaited(calls, outcome)
    if outcome.runaway:
        raise Hint(f"{said}, and it never stopped", _no_reconnect_hint(calls) or NEVER_GIVES_UP)
    if (error := outcome.raised(*_CAUSED)) is not None:
        what = f"{said}, then it raised {_name(error)}"
        raise Hint(what, _no_reconnect_hint(calls) or NO_RETRY)
    if calls.writes == 1:
        raise Hint(f"{said}, then it returned {outcome.value!r} without trying again", NO_RETRY)
    if landed != STEP_ROWS:
        raise Hint(f"{said}: {landed} rows landed, not {STEP_ROWS}", DOUBLED)
    if outcome.value != STEP_ROWS:
        raise Hint(f"{said}; write() returned {STEP_ROWS}, yours {outcome.value!r}", RETURN_RESULT)
    if calls.left_open:
        raise Hint(f"{said}; {calls.left_open} of them still open when it returned", LEAKED)
    return (
        f"the connection died mid-transaction; your code reconnected ({calls.connects} "
        f"connections, {calls.writes} writes) and landed all {STEP_ROWS} rows exactly once"
    )


async def gives_up_in_the_end(function: WriteWithRetry) -> str:
    """Nothing listens on the port: every connection is refused, ``attempts`` times."""
    attempts = 4
    calls = Calls(_closed_port_dsn())
    outcome = await calls.run(function, calls.never_called, attempts=attempts, first_delay_s=0.01)
    said = f"with attempts={attempts} and the server down, {calls.tally()}"
    if outcome.runaway:
        raise Hint(f"{said} and counting", NEVER_GIVES_UP)
    error = outcome.error
    if error is None:
        raise Hint(f"{said}, then it returned {outcome.value!r}", SWALLOWED_LAST)
    if _hides_the_fault(error):
        raise Hint(f"{said}, then it raised {_name(error)}", RERAISE)
    if not isinstance(error.__cause__, _CAUSED):  # its own error `from` the fault is fine
        outcome.raised(*_CAUSED)  # any other error gets the usual hint
    if calls.connects == 1 and attempts > 1:
        raise Hint(f"{said}, then it raised {_name(error)}", CONNECT_OUTSIDE_TRY)
    if calls.connects != attempts:
        raise Hint(
            f"{said}, then it raised {_name(error)}",
            f"Try exactly `attempts` times in all (here {attempts}): the first try counts.",
        )
    return f"{attempts} tries on a port where nothing listens, then it raised {_name(error)}"


async def backs_off(function: WriteWithRetry) -> str:
    """The same dead server: the waits between the tries, as asked of ``sleep``."""
    attempts, first = 5, 0.2
    calls = Calls(_closed_port_dsn())
    await calls.run(function, calls.never_called, attempts=attempts, first_delay_s=first)
    waits = calls.delays
    said = f"with attempts={attempts} and first_delay_s={first}, it waited {seconds_listed(waits)}"
    if not waits:
        raise Hint(f"with attempts={attempts}, no wait went through sleep()", NO_WAITS)
    if len(waits) == attempts:
        raise Hint(
            said,
            "No need to wait after the last attempt, since nothing comes after it: "
            f"raise at once ({attempts} attempts, {attempts - 1} waits).",
        )
    if len(waits) != attempts - 1:
        raise Hint(
            said, f"Wait once between two attempts: {attempts} attempts, {attempts - 1} waits."
        )
    if not first / 2 <= waits[0] <= first:
        raise Hint(said, f"Wait first_delay_s (here {first} s) the first time, then double it.")
    if len(set(waits)) == 1:
        raise Hint(
            said,
            f"Your function waited {waits[0]} s every time: double the wait after each failure "
            "(exponential backoff), so that a server that needs longer to come back gets "
            "longer, and fewer knocks.",
        )
    if any(b < a for a, b in itertools.pairwise(waits)) or waits[-1] < 2 * waits[0]:
        raise Hint(said, GROWING)
    return f"it waited {seconds_listed(waits)} between {attempts} tries (recorded, not waited)"


async def does_not_retry_data_errors(
    function: WriteWithRetry, dsn: str, admin: asyncpg.Connection
) -> str:
    """A value PostgreSQL refuses: 3,000,000,000 does not fit an INTEGER column."""
    calls = Calls(dsn)

    async def write(connection: asyncpg.Connection) -> int:
        calls.wrote(connection)
        async with connection.transaction():
            await connection.execute(f"INSERT INTO {_TABLE} (batch, n) VALUES (4, 3000000000)")
        return 1

    outcome = await calls.run(function, write)
    said = f"write() failed with asyncpg.DataError (integer out of range); {calls.tally()}"
    _not_awaited(calls, outcome)
    if outcome.runaway:
        raise Hint(f"{said} and counting", RETRIED_DATA)
    if calls.writes > 1:
        raise Hint(said, RETRIED_DATA)
    error = outcome.raised(asyncpg.DataError)
    if error is None:
        raise Hint(f"{said}, then it returned {outcome.value!r}", SWALLOWED_DATA)
    if calls.left_open:
        raise Hint(f"{said}; the connection was still open after it raised", LEAKED_ON_ERROR)
    return f"{_name(error)} came straight back after 1 try, and no wait"


async def survives_a_fault_mid_run(function: WriteWithRetry) -> str:
    """The real migration; after 3 batches every worker's connection is terminated."""
    run = FaultyRun(kill_after=3)
    with learner_code(f"the migration through your {_WHAT}", stub_hint=STUB_HINT):
        report = await run_real_migration(
            "retry_writes",
            rows=ROWS,
            workers=WORKERS,
            batch_size=BATCH,
            open_sink=run.sink(function),
        )
    if report.rows_written != ROWS or run.killed == 0 or not run.failures:
        raise Hint(
            f"in a real migration of {ROWS:,} users, {report.rows_written:,} were written; "
            f"{run.summary()}",
            "Compare your function with the first step's: each batch should land once.",
        )
    return (
        f"{ROWS:,} users copied into PostgreSQL, each once; the fault terminated "
        f"{counted(run.killed, 'worker connection')} mid-run and your code retried "
        f"{counted(len(run.failures), 'failed write')}"
    )


def _not_awaited(calls: Calls, outcome: Outcome) -> None:
    """A hint if the function forgot an ``await``: nothing it called has run."""
    if calls.not_connections:
        raise Hint(
            f"write() was handed {calls.not_connections[0]}, not a connection",
            f"{NOT_AWAITED} Here: `connection = await connect()`.",
        )
    if inspect.isawaitable(outcome.value):
        if inspect.iscoroutine(outcome.value):
            outcome.value.close()  # it will never run: no "never awaited" warning
        raise Hint(
            f"{_WHAT} returned {type(outcome.value).__name__}, not what write() returned",
            f"{NOT_AWAITED} Here: `return await write(connection)`.",
        )


def _hides_the_fault(error: BaseException) -> bool:
    """An error of the learner's own, raised while handling a fault but not ``from`` it."""
    return (
        isinstance(error.__context__, _CAUSED)
        and error.__cause__ is None
        and not isinstance(error, (*_CAUSED, NotImplementedError, *_BUGS))
    )


def _no_reconnect_hint(calls: Calls) -> str | None:
    if calls.writes > 1 and (calls.connects == 1 or calls.stale_writes):
        return NO_RECONNECT if calls.connects == 1 else STALE_CONNECTION
    return None


# -- what the learner's function is handed, and what it did with it -------------------


class _Runaway(BaseException):
    """Stops a loop that does not give up (not an ``Exception``: ``except`` cannot hide it)."""


@dataclass
class Outcome:
    """What one call of the learner's function returned or raised."""

    value: object = None
    error: BaseException | None = None
    runaway: bool = False

    def raised(self, *expected: type[BaseException]) -> BaseException | None:
        """The error raised, if one of ``expected``; any other becomes the usual hint."""
        if self.error is None or isinstance(self.error, expected):
            return self.error
        with learner_code(_WHAT, stub_hint=STUB_HINT):
            raise self.error
        raise AssertionError("learner_code turns every error into a Hint")


class Calls:
    """The ``connect`` and ``sleep`` a step hands to the learner's function, counting calls.

    ``sleep`` records the delay and returns at once: the check judges the delays the
    function asks for, without waiting for them.
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self.connects = 0
        self.writes = 0
        self.stale_writes = 0  # writes handed a connection an earlier write had
        self.not_connections: list[str] = []  # what write() got instead of a connection
        self.delays: list[float] = []
        self.left_open = 0  # connections still open when the function was done
        self._opened: list[asyncpg.Connection] = []
        self._written_on: list[asyncpg.Connection] = []

    async def connect(self) -> asyncpg.Connection:
        self.connects += 1
        self._guard()
        connection = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_S)
        self._opened.append(connection)
        return connection

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        self._guard()
        await asyncio.sleep(0)

    def wrote(self, connection: asyncpg.Connection) -> None:
        """Called by a step's ``write`` each time the function calls it."""
        if not isinstance(connection, asyncpg.Connection):
            self.not_connections.append(type(connection).__name__)
            if inspect.iscoroutine(connection):
                connection.close()  # it will never run: no "never awaited" warning
            raise TypeError(f"write() needs a connection, not {type(connection).__name__}")
        self.writes += 1
        self.stale_writes += any(connection is seen for seen in self._written_on)
        self._written_on.append(connection)
        self._guard()

    async def never_called(self, connection: asyncpg.Connection) -> None:
        """The ``write`` for a server that is down: no connection opens, so none to write on."""
        self.wrote(connection)

    async def run(self, function: WriteWithRetry, write: Write, **options: Any) -> Outcome:
        """Await ``function(connect, write, sleep=…)`` within a budget; tidy up after it."""
        budget = asyncio.timeout(BUDGET_S)
        try:
            async with budget:
                value = await function(self.connect, write, sleep=self.sleep, **options)
        except _Runaway:
            return Outcome(runaway=True)
        except TimeoutError as exc:
            if budget.expired():
                raise Hint(
                    f"{_WHAT} was still running after {BUDGET_S:.0f} s; {self.tally()}",
                    NEVER_GIVES_UP,
                ) from None
            return Outcome(error=exc)
        except Exception as exc:
            return Outcome(error=exc)
        finally:
            self.left_open = sum(not c.is_closed() for c in self._opened)
            for connection in self._opened:
                connection.terminate()
        return Outcome(value=value)

    def tally(self) -> str:
        did = [f"your code opened {counted(self.connects, 'connection')}"]
        if self.writes:
            did.append(f"called write() {counted(self.writes, 'time')}")
        return ", ".join(did) + (
            f" and waited {seconds_listed(self.delays)}" if self.delays else ""
        )

    def _guard(self) -> None:
        if self.connects + self.writes + len(self.delays) > RUNAWAY_CALLS:
            raise _Runaway


# -- the check's own table, and a server that is down ---------------------------------


@asynccontextmanager
async def _check_table(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """An admin connection, and the steps' own table for the time of the check."""
    admin = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
    try:
        await admin.execute(
            f"DROP TABLE IF EXISTS {_TABLE}; "
            f"CREATE TABLE {_TABLE} (batch INTEGER NOT NULL, n INTEGER NOT NULL)"
        )
        yield admin
    finally:
        try:
            await admin.execute(f"DROP TABLE IF EXISTS {_TABLE}")
        finally:
            await admin.close()


def _closed_port_dsn() -> str:
    """A DSN on a port that was free a moment ago: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql://migrationkit@127.0.0.1:{port}/migrationkit"


def _name(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
