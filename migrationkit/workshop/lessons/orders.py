"""Lesson 08's collection: customers with an address and an array of orders with line items.

Seeded, so every run (and every learner) gets the same documents and ``_id`` s. As in
:mod:`migrationkit.workshop.samples`, Faker fills small pools once (names, streets,
cities, a catalogue of products) and each document is a cheap combination of them.

Why not :class:`~migrationkit.workshop.samples.CustomerFactory`: its orders draw from six
products, so "who bought product X" would match about half the customers and no index
could help; and its other fields (a map keyed by random ids, a zip code that is
sometimes a number) are the inference lesson's, not this comparison's.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bson import Decimal128, ObjectId
from faker import Faker

#: The seed of the lesson's documents: the same seed gives the same collection.
SEED = 20_260_808
#: Names, streets, cities and zip codes to combine (cities: the groups of "revenue per city").
POOL_SIZE = 400
CITIES = 120
#: Products in the catalogue: a customer buys about 7 line items, so one product is
#: in about 2 % of the customers' orders: a search an index can narrow.
PRODUCTS = 400
STATUSES = ("placed", "paid", "shipped", "delivered", "returned")
#: Orders per customer and line items per order (inclusive ranges).
ORDERS = (0, 5)
ITEMS = (1, 5)
#: Nouns for the catalogue's product names ("Quiet kettle").
_NOUNS = ("backpack", "cable", "chair", "desk", "kettle", "lamp", "mug", "pen", "shelf", "speaker")

_SINCE_FROM = datetime(2012, 1, 1, tzinfo=UTC)
_SINCE_SPAN_DAYS = 7 * 365
_ORDERED_FROM = datetime(2019, 1, 1, tzinfo=UTC)
_ORDERED_SPAN_MS = 5 * 365 * 24 * 3600 * 1000


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price: Decimal


def sku(number: int) -> str:
    """The catalogue's ``number``-th stock-keeping unit: ``SKU-0042``."""
    return f"SKU-{number:04d}"


def customer_id(number: int, *, seed: int = SEED) -> ObjectId:
    """The ``_id`` of customer ``number``: the same seed and number always give the same one."""
    return ObjectId(hashlib.blake2b(f"orders:{seed}:{number}".encode(), digest_size=12).digest())


class OrdersFactory:
    """Customer documents ``0, 1, …``, each with an address and 0-5 orders of 1-5 line items."""

    def __init__(self, seed: int = SEED) -> None:
        faker = Faker()
        faker.seed_instance(seed)
        self.seed = seed
        self._names = [faker.name() for _ in range(POOL_SIZE)]
        self._streets = [faker.street_address() for _ in range(POOL_SIZE)]
        self._zips = [faker.postcode() for _ in range(POOL_SIZE)]
        self._cities = list(dict.fromkeys(faker.city() for _ in range(CITIES * 2)))[:CITIES]
        self._countries = [faker.country_code() for _ in range(20)]
        self.catalogue = tuple(
            Product(
                sku(number),
                f"{faker.word().capitalize()} {faker.random_element(_NOUNS)}",
                Decimal(faker.random_int(199, 49_999)).scaleb(-2),
            )
            for number in range(PRODUCTS)
        )

    def customers(self, count: int) -> Iterator[dict[str, Any]]:
        rng = random.Random(f"orders:{self.seed}")
        for number in range(count):
            yield self._customer(rng, number)

    def _customer(self, rng: random.Random, number: int) -> dict[str, Any]:
        name = rng.choice(self._names)
        return {
            "_id": customer_id(number, seed=self.seed),
            "name": name,
            "email": f"{name.split()[0].lower()}.{number}@example.com",
            "since": _SINCE_FROM + timedelta(days=rng.randrange(_SINCE_SPAN_DAYS)),
            "address": {
                "street": rng.choice(self._streets),
                "city": rng.choice(self._cities),
                "zip": rng.choice(self._zips),
                "country": rng.choice(self._countries),
            },
            "orders": [self._order(rng, number, k) for k in range(rng.randint(*ORDERS))],
        }

    def _order(self, rng: random.Random, customer: int, k: int) -> dict[str, Any]:
        ordered = _ORDERED_FROM + timedelta(milliseconds=rng.randrange(_ORDERED_SPAN_MS))
        items = []
        for product in rng.sample(self.catalogue, rng.randint(*ITEMS)):
            items.append(
                {
                    "sku": product.sku,
                    "product": product.name,
                    "quantity": rng.randint(1, 6),
                    "price": Decimal128(product.price),
                }
            )
        return {
            "number": f"{customer:06d}-{k + 1}",
            "ordered_at": ordered,
            "status": rng.choice(STATUSES),
            "items": items,
        }
