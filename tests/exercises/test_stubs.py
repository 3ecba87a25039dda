"""The student copies are generated from the solutions, and the committed ones match."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrationkit.workshop.exercises import EXERCISES
from migrationkit.workshop.exercises.stubs import MarkerError, drift, main, strip_solution
from tests.exercises.conftest import EXERCISES as FOLDER
from tests.exercises.conftest import SOLUTIONS

SOLUTION = """\
def choose(turn):
    # BEGIN SOLUTION
    # STUB: return 0
    return turn + 1
    # END SOLUTION


def other():
    # BEGIN SOLUTION
    return 2
    # END SOLUTION
"""


def test_the_committed_student_copies_are_what_the_solutions_generate() -> None:
    assert drift() == [], (
        "run `python -m migrationkit.workshop.exercises.stubs` and commit the result"
    )


def test_every_exercise_has_a_solution_a_stub_and_a_notebook() -> None:
    for name in EXERCISES:
        assert (SOLUTIONS / f"{name}.py").exists(), name
        assert (FOLDER / f"{name}.py").exists(), name
        assert len(list(FOLDER.glob(f"ex*_{name}.ipynb"))) == 1, name


def test_stub_lines_replace_the_solution_and_other_blocks_raise() -> None:
    stub = strip_solution(SOLUTION, name="demo.py")
    body = stub.split("\n", 3)[3]  # after the generated header
    assert body == (
        "def choose(turn):\n"
        "    return 0\n"
        "\n\n"
        "def other():\n"
        "    # TODO: write this part.\n"
        '    raise NotImplementedError("demo: write this part")\n'
    )
    assert "BEGIN SOLUTION" not in stub
    assert "turn + 1" not in stub


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("# BEGIN SOLUTION\nx = 1\n", "never closed"),
        ("x = 1\n# END SOLUTION\n", "without # BEGIN SOLUTION"),
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n", "inside another block"),
    ],
)
def test_unpaired_markers_are_refused_with_the_line(source: str, problem: str) -> None:
    with pytest.raises(MarkerError, match=problem):
        strip_solution(source, name="broken.py")


def test_check_mode_reports_a_drifted_copy_and_reset_restores_it(tmp_path: Path) -> None:
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "demo.py").write_text(SOLUTION)
    assert main(["--exercises", str(tmp_path)]) == 0
    generated = (tmp_path / "demo.py").read_text()
    (tmp_path / "demo.py").write_text(generated.replace("return 0", "return 1"))  # a learner's edit
    assert main(["--exercises", str(tmp_path), "--check"]) == 1
    assert main(["--exercises", str(tmp_path), "--reset", "demo"]) == 0
    assert (tmp_path / "demo.py").read_text() == generated
    assert main(["--exercises", str(tmp_path), "--check"]) == 0


def test_the_terminal_runner_checks_the_solutions_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from migrationkit.workshop.exercises.__main__ import main

    assert main(["round_robin", "--solutions"]) == 0
    assert "Exercise 1 · a round-robin dispatcher: all checks passed" in capsys.readouterr().out
    assert main(["round_robin", "--folder", str(FOLDER)]) == 1  # the untouched stub
    assert "choose() is not written yet" in capsys.readouterr().out
