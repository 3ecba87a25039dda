"""Progress reporting behind one tiny interface.

Library code reports to a :class:`Progress`; by default nothing is shown
(:class:`NullProgress`). The CLI passes :class:`TqdmProgress`; tests pass
:class:`CountingProgress`; the notebooks pass an ipywidgets one.
"""

from __future__ import annotations

from typing import Any, Protocol


class Progress(Protocol):
    """A progress display: told the total, then each count of rows done, then closed."""

    def start(self, total: int | None, description: str) -> None: ...
    def advance(self, count: int) -> None: ...
    def close(self) -> None: ...


class NullProgress:
    """Shows nothing."""

    def start(self, total: int | None, description: str) -> None:
        pass

    def advance(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


class CountingProgress:
    """Remembers what it was told: for tests and for code that polls progress."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.description = ""
        self.count = 0
        self.closed = False

    def start(self, total: int | None, description: str) -> None:
        self.total, self.description, self.count, self.closed = total, description, 0, False

    def advance(self, count: int) -> None:
        self.count += count

    def close(self) -> None:
        self.closed = True


class TqdmProgress:
    """A terminal progress bar (tqdm), counting rows."""

    def __init__(self, **tqdm_options: Any) -> None:
        self._options = {"unit": " rows", "unit_scale": True, "dynamic_ncols": True, **tqdm_options}
        self._bar: Any = None

    def start(self, total: int | None, description: str) -> None:
        from tqdm.auto import tqdm

        self.close()
        self._bar = tqdm(total=total, desc=description, **self._options)

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
