"""``EventExplorer``: events the way Kibana's Discover shows them.

Filters (time range, event types with ``recipient.*`` style groups, outcome, source,
buyer or other entity, step, and ``field = value`` on typed columns or snapshot
fields), beside each the value counts under the current filters; an events-over-time
histogram stacked by outcome, where selecting bars sets the time range; one page of
matching events at a time (only that page is read); a row opens its lead in a
``LeadTimeline``; "compare with the rest" ranks what the selection's leads share
(``bubbleup``). Every query is a function of ``analysis.explore``.
"""

from __future__ import annotations

import html
import math

import ipywidgets as w
import pandas as pd
import plotly.graph_objects as go

from ..analysis import explore
from ..analysis.bubbleup import bubbleup
from ..catalog import event_types
from ..charts import OUTCOME_COLORS, TEMPLATE
from ..errors import WorkbenchError
from ._base import Table, require_session
from .timeline import LeadTimeline

__all__ = ["EventExplorer"]

_PAGE_COLUMNS = explore.PAGE_COLUMNS
_LABELS = {
    "types": "Event type",
    "outcomes": "Outcome",
    "sources": "Source",
    "entities": "Entity",
    "steps": "Step",
}


def _groups() -> list[str]:
    return sorted({t.name.split(".")[0] + ".*" for t in event_types()})


class EventExplorer(w.VBox):
    """Filters, facets, a histogram and a page of events over a Session.

    >>> ex = EventExplorer(session)                                   # doctest: +SKIP
    >>> ex.set_filters(types=["recipient.failed"]); ex.total           # doctest: +SKIP
    3201
    >>> ex.open_lead(ex.rows.lead_id.iloc[0]).diagnosis.scenario       # doctest: +SKIP
    'not_delivered'
    """

    def __init__(self, session, *, page_size: int = explore.PAGE_SIZE, **filters):
        self._session = require_session(session, "EventExplorer")
        self._filters = explore.filters(**filters)
        self._page_size = page_size
        self._page = 0
        self._total = 0
        self._rows = pd.DataFrame(columns=list(_PAGE_COLUMNS))
        self._facets: dict[str, pd.DataFrame] = {}
        self._busy = False
        # the leads behind each lead-field filter, found once (not per query or click)
        self._field_leads: dict = {}
        self._resolved: dict = {}
        self.since = w.DatetimePicker(description="From")
        self.until = w.DatetimePicker(description="To")
        self.clear_time = w.Button(description="All time", icon="times")
        self.pickers = {
            name: w.SelectMultiple(
                options=[],
                rows=7,
                description=_LABELS[name],
                style={"description_width": "70px"},
                layout=w.Layout(width="270px"),
            )
            for name in explore.FACETS
        }
        self.field = w.Text(
            placeholder="field = value (e.g. state = TX)",
            continuous_update=False,
            layout=w.Layout(width="300px"),
        )
        self.add_field = w.Button(description="Add", icon="plus")
        self.clear_fields = w.Button(description="Clear fields", icon="eraser")
        self.summary = w.HTML()
        self.histogram = go.FigureWidget()
        self.table = Table(empty="no event matches these filters")
        self.prev = w.Button(description="Newer", icon="chevron-left")
        self.next = w.Button(description="Older", icon="chevron-right")
        self.page_label = w.HTML()
        self.compare_button = w.Button(
            description="Compare with the rest",
            icon="balance-scale",
            layout=w.Layout(width="210px"),
        )
        self.comparison = Table(empty="compare the leads of the selection with all others")
        self.lead_box = w.VBox()
        self.message = w.HTML()
        for picker in self.pickers.values():
            picker.observe(self._on_pick, names="value")
        self.since.observe(self._on_time, names="value")
        self.until.observe(self._on_time, names="value")
        self.clear_time.on_click(lambda _: self.set_filters(since=None, until=None))
        self.add_field.on_click(lambda _: self._add_field(self.field.value))
        self.field.observe(lambda ch: ch["new"] and self._add_field(ch["new"]), names="value")
        self.clear_fields.on_click(lambda _: self.set_filters(where=()))
        self.prev.on_click(lambda _: self.page(self._page - 1))
        self.next.on_click(lambda _: self.page(self._page + 1))
        self.table.observe(self._on_row, names="selected")
        self.compare_button.on_click(lambda _: self.compare())
        super().__init__(
            [
                w.HBox([self.since, self.until, self.clear_time]),
                w.HBox(list(self.pickers.values()), layout=w.Layout(flex_flow="row wrap")),
                w.HBox([self.field, self.add_field, self.clear_fields]),
                self.summary,
                self.histogram,
                w.HBox([self.prev, self.page_label, self.next, self.compare_button]),
                self.message,
                self.table,
                self.comparison,
                self.lead_box,
            ]
        )
        self.refresh()

    # ------------------------------------------------------------------ reading

    @property
    def filters(self) -> explore.Filters:
        """The filters in force."""
        return self._filters

    @property
    def total(self) -> int:
        """How many events match the filters."""
        return self._total

    @property
    def rows(self) -> pd.DataFrame:
        """The events of the current page (newest first)."""
        return self._rows.copy()

    @property
    def facets(self) -> dict[str, pd.DataFrame]:
        """Filter name -> DataFrame of (value, count) under the current filters."""
        return {k: v.copy() for k, v in self._facets.items()}

    @property
    def page_number(self) -> int:
        return self._page

    # ------------------------------------------------------------------ actions

    def set_filters(self, **filters) -> None:
        """Change some filters (the others stay), e.g. ``types=["recipient.*"]``,
        ``outcomes="failure"``, ``where={"state": "TX"}``, ``since="2026-11-24"``.
        A lead field (``state``) matches the leads whose submitted data holds the value;
        a personal one (``email``) is searched as ``find_leads`` searches (whole values,
        limited, audited)."""
        new = self._filters.replace(**filters)
        explore.resolve_fields(self._session, new, self._field_leads)  # refused: unchanged
        self._filters = new
        self._page = 0
        self._read()

    def refresh(self) -> None:
        """Read everything again under the current filters (lead-field filters too:
        a growing store may hold new leads)."""
        self._field_leads.clear()
        self._read()

    def _read(self) -> None:
        s, f = self._session, self._filters
        r = self._resolved = explore.resolve_fields(s, f, self._field_leads)
        self._total = explore.total(s, f, resolved=r)
        self._facets = explore.facets(s, f, resolved=r)
        self._show_facets()
        self._show_histogram(explore.histogram(s, f, resolved=r))
        shown = s.mask_text(f.describe(mask=self._mask_value))
        self.summary.value = (
            f"<b>{self._total:,}</b> events · <span class='wb-muted'>{html.escape(shown)}</span>"
        )
        self.page(self._page)

    def page(self, n: int) -> pd.DataFrame:
        """Show page ``n`` (0: the newest events); returns its rows."""
        pages = max(1, math.ceil(self._total / self._page_size))
        n = min(max(int(n), 0), pages - 1)
        self._page = n
        self._rows = explore.page(
            self._session, self._filters, n, self._page_size, resolved=self._resolved
        )
        self.table.show_frame(self._rows, _PAGE_COLUMNS)
        self.page_label.value = f"&nbsp;page {n + 1:,} of {pages:,}&nbsp;"
        self.prev.disabled = n == 0
        self.next.disabled = n >= pages - 1
        return self.rows

    def open_lead(self, lead_id: str) -> LeadTimeline:
        """Open ``lead_id`` in a LeadTimeline below the table; returns it."""
        view = LeadTimeline(self._session, lead_id)
        self.lead_box.children = [view]
        return view

    def compare(self, *, top: int = 25) -> pd.DataFrame:
        """``bubbleup`` of the leads of the current selection against every other lead:
        what the selection's leads have in common, ranked."""
        leads = explore.lead_ids(self._session, self._filters, resolved=self._resolved)
        if not leads:
            self.message.value = "<span class='wb-muted'>no lead to compare</span>"
            return pd.DataFrame()
        try:
            ranked = bubbleup(self._session, leads, top=top)
        except ValueError as e:
            self.message.value = f"<span class='wb-muted'>{html.escape(str(e))}</span>"
            return pd.DataFrame()
        cols = [
            c
            for c in (
                "attribute",
                "value",
                "selection_leads",
                "selection_share",
                "baseline_share",
                "lift",
            )
            if c in ranked.columns
        ]
        self.comparison.show_frame(
            ranked, cols, caption=f"what {len(leads):,} leads of the selection share, ranked"
        )
        return ranked

    # ------------------------------------------------------------------ events

    def _show_facets(self) -> None:
        self._busy = True
        try:
            for name, picker in self.pickers.items():
                counts = self._facets.get(name, pd.DataFrame(columns=["value", "count"]))
                chosen = tuple(getattr(self._filters, name))
                options = [
                    (f"{v} ({n:,})", v) for v, n in zip(counts.value, counts["count"], strict=True)
                ]
                if name == "types":
                    options = [(g, g) for g in _groups()] + options
                known = {v for _, v in options}
                options += [(f"{v} (0)", v) for v in chosen if v not in known]
                picker.options = options
                picker.value = tuple(v for v in chosen if v in {x for _, x in options})
        finally:
            self._busy = False

    def _show_histogram(self, hist: pd.DataFrame) -> None:
        with self.histogram.batch_update():
            self.histogram.data = ()
            self.histogram.layout = go.Layout(
                template=TEMPLATE,
                barmode="stack",
                height=230,
                margin=dict(l=60, r=20, t=30, b=40),
                title=dict(
                    text="Events over time (select bars to narrow the time range)",
                    font=dict(size=13),
                ),
                dragmode="select",
                selectdirection="h",
                bargap=0.05,
                legend=dict(orientation="h", y=1.1, x=1, xanchor="right"),
            )
            for outcome, part in hist.groupby("outcome", sort=False):
                self.histogram.add_trace(
                    go.Bar(
                        x=part.bucket,
                        y=part.events,
                        name=str(outcome),
                        marker_color=OUTCOME_COLORS.get(outcome, "#607D8B"),
                        width=float(part.width_ms.iloc[0]) * 0.95,
                        hovertemplate="%{x}<br>%{y:,} events<extra>"
                        + html.escape(str(outcome))
                        + "</extra>",
                    )
                )
        self._width_ms = int(hist.width_ms.iloc[0]) if len(hist) else 0
        for trace in self.histogram.data:
            trace.on_selection(self._on_brush)

    def _mask_value(self, field: str, value: str) -> str:
        """A filter's value as this session may see it (masked by the field's type)."""
        masked = self._session.mask_frame(pd.DataFrame({field: [value]}))
        return str(masked[field].iloc[0])

    def _on_brush(self, trace, points, selector) -> None:
        if not points.point_inds:
            return
        xs = [pd.Timestamp(trace.x[i]) for i in points.point_inds]
        since = min(xs)
        until = max(xs) + pd.Timedelta(milliseconds=self._width_ms or 1)
        self.set_filters(since=since, until=until)

    def _on_pick(self, change) -> None:
        if self._busy:
            return
        for name, picker in self.pickers.items():
            if picker is change["owner"]:
                self.set_filters(**{name: tuple(change["new"])})
                return

    def _on_time(self, change) -> None:
        if self._busy:
            return
        since = self.since.value
        until = self.until.value
        self.set_filters(since=since, until=until)

    def _add_field(self, text: str) -> None:
        field, eq, value = (text or "").partition("=")
        if not eq or not field.strip():
            self.message.value = (
                "<span class='wb-muted'>write it as field = value, e.g. state = TX</span>"
            )
            return
        try:
            self.set_filters(where=(*self._filters.where, (field.strip(), value.strip())))
        except (ValueError, PermissionError, WorkbenchError) as e:
            self.message.value = f"<span class='wb-muted'>{html.escape(str(e))}</span>"
            return
        self.field.value = ""
        self.message.value = ""

    def _on_row(self, change) -> None:
        i = change["new"]
        if i is not None and 0 <= i < len(self._rows):
            self.open_lead(str(self._rows.lead_id.iloc[i]))
