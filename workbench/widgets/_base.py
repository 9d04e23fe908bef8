"""What every widget shares: the session check, cell formatting, a clickable table and
a collapsible JSON tree. Widgets hold view state only; every query, reshaping and
masking happens in ``analysis/`` and the Session they are given.
"""

from __future__ import annotations

import html
import json
import math

import anywidget
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import traitlets

from ..access import Session

__all__ = [
    "require_session",
    "cell",
    "frame_rows",
    "Table",
    "json_tree",
    "banner",
    "show_figure",
]


def require_session(session, widget: str) -> Session:
    """``session`` if it is a Session, else a TypeError that says how to make one."""
    if isinstance(session, Session):
        if session.closed:
            raise TypeError(f"{widget} needs an open Session; this one is closed: connect() again")
        return session
    kind = type(session).__name__
    hint = (
        "an EventStore reads raw, unmasked data; "
        if kind == "EventStore"
        else f"a {kind} is not a Session; "
    )
    raise TypeError(
        f"{widget}(session) takes a Session: {hint}connect first, e.g. "
        "session = workbench.connect(store_or_path, user='ana', role='analyst')"
    )


def cell(v) -> str:
    """One value as a table shows it: times to the millisecond, no NaN or <NA>."""
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return f"{v:,.2f}" if not v.is_integer() else f"{int(v):,}"
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d %H:%M:%S.") + f"{v.microsecond // 1000:03d}"
    try:
        if pd.isna(v):
            return ""
    except (TypeError, ValueError):
        pass
    if isinstance(v, dict | list):
        return json.dumps(v, default=str)[:200]
    return str(v)


def _is_share(column: str) -> bool:
    return column.endswith(("_rate", "_share", "share")) or column == "lift"


def frame_rows(df: pd.DataFrame, columns) -> list[list[str]]:
    """The rows of ``df`` (only ``columns``) as text cells, formatted as everywhere else
    (``display``): rates and shares as percentages, money with its currency, durations
    in ms, missing values blank."""
    from ..display import _format_for, percent

    cols = [c for c in columns if c in df.columns]
    formats = [percent if _is_share(c) else _format_for(c) for c in cols]
    return [
        [
            fmt(v) if fmt is not None and isinstance(v, int | float) else cell(v)
            for v, fmt in zip(row, formats, strict=True)
        ]
        for row in df[cols].itertuples(index=False, name=None)
    ]


class Table(anywidget.AnyWidget):
    """A table whose rows can be clicked: ``selected`` is the clicked row's index (-1 none).

    Only the rows given are sent to the browser, so a caller pages on the server.
    """

    _esm = """
    function render({ model, el }) {
      el.classList.add("wb-table");
      const draw = () => {
        const cols = model.get("columns"), rows = model.get("rows");
        const sel = model.get("selected");
        el.innerHTML = "";
        if (model.get("caption")) {
          const cap = document.createElement("div");
          cap.className = "wb-caption";
          cap.textContent = model.get("caption");
          el.appendChild(cap);
        }
        const table = document.createElement("table");
        const head = table.createTHead().insertRow();
        for (const c of cols) {
          const th = document.createElement("th");
          th.textContent = c;
          head.appendChild(th);
        }
        const body = table.createTBody();
        rows.forEach((r, i) => {
          const tr = body.insertRow();
          tr.dataset.row = i;
          if (i === sel) tr.classList.add("wb-selected");
          for (const v of r) tr.insertCell().textContent = v;
          tr.addEventListener("click", () => {
            model.set("selected", i);
            model.save_changes();
          });
        });
        if (!rows.length) {
          const tr = body.insertRow(), td = tr.insertCell();
          td.colSpan = Math.max(cols.length, 1);
          td.className = "wb-empty";
          td.textContent = model.get("empty");
        }
        el.appendChild(table);
      };
      model.on("change:rows", draw);
      model.on("change:columns", draw);
      model.on("change:selected", draw);
      model.on("change:caption", draw);
      draw();
    }
    export default { render };
    """
    _css = """
    .wb-table { max-height: 420px; overflow: auto; font: 12px/1.4 Inter, Arial, sans-serif; }
    .wb-table table { border-collapse: collapse; width: 100%; }
    .wb-table th { position: sticky; top: 0; background: #ECEFF1; text-align: left;
                   padding: 4px 8px; font-weight: 600; color: #263238; }
    .wb-table td { padding: 3px 8px; border-bottom: 1px solid #ECEFF1; white-space: nowrap;
                   max-width: 360px; overflow: hidden; text-overflow: ellipsis; }
    .wb-table tbody tr { cursor: pointer; }
    .wb-table tbody tr:hover { background: #E3F2FD; }
    .wb-table tr.wb-selected { background: #BBDEFB; }
    .wb-table .wb-empty { color: #78909C; font-style: italic; cursor: default; }
    .wb-caption { color: #546E7A; padding: 2px 8px 6px; }
    """
    columns = traitlets.List(traitlets.Unicode()).tag(sync=True)
    rows = traitlets.List(traitlets.List()).tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)
    caption = traitlets.Unicode("").tag(sync=True)
    empty = traitlets.Unicode("nothing to show").tag(sync=True)

    def show_frame(self, df: pd.DataFrame, columns, caption: str = "") -> None:
        """Show ``columns`` of ``df`` (as text), clearing the selection."""
        cols = [c for c in columns if c in df.columns]
        self.selected = -1
        self.columns = [c.replace("_", " ") for c in cols]
        self.rows = frame_rows(df, cols)
        self.caption = caption


def json_tree(doc, *, open_depth: int = 1, depth: int = 0) -> str:
    """A JSON document as nested, collapsible HTML (``<details>``), escaped."""
    if isinstance(doc, dict):
        if not doc:
            return "<code>{}</code>"
        items = "".join(
            _node(str(k), v, open_depth=open_depth, depth=depth + 1) for k, v in doc.items()
        )
        return f"<ul class='wb-tree'>{items}</ul>"
    if isinstance(doc, list):
        if not doc:
            return "<code>[]</code>"
        items = "".join(
            _node(f"[{i}]", v, open_depth=open_depth, depth=depth + 1) for i, v in enumerate(doc)
        )
        return f"<ul class='wb-tree'>{items}</ul>"
    return f"<code>{html.escape(json.dumps(doc, default=str))}</code>"


def _node(key: str, value, *, open_depth: int, depth: int) -> str:
    k = f"<b>{html.escape(key)}</b>"
    if isinstance(value, dict | list) and value:
        size = f"{len(value)} {'keys' if isinstance(value, dict) else 'items'}"
        opened = " open" if depth <= open_depth else ""
        inner = json_tree(value, open_depth=open_depth, depth=depth)
        return f"<li><details{opened}><summary>{k} <i>{size}</i></summary>{inner}</details></li>"
    return f"<li>{k}: {json_tree(value, depth=depth)}</li>"


TREE_CSS = """
<style>
.wb-tree { list-style: none; margin: 0 0 0 14px; padding: 0; font: 12px/1.5 Menlo, monospace; }
.wb-tree summary { cursor: pointer; }
.wb-tree i { color: #90A4AE; font-style: normal; }
.wb-tree code { color: #1565C0; }
.wb-banner { border-left: 4px solid #1565C0; background: #F5F9FF; padding: 8px 12px;
             font: 13px/1.5 Inter, Arial, sans-serif; }
.wb-banner.ok { border-color: #0072B2; background: #F2F7FB; }
.wb-banner.bad { border-color: #D55E00; background: #FDF5F0; }
.wb-muted { color: #78909C; }
.wb-kpi { border: 1px solid #ECEFF1; border-radius: 6px; padding: 8px 12px; min-width: 140px;
          font: 12px Inter, Arial, sans-serif; color: #546E7A; }
.wb-kpi b { display: block; font-size: 22px; color: #263238; font-weight: 600; }
.wb-kpi .up { color: #0072B2; } .wb-kpi .down { color: #D55E00; }
</style>
"""


def banner(text_html: str, kind: str = "") -> str:
    """A coloured box of (already escaped) HTML: ``kind`` is '', 'ok' or 'bad'."""
    return f"{TREE_CSS}<div class='wb-banner {kind}'>{text_html}</div>"


def _nulls(obj):
    """``obj`` (a figure's dict) with every NaN or infinity as None."""
    if isinstance(obj, dict):
        return {k: _nulls(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nulls(v) for v in obj]
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f" and not np.isfinite(obj).all():
            return (
                [None if not np.isfinite(v) else float(v) for v in obj.ravel()]
                if obj.ndim == 1
                else [_nulls(row) for row in obj]
            )
        if obj.dtype.kind == "O":
            return [_nulls(v) for v in obj]
        return obj
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def show_figure(widget: go.FigureWidget, fig: go.Figure) -> None:
    """Show ``fig``'s traces and layout in ``widget``, as if it were drawn afresh.

    Gaps (NaN) become JSON nulls on the way, as plotly writes them to files: a widget's
    state must be valid JSON. A layout update only sends what the new layout sets, so
    what the old one set and the new one does not (annotations, shapes, tick labels)
    is removed first, or the browser would keep drawing it."""
    # each trace's own JSON keeps arrays as arrays (a figure's dict packs them in base64)
    clean = go.Figure(
        data=[_nulls(t.to_plotly_json()) for t in fig.data],
        layout=_nulls(fig.layout.to_plotly_json()),
    )
    old = widget.layout.to_plotly_json()
    new = clean.layout.to_plotly_json()
    for key, value in old.items():
        if key == "template":
            continue
        if key not in new:
            widget.layout[key] = () if isinstance(value, list | tuple) else None
        elif isinstance(value, dict) and isinstance(new[key], dict):
            for sub in value:
                if sub not in new[key]:
                    widget.layout[key][sub] = None
    with widget.batch_update():
        widget.data = ()
        widget.layout = clean.layout
        widget.add_traces(clean.data)
