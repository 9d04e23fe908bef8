"""``LeadTimeline``: one lead the way Jaeger shows a trace.

A search box (a lead id, or an email, phone or name the session may search for), the
``explain()`` verdict as a banner, the timeline chart, the event table, and the
selected event's metadata and lead snapshot as collapsible trees with what changed
against the snapshot before. Clicking a bar or a row selects its event; so do
``select(seq)`` and ``show(lead_id)`` from code.
"""

from __future__ import annotations

import html

import ipywidgets as w
import pandas as pd
import plotly.graph_objects as go

from .. import charts
from ..analysis import investigate
from ..analysis.lead import LeadNotFoundError
from ..analysis.snapshots import diff_snapshots_frame
from ._base import TREE_CSS, Table, banner, json_tree, require_session, show_figure

__all__ = ["LeadTimeline"]

_TABLE = (
    "seq",
    "timestamp",
    "type",
    "outcome",
    "step_name",
    "duration_ms",
    "rejection_reason",
    "error_type",
)


class LeadTimeline(w.VBox):
    """One lead's events: verdict, timeline, table and the selected event's detail.

    >>> view = LeadTimeline(session, "lead_5T8nK3mP9Q2wR7xN")          # doctest: +SKIP
    >>> view.select(view.timeline.seq.iloc[2]); view.selected["type"]  # doctest: +SKIP
    'enhancement.success'
    """

    def __init__(self, session, lead_id: str | None = None):
        self._session = require_session(session, "LeadTimeline")
        self._lead_id: str | None = None
        self._diagnosis = None
        self._timeline = pd.DataFrame()
        self._selected: dict | None = None
        self.search = w.Text(
            placeholder="lead id, email, phone or name",
            continuous_update=False,
            description="Lead",
            layout=w.Layout(width="420px"),
        )
        self.find_button = w.Button(description="Show", button_style="primary", icon="search")
        self.matches = w.Dropdown(
            options=[], description="Matches", layout=w.Layout(display="none")
        )
        self.message = w.HTML()
        self.verdict = w.HTML()
        self.chart = go.FigureWidget()
        self.table = Table(empty="no events: search for a lead")
        self.detail = w.HTML()
        self._typing = True  # the search box's value changes by typing, not by show()
        self.search.observe(self._on_search, names="value")
        self.find_button.on_click(lambda _: self.find(self.search.value))
        self.matches.observe(self._on_match, names="value")
        self.table.observe(self._on_row, names="selected")
        super().__init__(
            [
                w.HBox([self.search, self.find_button, self.matches]),
                self.message,
                self.verdict,
                self.chart,
                self.table,
                self.detail,
            ]
        )
        if lead_id is not None:
            self.show(lead_id)

    # ------------------------------------------------------------------ reading

    @property
    def lead_id(self) -> str | None:
        """The lead shown (None before the first)."""
        return self._lead_id

    @property
    def diagnosis(self):
        """``explain()``'s Diagnosis of the lead shown."""
        return self._diagnosis

    @property
    def selected(self) -> dict | None:
        """The selected event as a dict, masked as the session masks (None if none)."""
        return None if self._selected is None else dict(self._selected)

    @property
    def timeline(self) -> pd.DataFrame:
        """The lead's events, as the session reads them."""
        return self._timeline.copy()

    # ------------------------------------------------------------------ actions

    def find(self, text: str) -> list[str]:
        """Show the lead ``text`` names: a lead id, or leads holding the raw value
        ``text`` (an email, a phone number, a name; whole values only, audited).
        Returns the lead ids found."""
        text = (text or "").strip()
        if not text:
            self._say("Type a lead id, or an email, phone or name to search for.")
            return []
        if text.startswith("lead_"):
            self.show(text)
            return [text] if self._lead_id == text else []
        found = self._search(text)
        if found is None:  # the search said why it could not look
            self._set_search("")
            return []
        if not found:
            shown = html.escape(self._session.mask_text(text))
            self._set_search("")  # a raw value typed is not kept in the widget
            self._say(f"No lead holds {shown} as a whole value.")
            return []
        self.matches.options = found
        self.matches.layout.display = "flex" if len(found) > 1 else "none"
        self.show(found[0])
        if len(found) > 1:
            self._say(f"{len(found)} leads match; showing the first (choose another above).")
        return found

    def _search(self, text: str) -> list[str] | None:
        guesses = []
        if "@" in text:
            guesses.append({"email": text})
        digits = sum(c.isdigit() for c in text)
        if digits >= 10:
            guesses.append({"phone": text})
        if digits == 9:
            guesses.append({"ssn": text})
        if not guesses:
            parts = text.split()
            guesses.append({"full_name": text} if len(parts) > 1 else {"first_name": text})
            if len(parts) == 1:
                guesses.append({"last_name": text})
        found: list[str] = []
        for criteria in guesses:
            try:
                found += self._session.find_leads(**criteria)
            except (ValueError, PermissionError) as e:  # not whole, or the limit: say so
                self._say(html.escape(str(e)))
                return None
        return list(dict.fromkeys(found))

    def show(self, lead_id: str) -> None:
        """Show the lead ``lead_id`` (its verdict, timeline, events)."""
        self._set_search(lead_id)
        try:
            tl = self._session.timeline(lead_id)
            if tl.empty:
                raise LeadNotFoundError(f"no events for lead {lead_id!r}")
            diagnosis = investigate.explain(self._session, lead_id)
        except (LeadNotFoundError, ValueError) as e:
            self._say(html.escape(str(e)))
            return
        self._lead_id, self._timeline, self._diagnosis = lead_id, tl, diagnosis
        self._selected = None
        self.message.value = ""
        kind = "ok" if diagnosis.scenario == "ok" else "bad"
        self.verdict.value = banner(diagnosis._repr_html_(), kind)
        fig = charts.timeline_figure(tl)
        show_figure(self.chart, fig)
        for trace in self.chart.data:
            if getattr(trace, "customdata", None) is not None:
                trace.on_click(self._on_click)
        self.table.show_frame(tl, _TABLE, caption=f"{len(tl)} events of {lead_id}")
        self.detail.value = ""

    def select(self, seq: int) -> dict:
        """Select the event ``seq`` of the lead shown; returns it (masked as read)."""
        tl = self._timeline
        hit = tl.index[tl.seq == seq] if len(tl) else []
        if not len(hit):
            raise ValueError(
                f"seq {seq} is not an event of {self._lead_id or 'the lead shown'}; "
                f"its events: {', '.join(map(str, tl.seq.tolist())) if len(tl) else 'none'}"
            )
        i = int(hit[0])
        row = tl.loc[i]
        self._selected = {k: _plain(v) for k, v in row.items()}
        if self.table.selected != i:
            self.table.selected = i
        self.detail.value = self._detail_html(i)
        return self.selected

    # ------------------------------------------------------------------ events

    def _on_click(self, trace, points, state) -> None:
        if points.point_inds:
            self.select(int(trace.customdata[points.point_inds[0]]))

    def _set_search(self, text: str) -> None:
        self._typing = False
        try:
            self.search.value = text
        finally:
            self._typing = True

    def _on_search(self, change) -> None:
        if self._typing and change["new"]:
            self.find(change["new"])

    def _on_match(self, change) -> None:
        lead = change["new"]
        if lead and lead != self._lead_id:
            self.show(lead)

    def _on_row(self, change) -> None:
        i = change["new"]
        if i is not None and 0 <= i < len(self._timeline):
            seq = int(self._timeline.seq.iloc[i])
            if self._selected is None or self._selected.get("seq") != seq:
                self.select(seq)

    def _say(self, text: str) -> None:
        self.message.value = f"<span class='wb-muted'>{text}</span>"

    def _detail_html(self, i: int) -> str:
        row = self._timeline.iloc[i]
        head = (
            f"<h4 style='margin:6px 0'>{html.escape(str(row.type))} · "
            f"{html.escape(str(row.get('step_name') or ''))} · seq {int(row.seq)}</h4>"
        )
        changed = diff_snapshots_frame(self._timeline.iloc[: i + 1])
        changed = changed[changed.seq == row.seq]
        if len(changed):
            rows = "".join(
                f"<tr><td>{html.escape(r.field)}</td><td>{html.escape(r.change)}</td>"
                f"<td>{html.escape(str(r.before or ''))}</td>"
                f"<td>{html.escape(str(r.after or ''))}</td>"
                f"<td>{'⚠ unexpected' if r.unexpected else ''}</td></tr>"
                for r in changed.itertuples()
            )
            diff = (
                "<table><tr><th>field</th><th>change</th><th>before</th><th>after</th><th></th>"
                f"</tr>{rows}</table>"
            )
        else:
            diff = "<span class='wb-muted'>nothing changed in the lead at this event</span>"
        meta = row.metadata if isinstance(row.metadata, dict) else {}
        snap = row.lead_snapshot if isinstance(row.lead_snapshot, dict) else {}
        return (
            TREE_CSS
            + head
            + "<div style='display:flex;gap:24px;align-items:flex-start'>"
            + f"<div><b>metadata</b>{json_tree(meta)}</div>"
            + f"<div><b>lead snapshot</b>{json_tree(snap)}</div>"
            + f"<div><b>what changed</b><br>{diff}</div></div>"
        )


def _plain(v):
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(v, "item"):
        return v.item()
    return v
