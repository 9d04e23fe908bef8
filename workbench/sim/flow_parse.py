"""Reading a flow definition: the YAML's four sections (sources, steps, recipients,
feedback) into the model of ``flow.py``, every value checked, every error naming the
file, the entry and what would be accepted.

>>> parse_flow({"flow": {"name": "x"}}, "demo.yaml")
Traceback (most recent call last):
...
workbench.sim.flow.FlowError: demo.yaml: verticals: expected a mapping, got nothing
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ..paths import default_flow_path
from .flow import (
    DAYS,
    DERIVED_FIELDS,
    ERROR_TYPES,
    FORMATS,
    LEAD_FIELDS,
    QUALITY_KEYS,
    RULE_KINDS,
    SERVICES,
    Buyer,
    Condition,
    Enhancement,
    Feedback,
    Filter,
    Flow,
    FlowError,
    Latency,
    Quality,
    Route,
    Rule,
    Schedule,
    Source,
    stable_id,
)

__all__ = ["load_flow", "parse_flow"]

# the keys each kind of entry may have
_ENHANCEMENT_KEYS = tuple(
    [
        "enhancement",
        "id",
        "service",
        "cost",
        "latency_ms",
        "timeout_ms",
        "failure_rate",
        "error_rate",
        "errors",
        "retries",
        "backoff_ms",
        "circuit_breaker",
        "charge_failures",
        "valid_rate",
    ]
)
_BUYER_KEYS = tuple(
    [
        "name",
        "id",
        "price",
        "pricing",
        "caps",
        "acceptance",
        "acceptance_by_hour",
        "acceptance_factors",
        "response_ms",
        "timeout_ms",
        "error_rate",
        "errors",
        "retries",
        "backoff_ms",
        "rejection_reasons",
        "feedback",
        "integration",
    ]
)


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

    unique = _Names()
    sources = _sources(top, path, flow_id, timezone, verticals, unique)
    # field availability: what each source's vertical supplies, then what is appended
    known: dict[str, str] = dict(DERIVED_FIELDS)
    for s in sources:
        for f in verticals[s.vertical]:
            known[f] = LEAD_FIELDS[f]
    steps = _steps(top, path, flow_id, timezone, known, tuple(s.name for s in sources), unique)
    rr, buyers, routes = _recipients(top, path, flow_id, known, len(steps) + 1, unique)
    feedback = _feedback(top, path)
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


class _Names:
    """Names already given in the flow (a source, a step, a buyer): each name once."""

    def __init__(self):
        self.seen: dict[str, str] = {}

    def __call__(self, r: _Reader, name: str, what: str) -> None:
        if name in self.seen:
            r.fail(
                f"the name {name!r} is already used by a {self.seen[name]}; names must be unique"
            )
        self.seen[name] = what


def _sources(top: _Reader, path: str, flow_id: str, timezone: str, verticals: dict, unique) -> list:
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
    return sources


def _steps(
    top: _Reader, path: str, flow_id: str, timezone: str, known: dict, source_names: tuple, unique
) -> list:
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
            er = _Reader(path, entry, sdef, _ENHANCEMENT_KEYS)
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
    return steps


def _recipients(top: _Reader, path: str, flow_id: str, known: dict, base_pos: int, unique) -> tuple:
    rr = _Reader(
        path,
        "recipients",
        top.raw("recipients"),
        ("buyers", "routing", "unvalidated_phone_rejection"),
    )
    buyers = []
    for i, bdef in enumerate(rr.items("buyers")):
        name = bdef.get("name") if isinstance(bdef, dict) else None
        entry = f"recipients.buyers[{i}]" + (f" {name!r}" if name else "")
        br = _Reader(path, entry, bdef, _BUYER_KEYS)
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
    return rr, buyers, routes


def _feedback(top: _Reader, path: str) -> Feedback:
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
    return feedback


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
