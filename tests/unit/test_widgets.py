"""The notebook control panel, driven without a browser: values in, clicks, table and chart out."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("matplotlib")

from migrationkit._observe.progress import Progress
from migrationkit.workshop.lessons import Choice, Measurement
from migrationkit.workshop.widgets import ControlPanel, WidgetProgress


async def quick_experiment(choice: Choice, progress: Progress) -> Measurement:
    """Reports progress like a migration, then "moves" ``choice.rows`` rows in 0.5 s."""
    progress.start(choice.rows, "fake")
    progress.advance(choice.rows)
    progress.close()
    return Measurement(f"{choice.backend} x{choice.workers}", choice.rows, 0.5)


async def failing_experiment(choice: Choice, progress: Progress) -> Measurement:
    raise RuntimeError("the database is on fire")


def test_panel_shows_only_the_requested_controls() -> None:
    panel = ControlPanel(experiment=quick_experiment, controls=("workers", "rows"))
    assert list(panel.options) == ["workers", "rows"]


def test_panel_refuses_an_unknown_control() -> None:
    with pytest.raises(ValueError, match="unknown controls"):
        ControlPanel(experiment=quick_experiment, controls=("colour",))


def test_panel_needs_a_lab_or_an_experiment() -> None:
    with pytest.raises(ValueError, match="lab"):
        ControlPanel()


def test_choice_reads_the_controls_and_keeps_defaults_for_the_rest() -> None:
    panel = ControlPanel(
        experiment=quick_experiment,
        choice=Choice(batch_size=777),
        controls=("backend", "workers"),
    )
    panel.options["backend"].value = "threading"
    panel.options["workers"].value = 5
    assert panel.choice() == Choice(backend="threading", workers=5, batch_size=777)


async def test_clicking_run_adds_a_row_to_the_table_and_draws_the_chart() -> None:
    panel = ControlPanel(experiment=quick_experiment, choice=Choice(rows=1_234))
    panel.options["workers"].value = 3
    panel.button.click()
    assert panel.task is not None
    measurement = await panel.task
    assert measurement.label == "asyncio x3"
    assert panel.history == [measurement]
    assert "asyncio x3" in panel.table.value
    assert "1,234" in panel.table.value
    assert bytes(panel.chart.value).startswith(b"\x89PNG")
    assert panel.progress.bar.value == panel.progress.bar.max == 1_234
    assert not panel.button.disabled


async def test_each_run_adds_one_row() -> None:
    panel = ControlPanel(experiment=quick_experiment)
    await panel.run(Choice(workers=1))
    await panel.run(Choice(workers=2))
    assert [m.label for m in panel.history] == ["asyncio x1", "asyncio x2"]
    assert len(panel.results()) == 2
    assert len(panel.figure().axes[0].patches) == 2


async def test_the_button_is_disabled_while_a_run_is_going() -> None:
    release = asyncio.Event()

    async def waiting_experiment(choice: Choice, progress: Progress) -> Measurement:
        await release.wait()
        return Measurement("waited", 1, 1.0)

    panel = ControlPanel(experiment=waiting_experiment)
    panel.button.click()
    await asyncio.sleep(0)  # let the scheduled run start
    assert panel.button.disabled
    release.set()
    assert panel.task is not None
    await panel.task
    assert not panel.button.disabled


async def test_an_error_is_shown_in_the_panel_and_raised_to_the_caller() -> None:
    panel = ControlPanel(experiment=failing_experiment)
    with pytest.raises(RuntimeError, match="on fire"):
        await panel.run()
    assert "RuntimeError: the database is on fire" in panel.status.value
    assert panel.progress.bar.bar_style == "danger"
    assert not panel.button.disabled
    assert panel.history == []


async def test_an_error_from_a_click_is_shown_in_the_panel() -> None:
    panel = ControlPanel(experiment=failing_experiment)
    panel.button.click()
    assert panel.task is not None
    await asyncio.wait([panel.task])
    assert isinstance(panel.task.exception(), RuntimeError)
    assert "on fire" in panel.status.value


def test_widget_progress_counts_rows_against_the_total() -> None:
    progress = WidgetProgress()
    progress.start(1_000, "asyncio/copy")
    progress.advance(400)
    progress.advance(100)
    progress.close()
    assert (progress.bar.value, progress.bar.max) == (500, 1_000)
    assert progress.label.value == "asyncio/copy: 500 / 1,000 rows"


def test_widget_progress_without_a_total_grows_with_the_count() -> None:
    progress = WidgetProgress()
    progress.start(None, "seeding")
    progress.advance(70)
    progress.close()
    assert (progress.bar.value, progress.bar.max) == (70, 70)
    assert progress.label.value == "seeding: 70 rows"


def test_the_panel_displays_as_its_widget() -> None:
    panel = ControlPanel(experiment=quick_experiment)
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_live_counters_draw_rows_per_worker_as_batches_commit() -> None:
    from migrationkit._executors.events import BatchDone
    from migrationkit._run.report import MigrationReport
    from migrationkit.workshop.widgets import LiveCounters

    live = LiveCounters()
    live.run_started(backend="threading", workers=2, total=30)
    live.queue_depths(backend="threading", in_flight=[1, 2])
    for worker, written in [(0, 10), (1, 5), (0, 10)]:
        event = BatchDone(worker, 0, written, (("x", "bad"),), 0.0, 1.0)
        live.batch_done(backend="threading", event=event)
    live.retried(backend="threading", worker=1, what="writing a batch")
    live.run_finished(MigrationReport("threading", 2, "copy", 10, 28, 25, 3, 1.0, per_worker=[]))
    assert live.written == [20, 5]
    assert [bar.value for bar in live._bars] == [20, 5]
    assert live._bars[0].max == 20
    assert "2 batch(es) waiting" in live._labels[1].value
    assert "25 rows written" in live.title.value
    assert "3 rejected, 1 retries" in live.title.value
