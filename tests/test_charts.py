"""Figures build from the frames the analyses return, and export to every format."""

import datetime as dt
import json
import re
import sys
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest

from workbench import charts

from .conftest import lead_events

T0 = dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)


@pytest.fixture
def timeline(store):
    store.append(lead_events("lead_A", T0))
    store.append(
        [
            dict(
                lead_events("lead_A", T0 + dt.timedelta(hours=3))[0],
                type="feedback.received",
                metadata={
                    "feedback_type": "conversion",
                    "status": "converted",
                    "quality_metrics": {},
                    "original_lead_id": "b-1",
                },
            )
        ]
    )
    return store.timeline("lead_A")


def test_timeline_swimlanes(timeline):
    fig = charts.timeline_figure(timeline)
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert sum(len(b.x) for b in bars) == len(timeline) - 1  # flow.completed is a diamond
    assert {b.name for b in bars} == {"success"}
    assert bars[0].marker.color == charts.OUTCOME_COLORS["success"]
    # the feedback three hours later sits after a break labelled with the wait, not at
    # a fake millisecond offset inside the flow
    assert "+3.0 h" in fig.layout.xaxis.ticktext
    xs = {  # a bar starts at its base and is as long as its x
        h.split("</b>")[0][3:]: x for b in bars for h, x in zip(b.hovertext, b.base, strict=True)
    }
    flow_end = max(x for t, x in xs.items() if t != "feedback.received")
    assert xs["feedback.received"] > flow_end
    assert any("3.0 h after the lead arrived" in h for b in bars for h in b.hovertext)
    hover = " ".join(h for b in bars for h in b.hovertext)
    assert "recipient.delivered" in hover and "duration:" in hover
    diamond = [t for t in fig.data if isinstance(t, go.Scatter)][0]
    assert diamond.marker.symbol == "diamond"


def test_late_events_stand_side_by_side_and_failures_say_why(store):
    events = lead_events("lead_B", T0, delivered=False)
    later = lead_events("lead_B", T0 + dt.timedelta(days=2))[0]
    for k in range(3):  # three feedback events in the same second, days later
        events.append(
            dict(
                later,
                event_id=f"evt_fb_{k}",
                type="feedback.received",
                timestamp=(T0 + dt.timedelta(days=2, milliseconds=k)).isoformat(),
                metadata={
                    "feedback_type": "return",
                    "status": "returned",
                    "reason": "Disconnected number",
                    "quality_metrics": {},
                    "original_lead_id": "b-2",
                },
            )
        )
    store.append(events)
    tl = store.timeline("lead_B")
    fig = charts.timeline_figure(tl)
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    late = sorted(
        (x, w)
        for b in bars
        for x, w, h in zip(b.base, b.x, b.hovertext, strict=True)
        if "days after" in h
    )
    assert len(late) == 3
    for (x0, w0), (x1, _) in zip(late, late[1:], strict=False):
        assert x0 + w0 <= x1, "late events overlap"
    assert any(t.startswith("+2.0 days") for t in fig.layout.xaxis.ticktext)
    failed = tl[tl.outcome == "failure"]
    labels = " ".join(a.text.replace("<br>", " ") for a in fig.layout.annotations)
    for reason in failed.rejection_reason.dropna().unique():
        assert reason in labels


def test_timeline_of_nothing_says_so():
    fig = charts.timeline_figure(
        pd.DataFrame(columns=["type", "timestamp", "outcome", "duration_ms"])
    )
    assert fig.layout.annotations[0].text == "no events for this lead"


def test_missing_columns_are_named():
    with pytest.raises(charts.ChartError, match="needs columns rejections"):
        charts.rejection_bars(pd.DataFrame({"rejection_reason": ["x"]}))


FRAMES = {
    "funnel_figure": pd.DataFrame(
        {
            "source": ["A", "B"],
            "submitted": [100, 50],
            "accepted": [80, 30],
            "delivered": [60, 10],
            "converted": [9, 1],
        }
    ),
    "sankey_figure": pd.DataFrame(
        {
            "source": ["A", "A", "B"],
            "outcome": ["delivered", "rejected", "delivered"],
            "recipient": ["Buyer 1", "(no buyer)", "Buyer 2"],
            "leads": [60, 20, 10],
        }
    ),
    "hour_heatmap": pd.DataFrame(
        {
            "recipient": ["B1"] * 24,
            "hour": range(24),
            "acceptance_rate": [h / 24 for h in range(24)],
        }
    ),
    "duration_box": pd.DataFrame({"step_name": ["a"] * 5 + ["b"] * 5, "duration_ms": range(10)}),
    "rejection_bars": pd.DataFrame(
        {
            "rejection_reason": ["Invalid phone", "Duplicate"],
            "rejections": [40, 30],
            "share": [0.57, 0.43],
        }
    ),
    "success_rates_figure": pd.DataFrame(
        {
            "type": ["recipient.delivered", "recipient.failed"],
            "outcome": ["success", "failure"],
            "count": [8, 2],
            "percentage": [100.0, 100.0],
        }
    ),
    "source_performance_figure": pd.DataFrame(
        {
            "source": ["A", "B"],
            "submitted": [10, 5],
            "acceptance_rate": [0.9, 0.4],
            "delivery_rate": [0.8, 0.2],
            "revenue": [450.0, 45.0],
            "profit": [400.0, -5.0],
        }
    ),
    "enhancement_value_figure": pd.DataFrame(
        {"group": ["with", "without"], "delivery_rate": [0.85, 0.6]}
    ),
    "buyer_figure": pd.DataFrame({"recipient": ["B1", "B2"], "acceptance_rate": [0.9, 0.5]}),
    "errors_figure": pd.DataFrame(
        {
            "error_type": ["timeout", "http_503"],
            "errors": [12, 3],
            "entity_name": ["Phone Validation", "Buyer 2"],
        }
    ),
    "timeouts_figure": pd.DataFrame(
        {
            "bucket": pd.date_range("2026-01-01", periods=3, freq="h", tz="UTC"),
            "timeouts": [0, 5, 1],
            "entity_name": ["x"] * 3,
        }
    ),
    "retry_figure": pd.DataFrame(
        {"retry_count": [1, 2], "retries": [10, 4], "success_rate": [0.7, 0.5]}
    ),
    "bubbleup_figure": pd.DataFrame(
        {
            "attribute": ["lead.source"],
            "value": ["A"],
            "odds_ratio": [12.0],
            "selection_share": [0.9],
            "baseline_share": [0.1],
        }
    ),
    "step_durations_figure": pd.DataFrame(
        {"step_name": ["a", "b"], "avg_duration": [100.0, 2500.0], "max_duration": [300, 9000]}
    ),
    "alerts_figure": pd.DataFrame(
        {
            "rule": ["quality"],
            "subject": ["all leads"],
            "window_start": [pd.Timestamp("2026-01-01", tz="UTC")],
            "value": [0.4],
        }
    ),
    "alert_episodes_figure": pd.DataFrame(
        {
            "rule": ["quality", "buyer_optimization"],
            "subject": ["all leads", "Horizon Direct"],
            "started": pd.to_datetime(["2026-01-01 10:00", "2026-01-01 12:00"], utc=True),
            "ended": pd.to_datetime(["2026-01-01 11:00", "2026-01-01 18:00"], utc=True),
            "severity": ["critical", "warning"],
        }
    ),
}


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_every_figure_builds_and_survives_empty_data(name):
    builder = getattr(charts, name)
    fig = builder(FRAMES[name])
    assert fig.data, name
    assert fig.layout.template.layout.font.family == charts.TEMPLATE.layout.font.family
    empty = builder(FRAMES[name].iloc[0:0])
    assert not empty.data and empty.layout.annotations
    json.loads(fig.to_json())  # serialisable for notebooks and reports


def test_rejection_bars_by_source_stack():
    df = pd.DataFrame(
        {"rejection_reason": ["x", "x", "y"], "source": ["A", "B", "A"], "rejections": [1, 2, 3]}
    )
    fig = charts.rejection_bars(df)
    assert fig.layout.barmode == "stack" and {t.name for t in fig.data} == {"A", "B"}


@pytest.mark.parametrize("suffix, magic", [("png", b"\x89PNG"), ("svg", b"<svg"), ("pdf", b"%PDF")])
def test_static_export(tmp_path, suffix, magic, browser):
    fig = charts.rejection_bars(FRAMES["rejection_bars"])
    path = charts.export(fig, tmp_path / f"chart.{suffix}")
    head = path.read_bytes()[:200]
    assert magic in head


def test_static_export_retries_a_tab_whose_page_had_not_loaded(tmp_path, monkeypatch):
    # on a busy machine kaleido may run a figure before its tab's page has loaded; the
    # export tries again (then restarts the browser) instead of failing the report
    export_module = sys.modules["workbench.charts.export"]

    calls, restarts = [], []

    def flaky(fig, path, **kw):
        calls.append(path)
        if len(calls) <= 2:
            raise RuntimeError("ReferenceError: kaleido_scopes is not defined")
        Path(path).write_bytes(b"\x89PNG fake")

    monkeypatch.setattr(go.Figure, "write_image", flaky)
    monkeypatch.setattr(export_module, "_ensure_server", lambda: None)
    monkeypatch.setattr(export_module, "_stop_server", lambda: restarts.append(1))
    path = charts.export(go.Figure(), tmp_path / "c.png")
    assert path.read_bytes().startswith(b"\x89PNG") and len(calls) == 3 and restarts == [1]

    def broken(fig, path, **kw):
        calls.append(path)
        raise ValueError("width must be positive")

    calls.clear()
    monkeypatch.setattr(go.Figure, "write_image", broken)
    with pytest.raises(ValueError, match="width"):  # any other error: at once, no retry
        charts.export(go.Figure(), tmp_path / "d.png")
    assert len(calls) == 1


def test_html_export_is_self_contained(tmp_path):
    path = charts.export(charts.buyer_figure(FRAMES["buyer_figure"]), tmp_path / "b.html")
    text = path.read_text()
    # plotly.js inlined, nothing fetched from the network: opens offline
    assert not re.search(r'<script[^>]+src="https?://', text) and len(text) > 1_000_000


def test_export_refuses_unknown_formats(tmp_path):
    with pytest.raises(charts.ChartError, match=r"\.png, \.svg, \.pdf or \.html"):
        charts.export(go.Figure(), tmp_path / "x.jpeg2000")


DATA_FILES = {
    "duckdb": b"\x00" * 8 + b"DUCK" + b"\x00" * 52,
    "parquet": b"PAR1" + b"\x00" * 60 + b"PAR1",
    "sqlite": b"SQLite format 3\x00" + b"\x00" * 48,
}


@pytest.mark.parametrize("kind", sorted(DATA_FILES))
@pytest.mark.parametrize("name", ["events.html", "chart.png"])
def test_export_never_overwrites_a_data_file(tmp_path, kind, name):
    from workbench.errors import UnsafePathError, WorkbenchError

    target = tmp_path / name
    target.write_bytes(DATA_FILES[kind])
    fig = charts.rejection_bars(FRAMES["rejection_bars"])
    with pytest.raises(
        UnsafePathError, match=f"(?i)refused to export a chart onto .*: it is a {kind}"
    ) as e:
        charts.export(fig, target)
    assert isinstance(e.value, WorkbenchError)
    with pytest.raises(UnsafePathError, match="refused to write a report"):
        charts.report([fig], target)
    assert target.read_bytes() == DATA_FILES[kind]


def test_export_overwrites_an_earlier_chart(tmp_path):
    target = tmp_path / "chart.html"
    target.write_text("<html>last week's chart</html>")
    charts.export(charts.rejection_bars(FRAMES["rejection_bars"]), target)
    assert "last week" not in target.read_text()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda p: charts.export(go.Figure(), p, format=5), "format=5"),
        (lambda p: charts.export(None, p), "takes a plotly Figure"),
        (lambda p: charts.export(go.Figure(), 5), "give the path of a file"),
        (lambda p: charts.export(go.Figure(), p.parent), "is a folder"),
        (lambda p: charts.timeline_figure(None), "timeline_figure takes the DataFrame"),
        (lambda p: charts.rejection_bars([1, 2]), "rejection_bars takes the DataFrame"),
    ],
)
def test_bad_arguments_are_chart_errors(tmp_path, call, message):
    with pytest.raises(charts.ChartError, match=message):
        call(tmp_path / "x.html")


def test_report_holds_figures_tables_and_text_once_offline(tmp_path):
    items = [
        ("Rejections", charts.rejection_bars(FRAMES["rejection_bars"])),
        FRAMES["rejection_bars"],
        "Phone validation lifts delivery by 25 points.",
        ("Buyers", charts.buyer_figure(FRAMES["buyer_figure"])),
    ]
    path = charts.report(items, tmp_path / "r.html", title="Weekly <review>")
    text = path.read_text()
    assert text.count("Plotly.newPlot") == 2
    assert text.count("plotly.js v") <= 2  # the library itself embedded once
    assert "<h2>Rejections</h2>" in text and "Invalid phone" in text and "25 points" in text
    assert "Weekly &lt;review&gt;" in text and not re.search(r'<script[^>]+src="https?://', text)
    with pytest.raises(charts.ChartError, match="report\\(\\) takes"):
        charts.report([42], tmp_path / "x.html")


def test_report_embeds_the_smallest_plotlyjs_that_draws_the_page(tmp_path):
    bars = [
        charts.rejection_bars(FRAMES["rejection_bars"]),
        charts.funnel_figure(FRAMES["funnel_figure"]),
    ]
    small = charts.report(bars, tmp_path / "bars.html")
    assert "plotly.js (basic)" in small.read_text()
    assert small.stat().st_size < 1_500_000  # bars and lines: the 1.2 MB bundle
    heat = charts.report([charts.hour_heatmap(FRAMES["hour_heatmap"])], tmp_path / "heat.html")
    assert "plotly.js (cartesian)" in heat.read_text()
    full = charts.report([charts.sankey_figure(FRAMES["sankey_figure"])], tmp_path / "s.html")
    assert "plotly.js (full)" in full.read_text()  # no partial bundle draws a sankey
    linked = charts.report(bars, tmp_path / "cdn.html", include_plotlyjs="cdn")
    text = linked.read_text()
    assert linked.stat().st_size < 50_000 and 'src="https://cdn.plot.ly/plotly-' in text
    with pytest.raises(charts.ChartError, match="include_plotlyjs"):
        charts.report(bars, tmp_path / "x.html", include_plotlyjs="inline")


def test_a_report_table_reads_as_a_person_writes_it_and_the_header_says_the_period(tmp_path):
    df = pd.DataFrame(
        {
            "source": ["Acme", "Beta"],
            "submitted": [12345, 7],
            "delivery_rate": [0.874729, float("nan")],
            "revenue": [1234.5, None],
            "last_seen": pd.to_datetime(["2026-01-05 10:11:12.345678", None], utc=True),
        }
    )
    df.attrs.update(
        title="Sources",
        date_basis="submission date",
        since=pd.Timestamp("2026-01-01", tz="UTC"),
        until=pd.Timestamp("2026-01-08", tz="UTC"),
    )
    text = charts.report([df], tmp_path / "t.html").read_text()
    assert "87.5%" in text and "$1,234.50" in text and "12,345" in text
    assert "2026-01-05 10:11:12<" in text and "nan" not in text.lower().replace("nano", "")
    assert "&lt;NA&gt;" not in text and "NaT" not in text and "0.874729" not in text
    assert "delivery rate" in text and "Sources (by submission date)" in text
    assert "Period: Jan 01 – Jan 07, 2026" in text and "by submission date" in text


def test_a_rate_over_too_few_leads_is_left_blank_not_coloured_as_an_extreme():
    hours = pd.DataFrame(
        {
            "recipient": ["Acme", "Acme", "Tiny"],
            "hour": [9, 10, 9],
            "accepted": [90, 0, 0],
            "decided": [100, 40, 2],  # Tiny: 0 of 2 is no 0% worth alarming anyone
            "acceptance_rate": [0.9, 0.0, 0.0],
        }
    )
    fig = charts.hour_heatmap(hours)
    z = pd.DataFrame(fig.data[0].z, index=fig.data[0].y)
    assert z.loc["Acme", 9] == 0.9 and z.loc["Acme", 10] == 0.0
    assert pd.isna(z.loc["Tiny", 9])
    assert "fewer than 10 decided" in fig.layout.annotations[0].text
    assert "decided" in fig.data[0].hovertemplate


def test_a_chart_says_its_period_basis_and_how_many_leads(store):
    import datetime as dt

    from workbench import analytics

    from .conftest import lead_events

    t0 = dt.datetime(2026, 3, 2, 15, tzinfo=dt.UTC)
    store.append(lead_events("lead_A", t0) + lead_events("lead_B", t0 + dt.timedelta(hours=1)))
    funnel = analytics.funnel_by_source(store, since="2026-03-01", until="2026-03-08")
    title = charts.funnel_figure(funnel).layout.title.text
    assert "Mar 01 – Mar 07, 2026" in title and "by submission date" in title
    assert "2 leads" in title
