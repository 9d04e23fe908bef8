"""A filter step: each lead it applies to is checked against the filter's rules
(duplicates, business hours, field values); the first failing rule gives the reason.
``JudgedInTimezone`` effects of incidents judge business hours in another timezone.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _text as T
from ..chunk import Chunk, as_list
from ..flow import Condition, Filter, Rule
from ..incidents import JudgedInTimezone
from ..plan import DAY, FAIL, FINAL, HOUR, OK, lognormal

__all__ = ["run"]


def run(c: Chunk, f: Filter) -> None:
    p, rng = c.plan, c.rng
    sel = c.alive.copy()
    if f.applies_to:
        allowed = [p.ent_index[s] for s in f.applies_to]
        sel &= np.isin(c.source, allowed)
    idx = np.flatnonzero(sel)
    n = len(idx)
    if not n:
        return
    ent = p.ent_index[f.name]
    version = p.n_enh_before[f.name]
    t = c.cursor[idx]
    dur = lognormal(rng, 3, 0.6, n).astype(np.int64) + 1
    fails, values, reasons, extra = [], [], [], []
    for rule in f.rules:
        fail, val_json, reason, xval = rule_result(c, f, rule, idx, t)
        fails.append(fail)
        values.append(val_json)
        reasons.append(reason)
        extra.append(xval)
    anyfail = np.any(fails, axis=0)
    results = T.json_object(
        n,
        [
            T.cat(n, "," + T.lit(r.name) + ":", T.when(fl, "false", "true"))
            for r, fl in zip(f.rules, fails, strict=True)
        ],
    )
    evaluated = T.lit([r.name for r in f.rules])
    head = '{"filter":' + T.lit(f.name) + ',"filter_id":' + T.lit(f.id)
    ok = np.flatnonzero(~anyfail)
    bad = np.flatnonzero(anyfail)
    iok = pa.array(ok)
    meta = T.cat(
        len(ok), head, ',"rules_evaluated":' + evaluated + ',"results":', results.take(iok), "}"
    )
    c.emit("filter.passed", OK, idx[ok], t[ok], dur[ok], ent, meta, c.snap(idx[ok], version))
    nb = len(bad)
    if nb:
        ib = pa.array(bad)
        failed_rules = T.json_list(
            nb,
            [
                T.when(fl[bad], "," + T.lit(r.name), "")
                for r, fl in zip(f.rules, fails, strict=True)
            ],
        )
        failed_values = T.json_object(
            nb,
            [
                T.when(fl[bad], T.cat(nb, ",", v.take(ib)), "") if v is not None else ""
                for fl, v in zip(fails, values, strict=True)
            ],
        )
        reason = reasons[-1].take(ib)
        for fl, r in zip(fails[-2::-1], reasons[-2::-1], strict=True):
            reason = pc.if_else(pa.array(fl[bad]), r.take(ib), reason)
        dest = T.pick([T.lit(b) for b in p.buyer_names], c.first_buyer(idx[bad]))
        meta = T.cat(
            nb,
            head,
            ',"failed_rules":',
            failed_rules,
            ',"failed_values":',
            failed_values,
            ',"would_have_destination":',
            dest,
            ',"rejection_reason":',
            reason,
            ',"rules_evaluated":' + evaluated + ',"results":',
            results.take(ib),
            "}",
        )
        c.emit(
            "filter.failed",
            FAIL,
            idx[bad],
            ts=t[bad],
            dur=dur[bad],
            ent=ent,
            meta=meta,
            snap=c.snap(idx[bad], version),
        )
        c.alive[idx[bad]] = False
        c.final[idx[bad]] = FINAL.index("filtered")
    c.cursor[idx] = t + dur + c.gap(n)
    c.steps[idx] += 1


def rule_result(c: Chunk, f: Filter, rule: Rule, idx, t):
    """(fails, failed-value JSON members, reason JSON text, _) for one rule."""
    n = len(idx)
    p = c.plan
    if rule.kind == "duplicate_within_days":
        fail = c.problems["dup"][idx]
        orig = c.lead_ids.take(pa.array(c.duplicate_of[idx]))
        vals = T.cat(n, '"duplicate_of":"', orig, '","matched_on":["email","phone"]')
        return fail, vals, T.cat(n, T.lit(rule.reason)), None
    if rule.kind == "business_hours":
        sch = rule.schedule
        tzs = np.zeros(n, dtype=np.int64)
        zones = [sch.timezone]
        wrong = p.acting(JudgedInTimezone, f.name)
        for _, inc, effect in wrong:
            zones.append(inc.parameters[effect.timezone])
            tzs = np.where(p.window(inc, t), len(zones) - 1, tzs)
        local = np.zeros(n, dtype=np.int64)
        for zi, z in enumerate(zones):
            sel = tzs == zi
            local[sel] = p.local(t[sel], z)
        right = p.local(t, sch.timezone)

        def inside(loc):
            minute = (loc // 60_000) % 1440
            wd = ((loc // DAY) + 3) % 7
            return np.isin(wd, sch.days) & (minute >= sch.start_minute) & (minute < sch.end_minute)

        fail = ~inside(local)
        for k, inc, _ in wrong:
            c.touch(k, idx[fail & inside(right) & p.window(inc, t)])
        wd = ((local // DAY) + 3) % 7
        hhmm = T.cat(
            n,
            T.pick(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], wd),
            " ",
            T.digits((local // HOUR) % 24, 2),
            ":",
            T.digits((local // 60_000) % 60, 2),
        )
        zone_txt = T.pick(zones, tzs)
        # the reason stays one text per rule (so rejections group by it); the lead's
        # local time and the timezone it was judged in are the failed values
        vals = T.cat(n, '"local_time":"', hhmm, '","timezone":"', zone_txt, '"')
        reason = T.cat(n, T.lit(rule.reason))
        return fail, vals, reason, None
    field = rule.field
    if rule.kind == "present":
        h = c.present(field, idx)
        fail = h != rule.value
        vals = T.cat(n, T.lit(field) + ":", c.value_text(field, idx, True))
        return fail, vals, T.cat(n, T.lit(rule.reason)), None
    kind = c.field_kind(field)
    if kind == "num":
        a = c.fields[field][1][idx] if field in c.fields else np.full(n, np.nan)
        if rule.kind == "min":
            fail = a < rule.value
        elif rule.kind == "max":
            fail = a > rule.value
        else:
            fail = ~c.cond(Condition(field, tuple(as_list(rule.value))), idx)
            if rule.kind in ("not_in", "not_equals"):
                fail = ~fail
            fail &= ~np.isnan(a) | (rule.kind in ("in", "equals"))
    else:
        values = as_list(rule.value)
        member = c.cond(Condition(field, tuple(values)), idx)
        present = c.present(field, idx)
        fail = ~member if rule.kind in ("in", "equals") else member & present
    vals = T.cat(n, T.lit(field) + ":", c.value_text(field, idx, True))
    before, _, after = rule.reason.partition("{value}")
    if "{value}" in rule.reason:
        txt = c.value_text(field, idx, False)
        reason = T.cat(n, T.lit(before)[:-1], txt, T.lit(after)[1:])
    else:
        reason = T.cat(n, T.lit(rule.reason))
    return fail, vals, reason, None
