"""Figures of many leads: funnels, flows, heatmaps, durations, rejections, sources,
buyers, errors, retries, what sets a group apart, alerts. Each takes the DataFrame the
matching analysis returned.
"""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

from .theme import (
    DIVERGING,
    OUTCOME_COLORS,
    PALETTE,
    SEQUENTIAL,
    empty,
    figure,
    pct,
    require,
    short,
    wrap,
)


def funnel_figure(
    funnel: pd.DataFrame, title: str | None = None, *, by_source: bool = False
) -> go.Figure:
    """Submitted -> accepted -> delivered -> converted.

    One funnel of all leads by default; with ``by_source=True`` each source's stages as
    a share of what it submitted, one line per source, so drop-offs compare at a glance.
    """
    stages = ["submitted", "accepted", "delivered", "converted"]
    require(funnel, stages, "funnel_figure")
    if funnel.empty:
        return empty(figure(title or "Funnel", data=funnel, height=380), "no leads")
    if not by_source or "source" not in funnel.columns:
        totals = funnel[stages].sum()
        top = float(totals.iloc[0]) or 1.0
        fig = figure(title or "Lead funnel", data=funnel, height=380)
        # centred bars (a funnel drawn with plain bars: any plotly.js bundle draws it)
        labels = [
            f"{int(v):,}" if i == 0 else f"{int(v):,} · {v / top:.0%} of submitted"
            for i, v in enumerate(totals.values)
        ]
        fig.add_trace(
            go.Bar(
                y=[s.capitalize() for s in stages],
                x=totals.values,
                base=(top - totals.values) / 2,
                orientation="h",
                text=labels,
                # inside a wide bar, beside a narrow one (white on the bar, dark beside)
                textposition=["inside" if v / top > 0.45 else "outside" for v in totals.values],
                insidetextanchor="middle",
                textfont=dict(
                    color=["white" if v / top > 0.45 else "#263238" for v in totals.values]
                ),
                cliponaxis=False,
                marker=dict(color=["#08306B", "#2171B5", "#4292C6", "#6BAED6"][: len(stages)]),
                hovertemplate="%{y}: %{x:,} leads<extra></extra>",
                width=0.7,
            )
        )
        fig.update_yaxes(autorange="reversed", title=None)
        fig.update_xaxes(visible=False, range=[-top * 0.02, top * 1.02])
        return fig
    fig = figure(title or "Funnel by source: share of submitted leads", data=funnel, height=420)
    # grouped bars, one group per stage: sources whose shares are close stay readable
    # (lines over the same four stages lay on top of each other)
    rows = funnel.sort_values("submitted", ascending=False)
    for i, (_, r) in enumerate(rows.iterrows()):
        base = r["submitted"] or 1
        shares = [r[s] / base for s in stages[1:]]
        fig.add_trace(
            go.Bar(
                x=[s.capitalize() for s in stages[1:]],
                y=shares,
                name=f"{r['source']} ({int(r['submitted']):,})",
                marker_color=PALETTE[i % len(PALETTE)],
                text=[pct(v) for v in shares],
                textposition="outside",
                textfont=dict(size=10),
                cliponaxis=False,
                customdata=[r[s] for s in stages[1:]],
                hovertemplate="%{x}: %{customdata:,} leads (%{y:.0%} of submitted)<extra>"
                + html.escape(str(r["source"]))
                + "</extra>",
            )
        )
    fig.update_layout(barmode="group", bargap=0.25, legend_title="source (leads submitted)")
    fig.update_yaxes(
        title="share of the source's submitted leads", tickformat=".0%", range=[0, 1.12]
    )
    return fig


def sankey_figure(paths: pd.DataFrame, title: str = "Where leads go") -> go.Figure:
    """Lead paths as a Sankey: columns of ``paths`` name the stages in order (e.g.
    source -> outcome -> recipient) and ``leads`` counts each path."""
    require(paths, ["leads"], "sankey_figure")
    stages = [c for c in paths.columns if c != "leads"]
    fig = figure(title, data=paths, height=480)
    if paths.empty or len(stages) < 2:
        return empty(fig, "no lead paths")
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
        colors.append(
            OUTCOME_COLORS.get(
                {
                    "delivered": "success",
                    "converted": "success",
                    "rejected": "failure",
                    "filtered": "failure",
                    "buyer_rejected": "failure",
                    "delivery_error": "error",
                    "returned": "error",
                }.get(label, ""),
                PALETTE[col % len(PALETTE)],
            )
        )
    # each node says how many leads pass it; each link takes the colour of the outcome
    # it carries (the node it ends in, or it starts from for the last column)
    through = [0] * len(labels)
    for b_, v in zip(dst, val, strict=True):
        through[b_] += v
    first = set(src) - set(dst)
    out_of = {i: sum(v for a_, v in zip(src, val, strict=True) if a_ == i) for i in first}
    shown = [f"{lab} ({(out_of.get(i) or through[i]):,})" for i, lab in enumerate(labels)]

    def _link_color(a_: int, b_: int) -> str:
        c = colors[b_] if colors[b_] in OUTCOME_COLORS.values() else colors[a_]
        c = c.lstrip("#")
        r, g, bl = (int(c[i : i + 2], 16) for i in (0, 2, 4))
        return f"rgba({r},{g},{bl},0.35)"

    fig.add_trace(
        go.Sankey(
            arrangement="snap",
            node=dict(label=shown, pad=18, thickness=16, color=colors, line=dict(width=0)),
            link=dict(
                source=src,
                target=dst,
                value=val,
                color=[_link_color(a_, b_) for a_, b_ in zip(src, dst, strict=True)],
                hovertemplate="%{source.label} → %{target.label}: %{value:,} leads<extra></extra>",
            ),
        )
    )
    return fig


#: Columns that say how many leads or events a rate of the same row is a share of.
_COUNT_COLUMNS = ("decided", "evaluated", "events", "calls", "leads")


def hour_heatmap(
    df: pd.DataFrame,
    *,
    row: str = "recipient",
    value: str = "acceptance_rate",
    title: str | None = None,
    tz: str | None = None,
    min_count: int = 10,
) -> go.Figure:
    """Hour-of-day heatmap: one row per ``row`` value, columns 0-23, colour = ``value``.

    A rate over fewer than ``min_count`` leads (when the data says how many: a column
    such as ``decided``) is left blank rather than coloured as an alarming 0% or 100%,
    and the hover says how many there were; the note under the chart says so."""
    require(df, [row, "hour", value], "hour_heatmap")
    tz = tz or (df.attrs.get("tz") if hasattr(df, "attrs") else None)
    fig = figure(
        title
        or f"{value.replace('_', ' ').capitalize()} by hour of day" + (f" ({tz})" if tz else ""),
        data=df,
        height=150 + 32 * max(1, df[row].nunique()),
    )
    if df.empty:
        return empty(fig, "no data")
    is_rate = "rate" in value or "share" in value
    count = next((c for c in _COUNT_COLUMNS if c in df.columns and c != value), None)
    grid = df.pivot_table(index=row, columns="hour", values=value, aggfunc="mean").reindex(
        columns=range(24)
    )
    if count is not None:
        counts = df.pivot_table(index=row, columns="hour", values=count, aggfunc="sum")
        counts = counts.reindex(index=grid.index, columns=range(24)).fillna(0)
    else:
        counts = pd.DataFrame(float("nan"), index=grid.index, columns=range(24))
    few = (counts < min_count) & grid.notna() if count is not None and is_rate else None
    if few is not None:
        grid = grid.mask(few)
    # blue is good, vermilion bad: no red against green (colour-blind safe); the bad
    # end is a low acceptance, but a high failure, error or rejection rate
    bad_high = any(w in value for w in ("fail", "error", "reject", "timeout", "return"))
    fmt = ".0%" if is_rate else ",.1f"
    fig.add_trace(
        go.Heatmap(
            z=grid.values,
            x=[f"{h:02d}" for h in grid.columns],
            y=[str(i) for i in grid.index],
            customdata=counts.values,
            colorscale=(DIVERGING if bad_high else [[1 - x, c] for x, c in DIVERGING[::-1]])
            if is_rate
            else SEQUENTIAL,
            zmin=0 if is_rate else None,
            zmax=1 if is_rate else None,
            colorbar=dict(title=value.replace("_", " "), tickformat=".0%" if is_rate else None),
            hovertemplate=f"{row}: %{{y}}<br>hour: %{{x}}<br>{value.replace('_', ' ')}: "
            f"%{{z:{fmt}}}"
            + (f"<br>{count}: %{{customdata:,}}" if count else "")
            + "<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    fig.update_xaxes(title="hour of day", showgrid=False, dtick=1, tickangle=0)
    fig.update_yaxes(title=None, showgrid=False, autorange="reversed")
    note = "blank: no leads that hour" + (
        f", or fewer than {min_count} {count} (too few for a rate)" if few is not None else ""
    )
    fig.add_annotation(
        text=note,
        showarrow=False,
        xref="paper",
        yref="paper",
        x=0,
        y=-0.02,
        yanchor="top",
        yshift=-62,
        font=dict(size=11, color="#607D8B"),
        xanchor="left",
    )
    fig.update_layout(margin=dict(b=100))
    return fig


def duration_box(samples: pd.DataFrame, title: str = "Step durations") -> go.Figure:
    """Box plot of ``duration_ms`` per ``step_name`` (slowest median on top)."""
    require(samples, ["step_name", "duration_ms"], "duration_box")
    fig = figure(title, data=samples, height=max(320, 60 + 34 * samples.step_name.nunique()))
    if samples.empty:
        return empty(fig, "no step durations")
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
            )
        )
    fig.update_layout(showlegend=False)
    fig.update_xaxes(title="duration (ms)")
    fig.add_vline(
        x=2000,
        line=dict(color=OUTCOME_COLORS["failure"], dash="dash"),
        annotation_text="2000 ms alert",
        annotation_position="bottom right",
    )
    return fig


def step_durations_figure(steps: pd.DataFrame, title: str = "Average step duration") -> go.Figure:
    """Average and maximum duration per step (from ``analytics.step_durations``)."""
    require(steps, ["step_name", "avg_duration", "max_duration"], "step_durations_figure")
    fig = figure(title, data=steps, height=max(320, 60 + 30 * len(steps)))
    if steps.empty:
        return empty(fig, "no steps")
    d = steps.sort_values("avg_duration")
    fig.add_trace(
        go.Bar(
            y=d.step_name,
            x=d.avg_duration,
            orientation="h",
            name="average",
            marker_color=PALETTE[0],
            hovertemplate="%{y}: %{x:,.0f} ms<extra>average</extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            y=d.step_name,
            x=d.max_duration,
            mode="markers",
            name="maximum",
            marker=dict(symbol="line-ns-open", size=14, color="#37474F"),
        )
    )
    fig.update_xaxes(title="ms")
    fig.add_vline(x=2000, line=dict(color=OUTCOME_COLORS["failure"], dash="dash"))
    return fig


def rejection_bars(
    rejections: pd.DataFrame, title: str = "Why leads are rejected", top: int = 12
) -> go.Figure:
    """Rejections by reason (the ``top`` reasons, the rest grouped), stacked by source
    when the data has a ``source`` column; the full reason shows on hover."""
    require(rejections, ["rejection_reason", "rejections"], "rejection_bars")
    if rejections.empty:
        return empty(figure(title, data=rejections, height=300), "no rejections")
    d = rejections.copy()
    total = d.groupby("rejection_reason").rejections.sum().sort_values(ascending=False)
    if len(total) > top:
        others = set(total.index[top:])
        label = f"({len(others)} other reasons)"
        d["rejection_reason"] = d.rejection_reason.where(~d.rejection_reason.isin(others), label)
        total = d.groupby("rejection_reason").rejections.sum().sort_values(ascending=False)
        total = pd.concat([total.drop(label), total[[label]]])  # the rest goes last
    order = list(total.index[::-1])  # largest on top
    labels = [wrap(r) for r in order]  # whole reasons, on two lines when long
    fig = figure(title, data=rejections, height=max(300, 90 + 38 * len(order)))
    if "source" in d.columns:
        for i, (source, part) in enumerate(d.groupby("source", sort=True)):
            values = part.groupby("rejection_reason").rejections.sum().reindex(order, fill_value=0)
            fig.add_trace(
                go.Bar(
                    y=labels,
                    x=values.values,
                    orientation="h",
                    name=str(source),
                    customdata=order,
                    marker_color=PALETTE[i % len(PALETTE)],
                    hovertemplate="%{customdata}<br>%{x:,} rejections<extra>"
                    + html.escape(str(source))
                    + "</extra>",
                )
            )
        fig.update_layout(barmode="stack", legend_title="source", legend_traceorder="normal")
    else:
        share = total / total.sum()
        fig.add_trace(
            go.Bar(
                y=labels,
                x=total.reindex(order).values,
                orientation="h",
                marker_color=OUTCOME_COLORS["failure"],
                customdata=order,
                text=[pct(share[r]) for r in order],
                textposition="outside",
                cliponaxis=False,
                hovertemplate="%{customdata}<br>%{x:,} rejections<extra></extra>",
            )
        )
        fig.update_layout(showlegend=False)
    fig.update_yaxes(categoryorder="array", categoryarray=labels)
    fig.update_xaxes(title="rejections")
    return fig


def success_rates_figure(rates: pd.DataFrame, title: str | None = None) -> go.Figure:
    """The guide's Success Rates: percentage of each outcome per event type, or per step
    (``analytics.success_rates(session, by="step")``: each buyer's or service's shares).
    Per type most bars are one outcome at 100%; the chart says so."""
    key = "step_name" if "step_name" in rates.columns else "type"
    require(rates, [key, "outcome", "percentage"], "success_rates_figure")
    what = "step" if key == "step_name" else "event type"
    fig = figure(
        title or f"Outcomes by {what}",
        data=rates,
        barmode="stack",
        height=max(300, 80 + 40 * rates[key].nunique()),
    )
    if rates.empty:
        return empty(fig, "no events")
    if key == "type" and rates.groupby("type").outcome.nunique().max() == 1:
        fig.add_annotation(
            text="each event type has one outcome here: see success_rates(..., by='step')",
            showarrow=False,
            xref="paper",
            yref="paper",
            x=0,
            y=1.02,
            xanchor="left",
            yanchor="bottom",
            font=dict(size=11, color="#607D8B"),
        )
    for outcome, part in rates.groupby("outcome", sort=False):
        fig.add_trace(
            go.Bar(
                y=part[key],
                x=part.percentage,
                orientation="h",
                name=str(outcome),
                marker_color=OUTCOME_COLORS.get(outcome, "#607D8B"),
                customdata=part.get("count"),
                hovertemplate="%{y}: %{x:.1f}% (%{customdata:,} events)<extra>"
                + str(outcome)
                + "</extra>",
            )
        )
    fig.update_xaxes(title="% of events", range=[0, 100])
    return fig


def source_performance_figure(perf: pd.DataFrame, title: str = "Source performance") -> go.Figure:
    """Where each source's revenue goes: one bar per source, its revenue split into
    costs (lead and enhancement) and profit, so a small cost stays visible beside a
    large profit; a loss reaches below zero. Acceptance and delivery rates on hover."""
    require(perf, ["source", "revenue", "profit"], "source_performance_figure")
    fig = figure(title, data=perf, barmode="relative", height=440)
    if perf.empty:
        return empty(fig, "no sources")
    d = perf.sort_values("revenue", ascending=False)
    cost = d.revenue - d.profit
    custom = d[[c for c in ("submitted", "acceptance_rate", "delivery_rate") if c in d]].to_numpy()
    rates = (
        "<br>submitted %{customdata[0]:,}<br>acceptance %{customdata[1]:.0%}"
        "<br>delivery %{customdata[2]:.0%}"
        if custom.shape[1] == 3
        else ""
    )
    fig.add_trace(
        go.Bar(
            x=d.source,
            y=cost,
            name="costs (leads + enhancements)",
            marker_color="#8C6D31",
            hovertemplate="%{x}<br>costs $%{y:,.2f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Bar(
            x=d.source,
            y=d.profit,
            name="profit",
            marker_color=[
                OUTCOME_COLORS["success"] if p >= 0 else OUTCOME_COLORS["failure"] for p in d.profit
            ],
            text=[f"${v:,.0f}" for v in d.profit],
            textposition="inside",
            customdata=custom if len(custom) else None,
            hovertemplate="%{x}<br>profit $%{y:,.2f}" + rates + "<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=d.source,
            y=[max(r, c) for r, c in zip(d.revenue, cost, strict=True)],
            mode="text",
            # costs are often a few % of revenue: too thin a segment to label, so the
            # figure says them above the bar
            text=[
                f"revenue ${r:,.0f}<br>costs ${c:,.0f} ({c / r:.1%})" if r else f"costs ${c:,.0f}"
                for r, c in zip(d.revenue, cost, strict=True)
            ],
            textposition="top center",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.update_yaxes(title="USD (costs + profit = revenue)", tickprefix="$")
    top = float(max(d.revenue.max(), cost.max(), 0))
    if top > 0:
        fig.update_yaxes(range=[min(float(d.profit.min()), 0) * 1.15, top * 1.18])
    fig.update_layout(legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"))
    return fig


def enhancement_value_figure(value: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Delivery rate of leads the enhancement validated against those it did not, among
    the leads that reached it (``analytics.enhancement_value``), with each group's size."""
    require(value, ["group", "delivery_rate"], "enhancement_value_figure")
    service = value.attrs.get("service", "the enhancement")
    fig = figure(title or f"Is {service} worth it?", data=value, height=380)
    if value.empty:
        return empty(fig, "no leads reached it")
    sizes = value.leads if "leads" in value else pd.Series([None] * len(value))
    names = {"with": "validated", "without": "not validated"}
    x = [
        f"{names.get(g, g)}<br>({n:,} leads)" if n is not None else names.get(g, g)
        for g, n in zip(value.group, sizes, strict=True)
    ]
    fig.add_trace(
        go.Bar(
            x=x,
            y=value.delivery_rate,
            marker_color=[PALETTE[0], "#90A4AE"][: len(value)],
            text=[pct(v) for v in value.delivery_rate],
            textposition="outside",
            cliponaxis=False,
            width=0.5,
        )
    )
    fig.update_yaxes(
        title="delivered (share of the group's leads)", tickformat=".0%", range=[0, 1.1]
    )
    fig.update_xaxes(title=dict(text=f"accepted leads that reached {service}", standoff=16))
    fig.update_layout(showlegend=False, margin=dict(b=90))
    return fig


def buyer_figure(buyers: pd.DataFrame, title: str = "Buyer acceptance") -> go.Figure:
    """Acceptance rate per buyer against the guide's 70% line, response time on hover."""
    require(buyers, ["recipient", "acceptance_rate"], "buyer_figure")
    fig = figure(title, data=buyers, height=max(300, 80 + 36 * len(buyers)))
    if buyers.empty:
        return empty(fig, "no buyers")
    d = buyers.sort_values("acceptance_rate")
    colors = [
        OUTCOME_COLORS["failure"] if a < 0.7 else OUTCOME_COLORS["success"]
        for a in d.acceptance_rate
    ]
    fig.add_trace(
        go.Bar(
            y=d.recipient,
            x=d.acceptance_rate,
            orientation="h",
            marker_color=colors,
            text=[pct(a) for a in d.acceptance_rate],
            textposition="outside",
            cliponaxis=False,
        )
    )
    fig.add_vline(
        x=0.7,
        line=dict(color="#37474F", dash="dash"),
        annotation_text="70%",
        annotation_position="top",
    )
    fig.update_xaxes(title="acceptance rate", tickformat=".0%", range=[0, 1.1])
    fig.update_layout(showlegend=False)
    return fig


def errors_figure(errors: pd.DataFrame, title: str = "Technical errors by type") -> go.Figure:
    """recipient.error / enhancement.error counts by error type (and entity)."""
    require(errors, ["error_type", "errors"], "errors_figure")
    fig = figure(
        title, data=errors, barmode="stack", height=max(300, 80 + 34 * errors.error_type.nunique())
    )
    if errors.empty:
        return empty(fig, "no technical errors")
    by = "entity_name" if "entity_name" in errors.columns else None
    groups = errors.groupby(by, sort=True) if by else [("all", errors)]
    for i, (name, part) in enumerate(groups):
        fig.add_trace(
            go.Bar(
                y=part.error_type,
                x=part.errors,
                orientation="h",
                name=str(name),
                marker_color=PALETTE[i % len(PALETTE)],
            )
        )
    # the most frequent error on top, ties by name: one order whatever the rows' order
    totals = errors.groupby("error_type").errors.sum().reset_index()
    order = totals.sort_values(["errors", "error_type"], ascending=[True, False]).error_type
    fig.update_yaxes(categoryorder="array", categoryarray=list(order))
    fig.update_xaxes(title="errors")
    return fig


def timeouts_figure(over_time: pd.DataFrame, title: str = "Timeouts over time") -> go.Figure:
    """Timeouts (or errors) per time bucket, one line per entity."""
    require(over_time, ["bucket", "timeouts"], "timeouts_figure")
    fig = figure(title, data=over_time, height=360)
    if over_time.empty:
        return empty(fig, "no timeouts")
    by = "entity_name" if "entity_name" in over_time.columns else None
    if by:  # services and buyers that never timed out would only add flat lines
        busy = over_time.groupby(by).timeouts.sum()
        over_time = over_time[over_time[by].isin(busy[busy > 0].index)]
    groups = over_time.groupby(by, sort=True) if by else [("timeouts", over_time)]
    for i, (name, part) in enumerate(groups):
        fig.add_trace(
            go.Scatter(
                x=part.bucket,
                y=part.timeouts,
                mode="lines",
                name=str(name),
                line=dict(color=PALETTE[i % len(PALETTE)], width=2),
            )
        )
    fig.update_yaxes(title="timeouts per bucket", rangemode="tozero")
    return fig


def retry_figure(retries: pd.DataFrame, title: str = "Retry effectiveness") -> go.Figure:
    """Share of retries that succeeded, by attempt number."""
    require(retries, ["retry_count", "retries", "success_rate"], "retry_figure")
    fig = figure(title, data=retries, height=340)
    if retries.empty:
        return empty(fig, "no retries")
    fig.add_trace(
        go.Bar(
            x=retries.retry_count.astype(str),
            y=retries.success_rate,
            marker_color=PALETTE[0],
            customdata=retries.retries,
            text=[
                f"{pct(v)} of {n:,}"
                for v, n in zip(retries.success_rate, retries.retries, strict=True)
            ],
            textposition="outside",
            cliponaxis=False,
            width=0.5,  # one attempt number is one bar, not a wall
            hovertemplate="attempt %{x}: %{y:.0%} of %{customdata:,} retries succeeded<extra></extra>",
        )
    )
    fig.update_xaxes(title="retry attempt", type="category")  # attempts 1, 2, … not 0.6-1.4
    if len(retries) < 4:  # keep a lone bar narrow: room for the attempts that did not happen
        fig.update_xaxes(range=[-1.5, len(retries) + 0.5])
    fig.update_yaxes(title="succeeded", tickformat=".0%", range=[0, 1.1])
    return fig


def bubbleup_figure(
    ranked: pd.DataFrame, top: int = 12, title: str = "What sets the selection apart"
) -> go.Figure:
    """The most over-represented values of a selection (``investigate.bubbleup``): for
    each, the share of the selected leads that hold it beside the share of the baseline
    that does, ranked by odds ratio, the ratio written at the end ("only in the
    selection" where the baseline has none, rather than a ratio of thousands that only
    the smoothing made)."""
    require(ranked, ["attribute", "value", "odds_ratio"], "bubbleup_figure")
    n = min(top, len(ranked))
    fig = figure(title, data=ranked, height=max(320, 110 + 44 * n), barmode="group")
    if ranked.empty:
        return empty(fig, "nothing stands out")
    d = ranked.head(top).iloc[::-1]
    labels = [
        wrap(f"{str(a).removeprefix('field.')} = {v}", 40, 2)
        for a, v in zip(d.attribute, d.value, strict=True)
    ]
    if not {"selection_share", "baseline_share"} <= set(d.columns):  # odds ratios only
        fig.add_trace(go.Bar(y=labels, x=d.odds_ratio, orientation="h", marker_color=PALETTE[3]))
        fig.update_xaxes(title="odds ratio (selection vs baseline)", type="log")
        return fig
    sel_n, base_n = ranked.attrs.get("selection"), ranked.attrs.get("baseline")
    for col, name, color, n_of in (
        ("baseline_share", "baseline", "#B0BEC5", base_n),
        ("selection_share", "selection", PALETTE[3], sel_n),
    ):
        fig.add_trace(
            go.Bar(
                y=labels,
                x=d[col],
                orientation="h",
                name=f"{name} ({n_of:,} leads)" if n_of else name,
                marker_color=color,
                hovertemplate=f"%{{y}}<br>{name}: %{{x:.1%}}<extra></extra>",
            )
        )
    ratio = [
        "only in the selection" if b == 0 else f"{o:,.1f}× the odds"
        for o, b in zip(d.odds_ratio, d.baseline_share, strict=True)
    ]
    for y, x, text in zip(
        labels, d[["selection_share", "baseline_share"]].max(axis=1), ratio, strict=True
    ):
        fig.add_annotation(
            x=x,
            y=y,
            text=text,
            showarrow=False,
            xanchor="left",
            xshift=6,
            font=dict(size=11, color="#455A64"),
        )
    fig.update_xaxes(
        title="share of the group's leads holding the value",
        tickformat=".0%",
        range=[0, min(1.0, float(d[["selection_share", "baseline_share"]].max().max())) * 1.35],
    )
    fig.update_yaxes(title=None, automargin=True)
    fig.update_layout(
        legend=dict(
            orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right", traceorder="reversed"
        )
    )
    return fig


def alerts_figure(alerts: pd.DataFrame, title: str = "Alerts") -> go.Figure:
    """When each rule fired, per subject (``alerts.evaluate``)."""
    require(alerts, ["rule", "subject", "window_start", "value"], "alerts_figure")
    fig = figure(
        title,
        data=alerts,
        height=max(300, 80 + 30 * alerts.subject.nunique() if len(alerts) else 300),
    )
    if alerts.empty:
        return empty(fig, "no alerts fired")
    for i, (rule, part) in enumerate(alerts.groupby("rule", sort=True)):
        fig.add_trace(
            go.Scatter(
                x=part.window_start,
                y=part.subject,
                mode="markers",
                name=str(rule).replace("_", " "),
                marker=dict(size=9, color=PALETTE[i % len(PALETTE)], symbol="square"),
                hovertext=[f"{rule}: {v:.3g}" for v in part.value],
                hoverinfo="text+x",
            )
        )
    fig.update_yaxes(title=None)
    return fig


SEVERITY_COLORS = {"critical": "#D55E00", "high": "#E69F00", "warning": "#56B4E9"}


def alert_episodes_figure(episodes: pd.DataFrame, title: str = "Alerts over time") -> go.Figure:
    """Each alert as a bar from when it started to when it ended, a row per rule and
    subject, coloured by severity (the frame of ``widgets.AlertMonitor.frame()``)."""
    require(episodes, ["rule", "subject", "started", "ended", "severity"], "alert_episodes_figure")
    rows = (
        episodes.rule.astype(str).str.replace("_", " ") + ": " + episodes.subject.astype(str)
    ).map(short)
    said = episodes.copy()
    said.attrs = dict(episodes.attrs)
    if len(episodes):  # the alerts' own span, and how many, when the frame does not say
        said.attrs.setdefault("first_event", episodes.started.min())
        said.attrs.setdefault("last_event", episodes.ended.max())
        said.attrs.setdefault("n", len(episodes))
        said.attrs.setdefault("n_of", "alerts")
    fig = figure(title, data=said, height=max(220, 100 + 26 * rows.nunique()), barmode="overlay")
    if episodes.empty:
        return empty(fig, "no alert fired")
    df = episodes.assign(
        row=rows, rank=episodes.severity.map({k: i for i, k in enumerate(SEVERITY_COLORS)})
    ).sort_values("rank", kind="stable")
    for severity, part in df.groupby("severity", sort=False):
        length = (part.ended - part.started).dt.total_seconds() * 1000
        fig.add_trace(
            go.Bar(
                y=part.row,
                x=length,
                base=part.started,
                orientation="h",
                name=str(severity),
                marker_color=SEVERITY_COLORS.get(str(severity), "#607D8B"),
                hovertext=[
                    f"{r.row}<br>{r.started:%Y-%m-%d %H:%M} to {r.ended:%Y-%m-%d %H:%M} UTC"
                    for r in part.itertuples()
                ],
                hoverinfo="text",
            )
        )
    fig.update_xaxes(type="date", title=None)
    fig.update_yaxes(title=None, categoryorder="category descending", automargin=True)
    fig.update_layout(legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"))
    return fig
