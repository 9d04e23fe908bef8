"""``Dashboard``: the guide's business view on one screen.

Key figures (leads, acceptance rate, delivery rate, revenue, costs, profit), each with
its change against the period of the same length before; the source and buyer tables;
the funnel, overall or by source, whose drop-offs open the leads behind them in an
``EventExplorer``; why leads are rejected; buyers' acceptance by hour. A time range and
source and buyer pickers narrow it; **Export** (or ``export(folder)``) writes each chart
as PNG and the whole as one HTML page.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import ipywidgets as w
import pandas as pd
import plotly.graph_objects as go

from .. import charts
from ..analysis import analytics, business
from ._base import TREE_CSS, Table, require_session, show_figure
from .explorer import EventExplorer

__all__ = ["Dashboard"]

_SOURCE_COLUMNS = (
    "source",
    "submitted",
    "acceptance_rate",
    "delivery_rate",
    "revenue",
    "returned_revenue",
    "enhancement_cost",
    "profit",
    "net_profit",
)
_BUYER_COLUMNS = (
    "recipient",
    "attempts",
    "acceptance_rate",
    "avg_response_ms",
    "revenue",
    "revenue_per_lead",
    "conversions",
    "returns",
    "returned_revenue",
)


def _kpi_html(row) -> str:
    value, change, kind = row["value"], row["change"], row["kind"]
    if kind == "rate":
        shown = "n/a" if math.isnan(value) else f"{value:.1%}"
        delta = "" if math.isnan(change) else f"{change * 100:+.1f} pts"
    elif kind == "money":
        shown = f"${value:,.0f}"
        delta = "" if math.isnan(change) else f"{change:+.1%}"
    else:
        shown = f"{value:,.0f}"
        delta = "" if math.isnan(change) else f"{change:+.1%}"
    better = change < 0 if row["kpi"] in business.LOWER_IS_BETTER else change > 0
    cls = "" if not delta or row["kpi"] in business.STILL_COMING else ("up" if better else "down")
    tail = f"<span class='{cls}'>{delta}</span> vs before" if delta else "no earlier period"
    if row["kpi"] in business.STILL_COMING:
        tail += " · returns still coming in"
    return f"<div class='wb-kpi'>{html.escape(row['label'])}<b>{shown}</b>{tail}</div>"


class Dashboard(w.VBox):
    """The business at a glance over a Session (see the module docstring).

    >>> board = Dashboard(session)                                    # doctest: +SKIP
    >>> board.kpis["leads"]["value"]                                  # doctest: +SKIP
    20000.0
    >>> board.export("report/")                                       # doctest: +SKIP
    [PosixPath('report/funnel.png'), ..., PosixPath('report/dashboard.html')]
    """

    def __init__(self, session, since=None, until=None):
        self._session = require_session(session, "Dashboard")
        self._since, self._until = since, until
        self._sources: tuple[str, ...] = ()
        self._buyers: tuple[str, ...] = ()
        self._kpis = pd.DataFrame()
        self._figures: dict[str, go.Figure] = {}
        self._busy = False
        self.since_picker = w.DatetimePicker(description="From")
        self.until_picker = w.DatetimePicker(description="To")
        self.source_picker = w.SelectMultiple(description="Sources", rows=5)
        self.buyer_picker = w.SelectMultiple(description="Buyers", rows=5)
        self.breakdown = w.ToggleButtons(options=["overall", "by source"], value="overall")
        self.export_button = w.Button(description="Export", icon="download")
        self.export_folder = w.Text(value="exports/dashboard", description="to")
        self.tiles = w.HTML()
        self.period = w.HTML()
        self.funnel = go.FigureWidget()
        self.rejections = go.FigureWidget()
        self.heatmap = go.FigureWidget()
        self.source_table = Table(empty="no source in this period")
        self.buyer_table = Table(empty="no buyer in this period")
        self.message = w.HTML()
        self.drill = w.VBox()
        for picker in (self.since_picker, self.until_picker, self.source_picker, self.buyer_picker):
            picker.observe(self._on_pick, names="value")
        self.breakdown.observe(lambda _: self._draw_funnel(), names="value")
        self.export_button.on_click(lambda _: self._export_clicked())
        super().__init__(
            [
                w.HBox([self.since_picker, self.until_picker]),
                w.HBox([self.source_picker, self.buyer_picker]),
                self.period,
                self.tiles,
                w.HBox([self.breakdown, self.export_folder, self.export_button]),
                self.message,
                self.funnel,
                self.drill,
                w.HTML("<b>Sources</b>"),
                self.source_table,
                w.HTML("<b>Buyers</b>"),
                self.buyer_table,
                self.rejections,
                self.heatmap,
            ]
        )
        self.refresh()

    # ------------------------------------------------------------------ reading

    @property
    def kpis(self) -> dict:
        """Each key figure: ``{"value", "previous", "change", "label"}`` by name."""
        return {
            r.kpi: {"label": r.label, "value": r.value, "previous": r.previous, "change": r.change}
            for r in self._kpis.itertuples()
        }

    @property
    def figures(self) -> dict[str, go.Figure]:
        """The dashboard's charts by name, as plain Figures."""
        return dict(self._figures)

    # ------------------------------------------------------------------ actions

    def set_period(self, since=None, until=None) -> None:
        """Show the window [since, until) (None: the seven days up to the latest lead)."""
        self._since, self._until = since, until
        self.refresh()

    def set_sources(self, sources=(), buyers=()) -> None:
        """Narrow to leads from ``sources`` / delivered to ``buyers`` (empty: all)."""
        self._sources, self._buyers = tuple(sources), tuple(buyers)
        self.refresh()

    def refresh(self) -> None:
        """Read every figure again for the current period and pickers."""
        s = self._session
        self._kpis = business.kpis(
            s, since=self._since, until=self._until, sources=self._sources, buyers=self._buyers
        )
        since, until = self._kpis.attrs["since"], self._kpis.attrs["until"]
        self._window = {"since": since, "until": until}
        self.period.value = (
            f"<span class='wb-muted'>{since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC, "
            "leads counted by the day they were submitted</span>"
        )
        self.tiles.value = (
            TREE_CSS
            + "<div style='display:flex;gap:10px;flex-wrap:wrap'>"
            + "".join(_kpi_html(r) for _, r in self._kpis.iterrows())
            + "</div>"
        )
        perf = analytics.source_performance(s, **self._window)
        buyers = analytics.buyer_behaviour(s, **self._window)
        self._set_options(perf, buyers)
        if self._sources:
            perf = perf[perf.source.isin(self._sources)]
        if self._buyers:
            buyers = buyers[buyers.recipient.isin(self._buyers)]
        self.source_table.show_frame(perf, _SOURCE_COLUMNS)
        self.buyer_table.show_frame(buyers, _BUYER_COLUMNS)
        self._funnel_data = analytics.funnel_by_source(s, **self._window)
        self._draw_funnel()
        rej = analytics.rejection_analysis(s, by_source=True, **self._window)
        self._figures["rejections"] = charts.rejection_bars(rej)
        hours = analytics.buyer_acceptance_by_hour(s, **self._window)
        self._figures["acceptance_by_hour"] = charts.hour_heatmap(hours)
        show_figure(self.rejections, self._figures["rejections"])
        show_figure(self.heatmap, self._figures["acceptance_by_hour"])

    def drill_down(self, stage: str, source: str | None = None) -> EventExplorer:
        """Open the leads that dropped out before ``stage`` (accepted, delivered or
        converted), of ``source`` if given, in an EventExplorer below the funnel."""
        sources = (source,) if source else self._sources
        leads = business.dropoff_leads(self._session, stage, sources=sources, **self._window)
        if not leads:
            self.message.value = f"<span class='wb-muted'>no lead dropped out before {stage}</span>"
            self.drill.children = []
            return None
        explorer = EventExplorer(self._session, leads=leads)
        what = f"{len(leads):,} leads that did not reach '{stage}'" + (
            f" from {source}" if source else ""
        )
        self.drill.children = [w.HTML(f"<b>{html.escape(what)}</b>"), explorer]
        return explorer

    def export(self, folder) -> list[Path]:
        """Write each chart as PNG and the dashboard as one HTML page into ``folder``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, fig in self._figures.items():
            paths.append(charts.export(fig, out / f"{name}.png"))
        kpis = self._kpis[["label", "value", "previous", "change"]]
        items = [
            ("Key figures", kpis),
            *[(name.replace("_", " ").capitalize(), fig) for name, fig in self._figures.items()],
            ("Sources", analytics.source_performance(self._session, **self._window)),
            ("Buyers", analytics.buyer_behaviour(self._session, **self._window)),
        ]
        subtitle = f"{self._window['since']:%Y-%m-%d} to {self._window['until']:%Y-%m-%d} UTC"
        paths.append(
            charts.report(items, out / "dashboard.html", title="Dashboard", subtitle=subtitle)
        )
        return paths

    # ------------------------------------------------------------------ events

    def _draw_funnel(self) -> None:
        by_source = self.breakdown.value == "by source"
        data = self._funnel_data
        if self._sources:
            data = data[data.source.isin(self._sources)]
        fig = charts.funnel_figure(data, by_source=by_source)
        self._figures["funnel"] = fig
        show_figure(self.funnel, fig)
        for trace in self.funnel.data:
            trace.on_click(self._on_funnel_click)

    def _on_funnel_click(self, trace, points, state) -> None:
        if not points.point_inds:
            return
        i = points.point_inds[0]
        stages = ["submitted", "accepted", "delivered", "converted"]
        stage = stages[min(i, len(stages) - 1)]
        if stage == "submitted":
            stage = "accepted"
        source = trace.name if self.breakdown.value == "by source" else None
        self.drill_down(stage, source)

    def _set_options(self, perf: pd.DataFrame, buyers: pd.DataFrame) -> None:
        self._busy = True
        try:
            self.source_picker.options = sorted(perf.source.dropna().astype(str).unique())
            self.source_picker.value = tuple(
                v for v in self._sources if v in self.source_picker.options
            )
            self.buyer_picker.options = sorted(buyers.recipient.dropna().astype(str).unique())
            self.buyer_picker.value = tuple(
                v for v in self._buyers if v in self.buyer_picker.options
            )
        finally:
            self._busy = False

    def _on_pick(self, change) -> None:
        if self._busy:
            return
        owner = change["owner"]
        if owner in (self.source_picker, self.buyer_picker):
            self.set_sources(self.source_picker.value, self.buyer_picker.value)
        elif self.since_picker.value and self.until_picker.value:
            self.set_period(self.since_picker.value, self.until_picker.value)

    def _export_clicked(self) -> None:
        try:
            paths = self.export(self.export_folder.value or "exports/dashboard")
        except Exception as e:  # noqa: BLE001 - shown to the person who clicked
            self.message.value = (
                f"<span class='wb-muted'>export failed: {html.escape(str(e))}</span>"
            )
            return
        self.message.value = f"<span class='wb-muted'>wrote {len(paths)} files to {html.escape(str(paths[0].parent))}</span>"
