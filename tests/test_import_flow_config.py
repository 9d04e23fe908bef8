"""The --flow-config file: its format, its errors, what it registers."""

import json
from pathlib import Path

import pytest

import workbench
from workbench.importer import FlowConfigError, load_flow_config

FIXTURES = Path(__file__).parent / "fixtures"


def test_the_fixture_config_loads():
    cfg = load_flow_config(FIXTURES / "flow_config.yaml")
    assert cfg.flow_name == "Solar leads"
    assert [s.kind for s in cfg.steps] == [
        "enhancement",
        "enhancement",
        "filter",
        "recipient",
        "recipient",
    ]
    assert cfg.step("65a54190000000000005e005").position == 5
    assert cfg.module_kind("leadconduit-acme_crm.outbound.delivery") == "recipient"
    assert cfg.source_name("65a5419000000000000a0002") == "Bolt Media"


def test_json_works_too_and_registers_names(tmp_path):
    p = tmp_path / "flow.json"
    p.write_text(json.dumps({"steps": [{"id": "s1", "name": "Buyer A", "kind": "recipient"}]}))
    cfg = load_flow_config(p)
    store = workbench.open_store()
    cfg.register(store)
    assert store.sql("SELECT step_id, name, kind FROM steps").values.tolist() == [
        ["s1", "Buyer A", "recipient"]
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "must be a mapping with 'steps'"),
        ("steps: []\n", "'steps' must be a non-empty list"),
        ("flows: {}\nsteps: []\n", "unknown top-level key(s) ['flows']"),
        ("steps:\n  - {name: A, kind: filter}\n", "steps[0].id is missing"),
        ("steps:\n  - {id: a, name: A, kind: delivery}\n", "steps[0].kind is 'delivery'"),
        ("steps:\n  - {id: a, name: A, kind: filter, price: 3}\n", "unknown key(s) ['price']"),
        (
            "steps:\n  - {id: a, name: A, kind: filter}\n  - {id: a, name: B, kind: filter}\n",
            "steps[1].id 'a' is listed twice",
        ),
        ("steps: [\n", "is not valid YAML or JSON"),
    ],
)
def test_errors_name_the_file_the_entry_and_what_is_accepted(tmp_path, text, message):
    p = tmp_path / "flow.yaml"
    p.write_text(text)
    with pytest.raises(FlowConfigError) as e:
        load_flow_config(p)
    assert message in str(e.value) and str(p) in str(e.value)


def test_missing_file():
    with pytest.raises(FlowConfigError, match="no flow configuration file at"):
        load_flow_config("no/such/flow.yaml")
