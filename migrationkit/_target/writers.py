"""Row writers: how a batch of rows gets into a PostgreSQL table, by name.

A row writer is ``async def write(connection, table, rows) -> None``: it loads
``rows`` (tuples in :data:`~migrationkit._normalize.rows.ROW_COLUMNS` order) into ``table``
(a plain name: letters, digits and underscores) and raises on any row PostgreSQL
refuses. It does not commit:
:meth:`UserPostgresRepository.write_batch` wraps it in the batch's transaction,
finds refused rows and turns conflicts into upserts, whatever the writer.

Three are built in; :data:`ROW_WRITERS` takes more (``ROW_WRITERS.register``), or
an import path such as ``"insert_values:insert_values"``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from migrationkit._normalize.rows import ROW_COLUMNS, Row
from migrationkit._registry import Registry

RowWriter = Callable[[Any, str, Sequence[Row]], Awaitable[None]]


def quote_identifier(name: str) -> str:
    """Quote a name as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def insert_statement(table: str, rows: int = 1) -> str:
    """``INSERT INTO table (columns) VALUES ($1, …), (…)`` for ``rows`` rows of parameters."""
    width = len(ROW_COLUMNS)
    values = ", ".join(
        "(" + ", ".join(f"${row * width + column}" for column in range(1, width + 1)) + ")"
        for row in range(rows)
    )
    return f"INSERT INTO {quote_identifier(table)} ({', '.join(ROW_COLUMNS)}) VALUES {values}"


async def copy_rows(connection: Any, table: str, rows: Sequence[Row]) -> None:
    """``COPY table FROM STDIN`` in PostgreSQL's binary format: the fastest way in."""
    await connection.copy_records_to_table(table, records=rows, columns=ROW_COLUMNS)


async def executemany_rows(connection: Any, table: str, rows: Sequence[Row]) -> None:
    """One prepared INSERT, its parameters sent for every row in one round trip."""
    await connection.executemany(insert_statement(table), rows)


async def insert_rows(connection: Any, table: str, rows: Sequence[Row]) -> None:
    """One INSERT statement and one round trip per row: the slow baseline."""
    statement = insert_statement(table)
    for row in rows:
        await connection.execute(statement, *row)


ROW_WRITERS: Registry[RowWriter] = Registry("writer")
ROW_WRITERS.register("copy", copy_rows)
ROW_WRITERS.register("executemany", executemany_rows)
ROW_WRITERS.register("insert", insert_rows)

#: The built-in writers' names (the CLI's choices, the benchmark's writers).
WRITERS: tuple[str, ...] = tuple(ROW_WRITERS.names())


def row_writer(writer: str | RowWriter) -> RowWriter:
    """A writer function from its name, its import path, or itself."""
    return ROW_WRITERS.get(writer) if isinstance(writer, str) else writer
