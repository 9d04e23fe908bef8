"""Flow definitions: a YAML file read into typed, validated, frozen objects.

A flow names its sources (cost, share of volume, data-quality profile, acceptance
criteria), its steps in order (enhancements and filters), its recipients (buyers with
prices, caps, acceptance, response times, errors and rejection reasons; routing rules),
and how feedback arrives. ``sample_data/flow.yaml`` is the annotated example.

Everything is checked when the file is read, so a simulation never starts from a
definition it would misread: a bad entry raises :class:`FlowError` with the file, the
entry and what would be accepted.

>>> from workbench.sim import load_flow
>>> flow = load_flow()                       # sample_data/flow.yaml
>>> [b.name for b in flow.buyers][:1]
['Apex Insurance Group']
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import WorkbenchError
from ..paths import default_flow_path  # noqa: F401 - kept where the flow's readers look for it

__all__ = [
    "FlowError",
    "Flow",
    "Source",
    "Quality",
    "Schedule",
    "Enhancement",
    "Filter",
    "Rule",
    "Condition",
    "Buyer",
    "Route",
    "Feedback",
    "Latency",
    "default_flow_path",
    "LEAD_FIELDS",
    "SERVICES",
]

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class FlowError(WorkbenchError, ValueError):
    """A flow definition the simulator cannot accept (the message names file and entry)."""


#: Lead fields the generator knows how to produce, with their kind:
#: ``text`` (free text), ``cat`` (one of a few values), ``num``, ``bool``.
LEAD_FIELDS: dict[str, str] = {
    "first_name": "text",
    "last_name": "text",
    "email": "text",
    "phone": "text",
    "address": "text",
    "city": "text",
    "state": "cat",
    "zip": "text",
    "ip_address": "text",
    "dob": "text",
    "ssn": "text",
    "trustedform_cert_url": "text",
    "vehicle_year": "num",
    "currently_insured": "bool",
    "coverage_amount": "num",
}
#: Fields every lead has, derived by the flow rather than submitted.
DERIVED_FIELDS: dict[str, str] = {"source": "cat", "vertical": "cat"}

#: Enhancement services: the lead field each reads and the fields it appends.
SERVICES: dict[str, dict] = {
    "phone_validation": {
        "reads": "phone",
        "appends": {"phone.valid": "bool", "phone.type": "cat", "appended.phone_score": "num"},
        "uri": "https://api.phonecheck.example.com/v2/validate",
    },
    "email_verification": {
        "reads": "email",
        "appends": {"email.valid": "bool"},
        "uri": "https://verify.mailcheck.example.net/v1/email",
    },
    "trustedform": {
        "reads": "trustedform_cert_url",
        "appends": {"trustedform.valid": "bool", "trustedform.age_seconds": "num"},
        "uri": "https://cert.trustedform.com/claim",
    },
}
ERROR_TYPES = ("timeout", "http_5xx", "connection_refused")
FORMATS = {"ten_digits": "phone", "email": "email", "five_digits": "zip"}
QUALITY_KEYS = (
    "nine_digit_phone",
    "malformed_phone",
    "missing_field",
    "invalid_email",
    "disconnected_phone",
    "low_phone_score",
    "duplicate",
    "out_of_area",
    "trustedform_missing",
    "trustedform_expired",
)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RULE_KINDS = (
    "in",
    "not_in",
    "equals",
    "not_equals",
    "min",
    "max",
    "present",
    "duplicate_within_days",
    "business_hours",
)


def stable_id(prefix: str, *parts: str, length: int = 16) -> str:
    """A deterministic id like ``ent_3Q9wK5mN8B2xR7pL`` from names (same names, same id)."""
    h = int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest(), "big")
    out = []
    for _ in range(length):
        h, r = divmod(h, 62)
        out.append(B62[r])
    return prefix + "".join(out)


# --------------------------------------------------------------------------- objects


@dataclass(frozen=True)
class Latency:
    """A log-normal duration given by its median and 95th percentile (milliseconds or hours)."""

    median: float
    p95: float

    @property
    def sigma(self) -> float:
        return math.log(self.p95 / self.median) / 1.6449


@dataclass(frozen=True)
class Quality:
    """Rates of data problems in a source's leads (each a probability per lead)."""

    nine_digit_phone: float = 0.0
    malformed_phone: float = 0.0
    missing_field: float = 0.0
    invalid_email: float = 0.0
    disconnected_phone: float = 0.0
    low_phone_score: float = 0.0
    duplicate: float = 0.0
    out_of_area: float = 0.0
    trustedform_missing: float = 0.0
    trustedform_expired: float = 0.0


@dataclass(frozen=True)
class Schedule:
    """Days and hours in a timezone, e.g. Mon-Sat 08:00-20:00 America/Chicago."""

    timezone: str
    days: tuple[int, ...]
    start_minute: int
    end_minute: int

    def describe(self, timezone: str | None = None) -> str:
        def hm(m):
            return f"{m // 60:02d}:{m % 60:02d}"

        days = (
            "every day"
            if len(self.days) == 7
            else ",".join(DAYS[d].capitalize() for d in self.days)
        )
        tz = timezone or self.timezone
        return f"{hm(self.start_minute)}-{hm(self.end_minute)} {tz}, {days}"


@dataclass(frozen=True)
class Source:
    name: str
    id: str
    step_id: str
    vertical: str
    cost: float
    share: float
    quality: Quality
    required: tuple[str, ...]
    formats: tuple[tuple[str, str], ...]
    schedule: Schedule | None = None


@dataclass(frozen=True)
class Condition:
    """``field`` is one of ``values`` (``None`` in values: the field is missing), or a
    number in [``min``, ``max``]."""

    field: str
    values: tuple | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    field: str | None
    value: object
    reason: str
    schedule: Schedule | None = None


@dataclass(frozen=True)
class Filter:
    name: str
    id: str
    step_id: str
    position: int
    rules: tuple[Rule, ...]
    applies_to: tuple[str, ...] = ()

    kind = "filter"


@dataclass(frozen=True)
class Enhancement:
    name: str
    id: str
    step_id: str
    position: int
    service: str
    cost: float
    latency: Latency
    timeout_ms: int
    failure_rate: float
    error_rate: float
    errors: tuple[tuple[str, float], ...]
    retries: int
    backoff_ms: int
    breaker_errors: int
    breaker_open_ms: int
    charge_failures: bool = False
    valid_rate: float = 1.0

    kind = "enhancement"

    @property
    def appends(self) -> dict[str, str]:
        return SERVICES[self.service]["appends"]


@dataclass(frozen=True)
class Buyer:
    name: str
    id: str
    step_id: str
    position: int
    price: float
    pricing: tuple[tuple[tuple[Condition, ...], float | None, float | None], ...]
    cap_hour: int | None
    cap_day: int | None
    acceptance: float
    acceptance_by_hour: tuple[float, ...]
    factors: tuple[tuple[tuple[Condition, ...], float], ...]
    response: Latency
    timeout_ms: int
    error_rate: float
    errors: tuple[tuple[str, float], ...]
    retries: int
    backoff_ms: int
    rejection_reasons: tuple[tuple[str, float], ...]
    conversion_rate: float
    return_rate: float
    integration: str = "custom_json"

    kind = "recipient"


@dataclass(frozen=True)
class Route:
    conditions: tuple[Condition, ...]
    buyers: tuple[str, ...]


@dataclass(frozen=True)
class Feedback:
    delay_hours: Latency
    conversion_reasons: tuple[tuple[str, float], ...]
    return_reasons: tuple[tuple[str, float], ...]
    processed_ms: Latency


@dataclass(frozen=True)
class Flow:
    """A validated flow definition (see :func:`load_flow`)."""

    id: str
    name: str
    timezone: str
    hourly: tuple[float, ...]
    weekly: tuple[float, ...]
    verticals: Mapping[str, tuple[str, ...]]
    sources: tuple[Source, ...]
    steps: tuple[Enhancement | Filter, ...]
    buyers: tuple[Buyer, ...]
    routes: tuple[Route, ...]
    feedback: Feedback
    #: share of leads without phone validation that buyers' own contact check rejects
    #: (the same lead at every buyer); a dead number always fails it
    unvalidated_phone_rejection: float = 0.0
    path: str = field(default="<flow>", compare=False)

    def source(self, name: str) -> Source:
        return _named(self.sources, name, "source", self.path)

    def buyer(self, name: str) -> Buyer:
        return _named(self.buyers, name, "buyer", self.path)

    def step(self, name: str) -> Enhancement | Filter:
        return _named(self.steps, name, "step", self.path)

    @property
    def enhancements(self) -> tuple[Enhancement, ...]:
        return tuple(s for s in self.steps if isinstance(s, Enhancement))

    @property
    def filters(self) -> tuple[Filter, ...]:
        return tuple(s for s in self.steps if isinstance(s, Filter))

    def entities(self) -> list[tuple[str, str, str]]:
        """(entity_id, name, kind) of every source, step and buyer."""
        out = [(s.id, s.name, "source") for s in self.sources]
        out += [(s.id, s.name, s.kind) for s in self.steps]
        out += [(b.id, b.name, "recipient") for b in self.buyers]
        return out

    def step_rows(self) -> list[dict]:
        """The steps table rows: sources at position 0, then steps, then buyers."""
        rows = [
            dict(step_id=s.step_id, position=0, kind="source", name=s.name, entity_id=s.id)
            for s in self.sources
        ]
        rows += [
            dict(step_id=s.step_id, position=s.position, kind=s.kind, name=s.name, entity_id=s.id)
            for s in (*self.steps, *self.buyers)
        ]
        return rows

    def register(self, store) -> None:
        """Register this flow's flow, entities and steps in ``store`` (before its events)."""
        store.register_flow(self.id, self.name)
        for entity_id, name, kind in self.entities():
            store.register_entity(entity_id, name, kind)
        for row in self.step_rows():
            store.register_step(flow_id=self.id, **row)

    def fields_supplied(self) -> set[str]:
        """Every lead field some source supplies, plus the derived ones."""
        out = set(DERIVED_FIELDS)
        for s in self.sources:
            out.update(self.verticals[s.vertical])
        return out


def _named(items, name: str, what: str, path: str):
    for it in items:
        if it.name == name:
            return it
    names = ", ".join(repr(i.name) for i in items)
    raise FlowError(f"{path}: no {what} named {name!r}; the flow has: {names}")
