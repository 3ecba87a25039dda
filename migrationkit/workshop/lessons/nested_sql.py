"""Lesson 08's SQL: the three mappings, the questions asked of each, the indexes they can use.

The same collection of customers is stored three ways (:func:`shop_mappings`): ``jsonb``
(the address and the orders as jsonb columns), ``flatten`` (the address as
``address__*`` columns, the orders jsonb) and ``child`` (the address flattened, the
orders in a child table). Every :class:`Question` has one SQL text per layout and
they must give the same answer; the lesson prints them, times them and compares them.

The kit's jsonb is lossless: a Decimal128 is ``{"$numberDecimal": "12.50"}`` and a date
``{"$date": "2021-05-03T10:00:00.123Z"}``, so the SQL casts those to ``numeric`` and
``timestamptz``; plain strings and 32-bit integers are plain JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from migrationkit._mapping.spec import ChildTable, Column, TableMapping
from migrationkit._target.writers import quote_identifier

Layout = Literal["jsonb", "flatten", "child"]
LAYOUTS: tuple[Layout, ...] = ("jsonb", "flatten", "child")
#: How the lesson names each layout in its text and charts.
LAYOUT_NAMES: dict[Layout, str] = {
    "jsonb": "jsonb",
    "flatten": "flattened columns",
    "child": "child tables",
}
#: The lesson's collection, and the prefix of its tables (``nb08_jsonb``, ...).
COLLECTION = "nb08_customers"
PREFIX = "nb08"
ADDRESS_KEYS = ("street", "city", "zip", "country")

#: What a question's answer is: rows to compare as they are, or one document put back
#: together from its rows by the kit's own ``restore_document``.
AnswerKind = Literal["rows", "document"]


def shop_mappings(prefix: str = PREFIX, collection: str = COLLECTION) -> dict[Layout, TableMapping]:
    """The customers as jsonb, as flattened columns, and with a child table of orders."""
    customer = (
        Column("name", "name", "text", ("string",), nullable=False),
        Column("email", "email", "text", ("string",), nullable=False),
        Column("since", "since", "timestamptz", ("date",), nullable=False),
    )
    address_jsonb = (Column("address", "address", "jsonb", ("object",), nullable=False),)
    address_flat = tuple(
        Column(f"address.{key}", f"address__{key}", "text", ("string",), nullable=False)
        for key in ADDRESS_KEYS
    )
    orders_jsonb = (Column("orders", "orders", "jsonb", ("array",), nullable=False),)
    orders_child = ChildTable(
        path="orders",  # one row per element of the array, keyed (mongo_id, position)
        table=f"{prefix}_child__orders",
        columns=(
            Column("number", "number", "text", ("string",), nullable=False),
            Column("ordered_at", "ordered_at", "timestamptz", ("date",), nullable=False),
            Column("status", "status", "text", ("string",), nullable=False),
            # The kit makes one level of child tables: an array inside an order is jsonb.
            Column("items", "items", "jsonb", ("array",), nullable=False),
        ),
    )
    return {
        "jsonb": TableMapping(
            collection, f"{prefix}_jsonb", columns=customer + address_jsonb + orders_jsonb
        ),
        "flatten": TableMapping(
            collection, f"{prefix}_flatten", columns=customer + address_flat + orders_jsonb
        ),
        "child": TableMapping(
            collection, f"{prefix}_child", columns=customer + address_flat, children=(orders_child,)
        ),
    }


def tables_of(mapping: TableMapping) -> tuple[str, ...]:
    """The parent table, then its child tables."""
    return (mapping.table, *(child.table for child in mapping.children))


@dataclass(frozen=True)
class Index:
    """An index the lesson adds: which question it is for, and its definition."""

    name: str
    table: str
    definition: str  # what follows ``ON <table>``
    serves: str  # the key of the question it is for

    def create(self) -> str:
        return (
            f"CREATE INDEX IF NOT EXISTS {quote_identifier(self.name)} "
            f"ON {quote_identifier(self.table)} {self.definition}"
        )


def lesson_indexes(prefix: str = PREFIX) -> dict[Layout, tuple[Index, ...]]:
    """What each layout needs for the two searches: GIN on the jsonb, btree on the column.

    The kit already gives every table a btree on its key: ``mongo_id`` (UNIQUE) on the
    parent, the primary key ``(mongo_id, position)`` on a child table.
    """
    jsonb, flat, child = f"{prefix}_jsonb", f"{prefix}_flatten", f"{prefix}_child"
    orders = f"{child}__orders"
    return {
        "jsonb": (
            Index(f"{jsonb}_orders_gin", jsonb, "USING gin (orders jsonb_path_ops)", "bought"),
            Index(f"{jsonb}_address_gin", jsonb, "USING gin (address jsonb_path_ops)", "city"),
        ),
        "flatten": (
            Index(f"{flat}_orders_gin", flat, "USING gin (orders jsonb_path_ops)", "bought"),
            Index(f"{flat}_city", flat, "(address__city)", "city"),
        ),
        "child": (
            Index(f"{orders}_items_gin", orders, "USING gin (items jsonb_path_ops)", "bought"),
            Index(f"{child}_city", child, "(address__city)", "city"),
        ),
    }  # fmt: skip


@dataclass(frozen=True)
class Question:
    """One question, and the SQL that answers it on each layout (several statements: in turn)."""

    key: str
    title: str
    kind: AnswerKind
    columns: tuple[str, ...]  # the answer's columns (a document: the parent row's first)
    sql: Mapping[Layout, tuple[str, ...]]


def literal(text: str) -> str:
    """``text`` as an SQL string literal (the lesson's SQL shows its values, no placeholders)."""
    return "'" + text.replace("'", "''") + "'"


# The line total of one item ``i`` of the kit's jsonb: quantity (a plain int) x price (Decimal128).
_LINE = "(i->>'quantity')::int * (i->'price'->>'$numberDecimal')::numeric"


def questions(*, city: str, customer: str, sku: str, prefix: str = PREFIX) -> tuple[Question, ...]:
    """The lesson's five questions, asked of ``city``, ``customer`` (a mongo_id) and ``sku``."""
    jsonb, flat, child, orders = (
        f"{prefix}_jsonb",
        f"{prefix}_flatten",
        f"{prefix}_child",
        f"{prefix}_child__orders",
    )
    bought_order = literal(json.dumps([{"items": [{"sku": sku}]}]))
    bought_item = literal(json.dumps([{"sku": sku}]))
    in_city = literal(json.dumps({"city": city}))
    flat_address = ", ".join(f"address__{key}" for key in ADDRESS_KEYS)

    def revenue(table: str, city_expr: str) -> str:
        return f"""SELECT {city_expr} AS city, sum({_LINE}) AS revenue
FROM {table} c
CROSS JOIN LATERAL jsonb_array_elements(c.orders) o
CROSS JOIN LATERAL jsonb_array_elements(o->'items') i
GROUP BY 1
ORDER BY revenue DESC, city"""

    def bought(table: str) -> str:
        return f"""SELECT c.mongo_id, c.name
FROM {table} c
WHERE c.orders @> {bought_order}
ORDER BY c.mongo_id"""

    def largest(table: str) -> str:
        return f"""SELECT o->>'number' AS number, c.name,
       (o->'ordered_at'->>'$date')::timestamptz AS ordered_at,
       (SELECT sum({_LINE}) FROM jsonb_array_elements(o->'items') i) AS total
FROM {table} c
CROSS JOIN LATERAL jsonb_array_elements(c.orders) o
ORDER BY total DESC, number
LIMIT 10"""

    return (
        Question(
            "revenue",
            "Revenue per city",
            "rows",
            ("city", "revenue"),
            {
                "jsonb": (revenue(jsonb, "c.address->>'city'"),),
                "flatten": (revenue(flat, "c.address__city"),),
                "child": (
                    f"""SELECT c.address__city AS city, sum({_LINE}) AS revenue
FROM {child} c
JOIN {orders} o ON o.mongo_id = c.mongo_id
CROSS JOIN LATERAL jsonb_array_elements(o.items) i
GROUP BY 1
ORDER BY revenue DESC, city""",
                ),
            },
        ),
        Question(
            "bought",
            f"Customers who bought {sku}",
            "rows",
            ("mongo_id", "name"),
            {
                "jsonb": (bought(jsonb),),
                "flatten": (bought(flat),),
                "child": (
                    f"""SELECT c.mongo_id, c.name
FROM {child} c
WHERE EXISTS (SELECT 1 FROM {orders} o
              WHERE o.mongo_id = c.mongo_id AND o.items @> {bought_item})
ORDER BY c.mongo_id""",
                ),
            },
        ),
        Question(
            "largest",
            "The 10 largest orders",
            "rows",
            ("number", "name", "ordered_at", "total"),
            {
                "jsonb": (largest(jsonb),),
                "flatten": (largest(flat),),
                "child": (
                    f"""SELECT o.number, c.name, o.ordered_at,
       (SELECT sum({_LINE}) FROM jsonb_array_elements(o.items) i) AS total
FROM {orders} o
JOIN {child} c ON c.mongo_id = o.mongo_id
ORDER BY total DESC, o.number
LIMIT 10""",
                ),
            },
        ),
        Question(
            "city",
            f"Customers in {city}",
            "rows",
            ("mongo_id", "name"),
            {
                "jsonb": (
                    f"SELECT mongo_id, name FROM {jsonb}\n"
                    f"WHERE address @> {in_city}\nORDER BY mongo_id",
                ),
                "flatten": (
                    f"SELECT mongo_id, name FROM {flat}\n"
                    f"WHERE address__city = {literal(city)}\nORDER BY mongo_id",
                ),
                "child": (
                    f"SELECT mongo_id, name FROM {child}\n"
                    f"WHERE address__city = {literal(city)}\nORDER BY mongo_id",
                ),
            },
        ),
        Question(
            "document",
            "One customer's whole document",
            "document",
            ("mongo_id",),
            {
                "jsonb": (
                    f"SELECT mongo_id, name, email, since, address, orders, _extra\n"
                    f"FROM {jsonb} WHERE mongo_id = {literal(customer)}",
                ),
                "flatten": (
                    f"SELECT mongo_id, name, email, since, {flat_address}, orders, _extra\n"
                    f"FROM {flat} WHERE mongo_id = {literal(customer)}",
                ),
                "child": (
                    f"SELECT mongo_id, name, email, since, {flat_address}, _extra\n"
                    f"FROM {child} WHERE mongo_id = {literal(customer)}",
                    f"SELECT mongo_id, position, number, ordered_at, status, items, _extra\n"
                    f"FROM {orders} WHERE mongo_id = {literal(customer)} ORDER BY position",
                ),
            },
        ),
    )


def sql_markdown(question: Question) -> str:
    """Markdown: the question's SQL on each layout, as code blocks."""
    parts = [f"**{question.title}**"]
    for layout in LAYOUTS:
        statements = ";\n\n".join(question.sql[layout])
        parts.append(f"*{LAYOUT_NAMES[layout]}*\n\n```sql\n{statements}\n```")
    return "\n\n".join(parts)
