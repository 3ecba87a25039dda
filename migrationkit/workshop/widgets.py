"""Notebook control panels: pick settings, press Run, watch progress, compare the runs.

``ControlPanel(lab)`` shows dropdowns and sliders, a Run button, a progress bar,
a table of every run so far and a chart, all updated in place. Pressing Run
schedules :meth:`ControlPanel.run` on the kernel's running event loop (a button
callback cannot ``await``); a notebook can also ``await panel.run(choice)``
directly, which is what makes stored outputs real without anyone clicking.
Errors are shown in the panel *and* re-raised to whoever awaited the run.

A stored widget is drawn only by a live kernel in a trusted notebook. Elsewhere a
renderer picks another format of the same output: JupyterLab, for an untrusted
notebook (a fresh clone), the best *safe* one (HTML before plain text; the widget's
own renderer is not safe); nbconvert, and so GitHub, the widget only when the
notebook stores its state, which GitHub then leaves as an empty box (it runs no
JavaScript). So every widget here displays with a readable ``text/plain`` and a small
``text/html`` card of what it shows (updated in place after each run made from
code), and a run made from code also displays its results as ordinary outputs
(an HTML table and a PNG chart) that every renderer shows.

Needs ``pip install -e '.[notebooks]'`` (ipywidgets, matplotlib).
"""

from __future__ import annotations

import asyncio
import html
import statistics
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as w  # type: ignore[import-untyped]
from IPython.display import Image, display, update_display

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
#: What a reader without a live widget is told, in plain text and in the HTML card.
LIVE_ONLY = (
    "a live widget, drawn once this cell runs in a trusted notebook (run the cell, or trust "
    "the notebook: Trust Notebook in the command palette, or `jupyter trust`)"
)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class StaticFallback(ABC):
    """A widget whose every output also holds what a reader without the live view needs.

    The output's bundle has the live view, a ``text/plain`` that says what it is
    (:meth:`describe`, never a repr) and a ``text/html`` card of what it shows
    (:meth:`card_html`). :meth:`redisplay` replaces every shown copy with the current
    text and card, so a notebook saved after a run from code stores that run's card.
    """

    widget: Any
    _display_id = ""  # set when first displayed

    @abstractmethod
    def describe(self) -> str:
        """What this is and what it shows, in a few plain lines."""

    @abstractmethod
    def card_html(self) -> str:
        """The same as :meth:`describe`, as a small HTML block."""

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = self.describe()
        bundle["text/html"] = self.card_html()
        return bundle

    def _ipython_display_(self) -> None:
        if not self._display_id:  # one id for every copy, so a redisplay reaches them all
            self._display_id = f"migrationkit-{uuid.uuid4().hex}"
        bundle = self._repr_mimebundle_()
        display(bundle, raw=True, display_id=self._display_id)  # type: ignore[no-untyped-call]

    def redisplay(self) -> None:
        """Refresh every shown copy of this widget (its text and card) to what it shows now."""
        if self._display_id:
            bundle = self._repr_mimebundle_()
            update_display(bundle, raw=True, display_id=self._display_id)  # type: ignore[no-untyped-call]


def _card(title: str, lines: Sequence[str], body: str = "") -> str:
    """A small bordered HTML block: a bold title, one line per fact, then ``body``."""
    items = "".join(f"<div>{line}</div>" for line in lines)
    return (
        "<div style='border:1px solid #ccc;padding:6px 10px;display:inline-block'>"
        f"<b>{html.escape(title)}</b>{items}{body}</div>"
    )


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


class LiveCounters(StaticFallback):
    """An :class:`~migrationkit.Observer` drawn live: rows per worker, queues, speed.

    The same counters the Prometheus exporter serves (``migrationkit._observe.metrics``), as a
    small chart of bars that fills while the migration runs:
    ``display(live)``, then ``await migrate(settings, observer=live)``. Once the run ends,
    a shown ``live`` also puts its final counts in the cell as a PNG chart.
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
        self.finished: MigrationReport | None = None
        self.title = w.HTML("<b>live counters</b>: waiting for a run")
        self.rows = w.VBox()
        self.widget = w.VBox([self.title, self.rows])

    def summary(self) -> str:
        """One line: what the counters show now (rows, speed, rejections, retries)."""
        if not self.written:
            return "waiting for a run"
        done = sum(self.written)
        if self.finished is not None:
            seconds = self.finished.elapsed_s
            return (
                f"{self._backend}: {done:,} rows written in {seconds:.2f} s, "
                f"{self.rejected:,} rejected, {self.retries} retries"
            )
        return f"{self._backend}: {done:,} rows written so far"

    def describe(self) -> str:
        per_worker = ", ".join(f"worker {i}: {rows:,}" for i, rows in enumerate(self.written))
        return "\n".join(
            line
            for line in (
                f"Live counters ({LIVE_ONLY}).",
                f"Last seen: {self.summary()}.",
                f"Rows per worker: {per_worker}." if per_worker else "",
            )
            if line
        )

    def card_html(self) -> str:
        lines = [html.escape(self.summary()), f"<i>{html.escape(LIVE_ONLY)}</i>"]
        return _card("Live counters", lines)

    def figure(self) -> Figure:
        """The final counts as a chart: one bar of rows written per worker."""
        fig, ax = plots.new_figure(width=7.0, height=0.45 * len(self.written) + 1.4)
        names = [f"worker {i}" for i in range(len(self.written))]
        bars = ax.barh(names, self.written, color="tab:blue")
        ax.bar_label(bars, labels=[f"{rows:,}" for rows in self.written], padding=3, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max([*self.written, 1]) * 1.2)
        ax.set_xlabel("rows written")
        ax.set_title(self.summary(), fontsize=10)
        fig.tight_layout()
        return fig

    def run_started(self, *, backend: str, workers: int, total: int | None) -> None:
        self.written, self.queued = [0] * workers, [0] * workers
        self.rejected = self.retries = 0
        self.finished = None
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
        self.finished = report
        self._draw()
        if self._display_id:  # shown: leave the final counts where every renderer draws them
            self.redisplay()
            chart = Image(data=plots.figure_png(self.figure()), format="png")  # type: ignore[no-untyped-call]
            display(chart)  # type: ignore[no-untyped-call]

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


class ControlPanel(StaticFallback):
    """Controls, a Run button, a progress bar, and a results table and chart kept up to date.

    ``experiment(choice, progress)`` is what Run does (default: ``lab.run``, one
    migration); ``chart(history)`` draws the runs so far (default: :func:`runs_chart`).
    The controls always show the settings of the run the panel reports, whether it
    was clicked or run from code with a choice of its own.
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
        self.title = title
        self.chart_of: Chart = chart or runs_chart
        self.defaults = choice or Choice()
        self.history: list[Measurement] = []
        self.error: str | None = None  # the last run's error, if it failed
        self._showed = False  # whether show() put the runs in a cell's outputs
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

    def choice(self) -> Choice:
        """What the controls show now (fields without a control keep the panel's defaults)."""
        return self.defaults.but(**{name: widget.value for name, widget in self.options.items()})

    def show_choice(self, choice: Choice) -> None:
        """Set every control to ``choice`` (widening a control that cannot show its value)."""
        self.defaults = choice
        for name, control in self.options.items():
            _set_control(control, getattr(choice, name))

    async def run(self, choice: Choice | None = None, *, show: bool = True) -> Measurement:
        """Run the experiment once (with ``choice``, else the controls) and update the panel.

        With ``show`` (a run from code), the cell also gets the results as ordinary
        outputs, an HTML table and a PNG chart, which every renderer shows; a click
        passes ``show=False``, as the live panel already shows them.
        """
        choice = choice or self.choice()
        self.show_choice(choice)  # the controls say what ran, not what they said before
        self.button.disabled = True
        self.status.value = "<i>running…</i>"
        self.error = None
        try:
            measurement = await self.experiment(choice, self.progress)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self.progress.bar.bar_style = "danger"
            self.status.value = (
                f"<pre style='color:#b00020;white-space:pre-wrap'>{html.escape(self.error)}</pre>"
            )
            raise
        finally:
            self.button.disabled = False
            if show:
                self.redisplay()
        self.progress.bar.bar_style = "success"
        self.history.append(measurement)
        self.status.value = html.escape(self.last_run()).replace(" = ", " = <b>") + "</b>"
        self.refresh()
        if show:
            self.show()
        return measurement

    def show(self) -> None:
        """Bring every shown copy of the panel up to date, and show the runs in this cell.

        The runs go out as ordinary outputs, the table as HTML and the chart as a PNG,
        which GitHub and an untrusted notebook draw too.
        """
        self._showed = True
        self.redisplay()
        outputs: list[Any] = [self.results()]
        if self.history:
            outputs.append(Image(data=bytes(self.chart.value), format="png"))  # type: ignore[no-untyped-call]
        display(*outputs)  # type: ignore[no-untyped-call]

    def last_run(self) -> str:
        """The last run in one line: ``asyncio/copy x2: 1,000 rows in 0.03 s = 35,839 rows/s``."""
        if self.error is not None:
            return f"the last run failed: {self.error}"
        if not self.history:
            return "no run yet"
        last = self.history[-1]
        return (
            f"{last.label}: {last.rows:,} rows in {last.seconds:.2f} s = "
            f"{last.rows_per_s:,.0f} rows/s"
        )

    def settings_line(self) -> str:
        """What the controls show, as ``workers 4, batch size 250``."""
        return ", ".join(
            f"{control.description} {_shown(control.value)}" for control in self.options.values()
        )

    def describe(self) -> str:
        runs = len(self.history)
        return (
            f"{self.title}: {LIVE_ONLY}.\n"
            f"Settings: {self.settings_line()}.\n"
            f"Last run: {self.last_run()} ({runs} run{'s' * (runs != 1)} so far)."
        )

    def card_html(self) -> str:
        below = "; its runs are shown below, as a table and a chart" if self._showed else ""
        lines = [
            f"Settings: {html.escape(self.settings_line())}",
            f"Last run: {html.escape(self.last_run())}",
            f"<i>{html.escape(LIVE_ONLY)}{below}.</i>",
        ]
        return _card(self.title, lines)

    def results(self) -> Table:
        """Every run so far as a table (the same one the panel shows)."""
        return results_table(self.history)

    def figure(self) -> Figure:
        """The panel's chart of every run so far, as a matplotlib figure."""
        return self.chart_of(self.history)

    def refresh(self) -> None:
        """Redraw the results table and chart from :attr:`history`."""
        if self.history:  # the chart first: a new table row then means both are drawn
            self.chart.value = plots.figure_png(self.figure())
        self.table.value = self.results()._repr_html_()

    def _on_click(self, _button: Any) -> None:
        # Button callbacks are synchronous: schedule the run on the kernel's loop and
        # keep the task, or it could be garbage-collected mid-run.
        self.task = asyncio.ensure_future(self.run(show=False))
        self.task.add_done_callback(_retrieve_exception)


def runs_chart(runs: Sequence[Measurement], *, unit: str = "rows/s") -> Figure:
    """One bar per run, in order, from zero; a dashed median where a setting ran more than once."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig, ax = plots.new_figure(width=max(5.5, 1.3 * len(runs) + 2.5))
    rates = [run.rows_per_s for run in runs]
    names = [f"run {index}\n{run.label}" for index, run in enumerate(runs, 1)]
    bars = ax.bar(range(len(runs)), rates, color="tab:blue")
    ax.bar_label(bars, labels=[f"{rate:,.0f}" for rate in rates], padding=2, fontsize=8)
    handles: list[Any] = [Patch(color="tab:blue", label="one run")]
    for label in dict.fromkeys(run.label for run in runs):
        places = [i for i, run in enumerate(runs) if run.label == label]
        if len(places) > 1:
            median = statistics.median(rates[i] for i in places)
            ax.hlines(median, places[0] - 0.4, places[-1] + 0.4, colors="black", linestyles="--")
            handles.append(
                Line2D([], [], color="black", linestyle="--", label=f"median of {len(places)} runs")
            )
    ax.set_xticks(range(len(runs)), names, fontsize=8)
    ax.set_ylim(0, max([*rates, 1.0]) * 1.2)
    ax.yaxis.set_major_formatter("{x:,.0f}")
    ax.set_ylabel(unit)
    ax.set_title(f"Every run so far ({unit}, higher is faster)", fontsize=10)
    ax.legend(handles=list({h.get_label(): h for h in handles}.values()), fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fig.tight_layout()
    return fig


def _shown(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _set_control(control: Any, value: Any) -> None:
    """Show ``value`` on a dropdown, toggle, slider or number box, widening it if needed."""
    if hasattr(control, "options"):
        options = list(control.options)
        if value not in options:
            options.append(value)
            if all(isinstance(option, int) for option in options):
                options.sort()
            control.options = options
    if hasattr(control, "max") and value > control.max:
        control.max = value
    if hasattr(control, "min") and value < control.min:
        control.min = value
    control.value = value


def _retrieve_exception(task: asyncio.Task[Measurement]) -> None:
    """The panel already shows a clicked run's error; mark it seen so asyncio does not log it."""
    if not task.cancelled():
        task.exception()
