"""Notebook control panels: pick settings, press Run, watch progress, compare the runs.

``ControlPanel(lab)`` shows dropdowns and sliders, a Run button, a progress bar,
a table of every run so far and a chart, all updated in place. Pressing Run
schedules :meth:`ControlPanel.run` on the kernel's running event loop (a button
callback cannot ``await``); a notebook can also ``await panel.run(choice)``
directly, which is what makes stored outputs real without anyone clicking.
Errors are shown in the panel *and* re-raised to whoever awaited the run.

Needs ``pip install -e '.[notebooks]'`` (ipywidgets, matplotlib).
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as w  # type: ignore[import-untyped]

from migrationkit._executors.backends import ClusterMigrationFactory
from migrationkit._observe.progress import Progress
from migrationkit._target.writers import WRITERS
from migrationkit.workshop import plots
from migrationkit.workshop.lessons.lab import DISPATCHERS, LESSON_TRANSFORMS, Choice, Lab
from migrationkit.workshop.lessons.results import Measurement, Table, results_table
from migrationkit.workshop.lessons.simulation import SCENARIOS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from migrationkit._executors.events import BatchDone
    from migrationkit._run.report import MigrationReport

Experiment = Callable[[Choice, Progress], Awaitable[Measurement]]
Chart = Callable[[Sequence[Measurement]], "Figure"]

#: Every control a panel can show, in the order it shows them.
CONTROLS = (
    "backend",
    "workers",
    "batch_size",
    "writer",
    "transform",
    "dispatch",
    "scenario",
    "rows",
)
MIGRATION_CONTROLS = ("backend", "workers", "batch_size", "writer", "transform", "rows")
BATCH_SIZES = (10, 100, 500, 1_000, 2_000, 5_000, 10_000, 50_000)

#: Redraw the progress bar at most this often (a comm message per update).
REDRAW_EVERY_S = 0.1


class WidgetProgress:
    """The :class:`~migrationkit.Progress` protocol drawn on an ``IntProgress``."""

    def __init__(self, bar: Any | None = None, label: Any | None = None) -> None:
        self.bar = bar if bar is not None else w.IntProgress(value=0, min=0, max=1)
        self.label = label if label is not None else w.Label()
        self.count = 0
        self._total: int | None = None
        self._description = ""
        self._drawn_at = 0.0

    def start(self, total: int | None, description: str) -> None:
        self.count, self._total, self._description = 0, total, description
        self.bar.bar_style = ""
        self._draw()

    def advance(self, count: int) -> None:
        self.count += count
        if time.monotonic() - self._drawn_at >= REDRAW_EVERY_S:
            self._draw()

    def close(self) -> None:
        self._draw()

    def _draw(self) -> None:
        self._drawn_at = time.monotonic()
        total = max(self._total or 0, self.count, 1)
        self.bar.max = total
        self.bar.value = min(self.count, total)
        of = f" / {self._total:,}" if self._total else ""
        self.label.value = f"{self._description}: {self.count:,}{of} rows"


class LiveCounters:
    """An :class:`~migrationkit.Observer` drawn live: rows per worker, queues, speed.

    The same counters the Prometheus exporter serves (``migrationkit._observe.metrics``), as a
    small chart of bars that fills while the migration runs:
    ``await migrate(settings, observer=live)`` with ``live.widget`` on screen.
    """

    def __init__(self) -> None:
        self.written: list[int] = []
        self.queued: list[int] = []
        self.rejected = 0
        self.retries = 0
        self._bars: list[Any] = []
        self._labels: list[Any] = []
        self._backend = ""
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self.title = w.HTML("<b>live counters</b>: waiting for a run")
        self.rows = w.VBox()
        self.widget = w.VBox([self.title, self.rows])

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def run_started(self, *, backend: str, workers: int, total: int | None) -> None:
        self.written, self.queued = [0] * workers, [0] * workers
        self.rejected = self.retries = 0
        self._started = time.monotonic()
        self._bars = [
            w.IntProgress(value=0, min=0, max=1, description=f"worker {i}") for i in range(workers)
        ]
        self._labels = [w.Label() for _ in range(workers)]
        self.rows.children = [w.HBox([b, t]) for b, t in zip(self._bars, self._labels, strict=True)]
        self._backend = backend
        self._draw()

    def batch_read(self, *, backend: str, rows: int, seconds: float) -> None:
        pass

    def batch_done(self, *, backend: str, event: BatchDone) -> None:
        self.written[event.worker] += event.written
        self.rejected += len(event.rejected)
        if time.monotonic() - self._drawn_at >= REDRAW_EVERY_S:
            self._draw()

    def retried(self, *, backend: str, worker: int, what: str) -> None:
        self.retries += 1

    def queue_depths(self, *, backend: str, in_flight: Sequence[int]) -> None:
        self.queued = list(in_flight)

    def run_finished(self, report: MigrationReport) -> None:
        self._draw()

    def following(self, *, applied: int, lag_s: float, waiting: int) -> None:
        pass

    def _draw(self) -> None:
        self._drawn_at = time.monotonic()
        top = max([*self.written, 1])
        for bar, label, rows, queued in zip(
            self._bars, self._labels, self.written, self.queued, strict=True
        ):
            bar.max, bar.value = top, rows
            label.value = f"{rows:,} rows, {queued} batch(es) waiting"
        elapsed = max(time.monotonic() - self._started, 1e-9)
        done = sum(self.written)
        self.title.value = (
            f"<b>{html.escape(self._backend)}</b>: {done:,} rows written "
            f"({done / elapsed:,.0f} rows/s), {self.rejected:,} rejected, "
            f"{self.retries} retries"
        )


def _option_widgets(choice: Choice) -> dict[str, Any]:
    """One widget per :class:`Choice` field, starting at ``choice``'s values."""
    style = {"description_width": "90px"}
    batch_sizes = sorted({*BATCH_SIZES, choice.batch_size})
    return {
        "backend": w.Dropdown(
            options=ClusterMigrationFactory.available("batches"), value=choice.backend,
            description="backend", style=style,
        ),
        "workers": w.IntSlider(
            value=choice.workers, min=1, max=16, description="workers", style=style
        ),
        "batch_size": w.Dropdown(
            options=batch_sizes, value=choice.batch_size, description="batch size", style=style
        ),
        "writer": w.Dropdown(
            options=list(WRITERS), value=choice.writer, description="writer", style=style
        ),
        "transform": w.Dropdown(
            options=list(LESSON_TRANSFORMS), value=choice.transform,
            description="transform", style=style,
        ),
        "dispatch": w.ToggleButtons(
            options=list(DISPATCHERS), value=choice.dispatch, description="dispatch", style=style
        ),
        "scenario": w.Dropdown(
            options=list(SCENARIOS), value=choice.scenario, description="scenario", style=style
        ),
        "rows": w.BoundedIntText(
            value=choice.rows, min=1, max=10_000_000, step=1_000, description="records",
            style=style,
        ),
    }  # fmt: skip


class ControlPanel:
    """Controls, a Run button, a progress bar, and a results table and chart kept up to date.

    ``experiment(choice, progress)`` is what Run does (default: ``lab.run``, one
    migration); ``chart(history)`` draws the runs so far (default: rows/s bars).
    """

    def __init__(
        self,
        lab: Lab | None = None,
        *,
        choice: Choice | None = None,
        controls: Sequence[str] = MIGRATION_CONTROLS,
        experiment: Experiment | None = None,
        chart: Chart | None = None,
        title: str = "Migration control panel",
    ) -> None:
        if experiment is None:
            if lab is None:
                raise ValueError("give a lab (to migrate) or an experiment to run")
            experiment = lab.run
        unknown = set(controls) - set(CONTROLS)
        if unknown:
            raise ValueError(f"unknown controls {sorted(unknown)}; choose from {CONTROLS}")
        self.lab = lab
        self.experiment = experiment
        self.chart_of: Chart = chart or (lambda runs: plots.throughput(runs, title="rows/s"))
        self.defaults = choice or Choice()
        self.history: list[Measurement] = []
        self.task: asyncio.Task[Measurement] | None = None  # the running click, kept alive

        every_option = _option_widgets(self.defaults)
        self.options = {name: every_option[name] for name in controls}
        self.button = w.Button(description="Run", button_style="primary", icon="play")
        self.button.on_click(self._on_click)
        self.progress = WidgetProgress()
        self.status = w.HTML()
        self.table = w.HTML()
        self.chart = w.Image(format="png", layout=w.Layout(max_width="720px"))
        self.widget = w.VBox(
            [
                w.HTML(f"<b>{html.escape(title)}</b>"),
                w.HBox([w.VBox(list(self.options.values())), self.button]),
                w.HBox([self.progress.bar, self.progress.label]),
                self.status,
                self.table,
                self.chart,
            ]
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def choice(self) -> Choice:
        """What the controls show now (fields without a control keep the panel's defaults)."""
        return self.defaults.but(**{name: widget.value for name, widget in self.options.items()})

    async def run(self, choice: Choice | None = None) -> Measurement:
        """Run the experiment once (with ``choice``, else the controls) and update the panel."""
        choice = choice or self.choice()
        self.button.disabled = True
        self.status.value = "<i>running…</i>"
        try:
            measurement = await self.experiment(choice, self.progress)
        except Exception as exc:
            self.progress.bar.bar_style = "danger"
            self.status.value = (
                f"<pre style='color:#b00020;white-space:pre-wrap'>"
                f"{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</pre>"
            )
            raise
        finally:
            self.button.disabled = False
        self.progress.bar.bar_style = "success"
        self.status.value = (
            f"{html.escape(measurement.label)}: {measurement.rows:,} rows in "
            f"{measurement.seconds:.2f} s = <b>{measurement.rows_per_s:,.0f} rows/s</b>"
        )
        self.history.append(measurement)
        self.refresh()
        return measurement

    def results(self) -> Table:
        """Every run so far as a table (the same one the panel shows)."""
        return results_table(self.history)

    def figure(self) -> Figure:
        """The panel's chart of every run so far, as a matplotlib figure."""
        return self.chart_of(self.history)

    def refresh(self) -> None:
        """Redraw the results table and chart from :attr:`history`."""
        self.table.value = self.results()._repr_html_()
        if self.history:
            self.chart.value = plots.figure_png(self.figure())

    def _on_click(self, _button: Any) -> None:
        # Button callbacks are synchronous: schedule the run on the kernel's loop and
        # keep the task, or it could be garbage-collected mid-run.
        self.task = asyncio.ensure_future(self.run())
        self.task.add_done_callback(_retrieve_exception)


def _retrieve_exception(task: asyncio.Task[Measurement]) -> None:
    """The panel already shows a clicked run's error; mark it seen so asyncio does not log it."""
    if not task.cancelled():
        task.exception()
