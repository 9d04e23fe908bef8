"""The committed import fixtures are what tests/fixtures/build_fixtures.py writes."""

import importlib.util
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def test_fixtures_are_up_to_date(tmp_path):
    spec = importlib.util.spec_from_file_location("build_fixtures", FIXTURES / "build_fixtures.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    written = builder.build(tmp_path)
    assert written
    for p in written:
        rel = p.relative_to(tmp_path)
        assert (FIXTURES / rel).read_text() == p.read_text(), (
            f"{rel} differs: run .venv/bin/python tests/fixtures/build_fixtures.py"
        )
