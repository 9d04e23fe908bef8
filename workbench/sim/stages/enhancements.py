"""An enhancement step: a call to its provider for each lead that has the field it
reads, with retries, timeouts and a circuit breaker; then a failure (no data) or a
success that appends fields to the lead. ``CallErrors`` and ``CallFailures`` effects
of incidents raise the error or failure rate while they last.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _text as T
from ..chunk import Chunk
from ..flow import SERVICES, Enhancement
from ..incidents import CallErrors, CallFailures
from ..plan import FAIL, MONEY, OK, PHONE_TYPES, error_weights
from .calls import attempts, emit_errors, emit_retries

__all__ = ["run"]

_FAILURES = {
    "phone_validation": ("no_match", "Carrier lookup returned no result for this number"),
    "email_verification": ("unverifiable", "Mail server did not confirm the mailbox"),
    "trustedform": ("certificate_not_found", "Certificate not found or already claimed"),
}
_OUTAGE = ("provider_unavailable", "Upstream data provider unavailable")


def run(c: Chunk, e: Enhancement, j: int) -> None:
    p, rng = c.plan, c.rng
    svc = SERVICES[e.service]
    reads = svc["reads"]
    idx = np.flatnonzero(c.alive & c.has[reads])
    n = len(idx)
    ent = p.ent_index[e.name]
    version = j + 1
    t = c.cursor[idx]
    p_err = np.full(n, e.error_rate)
    p_err_base = p_err.copy()
    timeout = np.full(n, e.timeout_ms, dtype=np.int64)
    forced = np.zeros(n, dtype=bool)
    p_fail = np.full(n, e.failure_rate)
    p_fail_base = p_fail.copy()
    out_inc = []
    tmo_inc = []
    for k, inc, effect in p.acting(CallErrors, e.name):
        w = p.window(inc, t)
        p_err = np.where(w, np.maximum(p_err, inc.parameters[effect.rate]), p_err)
        if effect.timeout is not None:  # every error a timeout of the incident's length
            timeout = np.where(w, inc.parameters[effect.timeout], timeout)
            forced |= w
        tmo_inc.append((k, w))
    for k, inc, effect in p.acting(CallFailures, e.name):
        w = p.window(inc, t)
        p_fail = np.where(w, np.maximum(p_fail, inc.parameters[effect.rate]), p_fail)
        out_inc.append((k, w))
    errw = np.broadcast_to(error_weights(e.errors), (n, 3))
    ok, fts, fdur, n_att, errors, retries_, inc_err, cur = attempts(
        c,
        idx,
        t,
        p_err,
        p_err_base,
        errw,
        timeout,
        med=np.full(n, e.latency.median),
        sig=np.full(n, e.latency.sigma),
        retries=np.full(n, e.retries),
        backoff=np.full(n, e.backoff_ms),
        forced=forced,
        breaker_state=(e.breaker_errors, e.breaker_open_ms, p.breakers[e.name]),
    )
    for k, w in tmo_inc:
        c.touch(k, idx[inc_err & w])
    c.cursor[idx] = cur
    c.steps[idx] += 1
    name_lit = T.lit(e.name)

    def name_piece(pos):
        return '"service":' + name_lit

    def snap_of(pos):
        return c.snap(idx[pos], version)

    emit_errors(c, "enhancement.error", errors, idx, ent, name_piece, timeout, snap_of)
    emit_retries(c, retries_, idx, ent, name_piece, lambda pos: name_lit, snap_of)
    # answered calls: failure (no data) or success (fields appended)
    okp = np.flatnonzero(ok)
    u = rng.random(len(okp))
    fail = u < p_fail[okp]
    for k, w in out_inc:
        c.touch(k, idx[okp[fail & ~(u < p_fail_base[okp]) & w[okp]]])
    outage = np.zeros(len(okp), dtype=bool)
    for _, w in out_inc:
        outage |= w[okp]
    outage &= fail & ~(u < p_fail_base[okp])
    fpos = okp[fail]
    spos = okp[~fail]
    req = request(c, e, idx)
    ftype, fmsg = _FAILURES[e.service]
    nf = len(fpos)
    o = outage[fail]
    meta = T.cat(
        nf,
        '{"service":' + name_lit + ',"error_type":',
        T.when(o, T.lit(_OUTAGE[0]), T.lit(ftype)),
        ',"error_message":',
        T.when(o, T.lit(_OUTAGE[1]), T.lit(fmsg)),
        ',"http_status":200,"retry_attempts":',
        T.num(n_att[fpos] - 1),
        ',"request":',
        req.take(pa.array(fpos)),
        (',"cost":' + T.lit(e.cost)) if e.charge_failures else "",
        "}",
    )
    c.emit(
        "enhancement.failure",
        FAIL,
        idx[fpos],
        ts=fts[fpos],
        dur=fdur[fpos],
        ent=ent,
        meta=meta,
        snap=c.snap(idx[fpos], version),
    )
    if e.charge_failures:
        c.cost[idx[fpos]] += round(e.cost * MONEY)
    # success: appended fields
    lead = idx[spos]
    appended = appended_fields(c, e, lead)
    part_arr = pa.array([""] * c.size, pa.string())
    if len(lead):
        full_idx = np.full(c.size, -1)
        full_idx[lead] = np.arange(len(lead))
        pieces = pc.binary_join_element_wise(",", appended, "")
        part_arr = pc.if_else(
            pa.array(full_idx >= 0),
            pieces.take(pa.array(np.maximum(full_idx, 0))),
            "",
        )
    c.appended.append(part_arr)
    ns = len(spos)
    meta = T.cat(
        ns,
        '{"service":' + name_lit + ',"request":',
        req.take(pa.array(spos)),
        ',"response":{"status":200,"body":{"status":"ok"}},"appended_fields":{',
        appended,
        '},"cost":' + T.lit(e.cost) + ',"retry_attempts":',
        T.num(n_att[spos] - 1),
        "}",
    )
    c.emit(
        "enhancement.success",
        OK,
        lead,
        ts=fts[spos],
        dur=fdur[spos],
        ent=ent,
        meta=meta,
        snap=c.snap(lead, version),
    )
    c.cost[lead] += round(e.cost * MONEY)


def request(c: Chunk, e: Enhancement, idx) -> pa.Array:
    reads = SERVICES[e.service]["reads"]
    n = len(idx)
    return T.cat(
        n,
        '{"method":"POST","uri":' + T.lit(SERVICES[e.service]["uri"]) + ',"body":{',
        T.lit(reads),
        ":",
        c.values[reads].take(pa.array(idx)),
        "}}",
    )


def appended_fields(c: Chunk, e: Enhancement, lead) -> pa.Array:
    """The fields an enhancement appends for ``lead`` (JSON members, no braces), and
    their values recorded for rules and buyers."""
    rng = c.rng
    n = len(lead)
    if e.service == "phone_validation":
        valid = (~c.problems["disc"][lead]) & (c.phone_len[lead] == 10)
        valid &= rng.random(n) < e.valid_rate
        ptype = rng.choice(3, size=n, p=[0.68, 0.2, 0.12])
        score = np.where(
            valid,
            np.where(
                c.problems["low"][lead],
                rng.integers(8, 30, n),
                np.clip(100 - rng.gamma(2.0, 9.0, n), 30, 99).astype(np.int64),
            ),
            rng.integers(0, 21, n),
        )
        c.set_field("phone.valid", "bool", lead, valid.astype(np.int8))
        c.set_field("phone.type", "cat", lead, ptype)
        c.set_field("appended.phone_score", "num", lead, score.astype(float))
        return T.cat(
            n,
            '"phone.valid":',
            T.when(valid, "true", "false"),
            ',"phone.type":',
            T.pick([T.lit(x) for x in PHONE_TYPES], ptype),
            ',"appended.phone_score":',
            T.num(score),
        )
    if e.service == "email_verification":
        valid = ~c.problems["email"][lead] & (rng.random(n) < e.valid_rate)
        c.set_field("email.valid", "bool", lead, valid.astype(np.int8))
        return T.cat(n, '"email.valid":', T.when(valid, "true", "false"))
    age = c.trustedform_age[lead] + (c.cursor[lead] - c.arrived[lead]) // 1000
    valid = age <= 72 * 3600
    c.set_field("trustedform.valid", "bool", lead, valid.astype(np.int8))
    c.set_field("trustedform.age_seconds", "num", lead, age.astype(float))
    return T.cat(
        n,
        '"trustedform.valid":',
        T.when(valid, "true", "false"),
        ',"trustedform.age_seconds":',
        T.num(age),
    )
