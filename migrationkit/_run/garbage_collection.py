"""Rarer garbage collections while the follower runs: they cost it a fifth of its CPU.

Reference counting frees every object that is not part of a cycle; the cyclic collector
only looks for cycles. CPython runs its youngest generation every 700 net allocations of
containers (dicts, lists), and an older one, now and then, walks every container that
has survived. The follower builds thousands of dicts and lists a batch and keeps the
documents it last wrote (up to its byte budget), so those walks grow with its memory.
Measured on one drain of 20,000 changes into child tables (``docs/benchmark_follow.md``,
session of 2026-12-04, evening): 345 collections took 0.8-1.3 s of 3.8 s of CPU; with the
first threshold at 50,000, none or a few took under 0.2 s.

The follower makes few cycles, so collecting rarely holds back little memory: at most
the cyclic garbage of 50,000 allocations. The collector's other thresholds are kept.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

#: Net container allocations between two collections of the youngest generation.
FOLLOWER_THRESHOLD = 50_000


@contextlib.contextmanager
def rarer_collections(threshold: int = FOLLOWER_THRESHOLD) -> Iterator[None]:
    """Raise the collector's first threshold to ``threshold`` inside the block.

    A threshold already higher, or 0 (automatic collection off), is left as it is;
    the one found is restored on the way out.
    """
    before = gc.get_threshold()
    if before[0] == 0 or before[0] >= threshold:
        yield
        return
    gc.set_threshold(threshold, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
