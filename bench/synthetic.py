"""Synthetic events of the guide's shape for benchmarks (~150 B metadata, ~375 B snapshot).

Vectorised with numpy and pyarrow.compute, so generating 10 M events takes seconds and
the benchmark measures the store, not the generator. Every event is valid for the
catalogue. Leads have eight events each and arrive in time order; 15% of them fail a
filter with the guide's reason mix (40% invalid phone, 30% duplicate, 20% outside the
service area, 10% other).
"""

from __future__ import annotations

import re
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

B62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype="S1")

# (type, outcome, metadata template) in the order a lead meets them; {X} are filled in
# fmt: off
_STEPS = [
    ("source.submitted", "success",
     '{"source":"Source {S}","raw_data":{"phone":"512555{P}"},"headers":{"ua":"x"},'
     '"ip_address":"203.0.113.{I}","source_config":{"m":"json"}}'),
    ("source.accepted", "success",
     '{"source":"Source {S}","parsed_fields":{"phone":"512555{P}"},"acceptance_criteria":{},'
     '"cost":1.25,"field_mapping":{}}'),
    ("enhancement.success", "success",
     '{"service":"Phone Validation","request":{},"response":{"status":200},'
     '"appended_fields":{"phone.valid":true},"cost":0.01}'),
    ("filter.passed", "success",
     '{"filter":"Service Area","filter_id":"flt_1","rules_evaluated":["state"],"results":{"state":true}}'),
    ("enhancement.success", "success",
     '{"service":"TrustedForm","request":{},"response":{"status":200},'
     '"appended_fields":{"trustedform.age_seconds":{I}},"cost":0.05}'),
    ("recipient.failed", "failure",
     '{"recipient":"Buyer {B}","rejection_reason":"Duplicate lead","buyer_response":{"status":"rejected"},'
     '"business_logic":true,"http_status":200}'),
    ("recipient.delivered", "success",
     '{"recipient":"Buyer {B}","payload":{"phone":"512555{P}"},"request":{},"response":{"status":200},'
     '"buyer_lead_id":"b-{P}","revenue":45.0}'),
    ("flow.completed", "success",
     '{"total_duration_ms":342,"steps_executed":6,"final_outcome":"delivered","total_cost":1.31,'
     '"total_revenue":45.0}'),
]
_FILTER_FAILED = (
    '{"filter":"Quality Check","filter_id":"flt_2","failed_rules":["{R}"],'
    '"failed_values":{"phone":"512555{P}"},"would_have_destination":"Buyer {B}","rejection_reason":"{R}"}'
)
# fmt: on
EVENTS_PER_LEAD = len(_STEPS)
FILTER_STEP = 3
FILTER_FAILED_SHARE = 0.15
_REASONS = ["Invalid phone", "Duplicate", "Outside service area", "Other"]
_REASON_P = [0.4, 0.3, 0.2, 0.1]


def _ids(rng, n: int, prefix: str, length: int) -> pa.Array:
    chars = B62[rng.integers(0, 62, size=(n, length))]
    body = chars.view(f"S{length}").ravel()
    return pc.binary_join_element_wise(prefix, pa.array(body.astype(str)), "")


def _fill(template: str, subs: dict[str, pa.Array], n: int) -> pa.Array:
    """Fill ``{X}`` placeholders (one capital letter) of a JSON template, vectorised."""
    pieces = re.split(r"\{([A-Z])\}", template)
    parts: list = []
    for i, piece in enumerate(pieces):
        if i % 2:
            parts.append(subs[piece])
        elif piece:
            parts.append(piece)
    if all(isinstance(p, str) for p in parts):
        return pa.array(["".join(parts)] * n)
    return pc.binary_join_element_wise(*parts, "")


def batches(
    n_events: int,
    *,
    batch_leads: int = 25_000,
    seed: int = 0,
    start_ms: int | None = None,
    span_days: float | None = None,
):
    """Yield Arrow record batches totalling ``n_events`` events (rounded to whole leads).

    Leads arrive evenly over ``span_days`` ending now (default: 40 ms apart)."""
    rng = np.random.default_rng(seed)
    n_leads = max(1, n_events // EVENTS_PER_LEAD)
    gap = 40.0 if span_days is None else span_days * 86_400_000 / n_leads
    t0 = start_ms if start_ms is not None else int(time.time() * 1000 - n_leads * gap - 60_000)
    done = 0
    while done < n_leads:
        m = min(batch_leads, n_leads - done)
        yield _batch(rng, m, t0 + done * gap, gap)
        done += m


def table(n_events: int, seed: int = 0, start_ms: int | None = None, span_days=None) -> pa.Table:
    return pa.Table.from_batches(
        list(batches(n_events, seed=seed, start_ms=start_ms, span_days=span_days))
    )


def _batch(rng, m: int, t_ms: float, gap: float = 40.0) -> pa.RecordBatch:
    k = EVENTS_PER_LEAD
    n = m * k
    leads = _ids(rng, m, "lead_", 16)
    lead_idx = np.repeat(np.arange(m), k)
    step_idx = np.tile(np.arange(k), m)
    # leads arrive `gap` ms apart; each step 20-60 ms after the previous one
    arrive = (t_ms + np.arange(m) * gap).astype(np.int64)
    offs = np.cumsum(rng.integers(20, 60, size=(m, k)), axis=1).ravel()
    ts = np.repeat(arrive, k) + offs
    order = np.argsort(ts, kind="stable")
    src = pa.array(rng.integers(1, 9, m).astype(str))
    buyer = pa.array(rng.integers(1, 6, m).astype(str))
    phone = pa.array(rng.integers(1000, 9999, m).astype(str))
    ip = pa.array(rng.integers(1, 254, m).astype(str))
    first = pa.array(np.array(["John", "Maria", "Wei", "Aisha", "Lars"])[rng.integers(0, 5, m)])
    reason = pa.array(np.array(_REASONS)[rng.choice(len(_REASONS), size=m, p=_REASON_P)])
    snap = pc.binary_join_element_wise(
        '{"first_name":"',
        first,
        '","last_name":"Smith","email":"',
        first,
        ".smith",
        phone,
        '@example.com","phone":"512555',
        phone,
        '","state":"TX","zip":"78701","address":"',
        phone,
        ' Main St","city":"Austin","ip_address":"203.0.113.',
        ip,
        '","dob":"1980-01-02","source":"Source ',
        src,
        '","email.valid":true,"phone.valid":true,"appended.phone_score":95,'
        '"trustedform.age_seconds":30,"trustedform_cert_url":"https://cert.trustedform.com/',
        phone,
        'abcdef0123456789"}',
        "",
    )
    subs = {"S": src, "P": phone, "I": ip, "B": buyer, "R": reason}
    meta_by_step = [_fill(t, subs, m) for _, _, t in _STEPS]
    failed = rng.random(m) < FILTER_FAILED_SHARE
    meta_by_step[FILTER_STEP] = pc.if_else(
        pa.array(failed), _fill(_FILTER_FAILED, subs, m), meta_by_step[FILTER_STEP]
    )
    meta = pa.concat_arrays(meta_by_step)  # step-major
    step_major = step_idx * m + lead_idx  # row of the step-major array for each lead-major row
    metadata = meta.take(pa.array(step_major[order]))
    is_failed = (step_idx == FILTER_STEP) & failed[lead_idx]
    types = np.where(is_failed, "filter.failed", np.array([s[0] for s in _STEPS])[step_idx])
    outcomes = np.where(is_failed, "failure", np.array([s[1] for s in _STEPS])[step_idx])
    return pa.RecordBatch.from_pydict(
        {
            "event_id": _ids(rng, n, "evt_", 20),
            "type": pa.array(types[order]),
            "timestamp": pa.array(ts[order], pa.timestamp("ms", tz="UTC")),
            "lead_id": leads.take(pa.array(lead_idx[order])),
            "flow_id": pa.array(np.full(n, "flow_8B3nM5kL2Q9pR4wX")),
            "entity_id": pa.array(np.char.add("ent_step", step_idx[order].astype(str))),
            "step_id": pa.array(np.char.add("step_", step_idx[order].astype(str))),
            "outcome": pa.array(outcomes[order]),
            "duration_ms": pa.array(rng.integers(5, 3000, n).astype(np.int32)),
            "metadata": metadata,
            "lead_snapshot": snap.take(pa.array(lead_idx[order])),
        }
    )
