"""The live counters: an ipywidgets HTML redrawn from the follower's reports.

The recorder calls :meth:`FollowCounters.redraw` after every report (a batch of the
load, a batch of changes); it draws at most every :data:`REDRAW_EVERY_S` (one comm
message each). ipywidgets is imported when a widget is made: the rest of the lesson's
helpers need no Jupyter.
"""

from __future__ import annotations

import time
from typing import Any

from migrationkit.workshop.lessons.following.notes import counters_html
from migrationkit.workshop.lessons.following.recorder import FollowRecorder
from migrationkit.workshop.lessons.following.writer import SteadyWriter

REDRAW_EVERY_S = 0.25


class FollowCounters:
    """``display(FollowCounters(recorder, writer))``: the counters, updated in place."""

    def __init__(self, recorder: FollowRecorder, writer: SteadyWriter) -> None:
        import ipywidgets as w  # type: ignore[import-untyped]

        self.recorder, self.writer = recorder, writer
        self.widget = w.HTML()
        self._drawn_at = 0.0
        self.draw()
        recorder.listeners.append(self.redraw)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def redraw(self) -> None:
        if time.monotonic() - self._drawn_at >= REDRAW_EVERY_S:
            self.draw()

    def draw(self) -> None:
        self._drawn_at = time.monotonic()
        self.widget.value = counters_html(self.recorder, self.writer)
