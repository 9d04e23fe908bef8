"""``LiveFeed``: events as a stream lands them.

The newest events (newest first), how many events the store holds and how fast they
are landing, and the events per minute of each type over the last minutes of the
stream's clock, failures apart. ``start(every_s=1)`` reads again on a timer until
``stop()``; ``refresh()`` reads once. Every read is ``analysis.live``.
"""

from __future__ import annotations

import html
import threading
import time
from collections import deque

import ipywidgets as w
import pandas as pd
import plotly.graph_objects as go

from ..analysis import live
from ..analysis.explore import PAGE_COLUMNS
from ..charts import OUTCOME_COLORS, TEMPLATE
from ..charts.theme import empty
from ._base import Table, banner, require_session, show_figure

__all__ = ["LiveFeed"]

#: Reads of the last this many seconds give the landing rate.
_RATE_WINDOW_S = 10.0


class LiveFeed(w.VBox):
    """The newest events and the rates per type, read again on a timer.

    >>> feed = LiveFeed(session); feed.start(every_s=1)              # doctest: +SKIP
    >>> feed.rates.head(3)                                           # doctest: +SKIP
    >>> feed.stop()                                                  # doctest: +SKIP
    """

    def __init__(self, session, *, n: int = 20, minutes: float = 5):
        self._session = require_session(session, "LiveFeed")
        live.newest(self._session, n)  # checks n before any widget is built
        self._n, self._minutes = n, minutes
        self._newest = pd.DataFrame(columns=list(PAGE_COLUMNS))
        self._rates = pd.DataFrame(columns=["type", "events", "per_minute", "failures"])
        self._total = 0
        self._landing = 0.0
        self._reads: deque[tuple[float, int]] = deque()
        self._timer: threading.Thread | None = None
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self.status = w.HTML()
        self.start_button = w.ToggleButton(description="Follow", icon="play")
        self.chart = go.FigureWidget()
        self.table = Table(empty="no events yet: start a stream")
        self.start_button.observe(self._on_toggle, names="value")
        self._toggling = False
        super().__init__([w.HBox([self.start_button, self.status]), self.chart, self.table])
        self.refresh()

    @property
    def newest(self) -> pd.DataFrame:
        """The newest events shown (newest first)."""
        return self._newest.copy()

    @property
    def rates(self) -> pd.DataFrame:
        """Events per minute of each type over the last minutes (see ``analysis.live``)."""
        return self._rates.copy()

    @property
    def total(self) -> int:
        """Events in the store at the last read."""
        return self._total

    @property
    def landing_per_second(self) -> float:
        """Events that landed per second of real time over the last reads (10 s)."""
        return self._landing

    @property
    def following(self) -> bool:
        return self._timer is not None and self._timer.is_alive()

    def refresh(self) -> None:
        """Read the newest events and the rates once."""
        with self._lock:
            s = self._session
            total = int(s.sql("SELECT count(*) AS n FROM events").n.iloc[0])
            now = time.monotonic()
            self._reads.append((now, total))
            while len(self._reads) > 2 and now - self._reads[0][0] > _RATE_WINDOW_S:
                self._reads.popleft()
            t0, n0 = self._reads[0]
            self._landing = max(total - n0, 0) / (now - t0) if now > t0 else 0.0
            self._total = total
            self._newest = live.newest(s, self._n)
            self._rates = live.rates(s, self._minutes)
            self._show()

    def start(self, every_s: float = 1) -> None:
        """Read again every ``every_s`` seconds in the background, until ``stop()``."""
        if isinstance(every_s, bool) or not isinstance(every_s, int | float) or every_s <= 0:
            raise ValueError(f"every_s={every_s!r}: give a number of seconds above 0")
        self.stop()
        self._halt.clear()
        self._timer = threading.Thread(
            target=self._loop, args=(float(every_s),), name="live feed", daemon=True
        )
        self._timer.start()
        self._set_toggle(True)

    def stop(self) -> None:
        """Stop following and read once more, so the feed shows where it stopped."""
        self._halt.set()
        was_following = self._timer is not None
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.join(timeout=30)
        self._timer = None
        self._set_toggle(False)
        if was_following and not self._session.closed:
            self.refresh()

    # ------------------------------------------------------------------ internals

    def _show(self) -> None:
        newest = self._newest
        when = (
            f"{pd.Timestamp(newest.timestamp.iloc[0]):%Y-%m-%d %H:%M:%S} UTC"
            if len(newest)
            else "-"
        )
        following = "following" if self.following else "paused"
        self.status.value = banner(
            f"<b>{self._total:,}</b> events · newest at {html.escape(when)} · "
            f"{self._landing:,.0f} events/s landing · {following}",
            "ok" if self.following else "",
        )
        self.table.show_frame(newest, PAGE_COLUMNS, caption=f"the {self._n} newest events")
        r = self._rates.sort_values("per_minute")
        ok = r.per_minute - r.failures / float(self._minutes)
        bad = r.failures / float(self._minutes)
        fig = go.Figure(
            layout=go.Layout(
                template=TEMPLATE,
                barmode="stack",
                height=max(220, 26 * len(r) + 90),
                margin=dict(l=170, r=20, t=40, b=40),
                title=dict(
                    text=f"Events per minute by type, last {self._minutes:g} minutes",
                    font=dict(size=13),
                ),
                legend=dict(orientation="h", y=1.08, x=1, xanchor="right"),
            )
        )
        if r.empty:
            empty(fig, f"no events in the last {self._minutes:g} minutes of the stream")
        else:
            fig.add_bar(
                y=r.type,
                x=ok,
                orientation="h",
                name="success",
                marker_color=OUTCOME_COLORS["success"],
            )
            fig.add_bar(
                y=r.type,
                x=bad,
                orientation="h",
                name="failure or error",
                marker_color=OUTCOME_COLORS["failure"],
            )
            fig.update_xaxes(title="events per minute")
        show_figure(self.chart, fig)

    def _loop(self, every_s: float) -> None:
        while not self._halt.wait(every_s):
            try:
                self.refresh()
            except Exception as e:  # noqa: BLE001 - shown, and following ends
                self.status.value = banner(
                    f"following stopped: {html.escape(type(e).__name__)}: {html.escape(str(e))}",
                    "bad",
                )
                return

    def _set_toggle(self, on: bool) -> None:
        self._toggling = True
        try:
            self.start_button.value = on
            self.start_button.icon = "pause" if on else "play"
        finally:
            self._toggling = False

    def _on_toggle(self, change) -> None:
        if self._toggling:
            return
        if change["new"]:
            self.start(1)
        else:
            self.stop()
