"""The end of a lead's flow: ``flow.completed`` with the final outcome, cost and revenue;
then, days later, the buyer's feedback on delivered leads (conversions and returns).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _text as T
from ..chunk import Chunk
from ..plan import ERR, FAIL, FINAL, HOUR, OK, lognormal

__all__ = ["run", "run_completion"]


def run_completion(c: Chunk) -> None:
    p, m = c.plan, c.size
    idx = np.arange(m)
    ts = c.cursor
    dur = ts - c.arrived
    final = c.final
    delivered = final == 0
    bname = T.pick([T.lit(x) for x in p.buyer_names], np.maximum(c.buyer, 0))
    meta = T.cat(
        m,
        '{"total_duration_ms":',
        T.num(dur),
        ',"steps_executed":',
        T.num(c.steps),
        ',"final_outcome":',
        T.pick([T.lit(f) for f in FINAL], final),
        ',"total_cost":',
        T.money(c.cost),
        ',"total_revenue":',
        T.money(c.revenue),
        T.when(delivered, T.cat(m, ',"delivered_to":', bname), ""),
        "}",
    )
    outcome = np.where(delivered, OK, np.where(final == 4, ERR, FAIL)).astype(np.int8)
    c.emit("flow.completed", outcome, idx, ts, dur, -1, meta, c.snap(idx, -1))
    c.completed_at = ts
    c.flow_ms = dur


def run(c: Chunk) -> None:
    p, rng = c.plan, c.rng
    fb = p.flow.feedback
    if not c.deliveries:
        return
    lead = np.concatenate([x[0] for x in c.deliveries])
    bl_id = pa.concat_arrays([x[1] for x in c.deliveries])
    price = np.concatenate([x[2] for x in c.deliveries])
    n = len(lead)
    b = c.buyer[lead]
    pv = c.fields.get("phone.valid", ("bool", np.full(c.size, -1)))[1][lead]
    ev = c.fields.get("email.valid", ("bool", np.full(c.size, -1)))[1][lead]
    p_conv = p.b_conv[b] * np.where(pv == 1, 1.0, 0.6)
    p_ret = p.b_ret[b] * np.where(pv == 1, 1.0, 2.5) * np.where(ev == 0, 2.0, 1.0)
    u = rng.random(n)
    conv = u < p_conv
    ret = ~conv & (u < p_conv + p_ret)
    delay = np.maximum(
        lognormal(rng, fb.delay_hours.median, fb.delay_hours.sigma, n) * HOUR, 600_000
    ).astype(np.int64)
    ts = c.completed_at[lead] + np.maximum(delay, c.flow_ms[lead] + 1)
    keep = np.flatnonzero((conv | ret) & (ts < p.end_ms))
    if not len(keep):
        return
    lead, b, ts, conv, price = lead[keep], b[keep], ts[keep], conv[keep], price[keep]
    bl_id = bl_id.take(pa.array(keep))
    k = len(keep)
    ur = rng.random(k)
    cw = np.cumsum([w for _, w in fb.conversion_reasons])
    rw = np.cumsum([w for _, w in fb.return_reasons])
    c_codes = (ur[:, None] > cw[:-1]).sum(axis=1)
    c_reason = T.pick([T.lit(r) for r, _ in fb.conversion_reasons], c_codes)
    r_codes = (ur[:, None] > rw[:-1]).sum(axis=1)
    r_names = [r for r, _ in fb.return_reasons]
    if "Disconnected number" in r_names:
        # unvalidated phones come back as disconnected more often
        unval = c.fields.get("phone.valid", ("bool", np.full(c.size, -1)))[1][lead] != 1
        r_codes = np.where(
            unval & (rng.random(k) < 0.5), r_names.index("Disconnected number"), r_codes
        )
    r_reason = T.pick([T.lit(r) for r in r_names], r_codes)
    reason = pc.if_else(pa.array(conv), c_reason, r_reason)
    bname = T.pick([T.lit(x) for x in p.buyer_names], b)
    ent = np.array([p.ent_index[x] for x in p.buyer_names])[b]
    dur = lognormal(rng, 60, 0.7, k).astype(np.int64) + 5
    attempts = rng.integers(1, 6, k)
    adj = T.cat(k, ',"revenue_adjustment":-', T.money(price))
    meta = T.cat(
        k,
        '{"feedback_type":',
        T.when(conv, '"conversion"', '"return"'),
        ',"status":',
        T.when(conv, '"converted"', '"returned"'),
        ',"reason":',
        reason,
        ',"quality_metrics":{"contacted":',
        T.when(conv | (rng.random(k) < 0.4), "true", "false"),
        ',"contact_attempts":',
        T.num(attempts),
        '},"original_lead_id":"',
        c.lead_ids.take(pa.array(lead)),
        '","recipient":',
        bname,
        ',"buyer_lead_id":"',
        bl_id,
        '"',
        T.when(conv, "", adj),
        ',"step_name":"Feedback"}',
    )
    snap = c.snap(lead, -1, b)
    outcome = np.where(conv, OK, FAIL).astype(np.int8)
    c.emit("feedback.received", outcome, lead, ts, dur, ent, meta, snap)
    ts2 = ts + dur + 1 + rng.integers(0, 50, k)
    dur2 = lognormal(rng, fb.processed_ms.median, fb.processed_ms.sigma, k).astype(np.int64) + 1
    meta2 = T.cat(
        k,
        '{"updates_applied":{"status":',
        T.when(conv, '"converted"', '"returned"'),
        T.when(conv, "", adj),
        '},"metrics_changed":',
        T.when(conv, '["conversion_rate"]', '["return_rate","revenue"]'),
        ',"routing_impact":',
        T.when(conv, '"none"', '"source quality score lowered"'),
        ',"recipient":',
        bname,
        ',"step_name":"Feedback"}',
    )
    keep2 = ts2 < p.end_ms
    k2 = np.flatnonzero(keep2)
    c.emit(
        "feedback.processed",
        OK,
        lead[k2],
        ts=ts2[k2],
        dur=dur2[k2],
        ent=ent[k2],
        meta=meta2.take(pa.array(k2)),
        snap=snap[k2],
    )
