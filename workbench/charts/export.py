"""Export: PNG, SVG or PDF through one long-lived kaleido server (Chromium started
once, not per image), or a self-contained offline HTML file; ``report(items, path)``
writes one HTML page of several figures and tables.

Charts know nothing of stores, so they tell a file that must not be overwritten by
its first bytes: a DuckDB database (a store), a Parquet file (a tier, an export) or a
SQLite database (an audit trail) is never replaced by a chart.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import html
import os
import shutil
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from ..errors import UnsafePathError
from .theme import ChartError

__all__ = ["export", "report", "find_browser", "browser_problem"]


_SERVER_LOCK = threading.Lock()
_SERVER_STARTED = False
STATIC_FORMATS = ("png", "svg", "pdf")

#: Files a chart never overwrites, by what their first bytes say they are.
_DATA_FILES = (
    ("a DuckDB database", lambda head: head[8:12] == b"DUCK"),
    ("a Parquet file", lambda head: head[:4] == b"PAR1"),
    ("a SQLite database", lambda head: head[:16] == b"SQLite format 3\x00"),
)


def _target(path, what: str) -> Path:
    """``path`` as a place a chart may be written, or an error naming why not."""
    if not isinstance(path, str | os.PathLike):
        raise ChartError(f"{what}: give the path of a file, not a {type(path).__name__}")
    p = Path(path)
    try:
        if p.is_dir():
            raise ChartError(f"{what}: {p} is a folder; give a file name inside it")
        if not p.is_file():
            return p
        with open(p, "rb") as fh:
            head = fh.read(16)
    except (OSError, ValueError) as e:
        raise ChartError(f"{what}: cannot write {p} ({e})") from None
    for kind, is_kind in _DATA_FILES:
        if is_kind(head):
            raise UnsafePathError(
                f"refused to {what} onto {p}: it is {kind} (a store, its tiers or audit "
                "trail, or an export), not a chart; choose another file name"
            )
    return p


def find_browser() -> str | None:
    """The Chromium that PNG/SVG/PDF export (and the browser tests) use: ``BROWSER_PATH``,
    else the system's chromium or chrome, else the Chrome kaleido downloaded
    (``kaleido_get_chrome``); None when there is none."""
    for name in (os.environ.get("BROWSER_PATH"), "chromium", "chromium-browser", "google-chrome"):
        if name and (shutil.which(name) or Path(name).is_file()):
            return shutil.which(name) or name
    try:
        from choreographer.browsers.chromium import Chromium

        return Chromium.find_browser(skip_local=False)
    except Exception:  # noqa: BLE001 - kaleido's finder missing or broken: no browser
        return None


def browser_problem() -> str | None:
    """Why static export cannot run here (None when it can)."""
    if find_browser() is None:
        return (
            "PNG/SVG/PDF export needs Chromium and none was found: install it "
            "(apt-get install chromium, or `kaleido_get_chrome` for kaleido's own Chrome) "
            "or set BROWSER_PATH; HTML export works without it"
        )
    return None


def _ensure_server() -> None:
    """Start kaleido's browser once per process; later images reuse it (~0.15 s each)."""
    global _SERVER_STARTED
    with _SERVER_LOCK:
        if _SERVER_STARTED:
            return
        browser = find_browser()
        if browser is None:
            raise ChartError(browser_problem())
        os.environ.setdefault("BROWSER_PATH", browser)
        import kaleido

        kaleido.start_sync_server(mathjax=False, silence_warnings=True)
        _SERVER_STARTED = True
        atexit.register(_stop_server)


def _stop_server() -> None:
    global _SERVER_STARTED
    with _SERVER_LOCK:
        if _SERVER_STARTED:
            import kaleido

            kaleido.stop_sync_server(silence_warnings=True)
            _SERVER_STARTED = False


def export(
    fig: go.Figure,
    path: str | os.PathLike,
    *,
    format: str | None = None,
    width: int = 1000,
    height: int | None = None,
    scale: float = 2.0,
) -> Path:
    """Write ``fig`` as PNG, SVG, PDF or self-contained offline HTML (by suffix or ``format``).

    >>> export(fig, "rejections.png")                                   # doctest: +SKIP
    PosixPath('rejections.png')
    """
    if not isinstance(fig, go.Figure):
        raise ChartError(f"export() takes a plotly Figure, not a {type(fig).__name__}")
    if format is not None and not isinstance(format, str):
        raise ChartError(
            f"format={format!r}: give 'png', 'svg', 'pdf' or 'html' (or None to use the suffix)"
        )
    p = _target(path, "export a chart")
    fmt = (format or p.suffix.lstrip(".")).lower()
    if fmt in ("htm", "html"):
        with _writing(p):
            fig.write_html(p, include_plotlyjs=True, full_html=True, config={"displaylogo": False})
        return p
    if fmt not in STATIC_FORMATS:
        raise ChartError(
            f"cannot export {p.name!r}: use a .png, .svg, .pdf or .html name (or format=)"
        )
    _ensure_server()
    height = height or int(fig.layout.height or 450)
    for attempt in range(3):
        try:
            with _writing(p), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "kopts is ignored when using a server"
                fig.write_image(
                    p, format=fmt, width=width, height=height, scale=scale if fmt == "png" else 1
                )
            break
        except Exception as e:
            # kaleido ran the figure in a tab whose page had not loaded yet (a busy
            # machine): the tab is reloaded after each image, so try again, then again
            # with the browser restarted
            if attempt == 2 or "kaleido_scopes is not defined" not in str(e):
                raise
            if attempt == 1:
                _stop_server()
                _ensure_server()
    return p


@contextlib.contextmanager
def _writing(p: Path):
    """Make the folder of ``p``; a file that cannot be written is a ChartError."""
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        yield
    except OSError as e:
        raise ChartError(f"cannot write {p}: {e.strerror or e}") from None


#: plotly.js's partial bundles shipped beside this module (see plotlyjs/README.md), each
#: with the trace types it draws, smallest first
BUNDLE_VERSION = "4.1.1"
_BUNDLES = (
    ("basic", frozenset({"bar", "pie", "scatter"})),
    (
        "cartesian",
        frozenset(
            {"bar", "box", "contour", "heatmap", "histogram", "histogram2d",
             "histogram2dcontour", "image", "pie", "scatter", "scatterternary", "violin"}
        ),
    ),
)  # fmt: skip
_HERE = Path(__file__).parent / "plotlyjs"


def plotlyjs_for(figures: Sequence[go.Figure]) -> tuple[str, str]:
    """The smallest plotly.js that draws every trace of ``figures``: (name, source).
    A partial bundle when one covers them and matches plotly.py's plotly.js version,
    else the full bundle plotly.py ships."""
    import gzip

    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    types = {trace.type for fig in figures for trace in fig.data}
    if get_plotlyjs_version() == BUNDLE_VERSION:
        for name, draws in _BUNDLES:
            path = _HERE / f"plotly-{name}-{BUNDLE_VERSION}.min.js.gz"
            if types <= draws and path.is_file():
                return name, gzip.decompress(path.read_bytes()).decode("utf-8")
    return "full", get_plotlyjs()


def _table_html(df: pd.DataFrame) -> str:
    """A DataFrame as a report's table: rates as %, money with $, counts with
    separators, times to the second, blanks for missing values, headers in words."""
    from ..display import _format_for, number

    shown = pd.DataFrame(index=df.index)
    for col in df.columns:
        values = df[col]
        fmt = _format_for(str(col))
        if fmt is None and pd.api.types.is_bool_dtype(values):
            fmt = lambda v: "" if pd.isna(v) else ("yes" if v else "no")  # noqa: E731
        elif fmt is None and pd.api.types.is_numeric_dtype(values):
            fmt = number
        elif fmt is None and pd.api.types.is_datetime64_any_dtype(values):
            fmt = lambda v: "" if pd.isna(v) else f"{v:%Y-%m-%d %H:%M:%S}"  # noqa: E731
        elif fmt is None:
            fmt = lambda v: "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)  # noqa: E731
        shown[str(col).replace("_", " ")] = [fmt(v) for v in values]
    numeric = {
        str(c).replace("_", " ")
        for c in df.columns
        if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
    }

    def cell(tag, col, value):
        align = ' class="num"' if col in numeric else ""
        return f"<{tag}{align}>{html.escape(value)}</{tag}>"

    head = "".join(cell("th", c, c) for c in shown.columns)
    body = "".join(
        "<tr>"
        + "".join(cell("td", c, v) for c, v in zip(shown.columns, row, strict=True))
        + "</tr>"
        for row in shown.itertuples(index=False)
    )
    caption = df.attrs.get("title")
    cap = ""
    if caption:
        basis = df.attrs.get("date_basis")
        cap = f"<caption>{html.escape(caption + (f' (by {basis})' if basis else ''))}</caption>"
    return f'<table class="table">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _header(figures: Sequence[go.Figure], tables: Sequence[pd.DataFrame]) -> str:
    """The page's period and time bases, as its charts and tables say them."""
    from .theme import described

    said = [dict(f.layout.meta) for f in figures if isinstance(f.layout.meta, dict)]
    said += [described(t) for t in tables]
    periods = sorted({s.get("period", "") for s in said} - {""})
    bases = sorted({s.get("basis", "") for s in said} - {""})
    parts = []
    if periods:
        parts.append("Period: " + ("; ".join(periods) if len(periods) > 1 else periods[0]))
    if bases:
        parts.append(
            "counted " + " and ".join(b.removeprefix("by ") for b in bases).join(["by ", ""])
        )
    return " · ".join(parts)


def report(
    items: Sequence,
    path: str | os.PathLike,
    *,
    title: str = "Lead-events report",
    subtitle: str | None = None,
    include_plotlyjs: bool | str = True,
) -> Path:
    """One self-contained HTML page of figures, tables (DataFrames) and text, in order.

    ``items`` holds Figures, DataFrames, strings (paragraphs) or ``(heading, item)``
    pairs. The header says the period and the time basis the charts and tables were
    counted on; tables show rates as percentages, money with its currency and blanks
    for missing values. plotly.js is embedded once and offline (the smallest of its
    bundles that draws the page: 1.2 MB for bars and lines, 1.5 MB with heatmaps or
    boxes, 4.8 MB with a sankey); ``include_plotlyjs="cdn"`` links it instead, for a
    page of a few KB that needs the internet to draw.

    >>> report([("Rejections", fig), df], "weekly.html")                 # doctest: +SKIP
    """
    if include_plotlyjs not in (True, "cdn"):
        raise ChartError(
            f"include_plotlyjs={include_plotlyjs!r}: use True (embedded, opens offline) or "
            "'cdn' (linked, needs the internet)"
        )
    p = _target(path, "write a report")
    parts: list[str] = []
    figures: list[go.Figure] = []
    tables: list[pd.DataFrame] = []
    for item in items:
        heading = None
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            heading, item = item
        if heading:
            parts.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(item, go.Figure):
            figures.append(item)
            parts.append(
                item.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
            )
        elif isinstance(item, pd.DataFrame):
            tables.append(item)
            parts.append(_table_html(item))
        elif isinstance(item, str):
            parts.append(f"<p>{html.escape(item)}</p>")
        else:
            raise ChartError(
                f"report() takes Figures, DataFrames, text or (heading, item) pairs, not {type(item).__name__}"
            )
    script = ""
    if figures and include_plotlyjs == "cdn":
        from plotly.offline import get_plotlyjs_version

        script = (
            '<script src="https://cdn.plot.ly/plotly-'
            f'{get_plotlyjs_version()}.min.js" charset="utf-8"></script>'
        )
    elif figures:
        bundle, source = plotlyjs_for(figures)
        script = f'<script type="text/javascript">/* plotly.js ({bundle}) */\n{source}</script>'
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [subtitle] if subtitle else []
    said = _header(figures, tables)
    if said:
        lines.append(said)
    lines.append(f"Generated {stamp}")
    page = _PAGE.format(
        title=html.escape(title),
        subtitle="<br>".join(html.escape(x) for x in lines),
        script=script,
        body="\n".join(parts),
    )
    with _writing(p):
        p.write_text(page, encoding="utf-8")
    return p


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
{script}
<style>
body {{ font-family: Inter, 'Helvetica Neue', Arial, sans-serif; color: #263238; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; }}
h1 {{ font-size: 1.6rem; margin-bottom: .2rem; }} .sub {{ color: #78909C; margin-top: 0; }}
h2 {{ font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ECEFF1; padding-bottom: .3rem; }}
table.table {{ border-collapse: collapse; font-size: .85rem; margin: .5rem 0 1rem; }}
table.table th, table.table td {{ padding: .3rem .7rem; border-bottom: 1px solid #ECEFF1; text-align: left; }}
table.table .num {{ text-align: right; font-variant-numeric: tabular-nums; }}
table.table th {{ background: #F5F7F8; }}
table.table caption {{ text-align: left; font-weight: 600; padding-bottom: .3rem; }}
</style></head>
<body><h1>{title}</h1><p class="sub">{subtitle}</p>
{body}
</body></html>
"""
