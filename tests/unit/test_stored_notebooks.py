"""The stored notebooks read without a live kernel: on GitHub, and opened untrusted in JupyterLab.

A widget output is drawn only by a live kernel in a trusted notebook. Elsewhere the
renderer picks another format: JupyterLab, for an untrusted notebook (a fresh clone),
the best *safe* one of the same output (its widget renderer is not safe), HTML or a
PNG before plain text; nbconvert, and so GitHub, the widget whenever the notebook stores
its state, which GitHub leaves as an empty box, as it runs no JavaScript. So each widget
output must carry HTML and a plain text that is not a repr, and an ordinary picture
(HTML or PNG) must follow it, in its cell or the next code cell. These tests read the
.ipynb files as stored (JSON), without running anything.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PICTURES = ("text/html", "image/png")
#: A widget's repr: ``VBox(children=(HTML(value=...``, ``IntSlider(value=2, ...)``.
WIDGET_REPR = re.compile(r"^[A-Z][A-Za-z]*\((children|value|description|layout)=")
#: The old markers for nbval, which now go in each cell's tags.
NBVAL_COMMENT = re.compile(r"^\s*#\s*NBVAL_", re.MULTILINE)


def notebook_params() -> list[Any]:
    """Every stored notebook, lessons and exercises."""
    return [
        pytest.param(path, id=str(path.relative_to(NOTEBOOKS)))
        for path in sorted(NOTEBOOKS.rglob("*.ipynb"))
        if ".ipynb_checkpoints" not in path.parts
    ]


def load(path: Path) -> dict[str, Any]:
    notebook: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return notebook


def text(value: str | list[str]) -> str:
    return value if isinstance(value, str) else "".join(value)


def widget_outputs(notebook: dict[str, Any]) -> list[tuple[int, int, dict[str, Any]]]:
    """``(cell index, output index, output)`` of every output that holds a widget view."""
    return [
        (cell_index, output_index, output)
        for cell_index, cell in enumerate(notebook["cells"])
        for output_index, output in enumerate(cell.get("outputs", []))
        if WIDGET_VIEW in output.get("data", {})
    ]


def is_picture(output: dict[str, Any]) -> bool:
    """An ordinary output (no widget) that every renderer draws: HTML or a PNG."""
    data = output.get("data", {})
    return WIDGET_VIEW not in data and any(kind in data for kind in PICTURES)


def picture_after(notebook: dict[str, Any], cell_index: int, output_index: int) -> bool:
    """Whether a picture follows the output: later in its cell, or in the next code cell."""
    cells = notebook["cells"]
    if any(is_picture(o) for o in cells[cell_index]["outputs"][output_index + 1 :]):
        return True
    following = (cell for cell in cells[cell_index + 1 :] if cell["cell_type"] == "code")
    next_code = next(following, None)
    return next_code is not None and any(is_picture(o) for o in next_code.get("outputs", []))


STORED_AS_REPRS = notebook_params()


@pytest.mark.parametrize("path", STORED_AS_REPRS)
def test_every_widget_output_says_in_plain_text_what_it_is(path: Path) -> None:
    for cell, _, output in widget_outputs(load(path)):
        plain = text(output["data"].get("text/plain", ""))
        assert plain, f"cell {cell}: a widget output without text/plain"
        assert not WIDGET_REPR.match(plain), f"cell {cell}: its text is a repr: {plain[:60]}"


@pytest.mark.parametrize("path", STORED_AS_REPRS)
def test_every_widget_output_has_html_for_an_untrusted_notebook(path: Path) -> None:
    for cell, _, output in widget_outputs(load(path)):
        assert any(kind in output["data"] for kind in PICTURES), (
            f"cell {cell}: an untrusted notebook would show only its text"
        )


@pytest.mark.parametrize("path", notebook_params())
def test_every_widget_output_is_followed_by_an_ordinary_picture(path: Path) -> None:
    notebook = load(path)
    for cell, index, _ in widget_outputs(notebook):
        assert picture_after(notebook, cell, index), (
            f"cell {cell}: GitHub would show an empty box with no picture after it"
        )


@pytest.mark.parametrize("path", notebook_params())
def test_stored_widget_state_is_in_the_form_github_reads(path: Path) -> None:
    widgets = load(path)["metadata"].get("widgets")
    if widgets is not None:  # GitHub refuses a notebook whose widget state has no "state"
        assert "state" in widgets[WIDGET_STATE]


@pytest.mark.parametrize("path", notebook_params())
def test_nbval_markers_are_cell_tags_not_comments(path: Path) -> None:
    sources = {
        index: text(cell["source"])
        for index, cell in enumerate(load(path)["cells"])
        if cell["cell_type"] == "code"
    }
    marked = [index for index, source in sources.items() if NBVAL_COMMENT.search(source)]
    assert marked == [], f"cells {marked} carry # NBVAL_ comments: use the cell's tags"


def test_a_widget_repr_is_recognised_and_a_description_is_not() -> None:
    assert WIDGET_REPR.match("VBox(children=(HTML(value='<b>First migration</b>'),")
    assert WIDGET_REPR.match("IntSlider(value=2, description='workers')")
    assert not WIDGET_REPR.match("First migration: a live widget: it works once this cell runs")


def test_a_picture_in_the_next_code_cell_counts_and_one_two_cells_on_does_not() -> None:
    widget = {"output_type": "display_data", "data": {WIDGET_VIEW: {}, "text/plain": "x"}}
    table = {"output_type": "display_data", "data": {"text/html": "<table></table>"}}
    cells = [
        {"cell_type": "code", "outputs": [widget]},
        {"cell_type": "markdown"},
        {"cell_type": "code", "outputs": []},
        {"cell_type": "code", "outputs": [table]},
    ]
    assert not picture_after({"cells": cells}, 0, 0)
    cells[2]["outputs"] = [table]
    assert picture_after({"cells": cells}, 0, 0)
