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
LOOP = """    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        values = [value for row in chunk for value in row]
        sql = f'INSERT INTO "{table}" ({COLUMNS}) VALUES {placeholders(len(chunk), WIDTH)}'
        await connection.execute(sql, *values)
"""


def edited(old: str, new: str) -> str:
    """The solution with one piece of text replaced (which must be there)."""
    assert old in SOLUTION, old
    return SOLUTION.replace(old, new)


def body(code: str) -> str:
    """The solution with the chunk loop of ``insert_values`` replaced by ``code``."""
    return edited(LOOP, code)


async def check(folder: Path) -> Feedback:
    return await insert_values.check(load("insert_values", folder))


async def test_the_solution_passes_every_step() -> None:
    feedback = await check(SOLUTIONS)
    assert feedback.ok, str(feedback)
    assert feedback.passed[-1][0] == "moves real data from MongoDB to PostgreSQL"
    assert "2,000 users copied into PostgreSQL by your writer" in str(feedback)
    assert "10,007 rows (50,035 values" in str(feedback)


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


ONE_PER_ROW = """    for row in rows:
        await connection.execute(
            f'INSERT INTO "{table}" ({COLUMNS}) VALUES {placeholders(1, WIDTH)}', *row
        )
"""
EXECUTEMANY = """    sql = f'INSERT INTO "{table}" ({COLUMNS}) VALUES {placeholders(1, WIDTH)}'
    await connection.executemany(sql, rows)
"""
FORMATTED = """    def literal(value):
        return "NULL" if value is None else "'" + str(value) + "'"

    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        tuples = ", ".join("(" + ", ".join(map(literal, row)) + ")" for row in chunk)
        await connection.execute(f'INSERT INTO "{table}" ({COLUMNS}) VALUES {tuples}')
"""
ESCAPED = FORMATTED.replace(
    '"\'" + str(value) + "\'"', '"\'" + str(value).replace("\'", "\'\'") + "\'"'
)
NO_CHUNKS = """    values = [value for row in rows for value in row]
    sql = f'INSERT INTO "{table}" ({COLUMNS}) VALUES {placeholders(len(rows), WIDTH)}'
    await connection.execute(sql, *values)
"""
NO_AWAIT = LOOP.replace("        await connection.execute", "        connection.execute")
GATHER = """    import asyncio

    statements = []
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        values = [value for row in chunk for value in row]
        sql = f'INSERT INTO "{table}" ({COLUMNS}) VALUES {placeholders(len(chunk), WIDTH)}'
        statements.append(connection.execute(sql, *values))
    await asyncio.gather(*statements)
"""
OVERLAP = LOOP.replace("rows[start : start + ROWS_PER_STATEMENT]", "rows[start : start + 2 * 250]")


@pytest.mark.parametrize(
    ("source", "step", "hint"),
    [
        (body(ONE_PER_ROW), "one statement carries many rows", "Put many rows in one statement"),
        (body(EXECUTEMANY), "one statement carries many rows", "executemany is the built-in"),
        (body(FORMATTED), "writes awkward rows exactly", "PostgreSQL never reads a parameter"),
        (body(ESCAPED), "values travel as parameters", "PostgreSQL never reads a parameter"),
        (body(NO_CHUNKS), "a batch of 10,007 rows", "at most 6,553 rows a statement"),
        (
            edited("ROWS_PER_STATEMENT = 250", "ROWS_PER_STATEMENT = 10_000"),
            "a batch of 10,007 rows",
            "(yours is 10,000)",
        ),
        (
            edited("ROWS_PER_STATEMENT = 250", "ROWS_PER_STATEMENT = 2"),
            "one statement carries many rows",
            "Make the chunks bigger",
        ),
        (
            edited(
                "range(0, len(rows), ROWS_PER_STATEMENT)", "range(len(rows) // ROWS_PER_STATEMENT)"
            ),
            "writes awkward rows exactly",
            "there is one chunk, shorter than the rest: send it too",
        ),
        (
            edited(
                "range(0, len(rows), ROWS_PER_STATEMENT)",
                "range(0, len(rows) - ROWS_PER_STATEMENT + 1, ROWS_PER_STATEMENT)",
            ).replace("ROWS_PER_STATEMENT = 250", "ROWS_PER_STATEMENT = 3"),
            "writes awkward rows exactly",
            "The last chunk is usually shorter",
        ),
        (
            edited('", ".join(ROW_COLUMNS)', '"username, mongo_id, email, age, registered_at"'),
            "writes awkward rows exactly",
            "name the columns in that order",
        ),
        (
            edited('", ".join(ROW_COLUMNS)', '"mongo_id, username, email, registered_at, age"'),
            "writes awkward rows exactly",
            "name the columns in that order",
        ),
        (
            edited('INSERT INTO "{table}" ({COLUMNS}) VALUES', 'INSERT INTO "{table}" VALUES'),
            "writes awkward rows exactly",
            "the table also has an id column",
        ),
        (
            edited('INSERT INTO "{table}"', "INSERT INTO users"),
            "writes awkward rows exactly",
            "Write into the table insert_values() is given",
        ),
        (body(NO_AWAIT), "writes awkward rows exactly", "Put await in front"),
        (body(GATHER), "one statement carries many rows", "One connection runs one statement"),
        (body(OVERLAP), "one statement carries many rows", "The chunks overlap"),
        (
            edited(
                "[value for row in chunk for value in row]",
                "[row[i] for i in range(WIDTH) for row in chunk]",
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
            edited('f"${row * width + column}"', 'f"${column}"'),
            "placeholders() numbers the parameters",
            "the numbers go on across rows",
        ),
    ],
    ids=[
        "one-insert-per-row",
        "executemany",
        "values-pasted-into-sql",
        "values-escaped-into-sql",
        "one-statement-for-everything",
        "too-many-rows-per-statement",
        "tiny-chunks",
        "drops-the-partial-chunk",
        "drops-the-last-chunk",
        "swapped-text-columns",
        "swapped-typed-columns",
        "no-column-list",
        "fixed-table-name",
        "forgot-await",
        "gather-on-one-connection",
        "overlapping-chunks",
        "values-column-by-column",
        "not-async",
        "placeholders-restart-each-row",
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
    inline = """    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        row = "(" + ", ".join(f"${i}" for i in range(1, WIDTH + 1)) + ")"
        values = [value for row in chunk for value in row]
        sql = f'INSERT INTO "{table}" ({COLUMNS}) VALUES ' + ", ".join([row] * len(chunk))
        await connection.execute(sql, *values)
"""
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
        edited('INSERT INTO "{table}"', "INSERT INTO users"),
    ):
        await check(variant("insert_values", source))
    connection = await asyncpg.connect(servers.pg_dsn)
    try:
        leftover = await connection.fetchval("SELECT to_regclass($1)", insert_values.SCRATCH)
    finally:
        await connection.close()
    assert leftover is None


#: Until ``insert_values`` is in ``exercises.EXERCISES``, the notebook's kernel registers it.
