"""Every analysis recomputed independently: pandas over the raw events of the simulated
week (not the analyses' SQL, not the lead summary), over a window that does not align
with hours, in a zone half an hour from UTC. Figures must match exactly (floats to 1e-9).
"""

import json

import numpy as np
import pandas as pd
import pytest

from workbench import analytics
from workbench.analysis import business

TZ = "Asia/Kolkata"


@pytest.fixture(scope="module")
def week(sample_week):
    return sample_week.store


@pytest.fixture(scope="module")
def raw(week):
    ev = week.sql(
        "SELECT seq, type, timestamp, lead_id, outcome, duration_ms, step_name, entity_name, "
        "rejection_reason, error_type, http_status, cost, revenue, feedback_type, retry_count, "
        "CASE WHEN type = 'feedback.received' THEN CAST(metadata AS VARCHAR) END AS meta "
        "FROM events"
    )
    ev["timestamp"] = pd.to_datetime(ev.timestamp, utc=True)
    return ev


@pytest.fixture(scope="module")
def window(raw):
    lo, hi = raw.timestamp.min(), raw.timestamp.max()
    return lo + pd.Timedelta("1 days 03:17:29"), hi - pd.Timedelta("1 days 05:41:13")


@pytest.fixture(scope="module")
def inside(raw, window):
    since, until = window
    return raw[(raw.timestamp >= since) & (raw.timestamp < until)]


@pytest.fixture(scope="module")
def leads(raw):
    """One row per lead, from its events."""
    ev = raw.sort_values(["timestamp", "seq"])
    g = ev.groupby("lead_id")
    src = ev[ev.type.str.startswith("source.")].groupby("lead_id").entity_name.first()
    ok = ev[(ev.type == "recipient.delivered") & (ev.outcome == "success")]
    fb = ev[ev.type == "feedback.received"]
    returned = fb[fb.feedback_type == "return"].copy()
    returned["adj"] = [-float(json.loads(m).get("revenue_adjustment") or 0) for m in returned.meta]
    out = pd.DataFrame(
        {
            "source": src,
            "submitted_at": ev[ev.type == "source.submitted"].groupby("lead_id").timestamp.min(),
            "submitted": g.type.apply(lambda t: (t == "source.submitted").any()),
            "accepted": g.type.apply(lambda t: (t == "source.accepted").any()),
            "delivered": ok.groupby("lead_id").size().reindex(g.size().index).fillna(0) > 0,
            "converted": fb[fb.feedback_type == "conversion"]
            .groupby("lead_id")
            .size()
            .reindex(g.size().index)
            .fillna(0)
            > 0,
            "revenue": ok.groupby("lead_id").revenue.sum().reindex(g.size().index).fillna(0),
            "cost": g.cost.sum(),
            "lead_cost": ev[ev.type.str.startswith("source.")].groupby("lead_id").cost.sum(),
            "enhancement_cost": ev[ev.type.str.startswith("enhancement.")]
            .groupby("lead_id")
            .cost.sum(),
            "returned": returned.groupby("lead_id").adj.sum(),
        }
    )
    out["source"] = out.source.fillna("unknown")
    for c in ("lead_cost", "enhancement_cost", "returned"):
        out[c] = out[c].fillna(0.0)
    return out


def same(got: pd.DataFrame, want: pd.DataFrame, keys: list[str]):
    """Equal rows by key: counts exactly, floats to 1e-9 relative."""
    g = got.set_index(keys).sort_index()
    w = want.set_index(keys).sort_index()
    assert list(g.index) == list(w.index)
    for col in w.columns:
        a, b = g[col].astype(float).to_numpy(), w[col].astype(float).to_numpy()
        assert np.allclose(a, b, rtol=1e-9, atol=1e-9, equal_nan=True), (col, g[col], w[col])


def local_hour(ts: pd.Series) -> pd.Series:
    return ts.dt.tz_convert(TZ).dt.hour


def test_step_durations(week, inside, window):
    e = inside[inside.duration_ms.notna() & (inside.type != "flow.completed")]
    want = e.groupby("step_name").duration_ms.agg(
        avg_duration="mean", min_duration="min", max_duration="max", executions="count"
    )
    got = analytics.step_durations(week, since=window[0], until=window[1])
    same(got, want.reset_index(), ["step_name"])


def test_success_rates(week, inside, window):
    e = inside[inside.type.str.startswith("recipient.")]
    want = e.groupby(["type", "outcome"]).size().rename("count").reset_index()
    want["percentage"] = want["count"] * 100 / want.groupby("type")["count"].transform("sum")
    got = analytics.success_rates(week, since=window[0], until=window[1])
    same(got, want, ["type", "outcome"])


def test_rejection_analysis_with_sources(week, inside, window, leads):
    e = inside[
        (inside.outcome == "failure")
        & inside.type.isin(["source.rejected", "filter.failed", "recipient.failed"])
    ].assign(
        stage=lambda d: d.type,
        rejection_reason=lambda d: d.rejection_reason.fillna("unknown"),
        source=lambda d: d.lead_id.map(leads.source).fillna("unknown"),
    )
    want = e.groupby(["stage", "rejection_reason", "source"]).size().rename("rejections")
    want = want.reset_index()
    want["share"] = want.rejections / want.groupby("stage").rejections.transform("sum")
    got = analytics.rejection_analysis(week, by_source=True, since=window[0], until=window[1])
    same(got, want, ["stage", "rejection_reason", "source"])


def test_enhancement_value_like_for_like(week, raw, leads, window):
    svc = "Phone Validation"
    calls = raw[raw.type.str.startswith("enhancement.") & (raw.entity_name == svc)]
    validated = (
        calls.assign(ok=(calls.type == "enhancement.success") & (calls.outcome == "success"))
        .groupby("lead_id")
        .ok.any()
    )
    cost = calls.groupby("lead_id").cost.sum()
    sel = leads[
        leads.accepted & (leads.submitted_at >= window[0]) & (leads.submitted_at < window[1])
    ]
    sel = sel[sel.index.isin(validated.index)]
    sel = sel.assign(
        group=np.where(validated.reindex(sel.index), "with", "without"),
        svc_cost=cost.reindex(sel.index).fillna(0.0),
    )
    want = sel.groupby("group").agg(
        leads=("delivered", "size"),
        delivered=("delivered", "sum"),
        enhancement_cost=("svc_cost", "sum"),
        revenue=("revenue", "sum"),
    )
    want["delivery_rate"] = want.delivered / want.leads
    got = analytics.enhancement_value(week, svc, since=window[0], until=window[1])
    same(got[["group", *want.columns]], want.reset_index(), ["group"])


def _by_source_submitted(leads, window):
    sel = leads[(leads.submitted_at >= window[0]) & (leads.submitted_at < window[1])]
    return sel.groupby("source")


@pytest.mark.parametrize("basis", ["submission", "event"])
def test_source_performance(week, inside, leads, window, basis):
    if basis == "submission":
        sel = leads[(leads.submitted_at >= window[0]) & (leads.submitted_at < window[1])]
        want = sel.groupby("source").agg(
            submitted=("submitted", "sum"),
            accepted=("accepted", "sum"),
            delivered=("delivered", "sum"),
            lead_cost=("lead_cost", "sum"),
            enhancement_cost=("enhancement_cost", "sum"),
            revenue=("revenue", "sum"),
            returned_revenue=("returned", "sum"),
            cost=("cost", "sum"),
        )
    else:
        e = inside.assign(source=inside.lead_id.map(leads.source).fillna("unknown"))
        ok = (e.type == "recipient.delivered") & (e.outcome == "success")
        ret = e[(e.type == "feedback.received") & (e.feedback_type == "return")]
        want = pd.DataFrame(
            {
                "submitted": (e.type == "source.submitted").groupby(e.source).sum(),
                "accepted": (e.type == "source.accepted").groupby(e.source).sum(),
                "delivered": ok.groupby(e.source).sum(),
                "lead_cost": e.cost.where(e.type.str.startswith("source.")).groupby(e.source).sum(),
                "enhancement_cost": e.cost.where(e.type.str.startswith("enhancement."))
                .groupby(e.source)
                .sum(),
                "revenue": e.revenue.where(ok).groupby(e.source).sum(),
                "returned_revenue": pd.Series(
                    [-float(json.loads(m).get("revenue_adjustment") or 0) for m in ret.meta],
                    index=ret.index,
                    dtype=float,
                )
                .groupby(ret.source)
                .sum(),
                "cost": e.cost.groupby(e.source).sum(),
            }
        ).fillna(0.0)
    want["acceptance_rate"] = want.accepted / want.submitted
    want["delivery_rate"] = want.delivered / want.accepted
    want["net_revenue"] = want.revenue - want.returned_revenue
    want["profit"] = want.revenue - want.cost
    want["net_profit"] = want.profit - want.returned_revenue
    got = analytics.source_performance(week, basis=basis, since=window[0], until=window[1])
    same(got, want.drop(columns="cost").reset_index(), ["source"])


def test_buyer_behaviour(week, inside, window):
    e = inside[inside.type.str.startswith("recipient.")]
    ok = (e.type == "recipient.delivered") & (e.outcome == "success")
    decided = e.type.isin(["recipient.delivered", "recipient.failed"])
    by = e.entity_name
    want = pd.DataFrame(
        {
            "attempts": e.groupby(by).size(),
            "accepted": ok.groupby(by).sum(),
            "rejected": (e.type == "recipient.failed").groupby(by).sum(),
            "errors": (e.type == "recipient.error").groupby(by).sum(),
            "avg_response_ms": e.duration_ms.groupby(by).mean(),
            "revenue": e.revenue.fillna(0).groupby(by).sum(),
        }
    )
    want["acceptance_rate"] = want.accepted / decided.groupby(by).sum()
    fb = inside[inside.type == "feedback.received"]
    want["returns"] = (
        (fb.feedback_type == "return").groupby(fb.entity_name).sum().reindex(want.index).fillna(0)
    )
    ret = fb[fb.feedback_type == "return"]
    taken = pd.Series(
        [-float(json.loads(m).get("revenue_adjustment") or 0) for m in ret.meta],
        index=ret.index,
        dtype=float,
    )
    want["returned_revenue"] = taken.groupby(ret.entity_name).sum().reindex(want.index).fillna(0)
    want["net_revenue"] = want.revenue - want.returned_revenue
    want.index.name = "recipient"
    got = analytics.buyer_behaviour(week, since=window[0], until=window[1])
    same(got[["recipient", *want.columns]], want.reset_index(), ["recipient"])


def test_buyer_acceptance_by_local_hour(week, inside, window):
    e = inside[inside.type.isin(["recipient.delivered", "recipient.failed"])]
    e = e.assign(
        hour=local_hour(e.timestamp),
        ok=(e.type == "recipient.delivered") & (e.outcome == "success"),
    )
    want = e.groupby(["entity_name", "hour"]).agg(accepted=("ok", "sum"), decided=("ok", "size"))
    want["acceptance_rate"] = want.accepted / want.decided
    want.index.names = ["recipient", "hour"]
    got = analytics.buyer_acceptance_by_hour(week, tz=TZ, since=window[0], until=window[1])
    same(got, want.reset_index(), ["recipient", "hour"])


def test_buyer_rejection_reasons(week, inside, window):
    e = inside[inside.type == "recipient.failed"]
    e = e.assign(rejection_reason=e.rejection_reason.fillna("unknown"))
    want = e.groupby(["entity_name", "rejection_reason"]).size().rename("rejections").reset_index()
    want["share"] = want.rejections / want.groupby("entity_name").rejections.transform("sum")
    want = want.rename(columns={"entity_name": "recipient"})
    got = analytics.buyer_rejection_reasons(week, since=window[0], until=window[1])
    same(got, want, ["recipient", "rejection_reason"])


def test_funnel_by_submission_date(week, leads, window):
    want = _by_source_submitted(leads, window)[
        ["submitted", "accepted", "delivered", "converted"]
    ].sum()
    got = analytics.funnel_by_source(week, since=window[0], until=window[1])
    same(got[["source", *want.columns]], want.reset_index(), ["source"])
    paths = analytics.lead_paths(week, since=window[0], until=window[1])
    per_source = paths.groupby("source").leads.sum()
    assert per_source.to_dict() == _by_source_submitted(leads, window).size().to_dict()


def test_events_by_local_hour(week, inside, window):
    e = inside.assign(
        hour=local_hour(inside.timestamp), bad=inside.outcome.isin(["failure", "error"])
    )
    want = e.groupby(["type", "hour"]).agg(events=("bad", "size"), failures=("bad", "sum"))
    want["failure_rate"] = want.failures / want.events
    got = analytics.events_by_hour(week, tz=TZ, since=window[0], until=window[1])
    same(got, want.reset_index(), ["type", "hour"])
    # per step: each buyer's or service's hours, the failure rates that are not 0 or 1
    s = e[e.step_name.notna() & (e.type != "flow.completed")]
    want = s.groupby(["step_name", "hour"]).agg(events=("bad", "size"), failures=("bad", "sum"))
    want["failure_rate"] = want.failures / want.events
    got = analytics.events_by_hour(week, by="step", tz=TZ, since=window[0], until=window[1])
    same(got, want.reset_index(), ["step_name", "hour"])
    assert got.failure_rate.between(0.001, 0.999).any()


def test_business_hours_check(week, inside, window):
    e = inside[inside.type.isin(["filter.passed", "filter.failed"])]
    e = e.assign(hour=local_hour(e.timestamp), failed=e.type == "filter.failed")
    want = e.groupby(["entity_name", "hour"]).agg(
        failed=("failed", "sum"), evaluated=("failed", "size")
    )
    want["failure_rate"] = want.failed / want.evaluated
    want.index.names = ["filter", "hour"]
    got = analytics.business_hours_check(week, tz=TZ, since=window[0], until=window[1])
    same(
        got[["filter", "hour", "failed", "evaluated", "failure_rate"]],
        want.reset_index(),
        ["filter", "hour"],
    )
    assert (got.business_hours == got.hour.between(9, 16)).all()


def test_errors_by_type(week, inside, window):
    e = inside[
        ((inside.type == "enhancement.failure") & (inside.outcome == "failure"))
        | ((inside.outcome == "error") & ~inside.type.isin(["retry.attempted", "flow.completed"]))
    ]
    e = e.assign(error_type=e.error_type.fillna("unknown"))
    want = e.groupby(["entity_name", "type", "error_type"], dropna=False).agg(
        errors=("seq", "size"), avg_duration=("duration_ms", "mean")
    )
    got = analytics.errors_by_type(week, since=window[0], until=window[1])
    same(
        got[["entity_name", "type", "error_type", *want.columns]],
        want.reset_index(),
        ["entity_name", "type", "error_type"],
    )


def test_timeouts_over_time(week, inside, window):
    e = inside[inside.type.str.startswith(("recipient.", "enhancement."))]
    e = e.assign(
        bucket=e.timestamp.dt.floor("h"),
        timeout=e.error_type == "timeout",
        error=e.outcome == "error",
    )
    want = e.groupby(["bucket", "entity_name"]).agg(
        timeouts=("timeout", "sum"), errors=("error", "sum"), calls=("seq", "size")
    )
    want["timeout_rate"] = want.timeouts / want.calls
    got = analytics.timeouts_over_time(week, since=window[0], until=window[1])
    same(got, want.reset_index(), ["bucket", "entity_name"])


def test_retry_effectiveness(week, inside, window):
    e = inside[inside.type == "retry.attempted"]
    e = e.assign(ok=e.outcome == "success")
    want = e.groupby("retry_count").agg(
        retries=("ok", "size"), succeeded=("ok", "sum"), avg_retry_ms=("duration_ms", "mean")
    )
    want["success_rate"] = want.succeeded / want.retries
    got = analytics.retry_effectiveness(week, since=window[0], until=window[1])
    same(got, want.reset_index(), ["retry_count"])


def test_key_figures(week, leads, window):
    sel = leads[(leads.submitted_at >= window[0]) & (leads.submitted_at < window[1])]
    got = business.kpis(week, since=window[0], until=window[1]).set_index("kpi").value
    assert got["leads"] == len(sel)
    assert got["acceptance_rate"] == pytest.approx(sel.accepted.sum() / len(sel), rel=1e-9)
    assert got["delivery_rate"] == pytest.approx(sel.delivered.sum() / sel.accepted.sum(), rel=1e-9)
    assert got["revenue"] == pytest.approx(sel.revenue.sum(), rel=1e-9)
    assert got["returned_revenue"] == pytest.approx(sel.returned.sum(), rel=1e-9)
    assert got["costs"] == pytest.approx(sel.cost.sum(), rel=1e-9)
    assert got["profit"] == pytest.approx(sel.revenue.sum() - sel.cost.sum(), rel=1e-9)
    # the period of the same length just before
    length = window[1] - window[0]
    before = leads[(leads.submitted_at >= window[0] - length) & (leads.submitted_at < window[0])]
    prev = business.kpis(week, since=window[0], until=window[1]).set_index("kpi").previous
    assert prev["leads"] == len(before)
    assert prev["returned_revenue"] == pytest.approx(before.returned.sum(), rel=1e-9)
    assert prev["revenue"] == pytest.approx(before.revenue.sum(), rel=1e-9)
