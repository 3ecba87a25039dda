"""Check for exercise 3: the writer ``insert_values`` in the learner's ``insert_values.py``.

The writer runs on a real PostgreSQL connection wrapped in a :class:`Recorder`,
which notes every statement it sends. Each step works in a transaction that is
always rolled back, on a scratch table of the users schema: whatever the learner's
code does (even a value that turns into ``DROP TABLE``) leaves nothing behind.

The exercise's notebook races writers without the reading that caps a whole
migration: :mod:`migrationkit.workshop.exercises.writer_race`.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import asyncpg

from migrationkit._normalize.rows import ROW_COLUMNS, Row
from migrationkit._servers.resolve import resolve_endpoints
from migrationkit._settings.settings import Settings
from migrationkit._target.tables import create_target, empty_target
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

TITLE = "Exercise 3 · a writer that batches INSERT … VALUES"
STUB_HINT = (
    'Write placeholders() first: placeholders(2, 3) is "($1, $2, $3), ($4, $5, $6)". '
    "Then insert_values(): for each chunk of up to ROWS_PER_STATEMENT rows, build one "
    "INSERT … VALUES with placeholders(len(chunk), WIDTH) and send it with "
    "await connection.execute(sql, *values)."
)
#: asyncpg refuses a statement with more parameters than this (PostgreSQL takes 65,535).
MAX_ARGUMENTS = 32_767
WIDTH = len(ROW_COLUMNS)
SCRATCH = "ex_insert_values_scratch"
MANY, HUGE = 1_000, 10_007  # HUGE is prime: no chunk size divides it, a partial chunk remains
MIN_ROWS_PER_STATEMENT = 10
MIGRATED, BATCH, WORKERS = 2_000, 500, 2

_AT = datetime(2021, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)
#: Rows that break SQL built by pasting values into its text.
AWKWARD: list[Row] = [
    ("ex3-awkward-quote", "O'Brien", "o.brien@example.com", 42, _AT),
    ("ex3-awkward-bobby", f"x'); DROP TABLE {SCRATCH}; --", "bobby@example.com", 7, None),
    ("ex3-awkward-zoe", 'Zoë "$1" \\ 😀', "zoe@example.com", 150, _AT.replace(year=1999)),
    ("ex3-awkward-format", "100% {braces} %s", "format@example.com", 0, None),
]
_ROW_AFTER_ROW = (
    "Send the values row after row, in the order of the placeholders: the first row "
    "takes $1 to $5, the second $6 to $10, and so on: [value for row in chunk for value in row]."
)
_VALUES_APART = (
    "Put $1, $2, … in the SQL and pass the values beside it: connection.execute(sql, *values). "
    "PostgreSQL never reads a parameter as SQL, so O'Brien (or x'); DROP TABLE …) is stored "
    "as written; pasted into the text, it breaks the statement, or worse."
)
_INSERT = re.compile(r'\s*insert\s+into\s+("(?:[^"]|"")+"|[\w.]+)\s*(?:\(([^)]*)\))?', re.I)


async def check(module: ModuleType) -> Feedback:
    writer = attribute(module, "insert_values", kind="function")
    chunk_size = getattr(module, "ROWS_PER_STATEMENT", None)

    async def write(connection: Any, rows: Sequence[Row]) -> Recorder:
        recorder = Recorder(connection)
        try:
            with learner_code("insert_values()", stub_hint=STUB_HINT):
                await _call(writer, recorder, rows, chunk_size)
        finally:
            recorder.close_forgotten()
        await _expect_stored(connection, rows, recorder, chunk_size)
        return recorder

    async def numbers_placeholders() -> str:
        if not hasattr(module, "placeholders"):
            return "no placeholders() in your file: you build the VALUES list your own way"
        with learner_code("placeholders()", stub_hint=STUB_HINT):
            got = [module.placeholders(2, 3), module.placeholders(1, 5)]
        expected = ["($1, $2, $3), ($4, $5, $6)", "($1, $2, $3, $4, $5)"]
        if [str(text).replace(" ", "") for text in got] != [e.replace(" ", "") for e in expected]:
            raise Hint(
                f"placeholders(2, 3) gave {got[0]!r} and placeholders(1, 5) {got[1]!r}",
                f"Expected {expected[0]!r} and {expected[1]!r}: one bracket per row, and the "
                "numbers go on across rows (the second row starts at $4, not $1).",
            )
        return f"placeholders(2, 3) is {got[0]!r}"

    async def writes_exactly() -> str:
        async with _scratch() as connection:
            await write(connection, AWKWARD)
        return (
            f"{len(AWKWARD)} awkward rows stored exactly: O'Brien, {AWKWARD[1][1]!r}, "
            "emoji and backslashes, and missing registration dates"
        )

    async def uses_parameters() -> str:
        async with _scratch() as connection:
            recorder = await write(connection, AWKWARD)
        if problem := _values_in_sql(recorder, AWKWARD):
            raise problem
        sent = sum(call.arguments * call.executions for call in recorder.inserts)
        return f"the SQL held no values; {sent} values travelled as parameters"

    async def many_per_statement() -> str:
        async with _scratch() as connection:
            recorder = await write(connection, _rows(MANY, "many"))
        statements, most = _expect_multi_row(recorder, chunk_size)
        return f"{MANY:,} rows in {statements} statements of up to {most:,} rows each"

    async def over_the_limit() -> str:
        async with _scratch() as connection:
            recorder = await write(connection, _rows(HUGE, "huge"))
        statements = sum(call.executions for call in recorder.inserts)
        return (
            f"{HUGE:,} rows ({HUGE * WIDTH:,} values, more than one statement may carry) "
            f"in {statements} statements"
        )

    async def moves_data() -> str:
        with learner_code("the migration with your writer", stub_hint=STUB_HINT):
            report = await run_real_migration(
                "insert_values",
                rows=MIGRATED,
                workers=WORKERS,
                batch_size=BATCH,
                writer="insert_values:insert_values",
            )
        if report.rows_written != MIGRATED:
            reasons = "; ".join(reason for _, reason in report.rejected_samples[:1])
            raise Hint(
                f"the migration wrote {report.rows_written:,} of {MIGRATED:,} users "
                f"({report.rows_rejected:,} set aside{': ' + reasons if reasons else ''})",
                "Your writer refused rows the built-in writers take: read the reason above.",
            )
        return (
            f"{report.rows_written:,} users copied into PostgreSQL by your writer "
            f"({report.rows_per_s:,.0f} rows/s)"
        )

    return await run_steps(
        TITLE,
        [
            Step("placeholders() numbers the parameters across rows", numbers_placeholders),
            Step("writes awkward rows exactly", writes_exactly),
            Step("values travel as parameters, never in the SQL", uses_parameters),
            Step("one statement carries many rows", many_per_statement),
            Step(f"a batch of {HUGE:,} rows fits the parameter limit", over_the_limit),
            Step("moves real data from MongoDB to PostgreSQL", moves_data),
        ],
        praise="Your writer loads batches like the built-in ones. "
        "Plug it into a full migration, and race it against COPY, in the next cells.",
    )


@dataclass
class Call:
    """One statement the writer sent: its SQL, values per execution, and executions."""

    method: str
    sql: str
    arguments: int
    executions: int = 1
    awaited: bool = False

    @property
    def rows(self) -> int:
        return self.arguments // WIDTH


class Recorder:
    """The connection, passed on untouched, noting each statement sent through it."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self.calls: list[Call] = []
        self._coroutines: list[tuple[Call, Coroutine[Any, Any, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    @property
    def inserts(self) -> list[Call]:
        return [call for call in self.calls if _INSERT.match(call.sql)]

    def execute(self, query: str, *args: Any, **options: Any) -> Awaitable[Any]:
        return self._send("execute", query, args, options)

    def fetch(self, query: str, *args: Any, **options: Any) -> Awaitable[Any]:
        return self._send("fetch", query, args, options)

    def fetchval(self, query: str, *args: Any, **options: Any) -> Awaitable[Any]:
        return self._send("fetchval", query, args, options)

    def fetchrow(self, query: str, *args: Any, **options: Any) -> Awaitable[Any]:
        return self._send("fetchrow", query, args, options)

    def executemany(self, command: str, args: Any, **options: Any) -> Awaitable[Any]:
        sets = [tuple(values) for values in args]
        call = Call("executemany", command, len(sets[0]) if sets else 0, len(sets))
        return self._track(call, lambda: self._connection.executemany(command, sets, **options))

    def copy_records_to_table(self, table: str, **options: Any) -> Awaitable[Any]:
        call = Call("copy", f"COPY {table}", 0)
        return self._track(call, lambda: self._connection.copy_records_to_table(table, **options))

    def close_forgotten(self) -> None:
        """Close the calls nobody awaited (they never ran), so Python does not warn."""
        for call, coroutine in self._coroutines:
            if not call.awaited:
                coroutine.close()

    def _send(
        self, method: str, query: str, args: tuple[Any, ...], options: dict[str, Any]
    ) -> Awaitable[Any]:
        run = getattr(self._connection, method)
        return self._track(Call(method, query, len(args)), lambda: run(query, *args, **options))

    def _track(self, call: Call, start: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        async def run() -> Any:
            call.awaited = True
            return await start()

        coroutine = run()
        self.calls.append(call)
        self._coroutines.append((call, coroutine))
        return coroutine


async def _call(writer: Any, recorder: Recorder, rows: Sequence[Row], chunk_size: object) -> None:
    """Await the learner's writer; an error the recorded statements explain becomes a hint."""
    result = writer(recorder, SCRATCH, rows)
    if not inspect.isawaitable(result):
        raise Hint(
            "insert_values() returned without anything to await",
            "Define it with async def: the migration awaits the writer, "
            "and await connection.execute(...) only works inside async def.",
        )
    try:
        await result
    except NotImplementedError:
        raise
    except Exception as exc:
        if problem := _explain_error(exc, recorder, rows, chunk_size):
            raise problem from None
        raise


@asynccontextmanager
async def _scratch() -> AsyncIterator[Any]:
    """A connection in a transaction, with an empty :data:`SCRATCH` table; rolled back after."""
    endpoints = await asyncio.to_thread(resolve_endpoints, Settings())
    connection = await asyncpg.connect(endpoints.pg_dsn)
    try:
        transaction = connection.transaction()
        await transaction.start()
        try:
            await create_target(connection, SCRATCH)
            await empty_target(connection, SCRATCH)
            yield connection
        finally:
            with suppress(asyncpg.PostgresError, asyncpg.InterfaceError):
                await transaction.rollback()
    finally:
        await connection.close()


def _rows(count: int, name: str) -> list[Row]:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    return [
        (
            f"ex3-{name}-{i:06d}",
            f"user {i}",
            f"user{i}@example.com",
            i % 120,
            None if i % 7 == 0 else start + timedelta(minutes=i),
        )
        for i in range(count)
    ]


async def _expect_stored(
    connection: Any, rows: Sequence[Row], recorder: Recorder, chunk_size: object
) -> None:
    """Raise a hint unless the scratch table holds exactly ``rows``."""
    forgotten = [call for call in recorder.calls if not call.awaited]
    if forgotten:
        raise Hint(
            f"{counted(len(forgotten), 'call')} to connection.{forgotten[0].method}() never ran",
            "Put await in front of connection.execute(...): without it Python only "
            "prepares the call, and PostgreSQL never receives it.",
        )
    if problem := _wrong_table(recorder):
        raise problem
    try:
        stored = {
            record[0]: tuple(record)
            for record in await connection.fetch(f"SELECT {', '.join(ROW_COLUMNS)} FROM {SCRATCH}")
        }
    except asyncpg.UndefinedTableError:
        raise Hint(
            f"the table {SCRATCH} is gone: a value in a row ran as SQL (DROP TABLE)",
            _VALUES_APART,
        ) from None
    except asyncpg.InFailedSQLTransactionError:
        raise Hint(
            "a statement failed, and insert_values() carried on as if it had not",
            "Let errors out of your writer (no try/except around execute): the migration "
            "needs them to find the rows PostgreSQL refuses and set them aside.",
        ) from None
    changed = [row for row in rows if stored.get(row[0]) != tuple(row)]
    if not changed:
        return
    columns = _columns(recorder.inserts[0]) if recorder.inserts else list(ROW_COLUMNS)
    if len(stored) < len(rows) and columns in (None, list(ROW_COLUMNS)):
        raise _missing(rows, [row for row in rows if row[0] not in stored], recorder, chunk_size)
    row = changed[0]
    seen = stored.get(row[0]) or next(iter(stored.values()), None)
    said = f"the rows came back changed: {tuple(row)!r} was stored as {seen!r}"
    if columns != list(ROW_COLUMNS):
        raise _column_order(columns, said)
    raise Hint(said, _ROW_AFTER_ROW)


def _wrong_table(recorder: Recorder) -> Hint | None:
    for call in recorder.inserts:
        if SCRATCH not in call.sql:
            return Hint(
                f"your INSERT writes into {_target(call)}, but the table to write was {SCRATCH}",
                'Write into the table insert_values() is given: INSERT INTO "{table}" … '
                "(an f-string), never a fixed name.",
            )
    return None


def _missing(
    rows: Sequence[Row], missing: list[Row], recorder: Recorder, chunk_size: object
) -> Hint:
    said = f"{counted(len(missing), 'row')} of {len(rows):,} missing from the table"
    chunk_hint = (
        "range(0, len(rows), ROWS_PER_STATEMENT) gives the start of every chunk, "
        "the last, shorter one included: rows[start : start + ROWS_PER_STATEMENT]."
    )
    if not recorder.inserts:
        if isinstance(chunk_size, int) and len(rows) < chunk_size:
            return Hint(
                f"{said}: insert_values() sent no INSERT for {len(rows)} rows",
                f"With fewer rows than ROWS_PER_STATEMENT ({chunk_size}) there is one chunk, "
                f"shorter than the rest: send it too. {chunk_hint}",
            )
        return Hint(
            f"{said}: insert_values() sent no INSERT statement",
            "Send each chunk with await connection.execute(sql, *values).",
        )
    if [row[0] for row in missing] == [row[0] for row in rows[-len(missing) :]]:
        return Hint(
            f"{said}: the last {len(missing):,}, so the last chunk was never sent",
            f"The last chunk is usually shorter than ROWS_PER_STATEMENT: send it too. {chunk_hint}",
        )
    return Hint(
        f"{said} (the first missing: {missing[0][0]})",
        f"Every row must go into exactly one chunk. {chunk_hint}",
    )


def _column_order(columns: list[str] | None, said: str) -> Hint:
    order = ", ".join(ROW_COLUMNS)
    if columns is None:
        return Hint(
            f"{said}; your INSERT names no columns",
            f"Name the columns after the table, ({order}): the table also has an id "
            "column, which PostgreSQL numbers itself (COLUMNS holds the list).",
        )
    return Hint(
        f"{said}; your INSERT names the columns ({', '.join(columns)})",
        f"Each row's values come in the order ({order}): name the columns in that order "
        "(COLUMNS holds the list).",
    )


def _explain_error(
    exc: Exception, recorder: Recorder, rows: Sequence[Row], chunk_size: object
) -> Hint | None:
    """A hint for an error whose cause the recorded statements show, or ``None``."""
    said = f"insert_values() raised {type(exc).__name__}: {str(exc).splitlines()[0]}"
    widest = max((call.arguments for call in recorder.calls), default=0)
    if widest > MAX_ARGUMENTS or f"cannot exceed {MAX_ARGUMENTS}" in str(exc):
        yours = f" (yours is {chunk_size:,})" if isinstance(chunk_size, int) else ""
        if isinstance(chunk_size, int) and widest > chunk_size * WIDTH:
            yours = f" (yours is {chunk_size:,}, yet one statement held {widest // WIDTH:,})"
        return Hint(
            f"one statement carried {widest:,} values; asyncpg refuses more than {MAX_ARGUMENTS:,}",
            f"Send a big batch in chunks: at {WIDTH} values a row, at most "
            f"{MAX_ARGUMENTS // WIDTH:,} rows a statement. Cut rows into chunks of "
            f"ROWS_PER_STATEMENT rows{yours}, and send one INSERT per chunk.",
        )
    if problem := _values_in_sql(recorder, rows) or _wrong_table(recorder):
        return problem
    if "another operation is in progress" in str(exc):
        return Hint(
            said,
            "One connection runs one statement at a time: await each execute() in turn "
            "(in a for loop) rather than all at once with asyncio.gather().",
        )
    if isinstance(exc, asyncpg.UniqueViolationError):
        return Hint(
            f"{said} (a row was sent twice)",
            "The chunks overlap: each starts where the last one ended, "
            "rows[start : start + ROWS_PER_STATEMENT] with start going up by ROWS_PER_STATEMENT.",
        )
    if "arguments for this query" in str(exc) or "could not determine data type" in str(exc):
        return Hint(
            said,
            "The placeholders and the values must match: one $n per value, len(chunk) * 5 "
            "in all, numbered $1, $2, … across all the rows of the statement.",
        )
    insert = recorder.inserts[-1] if recorder.inserts else None
    if insert is not None and _columns(insert) != list(ROW_COLUMNS):
        return _column_order(_columns(insert), said)
    if isinstance(exc, asyncpg.DataError):  # the check's rows are valid: some value went astray
        return Hint(said, _ROW_AFTER_ROW)
    return None


def _values_in_sql(recorder: Recorder, rows: Sequence[Row]) -> Hint | None:
    for call in recorder.calls:
        for row in rows:
            for value in (row[1], row[0], row[2]):  # the text: username, mongo_id, email
                if value in call.sql:
                    return Hint(
                        f"the text of your SQL holds a row's value, {value!r}", _VALUES_APART
                    )
    return None


def _expect_multi_row(recorder: Recorder, chunk_size: object) -> tuple[int, int]:
    """(statements, most rows in one) for :data:`MANY` rows, or a hint on how they went."""
    if any(call.method == "copy" for call in recorder.calls):
        raise Hint(
            "insert_values() used COPY (copy_records_to_table)",
            "COPY is the built-in copy writer (and the fastest); this exercise builds "
            "INSERT … VALUES: send it with connection.execute(sql, *values).",
        )
    statements = sum(call.executions for call in recorder.inserts)
    most = max((call.rows for call in recorder.inserts), default=0)
    said = f"{MANY:,} rows took {statements:,} statements"
    if most <= 1 and any(call.method == "executemany" for call in recorder.inserts):
        raise Hint(
            f"{said}: executemany() runs a one-row INSERT once per row",
            "executemany is the built-in executemany writer: fast, but still one statement "
            "per row. Here, put many rows in one statement: VALUES ($1, …, $5), ($6, …), … "
            "with one connection.execute(sql, *values) per chunk.",
        )
    if most <= 1:
        raise Hint(
            f"{said}, one INSERT per row: a round trip and a statement for every row",
            "Put many rows in one statement: VALUES ($1, …, $5), ($6, …, $10), … for a whole "
            "chunk of ROWS_PER_STATEMENT rows, and send it with one connection.execute().",
        )
    if statements > MANY // MIN_ROWS_PER_STATEMENT:
        yours = f" (yours is {chunk_size})" if isinstance(chunk_size, int) else ""
        raise Hint(
            f"{said}, at most {most} rows each",
            f"Make the chunks bigger: at least {MIN_ROWS_PER_STATEMENT} rows a statement; "
            f"ROWS_PER_STATEMENT sets it{yours}. A few hundred is a good start.",
        )
    return statements, most


def _target(call: Call) -> str | None:
    match = _INSERT.match(call.sql)
    return match.group(1).strip('"').replace('""', '"') if match else None


def _columns(call: Call) -> list[str] | None:
    match = _INSERT.match(call.sql)
    if match is None or match.group(2) is None:
        return None
    return [name.strip().strip('"').lower() for name in match.group(2).split(",")]
