"""Lesson 08: one collection of nested documents stored three ways, the same questions asked.

:func:`open_shop` seeds (or reuses) the generated customers; :func:`migrate_layouts`
moves them with ``migrate()`` under each of the three mappings of
:mod:`~migrationkit.workshop.lessons.nested_sql`; :func:`add_indexes` adds what the
searches can use; :func:`ask` answers every question on every layout (they must
agree); :func:`time_questions` times them with the planner kept away from every index
and with the indexes; :func:`table_sizes` weighs each layout's tables. Every sentence
the lesson prints about a number is made here, from those measurements.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import bson

from migrationkit._mapping.restore import restore_document
from migrationkit._mapping.spec import TableMapping
from migrationkit._run.migration import migrate
from migrationkit._run.report import MigrationReport
from migrationkit._servers.endpoints import Endpoints
from migrationkit._servers.resolve import resolve_endpoints
from migrationkit._settings.settings import Settings
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit._source.repository import UserMongoRepository
from migrationkit._target.tables import drop_target
from migrationkit._target.writers import quote_identifier
from migrationkit.workshop.lessons import overlap as O
from migrationkit.workshop.lessons.lab import Lab, notebook_rows
from migrationkit.workshop.lessons.nested_sql import (
    COLLECTION,
    LAYOUT_NAMES,
    LAYOUTS,
    PREFIX,
    Index,
    Layout,
    Question,
    lesson_indexes,
    questions,
    shop_mappings,
    tables_of,
)
from migrationkit.workshop.lessons.orders import OrdersFactory, sku
from migrationkit.workshop.lessons.overlap import Spread
from migrationkit.workshop.lessons.results import Measurement

#: Customers in the stored outputs. Each has 0-5 orders of 1-5 line items, so 20,000
#: customers make about 50,000 orders (child rows) and 150,000 line items.
CUSTOMERS = 20_000
#: Runs of every query (after untimed ones); the charts show their median and range.
REPEATS = 9
#: A query's run lasts at least this long: it executes the query back to back 1, 2, 4, ...
#: times (at most :data:`MOST_PER_RUN`), the fewest that take this long.
RUN_S = 0.05
MOST_PER_RUN = 50
#: Runs of every migration.
MIGRATION_REPEATS = 3
BATCH_SIZE = 500
WORKERS = 2
SEED_BATCH = 2_000
#: The product the "who bought it" question asks about.
ASKED_SKU = sku(42)
#: The label of the source read alone (the migrations' reference).
SOURCE_ALONE = "the source alone"
#: The two ways every query is timed.
NO_INDEX, INDEXED = "no index", "indexed"
STATES = (NO_INDEX, INDEXED)
#: What keeps the planner away from every index, the kit's keys included: as if none existed.
NO_INDEX_SETTINGS = {
    "enable_indexscan": "off",
    "enable_bitmapscan": "off",
    "enable_indexonlyscan": "off",
}
#: Both ways: no JIT compilation (it starts above a cost threshold and would add its
#: compile time to some queries and not to others).
SESSION_SETTINGS = {"jit": "off"}
MiB = 1024 * 1024
#: The part of a table's size that the lesson's own indexes take.
LESSON_INDEXES = "the lesson's indexes"


def lesson_customers() -> int:
    """How many customers lesson 08 stores: :data:`CUSTOMERS`, or what CI sets."""
    return notebook_rows(default=CUSTOMERS)


# -- the data -----------------------------------------------------------------------------


@dataclass
class Shop:
    """The lesson's servers, its collection of customers, and what its questions ask about."""

    endpoints: Endpoints
    settings: Settings
    customers: int
    seeded_s: float | None  # None: the collection already held these customers
    bson_bytes: int  # the documents' size as BSON, the source's own measure
    orders: int  # orders in all documents (the child table's rows)
    items: int  # line items in all orders
    city: str  # the city of the first customer: "customers in ..."
    customer: str  # the mongo_id of the first customer with 3+ orders: "one document"
    sku: str = ASKED_SKU
    prefix: str = PREFIX

    @property
    def mappings(self) -> dict[Layout, TableMapping]:
        return shop_mappings(self.prefix, self.settings.mongo_collection)

    @property
    def questions(self) -> tuple[Question, ...]:
        return questions(city=self.city, customer=self.customer, sku=self.sku, prefix=self.prefix)

    @property
    def indexes(self) -> dict[Layout, tuple[Index, ...]]:
        return lesson_indexes(self.prefix)

    def settings_for(self, mapping: TableMapping) -> Settings:
        return self.settings.model_copy(update={"pg_table": mapping.table})

    @property
    def lab(self) -> Lab:
        """A :class:`Lab` on the collection: what lessons 02-07's helpers take."""
        lab = Lab(self.settings, self.endpoints)
        lab.seeded = self.customers
        return lab


async def open_shop(
    customers: int | None = None,
    *,
    collection: str = COLLECTION,
    prefix: str = PREFIX,
    fresh_tables: bool = True,
    **settings: Any,
) -> Shop:
    """The servers (embedded unless configured) and ``customers`` generated documents.

    A collection that already holds exactly that many is reused, not seeded again.
    With ``fresh_tables`` the lesson's tables of an earlier run are dropped (with the
    indexes it added), so that the first ``migrate()`` writes into tables as it makes them.
    """
    count = customers or lesson_customers()
    options: dict[str, Any] = {
        "mongo_collection": collection,
        "batch_size": BATCH_SIZE,
        "workers": WORKERS,
        "backend": "asyncio",
    }
    base = Settings(**(options | settings))
    endpoints = await asyncio.to_thread(resolve_endpoints, base)
    factory = OrdersFactory()
    documents = list(factory.customers(count))
    seeded_s = await _ensure_seeded(endpoints, base, documents)
    first_rich = next((d for d in documents if len(d["orders"]) >= 3), documents[0])
    shop = Shop(
        endpoints=endpoints,
        settings=base,
        customers=count,
        seeded_s=seeded_s,
        bson_bytes=sum(len(bson.encode(document)) for document in documents),
        orders=sum(len(document["orders"]) for document in documents),
        items=sum(len(order["items"]) for document in documents for order in document["orders"]),
        city=documents[0]["address"]["city"],
        customer=str(first_rich["_id"]),
        prefix=prefix,
    )
    if fresh_tables:
        await drop_layouts(shop)
    return shop


async def _ensure_seeded(
    endpoints: Endpoints, settings: Settings, documents: Sequence[dict[str, Any]]
) -> float | None:
    async with MongoConnectionHandler(endpoints.mongo_uri, driver=settings.mongo_driver) as client:
        collection = client[settings.mongo_database][settings.mongo_collection]
        repository = UserMongoRepository(collection)  # count, drop, insert: any collection
        first = await collection.find_one({}, sort=[("_id", 1)], projection={"_id": 1})
        expected = min(document["_id"] for document in documents) if documents else None
        if await repository.count() == len(documents) and (first or {}).get("_id") == expected:
            return None
        started = time.perf_counter()
        await repository.drop()
        for start in range(0, len(documents), SEED_BATCH):
            await repository.insert_many(documents[start : start + SEED_BATCH])
        return time.perf_counter() - started


async def source_document(shop: Shop) -> dict[str, Any]:
    """The asked customer's document as MongoDB holds it."""
    async with MongoConnectionHandler(shop.endpoints.mongo_uri) as client:
        collection = client[shop.settings.mongo_database][shop.settings.mongo_collection]
        found = await collection.find_one({"_id": bson.ObjectId(shop.customer)})
    if found is None:
        raise LookupError(f"customer {shop.customer} is not in {collection.name}")
    return dict(found)


# -- migrating ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Migrated:
    """What ``migrate()`` made of each layout: its runs, and the rows in each table."""

    runs: dict[Layout, Spread]
    read: Spread  # the source read alone, in the same rounds
    rows: dict[str, int]  # table -> rows
    tables: dict[Layout, tuple[str, ...]]  # the parent table, then its child tables
    reports: dict[Layout, MigrationReport]


async def migrate_layouts(shop: Shop, *, repeats: int = MIGRATION_REPEATS) -> Migrated:
    """``migrate(settings, mapping=...)`` for every layout, and the source read alone.

    The lesson's tables are dropped first, so that every run writes into the tables
    ``migrate()`` makes, with only the kit's keys (not the indexes of a previous run).
    Then ``repeats`` rounds, each running every layout and the read alone once, so
    that a busy spell hits them alike. A migration is timed by its report's
    ``elapsed_s``: the copy, from the first batch asked for to the last committed,
    without connecting and preparing the tables.
    """
    await drop_layouts(shop)
    reports: dict[Layout, list[MigrationReport]] = {layout: [] for layout in shop.mappings}

    def run_with(layout: Layout, mapping: TableMapping) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            report = await migrate(
                shop.settings_for(mapping), endpoints=shop.endpoints, mapping=mapping
            )
            if report.rows_written != shop.customers:
                raise RuntimeError(
                    f"{layout}: wrote {report.rows_written:,} of {shop.customers:,} customers"
                )
            reports[layout].append(report)
            return report.rows_written

        return run

    settings: list[O.Setting] = [
        (LAYOUT_NAMES[layout], {"layout": layout, "workers": WORKERS}, run_with(layout, mapping))
        for layout, mapping in shop.mappings.items()
    ]
    settings.append((SOURCE_ALONE, {"layout": "", "workers": 1}, lambda: read_source(shop)))
    spreads = await O.repeat_rounds(settings, repeats=repeats)
    read = next(spread for spread in spreads if not spread.params["layout"])
    runs: dict[Layout, Spread] = {}
    for spread in spreads:
        layout = spread.params["layout"]
        if layout:
            copies = tuple(
                Measurement(run.label, run.rows, report.elapsed_s, run.params, run.extra)
                for run, report in zip(spread.runs, reports[layout], strict=True)
            )
            runs[layout] = Spread(spread.label, spread.params, copies)
    last = {layout: done[-1] for layout, done in reports.items()}
    tables = {layout: tables_of(mapping) for layout, mapping in shop.mappings.items()}
    return Migrated(runs=runs, read=read, rows=await count_rows(shop), tables=tables, reports=last)


async def read_source(shop: Shop) -> int:
    """Read the collection as ``migrate()`` does (the kit's reader, its batches), write nothing.

    Raw BSON, undecoded, as ``migrate()`` reads it for the jsonb mapping (whose rows are
    written from the bytes in C): the least a migration can ask of the source. Decoding
    is a layout's own work, so it is not counted here.
    """
    settings = shop.settings
    async with MongoConnectionHandler(shop.endpoints.mongo_uri, driver=settings.mongo_driver) as c:
        repository = UserMongoRepository(c[settings.mongo_database][settings.mongo_collection])
        batches = repository.iter_batches(
            settings.batch_size, batch_bytes=settings.batch_bytes or None, raw=True
        )
        return sum([len(batch) async for batch in batches])


@asynccontextmanager
async def connect(shop: Shop, **server_settings: str) -> AsyncIterator[asyncpg.Connection]:
    """One plain connection (jsonb read as text, as ``restore_document`` expects it)."""
    connection = await asyncpg.connect(
        shop.endpoints.pg_dsn, server_settings={**SESSION_SETTINGS, **server_settings}
    )
    try:
        yield connection
    finally:
        await connection.close()


async def count_rows(shop: Shop) -> dict[str, int]:
    """Rows in every table of every layout."""
    async with connect(shop) as connection:
        return {
            table: int(await connection.fetchval(f"SELECT count(*) FROM {quote_identifier(table)}"))
            for mapping in shop.mappings.values()
            for table in tables_of(mapping)
        }


async def drop_layouts(shop: Shop) -> None:
    """Drop every table the lesson made (its dead-letter tables too)."""
    async with connect(shop) as connection:
        for mapping in shop.mappings.values():
            await drop_target(connection, mapping)


async def add_indexes(shop: Shop) -> list[Index]:
    """Create the lesson's indexes (if missing), then ``VACUUM ANALYZE`` every table.

    VACUUM sets the visibility map and ANALYZE the statistics the planner uses, as a
    table that has been in service a while would have them.
    """
    made = [index for layout in LAYOUTS for index in shop.indexes[layout]]
    async with connect(shop) as connection:
        for index in made:
            await connection.execute(index.create())
        for mapping in shop.mappings.values():
            for table in tables_of(mapping):
                await connection.execute(f"VACUUM ANALYZE {quote_identifier(table)}")
    return made


# -- asking -------------------------------------------------------------------------------

Answer = Any  # a list of row tuples, or one restored document


async def _run(connection: asyncpg.Connection, statements: Sequence[str]) -> list[list[Any]]:
    return [await connection.fetch(sql) for sql in statements]


def _answer(question: Question, mapping: TableMapping, results: Sequence[Sequence[Any]]) -> Answer:
    """The comparable answer: the rows as tuples, or the document the rows put back together."""
    if question.kind == "rows":
        return [tuple(row) for row in results[0]]
    parents = results[0]
    if len(parents) != 1:
        raise LookupError(f"{question.title}: {len(parents)} parent rows in {mapping.table}")
    children = {
        child.table: [tuple(row) for row in rows]
        for child, rows in zip(mapping.children, results[1:], strict=True)
    }
    return restore_document(mapping, tuple(parents[0]), children)


async def ask(shop: Shop) -> dict[str, dict[Layout, Answer]]:
    """Every question's answer on every layout: ``{question key: {layout: answer}}``."""
    answers: dict[str, dict[Layout, Answer]] = {}
    async with connect(shop) as connection:
        for question in shop.questions:
            answers[question.key] = {
                layout: _answer(question, mapping, await _run(connection, question.sql[layout]))
                for layout, mapping in shop.mappings.items()
            }
    return answers


def disagreements(answers: Mapping[str, Mapping[Layout, Answer]]) -> list[str]:
    """The questions whose layouts gave different answers (none, when the SQL is right)."""
    return [
        key
        for key, by_layout in answers.items()
        if any(answer != by_layout[LAYOUTS[0]] for answer in by_layout.values())
    ]


def answer_size(answer: Answer) -> int:
    """Rows in an answer; a document counts as one."""
    return len(answer) if isinstance(answer, list) else 1


# -- timing -------------------------------------------------------------------------------


@dataclass
class _Query:
    """One question on one layout one way: its statements, and executions per run."""

    label: str
    params: dict[str, str]
    connection: asyncpg.Connection
    statements: tuple[str, ...]
    number: int = 1

    async def calibrate(self) -> None:
        """Set ``number``: double it until ``number`` executions take :data:`RUN_S`."""
        number = 1
        while True:
            started = time.perf_counter()
            for _ in range(number):
                await _run(self.connection, self.statements)
            if time.perf_counter() - started >= RUN_S or number >= MOST_PER_RUN:
                break
            number = min(number * 2, MOST_PER_RUN)
        self.number = number

    async def run(self) -> Measurement:
        """``number`` executions; the mean time of one."""
        started = time.perf_counter()
        for _ in range(self.number):
            results = await _run(self.connection, self.statements)
        seconds = (time.perf_counter() - started) / self.number
        extra = {"executions": self.number}
        return Measurement(self.label, len(results[0]), seconds, self.params, extra)


@dataclass(frozen=True)
class Timings:
    """Every question's runs on every layout both ways, and how each plan read the tables."""

    spreads: list[Spread]
    plans: dict[tuple[str, Layout, str], list[str]]  # (question, layout, state) -> scans

    def get(self, question: str, layout: Layout, state: str) -> Spread:
        return find(self.spreads, question=question, layout=layout, state=state)

    def index_used(self, question: str, layout: Layout) -> bool:
        """Whether the indexed plan read the tables differently from the no-index one."""
        return self.plans[(question, layout, INDEXED)] != self.plans[(question, layout, NO_INDEX)]


async def time_questions(shop: Shop, *, repeats: int = REPEATS) -> Timings:
    """Every question on every layout, with no index and indexed, and their plans.

    Two connections: one whose planner may not use any index (:data:`NO_INDEX_SETTINGS`),
    one as PostgreSQL comes, with the kit's keys and the lesson's indexes to choose
    from. Each query first runs untimed (its plan cached, its pages in memory) 1, 2, 4, ...
    times until that takes :data:`RUN_S`: that many executions make one run (so that a
    millisecond query is not timed by the noise of one call), and a run's time is their
    mean, as the client waits for it: sending, executing, receiving every row. Then
    ``repeats`` rounds, each starting one query later than the last, so that no query
    always follows the same one. Then each is explained (:func:`plans`): a change is put
    down to an index only where the plan used it.
    """
    async with connect(shop, **NO_INDEX_SETTINGS) as bare, connect(shop) as indexed:
        queries = [
            _Query(
                f"{question.key} {layout} {state}",
                {"question": question.key, "layout": layout, "state": state},
                connection,
                question.sql[layout],
            )
            for question in shop.questions
            for layout in LAYOUTS
            for state, connection in ((NO_INDEX, bare), (INDEXED, indexed))
        ]
        for query in queries:
            await query.calibrate()  # the first execution also prepares the plan
        runs: dict[str, list[Measurement]] = {query.label: [] for query in queries}
        for turn in range(max(1, repeats)):
            start = turn % len(queries)
            for query in queries[start:] + queries[:start]:
                runs[query.label].append(await query.run())
    spreads = [Spread(q.label, q.params, tuple(runs[q.label])) for q in queries]
    return Timings(spreads, await plans(shop))


def find(spreads: Sequence[Spread], **params: str) -> Spread:
    """The one Spread whose params hold all of ``params``."""
    found = [s for s in spreads if all(s.params.get(k) == v for k, v in params.items())]
    if len(found) != 1:
        raise LookupError(f"{len(found)} timings match {params}")
    return found[0]


def core_range(spread: Spread) -> tuple[float, float]:
    """The fastest and slowest time of the middle runs: a quarter left out at each end.

    Of 9 runs the middle 5, of 5 or 7 the middle 3 or 5, of 3 all three: one disturbed
    run on a busy machine does not decide a comparison (the charts still draw min-max).
    """
    seconds = sorted(run.seconds for run in spread.runs)
    cut = len(seconds) // 4
    middle = seconds[cut : len(seconds) - cut]
    return middle[0], middle[-1]


#: A layout (or an index) counts as faster only with a median at least this many times
#: lower: smaller gaps come and go with the load of a shared machine.
CLEAR_GAIN = 1.5


def clearly_faster(fast: Spread, slow: Spread) -> bool:
    """``fast`` beat ``slow`` in every middle run (:func:`core_range`), by :data:`CLEAR_GAIN`."""
    apart = core_range(fast)[1] < core_range(slow)[0]
    return apart and slow.seconds >= CLEAR_GAIN * fast.seconds


# -- sizes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSize:
    """One table's bytes on disk, in parts that add up to ``pg_total_relation_size``."""

    layout: Layout
    table: str
    rows: int
    heap: int  # the table itself, with its free space and visibility maps
    toast: int  # values too big for a row, compressed and moved out, with the TOAST index
    key_index: int  # the kit's btree on the key (mongo_id; (mongo_id, position))
    lesson_index: int  # the indexes the lesson added
    total: int  # pg_total_relation_size

    @property
    def parts(self) -> dict[str, int]:
        return {
            "table (heap)": self.heap,
            "TOAST": self.toast,
            "the kit's key index": self.key_index,
            LESSON_INDEXES: self.lesson_index,
        }


_SIZE_SQL = """
SELECT pg_table_size(c.oid) AS table_bytes,
       COALESCE(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0) AS toast_bytes,
       pg_total_relation_size(c.oid) AS total_bytes
FROM pg_class c WHERE c.oid = $1::regclass
"""
_INDEX_SQL = """
SELECT i.indexrelid::regclass::text AS name, pg_relation_size(i.indexrelid) AS bytes
FROM pg_index i WHERE i.indrelid = $1::regclass
"""


async def table_sizes(shop: Shop) -> list[TableSize]:
    """Every table of every layout, weighed (after :func:`add_indexes`)."""
    lesson = {quote_identifier(i.name) for ix in shop.indexes.values() for i in ix}
    lesson |= {i.name for ix in shop.indexes.values() for i in ix}
    sizes = []
    async with connect(shop) as connection:
        for layout, mapping in shop.mappings.items():
            for table in tables_of(mapping):
                name = quote_identifier(table)
                size = await connection.fetchrow(_SIZE_SQL, name)
                indexes = await connection.fetch(_INDEX_SQL, name)
                ours = sum(int(r["bytes"]) for r in indexes if r["name"] in lesson)
                keys = sum(int(r["bytes"]) for r in indexes) - ours
                rows = await connection.fetchval(f"SELECT count(*) FROM {name}")
                toast = int(size["toast_bytes"])
                sizes.append(
                    TableSize(
                        layout=layout,
                        table=table,
                        rows=int(rows),
                        heap=int(size["table_bytes"]) - toast,
                        toast=toast,
                        key_index=keys,
                        lesson_index=ours,
                        total=int(size["total_bytes"]),
                    )
                )
    return sizes


def layout_bytes(sizes: Sequence[TableSize]) -> dict[Layout, dict[str, int]]:
    """Per layout, its tables' parts added up (and ``"total"``)."""
    out: dict[Layout, dict[str, int]] = {}
    for size in sizes:
        parts = out.setdefault(size.layout, {name: 0 for name in [*size.parts, "total"]})
        for name, value in [*size.parts.items(), ("total", size.total)]:
            parts[name] += value
    return out


async def compressed_shares(shop: Shop) -> dict[tuple[str, str], float]:
    """``(table, jsonb column)`` -> the share of its values PostgreSQL stored compressed."""
    shares = {}
    async with connect(shop) as connection:
        for mapping in shop.mappings.values():
            groups = [(mapping.table, mapping.columns)]
            groups += [(child.table, child.columns) for child in mapping.children]
            for table, columns in groups:
                for column in (c for c in columns if c.pg_type == "jsonb"):
                    name = quote_identifier(column.name)
                    share = await connection.fetchval(
                        f"SELECT avg((pg_column_compression({name}) IS NOT NULL)::int)::float8 "
                        f"FROM {quote_identifier(table)} WHERE {name} IS NOT NULL"
                    )
                    shares[(table, column.name)] = float(share or 0.0)
    return shares


# -- plans --------------------------------------------------------------------------------

#: The plan nodes that say how a table was read.
_SCANS = ("Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Index Scan")


def scans(plan: Mapping[str, Any]) -> list[str]:
    """How each table was read in an ``EXPLAIN (FORMAT JSON)`` plan: ``Seq Scan on t``, ..."""
    found: list[str] = []
    node_type = plan.get("Node Type")
    if node_type in _SCANS:
        index = plan.get("Index Name")
        relation = plan.get("Relation Name")
        if node_type == "Bitmap Index Scan":
            found.append(f"{node_type} on {index}")
        elif index:
            found.append(f"{node_type} using {index} on {relation}")
        else:
            found.append(f"{node_type} on {relation}")
    for inner in plan.get("Plans", ()):
        found += scans(inner)
    return found


async def plans(shop: Shop) -> dict[tuple[str, Layout, str], list[str]]:
    """``(question, layout, state)`` -> how its statements read the tables (EXPLAIN)."""
    out: dict[tuple[str, Layout, str], list[str]] = {}
    async with connect(shop, **NO_INDEX_SETTINGS) as bare, connect(shop) as indexed:
        for question in shop.questions:
            for layout in LAYOUTS:
                for state, connection in ((NO_INDEX, bare), (INDEXED, indexed)):
                    found: list[str] = []
                    for sql in question.sql[layout]:
                        text = await connection.fetchval(f"EXPLAIN (FORMAT JSON) {sql}")
                        found += scans(json.loads(text)[0]["Plan"])
                    out[(question.key, layout, state)] = list(dict.fromkeys(found))
    return out
