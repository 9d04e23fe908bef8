"""One lead's timeline as swimlanes: a bar per event, lanes in the order the lead met
the steps, late events (feedback days later) labelled with how much later they came.
"""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

from .theme import OUTCOME_COLORS, empty, figure, require

__all__ = ["timeline_figure"]


_VERB = {
    "source.submitted": "submitted",
    "source.accepted": "accepted",
    "source.rejected": "rejected",
    "filter.passed": "passed",
    "filter.failed": "failed",
    "enhancement.success": "appended",
    "enhancement.failure": "failed",
    "enhancement.error": "error",
    "recipient.delivered": "delivered",
    "recipient.failed": "rejected",
    "recipient.error": "error",
    "feedback.received": "feedback",
    "feedback.processed": "applied",
    "retry.attempted": "retry",
    "flow.completed": "completed",
}


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
    require(timeline, ["type", "timestamp", "outcome", "duration_ms"], "timeline_figure")
    lead = timeline.lead_id.iloc[0] if "lead_id" in timeline.columns and len(timeline) else ""
    if timeline.empty:
        return empty(figure(title or f"Timeline of {lead}", height=300), "no events for this lead")
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
        df.groupby("lane", sort=False)
        .agg(order=("order", "max"), first=("start_ms", "min"))
        .sort_values(["order", "first"])
        .index.tolist()
    )
    df["hover"] = [_hover(r) for _, r in df.iterrows()]
    df["verb"] = df.type.map(_VERB).fillna(df.type.str.split(".").str[-1])
    fig = figure(title or f"Timeline of {lead}", height=140 + 46 * len(lanes), barmode="overlay")
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
            )
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
            )
        )
        fig.add_vline(x=r.start_ms, line=dict(color="#B0BEC5", dash="dot"))
    for _, r in df[later].iterrows():
        fig.add_annotation(
            x=r.x + r.width,
            y=r.lane,
            text=f"{r.verb} {_fmt_gap(r.start_ms)}",
            showarrow=False,
            xanchor="left",
            xshift=4,
            font=dict(size=11, color="#546E7A"),
        )
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
