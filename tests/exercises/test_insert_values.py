"""Exercise 3 (insert_values): the solution passes, the stub and common mistakes get their hints.

Each mistake is the solution with one edit, as a learner might make it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from migrationkit import Endpoints
from migrationkit.workshop.exercises import insert_values
from migrationkit.workshop.exercises.feedback import Feedback
from migrationkit.workshop.exercises.learner import load
from tests.exercises.conftest import EXERCISES, SOLUTIONS

pytestmark = pytest.mark.integration

SOLUTION = (SOLUTIONS / "insert_values.py").read_text()
NOTEBOOK = EXERCISES / "ex3_insert_values.ipynb"
NAMES = '    names = ", ".join(quote(column) for column in columns)\n'
LOOP = (
    NAMES
    + """    width = len(columns)
    per_statement = rows_per_statement(width)
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        values = [value for row in chunk for value in row]
        sql = f"INSERT INTO {quote(table)} ({names}) VALUES {placeholders(len(chunk), width)}"
        await connection.execute(sql, *values)
"""
)


def edited(old: str, new: str) -> str:
    """The solution with one piece of text replaced (which must be there)."""
    assert old in SOLUTION, old
    return SOLUTION.replace(old, new)


def body(code: str) -> str:
    """The solution with the body of ``insert_values`` replaced by ``code``."""
    return edited(LOOP, code)


async def check(folder: Path) -> Feedback:
    return await insert_values.check(load("insert_values", folder))


async def test_the_solution_passes_every_step() -> None:
    feedback = await check(SOLUTIONS)
    assert feedback.ok, str(feedback)
    assert feedback.passed[-1][0] == "moves real data from MongoDB to PostgreSQL"
    assert "2,000 users copied into PostgreSQL by your writer" in str(feedback)
    assert "10,007 rows (50,035 values" in str(feedback)
    assert "1,000 rows of 3 columns" in str(feedback)


async def test_the_untouched_stub_fails_with_the_stub_hint() -> None:
    feedback = await check(EXERCISES)
    assert not feedback.ok
    assert feedback.hint == insert_values.STUB_HINT
    assert "placeholders() is not written yet" in str(feedback)


async def test_an_unwritten_insert_values_gets_the_stub_hint(
    variant: Callable[[str, str], Path],
) -> None:
    source = body('    raise NotImplementedError("insert_values: write this part")\n')
    feedback = await check(variant("insert_values", source))
    assert feedback.hint == insert_values.STUB_HINT
    assert "insert_values() is not written yet" in str(feedback)


ONE_PER_ROW = (
    NAMES
    + """    for row in rows:
        sql = f"INSERT INTO {quote(table)} ({names}) VALUES {placeholders(1, len(columns))}"
        await connection.execute(sql, *row)
"""
)
EXECUTEMANY = (
    NAMES
    + """    sql = f"INSERT INTO {quote(table)} ({names}) VALUES {placeholders(1, len(columns))}"
    await connection.executemany(sql, rows)
"""
)
FORMATTED = (
    """    def literal(value):
        return "NULL" if value is None else "'" + str(value) + "'"

"""
    + NAMES
    + """    per_statement = rows_per_statement(len(columns))
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        tuples = ", ".join("(" + ", ".join(map(literal, row)) + ")" for row in chunk)
        await connection.execute(f"INSERT INTO {quote(table)} ({names}) VALUES {tuples}")
"""
)
ESCAPED = FORMATTED.replace(
    '"\'" + str(value) + "\'"', '"\'" + str(value).replace("\'", "\'\'") + "\'"'
)
NO_CHUNKS = (
    NAMES
    + """    values = [value for row in rows for value in row]
    sql = f"INSERT INTO {quote(table)} ({names}) VALUES {placeholders(len(rows), len(columns))}"
    await connection.execute(sql, *values)
"""
)
NO_AWAIT = LOOP.replace("        await connection.execute", "        connection.execute")
GATHER = (
    """    import asyncio

"""
    + NAMES
    + """    width = len(columns)
    per_statement = rows_per_statement(width)
    statements = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        values = [value for row in chunk for value in row]
        sql = f"INSERT INTO {quote(table)} ({names}) VALUES {placeholders(len(chunk), width)}"
        statements.append(connection.execute(sql, *values))
    await asyncio.gather(*statements)
"""
)
OVERLAP = LOOP.replace(
    "rows[start : start + per_statement]", "rows[start : start + 2 * per_statement]"
)
QUOTED_NAMES = "quote(column) for column in columns"


@pytest.mark.parametrize(
    ("source", "step", "hint"),
    [
        (body(ONE_PER_ROW), "one statement carries many rows", "Put many rows in one statement"),
        (body(EXECUTEMANY), "one statement carries many rows", "executemany is the built-in"),
        (body(FORMATTED), "writes awkward rows exactly", "PostgreSQL never reads a parameter"),
        (body(ESCAPED), "values travel as parameters", "PostgreSQL never reads a parameter"),
        (body(NO_CHUNKS), "a batch of 10,007 rows", "at most 6,553 rows a statement"),
        (
            edited("PARAMETERS_PER_STATEMENT = 1_250", "PARAMETERS_PER_STATEMENT = 50_000"),
            "a batch of 10,007 rows",
            "(yours is 50,000)",
        ),
        (
            edited("PARAMETERS_PER_STATEMENT = 1_250", "PARAMETERS_PER_STATEMENT = 10"),
            "one statement carries many rows",
            "Make the chunks bigger",
        ),
        (
            edited("range(0, len(rows), per_statement)", "range(len(rows) // per_statement)"),
            "writes awkward rows exactly",
            "there is one chunk, shorter than the rest: send it too",
        ),
        (
            edited(
                "range(0, len(rows), per_statement)",
                "range(0, len(rows) - per_statement + 1, per_statement)",
            ).replace("PARAMETERS_PER_STATEMENT = 1_250", "PARAMETERS_PER_STATEMENT = 15"),
            "writes awkward rows exactly",
            "The last chunk is usually shorter",
        ),
        (
            edited(
                QUOTED_NAMES, "quote(column) for column in [columns[1], columns[0], *columns[2:]]"
            ),
            "writes awkward rows exactly",
            "name the columns in that order",
        ),
        (
            edited(QUOTED_NAMES, "quote(column) for column in sorted(columns)"),
            "writes awkward rows exactly",
            "name the columns in that order",
        ),
        (
            edited(
                "INSERT INTO {quote(table)} ({names}) VALUES", "INSERT INTO {quote(table)} VALUES"
            ),
            "writes awkward rows exactly",
            "the table also has an id column",
        ),
        (
            edited("INSERT INTO {quote(table)}", "INSERT INTO users"),
            "writes awkward rows exactly",
            "Write into the table insert_values() is given",
        ),
        (body(NO_AWAIT), "writes awkward rows exactly", "Put await in front"),
        (body(GATHER), "one statement carries many rows", "One connection runs one statement"),
        (body(OVERLAP), "one statement carries many rows", "The chunks overlap"),
        (
            edited(
                "[value for row in chunk for value in row]",
                "[row[i] for i in range(width) for row in chunk]",
            ),
            "writes awkward rows exactly",
            "the first row takes $1 to $5",
        ),
        (
            edited("async def insert_values", "def insert_values").replace(
                "        await connection", "        connection"
            ),
            "writes awkward rows exactly",
            "Define it with async def",
        ),
        (
            edited(", rows: Sequence[Row], columns: Sequence[str]", ", rows: Sequence[Row]"),
            "writes awkward rows exactly",
            "async def insert_values(connection, table, rows, columns)",
        ),
        (
            edited('f"${row * width + column}"', 'f"${column}"'),
            "placeholders() numbers the parameters",
            "the numbers go on across rows",
        ),
        (
            edited(NAMES, '    names = ", ".join(columns)\n'),
            "quotes the columns it is given",
            "Quote every column name with quote()",
        ),
        (
            edited(QUOTED_NAMES, "f'\"{column}\"' for column in columns"),
            "quotes the columns it is given",
            "a double quote is written twice",
        ),
        (
            edited(NAMES, '    names = "mongo_id, username, email, age, registered_at"\n'),
            "quotes the columns it is given",
            "the users' five are only one case",
        ),
        (
            edited("width = len(columns)", "width = 5"),
            "quotes the columns it is given",
            "5 is only the users' width",
        ),
        (
            edited("rows_per_statement(width)\n", "rows_per_statement(5)\n"),
            "quotes the columns it is given",
            "Count a statement's rows by the width of these rows",
        ),
    ],
    ids=[
        "one-insert-per-row",
        "executemany",
        "values-pasted-into-sql",
        "values-escaped-into-sql",
        "one-statement-for-everything",
        "too-many-values-per-statement",
        "tiny-chunks",
        "drops-the-partial-chunk",
        "drops-the-last-chunk",
        "swapped-text-columns",
        "sorted-columns",
        "no-column-list",
        "fixed-table-name",
        "forgot-await",
        "gather-on-one-connection",
        "overlapping-chunks",
        "values-column-by-column",
        "not-async",
        "no-columns-parameter",
        "placeholders-restart-each-row",
        "columns-not-quoted",
        "quote-inside-a-name-not-doubled",
        "users-columns-hard-coded",
        "width-taken-as-five",
        "rows-per-statement-counted-at-five",
    ],
)
async def test_a_common_mistake_gets_its_own_hint(
    source: str, step: str, hint: str, variant: Callable[[str, str], Path]
) -> None:
    feedback = await check(variant("insert_values", source))
    assert not feedback.ok
    assert feedback.failed is not None
    assert feedback.failed[0].startswith(step), str(feedback)
    assert hint in feedback.hint, str(feedback)


async def test_no_placeholders_function_is_fine_but_its_numbering_is_checked(
    variant: Callable[[str, str], Path],
) -> None:
    inline = (
        NAMES
        + """    per_statement = rows_per_statement(len(columns))
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        row = "(" + ", ".join(f"${i}" for i in range(1, len(columns) + 1)) + ")"
        values = [value for row in chunk for value in row]
        sql = f"INSERT INTO {quote(table)} ({names}) VALUES " + ", ".join([row] * len(chunk))
        await connection.execute(sql, *values)
"""
    )
    source = body(inline).replace("def placeholders", "def _unused_placeholders")
    feedback = await check(variant("insert_values", source))
    assert "you build the VALUES list your own way" in feedback.passed[0][1]
    assert "one $n per value" in feedback.hint, str(feedback)


async def test_nothing_the_checks_write_stays_behind(
    servers: Endpoints, variant: Callable[[str, str], Path]
) -> None:
    for source in (
        body(FORMATTED),
        body(ESCAPED),
        edited("INSERT INTO {quote(table)}", "INSERT INTO users"),
        edited(NAMES, '    names = ", ".join(columns)\n'),
        edited("rows_per_statement(width)\n", "rows_per_statement(5)\n"),
    ):
        await check(variant("insert_values", source))
    connection = await asyncpg.connect(servers.pg_dsn)
    try:
        leftovers = [
            await connection.fetchval("SELECT to_regclass($1)", f'"{table}"')
            for table in (insert_values.SCRATCH, insert_values.NAMES_SCRATCH)
        ]
    finally:
        await connection.close()
    assert leftovers == [None, None]


#: Until ``insert_values`` is in ``exercises.EXERCISES``, the notebook's kernel registers it.
