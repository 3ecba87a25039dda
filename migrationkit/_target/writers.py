"""Row writers: how a batch of rows gets into a PostgreSQL table, by name.

A row writer is ``async def write(connection, table, rows, columns) -> None``: it loads
``rows`` (tuples, their values in the order of ``columns``, the unquoted column names)
into ``table`` and raises on any row PostgreSQL refuses. It does not commit:
:meth:`~migrationkit._target.loader.BatchLoader.write_batch` wraps it in the batch's
transaction, finds refused rows and turns conflicts into upserts, whatever the writer.

Three are built in; :data:`ROW_WRITERS` takes more (``ROW_WRITERS.register``), or
an import path such as ``"insert_values:insert_values"``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from migrationkit._errors import ConfigurationError
from migrationkit._normalize.rows import Row
from migrationkit._registry import Registry

RowWriter = Callable[[Any, str, Sequence[Row], Sequence[str]], Awaitable[None]]


def quote_identifier(name: str) -> str:
    """Quote a name as an SQL identifier (any name: capitals, spaces, quotes)."""
    return '"' + name.replace('"', '""') + '"'


def insert_statement(table: str, columns: Sequence[str], rows: int = 1) -> str:
    """``INSERT INTO table (columns) VALUES ($1, …), (…)`` for ``rows`` rows of parameters."""
    width = len(columns)
    values = ", ".join(
        "(" + ", ".join(f"${row * width + column}" for column in range(1, width + 1)) + ")"
        for row in range(rows)
    )
    names = ", ".join(quote_identifier(column) for column in columns)
    return f"INSERT INTO {quote_identifier(table)} ({names}) VALUES {values}"


async def copy_rows(
    connection: Any, table: str, rows: Sequence[Row], columns: Sequence[str]
) -> None:
    """``COPY table FROM STDIN`` in PostgreSQL's binary format: the fastest way in."""
    await connection.copy_records_to_table(table, records=rows, columns=list(columns))


async def executemany_rows(
    connection: Any, table: str, rows: Sequence[Row], columns: Sequence[str]
) -> None:
    """One prepared INSERT, its parameters sent for every row in one round trip."""
    await connection.executemany(insert_statement(table, columns), rows)


async def insert_rows(
    connection: Any, table: str, rows: Sequence[Row], columns: Sequence[str]
) -> None:
    """One INSERT statement and one round trip per row: the slow baseline."""
    statement = insert_statement(table, columns)
    for row in rows:
        await connection.execute(statement, *row)


ROW_WRITERS: Registry[RowWriter] = Registry("writer")
ROW_WRITERS.register("copy", copy_rows)
ROW_WRITERS.register("executemany", executemany_rows)
ROW_WRITERS.register("insert", insert_rows)

#: The built-in writers' names (the CLI's choices, the benchmark's writers).
WRITERS: tuple[str, ...] = tuple(ROW_WRITERS.names())


def row_writer(writer: str | RowWriter) -> RowWriter:
    """A writer function from its name, its import path, or itself.

    A function that cannot take ``(connection, table, rows, columns)`` is refused here,
    with the reason: called per batch, its ``TypeError`` would look like bad rows.
    """
    function = ROW_WRITERS.get(writer) if isinstance(writer, str) else writer
    try:
        inspect.signature(function).bind(None, "table", [], [])
    except TypeError:
        name = writer if isinstance(writer, str) else getattr(writer, "__name__", repr(writer))
        raise ConfigurationError(
            f"writer {name!r} must take (connection, table, rows, columns): "
            "the columns it writes come last"
        ) from None
    except ValueError:  # no signature to read (a builtin): let the first call tell
        pass
    return function
