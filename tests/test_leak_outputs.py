"""No output of the layers above a masked Session shows raw PII: investigations, charts
(their JSON, as a notebook stores it), HTML reports, and the committed notebooks.

Uses the access layer's leak helpers (random leads with PII everywhere the guide puts
it) and, for notebooks, the raw PII of the sample store itself.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings

import workbench
from workbench import alerts, analytics, charts, investigate, sample

from .test_access_leak import (
    LEAD_EVENTS,
    _id,
    assert_no_pii,
    frame_text,
    lead_with_pii,
    pii_records,
)

T0 = dt.datetime(2027, 7, 1, tzinfo=dt.UTC)
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = workbench.open_store(sample.build(tmp_path_factory.mktemp("leak2") / "s.duckdb"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def session(store):
    with workbench.connect(store, user="ana", role="analyst") as s:
        yield s


_N = [0]


@settings(
    max_examples=5,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(p=pii_records(), spouse=pii_records())
def test_investigations_charts_and_reports_hold_no_raw_pii(
    store, session, tmp_path_factory, p, spouse
):
    lead = _id("lead_leak2")
    at = T0 + dt.timedelta(hours=_N[0])
    _N[0] += 1
    assert store.append(lead_with_pii(p, lead, at, spouse)).stored == LEAD_EVENTS
    other = session.sql(
        "SELECT lead_id FROM lead_summary WHERE outcome = 'delivered' LIMIT 1"
    ).lead_id[0]
    diagnosis = investigate.explain(session, lead)
    timeline = session.timeline(lead)
    figure = charts.timeline_figure(timeline)
    ranked = investigate.bubbleup(session, [lead], [other], min_leads=1)
    outputs = {
        "explain": str(diagnosis),
        "explain html": diagnosis._repr_html_(),
        "diff_snapshots": frame_text(investigate.diff_snapshots(session, lead)),
        "provenance": frame_text(investigate.provenance(session, lead, "email")),
        "compare_leads": frame_text(investigate.compare_leads(session, lead, other)),
        "bubbleup": frame_text(ranked),
        "timeline chart json": figure.to_json(),
        "bubbleup chart json": charts.bubbleup_figure(ranked).to_json(),
        "alerts": repr(
            alerts.alerts(
                session, since=at - dt.timedelta(hours=1), until=at + dt.timedelta(hours=1)
            )
        ),
    }
    path = charts.report(
        [
            ("Timeline", figure),
            ("Snapshots", investigate.diff_snapshots(session, lead)),
            str(diagnosis),
        ],
        tmp_path_factory.mktemp("report") / "r.html",
    )
    # the report embeds plotly.js itself (hundreds of kB of library code whose literals
    # can look like anything); the figures and tables around it are what must be clean
    outputs["html report"] = re.sub(
        r"<script[^>]*>.*?</script>",
        lambda m: "" if len(m.group()) > 100_000 else m.group(),
        path.read_text(),
        flags=re.S,
    )
    for where, text in outputs.items():
        assert_no_pii(text, [p, spouse], where)


def test_analytics_results_hold_no_lead_data(session):
    # the analyses group by steps, sources, buyers and reasons: no lead field shows
    for df in (
        analytics.rejection_analysis(session, by_source=True),
        analytics.buyer_behaviour(session),
        analytics.lead_paths(session),
        analytics.errors_by_type(session),
    ):
        text = frame_text(df)
        assert not re.search(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z]", text)
        assert not re.search(r"(?<![\d.])\d{7,}(?![\d.])", text)


def pii_of(store) -> dict[str, set[str]]:
    """The raw emails, phones, SSNs and names of a store's leads (read as the store's
    owner, not through a Session)."""
    df = store.sql(
        "SELECT DISTINCT lead_snapshot->>'email' AS email, lead_snapshot->>'phone' AS phone, "
        "lead_snapshot->>'ssn' AS ssn, lead_snapshot->>'first_name' AS first, "
        "lead_snapshot->>'last_name' AS last FROM events WHERE type = 'source.submitted'"
    )
    digits = lambda v: re.sub(r"\D", "", v or "")  # noqa: E731
    return {
        "email local part": {
            e.split("@")[0] for e in df.email.dropna() if "@" in e and len(e.split("@")[0]) > 2
        },
        "phone": {digits(v) for v in df.phone.dropna() if len(digits(v)) >= 7},
        "ssn": {digits(v) for v in df.ssn.dropna() if len(digits(v)) == 9},
        "full name": {f"{a} {b}" for a, b in zip(df["first"], df["last"], strict=True) if a and b},
    }


def _sample_pii() -> dict[str, set[str]]:
    with workbench.open_store(sample.build(), read_only=True) as s:
        return pii_of(s)


def assert_text_holds_none_of(text: str, pii: dict[str, set[str]], where: str) -> None:
    """No raw value of ``pii`` (or a revealing part of one) in ``text``."""
    # event and lead ids (24 hex), widget model ids (32 hex) and object addresses are
    # tokens whose digit runs are not lead data
    text = re.sub(r"(?<![0-9a-f])(?:[0-9a-f]{24}|[0-9a-f]{32})(?![0-9a-f])", "<id>", text)
    text = re.sub(r"0x[0-9a-f]{6,}", "0xADDR", text)
    digits_runs = set(re.findall(r"\d{7,}", text))
    for kind, values in pii.items():
        if kind == "phone":
            leaked = {
                v
                for v in values
                if any(v[i : i + 7] in run for run in digits_runs for i in range(len(v) - 6))
            }
        elif kind == "ssn":  # the first five digits, written as they are in an SSN
            leaked = {v for v in values if v in text or f"{v[:3]}-{v[3:5]}-" in text}
        else:
            leaked = {v for v in values if v in text}
        assert not leaked, f"{where} shows raw {kind}: {sorted(leaked)[:3]}"


def outputs_text(path: Path) -> str:
    nb = json.loads(path.read_text())
    return json.dumps([c.get("outputs", []) for c in nb["cells"]])


@pytest.mark.parametrize("notebook", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_committed_notebook_outputs_hold_no_raw_pii(notebook):
    assert_text_holds_none_of(outputs_text(NOTEBOOKS / notebook), _sample_pii(), notebook)


# --------------------------------------------------------------------------- widgets


def widget_state_text(since: set, messages: list) -> str:
    """What a browser got from the widgets created after ``since`` (model ids): every
    synced trait (text, HTML, table cells, options, tooltips) and every message sent
    (figure traces travel as messages only), but the front-end code anywidgets ship
    (plotly.js: library literals, the same for everyone)."""
    from ipywidgets.widgets.widget import _instances

    def plain(o):
        return o.tolist() if hasattr(o, "tolist") else str(o)

    states = [
        {k: v for k, v in w.get_state().items() if k not in ("_esm", "_css")}
        for key, w in list(_instances.items())
        if key not in since
    ]
    sent = [  # an echo returns what the person typed to their own browser: not read
        {k: v for k, v in m.get("state", {}).items() if k not in ("_esm", "_css")}
        for m in messages
        if m.get("method") != "echo_update"
    ]
    return json.dumps([states, sent], default=plain)


@settings(
    max_examples=3,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(p=pii_records(), spouse=pii_records())
def test_widgets_hold_no_raw_pii_after_a_session_of_clicks(store, widget_messages, p, spouse):
    from ipywidgets.widgets.widget import _instances

    from workbench.widgets import AlertMonitor, Dashboard, EventExplorer, LeadTimeline, LiveFeed

    lead = _id("lead_leakw")
    at = T0 + dt.timedelta(days=30, hours=_N[0])
    _N[0] += 1
    events = lead_with_pii(p, lead, at, spouse)
    assert store.append(events).stored == len(events)
    before = set(_instances)
    seen = []  # the widget state after every interaction: a leak may be overwritten later

    def look():
        seen.append(widget_state_text(before, widget_messages))
        widget_messages.clear()

    with workbench.connect(store, user="tess", role="trainee") as tess:
        view = LeadTimeline(tess)
        # typed in the search box: the browser sends the value, the kernel takes it
        view.search.set_state({"value": p.email})
        assert view.lead_id == lead or lead in view.matches.options
        view.show(lead)
        look()
        for typed in (p.phone_formatted, p.full_name, "someone.else.entirely@example.net"):
            view.find(typed)
            look()
        view.show(lead)
        for seq in view.timeline.seq:
            view.select(int(seq))
            look()
        explorer = EventExplorer(tess, leads=[lead])
        explorer.field.set_state({"value": f"email = {p.email}"})  # typed as a filter
        look()
        explorer.set_filters(where={"first_name": p.first_name})
        look()
        explorer.set_filters(where=(), since=at - dt.timedelta(hours=1))
        explorer.table.selected = 0
        explorer.compare()
        look()
        board = Dashboard(tess, since=at - dt.timedelta(days=1), until=at + dt.timedelta(days=1))
        board.set_sources([board.source_picker.options[0]] if board.source_picker.options else [])
        look()
        monitor = AlertMonitor(
            tess, since=at - dt.timedelta(days=1), until=at + dt.timedelta(hours=1)
        )
        if monitor.alerts:
            monitor.table.selected = 0
        LiveFeed(tess).refresh()
        look()
    text = "\n".join(seen)
    assert lead in text  # the walk saw the lead's widgets
    assert_no_pii(text, [p, spouse], "widget state")
