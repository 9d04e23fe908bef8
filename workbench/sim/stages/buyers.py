"""The buyers: each lead that passed the flow is offered down its route's waterfall of
buyers until one takes it. A post may fail technically (errors, retries), be refused
for a cap, or be rejected on business grounds; a delivered lead earns the buyer's
price. Incidents act here through ``CallErrors`` (on buyers), ``AcceptanceDrop``,
``SegmentRejection`` and ``FieldCorruption`` effects.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _text as T
from ..chunk import Chunk, CorruptedMapping
from ..flow import Condition
from ..incidents import AcceptanceDrop, CallErrors, FieldCorruption, SegmentRejection
from ..plan import DAY, FAIL, HOUR, MONEY, OK
from .calls import attempts, emit_errors, emit_retries

__all__ = ["run"]

_PAYLOAD_FIELDS = ("first_name", "last_name", "email", "phone", "address", "city", "state", "zip")
_CONTACT_REASON = "Invalid contact information: phone could not be verified"


def run(c: Chunk) -> None:
    p, rng, m = c.plan, c.rng, c.size
    idx_all = np.flatnonzero(c.alive)
    map_fields(c, idx_all)
    route = np.full(m, -1, dtype=np.int64)
    route[idx_all] = c.route(idx_all)
    delivered = np.zeros(m, dtype=bool)
    last = np.full(m, -1, dtype=np.int8)  # 0 delivered, 1 rejected, 2 error
    c.buyer = np.full(m, -1, dtype=np.int64)
    pay_all = payload(c)
    # buyers check contact data themselves: a lead nobody validated may fail that
    # check, and then fails it at every buyer (a dead number always does)
    contact_fail = np.zeros(m, dtype=bool)
    rate = p.flow.unvalidated_phone_rejection
    if rate > 0:
        pv = c.fields.get("phone.valid", ("bool", np.full(m, -1, np.int8)))[1]
        truly_bad = c.problems["disc"] | (c.phone_len != 10)
        contact_fail = (pv < 0) & (truly_bad | (rng.random(m) < rate))
    for k in range(p.routes.shape[1]):
        idx = idx_all[~delivered[idx_all]]
        b = p.routes[route[idx], k]
        keep = b >= 0
        idx, b = idx[keep], b[keep]
        n = len(idx)
        if not n:
            continue
        t = c.cursor[idx]
        p_err = p.b_err[b].copy()
        p_err_base = p_err.copy()
        errw = p.b_errw[b]
        inc_masks = []
        for kk, inc, effect in p.acting(CallErrors, on="buyer"):
            w = p.window(inc, t) & (b == p.buyer_names.index(inc.parameters[effect.target]))
            p_err = np.where(w, np.maximum(p_err, inc.parameters[effect.rate]), p_err)
            if effect.mix is not None:
                errw = np.where(w[:, None], np.array(effect.mix), errw)
            inc_masks.append((kk, w))
        ok, fts, fdur, n_att, errors, retries_, inc_err, cur = attempts(
            c,
            idx,
            t,
            p_err,
            p_err_base,
            errw,
            p.b_timeout[b],
            med=p.b_med[b],
            sig=p.b_sig[b],
            retries=p.b_retries[b],
            backoff=p.b_backoff[b],
        )
        # business decision
        hour = (p.local(t, p.flow.timezone) // HOUR) % 24
        p_acc = p.acc[b] * p.acc_hour[b, hour]
        for bi, buyer in enumerate(p.buyers):
            sel = b == bi
            if not sel.any():
                continue
            for conds, factor in buyer.factors:
                hold = np.ones(int(sel.sum()), dtype=bool)
                for cond in conds:
                    hold &= c.cond(cond, idx[sel])
                p_acc[np.flatnonzero(sel)[hold]] *= factor
        p_acc = np.minimum(p_acc, 0.995)
        p_acc = np.where(contact_fail[idx], 0.0, p_acc)
        p_eff = p_acc.copy()
        reason_over = np.full(n, -1, dtype=np.int64)
        over_texts: list[pa.Array] = []
        owner = np.full(n, -1, dtype=np.int64)
        for kk, inc, effect in p.acting(AcceptanceDrop):
            bi = p.buyer_names.index(inc.parameters[effect.target])
            w = p.window(inc, t) & (b == bi)
            p_eff = np.where(w, p_eff * inc.parameters[effect.acceptance] / p.acc[bi], p_eff)
            over_texts.append(T.cat(n, T.lit(inc.parameters[effect.reason])))
            reason_over = np.where(w, len(over_texts) - 1, reason_over)
            owner = np.where(w, kk, owner)
        for kk, inc, effect in p.acting(SegmentRejection):
            bi = p.buyer_names.index(inc.parameters[effect.target])
            fname = inc.parameters[effect.field]
            seg = c.cond(Condition(fname, tuple(inc.parameters[effect.values])), idx)
            w = p.window(inc, t) & (b == bi) & seg
            p_eff = np.where(w, p_eff * (1 - inc.parameters[effect.rate]), p_eff)
            txt = c.value_text(fname, idx, False)
            over_texts.append(
                T.cat(n, '"Not buying leads with ' + fname + " ", txt, ' at this time"')
            )
            reason_over = np.where(w, len(over_texts) - 1, reason_over)
            owner = np.where(w, kk, owner)
        if c.mapping is not None:
            mk, inc, effect = c.mapping.incident_k, c.mapping.incident, c.mapping.effect
            hit = c.mapping.mask[idx]
            if c.mapping.buyer is not None:
                hit &= b == c.mapping.buyer
            p_eff = np.where(hit, p_eff * (1 - inc.parameters[effect.reject_rate]), p_eff)
            field = inc.parameters[effect.field]
            over_texts.append(T.cat(n, T.lit(f"Invalid {field} format")))
            reason_over = np.where(hit, len(over_texts) - 1, reason_over)
            owner = np.where(hit, mk, owner)
        u = rng.random(n)
        accept = u < p_eff
        caused = ~accept & (u < p_acc)
        # caps: a buyer at its hourly or daily cap is not offered the lead
        capped = caps(c, b, t, ok & accept)
        post = ~capped
        for kk, w in inc_masks:
            c.touch(kk, idx[inc_err & w & post])
        for kk in set(owner[owner >= 0].tolist()):
            c.touch(kk, idx[caused & (owner == kk) & post & ok])
        # errors and retries of posted leads
        errors = [(g[0][post[g[0]]], g[1], *_kept(g[2:], post[g[0]])) for g in errors]
        retries_ = [[g[0][post[g[0]]], g[1], *_kept(g[2:], post[g[0]])] for g in retries_]
        names = [T.lit(x) for x in p.buyer_names]

        def name_piece(pos, b=b, names=names):
            return T.cat(len(pos), '"recipient":', T.pick(names, b[pos]))

        def snap_of(pos, idx=idx, b=b):
            return c.snap(idx[pos], -1, b[pos])

        ent_b = np.array([p.ent_index[x] for x in p.buyer_names])[b]
        emit_errors(c, "recipient.error", errors, idx, ent_b, name_piece, p.b_timeout[b], snap_of)
        emit_retries(c, retries_, idx, ent_b, name_piece, name_piece_step(b, names), snap_of)
        posted = np.flatnonzero(post)
        c.cursor[idx[posted]] = cur[posted]
        c.steps[idx[posted]] += 1
        # delivered
        dpos = np.flatnonzero(post & ok & accept)
        emit_delivered(c, idx, b, dpos, fts, fdur, n_att, pay_all, snap_of, ent_b)
        delivered[idx[dpos]] = True
        last[idx[dpos]] = 0
        # rejected by the buyer (business logic)
        rpos = np.flatnonzero(post & ok & ~accept)
        nr = len(rpos)
        if nr:
            wts = [
                np.array([w for _, w in p.buyers[bi].rejection_reasons])
                for bi in range(len(p.buyers))
            ]
            ur = rng.random(nr)
            own = np.zeros(nr, dtype=np.int64)
            texts = []
            for bi in range(len(p.buyers)):
                sel = b[rpos] == bi
                cw = np.cumsum(wts[bi])
                own[sel] = (ur[sel, None] > cw[:-1]).sum(axis=1) + len(texts)
                texts += [T.lit(r) for r, _ in p.buyers[bi].rejection_reasons]
            reason = T.pick(texts, own)
            ro = reason_over[rpos]
            caused_r = caused[rpos]
            for oi, ot in enumerate(over_texts):
                reason = pc.if_else(
                    pa.array((ro == oi) & caused_r), ot.take(pa.array(rpos)), reason
                )
            reason = pc.if_else(pa.array(contact_fail[idx[rpos]]), T.lit(_CONTACT_REASON), reason)
            meta = T.cat(
                nr,
                "{",
                name_piece(rpos),
                ',"http_status":200,"rejection_reason":',
                reason,
                ',"buyer_response":{"status":"rejected","reason":',
                reason,
                '},"business_logic":true,"payload":',
                payload_for(c, idx[rpos], b[rpos], pay_all),
                ',"retry_attempts":',
                T.num(n_att[rpos] - 1),
                "}",
            )
            c.emit(
                "recipient.failed",
                FAIL,
                idx[rpos],
                ts=fts[rpos],
                dur=fdur[rpos],
                ent=ent_b[rpos],
                meta=meta,
                snap=snap_of(rpos),
            )
            last[idx[rpos]] = 1
        epos = np.flatnonzero(post & ~ok)
        last[idx[epos]] = 2
    final = c.final
    reached = idx_all
    fin = np.where(
        delivered[reached],
        0,
        np.where(last[reached] == 1, 3, np.where(last[reached] == 2, 4, 5)),
    )
    final[reached] = fin
    c.delivered = delivered


def caps(c: Chunk, b, t, would_deliver) -> np.ndarray:
    """Leads whose buyer is at its cap when they come (in time order, per buyer)."""
    p = c.plan
    n = len(b)
    capped = np.zeros(n, dtype=bool)
    for counts, limit, unit in ((p.cap_h, p.b_cap_h, HOUR), (p.cap_d, p.b_cap_d, DAY)):
        bucket = np.clip((t - p.hour0) // unit, 0, counts.shape[1] - 1)
        order = np.lexsort((t, bucket, b))
        bb, kk = b[order], bucket[order]
        d = (would_deliver & ~capped)[order].astype(np.int64)
        key_change = np.ones(n, dtype=bool)
        key_change[1:] = (bb[1:] != bb[:-1]) | (kk[1:] != kk[:-1])
        cs = np.cumsum(d)
        start = np.maximum.accumulate(np.where(key_change, np.arange(n), 0))
        before = cs - d - (cs[start] - d[start])
        prior = counts[bb, kk]
        cap = prior + before >= limit[bb]
        capped[order[cap]] = True
        took = d & ~cap
        np.add.at(counts, (bb, kk), took)
    return capped


def map_fields(c: Chunk, idx) -> None:
    """A field-mapping corruption: the field as buyers receive it, for leads whose
    delivery starts within the incident's window."""
    p = c.plan
    for k, inc, effect in p.acting(FieldCorruption):
        fname = inc.parameters[effect.field]
        if fname not in c.values:
            continue
        w = p.window(inc, c.cursor[idx]) & c.has[fname][idx]
        lead = idx[w]
        if not len(lead):
            continue
        mask = np.zeros(c.size, dtype=bool)
        mask[lead] = True
        rank = np.zeros(c.size, dtype=np.int64)
        rank[lead] = np.arange(len(lead))
        vals = dict(c.values)
        v = c.values[fname].take(pa.array(lead))
        if inc.parameters[effect.transform] == "blank":
            new = pa.array(['""'] * len(lead), pa.string())
        else:  # drop the last character inside the quotes
            new = T.cat(len(lead), pc.utf8_slice_codeunits(v, 0, -2), '"')
        vals[fname] = scatter(c, c.values[fname], lead, new)
        buyer = inc.parameters[effect.target]
        target = None if buyer == "all" else p.buyer_names.index(buyer)
        c.mapping = CorruptedMapping(k, inc, effect, lead, mask, rank, target, vals)
        c.touch(k, lead)
        return  # one mapping corruption per chunk is enough to show


def scatter(c: Chunk, arr: pa.Array, lead, new: pa.Array) -> pa.Array:
    pos = np.full(c.size, -1)
    pos[lead] = np.arange(len(lead))
    return pc.if_else(pa.array(pos >= 0), new.take(pa.array(np.maximum(pos, 0))), arr)


def payload(c: Chunk) -> pa.Array:
    fields = tuple(f for f in _PAYLOAD_FIELDS if f in c.values)
    pay = T.cat(c.size, c.fields_json(c.values, c.has, fields), "}")
    if c.mapping is not None:
        mvals, lead = c.mapping.vals, c.mapping.lead
        extra = (c.mapping.incident.parameters[c.mapping.effect.field],)
        f2 = fields + tuple(x for x in extra if x not in fields)
        mp = T.cat(len(lead), c.fields_json(mvals, c.has, f2, lead), "}")
        c.mapping.payload = mp
    return pay


def payload_for(c: Chunk, lead, b, pay_all) -> pa.Array:
    out = pay_all.take(pa.array(lead))
    if c.mapping is not None:
        mask, rank, target = c.mapping.mask, c.mapping.rank, c.mapping.buyer
        hit = mask[lead]
        if target is not None:
            hit &= b == target
        if hit.any():
            out = pc.if_else(pa.array(hit), c.mapping.payload.take(pa.array(rank[lead])), out)
    return out


def emit_delivered(c: Chunk, idx, b, dpos, fts, fdur, n_att, pay_all, snap_of, ent_b):
    p, rng = c.plan, c.rng
    nd = len(dpos)
    if not nd:
        return
    lead = idx[dpos]
    bb = b[dpos]
    price = p.b_price[bb].copy()
    for bi, buyer in enumerate(p.buyers):
        sel = np.flatnonzero(bb == bi)
        if not len(sel):
            continue
        for conds, set_price, add in buyer.pricing:
            hold = np.ones(len(sel), dtype=bool)
            for cond in conds:
                hold &= c.cond(cond, lead[sel])
            if set_price is not None:
                price[sel[hold]] = round(set_price * MONEY)
            if add is not None:
                price[sel[hold]] += round(add * MONEY)
    bl_id = T.cat(nd, T.pick(p.b_prefix, bb), "-", T.digits(rng.integers(0, 10**8, nd), 8))
    price_txt = T.money(price)
    meta = T.cat(
        nd,
        '{"recipient":',
        T.pick([T.lit(x) for x in p.buyer_names], bb),
        ',"integration":"custom_json","http_status":200,"payload":',
        payload_for(c, lead, bb, pay_all),
        ',"request":{"method":"POST","uri":',
        T.pick([T.lit(h) for h in p.b_host], bb),
        '},"response":{"status":200,"body":{"status":"accepted","id":"',
        bl_id,
        '"}},"buyer_response":{"status":"accepted","id":"',
        bl_id,
        '","price":',
        price_txt,
        '},"buyer_lead_id":"',
        bl_id,
        '","revenue":',
        price_txt,
        ',"retry_attempts":',
        T.num(n_att[dpos] - 1),
        "}",
    )
    c.emit(
        "recipient.delivered",
        OK,
        lead,
        ts=fts[dpos],
        dur=fdur[dpos],
        ent=ent_b[dpos],
        meta=meta,
        snap=snap_of(dpos),
    )
    c.revenue[lead] += price
    c.buyer[lead] = bb
    c.deliveries.append((lead, bl_id, price))


def _kept(columns, keep) -> list:
    """The rows ``keep`` of each column of a group."""
    return [col[keep] for col in columns]


def name_piece_step(b, names):
    def f(pos):
        return T.pick(names, b[pos])

    return f
