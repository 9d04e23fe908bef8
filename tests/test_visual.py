"""Visual regression: every chart builder over the sample week, exported to PNG and
compared with its reference image in tests/visual_refs/ by pixel difference, not by
bytes (anti-aliasing may move a little; a changed label, colour or layout may not).

After a deliberate change to a chart, look at the new images and regenerate them:

    .venv/bin/python -m tests.visual --update
"""

from __future__ import annotations

import pytest

from tests import visual

NAMES = sorted(p.stem for p in visual.REFS.glob("*.png"))


@pytest.fixture(scope="module")
def rendered(sample_week, browser):
    return {name: visual.png(fig) for name, fig in visual.figures(sample_week.store).items()}


def test_every_builder_has_a_reference(rendered):
    from workbench import charts

    assert set(rendered) == set(NAMES), "run: python -m tests.visual --update"
    builders = {n for n in charts.__all__ if n.endswith(("_figure", "_bars", "_box", "_heatmap"))}
    drawn = {
        "funnel_figure", "sankey_figure", "hour_heatmap", "duration_box",
        "step_durations_figure", "rejection_bars", "success_rates_figure",
        "source_performance_figure", "enhancement_value_figure", "buyer_figure",
        "errors_figure", "timeouts_figure", "retry_figure", "bubbleup_figure",
        "alerts_figure", "timeline_figure", "alert_episodes_figure",
    }  # fmt: skip
    assert builders <= drawn, f"no visual case for {sorted(builders - drawn)}"


@pytest.mark.parametrize("name", NAMES)
def test_chart_looks_as_it_did(name, rendered, tmp_path_factory):
    reference = (visual.REFS / f"{name}.png").read_bytes()
    share = visual.difference(rendered[name], reference)
    if share > visual.PIXEL_SHARE:
        out = tmp_path_factory.mktemp("visual") / f"{name}.png"
        out.write_bytes(rendered[name])
        pytest.fail(
            f"{name}: {share:.2%} of pixels differ from tests/visual_refs/{name}.png "
            f"(allowed {visual.PIXEL_SHARE:.1%}); the new image is {out}. If the change is "
            "meant, look at it and run: python -m tests.visual --update"
        )


def test_the_comparison_sees_a_changed_chart(rendered):
    """A test that cannot fail is a defect: a chart with one bar recoloured differs."""
    import io

    from PIL import Image, ImageDraw

    im = Image.open(io.BytesIO(rendered["retry"])).convert("RGB")
    ImageDraw.Draw(im).rectangle([300, 200, 340, 260], fill="#D55E00")
    changed = io.BytesIO()
    im.save(changed, format="PNG")
    assert visual.difference(changed.getvalue(), rendered["retry"]) > visual.PIXEL_SHARE
    assert visual.difference(rendered["retry"], rendered["retry"]) == 0
