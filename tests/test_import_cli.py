"""`workbench import`: the report it prints, and clear errors with exit status 2."""

from pathlib import Path

import workbench
from workbench.cli import main

FIXTURES = Path(__file__).parent / "fixtures"


def test_import_prints_the_mapping_and_ingest_reports(tmp_path, capsys):
    store = tmp_path / "s.duckdb"
    args = ["import", str(FIXTURES / "api"), "--store", str(store), "--no-progress"]
    assert main([*args, "--flow-config", str(FIXTURES / "flow_config.yaml")]) == 0
    out = capsys.readouterr().out
    assert "objects read             25   (2 repeated on overlapping pages" in out
    assert "recipient/failure  -> recipient.failed/failure" in out
    assert 'derived events (metadata "derived": true)' in out
    assert "unknown step type 'webhook'" in out
    assert "stored               32" in out and "quarantined           1" in out
    config = ["--flow-config", str(FIXTURES / "flow_config.yaml")]
    assert main([*args, *config]) == 0
    assert "duplicates           32" in capsys.readouterr().out
    # without the flow config the same objects map to other events: kept aside, not lost
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "stored                0" in out and "with other content" in out
    with workbench.open_store(store, read_only=True) as s:
        assert s.count() == 32


def test_forced_format_and_dotted(tmp_path, capsys):
    store = tmp_path / "s.duckdb"
    path = FIXTURES / "dotted" / "events.jsonl"
    assert main(["import", str(path), "--store", str(store), "--format", "dotted"]) == 0
    out = capsys.readouterr().out
    assert "events.jsonl" in out and "dotted events" in out and "unreadable            2" in out


def test_bad_input_exits_2_with_a_message(tmp_path, capsys):
    store = str(tmp_path / "s.duckdb")
    assert main(["import", str(tmp_path / "nope.json"), "--store", store]) == 2
    assert "nothing to import at" in capsys.readouterr().err
    assert main(["import", str(FIXTURES / "unknown_shape.json"), "--store", store]) == 2
    err = capsys.readouterr().err
    assert "cannot tell the shape of unknown_shape.json" in err and "--format" in err
    bad = tmp_path / "flow.yaml"
    bad.write_text("steps:\n  - {id: s1, name: Buyer, kind: buyer}\n")
    assert main(["import", str(FIXTURES / "api"), "--store", store, "--flow-config", str(bad)]) == 2
    assert "steps[0].kind is 'buyer'" in capsys.readouterr().err
    assert not (tmp_path / "s.duckdb").exists()  # nothing was created for bad input


def test_damaged_files_are_reported_without_a_traceback(tmp_path, capsys):
    import gzip

    lines = (FIXTURES / "dotted" / "events.jsonl").read_bytes()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cut.jsonl.gz").write_bytes(gzip.compress(lines * 50)[:-200])
    (tmp_path / "in" / "plain.jsonl.gz").write_bytes(lines)
    (tmp_path / "in" / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    store = str(tmp_path / "s.duckdb")
    assert main(["import", str(tmp_path / "in"), "--store", store, "--format", "dotted"]) == 0
    out = capsys.readouterr()
    assert "ends early" in out.out and "is not a gzip file" in out.out
    assert "Traceback" not in out.err and "internal error" not in out.err
