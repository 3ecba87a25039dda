"""Pure logic behind resumable runs and retries: checkpoints, backoff."""

from __future__ import annotations

import pytest

from migrationkit._errors import TransientFaultError
from migrationkit._executors.backends import ClusterMigrationFactory
from migrationkit._executors.events import BatchDone
from migrationkit._retry import RetryPolicy
from migrationkit._target.connection import retry
from tests.unit import fakes


def done(seq: int) -> BatchDone:
    return BatchDone(worker=0, seq=seq, written=1, rejected=(), started=0.0, finished=0.0)


def test_the_checkpoint_only_moves_over_an_unbroken_run_of_committed_batches() -> None:
    cluster = ClusterMigrationFactory.create("asyncio", 2, job=fakes.job())
    cluster._tokens = {seq: f"after-{seq}" for seq in range(5)}
    cluster._in_flight = [5, 5]
    seen = []
    for seq in (1, 2, 0, 4, 3):  # batches finish out of order
        cluster._handle(done(seq))
        seen.append(cluster.checkpoint)
    assert seen == [None, None, "after-2", "after-2", "after-4"]


def test_backoff_doubles_up_to_the_cap_with_jitter_and_is_bounded() -> None:
    policy = RetryPolicy(attempts=6, base_delay_s=0.1, max_delay_s=0.5)
    delays = list(policy.delays())
    assert len(delays) == 5  # one wait between each of the six tries
    ceilings = [0.1, 0.2, 0.4, 0.5, 0.5]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling


async def test_retry_recovers_from_transient_faults() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionResetError("dropped")
        return "done"

    policy = RetryPolicy(attempts=5, base_delay_s=0.001, max_delay_s=0.002)
    assert await retry(flaky, policy=policy, transient=(OSError,), what="a flaky call") == "done"
    assert calls == 3


async def test_a_fault_that_does_not_heal_is_one_error_naming_what_failed() -> None:
    async def down() -> None:
        raise ConnectionRefusedError("nobody home")

    policy = RetryPolicy(attempts=3, base_delay_s=0.001, max_delay_s=0.002)
    with pytest.raises(TransientFaultError, match="saving the checkpoint failed 3 times"):
        await retry(down, policy=policy, transient=(OSError,), what="saving the checkpoint")


async def test_errors_that_are_not_transient_are_raised_at_once() -> None:
    calls = 0

    async def wrong() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("bad SQL")

    with pytest.raises(ValueError, match="bad SQL"):
        await retry(wrong, policy=RetryPolicy(), transient=(OSError,), what="x")
    assert calls == 1
