import datetime as dt
import json

import pytest

import workbench
from workbench.cli import main

from .conftest import lead_events

T0 = dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)


@pytest.fixture
def events_file(tmp_path):
    path = tmp_path / "events.jsonl"
    rows = lead_events("lead_A", T0) + lead_events("lead_B", T0, delivered=False)
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{oops\n")
    return path


def test_ingest_prints_the_report(events_file, tmp_path, capsys):
    store = tmp_path / "s.duckdb"
    assert main(["ingest", str(events_file), "--store", str(store), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "received             13" in out and "stored               12" in out
    assert "malformed JSON line" in out
    main(["ingest", str(events_file), "--store", str(store), "--no-progress"])
    assert "duplicates           12" in capsys.readouterr().out


def test_timeline_verify_export_sql(events_file, tmp_path, capsys):
    store = tmp_path / "s.duckdb"
    main(["ingest", str(events_file), "--store", str(store), "--no-progress"])
    capsys.readouterr()
    assert main(["timeline", "lead_B", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert (
        out.index("source.submitted") < out.index("recipient.failed") < out.index("flow.completed")
    )
    assert main(["verify", "--store", str(store)]) == 0
    assert "hash chain intact" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "x.parquet"), "--store", str(store)]) == 0
    assert "wrote 12 events" in capsys.readouterr().out
    assert main(["sql", "SELECT count(*) AS n FROM events", "--store", str(store)]) == 0
    assert "12" in capsys.readouterr().out


def test_errors_are_messages_with_exit_codes(tmp_path, capsys):
    store = tmp_path / "s.duckdb"
    assert main(["timeline", "lead_x", "--store", str(store)]) == 2
    assert "no store at" in capsys.readouterr().err
    with workbench.open_store(store):
        pass
    assert main(["timeline", "lead_x", "--store", str(store)]) == 1
    assert "no events for lead 'lead_x'" in capsys.readouterr().err
    assert main(["sql", "DELETE FROM events", "--store", str(store)]) == 2
    assert "refused" in capsys.readouterr().err


def test_verify_exit_code_on_tampering(events_file, tmp_path, capsys):
    import duckdb

    store = tmp_path / "s.duckdb"
    main(["ingest", str(events_file), "--store", str(store), "--no-progress"])
    duckdb.connect(str(store)).execute("UPDATE events SET duration_ms = 0 WHERE seq = 3").close()
    assert main(["verify", "--store", str(store)]) == 1
    assert "TAMPERED at seq 3" in capsys.readouterr().out


def test_archive_and_restore(events_file, tmp_path, capsys):
    store = tmp_path / "s.duckdb"
    main(["ingest", str(events_file), "--store", str(store), "--no-progress"])
    assert main(["archive", "--store", str(store), "--older-than", "1 day", "--tier", "cold"]) == 0
    assert "moved 12 events to cold" in capsys.readouterr().out
    assert main(["restore", "--store", str(store)]) == 0
    assert "hot/warm/cold now 0/12/0" in capsys.readouterr().out
