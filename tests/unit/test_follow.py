"""The follower's pure parts: positions and their times, the history check's rule,
cutover's messages, the lag metrics."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from bson.timestamp import Timestamp

from migrationkit._errors import ChangeHistoryLostError
from migrationkit._observe.metrics import PrometheusObserver
from migrationkit._run.cutover import _behind
from migrationkit._run.follow import (
    FollowOptions,
    FollowStatus,
    _HistoryCheck,
    raised_floor,
)
from migrationkit._target.stream_positions import StreamPosition, int_to_time, time_to_int


def position(**changes: Any) -> StreamPosition:
    base = StreamPosition(
        target_table="t",
        source="db.c",
        collection_uuid=None,
        token={"_data": "00"},
        caught_up_to=Timestamp(100, 1),
        reread_floor=Timestamp(90, 0),
    )
    return replace(base, **changes)


def test_cluster_times_round_trip_through_one_integer_in_server_order() -> None:
    times = [Timestamp(5, 2), Timestamp(5, 10), Timestamp(6, 0), Timestamp(2**31, 2**32 - 1)]
    assert [int_to_time(time_to_int(t)) for t in times] == times
    assert sorted(times, key=time_to_int) == times


def test_an_advanced_position_counts_changes_and_never_goes_back_in_time() -> None:
    moved = position().advanced(token={"_data": "01"}, caught_up_to=Timestamp(99, 0), applied=3)
    assert moved.caught_up_to == Timestamp(100, 1)
    assert moved.changes_applied == 3
    assert moved.token == {"_data": "01"}


def test_a_resumed_follower_rereads_everything_changed_until_it_restarted() -> None:
    assert raised_floor(position(), Timestamp(200, 0)).reread_floor == Timestamp(200, 0)
    assert raised_floor(position(), Timestamp(1, 0)).reread_floor == Timestamp(90, 0)


class FakeOplog:
    """``client["local"]["oplog.rs"].find_one`` answering the oldest entry's time."""

    def __init__(self, oldest: Timestamp) -> None:
        self.oldest = oldest
        self.asked = 0

    def __getitem__(self, name: str) -> FakeOplog:
        return self

    async def find_one(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.asked += 1
        return {"ts": self.oldest}


class FakeSource:
    namespace = "db.c"

    def __init__(self, oldest: Timestamp, *, silent: bool = True) -> None:
        self.client = FakeOplog(oldest)
        self.silent = silent

    async def prunes_silently(self) -> bool:
        return self.silent


OFTEN = FollowOptions(safe_lag_s=10, history_check_s=0.0)


async def settle() -> None:
    """Let the check started in the background run to its end."""
    for _ in range(3):
        await asyncio.sleep(0)


def history(oldest: Timestamp, *, silent: bool = True) -> tuple[_HistoryCheck, FakeSource]:
    source = FakeSource(oldest, silent=silent)
    return _HistoryCheck(source, Timestamp(100, 0)), source  # type: ignore[arg-type]


async def test_a_follower_within_the_safe_lag_never_scans_the_oplog() -> None:
    check, source = history(Timestamp(500, 0))
    for second in range(101, 110):
        check.after_batch(OFTEN, position(caught_up_to=Timestamp(second, 0)), lag_s=0.5)
        await settle()
    await check.close()
    assert source.client.asked == 0


async def test_a_lagging_follower_checks_from_the_last_position_known_safe() -> None:
    check, source = history(Timestamp(105, 0))
    check.after_batch(OFTEN, position(caught_up_to=Timestamp(106, 0)), lag_s=0.5)  # safe: 106
    check.after_batch(OFTEN, position(caught_up_to=Timestamp(120, 0)), lag_s=30)
    await settle()
    check.after_batch(OFTEN, position(caught_up_to=Timestamp(130, 0)), lag_s=30)
    await check.close()
    assert source.client.asked == 1  # oldest 105 <= 106: nothing lost


async def test_a_pruned_history_stops_a_lagging_follower_at_its_next_batch() -> None:
    check, _ = history(Timestamp(101, 0))
    check.after_batch(OFTEN, position(caught_up_to=Timestamp(120, 0)), lag_s=30)
    await settle()
    with pytest.raises(ChangeHistoryLostError, match="pruned"):
        check.after_batch(OFTEN, position(caught_up_to=Timestamp(130, 0)), lag_s=30)
    await check.close()


async def test_a_server_that_fails_lost_streams_itself_is_not_scanned() -> None:
    check, source = history(Timestamp(101, 0), silent=False)
    check.after_batch(OFTEN, position(caught_up_to=Timestamp(120, 0)), lag_s=30)
    await settle()
    check.after_batch(OFTEN, position(caught_up_to=Timestamp(130, 0)), lag_s=30)
    await check.close()
    assert source.client.asked == 0


async def test_a_lagging_follower_waits_an_interval_before_scanning_the_oplog() -> None:
    check, source = history(Timestamp(50, 0))
    rarely = FollowOptions(safe_lag_s=10, history_check_s=3600)
    for second in range(120, 125):
        check.after_batch(rarely, position(caught_up_to=Timestamp(second, 0)), lag_s=30)
        await settle()
    await check.close()
    assert source.client.asked == 0


async def test_one_check_runs_at_a_time() -> None:
    check, source = history(Timestamp(50, 0))
    started: list[int] = []

    async def never_answers(*args: Any, **kwargs: Any) -> dict[str, Any]:
        started.append(1)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    source.client.find_one = never_answers  # type: ignore[method-assign]
    for second in range(120, 125):
        check.after_batch(OFTEN, position(caught_up_to=Timestamp(second, 0)), lag_s=30)
        await settle()
    assert started == [1]  # the first check is still waiting; no second one began
    await check.close()


def test_cutover_says_what_to_start_when_no_follower_saved_a_position() -> None:
    assert "migrationkit migrate --follow" in _behind("t", None, Timestamp(5, 0))


def test_cutover_says_how_far_behind_the_follower_is() -> None:
    saved = position(phase="following", updated_at=datetime(2026, 1, 1, tzinfo=UTC))
    message = _behind("t", saved, Timestamp(130, 0))
    assert "30 s behind" in message
    assert "--follow --resume" in message


def test_cutover_waits_for_a_follower_that_is_still_loading() -> None:
    assert "still loading" in _behind("t", position(phase="loading"), Timestamp(130, 0))


def test_the_follow_summary_names_every_count() -> None:
    status = FollowStatus(events_applied=1200, documents_written=900, documents_deleted=30)
    text = status.summary()
    assert "1,200 changes" in text
    assert "900 documents written" in text
    assert "30 deleted" in text
    assert status.to_dict()["events_applied"] == 1200


def test_the_lag_and_the_changes_applied_are_prometheus_metrics() -> None:
    observer = PrometheusObserver()
    observer.following(applied=0, lag_s=0.0, waiting=40)
    observer.following(applied=40, lag_s=1.5, waiting=0)
    registry = observer.registry
    assert registry.get_sample_value("migrationkit_follow_changes_applied_total") == 40
    assert registry.get_sample_value("migrationkit_follow_lag_seconds") == 1.5
    assert registry.get_sample_value("migrationkit_follow_events_waiting") == 0


def test_a_stopped_follower_s_time_is_until_it_stopped() -> None:
    status = FollowStatus(events_applied=100, started=10.0, stopped=12.0)
    assert status.elapsed_s == 2.0
    assert status.events_per_s == 50.0


async def test_a_signal_while_loading_cancels_and_while_following_asks_to_stop() -> None:
    import os
    import signal

    from migrationkit._cli.follow import stop_on_signals

    stop = asyncio.Event()
    following = False

    async def load() -> None:
        with stop_on_signals(stop, following=lambda: following):
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(30)  # the load, cancelled by the signal

    with pytest.raises(asyncio.CancelledError):
        await asyncio.ensure_future(load())
    assert not stop.is_set()

    following = True

    async def follow() -> None:
        with stop_on_signals(stop, following=lambda: following):
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.wait_for(stop.wait(), 5)

    await follow()
    assert stop.is_set()
