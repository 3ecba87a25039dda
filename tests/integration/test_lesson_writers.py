"""Lesson 05's mechanism on the real servers: three writers alone, then the kit's in migrate()."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import pytest

from migrationkit import Endpoints, Settings
from migrationkit.workshop import lessons as L
from migrationkit.workshop.lessons import overlap as O
from migrationkit.workshop.lessons import writers_lesson as W

pytestmark = pytest.mark.integration

COLUMNS = ("mongo_id", "username", "email", "age", "registered_at")


@pytest.fixture
def lab(make_settings: Callable[..., Settings], servers: Endpoints) -> L.Lab:
    return L.Lab(make_settings(), servers)


def lesson_writers(table: str) -> dict[str, W.BatchWriter]:
    """The notebook's three writers, as a learner writes them."""
    insert = f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ($1, $2, $3, $4, $5)"

    async def copy_batch(pg: Any, rows: list[tuple[Any, ...]]) -> None:
        await pg.copy_records_to_table(table, records=rows, columns=COLUMNS)

    async def executemany_batch(pg: Any, rows: list[tuple[Any, ...]]) -> None:
        await pg.executemany(insert, rows)

    async def insert_each_row(pg: Any, rows: list[tuple[Any, ...]]) -> None:
        for row in rows:
            await pg.execute(insert, *row)

    return {"copy": copy_batch, "executemany": executemany_batch, "insert": insert_each_row}


async def test_prebuilt_rows_are_every_user_as_a_row_tuple(lab: L.Lab) -> None:
    await lab.seed(300)
    rows = await W.prebuilt_rows(lab, batch_size=100)
    assert len(rows) == 300
    assert {len(row) for row in rows} == {len(COLUMNS)}
    assert len({row[0] for row in rows}) == 300


async def test_writer_runs_time_each_writer_on_an_emptied_table(lab: L.Lab) -> None:
    await lab.seed(200)
    table = f"{lab.settings.pg_table}_writers"
    batches = W.in_batches(await W.prebuilt_rows(lab), 50)
    found: list[tuple[int, int]] = []

    async def write_all(pg_dsn: str, write: W.BatchWriter, batches: Sequence[list[Any]]) -> int:
        pg = await asyncpg.connect(pg_dsn)
        try:
            before = await pg.fetchval(f"SELECT count(*) FROM {table}")
            for rows in batches:
                async with pg.transaction():
                    await write(pg, rows)
            found.append((before, await pg.fetchval(f"SELECT count(*) FROM {table}")))
        finally:
            await pg.close()
        return sum(len(rows) for rows in batches)

    spreads = await W.writer_runs(
        write_all,
        lesson_writers(table),
        batches,
        pg_dsn=lab.endpoints.pg_dsn,
        table=table,
        repeats=2,
    )
    assert [(s.label, s.params["batch_size"], len(s.runs)) for s in spreads] == [
        ("copy", 50, 2),
        ("executemany", 50, 2),
        ("insert", 50, 2),
    ]
    assert found == [(0, 200)] * 6
    assert all(run.rows == 200 for s in spreads for run in s.runs)


async def test_writer_migrations_run_each_of_the_kits_writers(lab: L.Lab) -> None:
    await lab.seed(300)
    spreads = await W.writer_migrations(lab, workers=1, batch_size=100, repeats=1)
    assert [s.params["writer"] for s in spreads] == ["copy", "executemany", "insert"]
    for spread in spreads:
        (run,) = spread.runs
        assert run.report is not None
        assert run.report.writer == spread.params["writer"]
        assert run.rows == 300
    read = await O.read_alone(lab, batch_size=100, repeats=1)
    assert "Bound by" in W.migration_note(spreads, spreads, read=read)
