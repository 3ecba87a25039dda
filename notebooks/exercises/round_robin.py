# Your copy of the exercise: fill in the parts marked TODO, then run the check
# in the notebook. (Generated from solutions/round_robin.py by
# `python -m migrationkit.workshop.exercises.stubs`; `--reset round_robin` restores it.)
"""Exercise 1 · Deal the batches: a round-robin dispatcher.

The reader hands every batch to a *dispatcher*, which answers with the index of
the worker that writes it. Round robin deals like cards: worker 0, 1, …, size - 1,
then 0 again, whatever the workers are doing.
"""

from collections.abc import Sequence


class MyRoundRobin:
    """Deal batches to workers 0, 1, …, size - 1, 0, 1, … in turn."""

    def __init__(self, size: int) -> None:
        self.size = size  # how many workers there are
        # TODO: remember whose turn it is.

    def choose(self, in_flight: Sequence[int]) -> int:
        """The index (0 to size - 1) of the worker that gets the next batch.

        ``in_flight[i]`` is how many batches worker ``i`` has not finished yet;
        round robin does not need it.
        """
        # TODO: write this part.
        raise NotImplementedError("round_robin: write this part")
