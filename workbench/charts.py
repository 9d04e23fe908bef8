"""Plotly figures for the workbench, one consistent theme, and export.

Every builder takes the DataFrame an investigation or analytics function returned (so
the data a chart shows has already been read, and masked, through a Session) and
returns a ``plotly.graph_objects.Figure``. ``export(fig, path)`` writes PNG, SVG or PDF
through one long-lived kaleido server (Chromium started once, not per image) or a
self-contained offline HTML file; ``report(items, path)`` writes one HTML page of
several figures and tables.

>>> import pandas as pd
>>> fig = rejection_bars(pd.DataFrame({"rejection_reason": ["Invalid phone"], "rejections": [40],
...                                     "share": [1.0]}))
>>> fig.layout.template.layout.font.family.startswith("Inter")
True
"""

from __future__ import annotations

import atexit
import datetime as dt
import html
import os
import shutil
import threading
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

__all__ = [
    "OUTCOME_COLORS",
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

OUTCOME_COLORS = {
    "success": "#2E7D32",
    "failure": "#C62828",
    "error": "#EF6C00",
    "skipped": "#9E9E9E",
}
PALETTE = ["#1565C0", "#6A1B9A", "#00838F", "#AD1457", "#558B2F", "#4E342E", "#283593", "#00695C"]
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


class ChartError(ValueError):
    """A chart asked of data that cannot make it (missing columns, unknown format)."""


def _require(df: pd.DataFrame, columns: Iterable[str], chart: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ChartError(
            f"{chart} needs columns {', '.join(missing)}; the data has {', '.join(map(str, df.columns))}"
        )


def _figure(title: str, **layout) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(template=TEMPLATE, title=title, **layout)
    return fig


def _empty(fig: go.Figure, message: str) -> go.Figure:
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=14, color="#78909C"))  # fmt: skip
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _pct(x) -> str:
    return "" if pd.isna(x) else f"{x:.0%}"


# --------------------------------------------------------------------------- one lead

_VERB = {
    "source.submitted": "submitted", "source.accepted": "accepted", "source.rejected": "rejected",
    "filter.passed": "passed", "filter.failed": "failed", "enhancement.success": "appended",
    "enhancement.failure": "failed", "enhancement.error": "error", "recipient.delivered": "delivered",
    "recipient.failed": "rejected", "recipient.error": "error", "feedback.received": "feedback",
    "feedback.processed": "applied", "retry.attempted": "retry", "flow.completed": "completed",
}  # fmt: skip


def _fmt_gap(ms: float) -> str:
    s = ms / 1000
    if s < 120:
        return f"+{s:.0f} s later"
    if s < 7200:
        return f"+{s / 60:.0f} min later"
    if s < 172_800:
        return f"+{s / 3600:.1f} h later"
    return f"+{s / 86_400:.1f} days later"


def _hover(r) -> str:
    bits = [
        f"<b>{html.escape(str(r.type))}</b> · {html.escape(str(r.lane))}",
        f"{r.timestamp:%Y-%m-%d %H:%M:%S.%f}"[:-3] + " UTC",
        f"outcome: {r.outcome}",
        f"duration: {0 if pd.isna(r.duration_ms) else int(r.duration_ms):,} ms",
    ]
    for col in ("rejection_reason", "error_type", "http_status", "revenue", "cost"):
        v = r.get(col)
        if v is not None and not (isinstance(v, float) and pd.isna(v)):
            bits.append(f"{col.replace('_', ' ')}: {html.escape(str(v))}")
    return "<br>".join(bits)


def timeline_figure(timeline: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Swimlanes of one lead: a lane per step, a bar per event from its timestamp for
    its duration, coloured by outcome, the detail on hover; the flow's completion is a
    diamond.

    Events long after the flow completed (feedback hours or days later) are drawn at
    the right edge with how much later they came, so the flow itself stays readable.
    """
    _require(timeline, ["type", "timestamp", "outcome", "duration_ms"], "timeline_figure")
    lead = timeline.lead_id.iloc[0] if "lead_id" in timeline.columns and len(timeline) else ""
    if timeline.empty:
        return _empty(
            _figure(title or f"Timeline of {lead}", height=300), "no events for this lead"
        )
    df = timeline.sort_values(["timestamp", "seq"] if "seq" in timeline else ["timestamp"]).copy()
    t0 = df.timestamp.iloc[0]
    df["start_ms"] = (df.timestamp - t0).dt.total_seconds() * 1000
    df["dur"] = df.duration_ms.fillna(0).astype(float)
    done = df[df.type == "flow.completed"]
    if len(done):
        flow_end = float(done.start_ms.iloc[0])
    else:
        near = df[df.start_ms <= 60_000]
        flow_end = float((near.start_ms + near.dur).max())
    span = max(flow_end, 1.0)
    later = df.start_ms > span * 1.5 + 1000
    df["x"] = df.start_ms.where(~later, span * 1.1)
    df["width"] = df.dur.where(~later, span * 0.05).clip(lower=span * 0.006)
    names = df["step_name"] if "step_name" in df else pd.Series(df.type, index=df.index)
    df["lane"] = names.fillna(df.type).astype(str)
    df.loc[df.type == "flow.completed", "lane"] = "flow"
    # lanes in the order the lead met them; the flow's completion last
    df["order"] = (df.type == "flow.completed").astype(int)
    lanes = (
        df.groupby("lane", sort=False).agg(order=("order", "max"), first=("start_ms", "min"))
        .sort_values(["order", "first"]).index.tolist()
    )  # fmt: skip
    df["hover"] = [_hover(r) for _, r in df.iterrows()]
    df["verb"] = df.type.map(_VERB).fillna(df.type.str.split(".").str[-1])
    fig = _figure(title or f"Timeline of {lead}", height=140 + 46 * len(lanes), barmode="overlay")
    bars = df[df.type != "flow.completed"]
    for outcome, part in bars.groupby("outcome", sort=False):
        fig.add_trace(
            go.Bar(
                x=part.width,
                base=part.x,
                y=part.lane,
                orientation="h",
                name=str(outcome),
                marker=dict(
                    color=OUTCOME_COLORS.get(outcome, "#607D8B"), line=dict(width=1, color="white")
                ),
                hovertext=part.hover,
                hoverinfo="text",
                text=part.verb,
                textposition="inside",
                insidetextanchor="middle",
                textfont=dict(color="white", size=11),
                width=0.6,
            )  # fmt: skip
        )
    if len(done):
        r = done.iloc[0]
        fig.add_trace(
            go.Scatter(
                x=[r.start_ms],
                y=["flow"],
                mode="markers+text",
                name=f"completed: {r.outcome}",
                marker=dict(
                    symbol="diamond", size=14, color=OUTCOME_COLORS.get(r.outcome, "#607D8B")
                ),
                text=[f"completed in {int(r.dur):,} ms"],
                textposition="middle left",
                hovertext=[_hover(done.assign(lane="flow").iloc[0])],
                hoverinfo="text",
            )  # fmt: skip
        )
        fig.add_vline(x=r.start_ms, line=dict(color="#B0BEC5", dash="dot"))
    for _, r in df[later].iterrows():
        fig.add_annotation(x=r.x + r.width, y=r.lane, text=f"{r.verb} {_fmt_gap(r.start_ms)}", showarrow=False,
                           xanchor="left", xshift=4, font=dict(size=11, color="#546E7A"))  # fmt: skip
    fig.update_yaxes(
        categoryorder="array", categoryarray=list(reversed(lanes)), title=None, automargin=True
    )
    right = span * (1.45 if later.any() else 1.08)
    fig.update_xaxes(title="ms since the lead arrived", range=[-span * 0.02, right])
    fig.update_layout(
        uniformtext=dict(minsize=9, mode="hide"),
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"),
    )
    return fig


# --------------------------------------------------------------------------- many leads


def funnel_figure(
    funnel: pd.DataFrame, title: str | None = None, *, by_source: bool = False
) -> go.Figure:
    """Submitted -> accepted -> delivered -> converted.

    One funnel of all leads by default; with ``by_source=True`` each source's stages as
    a share of what it submitted, one line per source, so drop-offs compare at a glance.
    """
    stages = ["submitted", "accepted", "delivered", "converted"]
    _require(funnel, stages, "funnel_figure")
    if funnel.empty:
        return _empty(_figure(title or "Funnel", height=380), "no leads")
    if not by_source or "source" not in funnel.columns:
        totals = funnel[stages].sum()
        fig = _figure(title or "Lead funnel", height=380)
        fig.add_trace(
            go.Funnel(y=[s.capitalize() for s in stages], x=totals.values,
                      texttemplate="%{value:,}<br>%{percentInitial:.0%}",
                      marker=dict(color=[PALETTE[0], PALETTE[2], OUTCOME_COLORS["success"], "#1B5E20"]),
                      connector=dict(line=dict(color="#CFD8DC", width=1)))
        )  # fmt: skip
        return fig
    fig = _figure(title or "Funnel by source: share of submitted leads", height=420)
    rows = funnel.sort_values("submitted", ascending=False)
    for i, (_, r) in enumerate(rows.iterrows()):
        base = r["submitted"] or 1
        shares = [r[s] / base for s in stages]
        fig.add_trace(
            go.Scatter(x=[s.capitalize() for s in stages], y=shares, mode="lines+markers", name=str(r["source"]),
                       line=dict(color=PALETTE[i % len(PALETTE)], width=2.5), marker=dict(size=8),
                       customdata=[r[s] for s in stages],
                       hovertemplate="%{x}: %{customdata:,} leads (%{y:.0%})<extra>" + html.escape(str(r["source"])) + "</extra>")
        )  # fmt: skip
    fig.update_yaxes(title="share of submitted leads", tickformat=".0%", range=[0, 1.05])
    return fig


def sankey_figure(paths: pd.DataFrame, title: str = "Where leads go") -> go.Figure:
    """Lead paths as a Sankey: columns of ``paths`` name the stages in order (e.g.
    source -> outcome -> recipient) and ``leads`` counts each path."""
    _require(paths, ["leads"], "sankey_figure")
    stages = [c for c in paths.columns if c != "leads"]
    fig = _figure(title, height=480)
    if paths.empty or len(stages) < 2:
        return _empty(fig, "no lead paths")
    labels: list[str] = []
    index: dict[tuple[int, str], int] = {}
    src, dst, val = [], [], []
    for _, r in paths.iterrows():
        for a, b in zip(stages[:-1], stages[1:], strict=True):
            va, vb = r[a], r[b]
            if pd.isna(va) or pd.isna(vb):
                continue
            for key in ((stages.index(a), str(va)), (stages.index(b), str(vb))):
                if key not in index:
                    index[key] = len(labels)
                    labels.append(key[1])
            src.append(index[(stages.index(a), str(va))])
            dst.append(index[(stages.index(b), str(vb))])
            val.append(int(r.leads))
    colors = []
    for col, label in index:
        colors.append(OUTCOME_COLORS.get({"delivered": "success", "converted": "success",
                                          "rejected": "failure", "filtered": "failure",
                                          "buyer_rejected": "failure", "delivery_error": "error",
                                          "returned": "error"}.get(label, ""), PALETTE[col % len(PALETTE)]))  # fmt: skip
    fig.add_trace(
        go.Sankey(
            arrangement="snap",
            node=dict(label=labels, pad=14, thickness=16, color=colors, line=dict(width=0)),
            link=dict(source=src, target=dst, value=val, color="rgba(120,144,156,0.25)"),
        )
    )
    return fig


def hour_heatmap(
    df: pd.DataFrame,
    *,
    row: str = "recipient",
    value: str = "acceptance_rate",
    title: str | None = None,
    tz: str | None = None,
) -> go.Figure:
    """Hour-of-day heatmap: one row per ``row`` value, columns 0-23, colour = ``value``."""
    _require(df, [row, "hour", value], "hour_heatmap")
    tz = tz or (df.attrs.get("tz") if hasattr(df, "attrs") else None)
    fig = _figure(title or f"{value.replace('_', ' ').capitalize()} by hour of day"
                  + (f" ({tz})" if tz else ""), height=120 + 32 * max(1, df[row].nunique()))  # fmt: skip
    if df.empty:
        return _empty(fig, "no data")
    grid = df.pivot_table(index=row, columns="hour", values=value, aggfunc="mean").reindex(
        columns=range(24)
    )
    is_rate = "rate" in value or "share" in value
    # red marks the bad end: low acceptance, but high failure, error or rejection rates
    bad_high = any(w in value for w in ("fail", "error", "reject", "timeout", "return"))
    fig.add_trace(
        go.Heatmap(
            z=grid.values,
            x=[f"{h:02d}" for h in grid.columns],
            y=[str(i) for i in grid.index],
            colorscale=("RdYlGn_r" if bad_high else "RdYlGn") if is_rate else "Blues",
            zmin=0 if is_rate else None,
            zmax=1 if is_rate else None,
            colorbar=dict(title=value.replace("_", " "), tickformat=".0%" if is_rate else None),
            hovertemplate=f"{row}: %{{y}}<br>hour: %{{x}}<br>{value}: %{{z:{'.0%' if is_rate else ',.1f'}}}<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    fig.update_xaxes(title="hour of day", showgrid=False)
    fig.update_yaxes(title=None, showgrid=False, autorange="reversed")
    return fig


def duration_box(samples: pd.DataFrame, title: str = "Step durations") -> go.Figure:
    """Box plot of ``duration_ms`` per ``step_name`` (slowest median on top)."""
    _require(samples, ["step_name", "duration_ms"], "duration_box")
    fig = _figure(title, height=max(320, 60 + 34 * samples.step_name.nunique()))
    if samples.empty:
        return _empty(fig, "no step durations")
    order = samples.groupby("step_name").duration_ms.median().sort_values().index.tolist()
    for i, step in enumerate(order):
        part = samples[samples.step_name == step]
        fig.add_trace(
            go.Box(
                x=part.duration_ms,
                name=str(step),
                orientation="h",
                boxpoints=False,
                marker_color=PALETTE[i % len(PALETTE)],
                line=dict(width=1.5),
            )  # fmt: skip
        )
    fig.update_layout(showlegend=False)
    fig.update_xaxes(title="duration (ms)")
    fig.add_vline(x=2000, line=dict(color=OUTCOME_COLORS["failure"], dash="dash"),
                  annotation_text="2000 ms alert", annotation_position="bottom right")  # fmt: skip
    return fig


def step_durations_figure(steps: pd.DataFrame, title: str = "Average step duration") -> go.Figure:
    """Average and maximum duration per step (from ``analytics.step_durations``)."""
    _require(steps, ["step_name", "avg_duration", "max_duration"], "step_durations_figure")
    fig = _figure(title, height=max(320, 60 + 30 * len(steps)))
    if steps.empty:
        return _empty(fig, "no steps")
    d = steps.sort_values("avg_duration")
    fig.add_trace(go.Bar(y=d.step_name, x=d.avg_duration, orientation="h", name="average",
                         marker_color=PALETTE[0], hovertemplate="%{y}: %{x:,.0f} ms<extra>average</extra>"))  # fmt: skip
    fig.add_trace(go.Scatter(y=d.step_name, x=d.max_duration, mode="markers", name="maximum",
                             marker=dict(symbol="line-ns-open", size=14, color="#37474F")))  # fmt: skip
    fig.update_xaxes(title="ms")
    fig.add_vline(x=2000, line=dict(color=OUTCOME_COLORS["failure"], dash="dash"))
    return fig


def _short(text, limit: int = 48) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def rejection_bars(
    rejections: pd.DataFrame, title: str = "Why leads are rejected", top: int = 12
) -> go.Figure:
    """Rejections by reason (the ``top`` reasons, the rest grouped), stacked by source
    when the data has a ``source`` column; the full reason shows on hover."""
    _require(rejections, ["rejection_reason", "rejections"], "rejection_bars")
    if rejections.empty:
        return _empty(_figure(title, height=300), "no rejections")
    d = rejections.copy()
    total = d.groupby("rejection_reason").rejections.sum().sort_values(ascending=False)
    if len(total) > top:
        others = set(total.index[top:])
        label = f"({len(others)} other reasons)"
        d["rejection_reason"] = d.rejection_reason.where(~d.rejection_reason.isin(others), label)
        total = d.groupby("rejection_reason").rejections.sum().sort_values(ascending=False)
        total = pd.concat([total.drop(label), total[[label]]])  # the rest goes last
    order = list(total.index[::-1])  # largest on top
    labels = [_short(r) for r in order]
    fig = _figure(title, height=max(300, 90 + 30 * len(order)))
    if "source" in d.columns:
        for i, (source, part) in enumerate(d.groupby("source", sort=True)):
            values = part.groupby("rejection_reason").rejections.sum().reindex(order, fill_value=0)
            fig.add_trace(
                go.Bar(y=labels, x=values.values, orientation="h", name=str(source), customdata=order,
                       marker_color=PALETTE[i % len(PALETTE)],
                       hovertemplate="%{customdata}<br>%{x:,} rejections<extra>" + html.escape(str(source)) + "</extra>")
            )  # fmt: skip
        fig.update_layout(barmode="stack", legend_title="source", legend_traceorder="normal")
    else:
        share = total / total.sum()
        fig.add_trace(
            go.Bar(y=labels, x=total.reindex(order).values, orientation="h", marker_color=OUTCOME_COLORS["failure"],
                   customdata=order, text=[_pct(share[r]) for r in order], textposition="outside", cliponaxis=False,
                   hovertemplate="%{customdata}<br>%{x:,} rejections<extra></extra>")
        )  # fmt: skip
        fig.update_layout(showlegend=False)
    fig.update_yaxes(categoryorder="array", categoryarray=labels)
    fig.update_xaxes(title="rejections")
    return fig


def success_rates_figure(rates: pd.DataFrame, title: str = "Outcomes by event type") -> go.Figure:
    """The guide's Success Rates: percentage of each outcome per event type."""
    _require(rates, ["type", "outcome", "percentage"], "success_rates_figure")
    fig = _figure(title, barmode="stack", height=max(300, 80 + 40 * rates.type.nunique()))
    if rates.empty:
        return _empty(fig, "no events")
    for outcome, part in rates.groupby("outcome", sort=False):
        fig.add_trace(go.Bar(y=part.type, x=part.percentage, orientation="h", name=str(outcome),
                             marker_color=OUTCOME_COLORS.get(outcome, "#607D8B"),
                             customdata=part.get("count"),
                             hovertemplate="%{y}: %{x:.1f}% (%{customdata:,} events)<extra>" + str(outcome) + "</extra>"))  # fmt: skip
    fig.update_xaxes(title="% of events", range=[0, 100])
    return fig


def source_performance_figure(perf: pd.DataFrame, title: str = "Source performance") -> go.Figure:
    """Revenue, cost and profit per source, with acceptance and delivery rates on hover."""
    _require(perf, ["source", "revenue", "profit"], "source_performance_figure")
    fig = _figure(title, barmode="group", height=420)
    if perf.empty:
        return _empty(fig, "no sources")
    d = perf.sort_values("profit", ascending=False)
    cost = d.revenue - d.profit
    custom = d[[c for c in ("submitted", "acceptance_rate", "delivery_rate") if c in d]].to_numpy()
    fig.add_trace(go.Bar(x=d.source, y=d.revenue, name="revenue", marker_color=PALETTE[0]))
    fig.add_trace(go.Bar(x=d.source, y=cost, name="cost", marker_color="#90A4AE"))
    fig.add_trace(
        go.Bar(
            x=d.source,
            y=d.profit,
            name="profit",
            marker_color=[
                OUTCOME_COLORS["success"] if p >= 0 else OUTCOME_COLORS["failure"] for p in d.profit
            ],
            customdata=custom,
            hovertemplate="%{x}<br>profit $%{y:,.2f}<br>submitted %{customdata[0]:,}"
            "<br>acceptance %{customdata[1]:.0%}<br>delivery %{customdata[2]:.0%}<extra></extra>"
            if custom.shape[1] == 3
            else None,
        )  # fmt: skip
    )
    fig.update_yaxes(title="USD", tickprefix="$")
    return fig


def enhancement_value_figure(
    value: pd.DataFrame, title: str = "Is the enhancement worth it?"
) -> go.Figure:
    """Delivery rate with and without an enhancement (``analytics.enhancement_value``)."""
    _require(value, ["group", "delivery_rate"], "enhancement_value_figure")
    fig = _figure(title, height=380)
    if value.empty:
        return _empty(fig, "no leads")
    fig.add_trace(
        go.Bar(
            x=value.group,
            y=value.delivery_rate,
            marker_color=[PALETTE[0], "#90A4AE"][: len(value)],
            text=[_pct(v) for v in value.delivery_rate],
            textposition="outside",
            cliponaxis=False,
        )  # fmt: skip
    )
    fig.update_yaxes(title="delivery rate", tickformat=".0%", range=[0, 1.1])
    fig.update_layout(showlegend=False)
    return fig


def buyer_figure(buyers: pd.DataFrame, title: str = "Buyer acceptance") -> go.Figure:
    """Acceptance rate per buyer against the guide's 70% line, response time on hover."""
    _require(buyers, ["recipient", "acceptance_rate"], "buyer_figure")
    fig = _figure(title, height=max(300, 80 + 36 * len(buyers)))
    if buyers.empty:
        return _empty(fig, "no buyers")
    d = buyers.sort_values("acceptance_rate")
    colors = [
        OUTCOME_COLORS["failure"] if a < 0.7 else OUTCOME_COLORS["success"]
        for a in d.acceptance_rate
    ]
    fig.add_trace(go.Bar(y=d.recipient, x=d.acceptance_rate, orientation="h", marker_color=colors,
                         text=[_pct(a) for a in d.acceptance_rate], textposition="outside", cliponaxis=False))  # fmt: skip
    fig.add_vline(x=0.7, line=dict(color="#37474F", dash="dash"), annotation_text="70%",
                  annotation_position="top")  # fmt: skip
    fig.update_xaxes(title="acceptance rate", tickformat=".0%", range=[0, 1.1])
    fig.update_layout(showlegend=False)
    return fig


def errors_figure(errors: pd.DataFrame, title: str = "Technical errors by type") -> go.Figure:
    """recipient.error / enhancement.error counts by error type (and entity)."""
    _require(errors, ["error_type", "errors"], "errors_figure")
    fig = _figure(title, barmode="stack", height=max(300, 80 + 34 * errors.error_type.nunique()))
    if errors.empty:
        return _empty(fig, "no technical errors")
    by = "entity_name" if "entity_name" in errors.columns else None
    groups = errors.groupby(by, sort=True) if by else [("all", errors)]
    for i, (name, part) in enumerate(groups):
        fig.add_trace(go.Bar(y=part.error_type, x=part.errors, orientation="h", name=str(name),
                             marker_color=PALETTE[i % len(PALETTE)]))  # fmt: skip
    fig.update_xaxes(title="errors")
    return fig


def timeouts_figure(over_time: pd.DataFrame, title: str = "Timeouts over time") -> go.Figure:
    """Timeouts (or errors) per time bucket, one line per entity."""
    _require(over_time, ["bucket", "timeouts"], "timeouts_figure")
    fig = _figure(title, height=360)
    if over_time.empty:
        return _empty(fig, "no timeouts")
    by = "entity_name" if "entity_name" in over_time.columns else None
    if by:  # services and buyers that never timed out would only add flat lines
        busy = over_time.groupby(by).timeouts.sum()
        over_time = over_time[over_time[by].isin(busy[busy > 0].index)]
    groups = over_time.groupby(by, sort=True) if by else [("timeouts", over_time)]
    for i, (name, part) in enumerate(groups):
        fig.add_trace(go.Scatter(x=part.bucket, y=part.timeouts, mode="lines", name=str(name),
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=2)))  # fmt: skip
    fig.update_yaxes(title="timeouts per bucket", rangemode="tozero")
    return fig


def retry_figure(retries: pd.DataFrame, title: str = "Retry effectiveness") -> go.Figure:
    """Share of retries that succeeded, by attempt number."""
    _require(retries, ["retry_count", "retries", "success_rate"], "retry_figure")
    fig = _figure(title, height=340)
    if retries.empty:
        return _empty(fig, "no retries")
    fig.add_trace(go.Bar(x=retries.retry_count.astype(str), y=retries.success_rate, marker_color=PALETTE[0],
                         customdata=retries.retries, text=[_pct(v) for v in retries.success_rate],
                         textposition="outside", cliponaxis=False,
                         hovertemplate="attempt %{x}: %{y:.0%} of %{customdata:,} retries succeeded<extra></extra>"))  # fmt: skip
    fig.update_xaxes(title="retry attempt", type="category")  # attempts 1, 2, … not 0.6-1.4
    fig.update_yaxes(title="succeeded", tickformat=".0%", range=[0, 1.1])
    return fig


def bubbleup_figure(
    ranked: pd.DataFrame, top: int = 12, title: str = "What sets the selection apart"
) -> go.Figure:
    """The most over-represented attributes of a selection (``investigate.bubbleup``)."""
    _require(ranked, ["attribute", "value", "odds_ratio"], "bubbleup_figure")
    fig = _figure(title, height=max(320, 80 + 30 * min(top, len(ranked))))
    if ranked.empty:
        return _empty(fig, "nothing stands out")
    d = ranked.head(top).iloc[::-1]
    labels = [f"{a} = {_short(v, 40)}" for a, v in zip(d.attribute, d.value, strict=True)]
    custom = d[[c for c in ("selection_share", "baseline_share") if c in d]].to_numpy()
    fig.add_trace(
        go.Bar(
            y=labels,
            x=d.odds_ratio,
            orientation="h",
            marker_color=PALETTE[3],
            customdata=custom,
            hovertemplate="%{y}<br>odds ratio %{x:.1f}<br>selection %{customdata[0]:.0%} · baseline %{customdata[1]:.0%}<extra></extra>"
            if custom.shape[1] == 2
            else None,
        )  # fmt: skip
    )
    fig.update_xaxes(title="odds ratio (selection vs baseline)", type="log")
    fig.add_vline(x=1, line=dict(color="#90A4AE"))
    return fig


def alerts_figure(alerts: pd.DataFrame, title: str = "Alerts") -> go.Figure:
    """When each rule fired, per subject (``alerts.evaluate``)."""
    _require(alerts, ["rule", "subject", "window_start", "value"], "alerts_figure")
    fig = _figure(
        title, height=max(300, 80 + 30 * alerts.subject.nunique() if len(alerts) else 300)
    )
    if alerts.empty:
        return _empty(fig, "no alerts fired")
    for i, (rule, part) in enumerate(alerts.groupby("rule", sort=True)):
        fig.add_trace(go.Scatter(x=part.window_start, y=part.subject, mode="markers", name=str(rule),
                                 marker=dict(size=9, color=PALETTE[i % len(PALETTE)], symbol="square"),
                                 hovertext=[f"{rule}: {v:.3g}" for v in part.value], hoverinfo="text+x"))  # fmt: skip
    fig.update_yaxes(title=None)
    return fig


# --------------------------------------------------------------------------- export

_SERVER_LOCK = threading.Lock()
_SERVER_STARTED = False
STATIC_FORMATS = ("png", "svg", "pdf")


def _chromium() -> str | None:
    for name in (os.environ.get("BROWSER_PATH"), "chromium", "chromium-browser", "google-chrome"):
        if name and (shutil.which(name) or Path(name).exists()):
            return shutil.which(name) or name
    return None


def _ensure_server() -> None:
    """Start kaleido's browser once per process; later images reuse it (~0.15 s each)."""
    global _SERVER_STARTED
    with _SERVER_LOCK:
        if _SERVER_STARTED:
            return
        browser = _chromium()
        if browser is None:
            raise ChartError(
                "PNG/SVG/PDF export needs Chromium and none was found: install it "
                "(apt-get install chromium) or set BROWSER_PATH; HTML export works without it"
            )
        os.environ.setdefault("BROWSER_PATH", browser)
        import kaleido

        kaleido.start_sync_server(mathjax=False, silence_warnings=True)
        _SERVER_STARTED = True
        atexit.register(_stop_server)


def _stop_server() -> None:
    global _SERVER_STARTED
    with _SERVER_LOCK:
        if _SERVER_STARTED:
            import kaleido

            kaleido.stop_sync_server(silence_warnings=True)
            _SERVER_STARTED = False


def export(
    fig: go.Figure,
    path: str | os.PathLike,
    *,
    format: str | None = None,
    width: int = 1000,
    height: int | None = None,
    scale: float = 2.0,
) -> Path:
    """Write ``fig`` as PNG, SVG, PDF or self-contained offline HTML (by suffix or ``format``).

    >>> export(fig, "rejections.png")                                   # doctest: +SKIP
    PosixPath('rejections.png')
    """
    p = Path(path)
    fmt = (format or p.suffix.lstrip(".")).lower()
    if fmt in ("htm", "html"):
        p.parent.mkdir(parents=True, exist_ok=True)
        fig.write_html(p, include_plotlyjs=True, full_html=True, config={"displaylogo": False})
        return p
    if fmt not in STATIC_FORMATS:
        raise ChartError(
            f"cannot export {p.name!r}: use a .png, .svg, .pdf or .html name (or format=)"
        )
    _ensure_server()
    p.parent.mkdir(parents=True, exist_ok=True)
    height = height or int(fig.layout.height or 450)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "kopts is ignored when using a server"
        fig.write_image(
            p, format=fmt, width=width, height=height, scale=scale if fmt == "png" else 1
        )
    return p


def report(
    items: Sequence,
    path: str | os.PathLike,
    *,
    title: str = "Lead-events report",
    subtitle: str | None = None,
) -> Path:
    """One self-contained HTML page of figures, tables (DataFrames) and text, in order.

    ``items`` holds Figures, DataFrames, strings (paragraphs) or ``(heading, item)``
    pairs. plotly.js is embedded once, so the file opens offline.

    >>> report([("Rejections", fig), df], "weekly.html")                 # doctest: +SKIP
    """
    p = Path(path)
    parts: list[str] = []
    first_fig = True
    for item in items:
        heading = None
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            heading, item = item
        if heading:
            parts.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(item, go.Figure):
            parts.append(
                item.to_html(
                    full_html=False, include_plotlyjs=first_fig, config={"displaylogo": False}
                )
            )
            first_fig = False
        elif isinstance(item, pd.DataFrame):
            parts.append(
                item.to_html(
                    index=False,
                    classes="table",
                    border=0,
                    na_rep="",
                    float_format=lambda x: f"{x:,.4g}",
                )
            )
        elif isinstance(item, str):
            parts.append(f"<p>{html.escape(item)}</p>")
        else:
            raise ChartError(
                f"report() takes Figures, DataFrames, text or (heading, item) pairs, not {type(item).__name__}"
            )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = _PAGE.format(
        title=html.escape(title),
        subtitle=html.escape(subtitle) if subtitle else f"Generated {stamp}",
        body="\n".join(parts),
    )
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(page, encoding="utf-8")
    return p


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: Inter, 'Helvetica Neue', Arial, sans-serif; color: #263238; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; }}
h1 {{ font-size: 1.6rem; margin-bottom: .2rem; }} .sub {{ color: #78909C; margin-top: 0; }}
h2 {{ font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ECEFF1; padding-bottom: .3rem; }}
table.table {{ border-collapse: collapse; font-size: .85rem; margin: .5rem 0 1rem; }}
table.table th, table.table td {{ padding: .3rem .7rem; border-bottom: 1px solid #ECEFF1; text-align: right; }}
table.table th {{ background: #F5F7F8; }} table.table td:first-child, table.table th:first-child {{ text-align: left; }}
</style></head>
<body><h1>{title}</h1><p class="sub">{subtitle}</p>
{body}
</body></html>
"""
