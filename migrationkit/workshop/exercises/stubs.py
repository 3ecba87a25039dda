"""Make the learners' stub files from the solutions, so the two can never drift apart.

The solutions are the one source of truth (``notebooks/exercises/solutions/*.py``).
Inside a solution, the code a learner writes sits between two marker lines::

    # BEGIN SOLUTION
    # STUB: return 0
    worker = self._next
    ...
    # END SOLUTION

The student copy keeps everything outside the markers, turns each ``# STUB:`` line
into code (``return 0``), and drops the rest; a block without ``# STUB:`` lines
becomes ``raise NotImplementedError(...)``.

``python -m migrationkit.workshop.exercises.stubs`` writes the student copies;
``--check`` only says which committed copies differ from what it would write (CI);
``--reset NAME`` puts one learner's file back to its stub.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from pathlib import Path

BEGIN, END, STUB = "# BEGIN SOLUTION", "# END SOLUTION", "# STUB:"
#: The exercises folder of a checkout: solutions in ``solutions/``, stubs beside them.
EXERCISES = Path(__file__).resolve().parents[3] / "notebooks" / "exercises"

_HEADER = (
    "# Your copy of the exercise: fill in the parts marked TODO, then run the check\n"
    "# in the notebook. (Generated from solutions/{name} by\n"
    "# `python -m migrationkit.workshop.exercises.stubs`; `--reset {stem}` restores it.)\n"
)


class MarkerError(ValueError):
    """A solution file whose markers do not pair up."""


def strip_solution(source: str, *, name: str) -> str:
    """The student copy of one solution file's text."""
    out: list[str] = [_HEADER.format(name=name, stem=Path(name).stem)]
    block: list[str] | None = None
    indent = ""
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if block is not None:
                raise MarkerError(f"{name} line {number}: {BEGIN} inside another block")
            block, indent = [], line[: len(line) - len(line.lstrip())]
        elif marker == END:
            if block is None:
                raise MarkerError(f"{name} line {number}: {END} without {BEGIN}")
            out += block or [
                f"{indent}# TODO: write this part.\n",
                f'{indent}raise NotImplementedError("{Path(name).stem}: write this part")\n',
            ]
            block = None
        elif block is not None:
            if marker.startswith(STUB):
                block.append(indent + re.sub(r"^# STUB: ?", "", marker) + "\n")
        else:
            out.append(line)
    if block is not None:
        raise MarkerError(f"{name}: {BEGIN} is never closed")
    return "".join(out)


def expected_stubs(exercises: Path = EXERCISES) -> dict[Path, str]:
    """Every student file, as the solutions say it should read."""
    sources = {path: path.read_text() for path in sorted((exercises / "solutions").glob("*.py"))}
    return {
        exercises / path.name: strip_solution(source, name=path.name)
        for path, source in sources.items()
        if BEGIN in source
    }


def drift(exercises: Path = EXERCISES) -> list[str]:
    """Unified diffs of the committed student files that differ from the generated ones."""
    diffs = []
    for path, text in expected_stubs(exercises).items():
        current = path.read_text() if path.exists() else ""
        if current != text:
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        current.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        f"{path.name} (committed)",
                        f"{path.name} (from solutions/{path.name})",
                    )
                )
            )
    return diffs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m migrationkit.workshop.exercises.stubs")
    parser.add_argument("--exercises", type=Path, default=EXERCISES, help="exercises folder")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="fail if a stub differs")
    action.add_argument("--reset", metavar="NAME", help="restore one stub, e.g. round_robin")
    args = parser.parse_args(argv)
    stubs = expected_stubs(args.exercises)
    if args.check:
        diffs = drift(args.exercises)
        sys.stdout.write("".join(diffs))
        print(f"{len(diffs)} of {len(stubs)} student files differ from their solutions' stubs")
        return 1 if diffs else 0
    if args.reset:
        path = args.exercises / f"{args.reset.removesuffix('.py')}.py"
        if path not in stubs:
            parser.error(f"no exercise {args.reset!r}; choose one of {_names(stubs)}")
        stubs = {path: stubs[path]}
    for path, text in stubs.items():
        path.write_text(text)
        print(f"wrote {path}")
    return 0


def _names(stubs: dict[Path, str]) -> str:
    return ", ".join(path.stem for path in stubs)


if __name__ == "__main__":
    raise SystemExit(main())
