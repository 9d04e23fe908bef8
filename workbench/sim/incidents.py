"""Incidents: named, parametrised problems planted in a simulated run, with ground truth.

Each incident type says what it plants, which entity it hits and its parameters with
defaults. A run resolves the incidents it is given against its flow and time window
into :class:`Incident` rows (the store's ``incidents`` table): name, entity, start,
end, every parameter, a description. The runner applies them while it generates; the
run report keeps, in memory, the ids of the leads each incident changed.

Incidents are given as text (``"nine_digit_phones:source=LeadRiver,rate=0.8"``, the
CLI's form), as dicts (``{"name": "nine_digit_phones", "rate": 0.8}``) or as
:func:`incident` objects. Windows: ``start`` is an offset from the run's start
(``"2d6h"``, ``"30h"``), a share of the run (``"40%"``) or an ISO-8601 time;
``duration`` is like ``"6h"`` or ``"1d12h"``; ``hours`` (where offered) limits the
incident to local hours of the flow's timezone, e.g. ``"13-17"``.

>>> spec = parse_spec("nine_digit_phones:source=LeadRiver,rate=0.8")
>>> spec.name, spec.params["rate"]
('nine_digit_phones', '0.8')
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..errors import WorkbenchError
from .flow import B62 as _B62
from .flow import LEAD_FIELDS, Flow, FlowError, _named

__all__ = [
    "Effect",
    "LeadProblem",
    "MoreLeads",
    "CallErrors",
    "CallFailures",
    "JudgedInTimezone",
    "AcceptanceDrop",
    "SegmentRejection",
    "FieldCorruption",
    "IncidentError",
    "IncidentType",
    "Param",
    "Incident",
    "IncidentSpec",
    "INCIDENT_TYPES",
    "incident",
    "parse_spec",
    "resolve",
    "describe_all",
]


class IncidentError(WorkbenchError, ValueError):
    """An incident the run cannot plant (unknown name, parameter or value)."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    default: object
    help: str


# --------------------------------------------------------------------------- effects
#
# What an incident does, declared with its type: the stage of a chunk it acts in, the
# parameter naming the entity it hits, and the parameters it acts with. A stage asks
# its plan for the effects of its kind (``Plan.acting``) and applies them; no stage
# knows an incident by name.


@dataclass(frozen=True)
class Effect:
    """Where an incident acts: ``target`` is the parameter naming its entity."""

    target: str | None = None


@dataclass(frozen=True)
class LeadProblem(Effect):
    """Leads of a source arrive with a problem (``problem``: a key of the chunk's
    ``problems``), for a share ``rate`` of them; the problem is the lead's only one.
    ``field`` names the parameter holding the field the problem concerns."""

    problem: str = ""
    rate: str = "rate"
    field: str | None = None


@dataclass(frozen=True)
class MoreLeads(Effect):
    """A source sends ``factor`` times its volume during the window."""

    factor: str = "volume"


@dataclass(frozen=True)
class CallErrors(Effect):
    """Calls to an enhancement or a buyer fail technically for a share ``rate``: with
    ``timeout`` (a parameter) every error is a timeout of that length, else the
    errors follow ``mix`` (cumulative weights of timeout, http_5xx, refused)."""

    rate: str = "rate"
    timeout: str | None = None
    mix: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class CallFailures(Effect):
    """An enhancement answers, but with failures, for a share ``rate`` of calls."""

    rate: str = "rate"


@dataclass(frozen=True)
class JudgedInTimezone(Effect):
    """A filter's business-hours rule is evaluated in the timezone ``timezone``."""

    timezone: str = "timezone"


@dataclass(frozen=True)
class AcceptanceDrop(Effect):
    """A buyer accepts ``acceptance`` of the leads, rejecting the others with ``reason``."""

    acceptance: str = "acceptance"
    reason: str = "reason"


@dataclass(frozen=True)
class SegmentRejection(Effect):
    """A buyer rejects a share ``rate`` of the leads whose ``field`` is in ``values``."""

    field: str = "field"
    values: str = "values"
    rate: str = "rate"


@dataclass(frozen=True)
class FieldCorruption(Effect):
    """A field mapping before the buyers changes ``field`` (``transform``); the buyer
    (or all buyers) rejects a share ``reject_rate`` of the leads it changed."""

    field: str = "field"
    transform: str = "transform"
    reject_rate: str = "reject_rate"


@dataclass(frozen=True)
class IncidentType:
    """One kind of incident: what it plants, on which entity, with which parameters,
    what it does (``effects``) and what the flow needs for it to show (``requires``:
    a check returning a reason it cannot, or None)."""

    name: str
    entity_kind: str | None
    summary: str
    plants: str
    params: tuple[Param, ...]
    default_start: str
    default_duration: str
    effects: tuple[Effect, ...] = ()
    requires: object = None

    def describe(self) -> str:
        lines = [f"{self.name}  ({self.entity_kind or 'flow'})", f"  {self.summary}"]
        lines.append(f"  plants: {self.plants}")
        lines.append(f"  start={self.default_start}  duration={self.default_duration}")
        for p in self.params:
            default = "(first in flow)" if p.default is None else p.default
            lines.append(f"  {p.name}={default}  {p.help}")
        return "\n".join(lines)


def _p(name, kind, default, help):
    return Param(name, kind, default, help)


# What a flow needs for an incident to show in its events.


def _checks_phone_format(params: dict, flow: Flow) -> str | None:
    s = flow.source(params["source"])
    if "phone" not in dict(s.formats):
        return (
            f"source {s.name!r} does not check the phone format (acceptance.formats), "
            "so 9-digit phones would not be rejected; choose a source that does"
        )
    return None


def _requires_field(params: dict, flow: Flow) -> str | None:
    s = flow.source(params["source"])
    if params["field"] not in s.required:
        return (
            f"field {params['field']!r} is not required by source {s.name!r}; "
            f"its required fields: {', '.join(s.required)}"
        )
    return None


def _has_duplicate_filter(params: dict, flow: Flow) -> str | None:
    if not any(r.kind == "duplicate_within_days" for f in flow.filters for r in f.rules):
        return "the flow has no duplicate_within_days filter rule"
    return None


def _has_business_hours(params: dict, flow: Flow) -> str | None:
    f = flow.step(params["filter"])
    if not any(r.kind == "business_hours" for r in f.rules):
        having = [x.name for x in flow.filters if any(r.kind == "business_hours" for r in x.rules)]
        return (
            f"filter {f.name!r} has no business_hours rule; filters with one: {', '.join(having)}"
        )
    return None


def _lead_field(params: dict, flow: Flow) -> str | None:
    if params["field"] in ("source", "vertical"):
        return f"field must be a lead field, not {params['field']!r}"
    return None


_TYPES = (
    IncidentType(
        "nine_digit_phones",
        "source",
        "A source starts sending phone numbers with 9 digits.",
        "affected leads carry a 9-digit phone and get source.rejected with "
        "'Invalid phone format: expected 10 digits, got 9'",
        (
            _p("source", "source", "LeadRiver", "the source sending bad phones"),
            _p("rate", "rate", 0.8, "share of that source's leads with a 9-digit phone"),
        ),
        "15%",
        "10h",
        effects=(LeadProblem("source", problem="nine"),),
        requires=_checks_phone_format,
    ),
    IncidentType(
        "source_rejection_spike",
        "source",
        "A source's leads arrive without a required field; its rejection rate passes 50%.",
        "affected leads lack the field and get source.rejected with "
        "'Missing required field: <field>'",
        (
            _p("source", "source", "Evergreen Life Quotes", "the source"),
            _p("field", "field", "email", "the required field left out"),
            _p("rate", "rate", 0.7, "share of that source's leads missing the field"),
        ),
        "5%",
        "8h",
        effects=(LeadProblem("source", problem="miss", field="field"),),
        requires=_requires_field,
    ),
    IncidentType(
        "duplicate_flood",
        "source",
        "A source re-sends leads it already sent, at several times its normal volume.",
        "more leads from the source; affected leads repeat an earlier lead's contact data "
        "and fail the duplicate filter with 'Duplicate lead within 30 days'",
        (
            _p("source", "source", "BrightPath Media", "the source flooding"),
            _p("rate", "rate", 0.7, "share of its leads that are duplicates"),
            _p("volume", "number", 3.0, "its volume multiplier during the window"),
        ),
        "80%",
        "6h",
        effects=(
            LeadProblem("source", problem="dup"),
            MoreLeads("source"),
        ),
        requires=_has_duplicate_filter,
    ),
    IncidentType(
        "enhancement_outage",
        "enhancement",
        "An enhancement's data provider is down: calls answer, but with failures.",
        "enhancement.failure with error_type 'provider_unavailable'; the fields it appends "
        "are missing, so buyers accept fewer of the affected leads",
        (
            _p("service", "enhancement", "Phone Validation", "the enhancement step"),
            _p("rate", "rate", 0.95, "share of calls that fail"),
        ),
        "35%",
        "3h",
        effects=(CallFailures("service"),),
    ),
    IncidentType(
        "enhancement_timeouts",
        "enhancement",
        "An enhancement times out in certain hours: errors, retries, an opening circuit breaker.",
        "enhancement.error with error_type 'timeout' and duration = the step's timeout, "
        "retry.attempted events, circuit_breaker 'open' after consecutive errors; the step's "
        "average duration passes 2000 ms in those hours",
        (
            _p("service", "enhancement", "Email Verification", "the enhancement step"),
            _p("rate", "rate", 0.7, "share of calls that time out"),
            _p("hours", "hours", "13-17", "local hours (flow timezone) when it happens"),
            _p("timeout_ms", "int", 4000, "the step's timeout while it happens"),
        ),
        "45%",
        "2d",
        effects=(CallErrors("service", timeout="timeout_ms"),),
    ),
    IncidentType(
        "business_hours_wrong_timezone",
        "filter",
        "A business-hours filter is evaluated in the wrong timezone.",
        "filter.failed 'Outside business hours' for leads inside real business hours, in a "
        "band of hours shifted by the timezone difference; failed_values show the timezone "
        "used",
        (
            _p("filter", "filter", "Business Hours", "the filter with a business_hours rule"),
            _p("timezone", "tz", "UTC", "the timezone it is wrongly evaluated in"),
        ),
        "70%",
        "1d",
        effects=(JudgedInTimezone("filter"),),
        requires=_has_business_hours,
    ),
    IncidentType(
        "field_mapping_corruption",
        "recipient",
        "A field mapping after enhancement corrupts a field ('data looks wrong').",
        "the field differs between the enhancement.success and recipient.* snapshots (and "
        "in the delivered payload); buyers reject some affected leads with "
        "'Invalid <field> format'",
        (
            _p("buyer", "buyer_or_all", "all", "the buyer whose mapping is broken, or all"),
            _p("field", "field", "zip", "the field corrupted"),
            _p(
                "transform",
                "choice:truncate|blank",
                "truncate",
                "drop the last character or blank it",
            ),
            _p("reject_rate", "rate", 0.6, "share of affected leads the buyer rejects"),
        ),
        "88%",
        "8h",
        effects=(FieldCorruption("buyer"),),
        requires=_lead_field,
    ),
    IncidentType(
        "buyer_segment_rejection",
        "recipient",
        "A buyer stops buying a segment of leads (business logic, not a technical error).",
        "recipient.failed with business_logic true and reason naming the segment, for "
        "leads whose field value is in the segment; the buyer's acceptance falls",
        (
            _p("buyer", "buyer", "Apex Insurance Group", "the buyer"),
            _p("field", "field", "state", "the lead field defining the segment"),
            _p("values", "list", "CA|TX|FL|NY", "segment values, separated by |"),
            _p("rate", "rate", 1.0, "share of segment leads rejected"),
        ),
        "55%",
        "12h",
        effects=(SegmentRejection("buyer"),),
    ),
    IncidentType(
        "buyer_endpoint_errors",
        "recipient",
        "A buyer's endpoint fails technically: timeouts, 5xx, refused connections.",
        "recipient.error (60% timeouts, 30% http_5xx, 10% connection_refused) and "
        "retry.attempted; the buyer's step slows past 2000 ms on average",
        (
            _p("buyer", "buyer", "Horizon Direct", "the buyer"),
            _p("rate", "rate", 0.6, "share of posts that fail"),
        ),
        "62%",
        "4h",
        effects=(CallErrors("buyer", mix=(0.6, 0.9, 1.0)),),
    ),
    IncidentType(
        "buyer_acceptance_drop",
        "recipient",
        "A buyer's acceptance sinks below 70%.",
        "recipient.failed for leads the buyer would have taken, with the given reason",
        (
            _p("buyer", "buyer", "Horizon Direct", "the buyer"),
            _p("acceptance", "rate", 0.45, "the buyer's acceptance during the window"),
            _p("reason", "text", "Lead quality below threshold", "the rejection reason given"),
        ),
        "25%",
        "1d",
        effects=(AcceptanceDrop("buyer"),),
    ),
)

#: Every incident type by name.
INCIDENT_TYPES: dict[str, IncidentType] = {t.name: t for t in _TYPES}


def describe_all() -> str:
    """Text listing every incident type, what it plants and its parameters."""
    return "\n\n".join(t.describe() for t in _TYPES)


@dataclass(frozen=True)
class IncidentSpec:
    """An incident as asked for: a name and parameter values (text or Python values)."""

    name: str
    params: Mapping[str, object] = field(default_factory=dict)

    def text(self) -> str:
        """The CLI form, ``name:k=v,...``."""
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={_fmt(v)}" for k, v in self.params.items())


def _fmt(v) -> str:
    if isinstance(v, (list, tuple)):
        return "|".join(str(x) for x in v)
    return str(v)


def incident(name: str, **params) -> IncidentSpec:
    """An incident to plant, e.g. ``incident("nine_digit_phones", source="LeadRiver")``.

    >>> incident("enhancement_outage", rate=0.9).text()
    'enhancement_outage:rate=0.9'
    """
    _type(name)
    return IncidentSpec(name, dict(params))


def parse_spec(text: str) -> IncidentSpec:
    """Read ``NAME[:k=v,...]`` (list values separated by ``|``)."""
    if not isinstance(text, str) or not text.strip():
        raise IncidentError("an incident needs a name, e.g. nine_digit_phones:rate=0.8")
    name, _, rest = text.strip().partition(":")
    _type(name.strip())
    params: dict[str, str] = {}
    if rest.strip():
        for item in rest.split(","):
            k, eq, v = item.partition("=")
            if not eq or not k.strip():
                raise IncidentError(
                    f"incident {name!r}: {item!r} is not k=v; write e.g. {name}:rate=0.8,duration=6h"
                )
            params[k.strip()] = v.strip()
    return IncidentSpec(name.strip(), params)


def _type(name: str) -> IncidentType:
    try:
        return INCIDENT_TYPES[name]
    except KeyError:
        raise IncidentError(
            f"unknown incident {name!r}; known incidents: {', '.join(INCIDENT_TYPES)}"
        ) from None


def as_spec(item) -> IncidentSpec:
    if isinstance(item, IncidentSpec):
        return item
    if isinstance(item, str):
        return parse_spec(item)
    if isinstance(item, Mapping):
        d = dict(item)
        if "name" in d:
            name = d.pop("name")
        elif len(d) == 1 and isinstance(next(iter(d.values())), (Mapping, type(None))):
            # YAML's {nine_digit_phones: {rate: 0.8}}
            name, params = next(iter(d.items()))
            d = dict(params or {})
        else:
            raise IncidentError(f"an incident mapping needs a 'name': {item!r}")
        _type(name)
        return IncidentSpec(name, d)
    raise IncidentError(
        f"cannot read an incident from {type(item).__name__}; give 'name:k=v', a dict or incident()"
    )


# --------------------------------------------------------------------------- resolved


@dataclass(frozen=True)
class Incident:
    """An incident resolved against a flow and a run: the ground-truth row it records."""

    incident_id: str
    name: str
    entity: str | None
    entity_id: str | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    parameters: Mapping[str, object]
    run_id: str
    description: str

    @property
    def start_ms(self) -> int:
        return _ms(self.starts_at)

    @property
    def end_ms(self) -> int:
        return _ms(self.ends_at)

    def record(self) -> dict:
        """The row for ``EventStore.record_incidents``."""
        return {
            "incident_id": self.incident_id,
            "name": self.name,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "parameters": dict(self.parameters),
            "run_id": self.run_id,
            "description": self.description,
        }


def _ms(t: dt.datetime) -> int:
    return int(round(t.timestamp() * 1000))


_DUR = re.compile(r"^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?$")


def parse_duration(text, what: str) -> dt.timedelta:
    """'1d12h', '6h', '90m', '2d' -> timedelta."""
    if isinstance(text, dt.timedelta):
        return text
    s = str(text).strip().lower().replace(" ", "")
    m = _DUR.match(s)
    if not s or not m or not any(m.groups()):
        raise IncidentError(f"{what}={text!r} is not a duration; accepted: e.g. 6h, 90m, 1d12h")
    d, h, mi = (float(x) if x else 0.0 for x in m.groups())
    return dt.timedelta(days=d, hours=h, minutes=mi)


def _start(text, run_start: dt.datetime, run_end: dt.datetime, what: str) -> dt.datetime:
    if isinstance(text, dt.datetime):
        t = text if text.tzinfo else text.replace(tzinfo=dt.UTC)
        return t.astimezone(dt.UTC)
    s = str(text).strip()
    if s.endswith("%"):
        try:
            frac = float(s[:-1]) / 100
        except ValueError:
            raise IncidentError(f"{what}={text!r}: a share of the run is like 40%") from None
        if not 0 <= frac <= 1:
            raise IncidentError(f"{what}={text!r}: a share of the run is from 0% to 100%")
        return run_start + (run_end - run_start) * frac
    if re.match(r"^\d{4}-\d{2}-\d{2}", s):
        try:
            t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            raise IncidentError(f"{what}={text!r} is not an ISO-8601 time") from None
        return _start(t, run_start, run_end, what)
    return run_start + parse_duration(s, what)


def _hours(text, what: str) -> tuple[int, int] | None:
    s = str(text).strip()
    if s in ("", "all", "*"):
        return None
    m = re.match(r"^(\d{1,2})\s*-\s*(\d{1,2})$", s)
    if not m or not (0 <= int(m.group(1)) <= 23 and 1 <= int(m.group(2)) <= 24):
        raise IncidentError(f"{what}={text!r}: give local hours like 13-17 (from 13:00 to 17:00)")
    return int(m.group(1)), int(m.group(2))


def _convert(t: IncidentType, p: Param, value, flow: Flow):
    what = f"incident {t.name}: {p.name}"
    kind = p.kind
    try:
        if kind in ("source", "enhancement", "filter", "buyer", "buyer_or_all"):
            name = str(value)
            if kind == "buyer_or_all" and name == "all":
                return name
            items = {
                "source": flow.sources,
                "enhancement": flow.enhancements,
                "filter": flow.filters,
                "buyer": flow.buyers,
                "buyer_or_all": flow.buyers,
            }[kind]
            _named(items, name, kind.replace("_or_all", ""), flow.path)
            return name
    except FlowError:
        names = ", ".join(i.name for i in items)
        raise IncidentError(
            f"{what}: unknown {kind.replace('_or_all', '')} {value!r}; accepted: {names}"
        ) from None
    if kind == "rate":
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise IncidentError(f"{what}={value!r} is not a number; accepted: 0 to 1") from None
        if not 0 <= v <= 1:
            raise IncidentError(f"{what}={v} is not a probability; accepted: a number from 0 to 1")
        return v
    if kind in ("number", "int"):
        try:
            v = float(value) if kind == "number" else int(str(value))
        except (TypeError, ValueError):
            raise IncidentError(
                f"{what}={value!r} is not a {'number' if kind == 'number' else 'whole number'}"
            ) from None
        if v <= 0:
            raise IncidentError(f"{what}={v} must be above 0")
        return v
    if kind == "field":
        if value not in LEAD_FIELDS and value not in ("source", "vertical"):
            raise IncidentError(
                f"{what}: unknown lead field {value!r}; accepted: {', '.join(LEAD_FIELDS)}"
            )
        return str(value)
    if kind == "list":
        items_ = value if isinstance(value, (list, tuple)) else str(value).split("|")
        items_ = [str(x).strip() for x in items_ if str(x).strip()]
        if not items_:
            raise IncidentError(f"{what}: give at least one value (separate values with |)")
        return items_
    if kind == "tz":
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(str(value))
        except (ZoneInfoNotFoundError, ValueError):
            raise IncidentError(
                f"{what}: unknown timezone {value!r}; accepted: e.g. UTC, America/New_York"
            ) from None
        return str(value)
    if kind == "hours":
        _hours(value, what)
        return str(value)
    if kind.startswith("choice:"):
        choices = kind.split(":", 1)[1].split("|")
        if str(value) not in choices:
            raise IncidentError(f"{what}={value!r}; accepted: {', '.join(choices)}")
        return str(value)
    return str(value)


def resolve(
    items: Iterable,
    flow: Flow,
    run_start: dt.datetime,
    run_end: dt.datetime,
    run_id: str,
    *,
    first: int = 0,
) -> tuple[Incident, ...]:
    """Bind incident specs to ``flow`` and the run window; every value is checked.
    ``first`` numbers them after the run's incidents so far (a live stream's)."""
    out = []
    for k, item in enumerate(items or (), start=first):
        spec = as_spec(item)
        t = _type(spec.name)
        known = {p.name for p in t.params} | {"start", "duration"}
        for key in spec.params:
            if key not in known:
                raise IncidentError(
                    f"incident {t.name}: unknown parameter {key!r}; accepted: "
                    f"{', '.join([p.name for p in t.params] + ['start', 'duration'])}"
                )
        params: dict[str, object] = {}
        for p in t.params:
            params[p.name] = _convert(t, p, spec.params.get(p.name, p.default), flow)
        starts = _start(
            spec.params.get("start", t.default_start),
            run_start,
            run_end,
            f"incident {t.name}: start",
        )
        length = parse_duration(
            spec.params.get("duration", t.default_duration), f"incident {t.name}: duration"
        )
        if length <= dt.timedelta(0):
            raise IncidentError(f"incident {t.name}: duration must be above 0")
        starts = min(max(starts, run_start), run_end)
        ends = min(starts + length, run_end)
        starts = starts.replace(microsecond=(starts.microsecond // 1000) * 1000)
        ends = ends.replace(microsecond=(ends.microsecond // 1000) * 1000)
        entity, entity_id = _entity(t, params, flow)
        problem = t.requires(params, flow) if t.requires is not None else None
        if problem:
            raise IncidentError(f"incident {t.name}: {problem}")
        iid = "inc_" + _b62(hashlib.sha256(f"{run_id}/{k}/{t.name}".encode()).digest(), 12)
        params_out = {**params, "start": starts.isoformat(), "duration": str(ends - starts)}
        out.append(
            Incident(
                incident_id=iid,
                name=t.name,
                entity=entity,
                entity_id=entity_id,
                starts_at=starts,
                ends_at=ends,
                parameters=params_out,
                run_id=run_id,
                description=f"{t.summary} Plants: {t.plants}.",
            )
        )
    return tuple(out)


def _entity(t: IncidentType, params: dict, flow: Flow) -> tuple[str | None, str | None]:
    for key in ("source", "service", "filter", "buyer"):
        if key in params:
            name = params[key]
            if name == "all":
                return "all buyers", None
            for e in (*flow.sources, *flow.steps, *flow.buyers):
                if e.name == name:
                    return e.name, e.id
    return None, None


def _b62(data: bytes, n: int) -> str:
    h = int.from_bytes(data, "big")
    out = []
    for _ in range(n):
        h, r = divmod(h, 62)
        out.append(_B62[r])
    return "".join(out)
