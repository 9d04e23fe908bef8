"""Sessions: who may connect, what each read returns (masked), grants, exports, search."""

import datetime as dt
import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

import workbench
from workbench import access, catalog
from workbench.access import (
    AccessConfigError,
    GrantError,
    NotPermittedError,
    RoleNotGrantedError,
    SessionClosedError,
    UnknownRoleError,
    UnknownUserError,
    connect,
    load_access_config,
)

from .conftest import lead_events, make_event

NOW = dt.datetime.now(dt.UTC)
PII_SNAPSHOT = {
    "first_name": "Jonathan",
    "last_name": "Smithers",
    "email": "jonathan.smithers@example.com",
    "phone": "(713) 555-0142",
    "ssn": "123-45-6789",
    "address": "742 Evergreen Terrace",
    "ip_address": "198.51.100.23",
    "dob": "1980-01-02",
    "state": "TX",
    "email.valid": True,
    "appended.phone_score": 91,
}


@pytest.fixture
def filled(store):
    store.register_entity("ent_test", "Buyer A", "recipient")
    store.register_flow(
        "flow_test",
        "Auto Leads",
        "call 713-555-0142 for help",
        steps=[
            {
                "step_id": "step_test",
                "position": 1,
                "kind": "recipient",
                "name": "Deliver to A",
                "entity_id": "ent_test",
            }
        ],
    )
    store.record_incidents(
        [
            {
                "name": "Buyer A outage",
                "entity": "Buyer A",
                "parameters": {"contact": "ops@example.com"},
            }
        ]
    )
    store.append(lead_events("lead_A", NOW - dt.timedelta(hours=2)))
    store.append(lead_events("lead_B", NOW - dt.timedelta(hours=1), delivered=False))
    store.append(
        [
            make_event(
                "source.submitted",
                lead_id="lead_P",
                lead_snapshot=PII_SNAPSHOT,
                metadata={
                    "source": "Acme",
                    "raw_data": PII_SNAPSHOT,
                    "headers": {"x-forwarded-for": "198.51.100.23"},
                    "ip_address": "198.51.100.23",
                    "source_config": {},
                },
            ),
            make_event(
                "recipient.failed",
                lead_id="lead_P",
                lead_snapshot=PII_SNAPSHOT,
                metadata={
                    "recipient": "Buyer A",
                    "rejection_reason": "Duplicate of jonathan.smithers@example.com",
                    "buyer_response": {"body": '{"phone": "7135550142", "ok": false}'},
                    "business_logic": True,
                },
            ),
            {
                "event_id": "evt_bad1",
                "type": "no.such.type",
                "lead_id": "lead_P",
                "timestamp": "2026-11-20T10:00:00Z",
                "metadata": {"ssn": "123-45-6789"},
            },
        ]
    )
    return store


@pytest.fixture
def analyst(filled):
    s = connect(filled, user="ana", role="analyst")
    yield s
    s.close()


@pytest.fixture
def compliance(filled):
    s = connect(filled, user="cora", role="compliance")
    yield s
    s.close()


# --------------------------------------------------------------------------- connect


def test_connect_knows_users_and_roles(store, monkeypatch):
    monkeypatch.delenv(access.ENV_USER, raising=False)
    monkeypatch.delenv(access.ENV_CONFIG, raising=False)
    with pytest.raises(UnknownUserError, match="'mallory'.*known users.*ana"):
        connect(store, user="mallory", role="analyst")
    with pytest.raises(UnknownRoleError, match="'superuser'.*analyst"):
        connect(store, user="ana", role="superuser")
    with pytest.raises(RoleNotGrantedError, match="'ana' may not take the role 'compliance'"):
        connect(store, user="ana", role="compliance")
    with pytest.raises(UnknownUserError, match="say who you are"):
        connect(store)
    with pytest.raises(TypeError, match="EventStore or the path"):
        connect(42, user="ana")
    monkeypatch.setenv(access.ENV_USER, "tess")
    s = connect(store)
    assert (s.user, s.role, s.masked) == ("tess", "trainee", True)
    assert s.rights == {"read", "search"}


def test_access_config_from_a_file_beside_the_store(tmp_path, monkeypatch):
    monkeypatch.delenv(access.ENV_CONFIG, raising=False)
    path = tmp_path / "events.duckdb"
    workbench.open_store(path).close()
    (tmp_path / "events.duckdb.access.yaml").write_text(
        "roles:\n  auditor: {rights: [read, audit]}\n"
        "users:\n  alice: [analyst, auditor]\n  bob: compliance\n"
    )
    with pytest.raises(UnknownUserError, match="known users.*alice, bob"):
        connect(path, user="ana")
    s = connect(path, user="alice", role="auditor")
    assert s.rights == {"read", "audit"}
    assert s.audit().user.tolist() == ["alice"]
    s.close()
    with pytest.raises(NotPermittedError, match="may not unmask.*compliance"):
        connect(path, user="alice").unmask("a purpose of some length", 5)
    cfg = tmp_path / "other.yaml"
    cfg.write_text("users: {carol: [admin]}\n")
    monkeypatch.setenv(access.ENV_CONFIG, str(cfg))
    connect(path, user="carol").close()


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"roles": {"x": {"rights": ["read", "fly"]}}}, "unknown right.*'fly'"),
        ({"users": {"u": ["wizard"]}}, "unknown role.*'wizard'"),
        ({"users": {"u": []}}, "has no roles"),
        ({"groups": {}}, "unknown key.*groups"),
        ({"roles": {"x": {"rights": ["unmask"], "max_unmask_minutes": -1}}}, "minutes"),
        ({"roles": {"x": {"max_searches_per_day": -1}}}, "max_searches_per_day must be"),
        ({"roles": {"x": {"max_searches_per_day": "300"}}}, "max_searches_per_day must be"),
        ({"roles": {"x": {"max_searches_per_hour": 5}}}, "max_searches_per_day"),
    ],
)
def test_bad_access_configs_say_what_is_wrong(doc, message):
    with pytest.raises(AccessConfigError, match=message):
        load_access_config(doc)


@pytest.mark.parametrize(
    "config, message",
    [
        ("", "config='': give the path"),
        ("   ", "give the path of a YAML or JSON file"),
        (5, "config=5: give the path"),
        ("folder", "is a folder"),
        ("latin1.yaml", "is not UTF-8 text"),
        ("broken.yaml", "is not valid YAML"),
        ("nope.yaml", "no access config at"),
    ],
)
def test_an_unusable_config_file_is_an_access_config_error(
    store, tmp_path, monkeypatch, config, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "latin1.yaml").write_bytes("users: {jos\xe9: [analyst]}\n".encode("latin-1"))
    (tmp_path / "broken.yaml").write_text("users: [\n")
    with pytest.raises(AccessConfigError, match=message):
        connect(store, user="ana", config=config)


def test_connect_by_path_opens_read_only_and_lets_go(tmp_path):
    path = tmp_path / "events.duckdb"
    with workbench.open_store(path) as store:
        store.append(lead_events("lead_A", NOW - dt.timedelta(hours=1)))
    with connect(path, user="ana") as s:
        assert s._store.read_only
        assert len(s.timeline("lead_A")) == 6
        assert (tmp_path / "events.duckdb.audit.sqlite").exists()
    with workbench.open_store(path) as store:  # writable again: the session let go
        assert store.count() == 6


def test_a_session_reuses_an_open_writable_store(filled):
    s = connect(filled, user="ana")
    filled.append(lead_events("lead_late", NOW - dt.timedelta(minutes=1)))
    assert len(s.timeline("lead_late")) == 6
    assert not filled.read_only


def test_closing_the_store_closes_its_sessions(tmp_path):
    path = tmp_path / "events.duckdb"
    store = workbench.open_store(path)
    store.append(lead_events("lead_A", NOW - dt.timedelta(hours=1)))
    s = connect(store, user="ana")
    s.timeline("lead_A")
    store.close()
    with pytest.raises(SessionClosedError):
        s.timeline("lead_A")
    with workbench.open_store(path, read_only=True) as again:  # no cursor holds the file
        assert again.count() == 6


# --------------------------------------------------------------------------- reads


def test_reads_equal_the_stores_except_for_masked_pii(filled, analyst):
    raw, masked = filled.timeline("lead_P"), analyst.timeline("lead_P")
    assert list(masked.columns) == list(raw.columns)
    plain = ["seq", "event_id", "type", "timestamp", "lead_id", "outcome", "duration_ms"]
    pd.testing.assert_frame_equal(masked[plain], raw[plain])
    snap = masked.lead_snapshot[0]
    assert snap["email"] == "j***@example.com" and snap["first_name"] == "J***"
    assert snap["phone"] == "(713) ***-****" and snap["ssn"] == "***-**-6789"
    assert snap["state"] == "TX" and snap["email.valid"] is True
    assert masked.metadata[0]["raw_data"]["address"] == "*** E***"
    assert masked.metadata[0]["headers"]["x-forwarded-for"] == "198.51.***.***"
    assert masked.rejection_reason[1] == "Duplicate of j***@example.com"
    assert json.loads(masked.metadata[1]["buyer_response"]["body"]) == {
        "phone": "(713) ***-****",
        "ok": False,
    }
    for kwargs in (
        {},
        {"type": "recipient.*"},
        {"outcome": ["failure"], "limit": 3},
        {"lead_id": "lead_A"},
        {"since": NOW - dt.timedelta(minutes=90)},
    ):
        assert (
            analyst.events(**kwargs).event_id.tolist() == filled.events(**kwargs).event_id.tolist()
        )
    pd.testing.assert_frame_equal(analyst.lead_summary(), filled.lead_summary())
    pd.testing.assert_frame_equal(analyst.lead_summary("lead_A"), filled.lead_summary("lead_A"))
    q = analyst.quarantined()
    assert len(q) == 1 and "123-45" not in q.raw[0] and "***-**-6789" in q.raw[0]
    assert analyst.timeline("lead_nobody").empty


def test_sql_reads_masked_views_and_the_guides_queries_run_as_printed(filled, analyst):
    assert analyst.relations == access.SESSION_RELATIONS
    emails = analyst.sql(
        "SELECT DISTINCT lead_snapshot->>'email' AS e FROM events WHERE lead_id = ?", ["lead_P"]
    )
    assert emails.e.tolist() == ["j***@example.com"]
    for q in (
        "SELECT step_name, AVG(duration_ms) as avg_duration, MAX(duration_ms) as max_duration, "
        "COUNT(*) as executions FROM events WHERE timestamp > NOW() - INTERVAL '24 hours' "
        "GROUP BY step_name ORDER BY avg_duration DESC",
        "SELECT type, outcome, COUNT(*) as count, COUNT(*) * 100.0 / SUM(COUNT(*)) OVER "
        "(PARTITION BY type) as percentage FROM events WHERE type LIKE 'recipient.%' "
        "GROUP BY type, outcome ORDER BY type, outcome",
        "SELECT s.lead_id, s.outcome, count(*) AS n FROM lead_summary s JOIN events e "
        "USING (lead_id) GROUP BY ALL ORDER BY 1",
        "SELECT s.*, e.* FROM steps s JOIN entities e USING (entity_id)",
        "SELECT flow_id, name FROM flows",
        "SELECT name, entity, starts_at FROM incidents",
    ):
        pd.testing.assert_frame_equal(analyst.sql(q), filled.sql(q))
    assert analyst.sql("SELECT description FROM flows").description[0] == (
        "call (713) ***-**** for help"
    )
    assert (
        analyst.sql("SELECT parameters->>'contact' AS c FROM incidents").c[0] == "o***@example.com"
    )


def test_plain_columns_cost_no_masking_call(filled, analyst, monkeypatch):
    calls = []
    real = access.views._JSON_MASKER

    class Counting:
        def arrow(self, a, t=None):
            calls.append(len(a))
            return real.arrow(a, t)

    monkeypatch.setattr(access.views, "_JSON_MASKER", Counting())
    analyst.sql("SELECT type, count(*), avg(duration_ms) FROM events GROUP BY type")
    analyst.sql("SELECT rejection_reason FROM events WHERE lead_id = 'lead_A'")
    assert calls == []
    analyst.sql("SELECT metadata FROM events WHERE lead_id = 'lead_P'")
    assert sum(calls) == 2


def test_mask_helpers_for_charts_and_widgets(analyst, compliance):
    assert analyst.mask_value("ssn", "123-45-6789") == "***-**-6789"
    assert analyst.mask_value("full_name", "John Smith") == "J*** S***"
    assert analyst.mask_value("email", "john@example.com") == "j***@example.com"
    assert analyst.mask_value("phone", "5551234567") == "(555) ***-****"
    assert analyst.mask_value(catalog.FieldType.IP_ADDRESS, "203.0.113.9") == "203.0.***.***"
    assert analyst.mask_text("hover: jo@x.io, 713-555-0142") == "hover: j***@x.io, (713) ***-****"
    df = pd.DataFrame(
        {
            "email": ["ann@example.com", None],
            "lead_snapshot": ['{"ssn": "123456789"}', None],
            "note": ["call 7135550142", "ok"],
            "n": [1, 2],
            "phone": [7135550142, 7135550143],
        }
    )
    m = analyst.mask_frame(df)
    assert m.email.tolist()[0] == "a***@example.com" and m.email.isna().tolist()[1]
    assert json.loads(m.lead_snapshot[0]) == {"ssn": "***-**-6789"}
    assert m.note.tolist() == ["call (713) ***-****", "ok"] and m.n.tolist() == [1, 2]
    assert m.phone.tolist() == ["(713) ***-****"] * 2
    assert df.email[0] == "ann@example.com"  # a copy
    with compliance.unmask("ticket 12: verify a customer's data", minutes=1):
        assert compliance.mask_value("email", "john@example.com") == "john@example.com"
        assert compliance.mask_frame(df) is df


# --------------------------------------------------------------------------- grants


def test_only_compliance_and_admin_may_unmask(filled, analyst):
    with pytest.raises(NotPermittedError, match="'analyst' may not unmask PII.*compliance, admin"):
        analyst.unmask(purpose="I would like to see it", minutes=5)
    trainee = connect(filled, user="tess")
    with pytest.raises(NotPermittedError):
        trainee.unmask(purpose="I would like to see it", minutes=5)
    assert analyst.masked and trainee.masked


@pytest.mark.parametrize(
    "purpose, minutes, message",
    [
        ("", 5, "purpose=''"),
        ("because", 5, "at least 10"),
        (None, 5, "purpose=None"),
        ("ticket 4711: customer data", 0, "more than 0 and at most 60"),
        ("ticket 4711: customer data", 61, "at most 60"),
        ("ticket 4711: customer data", True, "minutes=True"),
        ("ticket 4711: customer data", "5", "minutes='5'"),
    ],
)
def test_unmask_needs_a_purpose_and_a_short_time(compliance, purpose, minutes, message):
    with pytest.raises(GrantError, match=message):
        compliance.unmask(purpose=purpose, minutes=minutes)
    assert compliance.masked


def test_a_grant_unmasks_until_it_expires(filled, compliance):
    t0 = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
    compliance._clock = lambda: t0
    assert compliance.timeline("lead_P").lead_snapshot[0]["email"] == "j***@example.com"
    grant = compliance.unmask(purpose="ticket 4711: customer asked for their data", minutes=10)
    assert grant.active and not compliance.masked and compliance.grant is grant
    assert grant.remaining == dt.timedelta(minutes=10)
    assert grant.expires_at == t0 + dt.timedelta(minutes=10)
    raw = compliance.timeline("lead_P")
    assert raw.lead_snapshot[0]["email"] == "jonathan.smithers@example.com"
    q = "SELECT lead_snapshot->>'ssn' AS s FROM events WHERE lead_id = 'lead_P' LIMIT 1"
    assert compliance.sql(q).s[0] == "123-45-6789"
    assert "123-45-6789" in compliance.quarantined().raw[0]
    compliance._clock = lambda: t0 + dt.timedelta(minutes=10)
    assert compliance.masked and not grant.active and grant.remaining == dt.timedelta(0)
    assert compliance.sql(q).s[0] == "***-**-6789"
    with compliance.unmask(purpose="ticket 4712: second request", minutes=1) as g2:
        assert not compliance.masked
    assert not g2.active and compliance.masked


def test_a_session_closed_with_a_grant_ends_it(filled):
    s = connect(filled, user="adam", role="admin")
    s.unmask(purpose="ticket 1: admin check of data", minutes=3)
    s.close()
    actions = connect(filled, user="adam").audit(user="adam").action.tolist()
    assert actions[:4] == ["connect", "unmask", "revoke", "connect"]


# --------------------------------------------------------------------------- export


def test_export_writes_masked_parquet_and_jsonl(filled, analyst, tmp_path):
    n = analyst.export(tmp_path / "out.parquet")
    assert n == filled.count() == pq.read_metadata(tmp_path / "out.parquet").num_rows
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    p_rows = [r for r in rows if r["lead_id"] == "lead_P"]
    assert json.loads(p_rows[0]["lead_snapshot"])["email"] == "j***@example.com"
    analyst.export(tmp_path / "out.jsonl")
    text = (tmp_path / "out.jsonl").read_text()
    assert "jonathan" not in text and "j***@example.com" in text
    assert len(text.splitlines()) == n
    back = workbench.open_store()
    assert back.append(tmp_path / "out.jsonl").stored == n  # an export imports again
    with pytest.raises(ValueError, match="export format"):
        analyst.export(tmp_path / "out.csv")


def test_trainees_may_not_export(filled, tmp_path):
    with pytest.raises(NotPermittedError, match="'trainee' may not export"):
        connect(filled, user="tess").export(tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


# --------------------------------------------------------------------------- search


def test_find_leads_by_a_raw_value_reveals_only_lead_ids(filled, analyst):
    assert analyst.find_leads(email="JONATHAN.Smithers@example.com ") == ["lead_P"]
    assert analyst.find_leads(phone="+1 713-555-0142") == ["lead_P"]
    assert analyst.find_leads(phone=7135550142) == ["lead_P"]
    assert analyst.find_leads(ssn="123456789", first_name="jonathan") == ["lead_P"]
    assert analyst.find_leads(date_of_birth="01/02/1980") == ["lead_P"]
    assert analyst.find_leads(email="john@example.com") == ["lead_A", "lead_B"]
    assert analyst.find_leads(email="nobody@example.com") == []
    assert analyst.find_leads(email="john@example.com", ssn="123-45-6789") == []
    with pytest.raises(ValueError, match="'state' is a state field"):
        analyst.find_leads(state="TX")
    with pytest.raises(ValueError, match="needs a value"):
        analyst.find_leads()


def test_find_leads_reads_typed_field_objects(store):
    typed = {"normal": "2125550199", "raw": "(212) 555-0199", "area": "212", "valid": True}
    store.append([make_event(lead_id="lead_T", lead_snapshot={"phone": typed})])
    s = connect(store, user="tess")
    assert s.find_leads(phone="212.555.0199") == ["lead_T"]
    assert s.timeline("lead_T").lead_snapshot[0]["phone"] == {
        "normal": "(212) ***-****",
        "raw": "(212) ***-****",
        "area": "212",
        "valid": True,
    }


def test_a_declared_field_is_masked_everywhere(store):
    store.append([make_event(lead_id="lead_R", lead_snapshot={"member_code": "987-65-4321"})])
    s = connect(store, user="ana")
    assert s.timeline("lead_R").lead_snapshot[0]["member_code"] == "***-**-4321"  # free text
    catalog.register_field("member_code", "full_name")
    try:
        assert s.timeline("lead_R").lead_snapshot[0]["member_code"] == "9***"
        q = "SELECT lead_snapshot->>'member_code' AS c FROM events WHERE lead_id = 'lead_R'"
        assert s.sql(q).c[0] == "9***"
    finally:
        del catalog.FIELD_TYPES["member_code"]
