"""Wrong arguments get a workbench error that says what was wrong, and leave nothing
behind (found by the adversarial run)."""

import datetime as dt

import pytest

import workbench
from workbench import investigate
from workbench.errors import FieldNotFoundError, InputError, WorkbenchError

from .conftest import lead_events


def test_an_audit_that_is_not_a_path_is_refused_and_no_file_appears(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with workbench.open_store() as store:
        for bad in (5, True, [], object(), ""):
            with pytest.raises(InputError, match="audit="):
                workbench.connect(store, user="ana", audit=bad)
    assert list(tmp_path.iterdir()) == []


def test_a_field_a_lead_never_had_is_a_workbench_error(tmp_path):
    at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with workbench.open_store() as store:
        store.append(lead_events("lead_A", at))
        with pytest.raises(FieldNotFoundError, match="never has a field 'shoe_size'") as e:
            investigate.provenance(store, "lead_A", "shoe_size")
    assert isinstance(e.value, WorkbenchError) and isinstance(e.value, KeyError)
    assert str(e.value).startswith("lead lead_A never has")
