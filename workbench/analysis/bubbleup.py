"""What sets a group of leads apart: ``bubbleup`` compares the attributes of a selection
of leads (a source, a buyer, an outcome, event types, error types, snapshot fields)
with the rest and ranks them by how over-represented they are.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from .. import catalog
from . import portable as _portable

__all__ = ["bubbleup"]


# lead-level attributes (from lead_summary) and event attributes (per lead)
_LEAD_ATTRS = ("source", "recipient", "outcome", "stage")
# snapshot fields with many values are summarised (a domain, a length) or skipped
_MAX_VALUES = 60

_FEATURES_SQL = """
WITH picked AS ({picked}),
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
    SELECT e.lead_id, 'event.hour_utc', CAST(hour(min(e.timestamp)) AS STRING)
    FROM events e JOIN picked p ON p.lead_id = e.lead_id GROUP BY e.lead_id
    UNION ALL
{fields}
)
SELECT a.attribute, a.value, a.lead_id, p.in_selection
FROM attrs a JOIN picked p ON p.lead_id = a.lead_id
WHERE a.value IS NOT NULL
"""

# the two places the engines differ: a list of parameters as rows, a document's keys
_DIALECT = {
    "duckdb": dict(
        picked="SELECT lead_id, in_selection FROM "
        "(SELECT unnest($leads) AS lead_id, unnest($flags) AS in_selection)",
        fields="""    SELECT lead_id, 'field.' || k,
           CASE WHEN json_type(v) = 'OBJECT' THEN coalesce(json_extract_string(v, '$.normal'),
                                                           json_extract_string(v, '$.raw'))
                ELSE json_extract_string(v, '$') END
    FROM (
        SELECT e.lead_id, unnest(json_keys(e.lead_snapshot)) AS k,
               json_extract(e.lead_snapshot, '$."' || unnest(json_keys(e.lead_snapshot)) || '"') AS v
        FROM events e JOIN picked p ON p.lead_id = e.lead_id
        WHERE e.type = 'source.submitted' AND e.lead_snapshot IS NOT NULL
    )""",
    ),
    "spark": dict(
        picked="SELECT lead_id, element_at($flags, i + 1) AS in_selection FROM "
        "(SELECT posexplode($leads) AS (i, lead_id))",
        fields="""    SELECT lead_id, 'field.' || k,
           CASE WHEN v LIKE '{%' THEN coalesce(get_json_object(v, '$.normal'),
                                               get_json_object(v, '$.raw'))
                ELSE v END
    FROM (
        SELECT lead_id, k, get_json_object(lead_snapshot, '$[' || char(39) || k || char(39) || ']') AS v
        FROM (
            SELECT e.lead_id, e.lead_snapshot, explode(json_object_keys(e.lead_snapshot)) AS k
            FROM events e JOIN picked p ON p.lead_id = e.lead_id
            WHERE e.type = 'source.submitted' AND e.lead_snapshot IS NOT NULL
        ) s
    ) f""",
    ),
}


def _features_sql(dialect: str) -> str:
    return _FEATURES_SQL.replace("{picked}", _DIALECT[dialect]["picked"]).replace(
        "{fields}", _DIALECT[dialect]["fields"]
    )


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
    sql = _features_sql(_portable.dialect_of(session))
    long = session.sql(sql, {"leads": leads, "flags": flags})
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
    ranked = ranked[
        [
            "attribute",
            "value",
            "selection_leads",
            "selection_share",
            "baseline_leads",
            "baseline_share",
            "odds_ratio",
            "lift",
        ]
    ]
    ranked.attrs.update(
        selection=ns, baseline=nb, title=f"BubbleUp: {ns:,} selected vs {nb:,} baseline leads"
    )
    return ranked.head(top) if top else ranked
