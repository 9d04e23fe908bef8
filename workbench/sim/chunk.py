"""One chunk of leads through the flow, vectorised: leads in, Arrow events out.

A chunk is a few thousand leads that arrived one after the other. Each stage of the
flow (``stages/``: the leads themselves, the source, each enhancement and filter, the
buyers' waterfall, completion and feedback) works on numpy arrays over the leads still
in the flow and emits one *group* of events per outcome, with metadata built
column-wise (see ``_text``). The runner puts the events of all chunks in time order.

Time: every lead has a cursor, the earliest moment its next event may start. An event
starts at the cursor and lasts ``duration_ms``; the cursor then moves to
``timestamp + duration_ms + gap`` with a gap of at least 1 ms, so a lead's timestamps
strictly increase and each event ends before the next begins. ``flow.completed`` is
stamped when processing ends and its ``duration_ms`` is the whole flow; feedback comes
at least ten minutes later.

Incidents enter through common random numbers: each decision draws one uniform number
and compares it with both the clean and the incident probability, so the leads an
incident *changed* are known exactly (the run report's ground truth, ``touched``).

The state of a chunk (a :class:`Chunk`), per lead unless said otherwise:

==================  =====================================================================
``plan``            what every chunk of the run shares (flow, incidents, caps, breakers)
``rng``             the chunk's random generator (the draw order is the reproducibility)
``size``            the number of leads
``arrived``         arrival time, ms since the epoch
``source``          index of the source that sent the lead
``lead_ids``        the leads' ids (Arrow strings)
``cursor``          the earliest time the lead's next event may start
``alive``           still in the flow (not rejected, filtered or finished)
``final``           final outcome code (index of ``plan.FINAL``)
``cost``            money spent on the lead so far (units of ``MONEY``)
``revenue``         money a buyer paid
``steps``           steps executed
``problems``        the data problems each lead carries: name -> mask (leads stage)
``missing_field``   the field a lead lacks ('' if none)
``values``          each lead field's JSON value text: name -> Arrow strings
``has``             whether the lead has each field: name -> mask
``fields``          fields rules and conditions read: name -> (kind, codes or numbers)
``base``            the lead as an open JSON object, before any enhancement
``submitted``       the lead as submitted (``base`` closed)
``appended``        per enhancement, the members it appended to each lead (JSON text)
``duplicate_of``    for a duplicate, the earlier lead it repeats (its own index if none)
``phone_len``       digits in the phone number as sent
``trustedform_age`` age of the TrustedForm certificate at submission, seconds
``mapping``         a field mapping an incident corrupted (or None)
``buyer``           index of the buyer that took the lead (-1 none)
``deliveries``      (lead indexes, buyer lead ids, prices) of each delivery group
``completed_at``    when ``flow.completed`` was stamped; ``flow_ms`` its duration
``groups``          the events emitted so far, one tuple of columns per group
``touched``         incident index -> the leads it changed (ground truth)
==================  =====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _data
from . import _text as T
from .flow import LEAD_FIELDS, Condition
from .plan import OUTCOMES, PHONE_TYPES, TY, TYPES, Plan

__all__ = ["Chunk", "CorruptedMapping"]


@dataclass
class CorruptedMapping:
    """A field-mapping corruption in a chunk: which leads it changed (``lead``, and a
    mask/rank over the chunk), for which buyer (None: all), and the changed values."""

    incident_k: int
    incident: object
    effect: object
    lead: np.ndarray
    mask: np.ndarray
    rank: np.ndarray
    buyer: int | None
    vals: dict
    payload: pa.Array | None = None


class Chunk:
    """Leads ``t_arrive`` (sorted ms) from sources ``src`` through ``plan``'s flow; the
    state every stage reads and writes (see the module docstring)."""

    def __init__(self, plan: Plan, rng: np.random.Generator, t_arrive, src):
        self.plan = plan
        self.rng = rng
        self.size = m = len(t_arrive)
        self.arrived = np.asarray(t_arrive, dtype=np.int64)
        self.source = np.asarray(src, dtype=np.int64)
        self.cursor = self.arrived.copy()
        self.alive = np.ones(m, dtype=bool)
        self.final = np.zeros(m, dtype=np.int8)
        self.cost = np.zeros(m, dtype=np.int64)
        self.revenue = np.zeros(m, dtype=np.int64)
        self.steps = np.zeros(m, dtype=np.int32)
        self.groups: list[tuple] = []
        self.touched: dict[int, list[np.ndarray]] = {}
        self.appended: list[pa.Array] = []  # per enhancement: ',"k":v...' or ''
        self.lead_ids = T.ids(rng, m, "lead_", 16)
        self.mapping: CorruptedMapping | None = None
        self.buyer = np.full(m, -1, dtype=np.int64)
        self.deliveries: list[tuple] = []

    def touch(self, k: int, idx: np.ndarray) -> None:
        if len(idx):
            self.touched.setdefault(k, []).append(np.asarray(idx))

    def gap(self, n: int) -> np.ndarray:
        return 1 + self.rng.integers(0, 4, n)

    def emit(self, type_, outcome, idx, ts, dur, ent, meta, snap):
        """One group of events: ``outcome`` a code or array, ``ent`` an entity index
        (or array, -1 none), ``snap`` snapshot refs into the chunk's snapshot pool."""
        n = len(idx)
        if n == 0:
            return
        self.groups.append(
            (
                np.full(n, TY[type_], dtype=np.int8),
                np.broadcast_to(np.asarray(outcome, dtype=np.int8), (n,)),
                np.asarray(idx, dtype=np.int64),
                np.asarray(ts, dtype=np.int64),
                np.asarray(dur, dtype=np.int64),
                np.broadcast_to(np.asarray(ent, dtype=np.int64), (n,)),
                meta,
                np.asarray(snap, dtype=np.int64),
            )
        )

    def snap(self, idx, version: int, ent_buyer=None) -> np.ndarray:
        """Snapshot refs of leads ``idx`` after ``version`` enhancements; at the buyers
        (version -1) a corrupted mapping shows where it applies."""
        m = self.size
        if version >= 0:
            return version * m + idx
        ref = len(self.plan.enh) * m + idx
        mp = self.mapping
        if mp is not None:
            hit = mp.mask[idx]
            if mp.buyer is not None:
                # one buyer's mapping: only what that buyer got (and says) shows it
                buyer = np.asarray(ent_buyer) if ent_buyer is not None else -1
                hit = hit & (buyer == mp.buyer)
            ref = np.where(hit, (len(self.plan.enh) + 1) * m + mp.rank[idx], ref)
        return ref

    def fields_json(self, vals, has, fields, idx=None, close: bool = False) -> pa.Array:
        """The lead's fields as JSON object text, open ('{"first_name":"..",...') unless
        ``close``. The first field (first_name) is on every lead; others may be absent."""
        n = self.size if idx is None else len(idx)
        ix = None if idx is None else pa.array(idx)
        parts: list = ["{"]
        for i, f in enumerate(fields):
            v = vals[f] if ix is None else vals[f].take(ix)
            h = has[f] if idx is None else has[f][idx]
            key = ("" if i == 0 else ",") + T.lit(f) + ":"
            if h.all():
                parts += [key, v]
            elif i == 0:
                raise ValueError(f"every lead must have {f!r}")  # pragma: no cover
            else:
                keys = T.masked(
                    pa.array([key], pa.string()).take(pa.array(np.zeros(n, np.int64))), h
                )
                parts += [keys, T.masked(v, h)]
        if close:
            parts.append("}")
        return T.cat(n, *parts)

    def field(self, name: str) -> tuple[str, np.ndarray]:
        """(kind, values) of a field: cat codes (-1 missing), num (NaN), bool (-1/0/1)."""
        return self.fields[name]

    def vocab(self, name: str) -> tuple:
        return {
            "state": _data.STATES,
            "source": tuple(s.name for s in self.plan.sources),
            "vertical": self.plan.vert_names,
            "phone.type": PHONE_TYPES,
        }.get(name, ())

    def value_text(self, name: str, idx, quoted: bool) -> pa.Array:
        """Field values of leads ``idx`` as text (JSON when ``quoted``; null if missing)."""
        if name in self.values:
            v = self.values[name].take(pa.array(idx))
            if not quoted and LEAD_FIELDS[name] in ("text", "cat"):
                v = pc.utf8_slice_codeunits(v, 1, -1)
            return T.when(self.has[name][idx], v, "null" if quoted else "(missing)")
        kind, arr = self.fields[name]
        a = arr[idx]
        if kind == "cat":
            vocab = self.vocab(name)
            txt = T.pick(vocab, np.maximum(a, 0))
            txt = T.quoted(txt) if quoted else txt
            return T.when(a >= 0, txt, "null" if quoted else "(missing)")
        if kind == "bool":
            return T.pick(("null" if quoted else "(missing)", "false", "true"), a + 1)
        out = T.num(np.where(np.isnan(a), 0, a).astype(np.int64))
        return T.when(~np.isnan(a), out, "null" if quoted else "(missing)")

    def cond(self, c: Condition, idx) -> np.ndarray:
        """Leads ``idx`` meeting condition ``c`` (a missing field meets only ``None``)."""
        if c.field in self.fields:
            kind, arr = self.fields[c.field]
            a = arr[idx]
        else:
            kind = "text"
            a = None
        if c.values is None:
            if kind != "num":
                return np.zeros(len(idx), dtype=bool)
            ok = ~np.isnan(a)
            if c.min is not None:
                ok &= a >= c.min
            if c.max is not None:
                ok &= a <= c.max
            return ok
        out = np.zeros(len(idx), dtype=bool)
        for v in c.values:
            if kind == "cat":
                vocab = self.vocab(c.field)
                code = -1 if v is None else (vocab.index(v) if v in vocab else -99)
                out |= a == code
            elif kind == "bool":
                code = -1 if v is None else int(bool(v))
                out |= a == code
            elif kind == "num":
                out |= np.isnan(a) if v is None else (a == float(v))
            else:
                h = self.has.get(c.field)
                if v is None:
                    out |= ~h[idx] if h is not None else False
                else:
                    txt = self.value_text(c.field, idx, quoted=False)
                    out |= np.asarray(pc.equal(txt, str(v)).fill_null(False))
        return out

    def set_field(self, name, kind, lead, values):
        if name not in self.fields:
            fill = {"bool": -1, "cat": -1, "num": np.nan}[kind]
            dtype = {"bool": np.int8, "cat": np.int64, "num": float}[kind]
            self.fields[name] = (kind, np.full(self.size, fill, dtype=dtype))
        self.fields[name][1][lead] = values

    def field_kind(self, name: str) -> str:
        for e in self.plan.enh:
            if name in e.appends:
                return e.appends[name]
        if name in self.fields:
            return self.fields[name][0]
        return LEAD_FIELDS.get(name, "text")

    def present(self, name, idx) -> np.ndarray:
        if name in self.has:
            return self.has[name][idx]
        if name in self.fields:
            kind, a = self.fields[name]
            return ~np.isnan(a[idx]) if kind == "num" else a[idx] >= 0
        return np.zeros(len(idx), dtype=bool)

    def route(self, idx) -> np.ndarray:
        """The routing rule each lead follows (first whose conditions all hold)."""
        out = np.full(len(idx), -1, dtype=np.int64)
        for ri, r in enumerate(self.plan.flow.routes):
            hold = np.ones(len(idx), dtype=bool)
            for c in r.conditions:
                hold &= self.cond(c, idx)
            out = np.where((out < 0) & hold, ri, out)
        return out

    def first_buyer(self, idx) -> np.ndarray:
        return self.plan.routes[self.route(idx), 0]

    def snapshot_versions(self) -> list[pa.Array]:
        """The snapshot pool, in pieces: after 0..E enhancements (m leads each), then
        the leads a field-mapping corruption changed (``snap`` refs index this)."""
        m = self.size
        versions = [self.submitted]
        for k in range(1, len(self.appended) + 1):
            versions.append(T.cat(m, self.base, *self.appended[:k], "}"))
        if self.mapping is not None:
            mvals, lead = self.mapping.vals, self.mapping.lead
            ix = pa.array(lead)
            b = self.fields_json(mvals, self.has, tuple(mvals), lead)
            versions.append(T.cat(len(lead), b, *[pt.take(ix) for pt in self.appended], "}"))
        return versions

    def sources(self, ent_ids: pa.Array, step_ids: pa.Array) -> dict:
        """The chunk's events, not yet in order: numpy columns, Arrow pieces per text
        column (with a ref map where rows index a pool), and the time order."""
        g = self.groups
        types = np.concatenate([x[0] for x in g])
        outs = np.concatenate([x[1] for x in g])
        lead = np.concatenate([x[2] for x in g])
        ts = np.concatenate([x[3] for x in g])
        dur = np.concatenate([x[4] for x in g]).astype(np.int32)
        ent = np.concatenate([x[5] for x in g])
        snap = np.concatenate([x[7] for x in g])
        n = len(ts)
        ent_ix = pa.array(np.maximum(ent, 0), mask=ent < 0)
        # feedback names its buyer but is no step of the flow: no step_id, so the store
        # names its step from metadata ("Feedback") and buyers' step durations stay theirs
        no_step = (
            (ent < 0) | (types == TY["feedback.received"]) | (types == TY["feedback.processed"])
        )
        step_ix = pa.array(np.maximum(ent, 0), mask=no_step)
        return {
            "ts": ts,
            "dur": dur,
            "order": np.lexsort((lead, ts)),
            "types": types,
            "text": {
                "event_id": ([T.ids(self.rng, n, "evt_", 20)], None),
                "type": ([T.pick(TYPES, types)], None),
                "lead_id": ([self.lead_ids.take(pa.array(lead))], None),
                "entity_id": ([ent_ids.take(ent_ix)], None),
                "step_id": ([step_ids.take(step_ix)], None),
                "outcome": ([T.pick(OUTCOMES, outs)], None),
                "metadata": ([x[6] for x in g], None),
                "lead_snapshot": (self.snapshot_versions(), snap),
            },
        }


def as_list(v):
    return list(v) if isinstance(v, (list, tuple)) else [v]


def as_float(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.cast(arr, pa.float64()))
