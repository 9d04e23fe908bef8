"""Flow definitions: the sample loads into typed objects; bad entries are refused with
a message naming the file, the entry and what would be accepted."""

import copy

import pytest
import yaml

from workbench.sim import FlowError, load_flow, parse_flow
from workbench.sim.flow import Enhancement, Filter, default_flow_path


@pytest.fixture(scope="module")
def raw():
    return yaml.safe_load(default_flow_path().read_text())


def bad(raw, change):
    data = copy.deepcopy(raw)
    change(data)
    with pytest.raises(FlowError) as e:
        parse_flow(data, "bad_flow.yaml")
    return str(e.value)


def test_sample_flow_loads_typed_and_complete():
    flow = load_flow()
    assert flow.id == "flow_8B3nM5kL2Q9pR4wX"
    assert [s.name for s in flow.sources][:2] == ["Acme Leads", "BrightPath Media"]
    assert isinstance(flow.steps[0], Enhancement) and flow.steps[0].service == "phone_validation"
    assert any(isinstance(s, Filter) and s.applies_to for s in flow.steps)
    assert flow.buyer("Apex Insurance Group").price == 42.0
    assert abs(sum(s.share for s in flow.sources) - 1.0) < 1e-9
    # ids are stable: the same names give the same entity and step ids
    assert load_flow().entities() == flow.entities()
    kinds = {k for _, _, k in flow.entities()}
    assert kinds == {"source", "enhancement", "filter", "recipient"}
    assert flow.routes[-1].conditions == ()


def test_unknown_step_kind(raw):
    msg = bad(raw, lambda d: d["steps"].insert(1, {"enrichment": "Credit Check"}))
    assert msg.startswith("bad_flow.yaml: steps[1]:")
    assert "unknown step kind 'enrichment'" in msg and "enhancement, filter" in msg


def test_negative_price(raw):
    msg = bad(raw, lambda d: d["recipients"]["buyers"][1].__setitem__("price", -5))
    assert "bad_flow.yaml: recipients.buyers[1] 'Horizon Direct'.price" in msg
    assert "-5 is negative" in msg and ">= 0" in msg


def test_negative_cost(raw):
    msg = bad(raw, lambda d: d["sources"][2].__setitem__("cost", -0.5))
    assert "sources[2] 'Summit Affiliates'.cost: -0.5 is negative" in msg


def test_probability_above_one(raw):
    msg = bad(raw, lambda d: d["sources"][0]["quality"].__setitem__("duplicate", 1.5))
    assert "sources[0] 'Acme Leads'.quality.duplicate: 1.5 is not a probability" in msg
    assert "a number from 0 to 1" in msg
    msg = bad(raw, lambda d: d["recipients"]["buyers"][0].__setitem__("acceptance", 1.2))
    assert "'Apex Insurance Group'.acceptance: 1.2 is not a probability" in msg


def test_filter_on_a_field_nobody_supplies(raw):
    def change(d):
        d["steps"][1]["rules"].append({"field": "credit_score", "min": 600})

    msg = bad(raw, change)
    assert "steps[1] filter 'Phone Quality'.rules[2].field" in msg
    assert "'credit_score' is supplied by no source and appended by no enhancement" in msg
    assert "fields available here:" in msg and "phone.valid" in msg


def test_filter_on_a_field_appended_only_later(raw):
    # email.valid exists, but Email Verification runs after this filter
    def change(d):
        d["steps"][2]["rules"].append({"field": "email.valid", "equals": True})

    msg = bad(raw, change)
    assert "'email.valid' is supplied by no source" in msg


def test_unknown_buyer_in_a_rule(raw):
    def change(d):
        d["recipients"]["routing"][0]["buyers"].append("Acme Buyer")

    msg = bad(raw, change)
    assert "recipients.routing[0].buyers: unknown buyer 'Acme Buyer'" in msg
    assert "accepted: Apex Insurance Group, Horizon Direct" in msg


def test_unknown_source_in_applies_to_and_unknown_keys(raw):
    msg = bad(raw, lambda d: d["steps"][6].__setitem__("applies_to", ["Nobody"]))
    assert "unknown source 'Nobody'; accepted: Acme Leads" in msg
    msg = bad(raw, lambda d: d["sources"][0].__setitem__("prize", 3))
    assert "sources[0] 'Acme Leads': unknown key 'prize'; accepted keys: name" in msg


def test_other_bad_values(raw):
    msg = bad(raw, lambda d: d["flow"].__setitem__("timezone", "Mars/Olympus"))
    assert "flow.timezone: unknown timezone 'Mars/Olympus'" in msg
    msg = bad(raw, lambda d: d["steps"][0].__setitem__("service", "credit_bureau"))
    assert "unknown service 'credit_bureau'; accepted: phone_validation" in msg
    msg = bad(raw, lambda d: d["traffic"].__setitem__("hourly", [1, 2, 3]))
    assert "traffic.hourly: expected a list of 24 numbers" in msg
    msg = bad(raw, lambda d: d["steps"][0]["latency_ms"].__setitem__("p95", 10))
    assert "p95 (10.0) must be above the median" in msg
    msg = bad(raw, lambda d: d["sources"][0]["acceptance"]["formats"].__setitem__("zip", "email"))
    assert "format 'email' applies to field 'email', not 'zip'" in msg


def test_load_flow_names_the_file(tmp_path, raw):
    p = tmp_path / "my_flow.yaml"
    data = copy.deepcopy(raw)
    data["recipients"]["buyers"][0]["price"] = -1
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(FlowError, match=r"my_flow\.yaml: recipients\.buyers\[0\]"):
        load_flow(p)
    p.write_text("flow: [unclosed")
    with pytest.raises(FlowError, match="not valid YAML"):
        load_flow(p)
    with pytest.raises(FlowError, match="no such flow definition file"):
        load_flow(tmp_path / "missing.yaml")
