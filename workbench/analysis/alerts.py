"""The guide's monitoring rules and automated responses, over sliding windows.

A :class:`Rule` is data: a metric, what to group by, a window, a threshold and the
responses the guide recommends. ``evaluate`` slides each rule's window over the events
(default: every 15 minutes) and returns the windows where it fired; ``alerts`` merges
consecutive firing windows into :class:`Alert` episodes with their recommended actions
and the evidence behind them (top rejection reasons, example leads, the slow step).

Counts are grouped by 15-minute buckets in SQL and rolled into windows here, so a week
of events is one query per rule.

>>> fired = alerts(session, since="2026-11-20", until="2026-11-27")    # doctest: +SKIP
>>> print(fired[0])                                                    # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import pandas as pd

from .. import display
from ..timeutil import as_utc as _as_utc
from . import portable as _portable
from .investigate import DATA_ANSWERS

__all__ = [
    "Rule",
    "Alert",
    "AlertList",
    "DEFAULT_RULES",
    "SEVERITIES",
    "evaluate",
    "alerts",
    "check_latest",
    "evidence",
    "evidence_filters",
    "shown",
]

BUCKET = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class Rule:
    """One monitoring rule: fire when ``metric`` of a ``group_by`` subject over
    ``window`` is ``op`` ``threshold`` with at least ``min_count`` in the denominator."""

    name: str
    description: str
    metric: str
    op: str
    threshold: float
    window: dt.timedelta
    group_by: str | None = None
    min_count: int = 20
    team: str = "operations"
    include: str = ""
    actions: tuple[str, ...] = ()

    @property
    def is_rate(self) -> bool:
        """Whether the metric is a share (shown as a percentage) rather than milliseconds."""
        return self.metric != "avg_duration_ms"

    def fires(self, value: float) -> bool:
        return value > self.threshold if self.op == ">" else value < self.threshold

    def with_(self, **changes) -> Rule:
        """A copy with some settings changed, e.g. ``rule.with_(threshold=0.4)``."""
        return replace(self, **changes)


#: The guide's Event-Driven Workflows section as rules, and one it does not name: an
#: enhancement provider that is down (calls answer with failures) slows nothing and
#: rejects nothing at first, so only its own failure rate shows it.
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        name="quality",
        description="Rejection rate > 30% in the last hour",
        metric="rejection_rate",
        op=">",
        threshold=0.30,
        window=dt.timedelta(hours=1),
        min_count=30,
        team="operations",
        include="top rejection reasons",
        actions=("Alert the operations team", "Look at the top rejection reasons below"),
    ),
    Rule(
        name="performance",
        description="Average duration > 2000 ms for a step",
        metric="avg_duration_ms",
        op=">",
        threshold=2000,
        window=dt.timedelta(hours=1),
        group_by="step_name",
        min_count=20,
        team="technical",
        include="affected step details",
        actions=("Alert the technical team", "Check {subject}: latency, timeouts, errors"),
    ),
    Rule(
        name="source_management",
        description="Source rejection rate > 50%",
        metric="source_rejection_rate",
        op=">",
        threshold=0.50,
        window=dt.timedelta(hours=3),
        group_by="source",
        min_count=30,
        team="source management",
        include="example rejected leads",
        actions=(
            "Reduce {subject}'s volume cap",
            "Notify {subject} of the issues",
            "Send {subject} the example leads and reasons below",
        ),
    ),
    Rule(
        name="enhancement_health",
        description="Enhancement failure rate > 25% for a service",
        metric="enhancement_failure_rate",
        op=">",
        threshold=0.25,
        window=dt.timedelta(hours=1),
        group_by="step_name",
        min_count=20,
        team="technical",
        include="affected step details",
        actions=(
            "Alert the technical team",
            "Check {subject}'s provider status, timeouts and circuit breaker",
            "Leads enhanced meanwhile lack {subject}'s fields: consider re-running them",
        ),
    ),
    Rule(
        name="buyer_optimization",
        description="Buyer acceptance < 70%",
        metric="acceptance_rate",
        op="<",
        threshold=0.70,
        window=dt.timedelta(hours=3),
        group_by="recipient",
        min_count=30,
        team="buyer management",
        include="rejection reasons",
        actions=(
            "Review {subject}'s rejection reasons",
            "Adjust the pre-filters for {subject}",
            "Update the field mappings for {subject}",
        ),
    ),
)

# a provider's answer about the lead's data (no match) is no failure of the provider
_DATA_ANSWERS_SQL = ", ".join(f"'{a}'" for a in sorted(DATA_ANSWERS))

# Per 15-minute bucket: numerator and denominator of each metric, per subject.
_BUCKETS = """
SELECT epoch_bucket(e.timestamp, 900000) AS bucket,
       {subject} AS subject,
       {num} AS num,
       {den} AS den
FROM events e {join}
WHERE e.timestamp >= $since AND e.timestamp < $until {where}
GROUP BY 1, 2
"""

_METRICS = {
    # leads rejected at the source or by a filter, over leads submitted
    "rejection_rate": dict(
        num="COUNT(CASE WHEN e.type IN ('source.rejected', 'filter.failed') AND e.outcome = 'failure' THEN 1 END)",
        den="COUNT(CASE WHEN e.type = 'source.submitted' THEN 1 END)",
        where="AND e.type IN ('source.submitted', 'source.rejected', 'filter.failed')",
    ),
    # a step's own calls: a retry event's duration is the wait before the retry (its
    # backoff), not a call of the step, so it is left out
    "avg_duration_ms": dict(
        num="SUM(e.duration_ms)",
        den="COUNT(e.duration_ms)",
        where="AND e.type NOT IN ('flow.completed', 'feedback.received', 'feedback.processed', "
        "'retry.attempted')",
    ),
    # an enhancement's calls that failed or erred (provider down, timeouts), over its
    # calls that ran (skipped calls are not calls; "no match" is an answer, not a failure)
    "enhancement_failure_rate": dict(
        num="COUNT(CASE WHEN e.outcome = 'error' OR (e.outcome = 'failure' AND "
        f"COALESCE(e.error_type, '') NOT IN ({_DATA_ANSWERS_SQL})) THEN 1 END)",
        den="COUNT(*)",
        where="AND e.type IN ('enhancement.success', 'enhancement.failure', 'enhancement.error') "
        "AND e.outcome <> 'skipped'",
    ),
    # rejected by the source's own validation: what the source can fix (a filter set up
    # wrongly on our side is not the source's fault and shows in the quality rule)
    "source_rejection_rate": dict(
        num="COUNT(CASE WHEN e.type = 'source.rejected' THEN 1 END)",
        den="COUNT(CASE WHEN e.type = 'source.submitted' THEN 1 END)",
        where="AND e.type IN ('source.submitted', 'source.rejected')",
        join="LEFT JOIN lead_summary s ON s.lead_id = e.lead_id",
        subject="coalesce(s.source, 'unknown')",
    ),
    "acceptance_rate": dict(
        num="COUNT(CASE WHEN e.type = 'recipient.delivered' AND e.outcome = 'success' THEN 1 END)",
        den="COUNT(CASE WHEN e.type IN ('recipient.delivered', 'recipient.failed') THEN 1 END)",
        where="AND e.type IN ('recipient.delivered', 'recipient.failed')",
    ),
}

_SUBJECTS = {
    None: "'all leads'",
    "step_name": "e.step_name",
    "recipient": "e.entity_name",
    "source": "coalesce(s.source, 'unknown')",
}


def _bucket_sql(rule: Rule) -> str:
    m = _METRICS.get(rule.metric)
    if m is None:
        raise ValueError(
            f"rule {rule.name!r}: unknown metric {rule.metric!r}; known: {', '.join(_METRICS)}"
        )
    if rule.group_by not in _SUBJECTS:
        raise ValueError(
            f"rule {rule.name!r}: cannot group by {rule.group_by!r}; use {list(_SUBJECTS)}"
        )
    join = m.get("join", "")
    subject = m.get("subject") or _SUBJECTS[rule.group_by]
    if rule.group_by == "source" and not join:
        join = "LEFT JOIN lead_summary s ON s.lead_id = e.lead_id"
    return _BUCKETS.format(subject=subject, num=m["num"], den=m["den"], join=join, where=m["where"])


def _utc(value, what: str) -> dt.datetime | None:
    return None if value is None else _as_utc(value, what)


def _range(session, since, until) -> tuple[dt.datetime, dt.datetime]:
    since, until = _utc(since, "since"), _utc(until, "until")
    if since is None or until is None:
        b = session.sql("SELECT min(timestamp) AS lo, max(timestamp) AS hi FROM events")
        if pd.isna(b.lo.iloc[0]):
            now = dt.datetime.now(dt.UTC)
            return now, now
        since = since or b.lo.iloc[0].to_pydatetime()
        until = until or (b.hi.iloc[0].to_pydatetime() + dt.timedelta(milliseconds=1))
    return since, until


def evaluate(
    session, rules=DEFAULT_RULES, *, since=None, until=None, step: dt.timedelta = BUCKET
) -> pd.DataFrame:
    """Every window (sliding by ``step``) in which a rule fired.

    Columns: rule, subject, window_start, window_end, value, threshold, count (the
    metric's denominator), team. Empty when nothing fired.
    """
    if step % BUCKET:
        raise ValueError(f"step must be a multiple of {BUCKET}")
    since, until = _range(session, since, until)
    out = []
    for rule in rules:
        sql = _portable.render(_bucket_sql(rule), _portable.dialect_of(session))
        raw = session.sql(sql, {"since": since, "until": until})
        if raw.empty:
            continue
        raw["bucket"] = pd.to_datetime(raw.bucket.astype("int64") * 900_000, unit="ms", utc=True)
        n = int(rule.window / BUCKET)
        grid = pd.date_range(
            pd.Timestamp(since).floor("15min"),
            pd.Timestamp(until).ceil("15min"),
            freq="15min",
            tz="UTC",
        )
        for subject, part in raw.groupby("subject"):
            series = (
                part.set_index("bucket")[["num", "den"]].astype(float).reindex(grid, fill_value=0.0)
            )
            rolled = series.rolling(n, min_periods=n).sum()
            rolled = rolled.iloc[:: int(step / BUCKET)]
            rolled = rolled[rolled.den >= rule.min_count]
            value = rolled.num / rolled.den
            hit = value[[rule.fires(v) for v in value]]
            for end, v in hit.items():
                start = end - rule.window + BUCKET
                if start < pd.Timestamp(since):
                    continue
                out.append(
                    {
                        "rule": rule.name,
                        "subject": subject,
                        "window_start": start,
                        "window_end": end + BUCKET,
                        "value": v,
                        "threshold": rule.threshold,
                        "count": int(rolled.den[end]),
                        "team": rule.team,
                    }
                )
    df = pd.DataFrame(
        out,
        columns=[
            "rule",
            "subject",
            "window_start",
            "window_end",
            "value",
            "threshold",
            "count",
            "team",
        ],
    )
    df.attrs.update(title="Alert windows", since=since, until=until)
    return df.sort_values(["window_start", "rule", "subject"]).reset_index(drop=True)


#: Severities, worst first: how far past its threshold an alert peaked.
SEVERITIES = ("critical", "high", "warning")


def _possessive(action: str, subject: str) -> str:
    """An action with its subject filled in; "Evergreen Life Quotes'", not "…Quotes's"."""
    if str(subject).endswith("s"):
        action = action.replace("{subject}'s", "{subject}'")
    return action.format(subject=subject)


def shown(rule: Rule, value: float) -> str:
    """A metric value as people read it: ``41%`` for shares, ``2,067 ms`` for durations."""
    return f"{value:.0%}" if rule.is_rate else f"{value:,.0f} ms"


@dataclass(frozen=True, eq=False)
class Alert:
    """A rule firing for a subject over one stretch of time, with what to do about it."""

    rule: Rule
    subject: str
    started: pd.Timestamp
    ended: pd.Timestamp
    peak: float
    windows: int
    actions: tuple[str, ...]
    evidence: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def __repr__(self) -> str:
        return (
            f"Alert(rule={self.rule.name!r}, subject={self.subject!r}, started={self.started}, "
            f"ended={self.ended}, peak={self.peak:.3g})"
        )

    @property
    def severity(self) -> str:
        """``critical`` when the peak is at least half the threshold beyond it (a 30%
        rule peaking at 45% or more; a 70% rule sinking to 35% or less), ``high`` at a
        fifth beyond it, else ``warning``."""
        t = self.rule.threshold
        if t == 0:
            return "critical"
        beyond = self.peak / t - 1 if self.rule.op == ">" else 1 - self.peak / t
        return "critical" if beyond >= 0.5 else "high" if beyond >= 0.2 else "warning"

    @property
    def message(self) -> str:
        what = (
            self.rule.description.replace("a step", self.subject)
            .replace("Source", self.subject)
            .replace("Buyer", self.subject)
        )
        return (
            f"[{self.rule.team}] {what}: peaked at {shown(self.rule, self.peak)} between "
            f"{self.started:%Y-%m-%d %H:%M} and {self.ended:%Y-%m-%d %H:%M} UTC"
        )

    def _repr_html_(self) -> str:
        ev = self.evidence.head(5)
        table = (
            display.table(
                [str(c).replace("_", " ") for c in ev.columns],
                ev.itertuples(index=False),
                caption=f"evidence: {self.rule.include}",
            )
            if len(ev)
            else ""
        )
        status = {"critical": "bad", "high": "warn"}.get(self.severity, "info")
        return display.card(
            f"{self.severity.upper()} · {self.rule.description.replace('a step', self.subject)}",
            [
                ("subject", self.subject),
                ("when", f"{self.started:%Y-%m-%d %H:%M} to {self.ended:%Y-%m-%d %H:%M} UTC"),
                (
                    "peak",
                    f"{shown(self.rule, self.peak)} (threshold {shown(self.rule, self.rule.threshold)})",
                ),
                ("team", self.rule.team),
            ],
            status=status,
            notes=[f"→ {a}" for a in self.actions],
            extra_html=table,
        )

    def __str__(self) -> str:
        lines = [self.message, *(f"  -> {a}" for a in self.actions)]
        if len(self.evidence):
            lines.append(f"  evidence ({self.rule.include}):")
            lines += [
                "    " + line for line in self.evidence.head(5).to_string(index=False).splitlines()
            ]
        return "\n".join(lines)


class AlertList(list):
    """A list of :class:`Alert` that shows as a table in a notebook and as one message
    per alert in a terminal."""

    def __str__(self) -> str:
        return "\n\n".join(str(a) for a in self) if self else "no alert fired"

    def _repr_html_(self) -> str:
        if not self:
            return display.card("No alert fired", status="ok")
        rows = [
            (
                a.severity,
                a.rule.name.replace("_", " "),
                a.subject,
                f"{a.started:%Y-%m-%d %H:%M}",
                f"{a.ended:%Y-%m-%d %H:%M}",
                shown(a.rule, a.peak),
                shown(a.rule, a.rule.threshold),
                a.actions[0] if a.actions else "",
            )
            for a in self
        ]
        worst = min(SEVERITIES.index(a.severity) for a in self)
        return display.card(
            f"{len(self)} alert{'s' * (len(self) != 1)} fired",
            status=["bad", "warn", "info"][worst],
            extra_html=display.table(
                [
                    "severity",
                    "rule",
                    "subject",
                    "from (UTC)",
                    "to",
                    "peak",
                    "threshold",
                    "first action",
                ],
                rows,
            ),
        )


def alerts(
    session, rules=DEFAULT_RULES, *, since=None, until=None, evidence: bool = True
) -> AlertList:
    """Alert episodes: consecutive firing windows of a rule and subject merged, with
    the guide's automated responses as recommended actions and their evidence."""
    windows = evaluate(session, rules, since=since, until=until)
    by_name = {r.name: r for r in rules}
    out: list[Alert] = []
    for (name, subject), part in windows.groupby(["rule", "subject"], sort=False):
        rule = by_name[name]
        part = part.sort_values("window_start")
        # windows that overlap or touch belong to one episode
        episode = (
            part.window_start > part.window_end.shift().fillna(part.window_start.iloc[0])
        ).cumsum()
        for _, ep in part.groupby(episode):
            start, end = ep.window_start.min(), ep.window_end.max()
            peak = ep.value.max() if rule.op == ">" else ep.value.min()
            ev = _evidence(session, rule, subject, start, end) if evidence else pd.DataFrame()
            actions = tuple(_possessive(a, subject) for a in rule.actions)
            out.append(Alert(rule, str(subject), start, end, float(peak), len(ep), actions, ev))
    return AlertList(sorted(out, key=lambda a: (a.started, a.rule.name, a.subject)))


def check_latest(session, rules=DEFAULT_RULES, *, now=None) -> AlertList:
    """Real-time check: the rules over the window ending ``now`` (default: the latest event)."""
    if now is None:
        hi = session.sql("SELECT max(timestamp) AS hi FROM events").hi.iloc[0]
        if pd.isna(hi):
            return AlertList()
        now = hi.to_pydatetime() + dt.timedelta(milliseconds=1)
    now = _utc(now, "now")
    longest = max(r.window for r in rules)
    end = pd.Timestamp(now).ceil("15min")
    fired = alerts(session, rules, since=end - longest, until=end)
    return AlertList(a for a in fired if a.ended >= end)


def evidence_filters(alert: Alert) -> dict:
    """The events behind ``alert`` as explorer filters (``analysis.explore.filters``):
    its time span, and the events its rule counts for its subject.

    >>> filters = evidence_filters(fired[0])                            # doctest: +SKIP
    >>> EventExplorer(session, **filters)                               # doctest: +SKIP
    """
    by_metric = {
        "rejection_rate": dict(types=("source.rejected", "filter.failed"), outcomes=("failure",)),
        "avg_duration_ms": {},
        "enhancement_failure_rate": dict(
            types=("enhancement.failure", "enhancement.error"), outcomes=("failure", "error")
        ),
        "source_rejection_rate": dict(types=("source.rejected",)),
        "acceptance_rate": dict(types=("recipient.failed",)),
    }
    out = dict(by_metric.get(alert.rule.metric, {}))
    group = "source" if alert.rule.metric == "source_rejection_rate" else alert.rule.group_by
    by_subject = {"step_name": "steps", "recipient": "entities", "source": "sources"}
    if group in by_subject:
        out[by_subject[group]] = (alert.subject,)
    return {"since": alert.started.to_pydatetime(), "until": alert.ended.to_pydatetime(), **out}


_EVIDENCE = {
    "rejection_rate": """
SELECT e.type AS stage, coalesce(e.rejection_reason, 'unknown') AS rejection_reason, COUNT(*) AS rejections
FROM events e
WHERE e.timestamp >= $since AND e.timestamp < $until
  AND e.type IN ('source.rejected', 'filter.failed') AND e.outcome = 'failure'
GROUP BY 1, 2 ORDER BY rejections DESC, 1, 2 LIMIT 5
""",
    "source_rejection_rate": """
SELECT min(e.lead_id) AS example_lead, coalesce(e.rejection_reason, 'unknown') AS rejection_reason,
       COUNT(*) AS rejections
FROM events e
WHERE e.timestamp >= $since AND e.timestamp < $until AND e.entity_name = $subject
  AND e.type = 'source.rejected'
GROUP BY 2 ORDER BY rejections DESC, 2 LIMIT 5
""",
    "enhancement_failure_rate": """
SELECT e.type, coalesce(e.error_type, e.outcome) AS error_type, COUNT(*) AS calls,
       min(e.lead_id) AS example_lead, AVG(e.duration_ms) AS avg_ms
FROM events e
WHERE e.timestamp >= $since AND e.timestamp < $until AND e.step_name = $subject
  AND e.type IN ('enhancement.success', 'enhancement.failure', 'enhancement.error')
GROUP BY 1, 2 ORDER BY calls DESC, 1, 2 LIMIT 8
""",
    "avg_duration_ms": """
SELECT e.type, COUNT(*) AS executions, AVG(e.duration_ms) AS avg_ms, MAX(e.duration_ms) AS max_ms,
       COUNT(CASE WHEN e.outcome = 'error' THEN 1 END) AS errors,
       COUNT(CASE WHEN e.error_type = 'timeout' THEN 1 END) AS timeouts
FROM events e
WHERE e.timestamp >= $since AND e.timestamp < $until AND e.step_name = $subject
  AND e.type <> 'retry.attempted'
GROUP BY 1 ORDER BY executions DESC, 1
""",
    "acceptance_rate": """
SELECT coalesce(e.rejection_reason, 'unknown') AS rejection_reason, COUNT(*) AS rejections,
       min(e.lead_id) AS example_lead
FROM events e
WHERE e.timestamp >= $since AND e.timestamp < $until AND e.entity_name = $subject
  AND e.type = 'recipient.failed'
GROUP BY 1 ORDER BY rejections DESC, 1 LIMIT 5
""",
}


def evidence(session, alert: Alert) -> pd.DataFrame:
    """What ``alert``'s rule includes (top rejection reasons, the slow step's details,
    example leads) over the alert's span, read now."""
    return _evidence(session, alert.rule, alert.subject, alert.started, alert.ended)


def _evidence(session, rule: Rule, subject, start, end) -> pd.DataFrame:
    sql = _EVIDENCE.get(rule.metric)
    if sql is None:
        return pd.DataFrame()
    params = {"since": start.to_pydatetime(), "until": end.to_pydatetime()}
    if "$subject" in sql:
        params["subject"] = subject
    return session.sql(sql, params)
