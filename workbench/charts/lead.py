"""One lead's timeline as swimlanes: a bar per event, lanes in the order the lead met
the steps, late events (feedback days later) labelled with how much later they came.
"""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

from .theme import OUTCOME_COLORS, empty, figure, require, wrap

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
        return f"+{s:.0f} s"
    if s < 7200:
        return f"+{s / 60:.0f} min"
    if s < 172_800:
        return f"+{s / 3600:.1f} h"
    return f"+{s / 86_400:.1f} days"


def _present(v) -> bool:
    try:
        return v is not None and not bool(pd.isna(v))
    except (TypeError, ValueError):
        return True


def _hover(r) -> str:
    bits = [
        f"<b>{html.escape(str(r.type))}</b> · {html.escape(str(r.lane))}",
        f"{r.timestamp:%Y-%m-%d %H:%M:%S.%f}"[:-3] + " UTC",
        f"outcome: {r.outcome}",
        f"duration: {int(r.dur):,} ms",
    ]
    if r.cluster:
        bits.append(f"{_fmt_gap(r.start_ms)} after the lead arrived")
    for col in ("rejection_reason", "error_type", "http_status", "revenue", "cost"):
        v = r.get(col)
        if _present(v):
            bits.append(f"{col.replace('_', ' ')}: {html.escape(str(v))}")
    return "<br>".join(bits)


def _why(r) -> str:
    """What a failing event says went wrong: its reason, its error type, or its verb."""
    for c in ("rejection_reason", "error_type"):
        if c in r and _present(r[c]):
            return str(r[c])
    meta = r.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("reason"), str):
        return meta["reason"]  # a buyer's return or conversion says why
    return str(r.verb)


# a gap longer than this (and than the flow itself) starts a later part of the timeline
_BREAK_MS = 10 * 60_000


def _layout(df: pd.DataFrame) -> tuple[pd.DataFrame, float, list]:
    """Positions on a broken time axis: the flow in real milliseconds, then each later
    group of events (feedback days later) after a break, its events side by side so no
    bar hides another. Returns the frame with ``x``, ``width`` and ``cluster``, the
    flow's span in ms and the breaks as (x, label)."""
    done = df[df.type == "flow.completed"]
    if len(done):
        flow_end = float(done.start_ms.iloc[0])
    else:
        near = df[df.start_ms <= 60_000]
        flow_end = float((near.start_ms + near.dur).max())
    span = max(flow_end, 1.0)
    cluster = []
    k, last_end = 0, 0.0
    for start, dur in zip(df.start_ms, df.dur, strict=True):
        if start > max(last_end, span) + max(_BREAK_MS, span):
            k += 1
        cluster.append(k)
        last_end = max(last_end, start + dur)
    df["cluster"] = cluster
    main = df.cluster == 0
    df["x"] = df.start_ms.where(main)
    df["width"] = df.dur.where(main).clip(lower=span * 0.006)
    breaks = []
    base = span * 1.06
    slot = span * 0.12  # each later event gets this much room, beside the one before
    for c in range(1, k + 1):
        part = df[df.cluster == c]
        gap_label = _fmt_gap(float(part.start_ms.iloc[0]))
        base += span * 0.05
        x = base
        for i in part.index:
            df.loc[i, "x"] = x
            df.loc[i, "width"] = slot * 0.9
            x += slot
        breaks.append((base, x, gap_label))
        base = x
    return df, span, breaks


def timeline_figure(timeline: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Swimlanes of one lead: a lane per step, a bar per event from its timestamp for
    its duration, coloured by outcome, the detail on hover; the flow's completion is a
    diamond; a failing step is labelled with its reason.

    The axis is broken where the lead waited: the flow is drawn in real milliseconds,
    and each later group of events (feedback hours or days later) after a break labelled
    with how much later it came, its events side by side, so nothing sits at a fake
    offset and no label covers another.
    """
    require(timeline, ["type", "timestamp", "outcome", "duration_ms"], "timeline_figure")
    lead = timeline.lead_id.iloc[0] if "lead_id" in timeline.columns and len(timeline) else ""
    if timeline.empty:
        return empty(figure(title or f"Timeline of {lead}", height=300), "no events for this lead")
    df = timeline.sort_values(["timestamp", "seq"] if "seq" in timeline else ["timestamp"]).copy()
    t0 = df.timestamp.iloc[0]
    df["start_ms"] = (df.timestamp - t0).dt.total_seconds() * 1000
    df["dur"] = pd.to_numeric(df.duration_ms, errors="coerce").fillna(0).astype(float)
    df, span, breaks = _layout(df)
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
    done = df[df.type == "flow.completed"]
    fig = figure(title or f"Timeline of {lead}", height=150 + 46 * len(lanes), barmode="overlay")
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
                customdata=part.get("seq", None),
                text=part.verb,
                textposition="inside",
                insidetextanchor="middle",
                textfont=dict(color="white", size=11),
                width=0.6,
            )
        )
    if len(done):
        r = done.iloc[0]
        returned = "feedback_type" in df and (df.feedback_type == "return").any()
        verdict = "then returned by the buyer" if returned else str(r.outcome)
        fig.add_trace(
            go.Scatter(
                x=[r.x],
                y=["flow"],
                mode="markers+text",
                name=f"completed: {verdict}",
                marker=dict(
                    symbol="diamond", size=14, color=OUTCOME_COLORS.get(r.outcome, "#607D8B")
                ),
                customdata=[r["seq"]] if "seq" in done else None,
                text=[f"completed in {int(r.dur):,} ms"],
                textposition="middle left",
                hovertext=[r.hover],
                hoverinfo="text",
            )
        )
    # a failing step says why, right of everything in its lane (a failure is often a
    # sliver); several failures in a lane share one label
    failing = df[df.outcome.isin(["failure", "error"]) & (df.type != "flow.completed")]
    for lane, part in failing.groupby("lane", sort=False):
        whys = [_why(r) for _, r in part.iterrows()]
        counts = pd.Series(whys).value_counts(sort=False)
        text = "; ".join(f"{w} ×{n}" if n > 1 else w for w, n in counts.items())
        in_lane = df[df.lane == lane]
        fig.add_annotation(
            x=float((in_lane.x + in_lane.width).max()),
            y=lane,
            text=wrap(html.escape(text), 34, 2),
            showarrow=False,
            xanchor="left",
            xshift=6,
            font=dict(size=11, color=OUTCOME_COLORS.get(part.outcome.iloc[-1], "#546E7A")),
        )
    fig.update_yaxes(
        categoryorder="array", categoryarray=list(reversed(lanes)), title=None, automargin=True
    )
    # the flow's own scale (the diamond says its full length); a break's label sits under
    # what follows it, so no tick stands at the break where two labels would meet
    ticks, labels = [0.0, span / 2], ["0", f"{span / 2:,.0f} ms"]
    if not breaks:
        ticks.append(span)
        labels.append(f"{span:,.0f} ms")
    for x0, x1, label in breaks:
        fig.add_vrect(
            x0=x0 - span * 0.04,
            x1=x0 - span * 0.01,
            fillcolor="#ECEFF1",
            line_width=0,
            layer="below",
        )
        ticks.append((x0 + x1) / 2)  # the break's label under the middle of what follows
        labels.append(label)
    # room on the right for the failure labels, which start where their lane ends
    room = 0.55 if len(failing) else 0.35 if breaks else 0.08
    right = float((df.x + df.width).max()) + span * room
    title_x = "time since the lead arrived (axis broken where the lead waited)"
    fig.update_xaxes(
        title=title_x if breaks else "ms since the lead arrived",
        range=[-span * 0.02, right],
        tickvals=ticks,
        ticktext=labels,
        tickangle=0,
        showgrid=False,
    )
    fig.update_layout(
        uniformtext=dict(minsize=9, mode="hide"),
        # the legend on its own line above the lanes, under the title (a lead id is long)
        legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0, xanchor="left"),
        title=dict(y=1.0, yanchor="top", pad=dict(t=14)),
        margin=dict(t=96),
    )
    return fig
