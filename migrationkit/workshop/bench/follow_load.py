"""Random changes to a customers collection: the follower's benchmark and chaos test.

Every change keeps a document in one shape (so a mapping inferred from the seed holds
every later version, and nothing is set aside), raises the document's ``v`` (so a
checker can see an older version put over a newer one), and a deleted ``_id`` is
never used again (so a row that comes back after its delete is plainly wrong).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from bson import Decimal128
from pymongo import DeleteOne, InsertOne, ReplaceOne, UpdateOne

Operation = InsertOne[Any] | UpdateOne | ReplaceOne[Any] | DeleteOne

#: Share of each kind of change (the rest of the updates set a nested field).
MIX = {"insert": 0.15, "push": 0.20, "pop": 0.10, "replace": 0.15, "delete": 0.10}


def customer(number: int, rng: random.Random, *, version: int = 1) -> dict[str, Any]:
    """One customer: a nested address, an array of orders with decimal totals."""
    return {
        "_id": number,
        "v": version,
        "name": f"customer {number}",
        "address": {"city": f"city {rng.randrange(40)}", "zip": f"{rng.randrange(10**5):05}"},
        "orders": [order(rng) for _ in range(rng.randrange(1, 4))],
    }


def order(rng: random.Random) -> dict[str, Any]:
    return {"sku": f"sku-{rng.randrange(500)}", "total": Decimal128(f"{rng.randrange(10**4)}.50")}


def customers(count: int, *, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [customer(number, rng) for number in range(count)]


class RandomChanges:
    """Draws changes to the documents ``ids``; keeps track of which are alive, and ``v``."""

    def __init__(self, ids: Iterable[int], *, seed: int) -> None:
        self.rng = random.Random(seed)
        self.alive = list(ids)
        self.versions = dict.fromkeys(self.alive, 1)
        self.next_id = max(self.alive, default=0) + 1
        self.made = 0

    def next(self) -> Operation:
        """One change, as a bulk-write operation."""
        self.made += 1
        rng, roll = self.rng, self.rng.random()
        if roll < MIX["insert"] or not self.alive:
            number, self.next_id = self.next_id, self.next_id + 1
            self.alive.append(number)
            self.versions[number] = 1
            return InsertOne(customer(number, rng))
        roll -= MIX["insert"]
        key = rng.choice(self.alive)
        if roll < MIX["delete"]:
            self.alive.remove(key)
            return DeleteOne({"_id": key})
        roll -= MIX["delete"]
        self.versions[key] += 1
        version = self.versions[key]
        if roll < MIX["replace"]:
            return ReplaceOne({"_id": key}, customer(key, rng, version=version))
        roll -= MIX["replace"]
        if roll < MIX["push"]:
            return UpdateOne(
                {"_id": key}, {"$set": {"v": version}, "$push": {"orders": order(rng)}}
            )
        roll -= MIX["push"]
        if roll < MIX["pop"]:
            return UpdateOne({"_id": key}, {"$set": {"v": version}, "$pop": {"orders": -1}})
        city = f"city {rng.randrange(40)}"
        return UpdateOne({"_id": key}, {"$set": {"v": version, "address.city": city}})

    def take(self, count: int) -> list[Operation]:
        return [self.next() for _ in range(count)]
