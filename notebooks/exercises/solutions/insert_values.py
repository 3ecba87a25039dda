"""Exercise 3 · One statement, many rows: a writer that batches INSERT … VALUES.

A *row writer* loads one batch of rows into a PostgreSQL table. The slowest way
sends one ``INSERT`` per row and waits for PostgreSQL's answer every time: a
network round trip, a statement to parse and plan, a reply, per row. Your writer
puts many rows into one statement instead::

    INSERT INTO "users" ("mongo_id", "username", "email", "age", "registered_at")
    VALUES ($1, $2, $3, $4, $5), ($6, $7, $8, $9, $10), …

and sends the values beside it as parameters, so one round trip carries hundreds
of rows. The values never go into the SQL text: PostgreSQL receives them apart
from the statement and never reads them as SQL, which is why a user called
``O'Brien`` (or ``x'); DROP TABLE users; --``) is stored exactly as written.

The migration tells the writer which columns it writes: the users' five, or any
other collection's, whose names may hold capitals, spaces, quotes or any letter
(``Order Date``, ``ключ``). Names do go into the SQL text, so each one is quoted as
an identifier: :func:`quote`.

A statement cannot take unlimited parameters. PostgreSQL's protocol counts them
in 16 bits (at most 65,535), and asyncpg refuses more than 32,767 ("the number
of query arguments cannot exceed 32767"). So a batch is cut into chunks counted
in values: at 5 values a row a statement holds at most 6,553 rows, at 3 values
10,922, at 200 values 163.

COPY (the ``copy`` writer) is still faster: it streams rows in PostgreSQL's binary
format with no SQL to parse. But ``INSERT … VALUES`` works wherever SQL does, and
can do what COPY cannot, such as ``ON CONFLICT DO UPDATE``.
"""

from collections.abc import Sequence
from typing import Any

from migrationkit._normalize.rows import Row

#: How many values (parameters) one INSERT statement carries: 1,250 is 250 rows of
#: the users' 5 columns, or 416 rows of 3. It is counted in values, not rows, because
#: both limits are: above 32,767 asyncpg refuses the statement, and asyncpg keeps a
#: statement prepared for reuse only while its text is under 15 KiB, about 2,200
#: values (440 rows of users); a longer one is parsed and planned afresh every time,
#: which costs more than it saves. 5 is row-by-row INSERT again, for the users.
PARAMETERS_PER_STATEMENT = 1_250


def quote(name: str) -> str:
    """``name`` as an SQL identifier: ``Order Date`` becomes ``"Order Date"``.

    In double quotes PostgreSQL takes a name exactly as written (unquoted, it folds
    ``Order`` to ``order`` and stops at the space); a double quote inside the name
    is written twice: ``a"b`` becomes ``"a""b"``.
    """
    return '"' + name.replace('"', '""') + '"'


def rows_per_statement(width: int) -> int:
    """How many rows of ``width`` values fit in ``PARAMETERS_PER_STATEMENT`` (at least 1)."""
    return max(1, PARAMETERS_PER_STATEMENT // width)


def placeholders(rows: int, width: int) -> str:
    """The ``VALUES`` list for ``rows`` rows of ``width`` parameters each.

    ``placeholders(2, 3)`` is ``"($1, $2, $3), ($4, $5, $6)"``: parameters are
    numbered from ``$1`` on, across all the rows of the statement.
    """
    # BEGIN SOLUTION
    return ", ".join(
        "(" + ", ".join(f"${row * width + column}" for column in range(1, width + 1)) + ")"
        for row in range(rows)
    )
    # END SOLUTION


async def insert_values(
    connection: Any, table: str, rows: Sequence[Row], columns: Sequence[str]
) -> None:
    """Insert ``rows`` into ``table``, ``rows_per_statement(len(columns))`` rows a statement.

    ``columns`` are the column names, unquoted, in the order of each row's values:
    for the users, ``("mongo_id", "username", "email", "age", "registered_at")``;
    for another collection, any names, and any number of them. Quote every name,
    the table's too, with ``quote()``. Send each statement with
    ``await connection.execute(sql, *values)``: ``values`` are the chunk's row
    values one after another, the first row's, then the next row's, and so on.
    Do not commit: the migration wraps your writer in the batch's transaction.
    """
    # BEGIN SOLUTION
    # STUB: # TODO: name the columns, each one quoted: ", ".join(quote(c) for c in columns).
    # STUB: # Then for each chunk of at most rows_per_statement(len(columns)) rows (the
    # STUB: # last one may be shorter): build the INSERT with placeholders(len(chunk),
    # STUB: # len(columns)), flatten the chunk's values into one list, and execute the two.
    # STUB: raise NotImplementedError("insert_values: write this part")
    names = ", ".join(quote(column) for column in columns)
    width = len(columns)
    per_statement = rows_per_statement(width)
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        values = [value for row in chunk for value in row]
        sql = f"INSERT INTO {quote(table)} ({names}) VALUES {placeholders(len(chunk), width)}"
        await connection.execute(sql, *values)
    # END SOLUTION
