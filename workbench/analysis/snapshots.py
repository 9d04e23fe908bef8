"""How a lead changed along its flow: what each step added, changed or removed
(``diff_snapshots``), who set a field (``provenance``), and two leads side by side
(``compare_leads``). A change made by a step that does not set that field is marked
``unexpected``: where data goes wrong.
"""

from __future__ import annotations

import pandas as pd

from ..errors import FieldNotFoundError
from .lead import fmt_value, metadata_of, read_timeline, step_name

__all__ = ["diff_snapshots", "diff_snapshots_frame", "provenance", "compare_leads"]


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
            meta = metadata_of(r)
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
                        "seq": r["seq"],
                        "timestamp": r["timestamp"],
                        "type": r["type"],
                        "step_name": step_name(r),
                        "field": f,
                        "change": change,
                        "before": None if a is _ABSENT else fmt_value(a),
                        "after": None if b is _ABSENT else fmt_value(b),
                        "unexpected": change != "added" and not sets,
                    }
                )
        prev = cur
    return pd.DataFrame(
        rows,
        columns=[
            "seq",
            "timestamp",
            "type",
            "step_name",
            "field",
            "change",
            "before",
            "after",
            "unexpected",
        ],
    )


class _Absent:
    def __repr__(self):
        return "<absent>"


_ABSENT = _Absent()


def diff_snapshots(session, lead_id: str) -> pd.DataFrame:
    """What each step added, changed or removed in the lead, in order.

    ``unexpected`` marks a change made by a step that does not set that field (not
    the source's parsing, not an enhancement appending it): where data goes wrong.
    """
    return diff_snapshots_frame(read_timeline(session, lead_id))


def provenance(session, lead_id: str, field: str) -> pd.DataFrame:
    """Which steps set or changed ``field`` of the lead, when, and from what to what.

    >>> provenance(session, "lead_5T8nK3mP9Q2wR7xN", "appended.phone_score")   # doctest: +SKIP
    """
    tl = read_timeline(session, lead_id)
    diffs = diff_snapshots_frame(tl)
    hits = diffs[(diffs.field == field) | diffs.field.str.startswith(field + ".")]
    first = None
    for _, r in tl.iterrows():
        snap = r["lead_snapshot"]
        if isinstance(snap, dict) and field in _flatten(snap):
            first = r
            break
    rows = []
    # "present" says where the field was first seen, unless a change there says it
    if first is not None and first["seq"] not in set(hits.seq):
        rows.append(
            {
                "seq": first["seq"],
                "timestamp": first["timestamp"],
                "type": first["type"],
                "step_name": step_name(first),
                "change": "present",
                "before": None,
                "after": fmt_value(_flatten(first["lead_snapshot"])[field]),
            }
        )
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
        raise FieldNotFoundError(
            f"lead {lead_id} never has a field {field!r}; its fields: {', '.join(known)}"
        )
    return out


def compare_leads(session, a: str, b: str) -> pd.DataFrame:
    """Two leads side by side, step by step: steps only in one, different outcomes,
    and durations (``duration_diff_ms`` = b - a).

    >>> compare_leads(session, "lead_ok", "lead_failed")                # doctest: +SKIP
    """
    ta, tb = read_timeline(session, a), read_timeline(session, b)

    def steps(tl):
        df = tl.assign(
            step=[f"{t} · {step_name(r)}" for t, (_, r) in zip(tl.type, tl.iterrows(), strict=True)]
        )
        df["n"] = df.groupby("step").cumcount()
        return df.set_index(["step", "n"])[["seq", "outcome", "duration_ms"]]

    sa, sb = steps(ta), steps(tb)
    m = sa.add_suffix("_a").join(sb.add_suffix("_b"), how="outer")
    m["in"] = [
        "both" if not pd.isna(x) and not pd.isna(y) else ("only a" if not pd.isna(x) else "only b")
        for x, y in zip(m.seq_a, m.seq_b, strict=True)
    ]
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
