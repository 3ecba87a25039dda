"""The nested benchmark's data: generated customers, seeded once, and their three mappings.

The customers are :class:`~migrationkit.workshop.samples.CustomerFactory`'s: an
address object, arrays of orders with line items, a map keyed by random ids,
Decimal128 balances and prices, dates before and after 1970. A collection that
already holds exactly the wanted number of documents is reused, so a second run
on the same servers skips seeding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from migrationkit._mapping.infer import infer_mapping
from migrationkit._mapping.spec import TableMapping
from migrationkit._source.repository import UserMongoRepository
from migrationkit.workshop.samples import CustomerFactory

#: Seed for the customers: the same seed gives the same documents (and ``_id`` s) every run.
CUSTOMER_SEED = 20_260_413
SEED_BATCH = 2_000

Layout = Literal["jsonb", "child", "flatten"]
LAYOUTS: tuple[Layout, ...] = ("jsonb", "child", "flatten")


async def ensure_customers(
    collection: Any, count: int, *, reseed: bool, echo: Callable[[str], None]
) -> None:
    """Make ``collection`` hold exactly ``count`` generated customers, seeding only if not."""
    repository = UserMongoRepository(collection)  # count, drop, insert: any collection
    if not reseed and await repository.count() == count:
        echo(f"  reusing {collection.name} ({count:,} customers)")
        return
    echo(f"  seeding {collection.name} with {count:,} customers")
    await repository.drop()
    documents = CustomerFactory(CUSTOMER_SEED).customers(count)
    while batch := [document for _, document in zip(range(SEED_BATCH), documents, strict=False)]:
        await repository.insert_many(batch)


async def infer_layouts(collection: Any, *, table_prefix: str) -> dict[Layout, TableMapping]:
    """The mapping ``migrate`` would infer from every document, for each way of nesting.

    Inferred from what the server returns (not from the factory), as a user's
    ``infer --all`` would; the target table is ``<table_prefix>_<layout>``.
    """
    documents = [document async for document in collection.find({})]
    return {
        layout: infer_mapping(
            documents,
            collection=collection.name,
            table=f"{table_prefix}_{layout}",
            sampled=None,
            total=len(documents),
            nested=layout,
        ).mapping
        for layout in LAYOUTS
    }


def mapping_shape(mapping: TableMapping) -> tuple[int, int]:
    """(tables, columns) a mapping writes, the kit's own key columns included."""
    columns = len(mapping.column_names) + sum(len(c.column_names) for c in mapping.children)
    return 1 + len(mapping.children), columns
