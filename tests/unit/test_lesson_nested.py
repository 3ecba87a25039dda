"""Lesson 08's pure parts: the generated orders, the three mappings, the SQL, the sentences."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal

import pytest
from bson import Decimal128

from migrationkit._mapping.normalize import normalize
from migrationkit._mapping.restore import restore_document
from migrationkit.workshop.lessons import nested as N
from migrationkit.workshop.lessons import nested_notes as T
from migrationkit.workshop.lessons.nested_sql import (
    LAYOUTS,
    Layout,
    Question,
    lesson_indexes,
    literal,
    questions,
    shop_mappings,
    sql_markdown,
    tables_of,
)
from migrationkit.workshop.lessons.orders import ITEMS, ORDERS, OrdersFactory, customer_id, sku
from migrationkit.workshop.lessons.overlap import Spread
from migrationkit.workshop.lessons.results import Measurement

# -- the generated orders ----------------------------------------------------------------


def test_the_same_seed_gives_the_same_documents() -> None:
    assert list(OrdersFactory(seed=7).customers(50)) == list(OrdersFactory(seed=7).customers(50))


def test_another_seed_gives_other_documents() -> None:
    assert list(OrdersFactory(seed=7).customers(5)) != list(OrdersFactory(seed=8).customers(5))


def test_a_customer_id_depends_only_on_the_seed_and_the_number() -> None:
    documents = list(OrdersFactory(seed=7).customers(3))
    assert [d["_id"] for d in documents] == [customer_id(n, seed=7) for n in range(3)]


def test_orders_and_line_items_stay_within_their_ranges_and_prices_come_from_the_catalogue() -> (
    None
):
    factory = OrdersFactory(seed=7)
    prices = {product.sku: product.price for product in factory.catalogue}
    for document in factory.customers(200):
        assert ORDERS[0] <= len(document["orders"]) <= ORDERS[1]
        for order in document["orders"]:
            assert ITEMS[0] <= len(order["items"]) <= ITEMS[1]
            for item in order["items"]:
                assert isinstance(item["price"], Decimal128)
                assert item["price"].to_decimal() == prices[item["sku"]]


def test_a_sku_has_four_digits() -> None:
    assert sku(42) == "SKU-0042"


def test_the_lesson_size_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATIONKIT_NOTEBOOK_ROWS", "1_234")
    assert N.lesson_customers() == 1_234
    monkeypatch.delenv("MIGRATIONKIT_NOTEBOOK_ROWS")
    assert N.lesson_customers() == N.CUSTOMERS


# -- the mappings ------------------------------------------------------------------------


def test_every_mapping_is_valid() -> None:
    for mapping in shop_mappings("t").values():
        assert mapping.problems() == []


def test_the_layouts_store_the_address_and_the_orders_as_their_names_say() -> None:
    mappings = shop_mappings("t")
    jsonb = {c.name: c.pg_type for c in mappings["jsonb"].columns}
    flat = {c.name: c.pg_type for c in mappings["flatten"].columns}
    assert (jsonb["address"], jsonb["orders"]) == ("jsonb", "jsonb")
    assert (flat["address__city"], flat["orders"]) == ("text", "jsonb")
    (orders,) = mappings["child"].children
    assert (orders.path, orders.table) == ("orders", "t_child__orders")
    assert "orders" not in {c.name for c in mappings["child"].columns}


def test_a_document_becomes_one_child_row_per_order_and_restores_whole_from_every_layout() -> None:
    document = next(d for d in OrdersFactory(seed=7).customers(50) if len(d["orders"]) >= 2)
    source = {key: value for key, value in document.items() if key != "_id"}
    for layout, mapping in shop_mappings("t").items():
        rows = normalize(mapping, document)
        if layout == "child":
            assert len(rows.children["t_child__orders"]) == len(document["orders"])
        assert restore_document(mapping, rows.row, rows.children) == source


# -- the SQL -----------------------------------------------------------------------------


def asked() -> tuple[Question, ...]:
    return questions(
        city="O'Fallon", customer="0123456789abcdef01234567", sku="SKU-0042", prefix="t"
    )


def test_every_question_has_sql_for_every_layout() -> None:
    for question in asked():
        assert set(question.sql) == set(LAYOUTS)
        assert all(question.sql[layout] for layout in LAYOUTS)


def test_the_sql_shows_the_values_it_asks_about_as_literals() -> None:
    by_key = {q.key: q for q in asked()}
    assert "'O''Fallon'" in by_key["city"].sql["flatten"][0]
    assert '"sku": "SKU-0042"' in by_key["bought"].sql["child"][0]
    assert "'0123456789abcdef01234567'" in by_key["document"].sql["jsonb"][0]


def test_a_literal_doubles_its_quotes() -> None:
    assert literal("it's") == "'it''s'"


def selected(sql: str) -> list[str]:
    columns = re.match(r"SELECT (.*?)\s+FROM", sql, re.S)
    assert columns is not None
    return [name.strip() for name in columns.group(1).split(",")]


def test_the_document_queries_select_the_columns_restore_document_reads() -> None:
    document = next(q for q in asked() if q.kind == "document")
    for layout, mapping in shop_mappings("t").items():
        statements = document.sql[layout]
        assert selected(statements[0]) == list(mapping.column_names)
        for child, sql in zip(mapping.children, statements[1:], strict=True):
            assert selected(sql) == list(child.column_names)


def test_every_lesson_index_is_on_a_table_of_its_layout() -> None:
    mappings = shop_mappings("t")
    for layout, indexes in lesson_indexes("t").items():
        for index in indexes:
            assert index.table in tables_of(mappings[layout])
            assert index.create().startswith(f'CREATE INDEX IF NOT EXISTS "{index.name}" ON ')


def test_the_sql_markdown_shows_each_layout_in_its_own_code_block() -> None:
    text = sql_markdown(asked()[0])
    assert text.count("```sql") == len(LAYOUTS)
    assert "*child tables*" in text


# -- plans -------------------------------------------------------------------------------


def test_scans_name_how_each_table_was_read() -> None:
    plan = {
        "Node Type": "Nested Loop",
        "Plans": [
            {
                "Node Type": "Bitmap Heap Scan",
                "Relation Name": "o",
                "Plans": [{"Node Type": "Bitmap Index Scan", "Index Name": "o_gin"}],
            },
            {"Node Type": "Index Scan", "Index Name": "c_key", "Relation Name": "c"},
            {"Node Type": "Seq Scan", "Relation Name": "d"},
            {"Node Type": "Function Scan", "Function Name": "jsonb_array_elements"},
        ],
    }
    assert N.scans(plan) == [
        "Bitmap Index Scan on o_gin",
        "Index Scan using c_key on c",
        "Seq Scan on d",
    ]


# -- comparing runs ----------------------------------------------------------------------


def timing(ms: Sequence[float], **params: str) -> Spread:
    runs = tuple(Measurement("q", 1, value / 1e3, dict(params)) for value in ms)
    return Spread("q", dict(params), runs)


def test_with_five_runs_one_outlier_on_each_side_does_not_decide() -> None:
    fast = timing([1, 1, 1, 1, 50])
    slow = timing([0.5, 3, 3, 3, 3])
    assert N.core_range(fast) == pytest.approx((0.001, 0.001))
    assert N.clearly_faster(fast, slow)


def test_with_nine_runs_a_quarter_is_left_out_at_each_end() -> None:
    assert N.core_range(timing([0.1, 0.2, 3, 4, 5, 6, 7, 80, 90])) == pytest.approx((0.003, 0.007))


def test_with_three_runs_every_run_counts() -> None:
    assert not N.clearly_faster(timing([1, 1, 5]), timing([3, 3, 3]))
    assert N.clearly_faster(timing([1, 1, 2]), timing([3, 3, 3]))


def test_an_index_effect_says_how_many_times_faster_or_that_there_is_no_clear_change() -> None:
    assert T.index_effect(timing([10, 10, 10]), timing([1, 1, 1])) == "10.0\u00d7 faster"
    assert T.index_effect(timing([1, 2, 3]), timing([2, 3, 4])) == "no clear change"


def test_runs_apart_by_less_than_the_clear_gain_are_not_called_faster() -> None:
    assert not N.clearly_faster(timing([1.0, 1.0, 1.0]), timing([1.4, 1.4, 1.4]))
    assert N.clearly_faster(timing([1.0, 1.0, 1.0]), timing([1.5, 1.5, 1.5]))


def test_an_index_the_plan_did_not_use_gets_no_credit_however_the_times_differ() -> None:
    effect = T.index_effect(timing([10, 10, 10]), timing([1, 1, 1]), used=False)
    assert effect == "not used (the same plan)"


def test_a_faster_aggregation_on_the_same_plan_is_not_put_down_to_an_index() -> None:
    medians = {("revenue", layout, N.NO_INDEX): 100.0 for layout in LAYOUTS}
    medians |= {("revenue", layout, N.INDEXED): 10.0 for layout in LAYOUTS}
    same_plan = timings(medians)  # revenue: a Seq Scan both ways
    assert set(T.index_helped(same_plan, "revenue").values()) == {None}


def test_answers_that_differ_between_layouts_are_named() -> None:
    answers = {
        "a": {"jsonb": [(1,)], "flatten": [(1,)], "child": [(1,)]},
        "b": {"jsonb": [(1,)], "flatten": [(2,)], "child": [(1,)]},
    }
    assert N.disagreements(answers) == ["b"]  # type: ignore[arg-type]


# -- sizes -------------------------------------------------------------------------------


def size(layout: Layout, table: str, total_mib: float) -> N.TableSize:
    total = int(total_mib * N.MiB)
    return N.TableSize(
        layout, table, 1, total // 2, 0, total // 4, total - total // 2 - total // 4, total
    )


def test_a_layouts_bytes_add_up_its_tables_parts() -> None:
    parts = N.layout_bytes([size("child", "c", 2.0), size("child", "o", 6.0)])
    assert parts["child"]["total"] == 8 * N.MiB
    assert sum(v for k, v in parts["child"].items() if k != "total") == 8 * N.MiB


# -- what the lesson says ----------------------------------------------------------------

QUESTIONS = questions(city="X", customer="0" * 24, sku="SKU-0001", prefix="t")


def timings(medians: dict[tuple[str, Layout, str], float]) -> N.Timings:
    """Five tight runs around each (question, layout, state) median, in ms; the searches
    use an index, the aggregations the same plan both ways."""
    spreads = [
        timing([m * 0.98, m * 0.99, m, m * 1.01, m * 1.02], question=key, layout=at, state=way)
        for (key, at, way), m in medians.items()
    ]
    plans = {
        (key, at, way): ["Seq Scan on t"]
        if way == N.NO_INDEX or key in ("revenue", "largest")
        else ["Index Scan using i on t"]
        for key, at, way in medians
    }
    return N.Timings(spreads, plans)


def sweep(*, child_revenue: float) -> N.Timings:
    medians: dict[tuple[str, Layout, str], float] = {}
    for question in QUESTIONS:
        for layout in LAYOUTS:
            indexed = 100.0 if question.key in ("revenue", "largest") else 1.0
            bare = indexed if question.key in ("revenue", "largest") else 20.0
            if question.key == "revenue" and layout == "child":
                indexed = bare = child_revenue
            medians[(question.key, layout, N.NO_INDEX)] = bare
            medians[(question.key, layout, N.INDEXED)] = indexed
    return timings(medians)


def migrated() -> N.Migrated:
    runs = {layout: timing([1_000, 1_000, 1_000], layout=layout) for layout in LAYOUTS}
    read = timing([500, 500, 500], layout="")
    return N.Migrated(runs=runs, read=read, rows={}, tables={}, reports={})


def sizes() -> list[N.TableSize]:
    return [size("jsonb", "j", 30.0), size("flatten", "f", 29.0), size("child", "c", 42.0)]


def test_the_conclusion_picks_a_layout_only_for_the_questions_it_clearly_won() -> None:
    text = T.conclusion(sweep(child_revenue=50.0), QUESTIONS, sizes(), migrated())
    assert "**Pick child tables when you add up every line item" in text
    assert "50 ms against jsonb 100 ms and flattened columns 100 ms" in text
    assert (
        "**jsonb**: not clearly the fastest at any question here, nor the smallest; "
        "30.0 MiB on disk (3% more than the least)." in text
    )


def test_the_conclusion_picks_the_smallest_layout_for_space() -> None:
    text = T.conclusion(sweep(child_revenue=50.0), QUESTIONS, sizes(), migrated())
    assert (
        "**Pick flattened columns when you need the least space**: the least on disk, 29.0 MiB "
        "(jsonb 3% more and child tables 45% more)." in text
    )


def test_the_conclusion_picks_no_layout_for_a_question_it_won_by_a_small_gap() -> None:
    text = T.conclusion(sweep(child_revenue=80.0), QUESTIONS, sizes(), migrated())
    assert "Pick child tables" not in text
    assert "when you add up" not in text


def test_the_conclusion_says_what_the_index_did_on_every_layout() -> None:
    text = T.conclusion(sweep(child_revenue=50.0), QUESTIONS, sizes(), migrated())
    assert "*Customers who bought SKU-0001* 20.0\u00d7" in text
    assert "No index clearly changed *Revenue per city* and *The 10 largest orders*" in text
    assert "Writing does not decide it" in text


def test_the_recap_takes_its_numbers_from_the_runs() -> None:
    answers: dict[str, dict[Layout, list[tuple[int]]]] = {
        q.key: {layout: [(1,)] for layout in LAYOUTS} for q in QUESTIONS
    }
    text = T.recap(sweep(child_revenue=50.0), QUESTIONS, sizes(), answers)
    lines = text.splitlines()
    assert len(lines) == 3
    assert "all 5 questions got the same answer" in lines[0]
    assert "20.0\u00d7 faster" in lines[1]
    assert "*Revenue per city*: child tables" in lines[2]
    assert "largest: child tables (42.0 MiB)" in lines[2]


def test_the_fastest_note_says_which_layouts_it_was_clearly_ahead_of() -> None:
    text = T.fastest_note(sweep(child_revenue=50.0), QUESTIONS)
    assert "*Revenue per city*: **child tables** 50 ms, clearly ahead of jsonb (100 ms)" in text
    assert "not clearly ahead of" in text  # the ties among the indexed searches


def test_a_document_preview_shows_its_first_order_and_counts_the_rest() -> None:
    document = next(d for d in OrdersFactory(seed=7).customers(50) if len(d["orders"]) >= 3)
    text = T.document_preview(document)
    assert document["orders"][0]["number"] in text
    assert document["orders"][1]["number"] not in text
    assert f"and {len(document['orders']) - 1} more orders" in text


def test_the_rows_preview_says_how_many_child_rows_it_leaves_out() -> None:
    document = next(d for d in OrdersFactory(seed=7).customers(50) if len(d["orders"]) >= 3)
    mapping = shop_mappings("t")["child"]
    text = T.rows_markdown(mapping, normalize(mapping, document))
    assert f"(the first 2 of {len(document['orders'])})" in text


def test_an_answer_preview_heads_its_columns() -> None:
    revenue = QUESTIONS[0]
    text = T.answer_preview(revenue, [("A", Decimal("1.50")), ("B", Decimal("1.00"))], rows=1)
    assert "| `city` | `revenue` |" in text
    assert "(the first 1 of 2)" in text


# -- charts ------------------------------------------------------------------------------


def test_the_query_chart_has_a_panel_per_question_each_from_zero_with_a_legend() -> None:
    pytest.importorskip("matplotlib")
    from migrationkit.workshop.lessons import nested_charts as NC

    fig = NC.query_times(sweep(child_revenue=50.0), QUESTIONS, title="t")
    assert len(fig.axes) == len(QUESTIONS)
    assert all(ax.get_xlim()[0] == 0 for ax in fig.axes)
    assert [ax.get_title(loc="left") for ax in fig.axes] == [q.title for q in QUESTIONS]
    (legend,) = fig.legends
    texts = [text.get_text() for text in legend.get_texts()]
    assert any(text.startswith("no index") for text in texts)
    assert any("min\u2013max" in text for text in texts)


def test_the_size_chart_draws_the_bson_size_as_a_reference() -> None:
    pytest.importorskip("matplotlib")
    from migrationkit.workshop.lessons import nested_charts as NC

    fig = NC.table_sizes(sizes(), bson_bytes=20 * N.MiB)
    (ax,) = fig.axes
    texts = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "the documents as BSON: 20.0 MiB" in texts
    assert ax.get_xlim()[0] == 0


def test_the_copy_chart_names_the_source_alone() -> None:
    pytest.importorskip("matplotlib")
    from migrationkit.workshop.lessons import nested_charts as NC

    fig = NC.copy_rates(migrated().runs, read=migrated().read)
    (ax,) = fig.axes
    texts = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any(text.startswith("the source alone") for text in texts)


def test_the_sizes_note_names_the_smallest_and_largest_from_the_sizes() -> None:
    text = T.sizes_note(sizes(), bson_bytes=20 * N.MiB, compressed={("j", "orders"): 0.5})
    assert "Smallest: **flattened columns**; largest: **child tables**, 1.4\u00d7 as big." in text
    assert "- **jsonb**: 30.0 MiB with every index, 1.50\u00d7 the documents' 20.0 MiB" in text
    assert "`j.orders` 50%" in text
