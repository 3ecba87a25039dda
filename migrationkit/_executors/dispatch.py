"""Dispatchers decide which worker gets the next batch. Pure objects: no I/O, no workers.

A dispatcher class is built with the number of workers (``RoundRobin(4)``) and found
by name in :data:`DISPATCHERS`, which takes new ones (``DISPATCHERS.register``) or an
import path (``"round_robin:MyRoundRobin"``): ``Settings(dispatch=...)``, ``--dispatch``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Protocol

from migrationkit._registry import Registry


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

    def __init__(self, size: int | None = None) -> None:
        """``size`` (the number of workers) is accepted like every dispatcher's; not needed."""

    def choose(self, in_flight: Sequence[int]) -> int:
        return min(range(len(in_flight)), key=in_flight.__getitem__)


#: Builds a dispatcher for a number of workers: a dispatcher class, usually.
DispatcherFactory = Callable[[int], Dispatcher]

DISPATCHERS: Registry[DispatcherFactory] = Registry("dispatcher")
DISPATCHERS.register("round-robin", RoundRobin)
DISPATCHERS.register("least-loaded", LeastLoaded)


def make_dispatcher(name: str, workers: int) -> Dispatcher:
    """The dispatcher ``name`` (registered, or ``module:Class``) for ``workers`` workers."""
    return DISPATCHERS.get(name)(workers)
