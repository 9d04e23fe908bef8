"""Calls to an enhancement's provider or a buyer's endpoint: attempts with retries after
technical errors, the enhancements' circuit breakers, and the error and retry events.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .. import _text as T
from ..chunk import Chunk
from ..plan import BREAKER, ERR, ETYPES, OK, lognormal

__all__ = ["attempts", "breaker", "emit_errors", "emit_retries"]


def attempts(
    c: Chunk,
    idx,
    t_start,
    p_err,
    p_err_base,
    errw,
    timeout,
    med,
    sig,
    retries,
    backoff,
    forced=None,
    breaker_state=None,
):
    """Attempts of a call (enhancement or post) with retries after technical errors.

    Returns (ok, final_ts, final_dur, n_att, errors, retries_, inc_err): ``errors``
    are (pos, attempt, ts, dur, etype, http, breaker_state) groups, ``retries_``
    are (pos, count, ts, dur, original etype, result_is_error, elapsed).
    """
    rng = c.rng
    n = len(idx)
    cur = t_start.copy()
    ok = np.zeros(n, dtype=bool)
    fts = np.zeros(n, dtype=np.int64)
    fdur = np.zeros(n, dtype=np.int64)
    n_att = np.zeros(n, dtype=np.int64)
    prev_et = np.zeros(n, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    inc_err = np.zeros(n, dtype=bool)
    errors, retries_ = [], []
    max_r = int(retries.max()) if n else 0
    for a in range(max_r + 1):
        pos = np.flatnonzero(active)
        if not len(pos):
            break
        k = len(pos)
        if a:
            back = (backoff[pos] * 2 ** (a - 1) * rng.uniform(0.8, 1.2, k)).astype(np.int64)
            rts = cur[pos]
            retries_.append([pos, a, rts, back, prev_et[pos], None, rts - t_start[pos]])
            cur[pos] = rts + back + c.gap(k)
        ts = cur[pos]
        u = rng.random(k)
        err = u < p_err[pos]
        if a == 0:
            inc_err[pos] = err & ~(u < p_err_base[pos])
        ue = rng.random(k)
        et = (ue[:, None] > errw[pos]).sum(axis=1).clip(0, 2)
        if forced is not None:
            et = np.where(forced[pos] & err, 0, et)
        lat = np.minimum(lognormal(rng, med[pos], sig[pos], k), timeout[pos] - 1)
        dur = np.where(
            err,
            np.select(
                [et == 0, et == 1],
                [timeout[pos] + rng.integers(0, 25, k), lat * 0.6 + 20],
                rng.integers(1, 30, k),
            ),
            lat,
        ).astype(np.int64)
        http = np.where(et == 1, np.array([500, 502, 503])[rng.integers(0, 3, k)], 0)
        bstate = np.zeros(k, dtype=np.int64)
        if a == 0 and breaker_state is not None:
            short, bstate = breaker(breaker_state, ts, err)
            err = err | short
            et = np.where(short, 3, et)
            dur = np.where(short, rng.integers(0, 3, k), dur)
            http = np.where(short, 0, http)
            inc_err[pos] |= short
            active[pos[short]] = False
        if a:
            retries_[-1][5] = err
        e = np.flatnonzero(err)
        errors.append((pos[e], a, ts[e], dur[e], et[e], http[e], bstate[e]))
        good = np.flatnonzero(~err)
        ok[pos[good]] = True
        fts[pos[good]] = ts[good]
        fdur[pos[good]] = dur[good]
        cur[pos] = ts + dur + c.gap(k)
        n_att[pos] = a + 1
        prev_et[pos] = et
        active[pos[good]] = False
        active[pos[e]] &= retries[pos[e]] > a
    return ok, fts, fdur, n_att, errors, retries_, inc_err, cur


def breaker(state, ts, err):
    """Circuit breaker over first attempts in time order: after ``K`` consecutive
    errors it opens for ``open_ms``; calls meanwhile are not made; the first call
    after is a trial (half-open) that closes it or opens it again."""
    K, open_ms, st = state
    order = np.argsort(ts, kind="stable")
    t = ts[order]
    e = err[order]
    n = len(t)
    short = np.zeros(n, dtype=bool)
    bstate = np.zeros(n, dtype=np.int64)
    consec, open_until = st
    i = 0
    while i < n:
        if open_until > t[i]:
            j = int(np.searchsorted(t, open_until, "left"))
            short[i:j] = True
            bstate[i:j] = 1
            i = j
            if i >= n:
                break
            bstate[i] = 2
            if e[i]:
                open_until = int(t[i]) + open_ms
                consec = K
            else:
                consec, open_until = 0, -1
            i += 1
            continue
        seg = e[i:]
        ar = np.arange(len(seg))
        last0 = np.maximum.accumulate(np.where(~seg, ar, -1))
        run = np.where(last0 >= 0, ar - last0, ar + 1 + consec)
        hit = np.flatnonzero(run >= K)
        if not len(hit):
            consec = int(run[-1])
            break
        k = i + int(hit[0])
        open_until = int(t[k]) + open_ms
        consec = 0
        i = k + 1
    st[0], st[1] = consec, open_until
    out_short = np.empty(n, dtype=bool)
    out_state = np.empty(n, dtype=np.int64)
    out_short[order] = short
    out_state[order] = bstate
    return out_short, out_state


def emit_errors(c: Chunk, kind, errors, idx, ent, name_piece, timeout, snap_of):
    """enhancement.error / recipient.error events of ``calls``'s error groups."""
    for pos, a, ts, dur, et, http, bst in errors:
        n = len(pos)
        if not n:
            continue
        lead = idx[pos]
        lim = timeout[pos]
        msg = np.select(
            [et == 0, et == 1, et == 2],
            ["no response within ", "server error: HTTP ", "connection refused by remote host"],
            "circuit breaker open: call not attempted",
        )
        msg_tail = np.where(et == 0, lim, np.where(et == 1, http, -1))
        msg_txt = T.cat(
            n,
            pa.array(msg, pa.string()),
            T.when(msg_tail >= 0, T.num(np.maximum(msg_tail, 0)), ""),
            T.when(et == 0, " ms", ""),
        )
        e_ent = ent[pos] if np.ndim(ent) else ent
        parts = [
            "{",
            name_piece(pos),
            ',"error_type":',
            T.pick([T.lit(x) for x in ETYPES], et),
            ',"error_message":"',
            msg_txt,
            '","http_status":',
            T.when(http > 0, T.num(http), "null"),
            ',"timeout":{"limit_ms":',
            T.num(lim),
            ',"timed_out":',
            T.when(et == 0, "true", "false"),
            "}",
        ]
        if kind == "enhancement.error":
            parts += [',"circuit_breaker":', T.pick([T.lit(b) for b in BREAKER], bst)]
        parts += [',"retry_attempts":', T.num(np.full(n, a)), "}"]
        c.emit(kind, ERR, lead, ts, dur, e_ent, T.cat(n, *parts), snap_of(pos))


def emit_retries(c: Chunk, retries_, idx, ent, name_piece, step_name, snap_of):
    for pos, a, ts, dur, prev_et, res_err, elapsed in retries_:
        n = len(pos)
        if not n:
            continue
        meta = T.cat(
            n,
            '{"original_failure":',
            T.pick([T.lit(x) for x in ETYPES], prev_et),
            ',"retry_count":',
            str(a),
            ',"retry_result":',
            T.when(res_err, '"error"', '"success"'),
            ',"elapsed_ms":',
            T.num(elapsed),
            ',"backoff_ms":',
            T.num(dur),
            ',"step":',
            step_name(pos),
            ",",
            name_piece(pos),
            "}",
        )
        e_ent = ent[pos] if np.ndim(ent) else ent
        outcome = np.where(res_err, ERR, OK).astype(np.int8)
        c.emit("retry.attempted", outcome, idx[pos], ts, dur, e_ent, meta, snap_of(pos))
