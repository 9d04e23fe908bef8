import datetime as dt
import json

import pytest

import workbench

from .conftest import lead_events, make_event

T0 = dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)
RECORD = [
    "event_id",
    "type",
    "timestamp",
    "lead_id",
    "flow_id",
    "entity_id",
    "step_id",
    "outcome",
    "duration_ms",
    "metadata",
    "lead_snapshot",
]


def records(store):
    df = store.events()
    return df[RECORD].to_dict("records")


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_export_import_round_trips_every_event(tmp_path, suffix):
    with workbench.open_store(tmp_path / "a.duckdb") as a:
        for i in range(3):
            a.append(lead_events(f"lead_{i}", T0 + dt.timedelta(minutes=i)))
        a.append([make_event(lead_snapshot=None, duration_ms=None, entity_id=None, at=T0)])
        a.append(
            [make_event(metadata=dict(make_event()["metadata"], note='ünïcode ✓ "quoted"'), at=T0)]
        )
        n = a.export(tmp_path / f"all.{suffix}")
        assert n == 20
        original = records(a)
        chain = a._con.rows("SELECT chain_hash FROM events ORDER BY seq")
    with workbench.open_store(tmp_path / "b.duckdb") as b:
        r = b.append(tmp_path / f"all.{suffix}")
        assert (r.stored, r.quarantined) == (20, 0)
        assert records(b) == original
        assert b.verify().ok
        if suffix == "parquet":  # JSON text kept byte for byte: the very same chain
            assert b._con.rows("SELECT chain_hash FROM events ORDER BY seq") == chain


def test_export_includes_archived_tiers(tmp_path):
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    with workbench.open_store(tmp_path / "a.duckdb") as a:
        a.append(lead_events("lead_old", now - dt.timedelta(days=100)))
        a.append(lead_events("lead_new", now - dt.timedelta(days=1)))
        a.archive(older_than="90 days", tier="cold", now=now)
        assert a.export(tmp_path / "x.jsonl") == 12
    lines = (tmp_path / "x.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["lead_id"] == "lead_old" and first["timestamp"].endswith("Z")
    assert isinstance(first["metadata"], dict)


def test_export_format_must_be_known(store, tmp_path):
    with pytest.raises(workbench.StoreError, match="export format"):
        store.export(tmp_path / "x.csv")
