# Your copy of the exercise: fill in the parts marked TODO, then run the check
# in the notebook. (Generated from solutions/least_loaded.py by
# `python -m migrationkit.workshop.exercises.stubs`; `--reset least_loaded` restores it.)
"""Exercise 4 · Route around a slow worker: a least-loaded dispatcher.

Round robin deals every worker the same share, however fast it is. When one
worker is slow, its inbox fills up, the reader waits for it, and the fast
workers sit idle. A least-loaded dispatcher looks before it deals: the next
batch goes to the worker with the fewest unfinished batches, so a slow worker
is given less and the fast ones stay busy.
"""

from collections.abc import Sequence


class MyLeastLoaded:
    """Give each batch to the least busy worker (the lowest index on a tie)."""

    def __init__(self, size: int) -> None:
        self.size = size  # how many workers there are (in_flight has one entry each)

    def choose(self, in_flight: Sequence[int]) -> int:
        """The index (0 to size - 1) of the worker with the fewest unfinished batches.

        ``in_flight[i]`` is how many batches worker ``i`` has been given and not
        finished yet: the ones in its inbox and the one it is writing. A slow
        worker finishes late, so its number stays high and it is chosen less.

        Return the worker's *index*, not its number of batches: in ``[2, 0, 1, 0]``
        the least busy is worker 1. On a tie the lowest index wins (worker 1, not
        worker 3): ties are the common case (when the workers keep up, they are
        all at 0), and a fixed rule makes the answer depend on ``in_flight`` alone.
        Read ``in_flight`` but do not change it: the cluster keeps that list.
        """
        # TODO: return the index of the worker with the fewest unfinished batches.
        raise NotImplementedError("least_loaded: write this part")
