"""The follower's rarer garbage collections: raised inside, restored after, never lowered."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from migrationkit._run.garbage_collection import FOLLOWER_THRESHOLD, rarer_collections


@pytest.fixture
def threshold() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


@pytest.mark.usefixtures("threshold")
def test_the_first_threshold_is_raised_inside_and_restored_after() -> None:
    gc.set_threshold(700, 11, 12)
    with rarer_collections():
        assert gc.get_threshold() == (FOLLOWER_THRESHOLD, 11, 12)
    assert gc.get_threshold() == (700, 11, 12)


@pytest.mark.usefixtures("threshold")
def test_the_threshold_is_restored_when_the_block_raises() -> None:
    gc.set_threshold(700, 10, 10)
    with pytest.raises(KeyError), rarer_collections():
        raise KeyError("boom")
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.usefixtures("threshold")
@pytest.mark.parametrize("chosen", [0, FOLLOWER_THRESHOLD, 10 * FOLLOWER_THRESHOLD])
def test_a_higher_threshold_or_collection_off_is_left_alone(chosen: int) -> None:
    gc.set_threshold(chosen, 10, 10)
    with rarer_collections():
        assert gc.get_threshold() == (chosen, 10, 10)
    assert gc.get_threshold() == (chosen, 10, 10)
