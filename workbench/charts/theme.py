"""The workbench's look: one plotly template, colours for outcomes, and the small
helpers every figure builder shares (a titled empty figure, column checks, labels).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from ..errors import WorkbenchError

__all__ = [
    "OUTCOME_COLORS",
    "PALETTE",
    "SEQUENTIAL",
    "DIVERGING",
    "TEMPLATE",
    "ChartError",
    "require",
    "figure",
    "subtitle",
    "described",
    "empty",
    "pct",
    "short",
    "wrap",
]

# Colours from the Okabe-Ito set, which stays apart for people with red-green colour
# blindness (deuteranopia, protanopia): success is blue, failure vermilion, error orange;
# no meaning rests on red against green.
OUTCOME_COLORS = {
    "success": "#0072B2",
    "failure": "#D55E00",
    "error": "#E69F00",
    "skipped": "#9E9E9E",
}
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#8C6D31"]
#: A sequential scale from pale to dark blue (rates, counts), and a diverging one from
#: blue through grey to vermilion (good to bad), both readable without red-green.
SEQUENTIAL = "Blues"
DIVERGING = [[0.0, "#0072B2"], [0.5, "#F2F2F2"], [1.0, "#D55E00"]]
_FONT = "Inter, 'Helvetica Neue', Arial, sans-serif"

TEMPLATE = go.layout.Template(
    layout=go.Layout(
        font=dict(family=_FONT, size=13, color="#263238"),
        title=dict(font=dict(size=17), x=0.01, xanchor="left"),
        colorway=PALETTE,
        paper_bgcolor="white",
        plot_bgcolor="white",
        margin=dict(l=70, r=30, t=60, b=55),
        xaxis=dict(
            gridcolor="#ECEFF1", zerolinecolor="#CFD8DC", linecolor="#B0BEC5", ticks="outside"
        ),
        yaxis=dict(
            gridcolor="#ECEFF1",
            zerolinecolor="#CFD8DC",
            linecolor="#B0BEC5",
            ticks="outside",
            automargin=True,
        ),
        legend=dict(bgcolor="rgba(255,255,255,0.8)", bordercolor="#ECEFF1", borderwidth=1),
        hoverlabel=dict(font=dict(family=_FONT, size=12)),
    )
)
pio.templates["workbench"] = TEMPLATE


class ChartError(WorkbenchError, ValueError):
    """A chart asked of data that cannot make it (missing columns, unknown format)."""


def require(df: pd.DataFrame, columns: Iterable[str], chart: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ChartError(
            f"{chart} takes the DataFrame an analysis returned (e.g. session.timeline(lead_id)), "
            f"not {type(df).__name__}"
        )
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ChartError(
            f"{chart} needs columns {', '.join(missing)}; the data has {', '.join(map(str, df.columns))}"
        )


def described(data: pd.DataFrame | None) -> dict:
    """What a figure's data says of itself: ``period`` (from ``since``/``until`` in
    ``data.attrs``, or the first and last event of an open-ended window), ``basis``
    (``date_basis``) and ``n`` (how many leads or events are behind it: a ``leads``,
    ``submitted``, ``events``… column, or ``attrs["n"]``), each "" when unknown."""
    said = {"period": "", "basis": "", "n": ""}
    if data is None or not isinstance(data, pd.DataFrame):
        return said
    a = data.attrs or {}
    since, until = a.get("since"), a.get("until")
    if since is None or until is None:  # an open-ended window: the events it held
        since = since if since is not None else a.get("first_event")
        until = until if until is not None else a.get("last_event")
        until = None if until is None else pd.Timestamp(until) + pd.Timedelta(milliseconds=1)
    if since is not None and until is not None:
        lo, hi = pd.Timestamp(since), pd.Timestamp(until) - pd.Timedelta(milliseconds=1)
        said["period"] = (
            f"{lo:%b %d} – {hi:%b %d, %Y}"
            if lo.year == hi.year
            else f"{lo:%b %d, %Y} – {hi:%b %d, %Y}"
        )
    if a.get("date_basis"):
        said["basis"] = f"by {a['date_basis']}"
    n, what = a.get("n"), a.get("n_of", "leads")
    if n is None:
        for col, label in _COUNTED:
            if col in data.columns and len(data):
                n, what = int(pd.to_numeric(data[col], errors="coerce").fillna(0).sum()), label
                break
    if n is not None:
        said["n"] = f"{int(n):,} {what}"
    return said


#: Columns whose sum says how many things a figure stands on, in order of preference
_COUNTED = (
    ("leads", "leads"),
    ("submitted", "leads"),
    ("events", "events"),
    ("count", "events"),
    ("executions", "events"),
    ("attempts", "deliveries"),
    ("rejections", "rejections"),
    ("calls", "calls"),
    ("errors", "errors"),
    ("retries", "retries"),
    ("decided", "buyer decisions"),
)


def subtitle(data: pd.DataFrame | None) -> str:
    """The line under a figure's title: period · time basis · n (see ``described``)."""
    return " · ".join(v for v in described(data).values() if v)


def figure(title: str, data: pd.DataFrame | None = None, **layout) -> go.Figure:
    """An empty figure in the workbench's look, titled; with ``data``, a subtitle
    says the period, the time basis and how many leads are behind it (kept in
    ``layout.meta`` too, where ``report()`` reads a page's period and basis)."""
    fig = go.Figure()
    said = described(data)
    sub = " · ".join(v for v in said.values() if v)
    text = f"{title}<br><sup style='color:#607D8B'>{sub}</sup>" if sub else title
    fig.update_layout(template=TEMPLATE, title=text, meta=said, **layout)
    if sub:
        fig.update_layout(margin=dict(t=78))
    return fig


def empty(fig: go.Figure, message: str) -> go.Figure:
    fig.add_annotation(
        text=message,
        showarrow=False,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        font=dict(size=14, color="#78909C"),
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def pct(x) -> str:
    return "" if pd.isna(x) else f"{x:.0%}"


def wrap(text, width: int = 44, lines: int = 2) -> str:
    """``text`` broken at spaces onto at most ``lines`` lines of about ``width``
    characters (plotly's ``<br>``); only what still does not fit is cut with "…"."""
    words, out, line = str(text).split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            out.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    out.append(line)
    if len(out) > lines:
        out = out[: lines - 1] + [short(" ".join(out[lines - 1 :]), width)]
    return "<br>".join(out)


def short(text, limit: int = 48) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
