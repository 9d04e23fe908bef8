"""What every chunk of one run shares: the flow as arrays, the incidents' effects, time
tables, and the state that carries from chunk to chunk (buyers' caps, circuit breakers).

Also the vocabulary every stage speaks: event types and outcomes as small integer
codes, the final outcomes of a lead, error types. Money is kept in ten-thousandths of
a dollar (integers), so totals equal the sums of their parts exactly.
"""

from __future__ import annotations

import numpy as np

from .flow import Enhancement, Flow
from .incidents import INCIDENT_TYPES

HOUR = 3_600_000
DAY = 86_400_000
MONEY = 10_000  # units per dollar

TYPES = (
    "source.submitted",
    "source.accepted",
    "source.rejected",
    "filter.passed",
    "filter.failed",
    "enhancement.success",
    "enhancement.failure",
    "enhancement.error",
    "recipient.delivered",
    "recipient.failed",
    "recipient.error",
    "feedback.received",
    "feedback.processed",
    "flow.completed",
    "retry.attempted",
)
TY = {t: i for i, t in enumerate(TYPES)}
OUTCOMES = ("success", "failure", "error", "skipped")
OK, FAIL, ERR = 0, 1, 2
FINAL = ("delivered", "rejected", "filtered", "buyer_rejected", "delivery_error", "no_buyer")
ETYPES = ("timeout", "http_5xx", "connection_refused", "circuit_open")
BREAKER = ("closed", "open", "half_open")
PHONE_TYPES = ("mobile", "landline", "voip")


def lognormal(rng, median, sigma, n) -> np.ndarray:
    return np.asarray(median) * np.exp(np.asarray(sigma) * rng.standard_normal(n))


class Plan:
    """What every chunk of one run shares: the flow as arrays, incidents, time tables,
    and the state that carries from chunk to chunk (caps, circuit breakers)."""

    def __init__(self, flow: Flow, incidents, start_ms: int, end_ms: int):
        self.flow = flow
        self.incidents = tuple(incidents)
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
        self.b_errw = np.array([error_weights(b.errors) for b in flow.buyers])
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
        # what each incident does, as its type declares it (see incidents.Effect)
        self.effects = [
            (k, inc, effect)
            for k, inc in enumerate(incidents)
            for effect in INCIDENT_TYPES[inc.name].effects
        ]

    def add_incidents(self, incidents) -> None:
        """Incidents started while a stream runs: they act on the chunks run after."""
        first = len(self.incidents)
        self.incidents = (*self.incidents, *incidents)
        self.effects += [
            (first + k, inc, effect)
            for k, inc in enumerate(incidents)
            for effect in INCIDENT_TYPES[inc.name].effects
        ]

    def acting(self, kind: type, target: str | None = None, on: str | None = None) -> list:
        """(k, incident, effect) for each incident effect of ``kind`` (an Effect class),
        in incident order: only effects on the entity named ``target``, and only those
        whose target parameter is ``on`` (e.g. "buyer"), when given."""
        return [
            (k, inc, effect)
            for k, inc, effect in self.effects
            if isinstance(effect, kind)
            and (on is None or effect.target == on)
            and (target is None or inc.parameters.get(effect.target) == target)
        ]

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


def error_weights(errors) -> np.ndarray:
    """Cumulative weights of timeout, http_5xx and connection_refused errors."""
    w = dict(errors)
    return np.cumsum([w.get(e, 0.0) for e in ETYPES[:3]])


def _buyer_prefix(name: str) -> str:
    letters = "".join(w[0] for w in name.split() if w[:1].isalpha()).upper()
    return (letters + "XXX")[:3]


def _host(name: str) -> str:
    slug = "".join(c for c in name.lower().replace(" ", "-") if c.isalnum() or c == "-")
    return f"https://leads.{slug}.example.com/post"
