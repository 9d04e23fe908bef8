"""Mapping the platform's events API (one object per flow step) to workbench events.

Each API object becomes one event of the catalogue; a source object also gives two
derived events, ``source.submitted`` at its start and ``flow.completed`` at its end
(flagged ``"derived": true``). What the object says is kept: the lead as the step saw
it (``vars.lead``, typed field objects and masked values exactly as exported) is the
``lead_snapshot``; request, response and appended data go to the metadata keys the
catalogue names; everything else stays under ``metadata.api``. Objects that fit no
catalogue type are handed on under an ``unclassified.*`` type, which the store
quarantines with the raw object, never dropping it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from ._flow_config import FlowConfig
from ._read import Item, is_hex24
from ._report import Problem, Stats
from ._values import (
    CONTEXT_VARS,
    MAX_DURATION_MS,
    as_dict,
    buyer_lead_id,
    epoch_ms,
    error_type,
    feedback_type,
    ip,
    iso_ms,
    number,
    price,
    snapshot,
    stable_event_id,
    text,
    timeout,
    whole_ms,
)

STEP_TYPES = ("source", "filter", "recipient")
FEEDBACK_TYPES = ("feedback", "return", "conversion")
_OUTCOMES = {
    "success": "success",
    "failure": "failure",
    "error": "error",
    "skip": "skipped",
    "skipped": "skipped",
    "continue": "continue",
}

#: (kind, platform outcome) -> (our type, our outcome). Kinds: the API's source and filter,
#: and the two things a ``recipient`` step can be: an enhancement or a delivery.
MAPPING: dict[tuple[str, str], tuple[str, str]] = {
    ("source", "success"): ("source.accepted", "success"),
    ("source", "failure"): ("source.rejected", "failure"),
    ("source", "error"): ("source.rejected", "error"),
    ("filter", "success"): ("filter.passed", "success"),
    ("filter", "continue"): ("filter.passed", "success"),
    ("filter", "failure"): ("filter.failed", "failure"),
    ("filter", "skipped"): ("filter.passed", "skipped"),
    ("enhancement", "success"): ("enhancement.success", "success"),
    ("enhancement", "failure"): ("enhancement.failure", "failure"),
    ("enhancement", "error"): ("enhancement.error", "error"),
    ("enhancement", "skipped"): ("enhancement.success", "skipped"),
    ("recipient", "success"): ("recipient.delivered", "success"),
    ("recipient", "failure"): ("recipient.failed", "failure"),
    ("recipient", "error"): ("recipient.error", "error"),
    ("recipient", "skipped"): ("recipient.delivered", "skipped"),
}

# module ids name the integration ("<package>.outbound.<name>"); these words say which
# side of a `recipient` step it is. Generic modules (custom JSON/form posts) say neither.
_ENHANCEMENT_WORDS = tuple(
    [
        "trustedform",
        "jornaya",
        "leadid",
        "briteverify",
        "towerdata",
        "neustar",
        "whitepages",
        "telesign",
        "xverify",
        "anura",
        "ipqualityscore",
        "melissa",
        "experian",
        "suppression",
        "verif",
        "validat",
        "lookup",
        "enhance",
        "append",
        "score",
        "dnc",
        "litigator",
    ]
)
_DELIVERY_WORDS = ("delivery", "deliver", "buyer", "ping_post", "pingpost", "crm", "salesforce")

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SLUG = re.compile(r"[^a-z0-9_]+")


@dataclass
class _Source:
    api_id: str
    start: int | None
    end: int | None
    duration: int | None
    outcome: str
    flow_id: str | None
    step_count: object


@dataclass
class _Lead:
    last_ts: int | None = None
    max_ts: int | None = None
    snapshot: dict | None = None
    snapshot_ts: int | None = None
    cost: float = 0.0
    revenue: float = 0.0
    steps: int = 0
    delivered: bool = False
    filtered: bool = False
    buyer_rejected: bool = False
    delivery_error: bool = False
    sources: list = field(default_factory=list)


class ApiMapper:
    """Maps API objects one by one (remembering a little per lead for derived events).

    One class, long, because the mapping of an export needs state across its objects
    (each lead's last time, snapshot, money and outcome, its sources, the flows named)
    and each step of the mapping reads and updates it; the values it reads are parsed
    by the small functions of ``_values``."""

    def __init__(self, catalog, config: FlowConfig | None, stats: Stats):
        self.catalog = catalog
        self.config = config
        self.stats = stats
        self.leads: dict[str, _Lead] = {}
        self.seen: dict[str, int] = {}
        self.flows: dict[str, str | None] = {}
        self.sources: dict[str, str | None] = {}

    # ------------------------------------------------------------------ entry points

    def map(self, item: Item) -> list:
        """The events for one API object (none for a repeat of an object already seen)."""
        obj = item.value
        if not isinstance(obj, dict):
            return [not_an_object(item, self.stats)]
        api_id = obj.get("id") if isinstance(obj.get("id"), str) and obj.get("id") else None
        if api_id:
            key, digest = api_id, item.digest
        else:
            canonical = json.dumps(obj, sort_keys=True, default=str)
            key = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
            digest = 0
        if key in self.seen:
            self.stats.repeats += 1
            if digest and self.seen[key] and self.seen[key] != digest:
                self.stats.notices.append(
                    f"{item.file} {item.place}: id {key} was read before with other content; "
                    "the first copy was kept"
                )
            return []
        self.seen[key] = digest
        try:
            return self._map(obj, item, key, api_id)
        except Exception as e:  # a mapping bug must not lose the object
            return [self._unclassified(obj, item, key, api_id, f"could not map: {e!r}")]

    def finish(self) -> list[dict]:
        """The derived flow.completed events, one per source object, with the lead's
        totals over the events of this import."""
        out = []
        for lead_id, lead in self.leads.items():
            for src in lead.sources:
                try:
                    out.append(self._completed(lead_id, lead, src))
                except Exception as e:  # a derived event is not worth the import
                    self.stats.notices.append(
                        f"no flow.completed derived for lead {lead_id} (source object "
                        f"{src.api_id}): {e!r}"
                    )
        return out

    # ------------------------------------------------------------------ one object

    def _map(self, obj: dict, item: Item, key: str, api_id: str | None) -> list:
        stats = self.stats
        vars_ = as_dict(obj.get("vars"))
        lead_id = text(as_dict(vars_.get("lead")).get("id"))
        raw_type = obj.get("type")
        t = raw_type.strip().lower() if isinstance(raw_type, str) else None
        raw_outcome = obj.get("outcome")
        o = raw_outcome.strip().lower() if isinstance(raw_outcome, str) else None
        outcome = _OUTCOMES.get(o) if o else None
        label = f"{raw_type}/{raw_outcome}"

        if t in FEEDBACK_TYPES:
            kind, by = "feedback", None
        elif t in ("source", "filter"):
            kind, by = t, None
        elif t == "recipient":
            kind, by = self._recipient_kind(obj)
        else:
            known = ", ".join(STEP_TYPES + FEEDBACK_TYPES)
            return [
                self._unclassified(
                    obj, item, key, api_id, f"unknown step type {raw_type!r} (known: {known})"
                )
            ]
        if kind == "feedback":
            our_type = "feedback.received"
            our_outcome = "failure" if outcome in ("failure", "error") else "success"
        else:
            mapped = MAPPING.get((kind, outcome)) if outcome else None
            if mapped is None:
                allowed = sorted({o for k, o in MAPPING if k == kind} - {"skipped"})
                return [
                    self._unclassified(
                        obj,
                        item,
                        key,
                        api_id,
                        f"outcome {raw_outcome!r} of a {t} step has no workbench event "
                        f"(mapped: {', '.join(allowed)}, skip)",
                    )
                ]
            our_type, our_outcome = mapped
        if not lead_id:
            return [self._unclassified(obj, item, key, api_id, "no lead id (vars.lead.id)")]
        lead = self.leads.setdefault(lead_id, _Lead())
        consumed = {"id", "type", "outcome", "vars"}
        start = epoch_ms(obj.get("start_timestamp"))
        end = epoch_ms(obj.get("end_timestamp"))
        ms = whole_ms(obj.get("ms"))
        ts, ts_from = self._timestamp(kind, start, end, ms, lead, vars_, api_id)
        if ts is None:
            return [
                self._unclassified(
                    obj,
                    item,
                    key,
                    api_id,
                    "no time: no start_timestamp or end_timestamp, no earlier step of the "
                    "lead, no vars.submission.timestamp and no 24-hex id",
                )
            ]
        if start is not None:
            consumed.add("start_timestamp")
        if ms is not None:
            duration = ms
            consumed.add("ms")
        elif start is not None and end is not None and end >= start:
            duration = end - start
        else:
            duration = None
        if duration is not None and duration > MAX_DURATION_MS:
            # a step cannot take longer than the store's duration column holds (~24 days):
            # the timings are wrong, so the duration is left unknown and said so
            self.stats.notices.append(
                f"{item.file} {item.place}: duration of {duration:,} ms is not believable; stored without one"
            )
            duration = None

        step_id = text(obj.get("step_id"))
        if step_id is not None:
            consumed.add("step_id")
        step_cfg = self.config.step(step_id) if self.config else None
        flow = as_dict(vars_.get("flow"))
        flow_id = text(flow.get("id"))
        if flow_id:
            self.flows.setdefault(flow_id, text(flow.get("name")))
        src = as_dict(vars_.get("source"))
        entity = as_dict(obj.get("entity"))
        entity_id = (step_cfg.entity_id if step_cfg else None) or text(entity.get("id"))
        if kind == "source":
            source_id = text(src.get("id"))
            entity_id = entity_id or source_id
            name = (
                text(src.get("name"))
                or (self.config.source_name(source_id) if self.config else None)
                or (step_cfg.name if step_cfg else None)
                or f"source {source_id or step_id or '?'}"
            )
            if source_id:
                self.sources.setdefault(source_id, text(src.get("name")))
        else:
            name = (
                (step_cfg.entity_name or step_cfg.name if step_cfg else None)
                or text(entity.get("name"))
                or f"{kind} step {step_id or '?'}"
            )
        step_name = (step_cfg.name if step_cfg else None) or name

        md = self._metadata(kind, our_type, our_outcome, obj, name, consumed, lead_id)
        md["step_name"] = step_name
        if api_id:
            md["original_id"] = api_id
        md["import"] = {
            k: v
            for k, v in (
                ("format", "api"),
                ("source_type", raw_type),
                ("source_outcome", raw_outcome),
                ("classified_by", by),
                ("timestamp_from", ts_from),
            )
            if v is not None
        }
        rest = {k: v for k, v in obj.items() if k not in consumed}
        vars_rest = {k: v for k, v in vars_.items() if k in CONTEXT_VARS and k != "lead"}
        if vars_rest:
            rest["vars"] = vars_rest
        else:
            rest.pop("vars", None)
        if rest:
            md["api"] = rest
        self._fill_required(our_type, md)

        snap = snapshot(vars_)
        event = {
            "event_id": stable_event_id("api", key),
            "type": our_type,
            "timestamp": iso_ms(ts),
            "lead_id": lead_id,
            "flow_id": flow_id,
            "entity_id": entity_id,
            "step_id": step_id,
            "outcome": our_outcome,
            "duration_ms": duration,
            "metadata": md,
            "lead_snapshot": snap,
        }
        out = [event]
        if kind == "source":
            sub = self._submitted(obj, key, api_id, ts, lead_id, flow_id, entity_id, step_id)
            sub["metadata"].update(source=name, step_name=step_name)
            self._fill_required("source.submitted", sub["metadata"])
            sub["lead_snapshot"] = snap
            out.insert(0, sub)

        # counted only now, when nothing can fail any more: each object counts once
        stats.mapped_objects += 1
        stats.mapped[(label, f"{our_type}/{our_outcome}")] += 1
        if by:
            stats.classified_by[by] += 1
        if ts_from:
            stats.timestamp_from[ts_from] += 1
        for k, v in rest.items():
            if k == "vars":
                for vk in v:
                    stats.metadata_only[f"api.vars.{vk}"] += 1
            else:
                stats.metadata_only[f"api.{k}"] += 1
        if kind == "source":
            stats.derived["source.submitted"] += 1
            lead.sources.append(
                _Source(
                    api_id=key,
                    start=ts,
                    end=end,
                    duration=duration,
                    outcome=our_outcome,
                    flow_id=flow_id,
                    step_count=obj.get("step_count"),
                )
            )
        self._remember(lead, kind, our_type, our_outcome, ts, end, md, snap)
        return out

    # ------------------------------------------------------------------ pieces

    def _recipient_kind(self, obj: dict) -> tuple[str, str]:
        """Enhancement or delivery, and which rule decided: the flow configuration, the
        module id, then whether the step carries a price."""
        step_cfg = self.config.step(text(obj.get("step_id"))) if self.config else None
        if step_cfg and step_cfg.kind in ("enhancement", "recipient"):
            return step_cfg.kind, "flow config"
        module = obj.get("module_id")
        if self.config and self.config.module_kind(module) in ("enhancement", "recipient"):
            return self.config.module_kind(module), "flow config (module_id)"
        if isinstance(module, str):
            m = module.lower()
            enh = any(w in m for w in _ENHANCEMENT_WORDS)
            dlv = any(w in m for w in _DELIVERY_WORDS)
            if enh != dlv:
                return ("enhancement" if enh else "recipient"), "module_id"
        if any(k in obj for k in ("price", "purchase_price")):
            return "recipient", "price"
        return "enhancement", "no price"

    def _timestamp(self, kind, start, end, ms, lead: _Lead, vars_, api_id):
        """When the step started; without timings, when it most likely did: a skipped
        step right after the lead's previous step, feedback when it was recorded (the
        time in its object id)."""
        if start is not None:
            return start, None
        if end is not None:
            return (end - ms, "end_timestamp - ms") if ms is not None else (end, "end_timestamp")
        if kind == "feedback" and is_hex24(api_id):
            return int(api_id[:8], 16) * 1000, "object id"
        if lead.last_ts is not None:
            return lead.last_ts, "previous step"
        sub = epoch_ms(as_dict(vars_.get("submission")).get("timestamp"))
        if sub is not None:
            return sub, "submission"
        if is_hex24(api_id):
            return int(api_id[:8], 16) * 1000, "object id"
        return None, None

    def _metadata(self, kind, our_type, outcome, obj, name, consumed, lead_id):
        """The catalogue's metadata for one event, from the object's fields."""
        reason = obj.get("reason")
        request = obj.get("request") if isinstance(obj.get("request"), dict) else None
        response = obj.get("response") if isinstance(obj.get("response"), dict) else None
        status = whole_ms(as_dict(response).get("status")) if response else None
        appended = obj.get("appended")
        md: dict = {}
        skipped = outcome == "skipped"

        def take(*keys):
            consumed.update(k for k in keys if k in obj)

        if appended is not None:
            md["appended_fields"] = appended
            take("appended")
        if kind == "source":
            md["source"] = name
            cost = number(obj.get("cost"))
            if cost is not None:
                take("cost")
            else:
                cost = number(obj.get("purchase_price"))
                if cost is not None:
                    take("purchase_price")
            if "acceptance_criteria" in obj:
                md["acceptance_criteria"] = obj["acceptance_criteria"]
                take("acceptance_criteria")
            if response is not None:
                md["response"] = response
            take("request", "response")  # the request is the submission: source.submitted
            if our_type == "source.accepted":
                md.update(parsed_fields=None, field_mapping=None, cost=cost)
                if reason is not None:
                    md["reason_given"] = reason
            else:
                md.update(
                    rejection_reason=reason,
                    failed_validations=None,
                    field_errors=None,
                )
                if cost is not None:
                    md["cost"] = cost
            take("reason")
            return md
        if kind == "filter":
            md.update(filter=name, filter_id=text(obj.get("step_id")))
            if skipped:
                md["skip_reason"] = reason
            elif our_type == "filter.failed":
                md["rejection_reason"] = reason
            elif reason is not None:
                md["reason_given"] = reason
            take("reason")
            return md
        if kind == "feedback":
            fb = as_dict(obj.get("feedback"))
            given = (
                obj.get("kind")
                or obj.get("feedback_type")
                or fb.get("type")
                or (obj.get("type") if str(obj.get("type")).lower() != "feedback" else None)
            )
            take("kind", "feedback_type")
            fb_type = feedback_type(given)
            md.update(
                feedback_type=fb_type or (str(given).lower() if given is not None else None),
                status={"return": "returned", "conversion": "converted"}.get(fb_type),
                quality_metrics=obj.get("quality_metrics"),
                original_lead_id=lead_id,
                reason=reason if reason is not None else fb.get("reason"),
            )
            take("quality_metrics", "reason")
            if "revenue_adjustment" in obj:
                md["revenue_adjustment"] = obj["revenue_adjustment"]
                take("revenue_adjustment")
            recipient = text(as_dict(obj.get("recipient")).get("name"))
            if recipient or self.config and self.config.step(text(obj.get("step_id"))):
                md["recipient"] = recipient or name
            if fb_type is None:
                self.stats.notices.append(
                    f"feedback {obj.get('id')} has no return/conversion kind ({given!r})"
                )
            return md

        # enhancement or delivery: request and response as the catalogue names them
        if status is not None:
            md["http_status"] = status
        if kind == "enhancement":
            md["service"] = name
            cost = number(obj.get("cost"))
            if cost is not None:
                md["cost"] = cost
                take("cost")
            if request is not None:
                md["request"] = request
            if response is not None:
                md["response"] = response
            take("request", "response")
            if skipped:
                md["skip_reason"] = reason
            elif our_type in ("enhancement.failure", "enhancement.error"):
                md.update(
                    error_type=error_type(reason, status),
                    error_message=reason,
                    retry_attempts=None,
                )
                if our_type == "enhancement.error":
                    md.update(timeout=timeout(reason), circuit_breaker=None)
            elif reason is not None:
                md["reason_given"] = reason
            take("reason")
            return md
        md["recipient"] = name
        if request is not None:
            # the body sent to the buyer is the payload; the rest of the request stays
            md["payload"] = request.get("body")
            md["request"] = {k: v for k, v in request.items() if k != "body"}
        take("request")
        if skipped:
            md["skip_reason"] = reason
            if response is not None:
                md["response"] = response
        elif our_type == "recipient.delivered":
            md["response"] = response
            md["revenue"] = price(obj, appended, consumed)
            md["buyer_lead_id"] = buyer_lead_id(appended)
        elif our_type == "recipient.failed":
            md.update(
                rejection_reason=reason,
                buyer_response=response,
                business_logic=True,
            )
        else:  # recipient.error
            md.update(
                error_type=error_type(reason, status),
                error_message=reason,
                retry_attempts=None,
                timeout=timeout(reason),
            )
            if response is not None:
                md["response"] = response
        take("response", "reason")
        return md

    def _fill_required(self, our_type: str, md: dict) -> None:
        et = self.catalog.get(our_type)
        for k in et.required_metadata:
            if md.get(k) is None:
                md.setdefault(k, None)
                self.stats.null_required[f"{our_type}.{k}"] += 1

    def _submitted(self, obj, key, api_id, ts, lead_id, flow_id, entity_id, step_id) -> dict:
        request = as_dict(obj.get("request"))
        headers = request.get("headers")
        md = {
            "raw_data": request.get("body"),
            "headers": headers,
            "ip_address": ip(request),
            "source_config": None,
            "derived": True,
            "derived_from": api_id,
        }
        rest = {k: v for k, v in request.items() if k not in ("body", "headers")}
        if rest:
            md["request"] = rest
        if api_id:
            md["original_id"] = api_id
        md["import"] = {"format": "api", "source_type": obj.get("type"), "derived": True}
        return {
            "event_id": stable_event_id("api", key, "source.submitted"),
            "type": "source.submitted",
            "timestamp": iso_ms(ts),
            "lead_id": lead_id,
            "flow_id": flow_id,
            "entity_id": entity_id,
            "step_id": step_id,
            "outcome": "success",
            "duration_ms": None,
            "metadata": md,
        }

    def _remember(self, lead: _Lead, kind, our_type, outcome, ts, end, md, snap):
        if ts is not None:
            lead.max_ts = max(ts, lead.max_ts) if lead.max_ts is not None else ts
            if end is not None and kind != "source":
                lead.max_ts = max(lead.max_ts, end)
            # the source object spans the whole flow: its end says nothing about the
            # place of an untimed step, its start does
            lead.last_ts = ts if kind == "source" or end is None else end
        if kind == "feedback":
            return  # after the flow: neither its snapshot nor its money are the flow's
        if ts is not None and (lead.snapshot_ts is None or ts >= lead.snapshot_ts):
            lead.snapshot, lead.snapshot_ts = snap, ts
        if outcome != "skipped":
            lead.steps += 1
        if kind in ("source", "enhancement"):
            lead.cost += md.get("cost") or 0.0
        if our_type == "recipient.delivered" and outcome == "success":
            lead.delivered = True
            lead.revenue += md.get("revenue") or 0.0
        lead.filtered |= our_type == "filter.failed"
        lead.buyer_rejected |= our_type == "recipient.failed" and outcome == "failure"
        lead.delivery_error |= our_type == "recipient.error" and outcome == "error"

    def _completed(self, lead_id: str, lead: _Lead, src: _Source) -> dict:
        if src.end is not None:
            ts = src.end
        elif src.start is not None and src.duration is not None:
            ts = src.start + src.duration
        else:
            ts = lead.max_ts if lead.max_ts is not None else src.start
        # the source object's outcome is what the flow answered the source, so a lead
        # stopped later (filtered, refused by every buyer) fails there too: name the
        # step that stopped it when this import holds it
        if lead.delivered:
            final = "delivered"
        elif lead.filtered:
            final = "filtered"
        elif lead.buyer_rejected:
            final = "buyer_rejected"
        elif lead.delivery_error:
            final = "delivery_error"
        elif src.outcome != "success":
            final = "rejected"
        else:
            final = "accepted"
        steps = src.step_count if isinstance(src.step_count, int) else lead.steps
        md = {
            "total_duration_ms": src.duration,
            "steps_executed": steps,
            "final_outcome": final,
            "total_cost": round(lead.cost, 6),
            "total_revenue": round(lead.revenue, 6),
            "derived": True,
            "derived_from": src.api_id,
            "original_id": src.api_id,
            "import": {"format": "api", "source_type": "source", "derived": True},
        }
        self._fill_required("flow.completed", md)
        self.stats.derived["flow.completed"] += 1
        return {
            "event_id": stable_event_id("api", src.api_id, "flow.completed"),
            "type": "flow.completed",
            "timestamp": iso_ms(ts) if ts is not None else None,
            "lead_id": lead_id,
            "flow_id": src.flow_id,
            "entity_id": None,
            "step_id": None,
            "outcome": src.outcome,
            "duration_ms": src.duration,
            "metadata": md,
            "lead_snapshot": lead.snapshot,
        }

    def _unclassified(self, obj, item: Item, key: str, api_id, reason: str) -> dict:
        vars_ = as_dict(obj.get("vars"))
        lead_id = text(as_dict(vars_.get("lead")).get("id"))
        self.stats.unclassified.append(Problem(item.file, item.place, reason, api_id, lead_id))
        slug = _SLUG.sub("_", str(obj.get("type") or "unknown").lower()).strip("_") or "unknown"
        start = epoch_ms(obj.get("start_timestamp"))
        return {
            "event_id": stable_event_id("api", key),
            # no catalogue type: the store quarantines it with the whole object as raw text
            "type": f"unclassified.{slug}",
            "timestamp": iso_ms(start) if start is not None else None,
            "lead_id": lead_id,
            "flow_id": text(as_dict(vars_.get("flow")).get("id")),
            "step_id": text(obj.get("step_id")),
            "metadata": {
                "unclassified_reason": reason,
                "original_id": api_id,
                "import": {"format": "api", "file": item.file, "place": item.place},
                "api": obj,
            },
        }


def not_an_object(item: Item, stats: Stats) -> dict:
    """A value that is no event object (a string, a number, an array in an array),
    handed to the store's quarantine whole, with the place it came from."""
    kind = {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(item.value), "number"
    )
    reason = f"not an event object (a JSON {kind})"
    stats.unclassified.append(Problem(item.file, item.place, reason))
    return {
        "event_id": stable_event_id("value", item.file, item.place),
        "type": "unclassified.not_an_object",
        "metadata": {
            "unclassified_reason": reason,
            "import": {"file": item.file, "place": item.place},
            "value": item.value,
        },
    }
