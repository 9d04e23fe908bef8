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


# --------------------------------------------------------------------------- hardening

RAW_NAME, RAW_EMAIL = "John", "john@example.com"  # conftest.make_event's snapshot


def _audit(store):
    from workbench.access import connect

    with connect(store, user="adam", role="admin") as admin:
        return admin.audit()


def test_shell_reads_are_masked_and_audited(events_file, tmp_path, capsys):
    store = tmp_path / "s.duckdb"
    main(["ingest", str(events_file), "--store", str(store), "--no-progress"])
    capsys.readouterr()
    query = "SELECT lead_snapshot, metadata FROM events"
    assert main(["sql", query, "--store", str(store), "--all"]) == 0
    out = capsys.readouterr().out
    assert RAW_EMAIL not in out and "j***@example.com" in out
    assert main(["timeline", "lead_A", "--store", str(store)]) == 0
    assert main(["export", str(tmp_path / "m.jsonl"), "--store", str(store)]) == 0
    capsys.readouterr()
    exported = (tmp_path / "m.jsonl").read_text()
    assert RAW_EMAIL not in exported and "j***@example.com" in exported
    trail = _audit(store)
    cli = trail[trail.detail.str.contains("workbench ", na=False)]
    assert set(cli.user) == {"ana"} and "(OS user" in cli.detail.iloc[0]
    assert {"sql", "timeline", "export"} <= set(trail.action)


def test_compliance_unmasks_with_a_purpose_on_the_record(events_file, tmp_path, capsys):
    store = tmp_path / "s.duckdb"
    main(["ingest", str(events_file), "--store", str(store), "--no-progress"])
    capsys.readouterr()
    args = ["sql", "SELECT lead_snapshot FROM events LIMIT 1", "--store", str(store)]
    assert main([*args, "--user", "tess", "--purpose", "ticket 4711: data request"]) == 2
    assert "may not unmask" in capsys.readouterr().err
    assert main([*args, "--user", "cora", "--purpose", "ticket 4711: data request"]) == 0
    assert RAW_EMAIL in capsys.readouterr().out
    assert main([*args, "--user", "cora", "--purpose", "\u200b" * 20]) == 2
    assert "--purpose" in capsys.readouterr().err
    trail = _audit(store)
    raw = trail[(trail.user == "cora") & ~trail.masked]
    assert "ticket 4711" in raw.purpose.dropna().iloc[0]


def test_workbench_user_sets_the_reader(events_file, tmp_path, capsys, monkeypatch):
    store = tmp_path / "s.duckdb"
    main(["ingest", str(events_file), "--store", str(store), "--no-progress"])
    monkeypatch.setenv("WORKBENCH_USER", "tess")
    assert main(["export", str(tmp_path / "x.parquet"), "--store", str(store)]) == 2
    assert "may not export" in capsys.readouterr().err
    monkeypatch.setenv("WORKBENCH_USER", "nobody")
    assert main(["sql", "SELECT 1", "--store", str(store)]) == 2
    assert "unknown user 'nobody'" in capsys.readouterr().err


def test_sql_prints_the_first_rows_unless_asked(events_file, tmp_path, capsys):
    store = tmp_path / "s.duckdb"
    main(["ingest", str(events_file), "--store", str(store), "--no-progress"])
    capsys.readouterr()
    q = "SELECT * FROM range(100) t(i)"
    assert main(["sql", q, "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "... 60 more rows" in out and len(out.splitlines()) < 50
    assert main(["sql", q, "--store", str(store), "--all"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 101
    assert main(["sql", q, "--store", str(store), "--output", str(tmp_path / "r.csv")]) == 0
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 101


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("workbench ")


@pytest.mark.parametrize("command", [["archive"], ["restore"], ["verify"], ["export", "x.parquet"]])
def test_commands_on_a_mistyped_store_create_nothing(tmp_path, capsys, command):
    store = tmp_path / "typo.duckdb"
    assert main([*command, "--store", str(store)]) == 2
    assert "no store at" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("what", ["missing.jsonl", "a_folder"])
def test_ingest_of_nothing_leaves_no_store(tmp_path, capsys, what):
    (tmp_path / "a_folder").mkdir()
    store = tmp_path / "s.duckdb"
    assert main(["ingest", str(tmp_path / what), "--store", str(store)]) == 2
    assert not store.exists()
    assert "Traceback" not in capsys.readouterr().err


def test_broken_inputs_are_one_line_errors(tmp_path, capsys):
    store = tmp_path / "s.duckdb"
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    assert main(["ingest", str(bad), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.parquet" in err and "Traceback" not in err
    assert main(["archive", "--store", str(store), "--older-than", "a while"]) == 2
    err = capsys.readouterr().err
    assert "--older-than" in err and "older_than=" not in err


def test_export_onto_the_store_or_a_folder_is_refused(events_file, tmp_path, capsys):
    store = tmp_path / "s.duckdb"
    main(["ingest", str(events_file), "--store", str(store), "--no-progress"])
    before = store.read_bytes()
    assert main(["export", str(store), "--store", str(store)]) == 2
    assert "file of the store" in capsys.readouterr().err
    assert main(["export", str(tmp_path), "--store", str(store)]) == 2
    assert "folder" in capsys.readouterr().err
    assert store.read_bytes() == before


def test_verify_prints_a_head_to_keep_and_checks_it(events_file, tmp_path, capsys):
    store = tmp_path / "s.duckdb"
    main(["ingest", str(events_file), "--store", str(store), "--no-progress"])
    capsys.readouterr()
    assert main(["verify", "--store", str(store)]) == 0
    head = capsys.readouterr().out.split("head ")[1].split()[0]
    assert main(["verify", "--store", str(store), "--expect", head]) == 0
    assert main(["verify", "--store", str(store), "--expect", "f" * 64]) == 1
    assert "not in this store's seal chain" in capsys.readouterr().out


@pytest.fixture
def archived_store(events_file, tmp_path, capsys):
    """A store whose events sit in a warm-tier Parquet file, with an audit trail."""
    store = tmp_path / "s.duckdb"
    main(["ingest", str(events_file), "--store", str(store), "--no-progress"])
    main(["archive", "--store", str(store), "--older-than", "1 day"])
    main(["sql", "SELECT 1", "--store", str(store)])
    capsys.readouterr()
    return store


def _store_files(store):
    """The bytes of the store and its tier files (the audit trail grows with every read)."""
    files = [store, *(store.parent / (store.name + ".tiers")).rglob("*")]
    return {f: f.read_bytes() for f in files if f.is_file()}


@pytest.mark.parametrize(
    "spelling",
    [
        "tier",
        "tier/",
        "relative tier",
        "tier via ..",
        "tier via symlink",
        "new file in the tiers folder",
        "tiers folder via symlink",
        "store",
        "store via hard link",
        "store in other case",
        "audit trail",
        "tiers folder in other case",
    ],
)
def test_sql_output_never_writes_onto_a_file_of_the_store(
    archived_store, tmp_path, capsys, monkeypatch, spelling
):
    store = archived_store
    tiers = store.parent / (store.name + ".tiers")
    tier = next(tiers.rglob("*.parquet"))
    (tmp_path / "link.parquet").symlink_to(tier)
    (tmp_path / "tiers_link").symlink_to(tiers)
    (tmp_path / "hard.parquet").hardlink_to(store)
    monkeypatch.chdir(tmp_path)
    target = {
        "tier": str(tier),
        "tier/": f"{tier}/",
        "relative tier": str(tier.relative_to(tmp_path)),
        "tier via ..": str(tmp_path / ".." / tmp_path.name / tier.relative_to(tmp_path)),
        "tier via symlink": str(tmp_path / "link.parquet"),
        "new file in the tiers folder": str(tiers / "warm" / "new.parquet"),
        "tiers folder via symlink": str(tmp_path / "tiers_link" / "warm" / "x.csv"),
        "store": str(store),
        "store via hard link": str(tmp_path / "hard.parquet"),
        "store in other case": str(store.with_name(store.name.upper())),
        "audit trail": str(store) + ".audit.sqlite",
        "tiers folder in other case": str(tiers.with_name(tiers.name.upper()) / "x.csv"),
    }[spelling]
    before = _store_files(store)
    args = ["sql", "SELECT lead_id FROM events", "--store", str(store), "--output", target]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "refused to write --output" in err and "file of the store" in err
    assert _store_files(store) == before
    assert not (tiers / "warm" / "new.parquet").exists()
    with workbench.open_store(store, read_only=True) as s:
        assert s.verify().ok
    from workbench.access import connect

    with connect(store, user="adam", role="admin") as admin:
        assert admin.verify_audit().ok


def test_sql_output_replaces_an_ordinary_file(archived_store, tmp_path, capsys):
    out = tmp_path / "out" / "leads.parquet"
    out.parent.mkdir()
    out.write_text("old")
    args = ["sql", "SELECT lead_id FROM events", "--store", str(archived_store)]
    assert main([*args, "--output", str(out)]) == 0
    assert "wrote 12 rows" in capsys.readouterr().out
    import pandas as pd

    assert len(pd.read_parquet(out)) == 12
    assert [p.name for p in out.parent.iterdir()] == ["leads.parquet"]
    assert main([*args, "--output", str(tmp_path / "x.xlsx")]) == 2
    assert "use a .csv, .parquet or .jsonl name" in capsys.readouterr().err


@pytest.mark.parametrize("span", ["99999999999 days", "800000 days"])
def test_archive_older_than_before_the_calendar_names_the_flag(events_file, tmp_path, capsys, span):
    store = tmp_path / "s.duckdb"
    main(["ingest", str(events_file), "--store", str(store), "--no-progress"])
    capsys.readouterr()
    assert main(["archive", "--store", str(store), "--older-than", span]) == 2
    err = capsys.readouterr().err
    assert "--older-than" in err and "reaches before the year 1" in err and "days" in err
    assert "internal error" not in err
