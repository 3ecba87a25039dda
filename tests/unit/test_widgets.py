"""The notebook control panel, driven without a browser: values in, clicks, table and chart out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("matplotlib")

from migrationkit._executors.events import BatchDone
from migrationkit._observe.progress import Progress
from migrationkit._run.report import MigrationReport
from migrationkit.workshop import widgets
from migrationkit.workshop.lessons import Choice, Measurement
from migrationkit.workshop.widgets import WIDGET_VIEW, ControlPanel, LiveCounters, WidgetProgress


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


class Shown:
    """Stands in for IPython's display functions: what a cell would have shown, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.displayed: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.updated: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        monkeypatch.setattr(widgets, "display", lambda *a, **k: self.displayed.append((a, k)))
        monkeypatch.setattr(widgets, "update_display", lambda *a, **k: self.updated.append((a, k)))


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> Shown:
    return Shown(monkeypatch)


async def test_each_run_adds_one_row(shown: Shown) -> None:
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
    assert WIDGET_VIEW in bundle


async def test_a_run_from_code_moves_the_controls_to_the_settings_it_ran(shown: Shown) -> None:
    panel = ControlPanel(experiment=quick_experiment, choice=Choice(workers=2))
    measurement = await panel.run(Choice(workers=4))
    assert measurement.label == "asyncio x4"
    assert panel.options["workers"].value == 4
    assert panel.choice() == Choice(workers=4)


async def test_a_run_with_a_value_a_control_lacks_widens_that_control(shown: Shown) -> None:
    panel = ControlPanel(experiment=quick_experiment, controls=("workers", "batch_size"))
    await panel.run(Choice(workers=32, batch_size=777))
    assert (panel.options["workers"].value, panel.options["workers"].max) == (32, 32)
    assert panel.options["batch_size"].value == 777
    assert list(panel.options["batch_size"].options) == sorted(panel.options["batch_size"].options)


def test_the_plain_text_of_the_panel_says_what_it_is_not_its_repr() -> None:
    panel = ControlPanel(experiment=quick_experiment, controls=("workers",), title="Seeding")
    text = panel._repr_mimebundle_()["text/plain"]
    assert text.startswith("Seeding: a live widget")
    assert "Trust Notebook" in text
    assert "Settings: workers 2." in text
    assert "Last run: no run yet" in text
    assert "children=" not in text


async def test_the_panel_output_carries_an_html_card_of_its_last_run(shown: Shown) -> None:
    panel = ControlPanel(experiment=quick_experiment, controls=("workers",), title="Seeding")
    await panel.run(Choice(workers=3, rows=1_000))
    card = panel._repr_mimebundle_()["text/html"]
    assert "<b>Seeding</b>" in card
    assert "Settings: workers 3" in card
    assert "asyncio x3: 1,000 rows in 0.50 s = 2,000 rows/s" in card


async def test_a_run_from_code_shows_the_results_as_a_table_and_a_png(shown: Shown) -> None:
    panel = ControlPanel(experiment=quick_experiment)
    await panel.run(Choice(workers=3))
    [(objects, _)] = shown.displayed
    table, chart = objects
    assert "asyncio x3" in table._repr_html_()
    assert chart.format == "png"
    assert chart.data.startswith(b"\x89PNG")


async def test_a_clicked_run_shows_nothing_outside_the_panel(shown: Shown) -> None:
    panel = ControlPanel(experiment=quick_experiment)
    panel._ipython_display_()
    panel.button.click()
    assert panel.task is not None
    await panel.task
    assert len(shown.displayed) == 1  # the panel itself
    assert shown.updated == []


async def test_a_shown_panel_gets_its_new_card_after_a_run_from_code(shown: Shown) -> None:
    panel = ControlPanel(experiment=quick_experiment, title="First migration")
    panel._ipython_display_()
    [((bundle,), first)] = shown.displayed
    assert first["raw"]
    assert WIDGET_VIEW in bundle
    assert "no run yet" in bundle["text/html"]
    assert "shown below" not in bundle["text/html"]
    await panel.run(Choice(workers=3))
    ((updated,), again) = shown.updated[-1]
    assert again["display_id"] == first["display_id"]
    assert "asyncio x3" in updated["text/html"]
    assert "its runs are shown below, as a table and a chart" in updated["text/html"]
    assert "asyncio x3" in updated["text/plain"]


async def test_a_failed_run_from_code_is_in_the_card(shown: Shown) -> None:
    panel = ControlPanel(experiment=failing_experiment)
    panel._ipython_display_()
    with pytest.raises(RuntimeError):
        await panel.run()
    ((updated,), _) = shown.updated[-1]
    assert "the last run failed: RuntimeError: the database is on fire" in updated["text/html"]


def run_live_counters(live: LiveCounters) -> None:
    """Two threading workers write 20 and 5 rows, 3 rows rejected, one retry, in 1 s."""
    live.run_started(backend="threading", workers=2, total=30)
    live.queue_depths(backend="threading", in_flight=[1, 2])
    for worker, written in [(0, 10), (1, 5), (0, 10)]:
        event = BatchDone(worker, 0, written, (("x", "bad"),), 0.0, 1.0)
        live.batch_done(backend="threading", event=event)
    live.retried(backend="threading", worker=1, what="writing a batch")
    live.run_finished(MigrationReport("threading", 2, "copy", 10, 28, 25, 3, 1.0, per_worker=[]))


def test_live_counters_draw_rows_per_worker_as_batches_commit() -> None:
    live = LiveCounters()
    run_live_counters(live)
    assert live.written == [20, 5]
    assert [bar.value for bar in live._bars] == [20, 5]
    assert live._bars[0].max == 20
    assert "2 batch(es) waiting" in live._labels[1].value
    assert "25 rows written" in live.title.value
    assert "3 rejected, 1 retries" in live.title.value


def test_live_counters_say_in_plain_text_and_html_what_the_run_did(shown: Shown) -> None:
    live = LiveCounters()
    live._ipython_display_()
    run_live_counters(live)
    ((updated,), _) = shown.updated[-1]
    assert "threading: 25 rows written in 1.00 s, 3 rejected, 1 retries" in updated["text/plain"]
    assert "worker 0: 20, worker 1: 5" in updated["text/plain"]
    assert "threading: 25 rows written in 1.00 s" in updated["text/html"]
    assert WIDGET_VIEW in updated
    [((chart,), _)] = shown.displayed[1:]  # after the counters themselves
    assert chart.data.startswith(b"\x89PNG")


def test_live_counters_not_on_screen_show_nothing_at_the_end(shown: Shown) -> None:
    run_live_counters(LiveCounters())
    assert shown.displayed == []
    assert shown.updated == []


def test_the_panel_chart_draws_every_run_even_with_the_same_settings() -> None:
    runs = [Measurement("asyncio x2", 1_000, seconds) for seconds in (0.5, 0.4, 0.6)]
    ax = widgets.runs_chart(runs).axes[0]
    assert len(ax.patches) == 3
    assert ax.get_xticklabels()[0].get_text() == "run 1\nasyncio x2"
    assert ax.get_ylim()[0] == 0
    [median] = ax.collections  # the dashed median of the three runs
    assert median.get_segments()[0][0][1] == pytest.approx(2_000)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["one run", "median of 3 runs"]


async def test_show_puts_the_results_table_and_chart_in_the_cell(shown: Shown) -> None:
    panel = ControlPanel(experiment=quick_experiment)
    await panel.run(show=False)
    await panel.run(show=False)
    assert shown.displayed == []
    panel.show()
    [(objects, _)] = shown.displayed
    assert len(objects[0]) == 2
