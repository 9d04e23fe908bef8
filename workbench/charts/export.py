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
    with _writing(p), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "kopts is ignored when using a server"
        fig.write_image(
            p, format=fmt, width=width, height=height, scale=scale if fmt == "png" else 1
        )
    return p


@contextlib.contextmanager
def _writing(p: Path):
    """Make the folder of ``p``; a file that cannot be written is a ChartError."""
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        yield
    except OSError as e:
        raise ChartError(f"cannot write {p}: {e.strerror or e}") from None


def report(
    items: Sequence,
    path: str | os.PathLike,
    *,
    title: str = "Lead-events report",
    subtitle: str | None = None,
) -> Path:
    """One self-contained HTML page of figures, tables (DataFrames) and text, in order.

    ``items`` holds Figures, DataFrames, strings (paragraphs) or ``(heading, item)``
    pairs. plotly.js is embedded once, so the file opens offline.

    >>> report([("Rejections", fig), df], "weekly.html")                 # doctest: +SKIP
    """
    p = _target(path, "write a report")
    parts: list[str] = []
    first_fig = True
    for item in items:
        heading = None
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            heading, item = item
        if heading:
            parts.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(item, go.Figure):
            parts.append(
                item.to_html(
                    full_html=False, include_plotlyjs=first_fig, config={"displaylogo": False}
                )
            )
            first_fig = False
        elif isinstance(item, pd.DataFrame):
            parts.append(
                item.to_html(
                    index=False,
                    classes="table",
                    border=0,
                    na_rep="",
                    float_format=lambda x: f"{x:,.4g}",
                )
            )
        elif isinstance(item, str):
            parts.append(f"<p>{html.escape(item)}</p>")
        else:
            raise ChartError(
                f"report() takes Figures, DataFrames, text or (heading, item) pairs, not {type(item).__name__}"
            )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = _PAGE.format(
        title=html.escape(title),
        subtitle=html.escape(subtitle) if subtitle else f"Generated {stamp}",
        body="\n".join(parts),
    )
    with _writing(p):
        p.write_text(page, encoding="utf-8")
    return p


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: Inter, 'Helvetica Neue', Arial, sans-serif; color: #263238; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; }}
h1 {{ font-size: 1.6rem; margin-bottom: .2rem; }} .sub {{ color: #78909C; margin-top: 0; }}
h2 {{ font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ECEFF1; padding-bottom: .3rem; }}
table.table {{ border-collapse: collapse; font-size: .85rem; margin: .5rem 0 1rem; }}
table.table th, table.table td {{ padding: .3rem .7rem; border-bottom: 1px solid #ECEFF1; text-align: right; }}
table.table th {{ background: #F5F7F8; }} table.table td:first-child, table.table th:first-child {{ text-align: left; }}
</style></head>
<body><h1>{title}</h1><p class="sub">{subtitle}</p>
{body}
</body></html>
"""
