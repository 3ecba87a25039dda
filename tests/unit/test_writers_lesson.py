"""Lesson 05's pure helpers: batches, limits, sentences and the chart, from given runs."""

from __future__ import annotations

from typing import Any

import pytest

from migrationkit.workshop.lessons import overlap as O
from migrationkit.workshop.lessons import writers_lesson as W
from migrationkit.workshop.lessons.results import Measurement

TIMES = "\u00d7"


def writer(name: str, rates: list[float], *, workers: int = 1, **extra: Any) -> O.Spread:
    params = {"writer": name, "workers": workers, "batch_size": 250}
    runs = tuple(Measurement(name, 10_000, 10_000 / r, params, dict(extra)) for r in rates)
    return O.Spread(name, params, runs)


def alone() -> list[O.Spread]:
    return [
        writer("copy", [90_000.0, 100_000.0, 120_000.0]),
        writer("executemany", [50_000.0]),
        writer("insert", [5_000.0]),
    ]


def migrated() -> list[O.Spread]:
    return [
        writer("copy", [19_000.0], busy_share=0.3),
        writer("executemany", [15_000.0], busy_share=0.5),
        writer("insert", [4_500.0], busy_share=0.95),
    ]


def read() -> O.Spread:
    return writer("source", [20_000.0, 21_000.0, 22_000.0])


def test_rows_are_cut_into_batches_of_the_size_the_last_one_shorter() -> None:
    rows = [(n,) for n in range(7)]
    assert [len(batch) for batch in W.in_batches(rows, 3)] == [3, 3, 1]


def test_a_batch_takes_the_run_time_over_its_batches() -> None:
    assert W.batch_s(writer("insert", [5_000.0])) == pytest.approx(2.0 / 40)


def test_a_migration_near_the_read_rate_is_bound_by_the_source() -> None:
    copy = writer("copy", [19_000.0], busy_share=0.3)
    assert W.bound_by(copy, alone=alone()[0], read=read()) == O.SOURCE_READ


def test_a_migration_near_its_writer_alone_is_bound_by_the_writes() -> None:
    insert = writer("insert", [4_500.0], busy_share=0.95)
    assert W.bound_by(insert, alone=alone()[2], read=read()) == O.WRITES


def test_n_workers_are_held_to_n_times_the_writer_alone() -> None:
    insert = writer("insert", [9_000.0], workers=2, busy_share=0.95, cpu_share=0.5)
    assert W.bound_by(insert, alone=alone()[2], read=read()) == O.WRITES


def test_an_idle_worker_far_from_both_limits_waited_for_the_reader() -> None:
    many = writer("executemany", [10_000.0], busy_share=0.5)
    assert W.bound_by(many, alone=alone()[1], read=read()) == O.READER


def test_the_note_alone_states_the_rates_ratios_and_round_trips() -> None:
    note = W.alone_note(alone(), round_trip=0.00005)
    assert "`copy` **100,000 rows/s** (90,000\u2013120,000)" in note
    assert f"COPY wrote **2.0{TIMES}** as fast as executemany and **20.0{TIMES}**" in note
    assert "makes 250 of them a batch, **12 ms**, and a batch took **50 ms**" in note
    assert "the waiting is 25% of it; the rest is PostgreSQL running 250 statements" in note


def test_the_note_alone_says_when_the_round_trips_are_nearly_all_of_a_batch() -> None:
    note = W.alone_note(alone(), round_trip=0.0002)
    assert "the waiting is nearly all of it" in note


def test_the_migration_note_sets_each_writer_against_itself_alone_and_the_read() -> None:
    note = W.migration_note(alone(), migrated(), read=read())
    assert "**The source alone** (reading, writing nothing): **21,000 rows/s**" in note
    assert "19% of its speed alone, 90% of the source alone" in note
    assert f"Bound by **{O.SOURCE_READ}**" in note
    assert f"Bound by **{O.WRITES}**" in note
    assert f"COPY against executemany: 2.0{TIMES} alone, 1.3{TIMES} inside migrate()" in note


def test_the_recap_takes_every_number_from_the_runs() -> None:
    text = W.recap(alone(), migrated(), read=read())
    assert f"COPY wrote 2.0{TIMES} as fast as executemany and 20.0{TIMES}" in text
    assert "(1 worker)" in text
    assert "`copy` 19,000 rows/s and `executemany` 15,000 rows/s" in text
    assert "against 21,000 rows/s for the source read alone" in text
    assert f"One INSERT per row, at 4,500 rows/s, was bound by {O.WRITES}." in text


def test_the_chart_starts_at_zero_and_names_every_mark() -> None:
    pytest.importorskip("matplotlib")
    fig = W.writers_chart(alone(), migrated=migrated(), read=read(), title="t")
    ax = fig.axes[0]
    assert ax.get_xlim()[0] == 0
    assert [label.get_text() for label in ax.get_yticklabels()] == ["copy", "executemany", "insert"]
    legend = ax.get_legend()
    assert legend is not None
    texts = [text.get_text() for text in legend.get_texts()]
    assert texts[0].startswith("alone:")
    assert texts[1] == "inside migrate(), 1 worker"
    assert "whisker: min\u2013max of 1 runs (bar: their median)" in texts
    assert "the source alone (reading, writing nothing): 21,000 rows/s" in texts


def test_the_chart_says_each_bar_against_the_baseline_but_not_the_baseline() -> None:
    pytest.importorskip("matplotlib")
    ax = W.writers_chart(alone()).axes[0]
    notes = [text.get_text() for text in ax.texts]
    assert notes == ["100,000 (20.0\u00d7 insert)", "50,000 (10.0\u00d7 insert)", "5,000"]
