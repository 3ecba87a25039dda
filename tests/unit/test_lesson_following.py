"""Lesson 09's pure parts: the writer's choices and pace, each change's delay, the sentences."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from migrationkit import Endpoints, Settings
from migrationkit._mapping.spec import ChildTable, Column, TableMapping
from migrationkit._run.follow import FollowStatus
from migrationkit.workshop.lessons import following as F
from migrationkit.workshop.samples import CustomerFactory


class FakeCollection:
    """Records every write; ``after_write`` runs after each (a test stops the writer there)."""

    def __init__(self, after_write: Callable[[], None] | None = None) -> None:
        self.calls: list[tuple[str, Any, Any]] = []
        self.after_write = after_write

    async def _record(self, name: str, first: Any, second: Any = None) -> None:
        self.calls.append((name, first, second))
        if self.after_write is not None:
            self.after_write()

    async def insert_one(self, document: Any) -> None:
        await self._record("insert_one", document)

    async def update_one(self, query: Any, update: Any) -> None:
        await self._record("update_one", query, update)

    async def replace_one(self, query: Any, document: Any) -> None:
        await self._record("replace_one", query, document)

    async def delete_one(self, query: Any) -> None:
        await self._record("delete_one", query)


class Ticks:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def factory() -> CustomerFactory:
    return CustomerFactory(F.SEED)


def writer_on(
    collection: FakeCollection, factory: CustomerFactory, **options: Any
) -> F.SteadyWriter:
    return F.SteadyWriter(collection, list(range(10)), factory=factory, next_number=10, **options)


def sample(at: float, applied: int, *, lag_s: float = 0.0, batches: int = 0) -> F.FollowSample:
    return F.FollowSample(
        at=at, applied=applied, written=applied, deleted=0, reread=0, rejected=0,
        batches=batches, lag_s=lag_s,
    )  # fmt: skip


def rate_run(asked: float, *, writes: int, delays: tuple[float, ...], **extra: Any) -> F.RateRun:
    options: dict[str, Any] = {"catch_up_s": 0.3, "cpu_share": 0.2, "machine_busy": 0.5}
    return F.RateRun(
        asked=asked, writes=writes, seconds=1.0, delays=delays, lags=(0.0,), **(options | extra)
    )


# -- the writer ---------------------------------------------------------------------------


def test_the_operations_shares_add_up_to_one() -> None:
    assert sum(share for _, share in F.OPERATIONS) == pytest.approx(1.0)


def test_a_roll_picks_the_operation_whose_share_it_falls_in() -> None:
    assert F.pick_operation(0.0) == "insert"
    assert F.pick_operation(0.149) == "insert"
    assert F.pick_operation(0.15) == "update a nested field"
    assert F.pick_operation(0.9999) == "delete"


def test_the_next_write_is_due_an_interval_later_but_never_in_the_past() -> None:
    assert F.next_due(10.0, interval=0.02, now=10.005) == pytest.approx(10.02)
    assert F.next_due(10.0, interval=0.02, now=12.0) == 12.0  # held up: no burst to catch up


async def test_every_update_also_raises_the_points_so_none_is_a_no_op(
    factory: CustomerFactory,
) -> None:
    collection = FakeCollection()
    writer = writer_on(collection, factory)
    for _ in range(200):
        await writer.one_write()
    updates = [update for name, _, update in collection.calls if name == "update_one"]
    assert updates
    assert all(update["$inc"] == {"loyalty_points": 1} for update in updates)
    assert {next(iter(set(u) - {"$inc"})) for u in updates} == {"$set", "$push", "$pop"}


async def test_an_insert_adds_its_id_and_a_delete_takes_its_id_out(
    factory: CustomerFactory,
) -> None:
    collection = FakeCollection()
    writer = writer_on(collection, factory)
    for _ in range(300):
        await writer.one_write()
    inserted = {doc["_id"] for name, doc, _ in collection.calls if name == "insert_one"}
    deleted = {query["_id"] for name, query, _ in collection.calls if name == "delete_one"}
    assert set(writer.alive) == (set(range(10)) | inserted) - deleted
    assert len(deleted) == len(set(deleted))  # never the same document twice


async def test_every_write_is_counted_with_its_acknowledgement_time(
    factory: CustomerFactory,
) -> None:
    clock = Ticks()
    collection = FakeCollection(after_write=lambda: setattr(clock, "now", clock.now + 1.0))
    writer = writer_on(collection, factory, clock=clock)
    for _ in range(5):
        await writer.one_write()
    assert writer.acked == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert sum(writer.kinds.values()) == writer.writes == 5


async def test_a_timed_run_makes_the_writes_due_within_its_seconds(
    factory: CustomerFactory,
) -> None:
    writer = writer_on(FakeCollection(), factory)
    run = await writer.run(rate=200.0, seconds=0.05)  # writes 0..9 are due before 0.05 s
    assert run.writes == 10
    assert run.first == 0
    assert run.asked == 200.0
    assert run.achieved > 0


async def test_a_writer_that_falls_behind_still_stops_after_its_seconds(
    factory: CustomerFactory,
) -> None:
    clock = Ticks()
    collection = FakeCollection(after_write=lambda: setattr(clock, "now", clock.now + 0.1))
    writer = writer_on(collection, factory, clock=clock)
    run = await writer.run(rate=100.0, seconds=0.5)  # asked for 50 writes; each takes 0.1 s
    assert run.writes == 5
    assert run.achieved == pytest.approx(10.0)


async def test_stop_ends_a_run_before_its_next_write(factory: CustomerFactory) -> None:
    writer: F.SteadyWriter

    def stop_after_three() -> None:
        if writer.writes + 1 >= 3:  # acked is appended just after the collection's call
            writer.stop()

    writer = writer_on(FakeCollection(after_write=stop_after_three), factory)
    run = await asyncio.wait_for(writer.run(rate=1_000.0), 5.0)
    assert run.writes == 3


# -- what the follower reports ------------------------------------------------------------


def test_the_recorder_keeps_the_load_and_every_batch_on_its_clock() -> None:
    clock = Ticks()
    recorder = F.FollowRecorder(clock=clock)
    told: list[int] = []
    recorder.listeners.append(lambda: told.append(1))
    recorder.start(100, "asyncio/copy")
    clock.now = 2.0
    recorder.advance(100)
    recorder.close()
    clock.now = 3.0
    recorder(FollowStatus(events_applied=7, documents_written=7, batches=1, lag_s=0.25))
    assert (recorder.total, recorder.loaded, recorder.load_started, recorder.load_ended) == (
        100, 100, 0.0, 2.0,
    )  # fmt: skip
    assert recorder.samples == [sample(3.0, 7, lag_s=0.25, batches=1)]
    assert recorder.following
    assert recorder.reported.is_set()
    assert len(told) == 4


def test_a_change_is_applied_at_the_first_sample_that_counts_it() -> None:
    samples = [sample(1.0, 0), sample(2.0, 2), sample(3.5, 3)]
    delays = F.change_delays([0.5, 1.5, 3.0, 4.0], samples)
    assert delays == [(0.5, 1.5), (1.5, 0.5), (3.0, 0.5)]  # the 4th is not applied yet


def test_change_delays_start_at_the_first_event_of_the_writes_given() -> None:
    samples = [sample(1.0, 10), sample(2.0, 12)]
    delays = F.change_delays([1.2, 1.4], samples, first_event=10)
    assert [at for at, _ in delays] == [1.2, 1.4]
    assert [delay for _, delay in delays] == pytest.approx([0.8, 0.6])


def test_everything_acknowledged_by_a_moment_is_applied_at_the_first_sample_that_covers_it() -> (
    None
):
    samples = [sample(1.0, 1), sample(2.0, 3), sample(3.0, 4)]
    assert F.applied_at([0.1, 0.2, 0.3, 2.5], samples, moment=0.3) == 2.0
    assert F.applied_at([0.1, 5.0], samples, moment=9.0, first_event=3) is None


def test_the_commit_interval_counts_only_batches_that_applied_changes() -> None:
    samples = [sample(0.0, 0), sample(0.5, 5), sample(0.8, 5), sample(1.5, 9), sample(2.5, 12)]
    assert F.commit_interval(samples) == pytest.approx(1.0)  # applied at 0.5, 1.5 and 2.5 s
    assert F.commit_interval(samples[:2]) is None


# -- the runs, read ------------------------------------------------------------------------


def test_runs_are_grouped_by_pace_slowest_first_with_median_and_range() -> None:
    runs = [
        rate_run(50.0, writes=45, delays=(0.4,)),
        rate_run(25.0, writes=25, delays=(0.3,)),
        rate_run(50.0, writes=50, delays=(0.6,)),
        rate_run(50.0, writes=48, delays=(0.5,)),
    ]
    assert list(F.by_rate(runs)) == [25.0, 50.0]
    assert F.per_rate(runs, lambda run: run.achieved)[50.0] == (48.0, 45.0, 50.0)


def test_a_run_reports_its_median_and_longest_delay() -> None:
    run = rate_run(25.0, writes=25, delays=(0.2, 0.9, 0.4))
    assert (run.median_delay, run.max_delay, run.achieved) == (0.4, 0.9, 25.0)


# -- what the lesson says -----------------------------------------------------------------


def test_seconds_keep_the_digits_that_matter() -> None:
    assert [F.seconds_text(v) for v in (0.4234, 3.14, 18.2)] == ["0.42 s", "3.1 s", "18 s"]


def kept_runs(*, longest: float = 0.9) -> list[F.RateRun]:
    return [
        rate_run(rate, writes=int(rate), delays=(0.4, 0.45, longest))
        for rate in (25.0, 50.0)
        for _ in range(3)
    ]


def test_the_rates_note_says_the_follower_kept_up_when_no_change_waited_the_target() -> None:
    note = F.rates_note(kept_runs())
    assert "25/s asked:** the writer made 25/s (median of 3 runs" in note
    assert "no change waited 2.0 s or more: the follower kept up" in note
    assert "fell short" not in note


def test_the_rates_note_says_the_follower_fell_behind_when_a_change_waited_the_target() -> None:
    note = F.rates_note(kept_runs(longest=2.5))
    assert "some change waited 2.0 s or more: the follower fell behind" in note


def test_a_shortfall_names_the_busy_machine_only_when_its_cpus_were_saturated() -> None:
    runs = [*kept_runs(), *(rate_run(100.0, writes=60, delays=(0.5,), machine_busy=0.97)
                            for _ in range(3))]  # fmt: skip
    note = F.rates_note(runs)
    assert "fell short of 100/s asked" in note
    assert "97% busy" in note
    assert "the machine's CPUs" in note
    calm = [*kept_runs(), *(rate_run(100.0, writes=60, delays=(0.5,)) for _ in range(3))]
    assert "neither this thread nor the machine's CPUs were saturated" in F.rates_note(calm)


def test_the_recap_says_the_delay_stayed_flat_only_when_the_medians_are_close() -> None:
    recorder = F.FollowRecorder()
    recorder(FollowStatus(events_applied=6, documents_reread=2))
    writer = F.SteadyWriter(FakeCollection(), [], factory=CustomerFactory(0), next_number=0)
    writer.acked = [0.0] * 6
    flat = F.recap(recorder, writer, kept_runs(), cutover_s=0.6)
    assert "stayed within 0.45 s" in flat
    assert "6 writes, 6 changes applied" in flat
    grew = [*kept_runs(), *(rate_run(100.0, writes=100, delays=(1.5,)) for _ in range(3))]
    assert "the median delay went from 0.45 s to 1.5 s" in F.recap(
        recorder, writer, grew, cutover_s=0.6
    )


def test_the_counters_before_the_follower_reports_show_only_the_writes() -> None:
    recorder = F.FollowRecorder()
    writer = F.SteadyWriter(FakeCollection(), [], factory=CustomerFactory(0), next_number=0)
    assert F.counter_rows(recorder, writer) == [("writes made by the writer", "0")]
    assert "waiting for the load to begin" in F.counters_html(recorder, writer)


def test_the_counters_say_how_old_the_oldest_change_not_yet_applied_is() -> None:
    clock = Ticks()
    recorder = F.FollowRecorder(clock=clock)
    recorder.start(10, "")
    recorder.close()
    writer = F.SteadyWriter(FakeCollection(), [], factory=CustomerFactory(0), next_number=0)
    writer.acked = [1.0, 2.0, 3.0]
    recorder(FollowStatus(events_applied=1, batches=1))
    clock.now = 4.5
    rows = dict(F.counter_rows(recorder, writer))
    assert rows["writes not yet in PostgreSQL"] == "2"
    assert rows["the oldest of them, written"] == "2.5 s ago"
    assert "| changes applied by the follower | 1 in 1 batches |" in F.final_counts(
        recorder, writer
    )


def test_the_setup_note_keeps_the_machine_sentence_of_the_other_lessons() -> None:
    machine = "**Machine:**"
    assert machine in F.setup_note(_customers())
    assert F.setup_note(_customers()).count(machine) == 1


def _customers() -> F.Customers:
    settings = Settings(mongo_collection="nb09_customers", pg_table="nb09_customers")
    name = Column("name", "name", "text", ("string",))
    mapping = TableMapping(
        collection="nb09_customers",
        table="nb09_customers",
        columns=(name,),
        children=(ChildTable("orders", "nb09_customers__orders", columns=()),),
    )
    endpoints = Endpoints("mongodb://localhost:1", "postgresql://localhost:2/x")
    return F.Customers(settings, endpoints, mapping, [1, 2, 3], CustomerFactory(0))


# -- the pictures -------------------------------------------------------------------------


def legend_texts(ax: Any) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [text.get_text() for text in legend.get_texts()]


def test_the_rates_chart_starts_at_zero_ticks_the_paces_and_names_every_mark() -> None:
    pytest.importorskip("matplotlib")
    fig = F.rates_chart(kept_runs())
    waited, paced = fig.axes
    for ax in (waited, paced):
        assert ax.get_ylim()[0] == 0
        assert ax.get_xlim()[0] == 0
        assert list(ax.get_xticks()) == [25.0, 50.0]
        assert ax.get_xlabel() == "writes/s asked of the writer"
    labels = legend_texts(waited)
    assert "the target: under 2 s" in labels
    assert "point: median of 3 runs" in labels
    assert "whisker: their min\u2013max" in labels
    assert "seconds" in waited.get_ylabel()


def test_the_follow_chart_draws_writes_applied_delays_and_the_load_from_zero() -> None:
    pytest.importorskip("matplotlib")
    clock = Ticks()
    recorder = F.FollowRecorder(clock=clock)
    recorder.start(10, "")
    clock.now = 2.0
    recorder.close()
    writer = F.SteadyWriter(FakeCollection(), [], factory=CustomerFactory(0), next_number=0)
    writer.acked = [0.5, 1.0, 2.5, 3.0]
    for at, applied in ((2.6, 2), (3.2, 4)):
        clock.now = at
        recorder(FollowStatus(events_applied=applied, batches=applied // 2))
    live = F.WriterRun(asked=50.0, writes=4, started=0.4, ended=3.0, first=0)
    fig = F.follow_chart(recorder, writer, live=live)
    counts, seconds = fig.axes
    assert counts.get_ylim()[0] == 0
    assert seconds.get_ylim()[0] == 0
    assert seconds.get_xlabel() == "seconds since the load began"
    legend = [label for ax in fig.axes for label in legend_texts(ax)]
    assert "writes made" in legend
    assert "the full load" in legend
    assert "the follower's lag_s after each batch" in legend


def test_the_live_note_tells_the_load_the_catch_up_and_the_steady_delay_apart() -> None:
    clock = Ticks()
    recorder = F.FollowRecorder(clock=clock)
    recorder.start(100, "")
    clock.now = 10.0
    recorder.advance(100)
    recorder.close()
    writer = F.SteadyWriter(FakeCollection(), [], factory=CustomerFactory(0), next_number=0)
    writer.acked = [0.1, 6.0, 6.02, 11.0, 11.02, 12.0]
    for at, applied in ((10.5, 3), (11.5, 5), (12.4, 6)):
        clock.now = at
        recorder(FollowStatus(events_applied=applied, batches=applied, documents_reread=2))
    live = F.WriterRun(asked=50.0, writes=6, started=0.0, ended=12.0, first=0)
    note = F.live_note(recorder, writer, live=live)
    assert "the writer made 3 writes meanwhile" in note
    assert "longest stretch of the load without a write was 5.9 s" in note
    assert "up to 10 s (median 4.5 s)" in note  # 10.4, 4.5 and 4.48 s
    assert "applied them all 0.50 s after the load ended" in note
    assert "a change reached PostgreSQL 0.48 s after its write (median of 3" in note


def test_the_longest_gap_is_between_consecutive_moments_in_time_order() -> None:
    assert F.longest_gap([3.0, 0.0, 1.0]) == 2.0
    assert F.longest_gap([1.0]) == 0.0
