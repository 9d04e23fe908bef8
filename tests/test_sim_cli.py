"""The simulate and incidents subcommands."""

import pytest

import workbench
from workbench.cli import main


def test_simulate_into_a_store(tmp_path, capsys):
    store = tmp_path / "sim.duckdb"
    args = [
        "simulate",
        "--leads",
        "800",
        "--days",
        "1",
        "--seed",
        "3",
        "--store",
        str(store),
        "--end",
        "2026-11-27T12:00:00Z",
        "--no-progress",
        "--incident",
        "nine_digit_phones:source=LeadRiver,rate=0.9,start=2h,duration=20h",
        "--incident",
        "enhancement_outage",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "leads                 800" in out and "quarantined 0" in out
    assert "incident nine_digit_phones on LeadRiver" in out
    with workbench.open_store(store, read_only=True) as s:
        assert s.sql("SELECT count(*) AS n FROM incidents").n[0] == 2
        assert s.sql("SELECT count(DISTINCT lead_id) AS n FROM events").n[0] == 800


def test_incidents_lists_names_parameters_and_defaults(capsys):
    assert main(["incidents"]) == 0
    out = capsys.readouterr().out
    for name in ("nine_digit_phones", "enhancement_timeouts", "buyer_acceptance_drop"):
        assert name in out
    assert "rate=0.8" in out and "hours=13-17" in out and "plants:" in out


def test_bad_input_says_what_is_wrong_and_returns_2(tmp_path, capsys):
    store = str(tmp_path / "s.duckdb")
    assert main(["simulate", "--store", store, "--incident", "no_such"]) == 2
    assert "unknown incident 'no_such'" in capsys.readouterr().err
    assert main(["simulate", "--store", store, "--incident", "nine_digit_phones:rate=7"]) == 2
    assert "not a probability" in capsys.readouterr().err
    bad_flow = tmp_path / "flow.yaml"
    bad_flow.write_text("flow: {name: x}\n")
    assert main(["simulate", "--store", store, "--flow", str(bad_flow)]) == 2
    err = capsys.readouterr().err
    assert "flow.yaml" in err and "verticals" in err
    assert main(["simulate", "--store", store, "--leads", "-5"]) == 2
    assert main(["simulate", "--store", store, "--end", "tomorrow"]) == 2
    assert "ISO-8601" in capsys.readouterr().err


@pytest.mark.parametrize("days", ["1e9", "inf", "nan", "0", "3661"])
def test_days_outside_the_calendar_name_the_flag_and_the_range(tmp_path, capsys, days):
    store = tmp_path / "s.duckdb"
    assert main(["simulate", "--store", str(store), "--leads", "10", "--days", days]) == 2
    err = capsys.readouterr().err
    assert "--days" in err and "at most 3,660" in err and "internal error" not in err
    assert not store.exists()


def test_a_run_past_the_calendar_is_refused_clearly():
    from workbench.sim import FlowRunner

    with pytest.raises(ValueError, match="at most 3,660"):
        FlowRunner(leads=10, days=1e9)
    with pytest.raises(ValueError, match="outside the calendar"):
        FlowRunner(leads=10, days=7, end="0001-01-03")
