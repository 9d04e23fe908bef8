"""Every curated notebook in a real browser: JupyterLab on 127.0.0.1 over the sample
store opens each one in headless Chromium, runs it top to bottom, and the page shows no
error, every widget the notebook displays is drawn, and every chart is drawn. A
screenshot of each goes to var/screenshots/notebooks/ (git-ignored).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from workbench import sample

from .conftest import CHROMIUM_ARGS, jupyterlab, open_and_run

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SHOTS = ROOT / "var" / "screenshots" / "notebooks"
#: The widgets tour has its own, closer test (tests/test_browser.py)
CURATED = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb") if p.name != "05_widgets_tour.ipynb")
PLOTLY = "application/vnd.plotly.v1+json"
WIDGET = "application/vnd.jupyter.widget-view+json"


def _shown(name: str) -> tuple[int, int]:
    """How many charts and widgets the notebook's stored outputs show."""
    nb = json.loads((NOTEBOOKS / name).read_text())
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    charts = sum(PLOTLY in o.get("data", {}) for o in outputs)
    widgets = sum(WIDGET in o.get("data", {}) for o in outputs)
    return charts, widgets


@pytest.fixture(scope="module")
def lab(tmp_path_factory, browser):
    pytest.importorskip("playwright")
    base_dir = tmp_path_factory.mktemp("curated")
    root = base_dir / "notebooks"
    root.mkdir()
    for name in CURATED:  # copies: JupyterLab's autosave must not touch the repository
        shutil.copy(NOTEBOOKS / name, root / name)
    with jupyterlab(root, sample.build(), base_dir) as served:
        yield served


@pytest.fixture(scope="module")
def chromium(lab, browser):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=browser, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.mark.parametrize("name", CURATED)
def test_notebook_runs_in_the_browser_and_draws_everything(name, lab, chromium):
    url, log = lab
    page = chromium.new_page(viewport={"width": 1400, "height": 2400})
    try:
        open_and_run(page, url, name)
        charts, widgets = _shown(name)
        page.wait_for_timeout(1500 if widgets else 500)  # widgets render after their cells
        body = page.locator(".jp-Notebook").inner_text()
        assert "Error displaying widget" not in body
        assert "Traceback" not in body, body[body.index("Traceback") - 300 :][:1500]
        stderr = page.locator(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
        )
        problems = [t for t in stderr.all_inner_texts() if "%|" not in t]  # progress bars
        assert not problems, problems[:3]
        drawn = page.locator(".jp-OutputArea .js-plotly-plot .main-svg").count()
        assert drawn >= charts, f"{name}: {drawn} charts drawn of {charts}"
        views = page.evaluate(  # widget views drawn in an output (not an empty box)
            "() => [...document.querySelectorAll('.jp-OutputArea-output > .jupyter-widgets')]"
            ".filter(e => e.getBoundingClientRect().height > 20).length"
        )
        assert views >= widgets, f"{name}: {views} widgets drawn of {widgets}"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{Path(name).stem}.png"), full_page=False)
    finally:
        # stop the kernel so live streams and monitors end with the test
        page.evaluate(
            "() => window.jupyterapp.commands.execute('kernelmenu:shutdown').catch(() => null)"
        )
        page.close()
