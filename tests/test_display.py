"""Results show as compact HTML in a notebook and stay readable as text in a terminal;
analysis tables are formatted for reading without changing their numbers."""

import datetime as dt

import numpy as np
import pandas as pd

import workbench
from workbench import alerts, investigate
from workbench.analysis.alerts import AlertList

from .conftest import lead_events, make_event


def test_style_formats_rates_money_and_blanks_without_changing_the_frame():
    df = pd.DataFrame(
        {
            "source": ["Acme", "Budget"],
            "submitted": [1200, 3],
            "acceptance_rate": [0.874729, np.nan],
            "revenue": [12345.5, pd.NA],
            "avg_duration_ms": [812.4, 15.0],
        }
    )
    df.attrs["title"] = "Source performance"
    before = df.copy()
    html = workbench.style(df).to_html()
    for shown in (
        "87.5%",
        "$12,345.50",
        "1,200",
        "812 ms",
        "acceptance rate",
        "Source performance",
    ):
        assert shown in html, shown
    for raw in ("0.874729", "nan", "&lt;NA&gt;", "<NA>"):
        assert raw not in html, raw
    pd.testing.assert_frame_equal(df, before)  # users still compute on the numbers


def test_reports_grants_alerts_and_diagnoses_render_as_html(tmp_path):
    at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    with workbench.open_store(tmp_path / "s.duckdb") as store:
        report = store.append(
            [*lead_events("lead_A", at), make_event("no.such.type", lead_id="lead_A")]
        )
        html = report._repr_html_()
        assert "Ingest" in html and "quarantined" in html and "no.such.type" in html
        assert "received" in str(report)  # the terminal's view stays
        assert "Verified" in store.verify()._repr_html_()
        with workbench.connect(store, user="cora", role="compliance") as s:
            grant = s.unmask(purpose="ticket 4711: customer asked for their data", minutes=5)
            assert "ticket 4711" in grant._repr_html_() and "active" in grant._repr_html_()
        with workbench.connect(store, user="adam", role="admin") as admin:
            assert "Audit trail intact" in admin.verify_audit()._repr_html_()
        d = investigate.explain(store, "lead_A")
        assert d.verdict.split(":")[0] in d._repr_html_()
    assert "No alert fired" in AlertList()._repr_html_() and str(AlertList()) == "no alert fired"


def test_an_alert_list_is_still_a_list_and_shows_as_a_table(sample_week):
    fired = alerts.alerts(sample_week.store, evidence=False)
    assert isinstance(fired, list) and isinstance(fired, AlertList) and fired
    html = fired._repr_html_()
    assert f"{len(fired)} alerts fired" in html and "severity" in html
    assert fired[0].subject in html and "Alert(" not in html
    one = fired[0]._repr_html_()
    assert one.count("→") == len(fired[0].actions)


def test_an_import_report_is_a_card_not_a_wall_of_text(tmp_path):
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures" / "api"
    with workbench.open_store(tmp_path / "i.duckdb") as store:
        report = workbench.import_events(fixtures, store=store)
    html = report._repr_html_()
    assert "Import of" in html and "how the export was mapped" in html and "<pre" not in html


def test_style_escapes_text_from_sources_and_buyers():
    df = pd.DataFrame({"rejection_reason": ['<img src=x onerror="alert(1)">'], "rejections": [3]})
    df.attrs["title"] = "<b>Rejections</b>"
    html = workbench.style(df).to_html()
    assert "<img" not in html and "&lt;img" in html
    assert "<b>Rejections" not in html


def test_money_keeps_a_fraction_of_a_cent_and_profit_per_lead_is_money():
    from workbench.display import _format_for, money

    assert money(0.005) == "$0.005" and money(82.505) == "$82.50" or money(82.505) == "$82.51"
    assert money(-30) == "-$30.00" and money(None) == ""
    assert _format_for("profit_per_lead")(1.5) == "$1.50"
