"""``python -m migrationkit.workshop.exercises``: run the checks from a terminal.

Instructors use it to try a room's machines before a workshop (``--solutions``: every
check must pass in a minute or so); learners can use it instead of the notebook cell.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path

from migrationkit.workshop.exercises import EXERCISES, check
from migrationkit.workshop.exercises.stubs import EXERCISES as FOLDER


async def run(names: Sequence[str], directory: Path) -> bool:
    """Check each exercise in ``names`` against the files in ``directory``; all passed?"""
    passed = True
    for name in names:
        feedback = await check(name, directory=directory)
        print(feedback, end="\n\n", flush=True)
        passed = passed and feedback.ok
    return passed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m migrationkit.workshop.exercises")
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"default: all ({', '.join(EXERCISES)})"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--solutions", action="store_true", help="check the solutions")
    where.add_argument("--folder", type=Path, help="the learner's files (default: ./)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in EXERCISES]
    if unknown:
        parser.error(f"no exercise {', '.join(unknown)}; choose from {', '.join(EXERCISES)}")
    directory = FOLDER / "solutions" if args.solutions else args.folder or Path.cwd()
    return 0 if asyncio.run(run(args.names or list(EXERCISES), directory)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
