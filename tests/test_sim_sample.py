"""The sample: its committed export is what the recorded parameters produce, it is small
enough to commit, and the sample store built from it carries the run's ground truth."""

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import workbench
from workbench.sim.runner import SCHEMA
from workbench.sim.sample_run import export_file, load_into, sample_run


@pytest.fixture(scope="module")
def regenerated(sample_week):
    return sample_week.table, sample_week.report


def test_recorded_parameters_are_about_20k_leads_over_a_week():
    run = sample_run()
    assert run.leads == 20_000 and run.days == 7 and len(run.incidents) >= 5
    assert run.end.isoformat() == "2026-11-27T12:00:00+00:00"


def test_export_is_small_enough_to_commit():
    assert export_file().stat().st_size <= 15_000_000


def test_resimulating_reproduces_the_export_exactly(regenerated):
    table, report = regenerated
    committed = pq.read_table(export_file())
    assert committed.num_rows == table.num_rows == report.events
    assert pc.all(pc.equal(committed["seq"], pa.array(range(1, table.num_rows + 1)))).as_py()
    for name in SCHEMA.names:
        mine, theirs = table[name], committed[name]
        if name == "timestamp":
            mine = mine.cast(pa.int64())
            theirs = theirs.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
        elif theirs.type != mine.type:
            theirs = theirs.cast(mine.type)
        assert mine.equals(theirs), f"column {name} differs from the committed export"


def test_load_into_builds_the_sample_store(regenerated):
    _, report = regenerated
    with workbench.open_store() as store:
        load_into(store)
        assert store.count() == report.events
        assert store.sql("SELECT count(*) AS n FROM quarantine").n[0] == 0
        inc = store.sql("SELECT incident_id, name, run_id FROM incidents")
        assert set(inc.incident_id) == {i.incident_id for i in report.incidents}
        assert (inc.run_id == report.run_id).all()
        steps = store.sql("SELECT count(*) AS n FROM steps").n[0]
        assert steps == 18
        named = store.sql(
            "SELECT count(*) AS n FROM events WHERE step_name IS NULL OR entity_name IS NULL "
            "AND type NOT IN ('flow.completed')"
        ).n[0]
        assert named == 0
        assert store.verify().ok
