"""Exploring events the way Kibana's Discover does: filters, the value counts under
them (facets), events over time, and one page of matching events at a time.

Everything here is a query over a reader's ``events`` and ``lead_summary`` (a Session:
masked, audited), with every value a person chose bound as a parameter. The widgets
(``widgets.EventExplorer``) only call these functions.

>>> f = Filters(types=("recipient.*",), outcomes=("failure",))
>>> where, params = where_sql(f)
>>> where
'(starts_with(e.type, ?)) AND (e.outcome = ?)'
>>> params
['recipient.', 'failure']
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from ..catalog import field_type
from ..timeutil import as_utc

__all__ = [
    "Filters",
    "FACETS",
    "TYPED_FIELDS",
    "where_sql",
    "total",
    "page",
    "facets",
    "histogram",
    "lead_ids",
    "resolve_fields",
    "PAGE_SIZE",
]

#: Rows a page holds.
PAGE_SIZE = 50
#: The facets an explorer shows: filter name -> the column it counts.
FACETS = {
    "types": "e.type",
    "outcomes": "e.outcome",
    "sources": "s.source",
    "entities": "e.entity_name",
    "steps": "e.step_name",
}
#: Columns ``field = value`` may name directly (typed, indexed by the store); any other
#: name is read from the lead snapshot.
TYPED_FIELDS = frozenset(
    {
        "event_id",
        "lead_id",
        "flow_id",
        "entity_id",
        "step_id",
        "step_name",
        "entity_name",
        "rejection_reason",
        "error_type",
        "http_status",
        "feedback_type",
        "retry_count",
    }
)
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,80}$")


@dataclass(frozen=True)
class Filters:
    """What an explorer shows: every filter given must hold (values of one filter are
    alternatives). ``types`` may hold groups like ``"recipient.*"``; ``where`` holds
    ``(field, value)`` pairs on typed columns or lead snapshot fields."""

    since: object = None
    until: object = None
    types: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    leads: tuple[str, ...] = ()
    where: tuple[tuple[str, str], ...] = ()

    def replace(self, **changes) -> Filters:
        """A copy with ``changes``, each checked (see :func:`filters`)."""
        return filters(self, **changes)

    def describe(self, mask=None) -> str:
        """The filters in a line of words, for a title or a caption; ``mask(field,
        value)``, when given, says how a ``field = value`` filter's value is shown."""
        parts = []
        if self.since is not None or self.until is not None:
            lo = "" if self.since is None else f"{as_utc(self.since, 'since'):%Y-%m-%d %H:%M}"
            hi = "" if self.until is None else f"{as_utc(self.until, 'until'):%Y-%m-%d %H:%M}"
            parts.append(f"{lo}..{hi} UTC")
        for name in ("types", "outcomes", "sources", "entities", "steps"):
            values = getattr(self, name)
            if values:
                parts.append(f"{name}: {', '.join(values)}")
        if self.leads:
            parts.append(f"{len(self.leads):,} chosen leads")
        parts += [f"{k} = {v if mask is None else mask(k, v)}" for k, v in self.where]
        return "; ".join(parts) or "all events"


def _tuple(name: str, value) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable):
        out = tuple(value)
        if not all(isinstance(v, str) for v in out):
            raise ValueError(f"{name}: give text values, e.g. {name}=['{name[:-1]}']")
        return out
    raise ValueError(f"{name}={value!r}: give a text value or a list of them")


def filters(base: Filters | None = None, **changes) -> Filters:
    """``base`` (default: no filter) with ``changes``: each checked, with an error that
    names the filter and what it takes.

    >>> filters(types="recipient.*", where={"state": "TX"}).where
    (('state', 'TX'),)
    """
    base = base or Filters()
    known = {f.name for f in dataclasses.fields(Filters)}
    unknown = set(changes) - known
    if unknown:
        raise ValueError(
            f"unknown filter(s) {', '.join(sorted(unknown))}; filters: {', '.join(sorted(known))}"
        )
    out = {}
    for name, value in changes.items():
        if name in ("since", "until"):
            out[name] = None if value is None else as_utc(value, name)
        elif name == "where":
            pairs = value.items() if isinstance(value, dict) else (value or ())
            checked = []
            for pair in pairs:
                field, val = pair
                if not isinstance(field, str) or not _FIELD_NAME.match(field):
                    raise ValueError(
                        f"where: {field!r} is not a field name (letters, digits, _ . -)"
                    )
                checked.append((field, str(val)))
            out[name] = tuple(checked)
        else:
            out[name] = _tuple(name, value)
    return dataclasses.replace(base, **out)


def resolve_fields(session, f: Filters, cache: dict | None = None) -> dict:
    """For each ``field = value`` filter on a lead field (not a typed column), the leads
    whose submitted data holds it, found once (``Session.leads_where``, or
    ``find_leads`` for a personal field such as an email) instead of reading every
    event's snapshot through masking; ``cache`` keeps them between calls. A reader
    without those methods (a raw store) gets {} and filters in SQL."""
    out = {}
    for field, value in f.where:
        if field in TYPED_FIELDS:
            continue
        key = (field, value)
        if cache is not None and key in cache:
            out[key] = cache[key]
            continue
        if not hasattr(session, "leads_where"):
            return {}
        if field_type(field).pii:
            leads = session.find_leads(**{field: value})
        else:
            leads = session.leads_where(field, value)
        out[key] = tuple(leads)
        if cache is not None:
            cache[key] = out[key]
    return out


def where_sql(
    f: Filters, *, skip: str | None = None, resolved: dict | None = None
) -> tuple[str, list]:
    """The filters as a WHERE condition over ``events e`` (joined to ``lead_summary s``
    when a source filter is set) and its parameters; ``skip`` leaves one filter out;
    ``resolved`` (from :func:`resolve_fields`) turns lead-field filters into leads."""
    conds, params = [], []

    def one_of(column: str, values: tuple[str, ...], prefix_groups: bool = False):
        ors = []
        for v in values:
            if prefix_groups and v.endswith(".*"):
                ors.append(f"starts_with({column}, ?)")
                params.append(v[:-1])
            else:
                ors.append(f"{column} = ?")
                params.append(v)
        conds.append("(" + " OR ".join(ors) + ")")

    if f.since is not None and skip != "since":
        conds.append("e.timestamp >= ?")
        params.append(as_utc(f.since, "since"))
    if f.until is not None and skip != "until":
        conds.append("e.timestamp < ?")
        params.append(as_utc(f.until, "until"))
    if f.types and skip != "types":
        one_of("e.type", f.types, prefix_groups=True)
    if f.outcomes and skip != "outcomes":
        one_of("e.outcome", f.outcomes)
    if f.sources and skip != "sources":
        one_of("s.source", f.sources)
    if f.entities and skip != "entities":
        one_of("e.entity_name", f.entities)
    if f.steps and skip != "steps":
        one_of("e.step_name", f.steps)
    if f.leads and skip != "leads":
        conds.append("e.lead_id IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(f.leads))
    resolved = resolved or {}
    for field, value in f.where:
        if field in TYPED_FIELDS:
            conds.append(f"CAST(e.{field} AS VARCHAR) = ?")
        elif (field, value) in resolved:
            conds.append("e.lead_id IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(resolved[(field, value)]))
            continue
        else:
            conds.append("json_extract_string(e.lead_snapshot, ?) = ?")
            params.append("$." + ".".join(f'"{p}"' for p in field.split(".")))
        params.append(value)
    return (" AND ".join(conds) if conds else "true"), params


def _where(session, f: Filters, resolved: dict | None) -> tuple[str, list]:
    if resolved is None:
        resolved = resolve_fields(session, f)
    return where_sql(f, resolved=resolved)


def _from(f: Filters, with_source: bool = False) -> str:
    if f.sources or with_source:
        return "events e LEFT JOIN (SELECT lead_id, source FROM lead_summary) s USING (lead_id)"
    return "events e"


def total(session, f: Filters, *, resolved: dict | None = None) -> int:
    """How many events match ``f``."""
    where, params = _where(session, f, resolved)
    df = session.sql(f"SELECT count(*) AS n FROM {_from(f)} WHERE {where}", params)
    return int(df.n.iloc[0])


#: The columns of a page of events.
PAGE_COLUMNS = (
    "seq",
    "timestamp",
    "type",
    "outcome",
    "lead_id",
    "step_name",
    "entity_name",
    "duration_ms",
    "rejection_reason",
    "error_type",
)


def page(
    session, f: Filters, n: int = 0, size: int = PAGE_SIZE, *, resolved: dict | None = None
) -> pd.DataFrame:
    """Page ``n`` (0 first) of the matching events, newest first; only that page is read.

    >>> page(session, Filters(types=("recipient.failed",)), 0).columns[:3].tolist()  # doctest: +SKIP
    ['seq', 'timestamp', 'type']
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"page number must be a whole number >= 0, got {n!r}")
    where, params = _where(session, f, resolved)
    cols = ", ".join(f"p.{c}" for c in PAGE_COLUMNS)
    # the page's events are chosen on columns masking leaves alone, then only they are
    # read (and masked) whole
    return session.sql(
        f"SELECT {cols} FROM events p WHERE p.seq IN ("
        f"SELECT e.seq FROM {_from(f)} WHERE {where} "
        "ORDER BY e.timestamp DESC, e.seq DESC LIMIT ? OFFSET ?) "
        "ORDER BY p.timestamp DESC, p.seq DESC",
        [*params, int(size), int(n) * int(size)],
    )


def facets(
    session, f: Filters, *, top: int = 25, resolved: dict | None = None
) -> dict[str, pd.DataFrame]:
    """For each facet (types, outcomes, sources, entities, steps), the values under the
    current filters with their event counts, most first (one scan for all of them)."""
    where, params = _where(session, f, resolved)
    sets = ", ".join(f"({col})" for col in FACETS.values())
    cols = ", ".join(f"{col} AS f{i}" for i, col in enumerate(FACETS.values()))
    groups = ", ".join(f"GROUPING({col}) AS g{i}" for i, col in enumerate(FACETS.values()))
    df = session.sql(
        f"SELECT {cols}, {groups}, count(*) AS n FROM {_from(f, with_source=True)} "
        f"WHERE {where} GROUP BY GROUPING SETS ({sets})",
        params,
    )
    out = {}
    for i, name in enumerate(FACETS):
        part = df[df[f"g{i}"] == 0][[f"f{i}", "n"]]
        part = part.rename(columns={f"f{i}": "value", "n": "count"})
        part = part.dropna(subset=["value"]).sort_values(
            ["count", "value"], ascending=[False, True]
        )
        out[name] = part.head(top).reset_index(drop=True)
    return out


_BUCKETS_MS = (
    60_000,
    5 * 60_000,
    15 * 60_000,
    3_600_000,
    3 * 3_600_000,
    6 * 3_600_000,
    86_400_000,
    7 * 86_400_000,
)


def histogram(session, f: Filters, *, bars: int = 60, resolved: dict | None = None) -> pd.DataFrame:
    """Events over time under ``f``, stacked by outcome: one row per (bucket, outcome),
    with the bucket's start (UTC) and width chosen so the span fits about ``bars`` bars."""
    where, params = _where(session, f, resolved)
    span = session.sql(
        f"SELECT epoch_ms(min(e.timestamp)) AS lo, epoch_ms(max(e.timestamp)) AS hi "
        f"FROM {_from(f)} WHERE {where}",
        params,
    )
    lo, hi = span.lo.iloc[0], span.hi.iloc[0]
    columns = ["bucket", "outcome", "events", "width_ms"]
    if pd.isna(lo):
        return pd.DataFrame(columns=columns)
    width = next((b for b in _BUCKETS_MS if (hi - lo) / b <= bars), _BUCKETS_MS[-1])
    df = session.sql(
        f"SELECT CAST(floor(epoch_ms(e.timestamp) / ?) AS BIGINT) * ? AS b, e.outcome, "
        f"count(*) AS events FROM {_from(f)} WHERE {where} GROUP BY b, e.outcome ORDER BY b",
        [width, width, *params],
    )
    df["bucket"] = pd.to_datetime(df.pop("b"), unit="ms", utc=True)
    df["width_ms"] = width
    return df[columns]


def lead_ids(
    session, f: Filters, *, limit: int = 50_000, resolved: dict | None = None
) -> list[str]:
    """The distinct leads of the events matching ``f`` (at most ``limit``)."""
    where, params = _where(session, f, resolved)
    df = session.sql(
        f"SELECT DISTINCT e.lead_id FROM {_from(f)} WHERE {where} LIMIT ?", [*params, limit]
    )
    return df.lead_id.tolist()
