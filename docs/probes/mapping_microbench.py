"""Microbenchmark: microseconds per document to normalize, for users and nested customers.

Run ``python -m migrationkit.workshop.microbench [documents]``. Each figure is the best
of seven passes over the same documents (the cases take turns), so it measures the
normalizer, not the machine's other work; ``document_to_row`` is today's users path.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import Decimal128, ObjectId

from migrationkit._mapping.normalize import compile_mapping
from migrationkit._mapping.spec import USERS, ChildTable, Column, TableMapping
from migrationkit._normalize.rows import document_to_row
from migrationkit.workshop.seeding import UserFactory

_START = datetime(2015, 1, 1, tzinfo=UTC)


def customers(count: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """Customers with an address, orders of line items, a map keyed by ids, decimals, dates."""
    rng = random.Random(seed)
    out = []
    for number in range(count):
        orders = [
            {
                "order_id": ObjectId(),
                "placed": _START + timedelta(milliseconds=rng.randrange(10**11)),
                "total": Decimal128(f"{rng.randrange(100, 100_000) / 100:.2f}"),
                "lines": [
                    {"sku": f"SKU-{rng.randrange(10_000)}", "qty": rng.randint(1, 5)}
                    for _ in range(rng.randint(1, 4))
                ],
            }
            for _ in range(rng.randint(0, 5))
        ]
        out.append(
            {
                "_id": ObjectId(),
                "name": f"customer {number}",
                "email": f"c{number}@example.com",
                "active": rng.random() < 0.9,
                "score": rng.random() * 100,
                "joined": _START + timedelta(milliseconds=rng.randrange(10**11)),
                "address": {
                    "street": f"{number} Main St",
                    "city": "Lyon",
                    "zip": f"{69000 + number % 9}",
                },
                "orders": orders,
                "tier_and_details": {
                    ObjectId().binary.hex(): {
                        "tier": "gold",
                        "benefits": ["lounge"],
                        "active": True,
                    }
                    for _ in range(rng.randint(0, 3))
                },
            }
        )
    return out


_SCALARS = (
    Column("name", "name", "text", ("string",)),
    Column("email", "email", "text", ("string",)),
    Column("active", "active", "boolean", ("bool",)),
    Column("score", "score", "double precision", ("double",)),
    Column("joined", "joined", "timestamptz", ("date",)),
)

#: Objects and arrays as jsonb columns: the default an inferred mapping starts from.
CUSTOMERS_JSONB = TableMapping(
    "customers",
    "customers",
    (
        *_SCALARS,
        Column("address", "address", "jsonb", ("object",)),
        Column("orders", "orders", "jsonb", ("array",)),
        Column("tier_and_details", "tier_and_details", "jsonb", ("object",)),
    ),
)

#: The address flattened, the orders a child table (their lines jsonb).
CUSTOMERS_TABLES = TableMapping(
    "customers",
    "customers",
    (
        *_SCALARS,
        Column("address.street", "address__street", "text", ("string",)),
        Column("address.city", "address__city", "text", ("string",)),
        Column("address.zip", "address__zip", "text", ("string",)),
        Column("tier_and_details", "tier_and_details", "jsonb", ("object",)),
    ),
    children=(
        ChildTable(
            "orders",
            "customers__orders",
            (
                Column("order_id", "order_id", "text", ("objectId",)),
                Column("placed", "placed", "timestamptz", ("date",)),
                Column("total", "total", "numeric", ("decimal",)),
                Column("lines", "lines", "jsonb", ("array",)),
            ),
        ),
    ),
)


Case = tuple[str, Callable[[Mapping[str, Any]], Any], list[dict[str, Any]]]


def best_microseconds(cases: list[Case], *, passes: int = 7) -> dict[str, float]:
    """Best pass per case; the cases take turns, so a busy moment hits them alike."""
    best = dict.fromkeys((label for label, _, _ in cases), float("inf"))
    for _ in range(passes):
        for label, function, documents in cases:
            started = time.perf_counter()
            for document in documents:
                function(document)
            elapsed = (time.perf_counter() - started) / len(documents) * 1e6
            best[label] = min(best[label], elapsed)
    return best


def main(count: int = 20_000) -> None:
    users = list(UserFactory(0).users(count))
    for user in users:
        user["_id"] = ObjectId()
    nested = customers(count)
    cases: list[Case] = [
        ("users: document_to_row (today)", document_to_row, users),
        ("users: normalize(USERS)", compile_mapping(USERS), users),
        ("customers: objects as jsonb", compile_mapping(CUSTOMERS_JSONB), nested),
        ("customers: flattened + child table", compile_mapping(CUSTOMERS_TABLES), nested),
    ]
    print(f"{count:,} documents, best of 7 passes")
    for label, microseconds in best_microseconds(cases).items():
        print(f"{label:<38} {microseconds:6.2f} µs/doc")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
