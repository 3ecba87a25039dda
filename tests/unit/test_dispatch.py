import pytest

from migrationkit._executors.dispatch import LeastLoaded, RoundRobin


def test_round_robin_deals_workers_in_turn_whatever_their_load() -> None:
    dealer = RoundRobin(3)
    assert [dealer.choose([9, 0, 0]) for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_round_robin_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        RoundRobin(0)


def test_least_loaded_picks_the_worker_with_fewest_unfinished_batches() -> None:
    assert LeastLoaded().choose([2, 0, 1]) == 1


def test_least_loaded_breaks_ties_by_lowest_index() -> None:
    assert LeastLoaded().choose([1, 0, 0]) == 1
