"""Notebook cells that need a browser (static chart export) are skipped, saying why, on
a machine without one; CI sets WORKBENCH_REQUIRE_BROWSER so they always run there."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config, items):

    cells = [i for i in items if "charts.export(" in str(getattr(i, "cell", {}).get("source", ""))]
    if not cells or os.environ.get("WORKBENCH_REQUIRE_BROWSER"):
        return
    from workbench.charts.export import browser_problem

    problem = browser_problem()
    if problem:
        for item in cells:
            item.add_marker(pytest.mark.skip(reason=problem))
