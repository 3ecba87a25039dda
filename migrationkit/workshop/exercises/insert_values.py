"""Check for exercise 3: the writer ``insert_values`` in the learner's ``insert_values.py``.

The writer runs on a real PostgreSQL connection wrapped in a :class:`Recorder`,
which notes every statement it sends. Each step works in a transaction that is
always rolled back, on a scratch table (of the users schema, or with awkward column
names): whatever the learner's code does (even a value that turns into
``DROP TABLE``) leaves nothing behind.

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

from migrationkit._mapping.spec import users_mapping
from migrationkit._normalize.rows import ROW_COLUMNS
from migrationkit._servers.resolve import resolve_endpoints
from migrationkit._settings.settings import Settings
from migrationkit._target.tables import create_target, empty_target
from migrationkit._target.writers import quote_identifier
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
    "Then insert_values(): name the columns it is given, each one quoted with quote(); "
    "for each chunk of up to rows_per_statement(len(columns)) rows, build one "
    "INSERT … VALUES with placeholders(len(chunk), len(columns)) and send it with "
    "await connection.execute(sql, *values)."
)
#: asyncpg refuses a statement with more parameters than this (PostgreSQL takes 65,535).
MAX_ARGUMENTS = 32_767
SCRATCH = "ex_insert_values_scratch"
NAMES_SCRATCH = "ex_insert_values_names"
MANY, HUGE = 1_000, 10_007  # HUGE is prime: no chunk size divides it, a partial chunk remains
NAMED = 1_000  # rows of the awkward names' 3 columns: more than one statement's worth
MIN_ROWS_PER_STATEMENT = 10
MIGRATED, BATCH, WORKERS = 2_000, 500, 2

AnyRow = tuple[Any, ...]


@dataclass(frozen=True)
class Target:
    """A scratch table a step writes: its name, and the columns each row fills, in order."""

    table: str
    columns: tuple[str, ...]

    @property
    def width(self) -> int:
        return len(self.columns)


USERS = Target(SCRATCH, ROW_COLUMNS)
#: Names that need quoting: a capital and a space, Cyrillic, a double quote inside.
NAMES = Target(NAMES_SCRATCH, ("ключ", "Order Date", 'He said "hi"'))
#: Its columns stored in another order than the rows give them: an INSERT without a
#: column list puts the values in the wrong columns.
_NAMES_TABLE = (
    f"CREATE TABLE {quote_identifier(NAMES_SCRATCH)} ({quote_identifier(NAMES.columns[1])} "
    f"timestamptz, {quote_identifier(NAMES.columns[2])} integer, "
    f"{quote_identifier(NAMES.columns[0])} text PRIMARY KEY)"
)

_AT = datetime(2021, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)
#: Rows that break SQL built by pasting values into its text.
AWKWARD: list[AnyRow] = [
    ("ex3-awkward-quote", "O'Brien", "o.brien@example.com", 42, _AT),
    ("ex3-awkward-bobby", f"x'); DROP TABLE {SCRATCH}; --", "bobby@example.com", 7, None),
    ("ex3-awkward-zoe", 'Zoë "$1" \\ 😀', "zoe@example.com", 150, _AT.replace(year=1999)),
    ("ex3-awkward-format", "100% {braces} %s", "format@example.com", 0, None),
]
_VALUES_APART = (
    "Put $1, $2, … in the SQL and pass the values beside it: connection.execute(sql, *values). "
    "PostgreSQL never reads a parameter as SQL, so O'Brien (or x'); DROP TABLE …) is stored "
    "as written; pasted into the text, it breaks the statement, or worse."
)
_INSERT = re.compile(r'\s*insert\s+into\s+("(?:[^"]|"")+"|[\w.]+)\s*(?:\(([^)]*)\))?', re.I)
_FIRST_VALUES_ROW = re.compile(r"\bvalues\s*\(([^)]*)\)", re.I)


async def check(module: ModuleType) -> Feedback:
    writer = attribute(module, "insert_values", kind="function")
    budget = getattr(module, "PARAMETERS_PER_STATEMENT", None)

    async def write(connection: Any, rows: Sequence[AnyRow], target: Target = USERS) -> Recorder:
        recorder = Recorder(connection, target.width)
        try:
            with learner_code("insert_values()", stub_hint=STUB_HINT):
                await _call(writer, recorder, rows, target, budget)
        finally:
            recorder.close_forgotten()
        await _expect_stored(connection, rows, recorder, target, budget)
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
        statements, most = _expect_multi_row(recorder, budget)
        return f"{MANY:,} rows in {counted(statements, 'statement')} of up to {most:,} rows each"

    async def over_the_limit() -> str:
        async with _scratch() as connection:
            recorder = await write(connection, _rows(HUGE, "huge"))
        statements = sum(call.executions for call in recorder.inserts)
        return (
            f"{HUGE:,} rows ({HUGE * USERS.width:,} values, more than one statement may carry) "
            f"in {statements} statements"
        )

    async def quotes_columns() -> str:
        async with _scratch(NAMES) as connection:
            recorder = await write(connection, _named_rows(NAMED), NAMES)
        statements, most = _expect_width_counted(recorder, budget)
        return (
            f"{NAMED:,} rows of {NAMES.width} columns ({', '.join(NAMES.columns)}) stored "
            f"exactly, in {counted(statements, 'statement')} of up to {most:,} rows"
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
            Step("quotes the columns it is given", quotes_columns),
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
    width: int = len(ROW_COLUMNS)  # values a row, to count rows from arguments

    @property
    def rows(self) -> int:
        return self.arguments // self.width


class Recorder:
    """The connection, passed on untouched, noting each statement sent through it."""

    def __init__(self, connection: Any, width: int) -> None:
        self._connection = connection
        self._width = width
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
        arguments = len(sets[0]) if sets else 0
        call = Call("executemany", command, arguments, len(sets), width=self._width)
        return self._track(call, lambda: self._connection.executemany(command, sets, **options))

    def copy_records_to_table(self, table: str, **options: Any) -> Awaitable[Any]:
        call = Call("copy", f"COPY {table}", 0, width=self._width)
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
        call = Call(method, query, len(args), width=self._width)
        return self._track(call, lambda: run(query, *args, **options))

    def _track(self, call: Call, start: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        async def run() -> Any:
            call.awaited = True
            return await start()

        coroutine = run()
        self.calls.append(call)
        self._coroutines.append((call, coroutine))
        return coroutine


async def _call(
    writer: Any, recorder: Recorder, rows: Sequence[AnyRow], target: Target, budget: object
) -> None:
    """Await the learner's writer; an error the recorded statements explain becomes a hint."""
    _expect_signature(writer, recorder, rows, target)
    result = writer(recorder, target.table, rows, target.columns)
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
        if problem := _explain_error(exc, recorder, rows, target, budget):
            raise problem from None
        raise


def _expect_signature(
    writer: Any, recorder: Recorder, rows: Sequence[AnyRow], target: Target
) -> None:
    """A hint for a writer written for the old call, without ``columns``."""
    try:
        inspect.signature(writer).bind(recorder, target.table, rows, target.columns)
    except TypeError:
        raise Hint(
            "insert_values() cannot take the four arguments the migration passes: "
            "(connection, table, rows, columns)",
            "Define it as async def insert_values(connection, table, rows, columns): columns "
            "are the names of the row's values, in order, and change with the collection.",
        ) from None
    except ValueError:  # no signature to read (a builtin): let the call say
        return


@asynccontextmanager
async def _scratch(target: Target = USERS) -> AsyncIterator[Any]:
    """A connection in a transaction, with ``target``'s table empty; rolled back after."""
    endpoints = await asyncio.to_thread(resolve_endpoints, Settings())
    connection = await asyncpg.connect(endpoints.pg_dsn)
    try:
        transaction = connection.transaction()
        await transaction.start()
        try:
            if target == USERS:
                await create_target(connection, users_mapping(SCRATCH))
                await empty_target(connection, users_mapping(SCRATCH))
            else:
                await connection.execute(f"DROP TABLE IF EXISTS {quote_identifier(target.table)}")
                await connection.execute(_NAMES_TABLE)
            yield connection
        finally:
            with suppress(asyncpg.PostgresError, asyncpg.InterfaceError):
                await transaction.rollback()
    finally:
        await connection.close()


def _rows(count: int, name: str) -> list[AnyRow]:
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


def _named_rows(count: int) -> list[AnyRow]:
    """Rows of :data:`NAMES`: a text key, a date (or none), a number."""
    return [
        (f"ex3-names-{i:05d}", None if i % 5 == 0 else _AT + timedelta(days=i), i - 500)
        for i in range(count)
    ]


def _per_statement(budget: object, width: int) -> int | None:
    """Rows a statement holds by the learner's ``PARAMETERS_PER_STATEMENT``, if an int."""
    if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0:
        return max(1, budget // width)
    return None


async def _expect_stored(
    connection: Any,
    rows: Sequence[AnyRow],
    recorder: Recorder,
    target: Target,
    budget: object,
) -> None:
    """Raise a hint unless the scratch table holds exactly ``rows``."""
    forgotten = [call for call in recorder.calls if not call.awaited]
    if forgotten:
        raise Hint(
            f"{counted(len(forgotten), 'call')} to connection.{forgotten[0].method}() never ran",
            "Put await in front of connection.execute(...): without it Python only "
            "prepares the call, and PostgreSQL never receives it.",
        )
    if problem := _wrong_table(recorder, target):
        raise problem
    names = ", ".join(quote_identifier(column) for column in target.columns)
    try:
        stored = {
            record[0]: tuple(record)
            for record in await connection.fetch(
                f"SELECT {names} FROM {quote_identifier(target.table)}"
            )
        }
    except asyncpg.UndefinedTableError:
        raise Hint(
            f"the table {target.table} is gone: a value in a row ran as SQL (DROP TABLE)",
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
    per_statement = _per_statement(budget, target.width)
    missing = [row for row in rows if row[0] not in stored]
    row = changed[0]
    seen = stored.get(row[0]) or next(iter(stored.values()), None)
    said = f"the rows came back changed: {tuple(row)!r} was stored as {seen!r}"
    if target != USERS:
        if problem := _names_problem(recorder, target, said):
            raise problem
        if missing:
            raise _missing(rows, missing, recorder, per_statement)
        raise Hint(said, _row_after_row(target.width))
    columns = _columns(recorder.inserts[0]) if recorder.inserts else list(ROW_COLUMNS)
    if missing and columns in (None, list(ROW_COLUMNS)):
        raise _missing(rows, missing, recorder, per_statement)
    if columns != list(ROW_COLUMNS):
        raise _column_order(columns, said)
    raise Hint(said, _row_after_row(target.width))


def _row_after_row(width: int) -> str:
    return (
        "Send the values row after row, in the order of the placeholders: the first row "
        f"takes $1 to ${width}, the second ${width + 1} to ${2 * width}, and so on: "
        "[value for row in chunk for value in row]."
    )


def _wrong_table(recorder: Recorder, target: Target) -> Hint | None:
    for call in recorder.inserts:
        if target.table not in call.sql:
            return Hint(
                f"your INSERT writes into {_target(call)}, but the table to write was "
                f"{target.table}",
                "Write into the table insert_values() is given: INSERT INTO {quote(table)} … "
                "(an f-string), never a fixed name.",
            )
    return None


def _missing(
    rows: Sequence[AnyRow], missing: list[AnyRow], recorder: Recorder, per_statement: int | None
) -> Hint:
    said = f"{counted(len(missing), 'row')} of {len(rows):,} missing from the table"
    chunk_hint = (
        "range(0, len(rows), per_statement) gives the start of every chunk, "
        "the last, shorter one included: rows[start : start + per_statement]."
    )
    if not recorder.inserts:
        if per_statement is not None and len(rows) < per_statement:
            return Hint(
                f"{said}: insert_values() sent no INSERT for {len(rows)} rows",
                f"With fewer rows than a statement holds ({per_statement}) there is one chunk, "
                f"shorter than the rest: send it too. {chunk_hint}",
            )
        return Hint(
            f"{said}: insert_values() sent no INSERT statement",
            "Send each chunk with await connection.execute(sql, *values).",
        )
    if [row[0] for row in missing] == [row[0] for row in rows[-len(missing) :]]:
        return Hint(
            f"{said}: the last {len(missing):,}, so the last chunk was never sent",
            "The last chunk is usually shorter than rows_per_statement(len(columns)): "
            f"send it too. {chunk_hint}",
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
            "column, which PostgreSQL numbers itself (columns holds the list).",
        )
    return Hint(
        f"{said}; your INSERT names the columns ({', '.join(columns)})",
        f"Each row's values come in the order ({order}): name the columns in that order "
        "(columns holds the list, in that order).",
    )


def _names_problem(recorder: Recorder, target: Target, said: str) -> Hint | None:
    """A hint when the last INSERT does not name ``target``'s columns, quoted, in order."""
    insert = recorder.inserts[-1] if recorder.inserts else None
    if insert is None:
        return None
    listed = _column_list(insert)
    given = ", ".join(target.columns)
    if listed is None:
        return Hint(
            f"{said}; your INSERT names no columns",
            f"Name the columns insert_values() is given, in their order ({given}): the "
            "table keeps them in another order, so without the list the values land in "
            "the wrong columns.",
        )
    if _columns(insert) == list(ROW_COLUMNS):
        return Hint(
            f"your INSERT names the users' columns ({', '.join(ROW_COLUMNS)}), but this "
            f"table's are ({given})",
            "Name the columns insert_values() is given, in their order: they change with "
            'the collection, the users\' five are only one case: ", ".join(quote(c) for c in '
            "columns).",
        )
    absent = [name for name in target.columns if quote_identifier(name) not in listed]
    for name in absent:
        if '"' in name and f'"{name}"' in listed:
            return Hint(
                f"the column {name!r} holds a double quote, and your INSERT's quoting ends "
                "the name there",
                "Inside a quoted name a double quote is written twice: quote() does it, "
                "'\"' + name.replace('\"', '\"\"') + '\"'.",
            )
    if unquoted := [name for name in absent if name in listed]:
        return Hint(
            f"your INSERT names {', '.join(map(repr, unquoted))} without double quotes",
            "Quote every column name with quote(): in double quotes a name is taken "
            "exactly as written; unquoted, PostgreSQL folds its capitals and stops at "
            'a space or a quote. ", ".join(quote(c) for c in columns).',
        )
    if absent:
        return Hint(
            f"your INSERT names the columns ({listed.strip()}), not {absent[0]!r}",
            f"Name the columns insert_values() is given, in their order ({given}), "
            "each one quoted with quote().",
        )
    places = [listed.index(quote_identifier(name)) for name in target.columns]
    if places != sorted(places):
        return Hint(
            f"{said}; your INSERT names the columns in another order ({listed.strip()})",
            f"Each row's values come in the order of columns ({given}): name them in that order.",
        )
    return None


def _width_problem(recorder: Recorder, target: Target) -> Hint | None:
    """A hint when the rows in the last INSERT's VALUES do not hold a row's values."""
    insert = recorder.inserts[-1] if recorder.inserts else None
    match = _FIRST_VALUES_ROW.search(insert.sql) if insert else None
    width = len(re.findall(r"\$\d+", match.group(1))) if match else 0
    if width in (0, target.width):
        return None
    return Hint(
        f"each row of your VALUES holds {width} parameters, but the rows here have "
        f"{target.width} values ({', '.join(target.columns)})",
        "A row has len(columns) values, whatever the table: placeholders(len(chunk), "
        f"len(columns)). {len(ROW_COLUMNS)} is only the users' width.",
    )


def _explain_error(
    exc: Exception, recorder: Recorder, rows: Sequence[AnyRow], target: Target, budget: object
) -> Hint | None:
    """A hint for an error whose cause the recorded statements show, or ``None``."""
    said = f"insert_values() raised {type(exc).__name__}: {str(exc).splitlines()[0]}"
    widest = max((call.arguments for call in recorder.calls), default=0)
    if widest > MAX_ARGUMENTS or f"cannot exceed {MAX_ARGUMENTS}" in str(exc):
        yours = f" (yours is {budget:,})" if isinstance(budget, int) else ""
        if isinstance(budget, int) and widest > budget:
            yours = f" (yours is {budget:,}, yet one statement held {widest:,})"
        return Hint(
            f"one statement carried {widest:,} values; asyncpg refuses more than {MAX_ARGUMENTS:,}",
            f"Send a big batch in chunks: at {target.width} values a row, at most "
            f"{MAX_ARGUMENTS // target.width:,} rows a statement. Cut rows into chunks of "
            "rows_per_statement(len(columns)) rows, PARAMETERS_PER_STATEMENT values in all"
            f"{yours}, and send one INSERT per chunk.",
        )
    if problem := _values_in_sql(recorder, rows) or _wrong_table(recorder, target):
        return problem
    if target != USERS and (problem := _names_problem(recorder, target, said)):
        return problem
    if problem := _width_problem(recorder, target):
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
            "rows[start : start + per_statement] with start going up by per_statement.",
        )
    if "arguments for this query" in str(exc) or "could not determine data type" in str(exc):
        return Hint(
            said,
            "The placeholders and the values must match: one $n per value, "
            f"len(chunk) * len(columns) in all ({target.width} a row here), numbered $1, $2, … "
            "across all the rows of the statement.",
        )
    insert = recorder.inserts[-1] if recorder.inserts else None
    if target == USERS and insert is not None and _columns(insert) != list(ROW_COLUMNS):
        return _column_order(_columns(insert), said)
    if isinstance(exc, asyncpg.DataError):  # the check's rows are valid: some value went astray
        return Hint(said, _row_after_row(target.width))
    return None


def _values_in_sql(recorder: Recorder, rows: Sequence[AnyRow]) -> Hint | None:
    for call in recorder.calls:
        for row in rows:
            for value in row:
                if isinstance(value, str) and value in call.sql:
                    return Hint(
                        f"the text of your SQL holds a row's value, {value!r}", _VALUES_APART
                    )
    return None


def _expect_multi_row(recorder: Recorder, budget: object) -> tuple[int, int]:
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
            "chunk of rows_per_statement(len(columns)) rows, and send it with one "
            "connection.execute().",
        )
    if statements > MANY // MIN_ROWS_PER_STATEMENT:
        yours = ""
        if (rows := _per_statement(budget, USERS.width)) is not None:
            yours = f" (yours is {budget:,}: {counted(rows, 'row')} of {USERS.width} values)"
        raise Hint(
            f"{said}, at most {most} rows each",
            f"Make the chunks bigger: at least {MIN_ROWS_PER_STATEMENT} rows a statement; "
            f"PARAMETERS_PER_STATEMENT sets how many values one carries{yours}. "
            "A few hundred rows is a good start.",
        )
    return statements, most


def _expect_width_counted(recorder: Recorder, budget: object) -> tuple[int, int]:
    """(statements, most rows in one) for :data:`NAMES`, or a hint that rows were counted at 5.

    Chunks cut at the users' 5 values a row are too short for these 3-value rows, and
    too long for a table of 200 columns: past asyncpg's limit.
    """
    statements = sum(call.executions for call in recorder.inserts)
    most = max((call.rows for call in recorder.inserts), default=0)
    expected = _per_statement(budget, NAMES.width)
    as_users = _per_statement(budget, USERS.width)
    if expected is not None and as_users is not None and most == as_users < expected:
        raise Hint(
            f"{NAMED:,} rows of {NAMES.width} values went at most {most:,} a statement "
            f"({most * NAMES.width:,} values), as many as rows of the users' "
            f"{USERS.width} values",
            f"Count a statement's rows by the width of these rows: "
            f"rows_per_statement(len(columns)), {expected:,} rows of {NAMES.width} values "
            f"in your PARAMETERS_PER_STATEMENT ({budget:,}). Counted at {USERS.width} a row, "
            f"a table of 200 columns would send {as_users * 200:,} values in one statement.",
        )
    return statements, most


def _target(call: Call) -> str | None:
    match = _INSERT.match(call.sql)
    return match.group(1).strip('"').replace('""', '"') if match else None


def _column_list(call: Call) -> str | None:
    """The text between the brackets after the table's name, or ``None`` if none."""
    match = _INSERT.match(call.sql)
    return match.group(2) if match else None


def _columns(call: Call) -> list[str] | None:
    listed = _column_list(call)
    if listed is None:
        return None
    return [name.strip().strip('"').lower() for name in listed.split(",")]
