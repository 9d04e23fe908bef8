"""Flow definitions: a YAML file read into typed, validated, frozen objects.

A flow names its sources (cost, share of volume, data-quality profile, acceptance
criteria), its steps in order (enhancements and filters), its recipients (buyers with
prices, caps, acceptance, response times, errors and rejection reasons; routing rules),
and how feedback arrives. ``sample_data/flow.yaml`` is the annotated example.

Everything is checked when the file is read, so a simulation never starts from a
definition it would misread: a bad entry raises :class:`FlowError` with the file, the
entry and what would be accepted.

>>> flow = load_flow()                       # sample_data/flow.yaml
>>> [b.name for b in flow.buyers][:1]
['Apex Insurance Group']
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ..errors import WorkbenchError
from ..paths import default_flow_path

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
    "load_flow",
    "parse_flow",
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


def load_flow(path: str | os.PathLike | None = None) -> Flow:
    """Read and validate a flow definition (default: ``sample_data/flow.yaml``).

    >>> load_flow().sources[0].name
    'Acme Leads'
    """
    p = Path(path) if path is not None else default_flow_path()
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise FlowError(f"{p}: no such flow definition file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise FlowError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    return parse_flow(data, str(p))


# --------------------------------------------------------------------------- parsing


class _Reader:
    """Reads one mapping of the definition; every error names file and entry."""

    def __init__(self, path: str, entry: str, data, allowed: tuple[str, ...]):
        self.path = path
        self.entry = entry
        if not isinstance(data, dict):
            self.fail(f"expected a mapping with keys {', '.join(allowed)}, got {_show(data)}")
        unknown = [k for k in data if k not in allowed]
        if unknown:
            self.fail(f"unknown key {unknown[0]!r}; accepted keys: {', '.join(allowed)}")
        self.data = data

    def fail(self, msg: str, key: str | None = None):
        where = (f"{self.entry}.{key}" if self.entry else key) if key else self.entry
        where = where or "(top level)"
        raise FlowError(f"{self.path}: {where}: {msg}")

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def raw(self, key: str, default=None):
        return self.data.get(key, default)

    def text(self, key: str, default=None) -> str:
        v = self.data.get(key, default)
        if not isinstance(v, str) or not v.strip():
            self.fail(f"expected a non-empty text, got {_show(v)}", key)
        return v.strip()

    def number(self, key: str, default=None, *, low=0.0, high=None, what="a number") -> float:
        v = self.data.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            self.fail(f"expected {what}, got {_show(v)}", key)
        if low is not None and v < low:
            adj = "negative" if low == 0 else f"below {low}"
            self.fail(f"{v} is {adj}; accepted: {what} >= {low}", key)
        if high is not None and v > high:
            self.fail(f"{v} is above {high}; accepted: {what} from {low} to {high}", key)
        return float(v)

    def prob(self, key: str, default=None) -> float:
        v = self.data.get(key, default)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not 0 <= v <= 1:
            self.fail(f"{v} is not a probability; accepted: a number from 0 to 1", key)
        return self.number(key, default, low=0.0, high=1.0, what="a probability")

    def integer(self, key: str, default=None, *, low=0) -> int:
        v = self.data.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(f"expected a whole number >= {low}, got {_show(v)}", key)
        if v < low:
            self.fail(f"{v} is below {low}; accepted: a whole number >= {low}", key)
        return int(v)

    def boolean(self, key: str, default=None) -> bool:
        v = self.data.get(key, default)
        if not isinstance(v, bool):
            self.fail(f"expected true or false, got {_show(v)}", key)
        return v

    def names(self, key: str, default=None) -> tuple[str, ...]:
        v = self.data.get(key, default)
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            self.fail(f"expected a list of names, got {_show(v)}", key)
        return tuple(v)

    def mapping(self, key: str, default=None) -> dict:
        v = self.data.get(key, default)
        if not isinstance(v, dict):
            self.fail(f"expected a mapping, got {_show(v)}", key)
        return v

    def items(self, key: str, default=None) -> list:
        v = self.data.get(key, default)
        if not isinstance(v, list) or not v:
            self.fail(f"expected a non-empty list, got {_show(v)}", key)
        return v


def _show(v) -> str:
    if v is None:
        return "nothing"
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _weights(r: _Reader, key: str, accepted: tuple[str, ...] | None = None, default=None):
    m = r.mapping(key, default)
    if not m:
        r.fail("expected at least one entry", key)
    out = []
    for name, w in m.items():
        if accepted is not None and name not in accepted:
            r.fail(f"unknown entry {name!r}; accepted: {', '.join(accepted)}", key)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
            r.fail(f"weight of {name!r} must be a number >= 0, got {_show(w)}", key)
        out.append((str(name), float(w)))
    total = sum(w for _, w in out)
    if total <= 0:
        r.fail("weights add up to 0; give at least one positive weight", key)
    return tuple((n, w / total) for n, w in out)


def _latency(r: _Reader, key: str, default=None, unit="ms") -> Latency:
    sub = _Reader(r.path, f"{r.entry}.{key}", r.raw(key, default), ("median", "p95"))
    median = sub.number("median", what=f"a duration in {unit}")
    p95 = sub.number("p95", what=f"a duration in {unit}")
    if median <= 0:
        sub.fail(f"median must be above 0 {unit}, got {median}")
    if p95 <= median:
        sub.fail(f"p95 ({p95}) must be above the median ({median})")
    return Latency(median, p95)


def _tz(r: _Reader, key: str, default=None) -> str:
    name = r.text(key, default)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        r.fail(f"unknown timezone {name!r}; accepted: an IANA name such as America/Chicago", key)
    return name


_HOURS = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


def _schedule(r: _Reader, key: str, default_tz: str) -> Schedule:
    sub = _Reader(r.path, f"{r.entry}.{key}", r.raw(key), ("timezone", "days", "hours"))
    tz = _tz(sub, "timezone", default_tz)
    days = sub.raw("days", list(DAYS))
    if not isinstance(days, list) or not days:
        sub.fail(f"expected a list of days ({', '.join(DAYS)}), got {_show(days)}", "days")
    idx = []
    for d in days:
        if not isinstance(d, str) or d.lower()[:3] not in DAYS:
            sub.fail(f"unknown day {d!r}; accepted: {', '.join(DAYS)}", "days")
        idx.append(DAYS.index(d.lower()[:3]))
    m = _HOURS.match(str(sub.raw("hours", "")))
    if not m:
        sub.fail(f"expected hours like '08:00-20:00', got {_show(sub.raw('hours'))}", "hours")
    h1, m1, h2, m2 = (int(x) for x in m.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if not (0 <= start < end <= 24 * 60) or m1 > 59 or m2 > 59:
        sub.fail(f"hours {m.group(0)!r} must be a window within one day, start before end")
    return Schedule(tz, tuple(sorted(set(idx))), start, end)


def _curve(r: _Reader, key: str, n: int, default) -> tuple[float, ...]:
    v = r.raw(key, default)
    if (
        not isinstance(v, list)
        or len(v) != n
        or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 for x in v)
    ):
        r.fail(f"expected a list of {n} numbers >= 0, got {_show(v)}", key)
    if sum(v) <= 0:
        r.fail("expected at least one value above 0", key)
    return tuple(float(x) for x in v)


def _conditions(r: _Reader, key: str, known: dict[str, str]) -> tuple[Condition, ...]:
    m = r.mapping(key)
    out = []
    for fname, spec in m.items():
        if fname not in known:
            r.fail(
                f"field {fname!r} is supplied by no source and appended by no enhancement "
                f"before this point; fields available here: {', '.join(sorted(known))}",
                key,
            )
        if isinstance(spec, dict):
            sub = _Reader(r.path, f"{r.entry}.{key}.{fname}", spec, ("min", "max"))
            lo = sub.number("min", None, low=None) if sub.has("min") else None
            hi = sub.number("max", None, low=None) if sub.has("max") else None
            if lo is None and hi is None:
                sub.fail("give min, max or both")
            out.append(Condition(fname, None, lo, hi))
        else:
            values = spec if isinstance(spec, list) else [spec]
            out.append(Condition(fname, tuple(values)))
    return tuple(out)


def parse_flow(data, path: str = "<flow>") -> Flow:
    """Validate a flow definition already read from YAML (a dict) into a :class:`Flow`."""
    top = _Reader(
        path,
        "",
        data,
        ("flow", "traffic", "verticals", "sources", "steps", "recipients", "feedback"),
    )
    fr = _Reader(path, "flow", top.raw("flow"), ("id", "name", "timezone", "description"))
    flow_name = fr.text("name")
    flow_id = fr.text("id") if fr.has("id") else stable_id("flow_", flow_name)
    timezone = _tz(fr, "timezone", "UTC")

    tr = _Reader(path, "traffic", top.raw("traffic", {}), ("hourly", "weekly"))
    hourly = _curve(tr, "hourly", 24, [1.0] * 24)
    weekly = _curve(tr, "weekly", 7, [1.0] * 7)

    vr = top.mapping("verticals")
    verticals: dict[str, tuple[str, ...]] = {}
    for vname, vdef in vr.items():
        sub = _Reader(path, f"verticals.{vname}", vdef, ("fields",))
        fields = sub.names("fields")
        for f in fields:
            if f not in LEAD_FIELDS:
                sub.fail(f"unknown lead field {f!r}; accepted: {', '.join(LEAD_FIELDS)}", "fields")
        for must in ("first_name", "phone", "state"):
            if must not in fields:
                sub.fail(f"every vertical needs {must!r} among its fields", "fields")
        verticals[str(vname)] = tuple(fields)
    if not verticals:
        top.fail("define at least one vertical", "verticals")

    seen_names: dict[str, str] = {}

    def unique(r: _Reader, name: str, what: str):
        if name in seen_names:
            r.fail(
                f"the name {name!r} is already used by a {seen_names[name]}; names must be unique"
            )
        seen_names[name] = what

    # sources ---------------------------------------------------------------
    sources = []
    for i, sdef in enumerate(top.items("sources")):
        name = sdef.get("name") if isinstance(sdef, dict) else None
        sr = _Reader(
            path,
            f"sources[{i}]" + (f" {name!r}" if name else ""),
            sdef,
            ("name", "id", "vertical", "cost", "share", "quality", "acceptance", "schedule"),
        )
        name = sr.text("name")
        unique(sr, name, "source")
        vertical = sr.text("vertical", next(iter(verticals)))
        if vertical not in verticals:
            sr.fail(f"unknown vertical {vertical!r}; accepted: {', '.join(verticals)}", "vertical")
        qr = _Reader(path, f"{sr.entry}.quality", sr.raw("quality", {}), QUALITY_KEYS)
        quality = Quality(**{k: qr.prob(k, 0.0) for k in QUALITY_KEYS})
        ar = _Reader(
            path, f"{sr.entry}.acceptance", sr.raw("acceptance", {}), ("required", "formats")
        )
        required = ar.names("required", ["first_name", "phone"])
        for f in required:
            if f not in verticals[vertical]:
                ar.fail(
                    f"required field {f!r} is not a field of vertical {vertical!r}; "
                    f"its fields: {', '.join(verticals[vertical])}",
                    "required",
                )
        formats = ar.mapping("formats", {})
        for f, fmt in formats.items():
            if fmt not in FORMATS:
                ar.fail(
                    f"unknown format {fmt!r} for {f!r}; accepted: {', '.join(FORMATS)}", "formats"
                )
            if FORMATS[fmt] != f:
                ar.fail(f"format {fmt!r} applies to field {FORMATS[fmt]!r}, not {f!r}", "formats")
        sources.append(
            Source(
                name=name,
                id=sr.text("id") if sr.has("id") else stable_id("ent_", flow_id, "source", name),
                step_id=stable_id("step_", flow_id, "source", name),
                vertical=vertical,
                cost=sr.number("cost", what="a cost in dollars"),
                share=sr.number("share", what="a share of volume"),
                quality=quality,
                required=required,
                formats=tuple(formats.items()),
                schedule=_schedule(sr, "schedule", timezone) if sr.has("schedule") else None,
            )
        )
    if sum(s.share for s in sources) <= 0:
        top.fail("the sources' shares add up to 0; give at least one a share above 0", "sources")
    source_names = tuple(s.name for s in sources)

    # field availability: what each source's vertical supplies, then what is appended
    known: dict[str, str] = dict(DERIVED_FIELDS)
    for s in sources:
        for f in verticals[s.vertical]:
            known[f] = LEAD_FIELDS[f]

    # steps -----------------------------------------------------------------
    steps: list = []
    for i, sdef in enumerate(top.items("steps")):
        position = i + 1
        if not isinstance(sdef, dict):
            top.fail(
                f"expected a mapping like {{enhancement: NAME, ...}}, got {_show(sdef)}",
                f"steps[{i}]",
            )
        kinds = [k for k in ("enhancement", "filter") if k in sdef]
        if len(kinds) != 1:
            guess = next(iter(sdef), None)
            top.fail(
                f"unknown step kind {guess!r}; accepted kinds: enhancement, filter "
                "(write e.g. 'enhancement: Phone Validation')",
                f"steps[{i}]",
            )
        kind = kinds[0]
        name = sdef.get(kind)
        entry = f"steps[{i}] {kind} {name!r}"
        if kind == "enhancement":
            er = _Reader(
                path,
                entry,
                sdef,
                (
                    "enhancement", "id", "service", "cost", "latency_ms", "timeout_ms",
                    "failure_rate", "error_rate", "errors", "retries", "backoff_ms",
                    "circuit_breaker", "charge_failures", "valid_rate",
                ),
            )  # fmt: skip
            name = er.text("enhancement")
            unique(er, name, "step")
            service = er.text("service")
            if service not in SERVICES:
                er.fail(f"unknown service {service!r}; accepted: {', '.join(SERVICES)}", "service")
            reads = SERVICES[service]["reads"]
            if reads not in known:
                er.fail(
                    f"service {service!r} reads field {reads!r}, which no source supplies; "
                    f"fields supplied: {', '.join(sorted(known))}",
                    "service",
                )
            cb = _Reader(
                path,
                f"{entry}.circuit_breaker",
                er.raw("circuit_breaker", {}),
                ("consecutive_errors", "open_seconds"),
            )
            steps.append(
                Enhancement(
                    name=name,
                    id=er.text("id") if er.has("id") else stable_id("ent_", flow_id, kind, name),
                    step_id=stable_id("step_", flow_id, kind, name),
                    position=position,
                    service=service,
                    cost=er.number("cost", what="a cost in dollars"),
                    latency=_latency(er, "latency_ms"),
                    timeout_ms=er.integer("timeout_ms", 5000, low=1),
                    failure_rate=er.prob("failure_rate", 0.0),
                    error_rate=er.prob("error_rate", 0.0),
                    errors=_weights(er, "errors", ERROR_TYPES, {"timeout": 1.0}),
                    retries=er.integer("retries", 0),
                    backoff_ms=er.integer("backoff_ms", 250),
                    breaker_errors=cb.integer("consecutive_errors", 5, low=1),
                    breaker_open_ms=int(cb.number("open_seconds", 30) * 1000),
                    charge_failures=er.boolean("charge_failures", False),
                    valid_rate=er.prob("valid_rate", 1.0),
                )
            )
            known.update(SERVICES[service]["appends"])
        else:
            fr2 = _Reader(path, entry, sdef, ("filter", "id", "rules", "applies_to"))
            name = fr2.text("filter")
            unique(fr2, name, "step")
            applies_to = fr2.names("applies_to", [])
            for s in applies_to:
                if s not in source_names:
                    fr2.fail(
                        f"unknown source {s!r}; accepted: {', '.join(source_names)}", "applies_to"
                    )
            rules = tuple(
                _rule(path, f"{entry}.rules[{j}]", rdef, known, timezone)
                for j, rdef in enumerate(fr2.items("rules"))
            )
            steps.append(
                Filter(
                    name=name,
                    id=fr2.text("id") if fr2.has("id") else stable_id("ent_", flow_id, kind, name),
                    step_id=stable_id("step_", flow_id, kind, name),
                    position=position,
                    rules=rules,
                    applies_to=applies_to,
                )
            )

    # recipients ------------------------------------------------------------
    rr = _Reader(
        path,
        "recipients",
        top.raw("recipients"),
        ("buyers", "routing", "unvalidated_phone_rejection"),
    )
    buyers = []
    base_pos = len(steps) + 1
    for i, bdef in enumerate(rr.items("buyers")):
        name = bdef.get("name") if isinstance(bdef, dict) else None
        br = _Reader(
            path,
            f"recipients.buyers[{i}]" + (f" {name!r}" if name else ""),
            bdef,
            (
                "name", "id", "price", "pricing", "caps", "acceptance", "acceptance_by_hour",
                "acceptance_factors", "response_ms", "timeout_ms", "error_rate", "errors",
                "retries", "backoff_ms", "rejection_reasons", "feedback", "integration",
            ),
        )  # fmt: skip
        name = br.text("name")
        unique(br, name, "buyer")
        pricing = []
        for j, pdef in enumerate(br.raw("pricing", []) or []):
            pr = _Reader(path, f"{br.entry}.pricing[{j}]", pdef, ("when", "price", "add"))
            conds = _conditions(pr, "when", known)
            price = pr.number("price", what="a price in dollars") if pr.has("price") else None
            add = pr.number("add", low=None, what="an amount in dollars") if pr.has("add") else None
            if price is None and add is None:
                pr.fail("give a price or an amount to add")
            pricing.append((conds, price, add))
        factors = []
        for j, fdef in enumerate(br.raw("acceptance_factors", []) or []):
            fr3 = _Reader(path, f"{br.entry}.acceptance_factors[{j}]", fdef, ("when", "factor"))
            factors.append((_conditions(fr3, "when", known), fr3.number("factor", high=10)))
        caps = _Reader(path, f"{br.entry}.caps", br.raw("caps", {}), ("per_hour", "per_day"))
        fb = _Reader(
            path, f"{br.entry}.feedback", br.raw("feedback", {}), ("conversion_rate", "return_rate")
        )
        buyers.append(
            Buyer(
                name=name,
                id=br.text("id") if br.has("id") else stable_id("ent_", flow_id, "recipient", name),
                step_id=stable_id("step_", flow_id, "recipient", name),
                position=base_pos + i,
                price=br.number("price", what="a price in dollars"),
                pricing=tuple(pricing),
                cap_hour=caps.integer("per_hour", low=1) if caps.has("per_hour") else None,
                cap_day=caps.integer("per_day", low=1) if caps.has("per_day") else None,
                acceptance=br.prob("acceptance", 0.85),
                acceptance_by_hour=_curve(br, "acceptance_by_hour", 24, [1.0] * 24),
                factors=tuple(factors),
                response=_latency(br, "response_ms"),
                timeout_ms=br.integer("timeout_ms", 10000, low=1),
                error_rate=br.prob("error_rate", 0.0),
                errors=_weights(br, "errors", ERROR_TYPES, {"timeout": 1.0}),
                retries=br.integer("retries", 0),
                backoff_ms=br.integer("backoff_ms", 500),
                rejection_reasons=_weights(br, "rejection_reasons"),
                conversion_rate=fb.prob("conversion_rate", 0.08),
                return_rate=fb.prob("return_rate", 0.05),
                integration=br.text("integration", "custom_json"),
            )
        )
    buyer_names = tuple(b.name for b in buyers)
    routes = []
    for j, rdef in enumerate(rr.raw("routing", []) or []):
        ro = _Reader(path, f"recipients.routing[{j}]", rdef, ("when", "buyers"))
        conds = _conditions(ro, "when", known) if ro.has("when") else ()
        names = ro.names("buyers")
        for n in names:
            if n not in buyer_names:
                ro.fail(f"unknown buyer {n!r}; accepted: {', '.join(buyer_names)}", "buyers")
        routes.append(Route(conds, names))
    if not routes or routes[-1].conditions:
        # leads no rule matches try every buyer in the order they are listed
        routes.append(Route((), buyer_names))

    # feedback --------------------------------------------------------------
    fbr = _Reader(
        path,
        "feedback",
        top.raw("feedback", {}),
        ("delay_hours", "conversion_reasons", "return_reasons", "processed_ms"),
    )
    feedback = Feedback(
        delay_hours=_latency(fbr, "delay_hours", {"median": 24, "p95": 96}, unit="hours"),
        conversion_reasons=_weights(fbr, "conversion_reasons", None, {"Sale completed": 1}),
        return_reasons=_weights(fbr, "return_reasons", None, {"Invalid contact information": 1}),
        processed_ms=_latency(fbr, "processed_ms", {"median": 40, "p95": 150}),
    )
    return Flow(
        id=flow_id,
        name=flow_name,
        timezone=timezone,
        hourly=hourly,
        weekly=weekly,
        verticals=verticals,
        sources=tuple(sources),
        steps=tuple(steps),
        buyers=tuple(buyers),
        routes=tuple(routes),
        unvalidated_phone_rejection=rr.prob("unvalidated_phone_rejection", 0.0),
        feedback=feedback,
        path=path,
    )


def _rule(path: str, entry: str, rdef, known: dict[str, str], flow_tz: str) -> Rule:
    r = _Reader(path, entry, rdef, ("name", "field", "reason", *RULE_KINDS))
    kinds = [k for k in RULE_KINDS if k in rdef]
    if len(kinds) != 1:
        r.fail(f"give exactly one rule kind; accepted: {', '.join(RULE_KINDS)}")
    kind = kinds[0]
    value = rdef[kind]
    schedule = None
    fname = None
    if kind == "duplicate_within_days":
        days = r.integer(kind, low=1)
        value = days
        default_reason = f"Duplicate lead within {days} days"
        name = f"no duplicate within {days} days"
    elif kind == "business_hours":
        schedule = _schedule(r, kind, flow_tz)
        default_reason = f"Outside business hours ({schedule.describe()})"
        name = "within business hours"
    else:
        fname = r.text("field")
        if fname not in known:
            r.fail(
                f"field {fname!r} is supplied by no source and appended by no enhancement before "
                f"this filter; fields available here: {', '.join(sorted(known))}",
                "field",
            )
        ftype = known[fname]
        if kind in ("min", "max"):
            if ftype != "num":
                r.fail(f"{kind} compares numbers, but {fname!r} is a {ftype} field", kind)
            value = r.number(kind, low=None)
        elif kind in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                r.fail(f"expected a non-empty list of values, got {_show(value)}", kind)
            value = tuple(value)
        elif kind == "present":
            value = r.boolean(kind)
        name = (
            f"{fname} {kind.replace('_', ' ')} {_show(value) if kind != 'present' else ''}".strip()
        )
        default_reason = f"{fname} {{value}} fails rule {name}"
    return Rule(
        name=r.text("name", name),
        kind=kind,
        field=fname,
        value=value,
        reason=r.text("reason", default_reason),
        schedule=schedule,
    )
