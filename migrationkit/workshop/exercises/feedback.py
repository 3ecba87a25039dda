"""What a check tells a learner: which steps passed, the one that failed, and a hint.

A check is a list of :class:`Step`\\ s run in order against the learner's code and
the real servers. The first step that fails stops the check (later steps build on
it) and its hint is the message. Learner code that raises is caught here and turned
into feedback too: a check never answers with a bare traceback.
"""

from __future__ import annotations

import html
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[2]  # migrationkit/


class Hint(Exception):
    """Raised by a step: ``what`` went wrong, and ``hint`` on how to put it right."""

    def __init__(self, what: str, hint: str) -> None:
        super().__init__(what)
        self.what = what
        self.hint = hint


@dataclass(frozen=True)
class Step:
    """One thing a check verifies; ``run`` returns what it saw, or raises :class:`Hint`."""

    title: str
    run: Callable[[], Awaitable[str]]


@dataclass
class Feedback:
    """The outcome of one check, readable as text (``str``) and in a notebook (HTML)."""

    exercise: str
    passed: list[tuple[str, str]] = field(default_factory=list)  # (step title, what it saw)
    failed: tuple[str, Hint] | None = None
    not_run: list[str] = field(default_factory=list)
    praise: str = ""

    @property
    def ok(self) -> bool:
        return self.failed is None

    @property
    def hint(self) -> str:
        return self.failed[1].hint if self.failed else ""

    def __str__(self) -> str:
        lines = [f"{self.exercise}: " + ("all checks passed" if self.ok else "not yet")]
        lines += [f"  PASS  {title}: {seen}" for title, seen in self.passed]
        if self.failed:
            title, problem = self.failed
            lines += [f"  FAIL  {title}: {problem.what}", f"  HINT  {problem.hint}"]
        lines += [f"  ----  {title} (runs once the step above passes)" for title in self.not_run]
        if self.ok and self.praise:
            lines.append(f"  {self.praise}")
        return "\n".join(lines)

    __repr__ = __str__  # a console shows the same text as print()

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#b35900"
        head = "All checks passed" if self.ok else "Not yet: one step to fix"
        rows = [f"<li>✓ <b>{_e(t)}</b>: {_e(seen)}</li>" for t, seen in self.passed]
        if self.failed:
            title, problem = self.failed
            rows.append(
                f"<li>✗ <b>{_e(title)}</b>: {_e(problem.what)}"
                f"<br><i>Hint:</i> {_e(problem.hint)}</li>"
            )
        rows += [
            f"<li>… {_e(t)} <i>(runs once the step above passes)</i></li>" for t in self.not_run
        ]
        praise = f"<p>{_e(self.praise)}</p>" if self.ok and self.praise else ""
        return (
            f'<div style="border-left:4px solid {colour};padding-left:8px">'
            f"<p><b>{_e(self.exercise)}</b> — {head}</p><ul>{''.join(rows)}</ul>{praise}</div>"
        )


async def run_steps(exercise: str, steps: Sequence[Step], *, praise: str) -> Feedback:
    """Run ``steps`` in order until one fails; learner code that raises fails its step."""
    feedback = Feedback(exercise, praise=praise)
    for index, step in enumerate(steps):
        try:
            seen = await step.run()
        except Hint as problem:
            feedback.failed = (step.title, problem)
            feedback.not_run = [later.title for later in steps[index + 1 :]]
            break
        feedback.passed.append((step.title, seen))
    return feedback


@contextmanager
def learner_code(what: str, *, stub_hint: str) -> Iterator[None]:
    """Turn anything the learner's code raises inside the block into a :class:`Hint`.

    ``what`` names the code being called (``"choose()"``); ``stub_hint`` is the
    advice for ``NotImplementedError``, which is what an untouched stub raises.
    """
    try:
        yield
    except Hint:
        raise
    except NotImplementedError:
        raise Hint(
            f"{what} is not written yet (it raises NotImplementedError)", stub_hint
        ) from None
    except Exception as exc:
        raise Hint(
            f"{what} raised {type(exc).__name__}: {exc}{_where(exc)}",
            "Read the line named above; run the cell again once it is fixed.",
        ) from None


def _where(exc: BaseException) -> str:
    """`` (at file.py line N)`` for the innermost frame of the learner's own files."""
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not _is_library(Path(frame.filename).resolve())
    ]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at {Path(frame.filename).name} line {frame.lineno}: {frame.line})"


def counted(number: int, noun: str, nouns: str = "") -> str:
    """``counted(1, "batch", "batches")`` is ``1 batch``; ``counted(3, "row")`` is ``3 rows``."""
    return f"{number:,} {noun if number == 1 else nouns or noun + 's'}"


def _is_library(path: Path) -> bool:
    """Whether a frame's file is library code rather than the learner's own.

    That is migrationkit, installed packages, Cython sources (``.pyx``, such as
    asyncpg's ``protocol.pyx``) and any file that is not on disk.
    """
    return (
        path.is_relative_to(_PACKAGE)
        or "site-packages" in path.parts
        or path.suffix == ".pyx"
        or not path.exists()
    )


def _e(text: str) -> str:
    return html.escape(text, quote=False)
