"""``AlertMonitor``: the guide's Real-time Monitoring over a Session.

Fired alerts as a table (active ones first): severity, rule, subject, when, the window,
the peak value against the threshold, the team and the recommended actions. Selecting
an alert shows its evidence (what the rule includes: top rejection reasons, the slow
step, example leads) and opens the events behind it in an ``EventExplorer``. Each
rule's threshold can be edited; ``refresh()`` evaluates again, ``watch(every_s=5)``
does so on a timer while a stream lands events, until ``stop()``. Every evaluation is
``analysis.alerts``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import threading

import ipywidgets as w
import pandas as pd
import plotly.graph_objects as go

from .. import charts
from ..analysis import alerts as _alerts
from ._base import TREE_CSS, Table, banner, require_session, show_figure
from .explorer import EventExplorer

__all__ = ["AlertMonitor"]

_COLUMNS = (
    "status",
    "severity",
    "rule",
    "subject",
    "started",
    "ended",
    "window",
    "peak",
    "threshold",
    "team",
    "actions",
)


def _span(td: dt.timedelta) -> str:
    minutes = int(td.total_seconds() // 60)
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


class AlertMonitor(w.VBox):
    """Fired alerts with their evidence, editable thresholds, and a timer.

    >>> monitor = AlertMonitor(session)                               # doctest: +SKIP
    >>> monitor.alerts[0].rule.name, monitor.alerts[0].severity       # doctest: +SKIP
    ('buyer_optimization', 'critical')
    >>> monitor.set_threshold("quality", 0.4)                         # doctest: +SKIP
    >>> monitor.open_evidence(0).total                                # doctest: +SKIP
    412
    """

    def __init__(self, session, rules=_alerts.DEFAULT_RULES, *, since=None, until=None):
        self._session = require_session(session, "AlertMonitor")
        rules = tuple(rules)
        if not rules:
            raise ValueError("AlertMonitor needs at least one rule, e.g. alerts.DEFAULT_RULES")
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise ValueError(f"rule names must differ: {names}")
        self._rules = rules
        self._since, self._until = since, until
        self._alerts: list[_alerts.Alert] = []
        self._evaluated_until: pd.Timestamp | None = None
        self._first: pd.Timestamp | None = None
        self._watch: threading.Thread | None = None
        self._halt = threading.Event()
        self._refresh_lock = threading.Lock()
        self._busy = False
        self.thresholds = {
            r.name: w.FloatText(
                value=r.threshold,
                description=r.name.replace("_", " "),
                tooltip=r.description,
                step=0.05 if r.is_rate else 100,
                style={"description_width": "140px"},
                layout=w.Layout(width="250px"),
            )
            for r in rules
        }
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.watch_button = w.ToggleButton(description="Watch every 5 s", icon="eye")
        self.status = w.HTML()
        self.chart = go.FigureWidget()
        self.table = Table(empty="no alert fired: every rule is within its threshold")
        self.evidence = w.HTML()
        self.explorer_box = w.VBox()
        for name, box in self.thresholds.items():
            box.observe(lambda ch, name=name: self._on_threshold(name, ch), names="value")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.watch_button.observe(self._on_watch, names="value")
        self.table.observe(self._on_row, names="selected")
        super().__init__(
            [
                w.HTML(
                    TREE_CSS
                    + "<b>Thresholds</b> <span class='wb-muted'>(edit to re-evaluate)</span>"
                ),
                w.HBox(list(self.thresholds.values()), layout=w.Layout(flex_flow="row wrap")),
                w.HBox([self.refresh_button, self.watch_button]),
                self.status,
                self.chart,
                self.table,
                self.evidence,
                self.explorer_box,
            ]
        )
        self.refresh()

    # ------------------------------------------------------------------ reading

    @property
    def alerts(self) -> list[_alerts.Alert]:
        """The alerts of the last evaluation, as the table lists them (active first,
        then newest first)."""
        return list(self._alerts)

    @property
    def active(self) -> list[_alerts.Alert]:
        """The alerts still firing in the newest window."""
        return [a for a in self._alerts if self._is_active(a)]

    @property
    def rules(self) -> tuple[_alerts.Rule, ...]:
        """The rules in force, thresholds as edited."""
        return self._rules

    @property
    def watching(self) -> bool:
        return self._watch is not None and self._watch.is_alive()

    def frame(self) -> pd.DataFrame:
        """The alert table as a DataFrame (the values, not the text the table shows)."""
        rows = [
            {
                "status": "active" if self._is_active(a) else "ended",
                "severity": a.severity,
                "rule": a.rule.name,
                "subject": a.subject,
                "started": a.started,
                "ended": a.ended,
                "window": a.rule.window,
                "peak": a.peak,
                "threshold": a.rule.threshold,
                "team": a.rule.team,
                "actions": "; ".join(a.actions),
            }
            for a in self._alerts
        ]
        return pd.DataFrame(rows, columns=list(_COLUMNS))

    # ------------------------------------------------------------------ actions

    def refresh(self) -> list[_alerts.Alert]:
        """Evaluate every rule again over the events so far; returns the alerts."""
        with self._refresh_lock:
            since, until = self._range()
            if since is None:
                found: list[_alerts.Alert] = []
            else:
                found = _alerts.alerts(
                    self._session, self._rules, since=since, until=until, evidence=False
                )
            self._evaluated_until = pd.Timestamp(until).ceil("15min") if until else None
            if self._first is not None:
                # a window reaching back before the first event began with that event
                found = [
                    a if a.started >= self._first else dataclasses.replace(a, started=self._first)
                    for a in found
                ]
            found.sort(key=lambda a: (not self._is_active(a), -a.started.value, a.rule.name))
            self._alerts = found
            self._show()
            return self.alerts

    def set_threshold(self, rule: str, value: float) -> None:
        """Change ``rule``'s threshold (e.g. ``set_threshold("quality", 0.4)``) and
        evaluate again."""
        names = [r.name for r in self._rules]
        if rule not in names:
            raise ValueError(f"no rule {rule!r}; the rules: {', '.join(names)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"threshold={value!r}: give a number >= 0")
        self._rules = tuple(
            r.with_(threshold=float(value)) if r.name == rule else r for r in self._rules
        )
        box = self.thresholds[rule]
        if box.value != value:
            self._busy = True
            try:
                box.value = float(value)
            finally:
                self._busy = False
        self.refresh()

    def open_evidence(self, i: int) -> EventExplorer:
        """Show alert ``i``'s evidence and open the events behind it in an
        EventExplorer (returned)."""
        if not 0 <= i < len(self._alerts):
            raise IndexError(f"no alert {i}: there are {len(self._alerts)}")
        alert = self._alerts[i]
        evidence = alert.evidence if len(alert.evidence) else _alerts.evidence(self._session, alert)
        actions = "".join(f"<li>{html.escape(a)}</li>" for a in alert.actions)
        table = (
            evidence.to_html(index=False, border=0, classes="wb-evidence", na_rep="")
            if evidence is not None and len(evidence)
            else "<span class='wb-muted'>no evidence rows</span>"
        )
        self.evidence.value = banner(
            f"<b>{html.escape(alert.severity)}</b> · {html.escape(alert.message)}"
            f"<ul>{actions}</ul><b>Evidence</b> ({html.escape(alert.rule.include)}){table}",
            "bad" if alert.severity == "critical" else "",
        )
        explorer = EventExplorer(self._session, **_alerts.evidence_filters(alert))
        self.explorer_box.children = [explorer]
        return explorer

    def watch(self, every_s: float = 5) -> None:
        """Evaluate again every ``every_s`` seconds in the background, until ``stop()``."""
        if isinstance(every_s, bool) or not isinstance(every_s, int | float) or every_s <= 0:
            raise ValueError(f"every_s={every_s!r}: give a number of seconds above 0")
        self.stop()
        self._halt.clear()
        self._watch = threading.Thread(
            target=self._loop, args=(float(every_s),), name="alert monitor", daemon=True
        )
        self._watch.start()
        self._set_toggle(True, every_s)

    def stop(self) -> None:
        """Stop watching (a no-op when not watching)."""
        self._halt.set()
        if self._watch is not None and self._watch is not threading.current_thread():
            self._watch.join(timeout=30)
        self._watch = None
        self._set_toggle(False, None)

    # ------------------------------------------------------------------ internals

    def _range(self):
        since, until = self._since, self._until
        if since is None or until is None:
            b = self._session.sql("SELECT min(timestamp) AS lo, max(timestamp) AS hi FROM events")
            if pd.isna(b.lo.iloc[0]):
                return None, None
            longest = max(r.window for r in self._rules)
            # windows reaching back before the first event count what there is, so a
            # young stream is judged from its first minutes (min_count still holds)
            self._first = pd.Timestamp(b.lo.iloc[0]).floor("15min")
            since = since or (b.lo.iloc[0].to_pydatetime() - longest)
            until = until or (b.hi.iloc[0].to_pydatetime() + dt.timedelta(milliseconds=1))
        return since, until

    def _is_active(self, a: _alerts.Alert) -> bool:
        return self._evaluated_until is not None and a.ended >= self._evaluated_until

    def _show(self) -> None:
        rows = [
            [
                "active" if self._is_active(a) else "ended",
                a.severity,
                a.rule.name,
                a.subject,
                f"{a.started:%Y-%m-%d %H:%M}",
                f"{a.ended:%Y-%m-%d %H:%M}",
                _span(a.rule.window),
                _alerts.shown(a.rule, a.peak),
                f"{a.rule.op} {_alerts.shown(a.rule, a.rule.threshold)}",
                a.rule.team,
                "; ".join(a.actions),
            ]
            for a in self._alerts
        ]
        self.table.selected = -1
        self.table.columns = list(_COLUMNS)
        self.table.rows = rows
        show_figure(self.chart, charts.alert_episodes_figure(self.frame()))
        n_active = len(self.active)
        when = f"{self._evaluated_until:%Y-%m-%d %H:%M} UTC" if self._evaluated_until else "-"
        kind = "bad" if n_active else "ok"
        watching = " · watching" if self.watching else ""
        self.status.value = banner(
            f"<b>{len(self._alerts):,}</b> alerts, <b>{n_active:,}</b> active · evaluated "
            f"up to {when}{watching} · select an alert for its evidence",
            kind,
        )

    def _loop(self, every_s: float) -> None:
        while not self._halt.wait(every_s):
            try:
                self.refresh()
            except Exception as e:  # noqa: BLE001 - shown, and the watch ends
                self.status.value = banner(
                    f"watching stopped: {html.escape(type(e).__name__)}: {html.escape(str(e))}",
                    "bad",
                )
                return

    def _set_toggle(self, on: bool, every_s) -> None:
        self._busy = True
        try:
            self.watch_button.value = on
            if every_s is not None:
                self.watch_button.description = f"Watch every {every_s:g} s"
        finally:
            self._busy = False

    def _on_watch(self, change) -> None:
        if self._busy:
            return
        if change["new"]:
            self.watch(5)
        else:
            self.stop()

    def _on_threshold(self, name: str, change) -> None:
        if self._busy or change["new"] is None:
            return
        try:
            self.set_threshold(name, change["new"])
        except ValueError as e:
            self.status.value = banner(html.escape(str(e)), "bad")

    def _on_row(self, change) -> None:
        i = change["new"]
        if i is not None and 0 <= i < len(self._alerts):
            self.open_evidence(i)
