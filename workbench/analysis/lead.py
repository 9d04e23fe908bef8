"""Reading one lead: its timeline (an error that says what to check when there is none),
and the small readers every one-lead analysis shares.

>>> step_name({"step_name": "Phone Validation", "type": "enhancement.success"})
'Phone Validation'
"""

from __future__ import annotations

import json

import pandas as pd

from ..errors import WorkbenchError

__all__ = [
    "LeadNotFoundError",
    "read_timeline",
    "metadata_of",
    "snapshot_of",
    "step_name",
    "evidence",
    "present",
    "fmt_value",
]


class LeadNotFoundError(WorkbenchError, KeyError):
    """No events for the lead id asked about."""

    def __str__(self) -> str:
        return self.args[0]


def read_timeline(session, lead_id: str) -> pd.DataFrame:
    """The lead's timeline through ``session``, or LeadNotFoundError saying what to check."""
    tl = session.timeline(lead_id)
    if tl.empty:
        raise LeadNotFoundError(
            f"no events for lead {lead_id!r}: check the id (lead ids look like 'lead_…'), "
            "or whether its events were archived to the cold tier"
        )
    return tl.reset_index(drop=True)


def metadata_of(row) -> dict:
    m = row["metadata"]
    return m if isinstance(m, dict) else {}


def snapshot_of(row) -> dict:
    s = row["lead_snapshot"]
    return s if isinstance(s, dict) else {}


def step_name(row) -> str:
    for key in ("step_name", "entity_name"):
        v = row.get(key)
        if isinstance(v, str) and v:
            return v
    return row["type"]


def evidence(tl: pd.DataFrame, mask) -> pd.DataFrame:
    cols = [
        c
        for c in (
            "seq",
            "timestamp",
            "type",
            "step_name",
            "entity_name",
            "outcome",
            "duration_ms",
            "rejection_reason",
            "error_type",
            "http_status",
        )
        if c in tl.columns
    ]
    return tl.loc[mask, cols].reset_index(drop=True)


def present(v) -> bool:
    """A value that is there (not None, NaN or pandas' NA)."""
    try:
        return v is not None and not bool(pd.isna(v))
    except (TypeError, ValueError):
        return True


def fmt_value(v) -> str:
    if isinstance(v, dict) and "normal" in v:  # a typed field object: its normal value
        v = v["normal"]
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    return str(v)
