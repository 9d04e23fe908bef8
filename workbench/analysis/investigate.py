"""One lead at a time: why did it go the way it went?

``explain(session, lead_id)`` walks the lead's timeline the way the guide's debugging
workflow does (find the problem event, read its metadata and snapshot, work backwards
to the origin) and answers in a :class:`Diagnosis`: which of the guide's four scenarios
applies, a verdict as specific as "Invalid phone format: expected 10 digits, got 9",
the evidence events and a suggested fix. ``diff_snapshots``, ``provenance`` and
``compare_leads`` are the tools it is built from, for an analyst to go on by hand;
``bubbleup`` ranks what sets a group of leads apart.

Everything reads through a Session, so what a masked role sees here is masked.

>>> d = explain(session, "lead_9xQ2wR7nK3mP5T8L")                    # doctest: +SKIP
>>> d.verdict                                                        # doctest: +SKIP
'Rejected by source Budget Leads: Invalid phone format: expected 10 digits, got 9'
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import pandas as pd

from .. import catalog
from ..errors import WorkbenchError

__all__ = [
    "Diagnosis",
    "LeadNotFoundError",
    "SCENARIOS",
    "explain",
    "diff_snapshots",
    "provenance",
    "compare_leads",
    "bubbleup",
]

#: The guide's four debugging scenarios, and the answer for a lead that went fine.
SCENARIOS = {
    "rejected": "Why was this lead rejected?",
    "missing_data": "Where's the missing data?",
    "not_delivered": "Why didn't the buyer receive the lead?",
    "data_wrong": "Data looks wrong",
    "ok": "Did this lead go fine?",
}


class LeadNotFoundError(WorkbenchError, KeyError):
    """No events for the lead id asked about."""

    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True, eq=False)
class Diagnosis:
    """The answer to "what happened to this lead?".

    ``scenario`` is a key of :data:`SCENARIOS`; ``cause`` a short tag of the root cause
    (e.g. ``"source.rejected:phone_format"``); ``evidence`` the events that show it.
    """

    lead_id: str
    scenario: str
    verdict: str
    fix: str
    cause: str
    step: str | None = None
    evidence: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    details: dict = field(default_factory=dict, repr=False)
    also: tuple[str, ...] = ()

    @property
    def causes(self) -> tuple[str, ...]:
        """This diagnosis's cause and those of the other problems the lead met."""
        return (self.cause, *self.details.get("also_causes", ()))

    @property
    def question(self) -> str:
        return SCENARIOS[self.scenario]

    @property
    def ok(self) -> bool:
        return self.scenario == "ok"

    def __str__(self) -> str:
        lines = [f"{self.lead_id}: {self.question}", f"  {self.verdict}"]
        if self.fix:
            lines.append(f"  Fix: {self.fix}")
        for other in self.also:
            lines.append(f"  Also: {other}")
        if len(self.evidence):
            ev = ", ".join(f"{r.type} (seq {r.seq})" for r in self.evidence.itertuples())
            lines.append(f"  Evidence: {ev}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        color = "#2E7D32" if self.ok else "#C62828"
        rows = "".join(
            f"<tr><td>{r.seq}</td><td>{html.escape(str(r.timestamp))}</td><td>{html.escape(r.type)}</td>"
            f"<td>{html.escape(str(r.step_name))}</td><td>{html.escape(str(r.outcome))}</td></tr>"
            for r in self.evidence.itertuples()
        )
        table = (
            "<table><tr><th>seq</th><th>timestamp</th><th>type</th><th>step</th><th>outcome</th></tr>"
            f"{rows}</table>"
            if rows
            else ""
        )
        return (
            f"<div><b>{html.escape(self.lead_id)}</b> · <i>{html.escape(self.question)}</i>"
            f"<p style='color:{color};font-size:1.1em'>{html.escape(self.verdict)}</p>"
            + (f"<p><b>Fix:</b> {html.escape(self.fix)}</p>" if self.fix else "")
            + "".join(f"<p><b>Also:</b> {html.escape(a)}</p>" for a in self.also)
            + table
            + "</div>"
        )


# --------------------------------------------------------------------------- reading


def _timeline(session, lead_id: str) -> pd.DataFrame:
    tl = session.timeline(lead_id)
    if tl.empty:
        raise LeadNotFoundError(
            f"no events for lead {lead_id!r}: check the id (lead ids look like 'lead_…'), "
            "or whether its events were archived to the cold tier"
        )
    return tl.reset_index(drop=True)


def _meta(row) -> dict:
    m = row["metadata"]
    return m if isinstance(m, dict) else {}


def _snap(row) -> dict:
    s = row["lead_snapshot"]
    return s if isinstance(s, dict) else {}


def _name(row) -> str:
    for key in ("step_name", "entity_name"):
        v = row.get(key)
        if isinstance(v, str) and v:
            return v
    return row["type"]


def _evidence(tl: pd.DataFrame, mask) -> pd.DataFrame:
    cols = [c for c in ("seq", "timestamp", "type", "step_name", "entity_name", "outcome", "duration_ms",
                        "rejection_reason", "error_type", "http_status") if c in tl.columns]  # fmt: skip
    return tl.loc[mask, cols].reset_index(drop=True)


def _present(v) -> bool:
    """A value that is there (not None, NaN or pandas' NA)."""
    try:
        return v is not None and not bool(pd.isna(v))
    except (TypeError, ValueError):
        return True


def _fmt_value(v) -> str:
    if isinstance(v, dict) and "normal" in v:  # a typed field object: its normal value
        v = v["normal"]
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    return str(v)


# --------------------------------------------------------------------------- fixes

# reason keywords -> (cause tag, suggested fix); first match wins
_FIXES = [
    ("business hours", "business_hours", "Check the business-hours filter's time zone and hours"),
    ("digit", "phone_format", "Fix the source's phone formatting: send 10-digit numbers, digits only"),
    ("phone format", "phone_format", "Fix the source's phone formatting: send 10-digit numbers, digits only"),
    ("invalid phone", "phone_invalid", "Ask the source to validate phone numbers before posting"),
    ("duplicate", "duplicate", "Ask the source to de-duplicate before posting (and check the duplicate window)"),
    ("service area", "service_area", "Ask the source to target only service-area states, or widen the filter"),
    ("coverage area", "service_area", "Ask the source to target only the buyer's coverage area"),
    ("trustedform", "trustedform", "Require a fresh TrustedForm certificate from the source"),
    ("certificate", "trustedform", "Require a fresh TrustedForm certificate from the source"),
    ("missing", "missing_field", "Ask the source to send the missing field"),
    ("required", "missing_field", "Ask the source to send the missing field"),
    ("score", "quality_score", "Review the quality-score threshold and the enhancement feeding it"),
    ("cap", "volume_cap", "The buyer's volume cap was reached: add buyers or spread the volume"),
    ("not buying", "segment", "The buyer does not take this segment now: adjust the pre-filters for this buyer"),
    ("credit", "segment", "The buyer does not take this segment: adjust the pre-filters for this buyer"),
    ("segment", "segment", "The buyer does not take this segment: adjust the pre-filters for this buyer"),
]  # fmt: skip


def _fix_for(reason: str | None, default_tag: str, default_fix: str) -> tuple[str, str]:
    text = (reason or "").lower()
    for word, tag, fix in _FIXES:
        if word in text:
            return tag, fix
    return default_tag, default_fix


# --------------------------------------------------------------------------- explain


def explain(session, lead_id: str) -> Diagnosis:
    """Diagnose one lead: the guide's scenario, a specific verdict, evidence and a fix.

    >>> print(explain(session, "lead_9xQ2wR7nK3mP5T8L"))              # doctest: +SKIP
    lead_9xQ2wR7nK3mP5T8L: Why was this lead rejected?
      Rejected by source Budget Leads: Invalid phone format: expected 10 digits, got 9
      Fix: Fix the source's phone formatting: send 10-digit numbers, digits only
    """
    tl = _timeline(session, lead_id)
    types = tl.type
    # every finding, in the guide's order of what matters most; the first is the
    # diagnosis, the others are said too (a lead can meet two problems)
    findings = [d for check in _CHECKS if (d := check(lead_id, tl, types)) is not None]
    if not findings:
        return _went_fine(lead_id, tl, types)
    first, rest = findings[0], findings[1:]
    also = tuple(d.verdict for d in rest if d.cause != first.cause)
    return replace(
        first, also=also, details={**first.details, "also_causes": [d.cause for d in rest]}
    )


def _source_rejected(lead_id, tl, types):
    hit = types == "source.rejected"
    if not hit.any():
        return None
    row = tl[hit].iloc[0]
    meta = _meta(row)
    reason = row.get("rejection_reason") or meta.get("rejection_reason") or "no reason given"
    source = row.get("entity_name") or meta.get("source") or "the source"
    tag, fix = _fix_for(
        reason, "source_validation", f"Show {source} the failed validations and field errors"
    )
    errors = meta.get("field_errors")
    verdict = f"Rejected by source {source}: {reason}"
    return Diagnosis(
        lead_id, "rejected", verdict, fix, f"source.rejected:{tag}", source,
        _evidence(tl, hit | (types == "source.submitted")),
        {"reason": reason, "source": source, "field_errors": errors,
         "failed_validations": meta.get("failed_validations")},
    )  # fmt: skip


def _filtered(lead_id, tl, types):
    hit = (types == "filter.failed") & (tl.outcome == "failure")
    if not hit.any():
        return None
    row = tl[hit].iloc[0]
    meta = _meta(row)
    flt = meta.get("filter") or row.get("entity_name") or "a filter"
    reason = row.get("rejection_reason") or meta.get("rejection_reason") or "no reason given"
    failed_values = meta.get("failed_values") or {}
    dest = meta.get("would_have_destination")
    values = (
        ", ".join(f"{k}={_fmt_value(v)}" for k, v in failed_values.items())
        if isinstance(failed_values, dict)
        else ""
    )
    # work backwards: did an earlier enhancement fail to append a field the rule needed?
    upstream = _upstream_enhancement_problem(tl, row, failed_values)
    if upstream is not None:
        svc, err_row = upstream
        verdict = (
            f"Filtered by {flt} ({reason}) because {svc} failed earlier "
            f"({err_row.get('error_type') or err_row['type']}) and did not append what the rule needed"
        )
        fix = f"Restore {svc} (check its status, timeouts and circuit breaker); the filter then sees the data"
        ev = hit | (tl.seq == err_row["seq"])
        return Diagnosis(lead_id, "missing_data", verdict, fix, f"enhancement:{svc}", svc, _evidence(tl, ev),
                         {"filter": flt, "reason": reason, "service": svc})  # fmt: skip
    tag, fix = _fix_for(
        reason, "filter_rule", f"Review {flt}'s rules, or the source's data that fails them"
    )
    verdict = f"Filtered by {flt}: {reason}"
    if values:
        verdict += f" ({values})"
    if dest:
        verdict += f"; it would have gone to {dest}"
    if tag == "business_hours":
        used = failed_values.get("timezone") if isinstance(failed_values, dict) else None
        meant = _timezone_in(reason)
        if used and meant and str(used) != meant:
            tag = "business_hours_timezone"
            verdict = (
                f"Filtered by {flt}: the business-hours rule is for {meant}, but the filter checked "
                f"the time in {used}"
                + (
                    f" ({failed_values.get('local_time')})"
                    if failed_values.get("local_time")
                    else ""
                )
                + (f"; it would have gone to {dest}" if dest else "")
            )
            fix = f"Set {flt}'s time zone to {meant} (it is set to {used})"
    return Diagnosis(lead_id, "rejected", verdict, fix, f"filter.failed:{tag}", flt, _evidence(tl, hit),
                     {"filter": flt, "reason": reason, "failed_values": failed_values,
                      "failed_rules": meta.get("failed_rules"), "would_have_destination": dest})  # fmt: skip


def _timezone_in(text: str) -> str | None:
    """An IANA time zone named in a reason, e.g. 'America/Chicago'."""
    m = re.search(r"\b([A-Z][a-z]+/[A-Z][A-Za-z_]+(?:/[A-Z][A-Za-z_]+)?)\b", text or "")
    return m.group(1) if m else None


def _upstream_enhancement_problem(tl, failed_row, failed_values):
    before = tl[tl.seq < failed_row["seq"]]
    bad = before[before.type.isin(["enhancement.failure", "enhancement.error"])]
    if bad.empty:
        return None
    # a success of the same service after its failures means it recovered
    fields = set(failed_values) if isinstance(failed_values, dict) else set()
    for _, r in bad.iloc[::-1].iterrows():
        svc = _name(r)
        recovered = before[(before.type == "enhancement.success") & (before.seq > r["seq"])]
        if any(_name(x) == svc for _, x in recovered.iterrows()):
            continue
        meta = _meta(r)
        expected = set(meta.get("fields_expected") or meta.get("appended_fields") or [])
        # only when the rule looked at what the service appends (by field or by name)
        if fields & expected or any(f.split(".")[0] in svc.lower() for f in fields):
            return svc, r
    return None


def _buyer_outcome(lead_id, tl, types):
    rec = types.str.startswith("recipient.")
    delivered = (types == "recipient.delivered") & (tl.outcome == "success")
    if delivered.any():
        return None
    stopped = (types == "source.rejected") | (
        (types == "filter.failed") & (tl.outcome == "failure")
    )
    if stopped.any() and not rec.any():
        return None  # it never reached a buyer because it was rejected: said already
    completed = tl[types == "flow.completed"]
    if not rec.any():
        if (types == "flow.completed").any():
            final = _meta(completed.iloc[0]).get("final_outcome")
            verdict = "No buyer was tried: the lead completed without reaching a recipient step"
            if final:
                verdict += f" (final outcome: {final})"
            return Diagnosis(lead_id, "not_delivered", verdict,
                             "Check the routing: which filters and recipient rules apply to this lead",
                             "no_recipient", None, _evidence(tl, types == "flow.completed"),
                             {"final_outcome": final})  # fmt: skip
        return None  # still in progress; other checks may say more
    errors = tl[types == "recipient.error"]
    rejects = tl[types == "recipient.failed"]
    if len(rejects):
        row = rejects.iloc[-1]
        meta = _meta(row)
        buyer = row.get("entity_name") or meta.get("recipient") or "the buyer"
        reason = row.get("rejection_reason") or meta.get("rejection_reason") or "no reason given"
        root = _root_of_buyer_rejection(lead_id, tl, row, buyer, reason)
        if root is not None:
            return root
        tag, fix = _fix_for(reason, "buyer_rejected",
                            f"Review {buyer}'s rejection reasons and adjust the pre-filters for {buyer}")  # fmt: skip
        verdict = f"{buyer} rejected the lead (business logic): {reason}"
        if len(errors):
            verdict += f"; {len(errors)} technical error(s) with other attempts"
        return Diagnosis(lead_id, "not_delivered", verdict, fix, f"recipient.failed:{tag}", buyer,
                         _evidence(tl, rec), {"buyer": buyer, "reason": reason, "kind": "business"})  # fmt: skip
    row = errors.iloc[-1]
    meta = _meta(row)
    buyer = row.get("entity_name") or meta.get("recipient") or "the buyer"
    err = row.get("error_type") or meta.get("error_type") or "error"
    status = row.get("http_status")
    retries = meta.get("retry_attempts")
    bits = [str(err)]
    if _present(status):
        bits.append(f"HTTP {int(status)}")
    if retries:
        bits.append(f"after {retries} retr{'y' if retries == 1 else 'ies'}")
    verdict = f"Delivery to {buyer} failed technically: {', '.join(bits)}"
    fix = f"Check {buyer}'s endpoint health and timeouts; re-send once it recovers"
    return Diagnosis(lead_id, "not_delivered", verdict, fix, f"recipient.error:{err}", buyer,
                     _evidence(tl, rec | (types == "retry.attempted")),
                     {"buyer": buyer, "error_type": err, "http_status": status, "kind": "technical"})  # fmt: skip


def _root_of_buyer_rejection(lead_id, tl, row, buyer, reason):
    """Work backwards from a buyer's rejection: was the data changed on the way (a
    mapping), or did an enhancement the buyer relies on fail?"""
    words = set(re.findall(r"[a-z]+", reason.lower()))
    diffs = diff_snapshots_frame(tl[tl.seq <= row["seq"]])
    odd = diffs[diffs.unexpected]
    if len(odd):
        hit = odd[[f.split(".")[-1] in words or f in reason.lower() for f in odd.field]]
        first = (hit if len(hit) else odd).iloc[0]
        verdict = (
            f"{buyer} rejected the lead ({reason}) because {first.field} was changed from "
            f"{first.before} to {first.after} at {first.step_name}, which does not set that field"
        )
        return Diagnosis(lead_id, "data_wrong", verdict, f"Check the field mapping of {first.step_name} for {first.field}",
                         f"mapping:{first.field}", first.step_name,
                         _evidence(tl, tl.seq.isin([*odd.seq, row["seq"]])),
                         {"buyer": buyer, "reason": reason, "field": first.field})  # fmt: skip
    for svc, bad in _unrecovered_enhancements(tl[tl.seq < row["seq"]]):
        svc_words = set(re.findall(r"[a-z]+", svc.lower())) - {
            "validation",
            "verification",
            "check",
        }
        if svc_words & words:
            err = (
                bad.get("error_type") or _meta(bad).get("error_type") or bad["type"].split(".")[-1]
            )
            verdict = (
                f"{buyer} rejected the lead ({reason}) because {svc} failed earlier ({err}) "
                "and its data never reached the buyer"
            )
            return Diagnosis(lead_id, "missing_data", verdict,
                             f"Restore {svc} (check its status and timeouts); {buyer} then gets verified data",
                             f"enhancement:{svc}", svc, _evidence(tl, tl.seq.isin([bad["seq"], row["seq"]])),
                             {"buyer": buyer, "reason": reason, "service": svc})  # fmt: skip
    return None


def _unrecovered_enhancements(tl):
    """(service, event) for each enhancement failure or error not followed by a success."""
    out = []
    for _, r in tl[tl.type.isin(["enhancement.failure", "enhancement.error"])].iterrows():
        svc = _name(r)
        later = tl[(tl.type == "enhancement.success") & (tl.seq > r["seq"])]
        if not any(_name(x) == svc for _, x in later.iterrows()):
            out.append((svc, r))
    seen, unique = set(), []
    for svc, r in out:
        if svc not in seen:
            seen.add(svc)
            unique.append((svc, r))
    return unique


def _missing_data(lead_id, tl, types):
    services = _unrecovered_enhancements(tl)
    if not services:
        return None
    svc, r = services[0]
    meta = _meta(r)
    err = (
        r.get("error_type")
        or meta.get("error_type")
        or ("error" if r["type"] == "enhancement.error" else "failure")
    )
    kind = (
        "timed out"
        if "timeout" in str(err)
        else ("errored" if r["type"] == "enhancement.error" else "failed")
    )
    missing = meta.get("fields_expected") or []
    verdict = f"{svc} {kind} ({err})"
    status = r.get("http_status")
    if _present(status) and int(status) >= 400:
        verdict += f", HTTP {int(status)}"
    breaker = meta.get("circuit_breaker")
    if breaker and str(breaker).lower() not in ("closed", "none"):
        verdict += f", circuit breaker {breaker}"
    verdict += "; its fields were not appended" + (
        f" ({', '.join(map(str, missing))})" if missing else ""
    )
    fix = (f"{svc} is down or slow: check the service's status and timeouts"
           if r["type"] == "enhancement.error" else f"Check {svc}'s error message and the request it got")  # fmt: skip
    return Diagnosis(lead_id, "missing_data", verdict, fix, f"enhancement:{svc}", svc,
                     _evidence(tl, tl.seq.isin([x[1]["seq"] for x in services]) | (types == "retry.attempted")),
                     {"service": svc, "error_type": err, "missing_fields": missing})  # fmt: skip


def _data_wrong(lead_id, tl, types):
    diffs = diff_snapshots_frame(tl)
    if diffs.empty:
        return None
    suspicious = diffs[diffs.unexpected]
    if suspicious.empty:
        return None
    first = suspicious.iloc[0]
    verdict = (
        f"{first.field} changed from {first.before} to {first.after} at {first.step_name} "
        f"({first.type}), which does not set that field"
    )
    fix = f"Check the field mapping of {first.step_name} for {first.field}"
    return Diagnosis(lead_id, "data_wrong", verdict, fix, f"mapping:{first.field}", first.step_name,
                     _evidence(tl, tl.seq.isin(suspicious.seq)),
                     {"changes": suspicious.drop(columns=["unexpected"]).to_dict("records")})  # fmt: skip


def _went_fine(lead_id, tl, types):
    delivered = tl[(types == "recipient.delivered") & (tl.outcome == "success")]
    total = tl[types == "flow.completed"]
    parts = []
    if len(delivered):
        r = delivered.iloc[-1]
        buyer = r.get("entity_name") or _meta(r).get("recipient") or "a buyer"
        rev = r.get("revenue")
        parts.append(
            f"delivered to {buyer}"
            + (f" for ${rev:,.2f}" if rev is not None and not pd.isna(rev) else "")
        )
    if len(total):
        parts.append(f"flow completed in {int(total.iloc[0].duration_ms or 0):,} ms")
    fb = tl[types == "feedback.received"]
    if len(fb):
        ft = _meta(fb.iloc[-1]).get("feedback_type") or "feedback"
        gap = (fb.iloc[-1].timestamp - tl.timestamp.iloc[0]).total_seconds() / 3600
        parts.append(f"{ft} reported {gap:.1f} h later")
    if not parts:
        verdict = "Nothing went wrong so far: the lead is still in progress (no buyer step yet)"
    else:
        verdict = "The lead went fine: " + ", ".join(parts)
    trouble = []
    for _, r in tl[tl.outcome == "error"].iterrows():
        err = r.get("error_type") or "error"
        trouble.append(f"{_name(r)} errored ({err})")
    for _, r in tl[types == "recipient.failed"].iterrows():
        trouble.append(f"{_name(r)} rejected it ({r.get('rejection_reason') or 'no reason'})")
    retries = tl[types == "retry.attempted"]
    if len(retries):
        trouble.append(f"{len(retries)} retr{'y' if len(retries) == 1 else 'ies'}")
    if trouble:
        verdict += "; on the way: " + ", ".join(dict.fromkeys(trouble))
    return Diagnosis(lead_id, "ok", verdict, "", "ok", None, _evidence(tl, types.isin(
        ["recipient.delivered", "flow.completed", "feedback.received"])))  # fmt: skip


_CHECKS = (_source_rejected, _filtered, _buyer_outcome, _data_wrong, _missing_data)


# --------------------------------------------------------------------------- snapshots

# what a step may legitimately change in the lead: source parsing and enhancements
_SETTERS = ("source.accepted", "enhancement.success", "feedback.processed")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and not ("normal" in v or "raw" in v):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def diff_snapshots_frame(tl: pd.DataFrame) -> pd.DataFrame:
    """What each event's snapshot added, changed or removed (from a timeline frame)."""
    rows = []
    prev: dict | None = None
    for _, r in tl.iterrows():
        snap = r["lead_snapshot"]
        if not isinstance(snap, dict):
            continue
        cur = _flatten(snap)
        if prev is not None:
            meta = _meta(r)
            appended = meta.get("appended_fields") or {}
            allowed = set(appended) if isinstance(appended, dict) else set(appended or [])
            for f in sorted(set(prev) | set(cur)):
                a, b = prev.get(f, _ABSENT), cur.get(f, _ABSENT)
                if a == b:
                    continue
                change = "added" if a is _ABSENT else "removed" if b is _ABSENT else "changed"
                sets = r["type"] in _SETTERS and (
                    r["type"] != "enhancement.success" or not allowed or f in allowed
                )
                rows.append(
                    {
                        "seq": r["seq"], "timestamp": r["timestamp"], "type": r["type"],
                        "step_name": _name(r), "field": f, "change": change,
                        "before": None if a is _ABSENT else _fmt_value(a),
                        "after": None if b is _ABSENT else _fmt_value(b),
                        "unexpected": change != "added" and not sets,
                    }
                )  # fmt: skip
        prev = cur
    return pd.DataFrame(rows, columns=["seq", "timestamp", "type", "step_name", "field", "change",
                                       "before", "after", "unexpected"])  # fmt: skip


class _Absent:
    def __repr__(self):
        return "<absent>"


_ABSENT = _Absent()


def diff_snapshots(session, lead_id: str) -> pd.DataFrame:
    """What each step added, changed or removed in the lead, in order.

    ``unexpected`` marks a change made by a step that does not set that field (not
    the source's parsing, not an enhancement appending it): where data goes wrong.
    """
    return diff_snapshots_frame(_timeline(session, lead_id))


def provenance(session, lead_id: str, field: str) -> pd.DataFrame:
    """Which steps set or changed ``field`` of the lead, when, and from what to what.

    >>> provenance(session, "lead_5T8nK3mP9Q2wR7xN", "appended.phone_score")   # doctest: +SKIP
    """
    tl = _timeline(session, lead_id)
    diffs = diff_snapshots_frame(tl)
    hits = diffs[(diffs.field == field) | diffs.field.str.startswith(field + ".")]
    first = None
    for _, r in tl.iterrows():
        snap = r["lead_snapshot"]
        if isinstance(snap, dict) and field in _flatten(snap):
            first = r
            break
    rows = []
    if first is not None:
        rows.append({"seq": first["seq"], "timestamp": first["timestamp"], "type": first["type"],
                     "step_name": _name(first), "change": "present", "before": None,
                     "after": _fmt_value(_flatten(first["lead_snapshot"])[field])})  # fmt: skip
    rows += hits.drop(columns=["field", "unexpected"]).to_dict("records")
    out = pd.DataFrame(
        rows, columns=["seq", "timestamp", "type", "step_name", "change", "before", "after"]
    )
    out = (
        out.drop_duplicates(subset=["seq", "change", "after"])
        .sort_values("seq")
        .reset_index(drop=True)
    )
    if out.empty:
        known = sorted(set().union(*[_flatten(s) for s in tl.lead_snapshot if isinstance(s, dict)]))
        raise KeyError(
            f"lead {lead_id} never has a field {field!r}; its fields: {', '.join(known)}"
        )
    return out


def compare_leads(session, a: str, b: str) -> pd.DataFrame:
    """Two leads side by side, step by step: steps only in one, different outcomes,
    and durations (``duration_diff_ms`` = b - a).

    >>> compare_leads(session, "lead_ok", "lead_failed")                # doctest: +SKIP
    """
    ta, tb = _timeline(session, a), _timeline(session, b)

    def steps(tl):
        df = tl.assign(
            step=[f"{t} · {_name(r)}" for t, (_, r) in zip(tl.type, tl.iterrows(), strict=True)]
        )
        df["n"] = df.groupby("step").cumcount()
        return df.set_index(["step", "n"])[["seq", "outcome", "duration_ms"]]

    sa, sb = steps(ta), steps(tb)
    m = sa.add_suffix("_a").join(sb.add_suffix("_b"), how="outer")
    m["in"] = ["both" if not pd.isna(x) and not pd.isna(y) else ("only a" if not pd.isna(x) else "only b")
               for x, y in zip(m.seq_a, m.seq_b, strict=True)]  # fmt: skip
    m["same_outcome"] = m.outcome_a == m.outcome_b
    m["duration_diff_ms"] = m.duration_ms_b - m.duration_ms_a
    m = m.reset_index().sort_values([c for c in ("seq_a", "seq_b")], na_position="last")
    m = m.drop(columns=["n"]).reset_index(drop=True)
    m.attrs["title"] = f"{a} vs {b}"
    m.attrs["summary"] = (
        f"{(m['in'] == 'only a').sum()} step(s) only in {a}, {(m['in'] == 'only b').sum()} only in {b}, "
        f"{((m['in'] == 'both') & ~m.same_outcome).sum()} with different outcomes"
    )
    return m


# --------------------------------------------------------------------------- bubbleup

# lead-level attributes (from lead_summary) and event attributes (per lead)
_LEAD_ATTRS = ("source", "recipient", "outcome", "stage")
# snapshot fields with many values are summarised (a domain, a length) or skipped
_MAX_VALUES = 60

_FEATURES_SQL = """
WITH picked AS (
    SELECT lead_id, in_selection FROM (SELECT unnest($leads) AS lead_id, unnest($flags) AS in_selection)
),
attrs AS (
    SELECT p.lead_id, 'lead.' || a.attribute AS attribute, a.value
    FROM picked p
    JOIN (
        SELECT lead_id, 'source' AS attribute, source AS value FROM lead_summary
        UNION ALL SELECT lead_id, 'recipient', recipient FROM lead_summary
    ) a ON a.lead_id = p.lead_id
    UNION ALL
    SELECT DISTINCT e.lead_id, 'event.' || e.type, coalesce(e.entity_name, e.type)
    FROM events e JOIN picked p ON p.lead_id = e.lead_id
    WHERE e.outcome IN ('failure', 'error') AND e.type <> 'flow.completed'
    UNION ALL
    SELECT DISTINCT e.lead_id, 'event.rejection_reason', e.rejection_reason
    FROM events e JOIN picked p ON p.lead_id = e.lead_id WHERE e.rejection_reason IS NOT NULL
    UNION ALL
    SELECT DISTINCT e.lead_id, 'event.error_type', e.entity_name || ': ' || e.error_type
    FROM events e JOIN picked p ON p.lead_id = e.lead_id WHERE e.error_type IS NOT NULL
    UNION ALL
    SELECT e.lead_id, 'event.hour_utc', CAST(hour(min(e.timestamp)) AS VARCHAR)
    FROM events e JOIN picked p ON p.lead_id = e.lead_id GROUP BY e.lead_id
    UNION ALL
    SELECT lead_id, 'field.' || k,
           CASE WHEN json_type(v) = 'OBJECT' THEN coalesce(json_extract_string(v, '$.normal'),
                                                           json_extract_string(v, '$.raw'))
                ELSE json_extract_string(v, '$') END
    FROM (
        SELECT e.lead_id, unnest(json_keys(e.lead_snapshot)) AS k,
               json_extract(e.lead_snapshot, '$."' || unnest(json_keys(e.lead_snapshot)) || '"') AS v
        FROM events e JOIN picked p ON p.lead_id = e.lead_id
        WHERE e.type = 'source.submitted' AND e.lead_snapshot IS NOT NULL
    )
)
SELECT a.attribute, a.value, a.lead_id, p.in_selection
FROM attrs a JOIN picked p ON p.lead_id = a.lead_id
WHERE a.value IS NOT NULL
"""


def _lead_ids(session, spec, what: str) -> list[str]:
    if spec is None:
        return []
    if isinstance(spec, str):
        df = session.sql(f"SELECT lead_id FROM lead_summary WHERE {spec}")
        return df.lead_id.tolist()
    if isinstance(spec, pd.DataFrame):
        if "lead_id" not in spec.columns:
            raise ValueError(f"{what} DataFrame needs a lead_id column")
        return spec.lead_id.dropna().astype(str).unique().tolist()
    if isinstance(spec, Iterable):
        return list(dict.fromkeys(str(x) for x in spec))
    raise ValueError(
        f"{what} must be lead ids, a DataFrame with lead_id, or a condition on lead_summary "
        "such as \"outcome = 'rejected'\""
    )


def _summarise_pii(long: pd.DataFrame) -> pd.DataFrame:
    """Personal fields say nothing about a group one by one: keep what they share
    (an email's domain, a phone's area code) and drop the rest (names, SSNs, ...)."""
    fields = long.attribute.str.startswith("field.")
    names = long.attribute.str[len("field.") :]
    kinds = names.map(lambda n: catalog.field_type(n).label)
    pii = fields & names.map(lambda n: catalog.field_type(n).pii)
    keep = ~pii | kinds.isin(["email", "phone"])
    long = long[keep].copy()
    kinds = kinds[keep]
    email = fields[keep] & (kinds == "email")
    long.loc[email, "value"] = long.loc[email, "value"].str.split("@").str[-1]
    long.loc[email, "attribute"] = long.loc[email, "attribute"] + " (domain)"
    phone = fields[keep] & (kinds == "phone")
    long.loc[phone, "value"] = long.loc[phone, "value"].str.replace(r"\D", "", regex=True).str[:3]
    long.loc[phone, "attribute"] = long.loc[phone, "attribute"] + " (area code)"
    return long


def bubbleup(
    session,
    selection,
    baseline=None,
    *,
    min_leads: int = 5,
    top: int | None = None,
    exclude=(),
) -> pd.DataFrame:
    """Rank every lead field and event attribute by how over-represented it is in
    ``selection`` compared with ``baseline`` (Honeycomb's BubbleUp).

    ``selection`` and ``baseline`` are lead ids, a DataFrame with ``lead_id``, or a
    condition on ``lead_summary`` (``"outcome = 'rejected'"``); the baseline defaults to
    every other lead. Each row gives the attribute and value, how many leads of each
    group have it, their shares, and the odds ratio (with +0.5 smoothing); rows are
    ranked by odds ratio among values held by at least ``min_leads`` selected leads.
    ``exclude`` leaves out attributes (names or prefixes such as ``"event.rejection_reason"``)
    that define the selection itself, so what it has in common shows.

    >>> bubbleup(session, "outcome = 'rejected'").head(3)              # doctest: +SKIP
    """
    sel = _lead_ids(session, selection, "selection")
    if not sel:
        raise ValueError("the selection holds no leads")
    if baseline is None:
        all_ids = session.sql("SELECT lead_id FROM lead_summary").lead_id.tolist()
        chosen = set(sel)
        base = [x for x in all_ids if x not in chosen]
    else:
        base = [x for x in _lead_ids(session, baseline, "baseline") if x not in set(sel)]
    if not base:
        raise ValueError("the baseline holds no leads outside the selection")
    leads = sel + base
    flags = [True] * len(sel) + [False] * len(base)
    long = session.sql(_FEATURES_SQL, {"leads": leads, "flags": flags})
    long = _summarise_pii(long).drop_duplicates(subset=["attribute", "value", "lead_id"])
    excluded = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    if excluded:
        long = long[~long.attribute.str.startswith(excluded)]
    # summarise high-cardinality fields instead of listing each value
    card = long.groupby("attribute").value.nunique()
    wide = card[card > _MAX_VALUES].index
    long = long[~long.attribute.isin(wide)]
    counts = (
        long.groupby(["attribute", "value", "in_selection"]).lead_id.nunique().unstack(fill_value=0)
    )
    for col in (True, False):
        if col not in counts.columns:
            counts[col] = 0
    counts = counts.rename(columns={True: "selection_leads", False: "baseline_leads"}).reset_index()
    ns, nb = len(sel), len(base)
    a, b = counts.selection_leads + 0.5, counts.baseline_leads + 0.5
    counts["selection_share"] = counts.selection_leads / ns
    counts["baseline_share"] = counts.baseline_leads / nb
    counts["odds_ratio"] = (a / (ns - counts.selection_leads + 0.5)) / (
        b / (nb - counts.baseline_leads + 0.5)
    )
    counts["lift"] = counts.selection_share - counts.baseline_share
    ranked = counts[counts.selection_leads >= min(min_leads, ns)]
    ranked = ranked.sort_values(
        ["odds_ratio", "selection_leads"], ascending=[False, False]
    ).reset_index(drop=True)
    ranked = ranked[["attribute", "value", "selection_leads", "selection_share", "baseline_leads",
                     "baseline_share", "odds_ratio", "lift"]]  # fmt: skip
    ranked.attrs.update(
        selection=ns, baseline=nb, title=f"BubbleUp: {ns:,} selected vs {nb:,} baseline leads"
    )
    return ranked.head(top) if top else ranked
