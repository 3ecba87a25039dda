"""A learner's first notebook in a real browser: JupyterLab, headless Chromium, the panel.

Starts JupyterLab from this environment on loopback, opens ``notebooks/00_setup.ipynb``
in Debian's Chromium driven by Playwright, runs every cell from the Run menu, moves the
control panel's workers slider, clicks Run, and checks what the page shows: the progress
bar full and a new row in the results table. The screenshot it leaves in
``artifacts/jupyterlab-panel.png`` is what a learner sees at that point. Before anything
runs, the same notebook as stored is what a fresh clone shows (untrusted): the panel's
card and its runs' table and chart, in ``artifacts/jupyterlab-untrusted-panel.png``.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrationkit.workshop.lessons import ROWS_ENV
from migrationkit.workshop.lessons.overlap import lesson_rows
from tests.e2e.lab_server import JupyterLab, start_jupyterlab

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "notebooks/00_setup.ipynb"
SCREENSHOT = ROOT / "artifacts" / "jupyterlab-panel.png"
UNTRUSTED_SCREENSHOT = ROOT / "artifacts" / "jupyterlab-untrusted-panel.png"
#: The notebook's panel migrates the lessons' users three times before anyone clicks.
RUNS_IN_THE_NOTEBOOK = 3
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Milliseconds: any one page action or check (Playwright's own default for a check is
#: 5 s, too short on a busy 2-core machine), running the whole notebook (servers start,
#: the lessons' users seeded and migrated three times), and one clicked migration.
PAGE_TIMEOUT_MS = 30_000
RUN_ALL_TIMEOUT_MS = 90_000
CLICKED_RUN_TIMEOUT_MS = 30_000

#: Run in the notebook's own kernel: which Python it is, and that migrationkit imports.
WHICH_KERNEL = """
import json, sys
import migrationkit
print(json.dumps({"prefix": sys.prefix, "kit": migrationkit.__file__}))
"""

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), "
        "as .ci/run does",
        allow_module_level=True,
    )

from playwright.sync_api import BrowserContext, Locator, Page, expect, sync_playwright  # noqa: E402

expect.set_options(timeout=PAGE_TIMEOUT_MS)


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[JupyterLab]:
    """JupyterLab serving the repository, stopped (kernels included) however the test ends."""
    lab = start_jupyterlab(root_dir=ROOT, home=tmp_path / "jupyter")
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    """Headless Debian Chromium with a fresh profile, closed however the test ends."""
    # Crash reports and caches go under XDG_CONFIG_HOME/XDG_CACHE_HOME, not the profile.
    env: dict[str, str | float | bool] = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"),
    }
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            env=env,
            viewport={"width": 1280, "height": 1100},
            timeout=PAGE_TIMEOUT_MS,
        )
        try:
            yield context
        finally:
            context.close()


def open_notebook(page: Page, jupyterlab: JupyterLab) -> None:
    page.goto(jupyterlab.url(f"lab/tree/{NOTEBOOK}?reset"), wait_until="domcontentloaded")
    expect(page.locator(".jp-Notebook .jp-Cell").first).to_be_visible()


def menu_command(page: Page, menu: str, command: str) -> None:
    """Pick ``command`` (its id, e.g. ``runmenu:run-all``) from the menu bar's ``menu``."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(f"^{menu}$")).click()
    page.locator(f".lm-Menu-item[data-command='{command}']").click()


def outputs(page: Page, text: str) -> Locator:
    """Cell outputs showing ``text`` (cell sources may contain it too)."""
    return page.locator(".jp-OutputArea-output", has_text=text)


def control_panel(page: Page) -> Locator:
    """The panel widget the notebook titles "First migration"."""
    return page.locator(".widget-vbox").filter(has=page.locator("b", has_text="First migration"))


def result_rows(panel: Locator) -> Locator:
    return panel.locator(".widget-html table tbody tr")


def folder_state(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones included) and a hash of its contents."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_the_setup_notebook_runs_in_jupyterlab_and_its_panel_migrates_on_click(
    jupyterlab: JupyterLab, browser: BrowserContext
) -> None:
    page = browser.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    notebooks_before = folder_state(ROOT / "notebooks")

    open_notebook(page, jupyterlab)
    kernel = jupyterlab.ask_kernel(jupyterlab.wait_for_kernel(timeout=30), WHICH_KERNEL, timeout=30)
    assert kernel["prefix"] == sys.prefix, "the notebook's kernel runs another Python"
    assert Path(kernel["kit"]).is_relative_to(ROOT), "the kernel imports another migrationkit"

    # The notebook stores its outputs and widget state: clear them (in the page only,
    # autosave is off) so that everything checked below comes from this run.
    panel = control_panel(page)
    menu_command(page, "Edit", "editmenu:clear-all")
    expect(outputs(page, "every document arrived")).to_have_count(0)
    expect(panel).to_have_count(0)

    menu_command(page, "Run", "runmenu:run-all")
    # The cell after the panel prints once the notebook's own runs are done.
    expect(outputs(page, "every document arrived: True")).to_be_visible(timeout=RUN_ALL_TIMEOUT_MS)
    # The test run's size reached the kernel (the stored output says 20,000).
    rows = lesson_rows()
    expect(outputs(page, f"{ROWS_ENV} → {rows:,} records")).to_be_visible()
    expect(panel).to_have_count(1)
    expect(result_rows(panel)).to_have_count(RUNS_IN_THE_NOTEBOOK)

    slider = panel.locator(".widget-hslider").filter(has_text="workers")
    slider.scroll_into_view_if_needed()
    slider.locator(".noUi-handle").focus()
    page.keyboard.press("ArrowRight")  # 2 workers -> 3
    expect(slider.locator(".widget-readout")).to_have_text("3")

    panel.locator("button.widget-button", has_text="Run").click()
    clicked = result_rows(panel).nth(RUNS_IN_THE_NOTEBOOK)
    expect(clicked).to_be_visible(timeout=CLICKED_RUN_TIMEOUT_MS)
    expect(clicked.locator("td").nth(0)).to_have_text("asyncio/copy x3")
    expect(clicked.locator("td").nth(1)).to_have_text(f"{rows:,}")
    expect(panel.locator(".widget-html", has_text="rows in")).to_contain_text(
        f"asyncio/copy x3: {rows:,} rows in"
    )
    # The bar is drawn as width = value / max: full means value == max.
    bar = panel.locator(".widget-hprogress .progress-bar")
    expect(bar).to_have_attribute("style", re.compile(r"width: 100%"))
    expect(bar).to_have_class(re.compile(r"progress-bar-success"))
    progress_row = panel.locator(".widget-hbox").filter(has=page.locator(".widget-hprogress"))
    expect(progress_row).to_contain_text(f"asyncio/copy: {rows:,} / {rows:,} rows")

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    panel.evaluate("element => element.scrollIntoView({block: 'start'})")  # chart in view too
    page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 0
    # Autosave is off and checkpoints go to the temporary directory: nothing was written.
    assert folder_state(ROOT / "notebooks") == notebooks_before


def test_a_fresh_clone_shows_the_stored_panel_as_its_card_table_and_chart(
    jupyterlab: JupyterLab, browser: BrowserContext
) -> None:
    """Nothing runs: the stored outputs, in a notebook this Jupyter has never trusted."""
    page = browser.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    open_notebook(page, jupyterlab)
    card = page.locator(".jp-OutputArea-output[data-mime-type='text/html']").filter(
        has=page.locator("b", has_text="First migration")
    )
    expect(card).to_have_count(1)
    expect(card).to_contain_text("Last run: asyncio/copy x2:")
    expect(card).to_contain_text("a live widget, drawn once this cell runs in a trusted notebook")
    expect(page.locator(".widget-vbox")).to_have_count(0)  # no live widget was drawn
    expect(outputs(page, "VBox(children")).to_have_count(0)
    cell = page.locator(".jp-CodeCell").filter(has=card)
    expect(cell.locator(".jp-RenderedHTMLCommon table tbody tr")).to_have_count(
        RUNS_IN_THE_NOTEBOOK
    )
    chart = cell.locator(".jp-RenderedImage img")
    expect(chart).to_have_count(1)
    chart.scroll_into_view_if_needed()
    expect(chart).to_be_visible()
    UNTRUSTED_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    card.evaluate("element => element.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(UNTRUSTED_SCREENSHOT))


EXERCISES = ROOT / "notebooks" / "exercises"
EXERCISE_SCREENSHOT = ROOT / "artifacts" / "jupyterlab-exercise.png"


@pytest.fixture
def exercise_folder(tmp_path: Path) -> Path:
    """A learner's copy of exercise 1: the notebook and the untouched stub."""
    folder = tmp_path / "exercises"
    folder.mkdir()
    for name in ("ex1_round_robin.ipynb", "round_robin.py"):
        (folder / name).write_bytes((EXERCISES / name).read_bytes())
    return folder


def test_a_learner_fills_in_exercise_1_in_jupyterlab_and_the_check_passes(
    exercise_folder: Path, browser: BrowserContext, tmp_path: Path
) -> None:
    lab = start_jupyterlab(root_dir=exercise_folder, home=tmp_path / "jupyter")
    try:
        page = browser.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        # Write the solution into the stub in JupyterLab's editor, and save it.
        page.goto(lab.url("lab/tree/round_robin.py?reset"), wait_until="domcontentloaded")
        editor = page.locator(".jp-FileEditor .cm-content")
        expect(editor).to_contain_text("raise NotImplementedError")
        editor.click()
        page.keyboard.press("Control+A")
        page.keyboard.insert_text((EXERCISES / "solutions" / "round_robin.py").read_text())
        page.keyboard.press("Control+S")
        saved = exercise_folder / "round_robin.py"
        expect(page.locator(".jp-mod-dirty")).to_have_count(0)
        assert "self._turn = (worker + 1) % self.size" in saved.read_text()

        page.goto(lab.url("lab/tree/ex1_round_robin.ipynb?reset"), wait_until="domcontentloaded")
        expect(page.locator(".jp-Notebook .jp-Cell").first).to_be_visible()
        lab.wait_for_kernel(timeout=30)
        menu_command(page, "Run", "runmenu:run-all")
        expect(outputs(page, "All checks passed")).to_be_visible(timeout=RUN_ALL_TIMEOUT_MS)
        expect(outputs(page, "moves real data from MongoDB to PostgreSQL")).to_be_visible()
        expect(outputs(page, "worker 3:")).to_be_visible(timeout=RUN_ALL_TIMEOUT_MS)
        picture = page.locator(".jp-RenderedImage img")
        expect(picture).to_be_visible(timeout=RUN_ALL_TIMEOUT_MS)
        EXERCISE_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        outputs(page, "All checks passed").evaluate(
            "element => element.scrollIntoView({block: 'start'})"
        )
        page.screenshot(path=str(EXERCISE_SCREENSHOT))
    finally:
        lab.stop()
