"""How results show in JupyterLab: compact HTML cards for reports, grants, alerts and
diagnoses (their ``__str__`` stays the terminal's view), and ``style(df)`` for an
analysis's DataFrame (rates as percentages, money with its currency, blanks for missing
values) without touching the numbers a person computes on.

A leaf: it imports nothing of the package, so every room may use it.

>>> print(card("ingest 3", [("received", "1,000"), ("stored", "998")], status="warn")[:44])
<div class="wb-card" style="border-left:4px
"""

from __future__ import annotations

import hashlib
import html
import math
import re
from collections.abc import Iterable, Sequence

__all__ = ["card", "table", "style", "STATUS_COLORS", "money", "percent", "number"]

#: Status colours of a card's edge: blue/orange pairs stay apart for deuteranopes.
STATUS_COLORS = {"ok": "#1565C0", "warn": "#E69F00", "bad": "#B2182B", "info": "#607D8B"}


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


def card(
    title: str,
    rows: Sequence[tuple[str, object]] = (),
    *,
    status: str = "info",
    subtitle: str = "",
    notes: Iterable[str] = (),
    extra_html: str = "",
) -> str:
    """A compact card: a title, label/value rows, notes, and any HTML below (a table)."""
    color = STATUS_COLORS.get(status, STATUS_COLORS["info"])
    body = "".join(
        f"<tr><td style='color:#555;padding:1px 12px 1px 0;white-space:nowrap'>{_esc(k)}</td>"
        f"<td style='padding:1px 0;overflow-wrap:anywhere'>{_esc(v)}</td></tr>"
        for k, v in rows
    )
    parts = [
        f'<div class="wb-card" style="border-left:4px solid {color};padding:6px 12px;'
        "margin:4px 0;background:#FAFAFA;font-family:var(--jp-ui-font-family,sans-serif);"
        'font-size:13px;max-width:60em">',
        f"<div style='font-weight:600;color:{color}'>{_esc(title)}</div>",
    ]
    if subtitle:
        parts.append(f"<div style='color:#555'>{_esc(subtitle)}</div>")
    if body:
        parts.append(f"<table style='border-collapse:collapse;margin-top:4px'>{body}</table>")
    parts += [f"<div style='margin-top:3px'>{_esc(n)}</div>" for n in notes]
    parts.append(extra_html)
    parts.append("</div>")
    return "".join(parts)


def table(header: Sequence[str], rows: Iterable[Sequence[object]], *, caption: str = "") -> str:
    """A small HTML table (values escaped; numbers right-aligned)."""

    def cell(v, tag="td"):
        align = "right" if isinstance(v, int | float) and not isinstance(v, bool) else "left"
        shown = number(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
        return f"<{tag} style='text-align:{align};padding:1px 8px'>{_esc(shown)}</{tag}>"

    head = "".join(cell(h, "th") for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in r) + "</tr>" for r in rows)
    cap = (
        f"<caption style='text-align:left;color:#555'>{_esc(caption)}</caption>" if caption else ""
    )
    return (
        f"<table style='border-collapse:collapse;margin-top:6px;font-size:12px'>{cap}"
        f"<tr>{head}</tr>{body}</table>"
    )


# --------------------------------------------------------------------------- numbers


def _missing(v) -> bool:
    try:
        return v is None or (isinstance(v, float) and math.isnan(v)) or str(v) in ("<NA>", "NaT")
    except (TypeError, ValueError):
        return False


def number(v) -> str:
    """``1,234`` for counts, ``12.3`` for other numbers, blank for missing values."""
    if _missing(v):
        return ""
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"
    try:
        return f"{int(v):,}"
    except (TypeError, ValueError):
        return str(v)


def percent(v) -> str:
    """A share as a percentage, ``87.5%``; blank when missing."""
    return "" if _missing(v) else f"{float(v):.1%}"


def money(v, currency: str = "$") -> str:
    """``$1,234.50``; blank when missing; negative as ``-$30.00``."""
    if _missing(v):
        return ""
    v = float(v)
    # a fraction of a cent (an enhancement's $0.005 a lead) keeps its third decimal
    digits = 3 if abs(v) < 1 and round(abs(v), 2) != round(abs(v), 3) else 2
    return f"{'-' if v < 0 else ''}{currency}{abs(v):,.{digits}f}"


_RATE = re.compile(r"(^|_)(rate|share|percentage_share)$|_rate_|^share$")
_MONEY = re.compile(
    r"(^|_)(revenue|cost|costs|profit|price|value_per_lead|revenue_per_lead|cost_per_lead"
    r"|profit_per_lead)$"
)
_MS = re.compile(r"(_ms|duration|_duration)$")


def _format_for(column: str):
    name = column.lower()
    if name == "percentage":
        return lambda v: "" if _missing(v) else f"{float(v):.1f}%"
    if _RATE.search(name) or name.endswith("_rate") or name.endswith("_share"):
        return percent
    if _MONEY.search(name) or name.endswith("_revenue") or name.endswith("_cost"):
        return money
    if _MS.search(name):
        return lambda v: "" if _missing(v) else f"{float(v):,.0f} ms"
    return None


def style(df):
    """``df`` as a person reads it in a notebook: rates and shares as percentages, money
    with its currency, durations in ms, counts with thousands separators, missing
    values blank; the title in ``df.attrs`` as the caption. The DataFrame itself is not
    changed (``style`` returns a pandas ``Styler``; compute on ``df``).

    >>> from workbench import analytics
    >>> style(analytics.source_performance(session))               # doctest: +SKIP
    """
    formats = {}
    for col in df.columns:
        fmt = _format_for(str(col))
        if fmt is not None:
            formats[col] = fmt
        elif str(df[col].dtype).startswith(("int", "Int", "uint", "float", "Float")):
            formats[col] = number
    # a stable id (pandas draws a random one) so a stored notebook output stays the same
    ident = hashlib.sha1(
        repr((list(map(str, df.columns)), df.shape, df.attrs.get("title"))).encode()
    ).hexdigest()[:8]
    styler = (
        df.style.set_uuid(f"wb{ident}")
        .format(formats, na_rep="", escape="html")
        .format_index(lambda c: str(c).replace("_", " "), axis=1, escape="html")
        .hide(axis="index")
    )
    text = [c for c in df.columns if c not in formats]
    if text:
        styler = styler.set_properties(subset=text, **{"text-align": "left"})
    title = df.attrs.get("title")
    if title:
        basis = df.attrs.get("date_basis")
        styler = styler.set_caption(html.escape(f"{title}" + (f" (by {basis})" if basis else "")))
    return styler.set_table_styles(
        [
            {"selector": "caption", "props": "text-align:left;font-weight:600;color:#333"},
            {"selector": "td", "props": "text-align:right;padding:2px 8px"},
            {"selector": "th", "props": "text-align:left;padding:2px 8px"},
        ]
    )
