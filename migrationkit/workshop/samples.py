"""Generated collections shaped like MongoDB's sample data, for inference, tests and benchmarks.

:class:`CustomerFactory` makes customers like ``sample_analytics.customers``: a nested
address, a ``tier_and_details`` map keyed by random hex ids, arrays of account numbers,
birthdates (some before 1970), Decimal128 balances, orders with line items, and fields
whose type varies (int or int64, int or Decimal128, a zip code as text or a number).
As in :mod:`migrationkit.workshop.seeding`, Faker fills small pools once and each document is a
cheap, reproducible combination of them.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bson import Decimal128, Int64, ObjectId
from faker import Faker

POOL_SIZE = 500
TIERS = ("Bronze", "Silver", "Gold", "Platinum")
BENEFITS = (
    "airline lounge access",
    "car rental insurance",
    "concierge services",
    "dedicated account representative",
    "shopping discounts",
    "24 hour dedicated line",
)
PRODUCTS = (
    "Brokerage",
    "Commodity",
    "CurrencyService",
    "Derivatives",
    "InvestmentFund",
    "InvestmentStock",
)

_BORN_FROM = datetime(1940, 1, 1, tzinfo=UTC)
_BORN_SPAN_DAYS = 65 * 365  # 1940 to 2005: about a third before 1970
_ORDERED_FROM = datetime(2019, 1, 1, tzinfo=UTC)
_ORDERED_SPAN_MS = 5 * 365 * 24 * 3600 * 1000


class CustomerFactory:
    """Build customer documents ``start, start+1, …`` deterministically from ``seed``."""

    def __init__(self, seed: int = 0) -> None:
        faker = Faker()
        faker.seed_instance(seed)
        self._names = [faker.name() for _ in range(POOL_SIZE)]
        self._streets = [faker.street_address() for _ in range(POOL_SIZE)]
        self._cities = [faker.city() for _ in range(POOL_SIZE)]
        self._zips = [faker.postcode() for _ in range(POOL_SIZE)]
        self._countries = [faker.country_code() for _ in range(POOL_SIZE)]
        self._words = [faker.word() for _ in range(POOL_SIZE)]
        self._seed = seed

    def customers(self, count: int, *, start: int = 0) -> Iterator[dict[str, Any]]:
        rng = random.Random(f"{self._seed}:{start}")
        for number in range(start, start + count):
            yield self._customer(rng, number)

    def _customer(self, rng: random.Random, number: int) -> dict[str, Any]:
        name = rng.choice(self._names)
        username = f"{name.split()[0].lower()}{number}"
        document: dict[str, Any] = {
            "_id": _object_id(self._seed, number),
            "username": username,
            "name": name,
            "email": f"{username}@example.com",
            "address": self._address(rng),
            "birthdate": _BORN_FROM + timedelta(days=rng.randrange(_BORN_SPAN_DAYS)),
            "active": rng.random() < 0.9,
            "accounts": [rng.randrange(100_000, 1_000_000) for _ in range(rng.randint(1, 5))],
            "balance": Decimal128(Decimal(rng.randrange(0, 10_000_000)).scaleb(-2)),
            # Mostly int32, now and then too large for it: int64 (widens to bigint).
            "loyalty_points": Int64(rng.randrange(2**31, 2**40))
            if rng.random() < 0.05
            else rng.randrange(0, 50_000),
            # A whole number from one client, an exact decimal from another (numeric).
            "credit_limit": rng.choice((1_000, 5_000, 10_000))
            if rng.random() < 0.7
            else Decimal128(f"{rng.randrange(500, 20_000)}.50"),
            "tier_and_details": self._tiers(rng),
            "orders": [self._order(rng) for _ in range(rng.randint(0, 3))],
            "tags": rng.sample(self._words, rng.randint(0, 3)),
        }
        if rng.random() < 0.6:  # present in some documents only, sometimes null
            document["referrer"] = None if rng.random() < 0.3 else _object_id(self._seed, -number)
        return document

    def _address(self, rng: random.Random) -> dict[str, Any]:
        zip_code = rng.choice(self._zips)
        return {
            "street": rng.choice(self._streets),
            "city": rng.choice(self._cities),
            # Zip codes typed as numbers by one importer (and losing leading zeros).
            "zip": int(zip_code) if zip_code.isdigit() and rng.random() < 0.2 else zip_code,
            "country": rng.choice(self._countries),
        }

    def _tiers(self, rng: random.Random) -> dict[str, Any]:
        # Keyed by a random hex id, as in sample_analytics: a map, never a column per key.
        tiers = {}
        for _ in range(rng.randint(1, 3)):
            key = f"{rng.getrandbits(128):032x}"
            tiers[key] = {
                "tier": rng.choice(TIERS),
                "id": key,
                "active": rng.random() < 0.8,
                "benefits": rng.sample(BENEFITS, rng.randint(0, 3)),
            }
        return tiers

    def _order(self, rng: random.Random) -> dict[str, Any]:
        ordered = _ORDERED_FROM + timedelta(milliseconds=rng.randrange(_ORDERED_SPAN_MS))
        items = [
            {
                "product": rng.choice(PRODUCTS),
                "quantity": rng.randint(1, 10),
                "price": Decimal128(Decimal(rng.randrange(100, 100_000)).scaleb(-2)),
            }
            for _ in range(rng.randint(1, 4))
        ]
        return {"ordered_at": ordered, "items": items}


def _object_id(seed: int, number: int) -> ObjectId:
    # Reproducible ids: the same seed and number always give the same _id.
    return ObjectId(hashlib.blake2b(f"{seed}:{number}".encode(), digest_size=12).digest())
