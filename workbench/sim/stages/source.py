"""The source stage: every lead is submitted, then accepted (and paid for) or rejected
with the first format or required-field problem its source checks for.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .. import _text as T
from ..chunk import Chunk
from ..plan import FAIL, FINAL, MONEY, OK, lognormal

__all__ = ["run"]


def run(c: Chunk) -> None:
    p, rng, m = c.plan, c.rng, c.size
    idx = np.arange(m)
    ent = c.source
    snap0 = c.snap(idx, 0)
    names = [T.lit(s.name) for s in p.sources]
    src_lit = T.pick(names, ent)
    dur = lognormal(rng, 35, 0.6, m).astype(np.int64) + 3
    ts = c.arrived
    posting_ip = T.pick([f"198.51.100.{10 + i}" for i in range(len(p.sources))], ent)
    raw = c.submitted
    meta = T.cat(
        m,
        '{"source":',
        src_lit,
        ',"raw_data":',
        raw,
        ',"headers":{"content-type":"application/json","user-agent":"LeadPoster/2.4"}'
        ',"ip_address":"',
        posting_ip,
        '","source_config":{"posting_method":"json","vertical":',
        T.pick([T.lit(v) for v in p.vert_names], p.src_vert[ent]),
        "}}",
    )
    c.emit("source.submitted", OK, idx, ts, dur, ent, meta, snap0)
    c.cursor = ts + dur + c.gap(m)
    c.steps += 1

    # acceptance: formats first (a planted format problem is what the lead shows),
    # then required fields
    reason = np.full(m, "", dtype=object)
    failed = np.full(m, "", dtype=object)
    ferr = np.full(m, "", dtype=object)
    for si, s in enumerate(p.sources):
        sel = c.source == si
        rej = np.zeros(m, dtype=bool)
        fmts = dict(s.formats)
        if "phone" in fmts:
            bad = sel & c.has["phone"] & (c.phone_len != 10) & ~rej
            for n_digits in (8, 9, 11):
                b = bad & (c.phone_len == n_digits)
                reason[b] = f"Invalid phone format: expected 10 digits, got {n_digits}"
                failed[b] = '["phone.format"]'
                ferr[b] = f'{{"phone":"expected 10 digits, got {n_digits}"}}'
            rej |= bad
        if "email" in fmts:
            bad = sel & c.has["email"] & c.problems["email"] & ~rej
            reason[bad] = "Invalid email format: missing '@'"
            failed[bad] = '["email.format"]'
            ferr[bad] = '{"email":"missing \'@\'"}'
            rej |= bad
        for f in s.required:
            bad = sel & ~c.has[f] & ~rej
            reason[bad] = f"Missing required field: {f}"
            failed[bad] = f'["{f}.required"]'
            ferr[bad] = f'{{"{f}":"required field is missing"}}'
            rej |= bad
    rejected = reason != ""
    ts = c.cursor
    dur = lognormal(rng, 12, 0.7, m).astype(np.int64) + 2
    ok = np.flatnonzero(~rejected)
    bad = np.flatnonzero(rejected)
    n = len(ok)
    cost_units = np.array([round(s.cost * MONEY) for s in p.sources], dtype=np.int64)
    crit = [
        T.lit({"required": list(s.required), "formats": dict(s.formats), "passed": True})
        for s in p.sources
    ]
    ix = pa.array(ok)
    parsed = T.cat(
        n,
        '{"phone":',
        c.values["phone"].take(ix),
        ',"email":',
        T.when(c.has["email"][ok], c.values["email"].take(ix), "null"),
        ',"state":',
        c.values["state"].take(ix),
        ',"zip":',
        T.when(c.has["zip"][ok], c.values["zip"].take(ix), "null"),
        "}",
    )
    meta = T.cat(
        n,
        '{"source":',
        src_lit.take(ix),
        ',"parsed_fields":',
        parsed,
        ',"acceptance_criteria":',
        T.pick(crit, ent[ok]),
        ',"cost":',
        T.money(cost_units[ent[ok]]),
        ',"field_mapping":{"phone_1":"phone","email_address":"email","zip_code":"zip"}}',
    )
    c.emit("source.accepted", OK, ok, ts[ok], dur[ok], ent[ok], meta, snap0[ok])
    c.cost[ok] += cost_units[ent[ok]]
    nb = len(bad)
    ib = pa.array(bad)
    meta = T.cat(
        nb,
        '{"source":',
        src_lit.take(ib),
        ',"rejection_reason":',
        pa.array([T.lit(r) for r in reason[bad]], pa.string()),
        ',"failed_validations":',
        pa.array(list(failed[bad]), pa.string()),
        ',"field_errors":',
        pa.array(list(ferr[bad]), pa.string()),
        ',"acceptance_criteria":{"passed":false}}',
    )
    c.emit("source.rejected", FAIL, bad, ts[bad], dur[bad], ent[bad], meta, snap0[bad])
    c.cursor = ts + dur + c.gap(m)
    c.alive &= ~rejected
    c.final[rejected] = FINAL.index("rejected")
