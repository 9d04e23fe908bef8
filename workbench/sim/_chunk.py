"""One chunk of leads through the flow, vectorised: leads in, Arrow events out.

A chunk is a few thousand leads that arrived one after the other. Each stage of the
flow (source, each enhancement and filter, the buyers' waterfall, completion,
feedback) works on numpy arrays over the leads still in the flow and emits one
*group* of events per outcome, with metadata built column-wise (see ``_text``). The
runner puts the events of all chunks in time order (see ``Chunk.sources``).

Time: every lead has a cursor, the earliest moment its next event may start. An event
starts at the cursor and lasts ``duration_ms``; the cursor then moves to
``timestamp + duration_ms + gap`` with a gap of at least 1 ms, so a lead's timestamps
strictly increase and each event ends before the next begins. ``flow.completed`` is
stamped when processing ends and its ``duration_ms`` is the whole flow
(its timestamp minus ``source.submitted``'s); feedback comes at least ten minutes later.

Money is kept in ten-thousandths of a dollar (integers), so totals equal the sums of
their parts exactly before they are written as decimals.

Incidents enter through common random numbers: each decision draws one uniform number
and compares it with both the clean and the incident probability, so the leads an
incident *changed* are known exactly (the run report's ground truth).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _data
from . import _text as T
from .flow import LEAD_FIELDS, SERVICES, Condition, Enhancement, Filter, Flow, Rule

HOUR = 3_600_000
DAY = 86_400_000
MONEY = 10_000  # units per dollar

TYPES = (
    "source.submitted", "source.accepted", "source.rejected", "filter.passed", "filter.failed",
    "enhancement.success", "enhancement.failure", "enhancement.error", "recipient.delivered",
    "recipient.failed", "recipient.error", "feedback.received", "feedback.processed",
    "flow.completed", "retry.attempted",
)  # fmt: skip
TY = {t: i for i, t in enumerate(TYPES)}
OUTCOMES = ("success", "failure", "error", "skipped")
OK, FAIL, ERR = 0, 1, 2
FINAL = ("delivered", "rejected", "filtered", "buyer_rejected", "delivery_error", "no_buyer")
ETYPES = ("timeout", "http_5xx", "connection_refused", "circuit_open")
BREAKER = ("closed", "open", "half_open")
PHONE_TYPES = ("mobile", "landline", "voip")
# geography columns
_GEO = _data.GEOGRAPHY
_GEO_CITY = [g[0] for g in _GEO]
_GEO_STATE = np.array([_data.STATES.index(g[1]) for g in _GEO], dtype=np.int16)
_GEO_ZIP = [g[2] for g in _GEO]
_GEO_AREA = [g[3] for g in _GEO]
_GEO_W = np.array([g[4] for g in _GEO])
_REMOTE = np.array([g[5] for g in _GEO])
_MAIN_P = np.where(_REMOTE, 0, _GEO_W) / np.where(_REMOTE, 0, _GEO_W).sum()
_REMOTE_P = np.where(_REMOTE, _GEO_W, 0) / np.where(_REMOTE, _GEO_W, 0).sum()
_PAYLOAD_FIELDS = ("first_name", "last_name", "email", "phone", "address", "city", "state", "zip")
_FAILURES = {
    "phone_validation": ("no_match", "Carrier lookup returned no result for this number"),
    "email_verification": ("unverifiable", "Mail server did not confirm the mailbox"),
    "trustedform": ("certificate_not_found", "Certificate not found or already claimed"),
}
_OUTAGE = ("provider_unavailable", "Upstream data provider unavailable")
_CONTACT_REASON = "Invalid contact information: phone could not be verified"
# cumulative weights of timeout, http_5xx, connection_refused when an endpoint fails
_ENDPOINT_ERRW = np.array([0.6, 0.9, 1.0])


@dataclass
class _Mapping:
    """A field-mapping corruption in a chunk: which leads it changed (``lead``, and a
    mask/rank over the chunk), for which buyer (None: all), and the changed values."""

    incident_k: int
    incident: object
    lead: np.ndarray
    mask: np.ndarray
    rank: np.ndarray
    buyer: int | None
    vals: dict
    payload: pa.Array | None = None


def lognormal(rng, median, sigma, n) -> np.ndarray:
    return np.asarray(median) * np.exp(np.asarray(sigma) * rng.standard_normal(n))


class Plan:
    """What every chunk of one run shares: the flow as arrays, incidents, time tables,
    and the state that carries from chunk to chunk (caps, circuit breakers)."""

    def __init__(self, flow: Flow, incidents, start_ms: int, end_ms: int):
        self.flow = flow
        self.incidents = incidents
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.hour0 = start_ms - start_ms % HOUR
        self.n_hours = (end_ms - self.hour0) // HOUR + 2
        self._offsets: dict[str, np.ndarray] = {}
        # dimension vocabularies: entity and step ids, in a fixed order
        self.sources = flow.sources
        self.enh = flow.enhancements
        self.buyers = flow.buyers
        ents = [*flow.sources, *flow.steps, *flow.buyers]
        self.entity_ids = [e.id for e in ents]
        self.step_ids = [e.step_id for e in ents]
        self.ent_index = {e.name: i for i, e in enumerate(ents)}
        self.n_enh_before = {}
        k = 0
        for s in flow.steps:
            if isinstance(s, Enhancement):
                k += 1
            self.n_enh_before[s.name] = k  # enhancements at or before this step
        self.vert_names = tuple(flow.verticals)
        self.src_vert = np.array([self.vert_names.index(s.vertical) for s in flow.sources])
        B = len(flow.buyers)
        self.buyer_names = [b.name for b in flow.buyers]
        self.acc = np.array([b.acceptance for b in flow.buyers])
        self.acc_hour = np.array([b.acceptance_by_hour for b in flow.buyers])
        self.b_err = np.array([b.error_rate for b in flow.buyers])
        self.b_timeout = np.array([b.timeout_ms for b in flow.buyers])
        self.b_med = np.array([b.response.median for b in flow.buyers])
        self.b_sig = np.array([b.response.sigma for b in flow.buyers])
        self.b_retries = np.array([b.retries for b in flow.buyers])
        self.b_backoff = np.array([b.backoff_ms for b in flow.buyers])
        self.b_errw = np.array([_errw(b.errors) for b in flow.buyers])
        self.b_price = np.array([round(b.price * MONEY) for b in flow.buyers], dtype=np.int64)
        self.b_conv = np.array([b.conversion_rate for b in flow.buyers])
        self.b_ret = np.array([b.return_rate for b in flow.buyers])
        self.b_prefix = [_buyer_prefix(b.name) for b in flow.buyers]
        self.b_host = [_host(b.name) for b in flow.buyers]
        # waterfall: routes x positions of buyer indices (-1: none)
        width = max(len(r.buyers) for r in flow.routes)
        self.routes = np.full((len(flow.routes), width), -1, dtype=np.int64)
        for i, r in enumerate(flow.routes):
            for j, name in enumerate(r.buyers):
                self.routes[i, j] = self.buyer_names.index(name)
        # caps carried across chunks
        n_days = (end_ms - self.hour0) // DAY + 2
        self.cap_h = np.zeros((B, self.n_hours), dtype=np.int64)
        self.cap_d = np.zeros((B, n_days), dtype=np.int64)
        self.b_cap_h = np.array([b.cap_hour or 1 << 40 for b in flow.buyers], dtype=np.int64)
        self.b_cap_d = np.array([b.cap_day or 1 << 40 for b in flow.buyers], dtype=np.int64)
        # circuit breakers: [consecutive errors, open until]
        self.breakers = {e.name: [0, -1] for e in self.enh}
        self.inc = {}
        for k, inc in enumerate(incidents):
            self.inc.setdefault(inc.name, []).append((k, inc))

    def offsets(self, tz: str) -> np.ndarray:
        """UTC offset (ms) of ``tz`` for each hour of the run (DST-aware)."""
        if tz not in self._offsets:
            import datetime as dt
            from zoneinfo import ZoneInfo

            zone = ZoneInfo(tz)
            out = np.empty(self.n_hours, dtype=np.int64)
            for h in range(self.n_hours):
                t = dt.datetime.fromtimestamp((self.hour0 + h * HOUR) / 1000, dt.UTC)
                out[h] = int(t.astimezone(zone).utcoffset().total_seconds() * 1000)
            self._offsets[tz] = out
        return self._offsets[tz]

    def local(self, t: np.ndarray, tz: str) -> np.ndarray:
        """Local wall-clock time in ms since the epoch (for hour and weekday)."""
        b = np.clip((t - self.hour0) // HOUR, 0, self.n_hours - 1)
        return t + self.offsets(tz)[b]

    def window(self, inc, t: np.ndarray) -> np.ndarray:
        m = (t >= inc.start_ms) & (t < inc.end_ms)
        band = inc.parameters.get("hours")
        if band and band not in ("all", "*"):
            lo, hi = (int(x) for x in band.split("-"))
            h = (self.local(t, self.flow.timezone) // HOUR) % 24
            m &= (h >= lo) & (h < hi)
        return m


def _errw(errors) -> np.ndarray:
    w = dict(errors)
    return np.cumsum([w.get(e, 0.0) for e in ETYPES[:3]])


def _buyer_prefix(name: str) -> str:
    letters = "".join(w[0] for w in name.split() if w[:1].isalpha()).upper()
    return (letters + "XXX")[:3]


def _host(name: str) -> str:
    slug = "".join(c for c in name.lower().replace(" ", "-") if c.isalnum() or c == "-")
    return f"https://leads.{slug}.example.com/post"


class Chunk:
    """Leads ``t_arrive`` (sorted ms) from sources ``src`` through ``plan``'s flow."""

    def __init__(self, plan: Plan, rng: np.random.Generator, t_arrive, src):
        self.p = plan
        self.rng = rng
        self.m = m = len(t_arrive)
        self.t0 = np.asarray(t_arrive, dtype=np.int64)
        self.src = np.asarray(src, dtype=np.int64)
        self.cursor = self.t0.copy()
        self.alive = np.ones(m, dtype=bool)
        self.final = np.zeros(m, dtype=np.int8)
        self.cost = np.zeros(m, dtype=np.int64)
        self.revenue = np.zeros(m, dtype=np.int64)
        self.steps = np.zeros(m, dtype=np.int32)
        self.groups: list[tuple] = []
        self.touched: dict[int, list[np.ndarray]] = {}
        self.enh_parts: list[pa.Array] = []  # per enhancement: ',"k":v...' or ''
        self.lead_ids = T.ids(rng, m, "lead_", 16)
        self.mapped: _Mapping | None = None

    # ------------------------------------------------------------------ helpers

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
        m = self.m
        if version >= 0:
            return version * m + idx
        ref = len(self.p.enh) * m + idx
        mp = self.mapped
        if mp is not None:
            hit = mp.mask[idx]
            if mp.buyer is not None:
                # one buyer's mapping: only what that buyer got (and says) shows it
                buyer = np.asarray(ent_buyer) if ent_buyer is not None else -1
                hit = hit & (buyer == mp.buyer)
            ref = np.where(hit, (len(self.p.enh) + 1) * m + mp.rank[idx], ref)
        return ref

    # ------------------------------------------------------------------ leads

    def make_leads(self) -> None:
        """Fields of every lead (fake PII), with each source's data problems and the
        incidents that plant problems in leads."""
        p, rng, m, t = self.p, self.rng, self.m, self.t0
        src = self.src
        q = [s.quality for s in p.sources]

        def rate(attr):
            return np.array([getattr(x, attr) for x in q])[src]

        u = {k: rng.random(m) for k in ("nine", "malf", "miss", "email", "disc", "low", "dup",
                                          "area", "tfm", "tfx")}  # fmt: skip
        flag = {
            "nine": u["nine"] < rate("nine_digit_phone"),
            "malf": u["malf"] < rate("malformed_phone"),
            "miss": u["miss"] < rate("missing_field"),
            "email": u["email"] < rate("invalid_email"),
            "disc": u["disc"] < rate("disconnected_phone"),
            "low": u["low"] < rate("low_phone_score"),
            "dup": u["dup"] < rate("duplicate"),
            "area": u["area"] < rate("out_of_area"),
            "tfm": u["tfm"] < rate("trustedform_missing"),
            "tfx": u["tfx"] < rate("trustedform_expired"),
        }
        miss_field = np.full(m, "", dtype=object)
        vert = p.src_vert[src]
        vfields = [p.flow.verticals[v] for v in p.vert_names]
        # a missing field is one of the lead's fields, never the first name
        choice = rng.random(m)
        for vi, fields in enumerate(vfields):
            cand = [f for f in fields if f != "first_name"]
            sel = flag["miss"] & (vert == vi)
            miss_field[sel] = np.array(cand, dtype=object)[(choice[sel] * len(cand)).astype(int)]
        # incidents that plant problems in leads: the incident is the lead's only problem
        planted = np.zeros(m, dtype=bool)
        planted_by = []
        for name, key in (("nine_digit_phones", "nine"), ("source_rejection_spike", "miss"),
                          ("duplicate_flood", "dup")):  # fmt: skip
            for k, inc in p.inc.get(name, ()):
                s = p.ent_index[inc.parameters["source"]]
                hit = (src == s) & p.window(inc, t) & (u[key] < inc.parameters["rate"])
                hit &= ~flag[key] & ~planted
                for f in flag:
                    flag[f][hit] = False
                miss_field[hit] = ""
                if name == "source_rejection_spike":
                    miss_field[hit] = inc.parameters["field"]
                flag[key][hit] = True
                planted |= hit
                planted_by.append((k, name, hit))
        self.flag = flag
        self.miss_field = miss_field

        # identities: names, place, contact data
        geo = rng.choice(len(_GEO), size=m, p=_MAIN_P)
        geo[flag["area"]] = rng.choice(len(_GEO), size=int(flag["area"].sum()), p=_REMOTE_P)
        c = {
            "geo": geo,
            "fn": rng.integers(0, len(_data.FIRST_NAMES), m),
            "ln": rng.integers(0, len(_data.LAST_NAMES), m),
            "mail_n": rng.integers(1, 100, m),
            "dom": rng.integers(0, 3, m),
            "line": rng.integers(100, 10000, m),
            "house": rng.integers(100, 10000, m),
            "street": rng.integers(0, len(_data.STREETS), m),
            "suffix": rng.integers(0, len(_data.STREET_SUFFIXES), m),
            "zip2": rng.integers(0, 100, m),
            "by": rng.integers(1946, 2007, m),
            "bm": rng.integers(1, 13, m),
            "bd": rng.integers(1, 29, m),
            "ssn": rng.integers(0, 10**8, m),
        }
        ip = rng.integers(1, 255, m)
        ipn = rng.integers(0, 3, m)
        # a duplicate repeats the identity of an earlier lead of the chunk; chains of
        # duplicates resolve to the first lead of the person
        # (only leads in the service area are copied, so a duplicate's one problem is
        # being a duplicate)
        ident = np.arange(m)
        home = np.flatnonzero(~flag["area"])
        before = np.searchsorted(home, np.arange(m), "left")  # in-area leads before each
        dup = flag["dup"] & (before > 0)
        pick_home = (rng.random(m) * before).astype(np.int64)
        if len(home):
            ident[dup] = home[np.minimum(pick_home, len(home) - 1)][dup]
        while True:
            nxt = ident[ident]
            if np.array_equal(nxt, ident):
                break
            ident = nxt
        flag["dup"] = dup
        for k, name, hit in planted_by:
            # a lead cannot duplicate one that came before it in no chunk
            self.touch(k, np.flatnonzero(hit & dup if name == "duplicate_flood" else hit))
        self.dup_of = ident
        c = {k: v[ident] for k, v in c.items()}
        geo, fn, ln = c["geo"], c["fn"], c["ln"]
        mail_n, dom, line, house = c["mail_n"], c["dom"], c["line"], c["house"]
        street, suffix, zip2, ssn = c["street"], c["suffix"], c["zip2"], c["ssn"]
        by, bm, bd = c["by"], c["bm"], c["bd"]
        self.geo = geo
        st = _GEO_STATE[geo]

        first = T.pick(_data.FIRST_NAMES, fn)
        last = T.pick(_data.LAST_NAMES, ln)
        email = T.cat(
            m,
            pc.utf8_lower(first),
            ".",
            pc.utf8_lower(last),
            T.num(mail_n),
            T.masked(T.pick(["@"], np.zeros(m, np.int64)), ~flag["email"]),
            T.pick(_data.EMAIL_DOMAINS, dom),
        )
        area = T.pick(_GEO_AREA, geo)
        line4 = T.digits(line, 4)
        # data problems the source sends: 9 digits, or 11 / 8 digits
        eleven = rng.random(m) < 0.5
        malf = flag["malf"] & ~flag["nine"]
        self.phone_len = np.where(flag["nine"], 9, np.where(malf, np.where(eleven, 11, 8), 10))
        cut = np.where(flag["nine"], 3, np.where(malf & ~eleven, 2, 4))
        line_cut = line4
        if (cut < 4).any():
            # the number as sent: its last digit(s) cut off
            line_cut = pc.if_else(
                pa.array(cut == 4),
                line4,
                pc.if_else(
                    pa.array(cut == 3),
                    pc.utf8_slice_codeunits(line4, 0, 3),
                    pc.utf8_slice_codeunits(line4, 0, 2),
                ),
            )
        one = T.masked(T.pick(["1"], np.zeros(m, np.int64)), malf & eleven)
        phone = T.cat(m, one, area, "555", line_cut)
        tf_age = np.where(
            flag["tfx"],
            rng.integers(3 * 86400, 12 * 86400, m),
            (lognormal(rng, 120, 0.9, m)).astype(np.int64) + 5,
        )
        self.tf_age = tf_age
        ssn_txt = T.cat(
            m,
            '"9',
            T.digits(ssn // 10**6, 2),
            "-",
            T.digits(ssn // 10**4 % 100, 2),
            "-",
            T.digits(ssn % 10**4, 4),
            '"',
        )
        vals = {
            "first_name": T.pick([T.lit(x) for x in _data.FIRST_NAMES], fn),
            "last_name": T.pick([T.lit(x) for x in _data.LAST_NAMES], ln),
            "email": T.quoted(email),
            "phone": T.quoted(phone),
            "address": T.cat(
                m,
                '"',
                T.num(house),
                " ",
                T.pick(_data.STREETS, street),
                " ",
                T.pick(_data.STREET_SUFFIXES, suffix),
                '"',
            ),
            "city": T.pick([T.lit(x) for x in _GEO_CITY], geo),
            "state": T.pick([T.lit(x) for x in _data.STATES], st),
            "zip": T.cat(m, '"', T.pick(_GEO_ZIP, geo), T.digits(zip2, 2), '"'),
            "ip_address": T.cat(m, '"', T.pick(_data.IP_PREFIXES, ipn), T.num(ip), '"'),
            "dob": T.cat(m, '"', T.num(by), "-", T.digits(bm, 2), "-", T.digits(bd, 2), '"'),
            "ssn": ssn_txt,
            "trustedform_cert_url": T.cat(m, '"' + _data.TRUSTEDFORM_URL, T.hexes(rng, m, 40), '"'),
            "vehicle_year": T.num(rng.integers(2008, 2027, m)),
            "currently_insured": T.when(rng.random(m) < 0.7, "true", "false"),
            "coverage_amount": T.num(
                np.array([100_000, 250_000, 500_000, 750_000, 1_000_000])[rng.integers(0, 5, m)]
            ),
        }
        self.vals = vals  # JSON value text per field
        # which lead has which field: its vertical's fields, minus what is missing
        has = {}
        for f in vals:
            in_vert = np.array([f in fs for fs in vfields])[vert]
            has[f] = in_vert & (miss_field != f)
        has["trustedform_cert_url"] &= ~flag["tfm"]
        self.has = has
        # numbers and booleans of lead fields that rules and conditions may read
        self.fields: dict[str, tuple[str, np.ndarray]] = {
            "state": ("cat", np.where(has["state"], st, -1).astype(np.int64)),
            "source": ("cat", src.copy()),
            "vertical": ("cat", vert.astype(np.int64)),
            "coverage_amount": (
                "num",
                np.where(has["coverage_amount"], _as_float(vals["coverage_amount"]), np.nan),
            ),
            "vehicle_year": (
                "num",
                np.where(has["vehicle_year"], _as_float(vals["vehicle_year"]), np.nan),
            ),
            "currently_insured": (
                "bool",
                np.where(
                    has["currently_insured"],
                    np.asarray(pc.equal(vals["currently_insured"], "true")).astype(np.int8),
                    -1,
                ).astype(np.int8),
            ),
        }
        self.base = self._fields_json(vals, has, tuple(vals))
        self.v0 = T.cat(m, self.base, "}")  # the lead as submitted

    def _fields_json(self, vals, has, fields, idx=None, close: bool = False) -> pa.Array:
        """The lead's fields as JSON object text, open ('{"first_name":"..",...') unless
        ``close``. The first field (first_name) is on every lead; others may be absent."""
        n = self.m if idx is None else len(idx)
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
            "source": tuple(s.name for s in self.p.sources),
            "vertical": self.p.vert_names,
            "phone.type": PHONE_TYPES,
        }.get(name, ())

    def value_text(self, name: str, idx, quoted: bool) -> pa.Array:
        """Field values of leads ``idx`` as text (JSON when ``quoted``; null if missing)."""
        if name in self.vals:
            v = self.vals[name].take(pa.array(idx))
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

    # ------------------------------------------------------------------ source

    def run_source(self) -> None:
        p, rng, m = self.p, self.rng, self.m
        idx = np.arange(m)
        ent = self.src
        snap0 = self.snap(idx, 0)
        names = [T.lit(s.name) for s in p.sources]
        src_lit = T.pick(names, ent)
        dur = lognormal(rng, 35, 0.6, m).astype(np.int64) + 3
        ts = self.t0
        posting_ip = T.pick([f"198.51.100.{10 + i}" for i in range(len(p.sources))], ent)
        raw = self.v0
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
        self.emit("source.submitted", OK, idx, ts, dur, ent, meta, snap0)
        self.cursor = ts + dur + self.gap(m)
        self.steps += 1

        # acceptance: formats first (a planted format problem is what the lead shows),
        # then required fields
        reason = np.full(m, "", dtype=object)
        failed = np.full(m, "", dtype=object)
        ferr = np.full(m, "", dtype=object)
        for si, s in enumerate(p.sources):
            sel = self.src == si
            rej = np.zeros(m, dtype=bool)
            fmts = dict(s.formats)
            if "phone" in fmts:
                bad = sel & self.has["phone"] & (self.phone_len != 10) & ~rej
                for n_digits in (8, 9, 11):
                    b = bad & (self.phone_len == n_digits)
                    reason[b] = f"Invalid phone format: expected 10 digits, got {n_digits}"
                    failed[b] = '["phone.format"]'
                    ferr[b] = f'{{"phone":"expected 10 digits, got {n_digits}"}}'
                rej |= bad
            if "email" in fmts:
                bad = sel & self.has["email"] & self.flag["email"] & ~rej
                reason[bad] = "Invalid email format: missing '@'"
                failed[bad] = '["email.format"]'
                ferr[bad] = '{"email":"missing \'@\'"}'
                rej |= bad
            for f in s.required:
                bad = sel & ~self.has[f] & ~rej
                reason[bad] = f"Missing required field: {f}"
                failed[bad] = f'["{f}.required"]'
                ferr[bad] = f'{{"{f}":"required field is missing"}}'
                rej |= bad
        rejected = reason != ""
        ts = self.cursor
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
            self.vals["phone"].take(ix),
            ',"email":',
            T.when(self.has["email"][ok], self.vals["email"].take(ix), "null"),
            ',"state":',
            self.vals["state"].take(ix),
            ',"zip":',
            T.when(self.has["zip"][ok], self.vals["zip"].take(ix), "null"),
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
        self.emit("source.accepted", OK, ok, ts[ok], dur[ok], ent[ok], meta, snap0[ok])
        self.cost[ok] += cost_units[ent[ok]]
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
        self.emit("source.rejected", FAIL, bad, ts[bad], dur[bad], ent[bad], meta, snap0[bad])
        self.cursor = ts + dur + self.gap(m)
        self.alive &= ~rejected
        self.final[rejected] = FINAL.index("rejected")
        # (the reason texts above are few distinct values: building them per lead in
        # Python is cheap next to the arrays)

    # ------------------------------------------------------------------ calls

    def calls(self, idx, t_start, p_err, p_err_base, errw, timeout, med, sig, retries, backoff,
              forced=None, breaker=None):  # fmt: skip
        """Attempts of a call (enhancement or post) with retries after technical errors.

        Returns (ok, final_ts, final_dur, n_att, errors, retries_, inc_err): ``errors``
        are (pos, attempt, ts, dur, etype, http, breaker_state) groups, ``retries_``
        are (pos, count, ts, dur, original etype, result_is_error, elapsed).
        """
        rng = self.rng
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
                cur[pos] = rts + back + self.gap(k)
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
            if a == 0 and breaker is not None:
                short, bstate = self._breaker(breaker, ts, err)
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
            cur[pos] = ts + dur + self.gap(k)
            n_att[pos] = a + 1
            prev_et[pos] = et
            active[pos[good]] = False
            active[pos[e]] &= retries[pos[e]] > a
        return ok, fts, fdur, n_att, errors, retries_, inc_err, cur

    def _breaker(self, state, ts, err):
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

    def emit_errors(self, kind, errors, idx, ent, name_piece, timeout, snap_of):
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
            self.emit(kind, ERR, lead, ts, dur, e_ent, T.cat(n, *parts), snap_of(pos))

    def emit_retries(self, retries_, idx, ent, name_piece, step_name, snap_of):
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
            self.emit("retry.attempted", outcome, idx[pos], ts, dur, e_ent, meta, snap_of(pos))

    # ------------------------------------------------------------------ enhancements

    def run_enhancement(self, e: Enhancement, j: int) -> None:
        p, rng = self.p, self.rng
        svc = SERVICES[e.service]
        reads = svc["reads"]
        idx = np.flatnonzero(self.alive & self.has[reads])
        n = len(idx)
        ent = p.ent_index[e.name]
        version = j + 1
        t = self.cursor[idx]
        p_err = np.full(n, e.error_rate)
        p_err_base = p_err.copy()
        timeout = np.full(n, e.timeout_ms, dtype=np.int64)
        forced = np.zeros(n, dtype=bool)
        p_fail = np.full(n, e.failure_rate)
        p_fail_base = p_fail.copy()
        out_inc = []
        tmo_inc = []
        for k, inc in p.inc.get("enhancement_timeouts", ()):
            if inc.parameters["service"] == e.name:
                w = p.window(inc, t)
                p_err = np.where(w, np.maximum(p_err, inc.parameters["rate"]), p_err)
                timeout = np.where(w, inc.parameters["timeout_ms"], timeout)
                forced |= w
                tmo_inc.append((k, w))
        for k, inc in p.inc.get("enhancement_outage", ()):
            if inc.parameters["service"] == e.name:
                w = p.window(inc, t)
                p_fail = np.where(w, np.maximum(p_fail, inc.parameters["rate"]), p_fail)
                out_inc.append((k, w))
        errw = np.broadcast_to(_errw(e.errors), (n, 3))
        ok, fts, fdur, n_att, errors, retries_, inc_err, cur = self.calls(
            idx, t, p_err, p_err_base, errw, timeout,
            np.full(n, e.latency.median), np.full(n, e.latency.sigma),
            np.full(n, e.retries), np.full(n, e.backoff_ms), forced,
            breaker=(e.breaker_errors, e.breaker_open_ms, p.breakers[e.name]),
        )  # fmt: skip
        for k, w in tmo_inc:
            self.touch(k, idx[inc_err & w])
        self.cursor[idx] = cur
        self.steps[idx] += 1
        name_lit = T.lit(e.name)

        def name_piece(pos):
            return '"service":' + name_lit

        def snap_of(pos):
            return self.snap(idx[pos], version)

        self.emit_errors("enhancement.error", errors, idx, ent, name_piece, timeout, snap_of)
        self.emit_retries(retries_, idx, ent, name_piece, lambda pos: name_lit, snap_of)
        # answered calls: failure (no data) or success (fields appended)
        okp = np.flatnonzero(ok)
        u = rng.random(len(okp))
        fail = u < p_fail[okp]
        for k, w in out_inc:
            self.touch(k, idx[okp[fail & ~(u < p_fail_base[okp]) & w[okp]]])
        outage = np.zeros(len(okp), dtype=bool)
        for _, w in out_inc:
            outage |= w[okp]
        outage &= fail & ~(u < p_fail_base[okp])
        fpos = okp[fail]
        spos = okp[~fail]
        req = self._request(e, idx)
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
        self.emit(
            "enhancement.failure", FAIL, idx[fpos], fts[fpos], fdur[fpos], ent, meta,
            self.snap(idx[fpos], version),
        )  # fmt: skip
        if e.charge_failures:
            self.cost[idx[fpos]] += round(e.cost * MONEY)
        # success: appended fields
        lead = idx[spos]
        appended = self._append(e, lead)
        part_arr = pa.array([""] * self.m, pa.string())
        if len(lead):
            full_idx = np.full(self.m, -1)
            full_idx[lead] = np.arange(len(lead))
            pieces = pc.binary_join_element_wise(",", appended, "")
            part_arr = pc.if_else(
                pa.array(full_idx >= 0),
                pieces.take(pa.array(np.maximum(full_idx, 0))),
                "",
            )
        self.enh_parts.append(part_arr)
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
        self.emit(
            "enhancement.success", OK, lead, fts[spos], fdur[spos], ent, meta,
            self.snap(lead, version),
        )  # fmt: skip
        self.cost[lead] += round(e.cost * MONEY)

    def _request(self, e: Enhancement, idx) -> pa.Array:
        reads = SERVICES[e.service]["reads"]
        n = len(idx)
        return T.cat(
            n,
            '{"method":"POST","uri":' + T.lit(SERVICES[e.service]["uri"]) + ',"body":{',
            T.lit(reads),
            ":",
            self.vals[reads].take(pa.array(idx)),
            "}}",
        )

    def _append(self, e: Enhancement, lead) -> pa.Array:
        """The fields an enhancement appends for ``lead`` (JSON members, no braces), and
        their values recorded for rules and buyers."""
        rng = self.rng
        n = len(lead)
        if e.service == "phone_validation":
            valid = (~self.flag["disc"][lead]) & (self.phone_len[lead] == 10)
            valid &= rng.random(n) < e.valid_rate
            ptype = rng.choice(3, size=n, p=[0.68, 0.2, 0.12])
            score = np.where(
                valid,
                np.where(
                    self.flag["low"][lead],
                    rng.integers(8, 30, n),
                    np.clip(100 - rng.gamma(2.0, 9.0, n), 30, 99).astype(np.int64),
                ),
                rng.integers(0, 21, n),
            )
            self._set("phone.valid", "bool", lead, valid.astype(np.int8))
            self._set("phone.type", "cat", lead, ptype)
            self._set("appended.phone_score", "num", lead, score.astype(float))
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
            valid = ~self.flag["email"][lead] & (rng.random(n) < e.valid_rate)
            self._set("email.valid", "bool", lead, valid.astype(np.int8))
            return T.cat(n, '"email.valid":', T.when(valid, "true", "false"))
        age = self.tf_age[lead] + (self.cursor[lead] - self.t0[lead]) // 1000
        valid = age <= 72 * 3600
        self._set("trustedform.valid", "bool", lead, valid.astype(np.int8))
        self._set("trustedform.age_seconds", "num", lead, age.astype(float))
        return T.cat(
            n,
            '"trustedform.valid":',
            T.when(valid, "true", "false"),
            ',"trustedform.age_seconds":',
            T.num(age),
        )

    def _set(self, name, kind, lead, values):
        if name not in self.fields:
            fill = {"bool": -1, "cat": -1, "num": np.nan}[kind]
            dtype = {"bool": np.int8, "cat": np.int64, "num": float}[kind]
            self.fields[name] = (kind, np.full(self.m, fill, dtype=dtype))
        self.fields[name][1][lead] = values

    # ------------------------------------------------------------------ filters

    def run_filter(self, f: Filter) -> None:
        p, rng = self.p, self.rng
        sel = self.alive.copy()
        if f.applies_to:
            allowed = [p.ent_index[s] for s in f.applies_to]
            sel &= np.isin(self.src, allowed)
        idx = np.flatnonzero(sel)
        n = len(idx)
        if not n:
            return
        ent = p.ent_index[f.name]
        version = p.n_enh_before[f.name]
        t = self.cursor[idx]
        dur = lognormal(rng, 3, 0.6, n).astype(np.int64) + 1
        fails, values, reasons, extra = [], [], [], []
        for rule in f.rules:
            fail, val_json, reason, xval = self._rule(f, rule, idx, t)
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
        self.emit(
            "filter.passed", OK, idx[ok], t[ok], dur[ok], ent, meta, self.snap(idx[ok], version)
        )
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
            dest = T.pick([T.lit(b) for b in p.buyer_names], self.first_buyer(idx[bad]))
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
            self.emit(
                "filter.failed", FAIL, idx[bad], t[bad], dur[bad], ent, meta,
                self.snap(idx[bad], version),
            )  # fmt: skip
            self.alive[idx[bad]] = False
            self.final[idx[bad]] = FINAL.index("filtered")
        self.cursor[idx] = t + dur + self.gap(n)
        self.steps[idx] += 1

    def _rule(self, f: Filter, rule: Rule, idx, t):
        """(fails, failed-value JSON members, reason JSON text, _) for one rule."""
        n = len(idx)
        p = self.p
        if rule.kind == "duplicate_within_days":
            fail = self.flag["dup"][idx]
            orig = self.lead_ids.take(pa.array(self.dup_of[idx]))
            vals = T.cat(n, '"duplicate_of":"', orig, '","matched_on":["email","phone"]')
            return fail, vals, T.cat(n, T.lit(rule.reason)), None
        if rule.kind == "business_hours":
            sch = rule.schedule
            tzs = np.zeros(n, dtype=np.int64)
            zones = [sch.timezone]
            for _, inc in p.inc.get("business_hours_wrong_timezone", ()):
                if inc.parameters["filter"] == f.name:
                    zones.append(inc.parameters["timezone"])
                    tzs = np.where(p.window(inc, t), len(zones) - 1, tzs)
            local = np.zeros(n, dtype=np.int64)
            for zi, z in enumerate(zones):
                sel = tzs == zi
                local[sel] = p.local(t[sel], z)
            right = p.local(t, sch.timezone)

            def inside(loc):
                minute = (loc // 60_000) % 1440
                wd = ((loc // DAY) + 3) % 7
                return (
                    np.isin(wd, sch.days) & (minute >= sch.start_minute) & (minute < sch.end_minute)
                )

            fail = ~inside(local)
            for k, inc in p.inc.get("business_hours_wrong_timezone", ()):
                if inc.parameters["filter"] == f.name:
                    w = p.window(inc, t)
                    self.touch(k, idx[fail & inside(right) & w])
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
            h = self._present(field, idx)
            fail = h != rule.value
            vals = T.cat(n, T.lit(field) + ":", self.value_text(field, idx, True))
            return fail, vals, T.cat(n, T.lit(rule.reason)), None
        kind = self.field_kind(field)
        if kind == "num":
            a = self.fields[field][1][idx] if field in self.fields else np.full(n, np.nan)
            if rule.kind == "min":
                fail = a < rule.value
            elif rule.kind == "max":
                fail = a > rule.value
            else:
                fail = ~self.cond(Condition(field, tuple(_as_list(rule.value))), idx)
                if rule.kind in ("not_in", "not_equals"):
                    fail = ~fail
                fail &= ~np.isnan(a) | (rule.kind in ("in", "equals"))
        else:
            values = _as_list(rule.value)
            member = self.cond(Condition(field, tuple(values)), idx)
            present = self._present(field, idx)
            fail = ~member if rule.kind in ("in", "equals") else member & present
        vals = T.cat(n, T.lit(field) + ":", self.value_text(field, idx, True))
        before, _, after = rule.reason.partition("{value}")
        if "{value}" in rule.reason:
            txt = self.value_text(field, idx, False)
            reason = T.cat(n, T.lit(before)[:-1], txt, T.lit(after)[1:])
        else:
            reason = T.cat(n, T.lit(rule.reason))
        return fail, vals, reason, None

    def field_kind(self, name: str) -> str:
        for e in self.p.enh:
            if name in e.appends:
                return e.appends[name]
        if name in self.fields:
            return self.fields[name][0]
        return LEAD_FIELDS.get(name, "text")

    def _present(self, name, idx) -> np.ndarray:
        if name in self.has:
            return self.has[name][idx]
        if name in self.fields:
            kind, a = self.fields[name]
            return ~np.isnan(a[idx]) if kind == "num" else a[idx] >= 0
        return np.zeros(len(idx), dtype=bool)

    # ------------------------------------------------------------------ buyers

    def route(self, idx) -> np.ndarray:
        """The routing rule each lead follows (first whose conditions all hold)."""
        out = np.full(len(idx), -1, dtype=np.int64)
        for ri, r in enumerate(self.p.flow.routes):
            hold = np.ones(len(idx), dtype=bool)
            for c in r.conditions:
                hold &= self.cond(c, idx)
            out = np.where((out < 0) & hold, ri, out)
        return out

    def first_buyer(self, idx) -> np.ndarray:
        return self.p.routes[self.route(idx), 0]

    def run_buyers(self) -> None:
        p, rng, m = self.p, self.rng, self.m
        idx_all = np.flatnonzero(self.alive)
        self._map_fields(idx_all)
        route = np.full(m, -1, dtype=np.int64)
        route[idx_all] = self.route(idx_all)
        delivered = np.zeros(m, dtype=bool)
        last = np.full(m, -1, dtype=np.int8)  # 0 delivered, 1 rejected, 2 error
        self.buyer = np.full(m, -1, dtype=np.int64)
        self.buyer_lead = {}
        pay_all = self._payload()
        # buyers check contact data themselves: a lead nobody validated may fail that
        # check, and then fails it at every buyer (a dead number always does)
        contact_fail = np.zeros(m, dtype=bool)
        rate = p.flow.unvalidated_phone_rejection
        if rate > 0:
            pv = self.fields.get("phone.valid", ("bool", np.full(m, -1, np.int8)))[1]
            truly_bad = self.flag["disc"] | (self.phone_len != 10)
            contact_fail = (pv < 0) & (truly_bad | (rng.random(m) < rate))
        for k in range(p.routes.shape[1]):
            idx = idx_all[~delivered[idx_all]]
            b = p.routes[route[idx], k]
            keep = b >= 0
            idx, b = idx[keep], b[keep]
            n = len(idx)
            if not n:
                continue
            t = self.cursor[idx]
            p_err = p.b_err[b].copy()
            p_err_base = p_err.copy()
            errw = p.b_errw[b]
            inc_masks = []
            for kk, inc in p.inc.get("buyer_endpoint_errors", ()):
                w = p.window(inc, t) & (b == p.buyer_names.index(inc.parameters["buyer"]))
                p_err = np.where(w, np.maximum(p_err, inc.parameters["rate"]), p_err)
                errw = np.where(w[:, None], _ENDPOINT_ERRW, errw)
                inc_masks.append((kk, w))
            ok, fts, fdur, n_att, errors, retries_, inc_err, cur = self.calls(
                idx, t, p_err, p_err_base, errw, p.b_timeout[b], p.b_med[b],
                p.b_sig[b], p.b_retries[b], p.b_backoff[b],
            )  # fmt: skip
            # business decision
            hour = (p.local(t, p.flow.timezone) // HOUR) % 24
            p_acc = p.acc[b] * p.acc_hour[b, hour]
            for bi, buyer in enumerate(p.buyers):
                sel = b == bi
                if not sel.any():
                    continue
                for conds, factor in buyer.factors:
                    hold = np.ones(int(sel.sum()), dtype=bool)
                    for c in conds:
                        hold &= self.cond(c, idx[sel])
                    p_acc[np.flatnonzero(sel)[hold]] *= factor
            p_acc = np.minimum(p_acc, 0.995)
            p_acc = np.where(contact_fail[idx], 0.0, p_acc)
            p_eff = p_acc.copy()
            reason_over = np.full(n, -1, dtype=np.int64)
            over_texts: list[pa.Array] = []
            owner = np.full(n, -1, dtype=np.int64)
            for kk, inc in p.inc.get("buyer_acceptance_drop", ()):
                bi = p.buyer_names.index(inc.parameters["buyer"])
                w = p.window(inc, t) & (b == bi)
                p_eff = np.where(w, p_eff * inc.parameters["acceptance"] / p.acc[bi], p_eff)
                over_texts.append(T.cat(n, T.lit(inc.parameters["reason"])))
                reason_over = np.where(w, len(over_texts) - 1, reason_over)
                owner = np.where(w, kk, owner)
            for kk, inc in p.inc.get("buyer_segment_rejection", ()):
                bi = p.buyer_names.index(inc.parameters["buyer"])
                fname = inc.parameters["field"]
                seg = self.cond(Condition(fname, tuple(inc.parameters["values"])), idx)
                w = p.window(inc, t) & (b == bi) & seg
                p_eff = np.where(w, p_eff * (1 - inc.parameters["rate"]), p_eff)
                txt = self.value_text(fname, idx, False)
                over_texts.append(
                    T.cat(n, '"Not buying leads with ' + fname + " ", txt, ' at this time"')
                )
                reason_over = np.where(w, len(over_texts) - 1, reason_over)
                owner = np.where(w, kk, owner)
            if self.mapped is not None:
                mk, inc = self.mapped.incident_k, self.mapped.incident
                hit = self.mapped.mask[idx]
                if self.mapped.buyer is not None:
                    hit &= b == self.mapped.buyer
                p_eff = np.where(hit, p_eff * (1 - inc.parameters["reject_rate"]), p_eff)
                over_texts.append(T.cat(n, T.lit(f"Invalid {inc.parameters['field']} format")))
                reason_over = np.where(hit, len(over_texts) - 1, reason_over)
                owner = np.where(hit, mk, owner)
            u = rng.random(n)
            accept = u < p_eff
            caused = ~accept & (u < p_acc)
            # caps: a buyer at its hourly or daily cap is not offered the lead
            capped = self._caps(b, t, ok & accept)
            post = ~capped
            for kk, w in inc_masks:
                self.touch(kk, idx[inc_err & w & post])
            for kk in set(owner[owner >= 0].tolist()):
                self.touch(kk, idx[caused & (owner == kk) & post & ok])
            # errors and retries of posted leads
            errors = [
                (pos[post[pos]], a, ts[post[pos]], dur[post[pos]], et[post[pos]],
                 http[post[pos]], bs[post[pos]])
                for pos, a, ts, dur, et, http, bs in errors
            ]  # fmt: skip
            retries_ = [
                [pos[post[pos]], a, ts[post[pos]], dur[post[pos]], pe[post[pos]],
                 re[post[pos]], el[post[pos]]]
                for pos, a, ts, dur, pe, re, el in retries_
            ]  # fmt: skip
            names = [T.lit(x) for x in p.buyer_names]

            def name_piece(pos, b=b, names=names):
                return T.cat(len(pos), '"recipient":', T.pick(names, b[pos]))

            def snap_of(pos, idx=idx, b=b):
                return self.snap(idx[pos], -1, b[pos])

            ent_b = np.array([p.ent_index[x] for x in p.buyer_names])[b]
            self.emit_errors(
                "recipient.error", errors, idx, ent_b, name_piece, p.b_timeout[b], snap_of
            )
            self.emit_retries(retries_, idx, ent_b, name_piece, name_piece_step(b, names), snap_of)
            posted = np.flatnonzero(post)
            self.cursor[idx[posted]] = cur[posted]
            self.steps[idx[posted]] += 1
            # delivered
            dpos = np.flatnonzero(post & ok & accept)
            self._emit_delivered(idx, b, dpos, fts, fdur, n_att, pay_all, snap_of, ent_b)
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
                reason = pc.if_else(
                    pa.array(contact_fail[idx[rpos]]), T.lit(_CONTACT_REASON), reason
                )
                meta = T.cat(
                    nr,
                    "{",
                    name_piece(rpos),
                    ',"http_status":200,"rejection_reason":',
                    reason,
                    ',"buyer_response":{"status":"rejected","reason":',
                    reason,
                    '},"business_logic":true,"payload":',
                    self._payload_for(idx[rpos], b[rpos], pay_all),
                    ',"retry_attempts":',
                    T.num(n_att[rpos] - 1),
                    "}",
                )
                self.emit(
                    "recipient.failed", FAIL, idx[rpos], fts[rpos], fdur[rpos], ent_b[rpos],
                    meta, snap_of(rpos),
                )  # fmt: skip
                last[idx[rpos]] = 1
            epos = np.flatnonzero(post & ~ok)
            last[idx[epos]] = 2
        final = self.final
        reached = idx_all
        fin = np.where(
            delivered[reached],
            0,
            np.where(last[reached] == 1, 3, np.where(last[reached] == 2, 4, 5)),
        )
        final[reached] = fin
        self.delivered = delivered

    def _caps(self, b, t, would_deliver) -> np.ndarray:
        """Leads whose buyer is at its cap when they come (in time order, per buyer)."""
        p = self.p
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

    def _map_fields(self, idx) -> None:
        """A field-mapping corruption: the field as buyers receive it, for leads whose
        delivery starts within the incident's window."""
        p = self.p
        for k, inc in p.inc.get("field_mapping_corruption", ()):
            fname = inc.parameters["field"]
            if fname not in self.vals:
                continue
            w = p.window(inc, self.cursor[idx]) & self.has[fname][idx]
            lead = idx[w]
            if not len(lead):
                continue
            mask = np.zeros(self.m, dtype=bool)
            mask[lead] = True
            rank = np.zeros(self.m, dtype=np.int64)
            rank[lead] = np.arange(len(lead))
            vals = dict(self.vals)
            v = self.vals[fname].take(pa.array(lead))
            if inc.parameters["transform"] == "blank":
                new = pa.array(['""'] * len(lead), pa.string())
            else:  # drop the last character inside the quotes
                new = T.cat(len(lead), pc.utf8_slice_codeunits(v, 0, -2), '"')
            vals[fname] = self._scatter(self.vals[fname], lead, new)
            target = (
                None
                if inc.parameters["buyer"] == "all"
                else p.buyer_names.index(inc.parameters["buyer"])
            )
            self.mapped = _Mapping(k, inc, lead, mask, rank, target, vals)
            self.touch(k, lead)
            return  # one mapping corruption per chunk is enough to show

    def _scatter(self, arr: pa.Array, lead, new: pa.Array) -> pa.Array:
        pos = np.full(self.m, -1)
        pos[lead] = np.arange(len(lead))
        return pc.if_else(pa.array(pos >= 0), new.take(pa.array(np.maximum(pos, 0))), arr)

    def _payload(self) -> pa.Array:
        fields = tuple(f for f in _PAYLOAD_FIELDS if f in self.vals)
        pay = T.cat(self.m, self._fields_json(self.vals, self.has, fields), "}")
        if self.mapped is not None:
            mvals, lead = self.mapped.vals, self.mapped.lead
            extra = (self.mapped.incident.parameters["field"],)
            f2 = fields + tuple(x for x in extra if x not in fields)
            mp = T.cat(len(lead), self._fields_json(mvals, self.has, f2, lead), "}")
            self.mapped.payload = mp
        return pay

    def _payload_for(self, lead, b, pay_all) -> pa.Array:
        out = pay_all.take(pa.array(lead))
        if self.mapped is not None:
            mask, rank, target = self.mapped.mask, self.mapped.rank, self.mapped.buyer
            hit = mask[lead]
            if target is not None:
                hit &= b == target
            if hit.any():
                out = pc.if_else(pa.array(hit), self.mapped.payload.take(pa.array(rank[lead])), out)
        return out

    def _emit_delivered(self, idx, b, dpos, fts, fdur, n_att, pay_all, snap_of, ent_b):
        p, rng = self.p, self.rng
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
                for c in conds:
                    hold &= self.cond(c, lead[sel])
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
            self._payload_for(lead, bb, pay_all),
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
        self.emit(
            "recipient.delivered", OK, lead, fts[dpos], fdur[dpos], ent_b[dpos], meta,
            snap_of(dpos),
        )  # fmt: skip
        self.revenue[lead] += price
        self.buyer[lead] = bb
        self.buyer_lead_ids = getattr(self, "buyer_lead_ids", [])
        self.buyer_lead_ids.append((lead, bl_id, price))

    # ------------------------------------------------------------------ completion

    def run_completion(self) -> None:
        p, m = self.p, self.m
        idx = np.arange(m)
        ts = self.cursor
        dur = ts - self.t0
        final = self.final
        delivered = final == 0
        bname = T.pick([T.lit(x) for x in p.buyer_names], np.maximum(self.buyer, 0))
        meta = T.cat(
            m,
            '{"total_duration_ms":',
            T.num(dur),
            ',"steps_executed":',
            T.num(self.steps),
            ',"final_outcome":',
            T.pick([T.lit(f) for f in FINAL], final),
            ',"total_cost":',
            T.money(self.cost),
            ',"total_revenue":',
            T.money(self.revenue),
            T.when(delivered, T.cat(m, ',"delivered_to":', bname), ""),
            "}",
        )
        outcome = np.where(delivered, OK, np.where(final == 4, ERR, FAIL)).astype(np.int8)
        self.emit("flow.completed", outcome, idx, ts, dur, -1, meta, self.snap(idx, -1))
        self.done_ts = ts
        self.done_dur = dur

    def run_feedback(self) -> None:
        p, rng = self.p, self.rng
        fb = p.flow.feedback
        if not getattr(self, "buyer_lead_ids", None):
            return
        lead = np.concatenate([x[0] for x in self.buyer_lead_ids])
        bl_id = pa.concat_arrays([x[1] for x in self.buyer_lead_ids])
        price = np.concatenate([x[2] for x in self.buyer_lead_ids])
        n = len(lead)
        b = self.buyer[lead]
        pv = self.fields.get("phone.valid", ("bool", np.full(self.m, -1)))[1][lead]
        ev = self.fields.get("email.valid", ("bool", np.full(self.m, -1)))[1][lead]
        p_conv = p.b_conv[b] * np.where(pv == 1, 1.0, 0.6)
        p_ret = p.b_ret[b] * np.where(pv == 1, 1.0, 2.5) * np.where(ev == 0, 2.0, 1.0)
        u = rng.random(n)
        conv = u < p_conv
        ret = ~conv & (u < p_conv + p_ret)
        delay = np.maximum(
            lognormal(rng, fb.delay_hours.median, fb.delay_hours.sigma, n) * HOUR, 600_000
        ).astype(np.int64)
        ts = self.done_ts[lead] + np.maximum(delay, self.done_dur[lead] + 1)
        keep = np.flatnonzero((conv | ret) & (ts < p.end_ms))
        if not len(keep):
            return
        lead, b, ts, conv, price = lead[keep], b[keep], ts[keep], conv[keep], price[keep]
        bl_id = bl_id.take(pa.array(keep))
        k = len(keep)
        ur = rng.random(k)
        cw = np.cumsum([w for _, w in fb.conversion_reasons])
        rw = np.cumsum([w for _, w in fb.return_reasons])
        c_reason = T.pick([T.lit(r) for r, _ in fb.conversion_reasons],
                          (ur[:, None] > cw[:-1]).sum(axis=1))  # fmt: skip
        r_codes = (ur[:, None] > rw[:-1]).sum(axis=1)
        r_names = [r for r, _ in fb.return_reasons]
        if "Disconnected number" in r_names:
            # unvalidated phones come back as disconnected more often
            unval = self.fields.get("phone.valid", ("bool", np.full(self.m, -1)))[1][lead] != 1
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
            self.lead_ids.take(pa.array(lead)),
            '","recipient":',
            bname,
            ',"buyer_lead_id":"',
            bl_id,
            '"',
            T.when(conv, "", adj),
            ',"step_name":"Feedback"}',
        )
        snap = self.snap(lead, -1, b)
        outcome = np.where(conv, OK, FAIL).astype(np.int8)
        self.emit("feedback.received", outcome, lead, ts, dur, ent, meta, snap)
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
        self.emit(
            "feedback.processed", OK, lead[k2], ts2[k2], dur2[k2], ent[k2],
            meta2.take(pa.array(k2)), snap[k2],
        )  # fmt: skip

    # ------------------------------------------------------------------ assembly

    def run(self) -> None:
        self.make_leads()
        self.run_source()
        j = 0
        for s in self.p.flow.steps:
            if isinstance(s, Enhancement):
                self.run_enhancement(s, j)
                j += 1
            else:
                self.run_filter(s)
        self.run_buyers()
        self.run_completion()
        self.run_feedback()

    def snapshot_versions(self) -> list[pa.Array]:
        """The snapshot pool, in pieces: after 0..E enhancements (m leads each), then
        the leads a field-mapping corruption changed (``snap`` refs index this)."""
        m = self.m
        versions = [self.v0]
        for k in range(1, len(self.enh_parts) + 1):
            versions.append(T.cat(m, self.base, *self.enh_parts[:k], "}"))
        if self.mapped is not None:
            mvals, lead = self.mapped.vals, self.mapped.lead
            ix = pa.array(lead)
            b = self._fields_json(mvals, self.has, tuple(mvals), lead)
            versions.append(T.cat(len(lead), b, *[pt.take(ix) for pt in self.enh_parts], "}"))
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


def name_piece_step(b, names):
    def f(pos):
        return T.pick(names, b[pos])

    return f


def _as_list(v):
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _as_float(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.cast(arr, pa.float64()))
