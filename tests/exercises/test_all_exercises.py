"""Both directions, for every exercise: the solution passes its check, the stub fails it.

And each exercise notebook runs end to end with the solution in place (the committed
notebooks, with the stubs, run under nbval with the rest of the notebooks).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
from nbclient import NotebookClient

from migrationkit import Endpoints
from migrationkit.workshop import exercises
from tests.exercises.conftest import EXERCISES, SOLUTIONS

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", list(exercises.EXERCISES))
async def test_the_solution_passes_its_check(name: str, servers: Endpoints) -> None:
    feedback = await exercises.check(name, directory=SOLUTIONS)
    assert feedback.ok, str(feedback)
    assert feedback.praise in str(feedback)
    password = urlsplit(servers.pg_dsn).password
    assert password
    assert password not in str(feedback) + feedback._repr_html_()


@pytest.mark.parametrize("name", list(exercises.EXERCISES))
async def test_the_untouched_stub_fails_with_the_intended_hint(name: str) -> None:
    feedback = await exercises.check(name, directory=EXERCISES)
    assert not feedback.ok
    assert feedback.hint == exercises.EXERCISES[name].STUB_HINT
    assert "is not written yet" in str(feedback)


@pytest.mark.parametrize("name", list(exercises.EXERCISES))
def test_the_notebook_runs_with_the_solution_in_place(
    name: str, tmp_path: Path, servers: Endpoints
) -> None:
    (notebook_path,) = EXERCISES.glob(f"ex*_{name}.ipynb")
    shutil.copy(SOLUTIONS / f"{name}.py", tmp_path / f"{name}.py")
    notebook = nbformat.read(notebook_path, as_version=4)
    NotebookClient(notebook, timeout=240, resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(
        str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "all checks passed" in text
    assert "Not yet" not in text
    assert str(urlsplit(servers.pg_dsn).password) not in text
    pictures = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert pictures, "every exercise notebook ends its run with a picture"
