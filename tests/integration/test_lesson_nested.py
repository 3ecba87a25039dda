"""Lesson 08 on the real servers, at a tiny size: three layouts, the same answers, every size."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from migrationkit import Endpoints
from migrationkit.workshop.lessons import nested as N
from migrationkit.workshop.lessons.nested_sql import LAYOUTS

pytestmark = pytest.mark.integration

CUSTOMERS = 300


@dataclass(frozen=True)
class Lesson:
    shop: N.Shop
    migrated: N.Migrated


@pytest.fixture(scope="module")
async def lesson(servers: Endpoints) -> AsyncIterator[Lesson]:
    """300 customers, migrated under all three mappings, the lesson's indexes added."""
    shop = await N.open_shop(
        CUSTOMERS,
        collection="it08_customers",
        prefix="it08",
        mongo_uri=servers.mongo_uri,
        pg_dsn=servers.pg_dsn,
    )
    migrated = await N.migrate_layouts(shop, repeats=1)
    await N.add_indexes(shop)
    try:
        yield Lesson(shop, migrated)
    finally:
        await N.drop_layouts(shop)


@pytest.fixture
def shop(lesson: Lesson) -> N.Shop:
    return lesson.shop


async def test_every_layout_holds_every_customer_and_the_child_table_every_order(
    shop: N.Shop,
) -> None:
    rows = await N.count_rows(shop)
    assert rows == {
        "it08_jsonb": CUSTOMERS,
        "it08_flatten": CUSTOMERS,
        "it08_child": CUSTOMERS,
        "it08_child__orders": shop.orders,
    }


async def test_all_three_layouts_answer_every_question_with_the_same_result(
    shop: N.Shop,
) -> None:
    answers = await N.ask(shop)
    assert set(answers) == {question.key for question in shop.questions}
    assert N.disagreements(answers) == []
    assert all(N.answer_size(answers[key]["jsonb"]) > 0 for key in answers)


async def test_the_rows_answers_carry_the_columns_the_lesson_names(shop: N.Shop) -> None:
    async with N.connect(shop) as connection:
        for question in (q for q in shop.questions if q.kind == "rows"):
            for layout in LAYOUTS:
                (sql,) = question.sql[layout]
                record = await connection.fetchrow(sql)
                assert tuple(record.keys()) == question.columns, (question.key, layout)


async def test_the_document_put_back_together_equals_mongodbs(shop: N.Shop) -> None:
    answers = await N.ask(shop)
    source = {key: value for key, value in (await N.source_document(shop)).items() if key != "_id"}
    assert all(document == source for document in answers["document"].values())


async def test_the_no_index_connection_scans_and_the_indexed_one_uses_the_lessons_indexes(
    shop: N.Shop,
) -> None:
    plans = await N.plans(shop)
    assert all(
        scan.startswith("Seq Scan")
        for (_, _, state), scans in plans.items()
        if state == N.NO_INDEX
        for scan in scans
    )
    assert "Bitmap Index Scan on it08_jsonb_orders_gin" in plans[("bought", "jsonb", N.INDEXED)]
    assert any("it08_child__orders_pkey" in s for s in plans[("document", "child", N.INDEXED)])


async def test_every_question_is_timed_both_ways_on_every_layout(shop: N.Shop) -> None:
    timings = await N.time_questions(shop, repeats=2)
    assert len(timings.spreads) == len(shop.questions) * len(LAYOUTS) * len(N.STATES)
    assert all(len(spread.runs) == 2 and spread.seconds > 0 for spread in timings.spreads)
    executions = {spread.label: spread.runs[0].extra["executions"] for spread in timings.spreads}
    assert executions[f"document jsonb {N.INDEXED}"] > 1  # a quick lookup: several a run
    assert not timings.index_used("revenue", "jsonb")  # an aggregation over every row
    assert timings.index_used("bought", "jsonb")


async def test_the_sizes_add_up_to_pg_total_relation_size_and_count_the_lessons_indexes(
    shop: N.Shop,
) -> None:
    sizes = await N.table_sizes(shop)
    assert {size.table for size in sizes} == {
        "it08_jsonb",
        "it08_flatten",
        "it08_child",
        "it08_child__orders",
    }
    for size in sizes:
        assert sum(size.parts.values()) == size.total
        assert size.key_index > 0
        assert size.lesson_index > 0
    compressed = await N.compressed_shares(shop)
    assert set(compressed) == {
        ("it08_jsonb", "address"),
        ("it08_jsonb", "orders"),
        ("it08_flatten", "orders"),
        ("it08_child__orders", "items"),
    }


async def test_each_layout_was_migrated_and_timed_by_its_report(lesson: Lesson) -> None:
    migrated = lesson.migrated
    assert set(migrated.runs) == set(LAYOUTS)
    assert migrated.read.runs[0].rows == CUSTOMERS  # the source read alone, in the same rounds
    for layout in LAYOUTS:
        report = migrated.reports[layout]
        assert report.rows_written == CUSTOMERS
        assert migrated.runs[layout].seconds == report.elapsed_s


async def test_a_second_open_reuses_the_collection(shop: N.Shop, servers: Endpoints) -> None:
    again = await N.open_shop(
        CUSTOMERS,
        collection="it08_customers",
        prefix="it08",
        fresh_tables=False,  # the other tests' tables stay
        mongo_uri=servers.mongo_uri,
        pg_dsn=servers.pg_dsn,
    )
    assert again.seeded_s is None
    assert (again.customer, again.city) == (shop.customer, shop.city)


async def test_migrating_again_starts_without_the_indexes_an_earlier_run_added(
    servers: Endpoints,
) -> None:
    shop = await N.open_shop(
        50, collection="it08b_customers", prefix="it08b", mongo_uri=servers.mongo_uri,
        pg_dsn=servers.pg_dsn,
    )  # fmt: skip
    try:
        await N.migrate_layouts(shop, repeats=1)
        await N.add_indexes(shop)
        await N.migrate_layouts(shop, repeats=1)
        assert all(size.lesson_index == 0 for size in await N.table_sizes(shop))
    finally:
        await N.drop_layouts(shop)
