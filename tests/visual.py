"""Every chart builder over one fixed store, as PNG: the visual regression test's cases,
its comparison, and the command that regenerates its reference images.

    python -m tests.visual --update           # rewrite tests/visual_refs/*.png
    python -m tests.visual --sheet sheet.png  # every chart on one contact sheet

The store is the sample run's week (seeded, so the same events on every machine); the
images are small (600 × 380 px at scale 1) so the references stay a few hundred KB.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import warnings
from pathlib import Path

REFS = Path(__file__).parent / "visual_refs"
WIDTH, HEIGHT = 760, 450  # the width; a chart keeps its own height (450 unless it says)
#: A pixel differs when any channel moves by more than this (anti-aliasing, font hinting)
CHANNEL_TOLERANCE = 40
#: An image differs when more than this share of its pixels differ (0.2%: a changed
#: label or colour is seen, font anti-aliasing is not)
PIXEL_SHARE = 0.002


def _lead(store, where: str) -> str:
    return store.sql(f"SELECT lead_id FROM lead_summary WHERE {where} ORDER BY lead_id LIMIT 1")[
        "lead_id"
    ][0]


def figures(store) -> dict:
    """name → Figure for every builder in ``workbench.charts``, from the analyses a person
    would feed it on ``store``."""
    from workbench import charts
    from workbench.analysis import alerts, analytics, bubbleup, patterns

    a = analytics
    returned = _lead(store, "returned")
    rejected = _lead(store, "outcome = 'buyer_rejected'")
    import pandas as pd

    fired = alerts.evaluate(store)
    episodes = pd.DataFrame(
        [
            {
                "rule": x.rule.name,
                "subject": x.subject,
                "started": x.started,
                "ended": x.ended,
                "severity": x.severity,
            }
            for x in alerts.alerts(store, evidence=False)
        ],
        columns=["rule", "subject", "started", "ended", "severity"],
    )
    out = {
        "funnel": charts.funnel_figure(a.funnel_by_source(store)),
        "sankey": charts.sankey_figure(a.lead_paths(store)),
        "hour_heatmap": charts.hour_heatmap(a.buyer_acceptance_by_hour(store)),
        "duration_box": charts.duration_box(a.step_duration_samples(store)),
        "step_durations": charts.step_durations_figure(a.step_durations(store)),
        "rejection_bars": charts.rejection_bars(a.rejection_analysis(store)),
        "success_rates": charts.success_rates_figure(a.success_rates(store, by="step")),
        "source_performance": charts.source_performance_figure(a.source_performance(store)),
        "enhancement_value": charts.enhancement_value_figure(a.enhancement_value(store)),
        "buyer": charts.buyer_figure(a.buyer_behaviour(store)),
        "errors": charts.errors_figure(patterns.errors_by_type(store)),
        "timeouts": charts.timeouts_figure(patterns.timeouts_over_time(store)),
        "retry": charts.retry_figure(patterns.retry_effectiveness(store)),
        "bubbleup": charts.bubbleup_figure(
            bubbleup.bubbleup(store, "outcome = 'rejected'", exclude=("event.rejection_reason",))
        ),
        "alerts": charts.alerts_figure(fired),
        "timeline_returned": charts.timeline_figure(store.timeline(returned)),
        "timeline_rejected": charts.timeline_figure(store.timeline(rejected)),
        "alert_episodes": charts.alert_episodes_figure(episodes),
    }
    return out


def png(fig) -> bytes:
    """``fig`` as PNG bytes at the references' size."""
    from workbench.charts.export import _ensure_server

    _ensure_server()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "kopts is ignored when using a server"
        return fig.to_image(
            format="png", width=WIDTH, height=int(fig.layout.height or HEIGHT), scale=1
        )


def small(data: bytes, path: Path) -> Path:
    """``data`` saved as a 256-colour PNG (a chart has few colours; a third of the size)."""
    from PIL import Image

    Image.open(io.BytesIO(data)).convert("RGB").quantize(256).save(path, optimize=True)
    return path


def difference(a: bytes, b: bytes) -> float:
    """The share of pixels that differ between two PNGs by more than the tolerance (1.0
    when their sizes differ)."""
    from PIL import Image, ImageChops

    ia = Image.open(io.BytesIO(a)).convert("RGB")
    ib = Image.open(io.BytesIO(b)).convert("RGB")
    if ia.size != ib.size:
        return 1.0
    diff = (
        ImageChops.difference(ia, ib)
        .convert("L")
        .point(lambda v: 255 if v > CHANNEL_TOLERANCE else 0)
    )
    return diff.histogram()[255] / (ia.size[0] * ia.size[1])


def sheet(images: dict[str, bytes], path: Path, columns: int = 4) -> Path:
    """One PNG with every image as a labelled thumbnail."""
    from PIL import Image, ImageDraw

    thumbs = {n: Image.open(io.BytesIO(b)).convert("RGB") for n, b in images.items()}
    for im in thumbs.values():
        im.thumbnail((WIDTH, HEIGHT))
    w, h = WIDTH, HEIGHT + 22
    rows = math.ceil(len(thumbs) / columns)
    page = Image.new("RGB", (columns * w, rows * h), "white")
    draw = ImageDraw.Draw(page)
    for i, (name, im) in enumerate(sorted(thumbs.items())):
        x, y = (i % columns) * w, (i // columns) * h
        draw.text((x + 8, y + 4), name, fill="#263238")
        page.paste(im, (x + (w - im.size[0]) // 2, y + 22))
        draw.rectangle([x, y, x + w - 1, y + h - 1], outline="#CFD8DC")
    page.save(path, optimize=True)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite the reference images")
    parser.add_argument("--sheet", type=Path, help="write a contact sheet of every chart here")
    parser.add_argument("--out", type=Path, help="also write each chart's PNG into this folder")
    args = parser.parse_args(argv)

    from tests.conftest import _simulate_week
    from workbench.sim.sample_run import sample_run

    week = _simulate_week(sample_run().runner())
    images = {name: png(fig) for name, fig in figures(week.store).items()}
    if args.update:
        REFS.mkdir(exist_ok=True)
        for old in REFS.glob("*.png"):
            if old.stem not in images:
                old.unlink()
        for name, data in images.items():
            small(data, REFS / f"{name}.png")
        size = sum(p.stat().st_size for p in REFS.glob("*.png"))
        print(f"wrote {len(images)} reference images ({size / 1024:,.0f} KB) to {REFS}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, data in images.items():
            (args.out / f"{name}.png").write_bytes(data)
    if args.sheet:
        print(f"contact sheet: {sheet(images, args.sheet)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
