"""Plotly figures for the workbench, one consistent theme, and export.

Every builder takes the DataFrame an investigation or analytics function returned (so
the data a chart shows has already been read, and masked, through a Session) and
returns a ``plotly.graph_objects.Figure``. ``export(fig, path)`` writes PNG, SVG or PDF
through one long-lived kaleido server (Chromium started once, not per image) or a
self-contained offline HTML file; ``report(items, path)`` writes one HTML page of
several figures and tables.

The standard every builder keeps (each builder is drawn over the sample week and compared
with a reference image by tests/test_visual.py; `make visual-refs` renews them):
a title that says what the chart shows and, under it, the period asked for, the time
basis (event or submission date) and how many leads or events are behind it
(``theme.subtitle``); axis titles in words with units; percentages as percentages of
something named; colours from the Okabe-Ito set (``OUTCOME_COLORS``: success blue,
failure vermilion, error orange; no red against green); labels wrapped, not cut
(``theme.wrap``); a rate over too few leads left blank and said so, not drawn as an
alarming 0% or 100%.

>>> import pandas as pd
>>> fig = rejection_bars(pd.DataFrame({"rejection_reason": ["Invalid phone"], "rejections": [40],
...                                     "share": [1.0]}))
>>> fig.layout.template.layout.font.family.startswith("Inter")
True
"""

from .analyses import (
    alert_episodes_figure,
    alerts_figure,
    bubbleup_figure,
    buyer_figure,
    duration_box,
    enhancement_value_figure,
    errors_figure,
    funnel_figure,
    hour_heatmap,
    rejection_bars,
    retry_figure,
    sankey_figure,
    source_performance_figure,
    step_durations_figure,
    success_rates_figure,
    timeouts_figure,
)
from .export import export, report
from .lead import timeline_figure
from .theme import OUTCOME_COLORS, PALETTE, TEMPLATE, ChartError

__all__ = [
    "alert_episodes_figure",
    "OUTCOME_COLORS",
    "PALETTE",
    "TEMPLATE",
    "timeline_figure",
    "funnel_figure",
    "sankey_figure",
    "hour_heatmap",
    "duration_box",
    "rejection_bars",
    "success_rates_figure",
    "source_performance_figure",
    "enhancement_value_figure",
    "buyer_figure",
    "errors_figure",
    "timeouts_figure",
    "retry_figure",
    "bubbleup_figure",
    "step_durations_figure",
    "alerts_figure",
    "export",
    "report",
    "ChartError",
]
