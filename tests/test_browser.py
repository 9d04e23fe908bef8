"""The widgets in a real browser: JupyterLab on 127.0.0.1 over a small store runs the
widgets tour in headless Chromium (the system's, never a download); every widget draws,
nothing reports an error, a filter click changes the explorer's table and counts, a row
click opens the lead's timeline. Screenshots go to var/screenshots/ (git-ignored).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from workbench.sim import simulate

from .conftest import CHROMIUM_ARGS, jupyterlab, open_and_run

ROOT = Path(__file__).resolve().parent.parent
TOUR = ROOT / "notebooks" / "05_widgets_tour.ipynb"
SHOTS = ROOT / "var" / "screenshots"
#: The tour's code cells that show a widget, in order (by their first line).
WIDGET_CELLS = {
    "timeline": "rejected = session.sql(",
    "explorer": "explorer = EventExplorer(",
    "dashboard": "board = Dashboard(",
    "monitor": "monitor = AlertMonitor(",
    "feed": "live_store = workbench.open_store()",
    "live monitor": "live_monitor = AlertMonitor(",
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory, browser):
    pytest.importorskip("playwright")
    base_dir = tmp_path_factory.mktemp("browser")
    store = base_dir / "small.duckdb"
    simulate(
        leads=3000,
        days=2,
        seed=11,
        store=store,
        incidents=["nine_digit_phones:rate=0.9", "source_rejection_spike:rate=0.9"],
    )
    root = base_dir / "notebooks"
    root.mkdir()
    shutil.copy(TOUR, root / TOUR.name)
    with jupyterlab(root, store, base_dir) as served:
        yield served


@pytest.fixture(scope="module")
def page(lab, browser):
    from playwright.sync_api import sync_playwright

    url, log = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=browser, headless=True, args=CHROMIUM_ARGS)
        try:
            # tall, so a whole widget fits on screen for its screenshot
            page = chromium.new_page(viewport={"width": 1500, "height": 3200})
            # every cell but the last, which stops the live stream: the feed and the
            # monitor keep updating while the test looks at them
            open_and_run(page, url, TOUR.name, all_but_last=True)
            page.wait_for_timeout(3000)  # widgets render after their cells finish
            yield page
        finally:
            chromium.close()


def _cell(page, first_line: str):
    cells = page.locator(".jp-CodeCell")
    for i in range(cells.count()):
        if cells.nth(i).locator(".jp-InputArea-editor").inner_text().strip().startswith(first_line):
            return cells.nth(i)
    raise AssertionError(f"no cell starts with {first_line!r}")


def _shot(locator, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    locator.screenshot(path=str(path))
    return path


def test_every_widget_draws_without_an_error(page):
    body = page.locator("body").inner_text()
    assert "Error displaying widget" not in body
    errors = page.locator('[data-mime-type="application/vnd.jupyter.stderr"]')
    assert errors.count() == 0, errors.all_inner_texts()[:3]
    for name, first_line in WIDGET_CELLS.items():
        cell = _cell(page, first_line)
        out = cell.locator(".jp-OutputArea")
        assert out.locator(".widget-vbox").count() >= 1, f"{name}: no widget"
        plots = out.locator(".js-plotly-plot .main-svg")
        assert plots.count() >= 1, f"{name}: plotly drew nothing"
        _shot(cell, name.replace(" ", "_"))
    timeline = _cell(page, WIDGET_CELLS["timeline"]).locator(".jp-OutputArea")
    rows = timeline.locator(".wb-table tbody tr").count()
    assert rows >= 3
    # a bar per event, the completion a diamond
    assert timeline.locator(".js-plotly-plot .bars .point").count() == rows - 1


def test_the_live_feed_updates_in_the_browser(page):
    out = _cell(page, WIDGET_CELLS["feed"]).locator(".jp-OutputArea")
    status = out.locator(".widget-html", has_text="events ·").first

    def landed() -> int:
        return int(re.search(r"([\d,]+)\s+events", status.inner_text()).group(1).replace(",", ""))

    first = landed()
    page.wait_for_function(
        "([el, n]) => parseInt(el.innerText.replace(/,/g, '')) > n",
        arg=[status.element_handle(), first],
        timeout=30_000,
    )
    assert landed() > first
    assert out.locator(".wb-table tbody tr").count() == 20
    page.wait_for_timeout(1500)
    _shot(_cell(page, WIDGET_CELLS["feed"]), "feed_following")


def _explorer_state(out) -> tuple[str, list[str]]:
    summary = out.locator(".widget-html", has_text="events ·").first.inner_text()
    rows = out.locator(".wb-table").first.locator("tbody tr").all_inner_texts()
    return summary, rows


def test_a_filter_click_changes_the_table_and_counts(page):
    out = _cell(page, WIDGET_CELLS["explorer"]).locator(".jp-OutputArea")
    before_summary, before_rows = _explorer_state(out)
    entity = out.locator("select[multiple]").nth(3)  # Event type, Outcome, Source, Entity
    options = entity.locator("option").all_inner_texts()
    assert options, "the entity filter lists no value"
    pick = options[-1]  # the rarest buyer: fewer events than all of them
    entity.select_option(label=pick)
    expected = int(re.search(r"\(([\d,]+)\)", pick).group(1).replace(",", ""))
    page.wait_for_function(
        "([el, before]) => el.innerText !== before",
        arg=[
            out.locator(".widget-html", has_text="events ·").first.element_handle(),
            before_summary,
        ],
        timeout=30_000,
    )
    name = re.sub(r"\s*\([\d,]+\)$", "", pick.replace("\xa0", " "))  # options use nbsp
    # the table is drawn after the summary: wait until every row is the picked entity's
    try:
        page.wait_for_function(
            "([el, name]) => { const rows = [...el.querySelectorAll('tbody tr')];"
            " return rows.length > 0 &&"
            " rows.every(r => r.innerText.replace(/\\u00a0/g, ' ').includes(name)); }",
            arg=[out.locator(".wb-table").first.element_handle(), name],
            timeout=30_000,
        )
    except Exception:
        summary, rows = _explorer_state(out)
        raise AssertionError(f"picked {pick!r}; summary {summary!r}; rows {rows[:3]!r}") from None
    after_summary, after_rows = _explorer_state(out)
    assert int(re.search(r"([\d,]+)\s+events", after_summary).group(1).replace(",", "")) == expected
    after_rows = [r.replace("\xa0", " ") for r in after_rows]
    assert after_rows and all(name in r for r in after_rows)
    if not all(name in r.replace("\xa0", " ") for r in before_rows):  # may be its already
        assert after_rows != before_rows
    _shot(out, "explorer_filtered")


def test_a_row_click_opens_the_leads_timeline(page):
    out = _cell(page, WIDGET_CELLS["explorer"]).locator(".jp-OutputArea")
    plots_before = out.locator(".js-plotly-plot").count()
    row = out.locator(".wb-table").first.locator("tbody tr").first
    lead = next(t for t in row.locator("td").all_inner_texts() if t.startswith("lead_"))
    row.click()
    page.wait_for_function(
        "([el, n]) => el.querySelectorAll('.js-plotly-plot').length > n",
        arg=[out.element_handle(), plots_before],
        timeout=30_000,
    )
    page.wait_for_timeout(1000)
    assert out.get_by_text(f"Timeline of {lead}").count() >= 1
    _shot(out, "explorer_opened_lead")
