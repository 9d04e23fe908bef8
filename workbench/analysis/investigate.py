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

import re
from dataclasses import dataclass, field, replace

import pandas as pd

from .. import display
from .bubbleup import bubbleup
from .lead import (
    LeadNotFoundError,
    evidence,
    fmt_value,
    metadata_of,
    present,
    read_timeline,
    step_name,
)
from .snapshots import compare_leads, diff_snapshots, diff_snapshots_frame, provenance

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
        ev = self.evidence
        table = (
            display.table(
                ["seq", "time (UTC)", "event", "step", "outcome"],
                [
                    (
                        r.seq,
                        f"{pd.Timestamp(r.timestamp):%Y-%m-%d %H:%M:%S}",
                        r.type,
                        r.step_name,
                        r.outcome,
                    )
                    for r in ev.itertuples()
                ],
                caption="evidence",
            )
            if len(ev)
            else ""
        )
        return display.card(
            self.verdict,
            [("lead", self.lead_id), ("question", self.question)]
            + ([("fix", self.fix)] if self.fix else []),
            status="ok" if self.ok else "bad",
            notes=[f"also: {a}" for a in self.also],
            extra_html=table,
        )


# --------------------------------------------------------------------------- fixes

# reason keywords -> (cause tag, suggested fix); first match wins
_FIXES = [
    ("business hours", "business_hours", "Check the business-hours filter's time zone and hours"),
    (
        "digit",
        "phone_format",
        "Fix the source's phone formatting: send 10-digit numbers, digits only",
    ),
    (
        "phone format",
        "phone_format",
        "Fix the source's phone formatting: send 10-digit numbers, digits only",
    ),
    ("invalid phone", "phone_invalid", "Ask the source to validate phone numbers before posting"),
    (
        "duplicate",
        "duplicate",
        "Ask the source to de-duplicate before posting (and check the duplicate window)",
    ),
    (
        "service area",
        "service_area",
        "Ask the source to target only service-area states, or widen the filter",
    ),
    ("coverage area", "service_area", "Ask the source to target only the buyer's coverage area"),
    ("trustedform", "trustedform", "Require a fresh TrustedForm certificate from the source"),
    ("certificate", "trustedform", "Require a fresh TrustedForm certificate from the source"),
    ("missing", "missing_field", "Ask the source to send the missing field"),
    ("required", "missing_field", "Ask the source to send the missing field"),
    ("score", "quality_score", "Review the quality-score threshold and the enhancement feeding it"),
    ("cap", "volume_cap", "The buyer's volume cap was reached: add buyers or spread the volume"),
    (
        "not buying",
        "segment",
        "The buyer does not take this segment now: adjust the pre-filters for this buyer",
    ),
    (
        "credit",
        "segment",
        "The buyer does not take this segment: adjust the pre-filters for this buyer",
    ),
    (
        "segment",
        "segment",
        "The buyer does not take this segment: adjust the pre-filters for this buyer",
    ),
]


#: What an enhancement answers about the lead's data when it is up: the value did not
#: match or verify. Any other failure (``provider_unavailable``, ``http_503``,
#: ``connection``, a timeout...) and every ``enhancement.error`` is an outage.
DATA_ANSWERS = frozenset(
    {"no_match", "unverifiable", "certificate_not_found", "invalid", "not_found", "mismatch"}
)


def _service_error(row) -> str:
    meta = metadata_of(row)
    return str(
        row.get("error_type")
        or meta.get("error_type")
        or ("error" if row["type"] == "enhancement.error" else "failure")
    )


def _is_outage(row) -> bool:
    """An enhancement error, or a failure that is not an answer about the lead's data."""
    return row["type"] == "enhancement.error" or _service_error(row) not in DATA_ANSWERS


def _service_fix(svc: str, row, then: str = "") -> str:
    """What to do about an enhancement that did not append its data."""
    if _is_outage(row):
        return f"Restore {svc} (check its status, timeouts and circuit breaker)" + (
            f"; {then}" if then else ""
        )
    return (
        f"{svc} answered {_service_error(row)}: it was up, but the lead's data did not "
        "verify. Check the values the source sent (not an outage)"
    )


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
    tl = read_timeline(session, lead_id)
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
    meta = metadata_of(row)
    reason = row.get("rejection_reason") or meta.get("rejection_reason") or "no reason given"
    source = row.get("entity_name") or meta.get("source") or "the source"
    tag, fix = _fix_for(
        reason, "source_validation", f"Show {source} the failed validations and field errors"
    )
    errors = meta.get("field_errors")
    verdict = f"Rejected by source {source}: {reason}"
    return Diagnosis(
        lead_id,
        "rejected",
        verdict,
        fix,
        f"source.rejected:{tag}",
        source,
        evidence(tl, hit | (types == "source.submitted")),
        {
            "reason": reason,
            "source": source,
            "field_errors": errors,
            "failed_validations": meta.get("failed_validations"),
        },
    )


def _filtered(lead_id, tl, types):
    hit = (types == "filter.failed") & (tl.outcome == "failure")
    if not hit.any():
        return None
    row = tl[hit].iloc[0]
    meta = metadata_of(row)
    flt = meta.get("filter") or row.get("entity_name") or "a filter"
    reason = row.get("rejection_reason") or meta.get("rejection_reason") or "no reason given"
    failed_values = meta.get("failed_values") or {}
    dest = meta.get("would_have_destination")
    values = (
        ", ".join(f"{k}={fmt_value(v)}" for k, v in failed_values.items())
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
        fix = _service_fix(svc, err_row, "the filter then sees the data")
        ev = hit | (tl.seq == err_row["seq"])
        return Diagnosis(
            lead_id,
            "missing_data",
            verdict,
            fix,
            f"enhancement:{svc}",
            svc,
            evidence(tl, ev),
            {"filter": flt, "reason": reason, "service": svc},
        )
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
    return Diagnosis(
        lead_id,
        "rejected",
        verdict,
        fix,
        f"filter.failed:{tag}",
        flt,
        evidence(tl, hit),
        {
            "filter": flt,
            "reason": reason,
            "failed_values": failed_values,
            "failed_rules": meta.get("failed_rules"),
            "would_have_destination": dest,
        },
    )


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
        svc = step_name(r)
        recovered = before[(before.type == "enhancement.success") & (before.seq > r["seq"])]
        if any(step_name(x) == svc for _, x in recovered.iterrows()):
            continue
        meta = metadata_of(r)
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
            final = metadata_of(completed.iloc[0]).get("final_outcome")
            verdict = "No buyer was tried: the lead completed without reaching a recipient step"
            if final:
                verdict += f" (final outcome: {final})"
            return Diagnosis(
                lead_id,
                "not_delivered",
                verdict,
                "Check the routing: which filters and recipient rules apply to this lead",
                "no_recipient",
                None,
                evidence(tl, types == "flow.completed"),
                {"final_outcome": final},
            )
        return None  # still in progress; other checks may say more
    errors = tl[types == "recipient.error"]
    rejects = tl[types == "recipient.failed"]
    if len(rejects):
        row = rejects.iloc[-1]
        meta = metadata_of(row)
        buyer = row.get("entity_name") or meta.get("recipient") or "the buyer"
        reason = row.get("rejection_reason") or meta.get("rejection_reason") or "no reason given"
        root = _root_of_buyer_rejection(lead_id, tl, row, buyer, reason)
        if root is not None:
            return root
        tag, fix = _fix_for(
            reason,
            "buyer_rejected",
            f"Review {buyer}'s rejection reasons and adjust the pre-filters for {buyer}",
        )
        verdict = f"{buyer} rejected the lead (business logic): {reason}"
        if len(errors):
            verdict += f"; {len(errors)} technical error(s) with other attempts"
        return Diagnosis(
            lead_id,
            "not_delivered",
            verdict,
            fix,
            f"recipient.failed:{tag}",
            buyer,
            evidence(tl, rec),
            {"buyer": buyer, "reason": reason, "kind": "business"},
        )
    row = errors.iloc[-1]
    meta = metadata_of(row)
    buyer = row.get("entity_name") or meta.get("recipient") or "the buyer"
    err = row.get("error_type") or meta.get("error_type") or "error"
    status = row.get("http_status")
    retries = meta.get("retry_attempts")
    bits = [str(err)]
    if present(status):
        bits.append(f"HTTP {int(status)}")
    if retries:
        bits.append(f"after {retries} retr{'y' if retries == 1 else 'ies'}")
    verdict = f"Delivery to {buyer} failed technically: {', '.join(bits)}"
    fix = f"Check {buyer}'s endpoint health and timeouts; re-send once it recovers"
    return Diagnosis(
        lead_id,
        "not_delivered",
        verdict,
        fix,
        f"recipient.error:{err}",
        buyer,
        evidence(tl, rec | (types == "retry.attempted")),
        {"buyer": buyer, "error_type": err, "http_status": status, "kind": "technical"},
    )


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
        return Diagnosis(
            lead_id,
            "data_wrong",
            verdict,
            f"Check the field mapping of {first.step_name} for {first.field}",
            f"mapping:{first.field}",
            first.step_name,
            evidence(tl, tl.seq.isin([*odd.seq, row["seq"]])),
            {"buyer": buyer, "reason": reason, "field": first.field},
        )
    for svc, bad in _unrecovered_enhancements(tl[tl.seq < row["seq"]]):
        svc_words = set(re.findall(r"[a-z]+", svc.lower())) - {
            "validation",
            "verification",
            "check",
        }
        if svc_words & words:
            err = _service_error(bad)
            verdict = (
                f"{buyer} rejected the lead ({reason}) because {svc} failed earlier ({err}) "
                "and its data never reached the buyer"
            )
            return Diagnosis(
                lead_id,
                "missing_data",
                verdict,
                _service_fix(svc, bad, f"{buyer} then gets verified data"),
                f"enhancement:{svc}",
                svc,
                evidence(tl, tl.seq.isin([bad["seq"], row["seq"]])),
                {"buyer": buyer, "reason": reason, "service": svc},
            )
    return None


def _unrecovered_enhancements(tl):
    """(service, event) for each enhancement failure or error not followed by a success."""
    out = []
    for _, r in tl[tl.type.isin(["enhancement.failure", "enhancement.error"])].iterrows():
        svc = step_name(r)
        later = tl[(tl.type == "enhancement.success") & (tl.seq > r["seq"])]
        if not any(step_name(x) == svc for _, x in later.iterrows()):
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
    meta = metadata_of(r)
    err = _service_error(r)
    kind = (
        "timed out"
        if "timeout" in str(err)
        else (
            "errored"
            if r["type"] == "enhancement.error"
            else ("failed" if _is_outage(r) else "answered")
        )
    )
    missing = meta.get("fields_expected") or []
    verdict = f"{svc} {kind} ({err})"
    status = r.get("http_status")
    if present(status) and int(status) >= 400:
        verdict += f", HTTP {int(status)}"
    breaker = meta.get("circuit_breaker")
    if breaker and str(breaker).lower() not in ("closed", "none"):
        verdict += f", circuit breaker {breaker}"
    verdict += "; its fields were not appended" + (
        f" ({', '.join(map(str, missing))})" if missing else ""
    )
    fix = (
        f"{svc} is down or slow: check the service's status and timeouts"
        if r["type"] == "enhancement.error"
        else _service_fix(svc, r)
    )
    return Diagnosis(
        lead_id,
        "missing_data",
        verdict,
        fix,
        f"enhancement:{svc}",
        svc,
        evidence(tl, tl.seq.isin([x[1]["seq"] for x in services]) | (types == "retry.attempted")),
        {"service": svc, "error_type": err, "missing_fields": missing},
    )


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
    return Diagnosis(
        lead_id,
        "data_wrong",
        verdict,
        fix,
        f"mapping:{first.field}",
        first.step_name,
        evidence(tl, tl.seq.isin(suspicious.seq)),
        {"changes": suspicious.drop(columns=["unexpected"]).to_dict("records")},
    )


# return reason keywords -> (cause tag, suggested fix); first match wins
_RETURN_FIXES = [
    (
        "request",
        "consent",
        "Check the source's consent capture (TrustedForm certificate, opt-in wording): "
        "the consumer did not ask to be contacted",
    ),
    ("consent", "consent", "Check the source's consent capture (TrustedForm, opt-in wording)"),
    (
        "duplicate",
        "duplicate",
        "Ask the source to de-duplicate before posting (and check the duplicate window)",
    ),
    (
        "number",
        "contact_quality",
        "Validate contact data before delivery (Phone Validation, Email Verification) "
        "and review the source's contact quality",
    ),
    (
        "contact",
        "contact_quality",
        "Validate contact data before delivery (Phone Validation, Email Verification) "
        "and review the source's contact quality",
    ),
]


def _returned(lead_id, tl, types):
    """A lead the buyer returned (feedback days later): delivered, then reversed."""
    fb = tl[types == "feedback.received"]
    rows = [
        r
        for _, r in fb.iterrows()
        if (r.get("feedback_type") or metadata_of(r).get("feedback_type")) == "return"
    ]
    if not rows:
        return None
    row = rows[-1]
    meta = metadata_of(row)
    buyer = meta.get("recipient") or row.get("entity_name") or "the buyer"
    reason = meta.get("reason") or meta.get("status") or "no reason given"
    adjustment = meta.get("revenue_adjustment")
    delivered = tl[(types == "recipient.delivered") & (tl.outcome == "success")]
    gap = ""
    if len(delivered):
        days = (row.timestamp - delivered.iloc[-1].timestamp).total_seconds() / 86400
        gap = (
            f" {days:.1f} days after delivery"
            if days >= 1
            else f" {days * 24:.1f} h after delivery"
        )
    verdict = f"{buyer} returned the lead{gap}: {reason}"
    reversed_ = None
    if isinstance(adjustment, int | float) and not isinstance(adjustment, bool) and adjustment:
        reversed_ = -float(adjustment)
        verdict += f"; ${abs(float(adjustment)):,.2f} of revenue reversed"
    text = str(reason).lower()
    tag, fix = next(
        ((t, f) for w, t, f in _RETURN_FIXES if w in text),
        ("return", f"Review {buyer}'s returns with the source that sent the lead"),
    )
    if tag == "contact_quality":
        for svc, bad in _unrecovered_enhancements(tl):
            if any(w in svc.lower() for w in ("phone", "email")):
                verdict += (
                    f"; {svc} {'was down' if _is_outage(bad) else 'did not verify it'} "
                    f"({_service_error(bad)}) before delivery"
                )
                break
    verdict += _on_the_way(tl, types)
    return Diagnosis(
        lead_id,
        "data_wrong",
        verdict,
        fix,
        f"returned:{tag}",
        buyer,
        evidence(tl, (types == "feedback.received") | (types == "recipient.delivered")),
        {
            "buyer": buyer,
            "reason": reason,
            "revenue_reversed": reversed_,
            "kind": "return",
        },
    )


def _on_the_way(tl, types) -> str:
    """What went wrong on the way to a lead's end (errors, buyers that refused it,
    retries), as a tail for a verdict, or ""."""
    trouble = []
    for _, r in tl[tl.outcome == "error"].iterrows():
        err = r.get("error_type")
        trouble.append(f"{step_name(r)} errored ({err if present(err) else 'error'})")
    for _, r in tl[types == "recipient.failed"].iterrows():
        trouble.append(f"{step_name(r)} rejected it ({r.get('rejection_reason') or 'no reason'})")
    retries = tl[types == "retry.attempted"]
    if len(retries):
        trouble.append(f"{len(retries)} retr{'y' if len(retries) == 1 else 'ies'}")
    return "; on the way: " + ", ".join(dict.fromkeys(trouble)) if trouble else ""


def _went_fine(lead_id, tl, types):
    delivered = tl[(types == "recipient.delivered") & (tl.outcome == "success")]
    total = tl[types == "flow.completed"]
    parts = []
    if len(delivered):
        r = delivered.iloc[-1]
        buyer = r.get("entity_name") or metadata_of(r).get("recipient") or "a buyer"
        rev = r.get("revenue")
        parts.append(
            f"delivered to {buyer}"
            + (f" for ${rev:,.2f}" if rev is not None and not pd.isna(rev) else "")
        )
    if len(total):
        parts.append(f"flow completed in {int(total.iloc[0].duration_ms or 0):,} ms")
    fb = tl[types == "feedback.received"]
    if len(fb):
        ft = metadata_of(fb.iloc[-1]).get("feedback_type") or "feedback"
        gap = (fb.iloc[-1].timestamp - tl.timestamp.iloc[0]).total_seconds() / 3600
        parts.append(f"{ft} reported {gap:.1f} h later")
    if not parts:
        verdict = "Nothing went wrong so far: the lead is still in progress (no buyer step yet)"
    else:
        verdict = "The lead went fine: " + ", ".join(parts)
    verdict += _on_the_way(tl, types)
    return Diagnosis(
        lead_id,
        "ok",
        verdict,
        "",
        "ok",
        None,
        evidence(tl, types.isin(["recipient.delivered", "flow.completed", "feedback.received"])),
    )


_CHECKS = (_source_rejected, _filtered, _buyer_outcome, _data_wrong, _returned, _missing_data)
