"""Exercise 3 · One statement, many rows: a writer that batches INSERT … VALUES.

A *row writer* loads one batch of rows into a PostgreSQL table. The slowest way
sends one ``INSERT`` per row and waits for PostgreSQL's answer every time: a
network round trip, a statement to parse and plan, a reply, per row. Your writer
puts many rows into one statement instead::

    INSERT INTO "users" (mongo_id, username, email, age, registered_at)
    VALUES ($1, $2, $3, $4, $5), ($6, $7, $8, $9, $10), …

and sends the values beside it as parameters, so one round trip carries hundreds
of rows. The values never go into the SQL text: PostgreSQL receives them apart
from the statement and never reads them as SQL, which is why a user called
``O'Brien`` (or ``x'); DROP TABLE users; --``) is stored exactly as written.

A statement cannot take unlimited parameters. PostgreSQL's protocol counts them
in 16 bits (at most 65,535), and asyncpg refuses more than 32,767 ("the number
of query arguments cannot exceed 32767"). At 5 values a row, that is at most
6,553 rows in one statement: a batch larger than that is sent in chunks.

COPY (the ``copy`` writer) is still faster: it streams rows in PostgreSQL's binary
format with no SQL to parse. But ``INSERT … VALUES`` works wherever SQL does, and
can do what COPY cannot, such as ``ON CONFLICT DO UPDATE``.
"""

from collections.abc import Sequence
from typing import Any

from migrationkit._normalize.rows import ROW_COLUMNS, Row

#: The column list of every INSERT, in the order each row's values come:
#: "mongo_id, username, email, age, registered_at".
COLUMNS = ", ".join(ROW_COLUMNS)
#: How many values each row holds (5): the parameters one row takes.
WIDTH = len(ROW_COLUMNS)

#: How many rows one INSERT statement carries (the last one may carry fewer).
#: 1 is row-by-row INSERT again; above 6,553 rows of 5 values asyncpg refuses the
#: statement. And mind the SQL's length: asyncpg keeps a statement prepared for
#: reuse only while its text is under 15 KiB (about 430 rows here); a longer one
#: is parsed and planned afresh every time, which costs more than it saves.
ROWS_PER_STATEMENT = 250


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


async def insert_values(connection: Any, table: str, rows: Sequence[Row]) -> None:
    """Insert ``rows`` into ``table``, up to ``ROWS_PER_STATEMENT`` rows a statement.

    ``rows`` are tuples in the order of ``COLUMNS`` (mongo_id, username, email,
    age, registered_at); ``table`` is a plain name (letters, digits, underscores), so
    ``f'"{table}"'`` quotes it. Send each statement with
    ``await connection.execute(sql, *values)``: ``values`` are the chunk's row
    values one after another, the first row's five, then the next row's, and so on.
    Do not commit: the migration wraps your writer in the batch's transaction.
    """
    # BEGIN SOLUTION
    # STUB: # TODO: for each chunk of at most ROWS_PER_STATEMENT rows (the last one
    # STUB: # may be shorter): build the INSERT with placeholders(len(chunk), WIDTH),
    # STUB: # flatten the chunk's values into one list, and execute the two together.
    # STUB: raise NotImplementedError("insert_values: write this part")
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        values = [value for row in chunk for value in row]
        sql = f'INSERT INTO "{table}" ({COLUMNS}) VALUES {placeholders(len(chunk), WIDTH)}'
        await connection.execute(sql, *values)
    # END SOLUTION
