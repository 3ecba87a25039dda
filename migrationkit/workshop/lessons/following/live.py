"""The live counters: an ipywidgets HTML redrawn from the follower's reports.

The recorder calls :meth:`FollowCounters.redraw` after every report (a batch of the
load, a batch of changes); it draws at most every :data:`REDRAW_EVERY_S` (one comm
message each). Like every workshop widget its output also stores plain text and an HTML
card (:class:`~migrationkit.workshop.widgets.StaticFallback`), refreshed at each draw,
so the stored notebook shows the last counts without a live kernel.
"""

from __future__ import annotations

import time

import ipywidgets as w  # type: ignore[import-untyped]

from migrationkit.workshop.lessons.following.notes import counter_rows, counters_html, load_line
from migrationkit.workshop.lessons.following.recorder import FollowRecorder
from migrationkit.workshop.lessons.following.writer import SteadyWriter
from migrationkit.workshop.widgets import StaticFallback

REDRAW_EVERY_S = 0.25


class FollowCounters(StaticFallback):
    """``display(FollowCounters(recorder, writer))``: the counters, updated in place."""

    def __init__(self, recorder: FollowRecorder, writer: SteadyWriter) -> None:
        self.recorder, self.writer = recorder, writer
        self.widget = w.HTML()
        self._drawn_at = 0.0
        self.draw()
        recorder.listeners.append(self.redraw)

    def describe(self) -> str:
        lines = [f"{name}: {value}" for name, value in counter_rows(self.recorder, self.writer)]
        return "\n".join([f"Follower counters ({load_line(self.recorder)})", *lines])

    def card_html(self) -> str:
        return counters_html(self.recorder, self.writer)

    def redraw(self) -> None:
        if time.monotonic() - self._drawn_at >= REDRAW_EVERY_S:
            self.draw()

    def draw(self) -> None:
        self._drawn_at = time.monotonic()
        self.widget.value = counters_html(self.recorder, self.writer)
        self.redisplay()
