"""Dispatchers decide which worker gets the next batch. Pure objects: no I/O, no workers."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Protocol


class Dispatcher(Protocol):
    """Chooses a worker index given how many batches each worker has not finished yet."""

    def choose(self, in_flight: Sequence[int]) -> int: ...


class RoundRobin:
    """Deal batches 0, 1, 2, …, n-1, 0, 1, … whatever the workers are doing (the original's)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a round-robin needs at least one worker")
        self._order = itertools.cycle(range(size))

    def choose(self, in_flight: Sequence[int]) -> int:
        return next(self._order)


class LeastLoaded:
    """Give the batch to the worker with the fewest unfinished batches (ties: lowest index)."""

    def choose(self, in_flight: Sequence[int]) -> int:
        return min(range(len(in_flight)), key=in_flight.__getitem__)
