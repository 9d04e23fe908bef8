"""The audit trail: every read, search, grant and refusal, append-only, masked, and
complete when many processes write at once."""

import contextlib
import datetime as dt
import hashlib
import multiprocessing
import re
import sqlite3

import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import workbench
from workbench.access import NotPermittedError, connect
from workbench.access.audit import (
    AuditError,
    AuditTrail,
    Vocabulary,
    mask_sql_text,
    placeholder,
)
from workbench.errors import WorkbenchError

from .conftest import lead_events, make_event

NOW = dt.datetime.now(dt.UTC)
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SNAP = {"email": "rosalind.audit@example.com", "phone": "4155550188", "first_name": "Rosalind"}


@pytest.fixture
def disk(tmp_path):
    path = tmp_path / "events.duckdb"
    with workbench.open_store(path) as store:
        store.append(lead_events("lead_A", NOW - dt.timedelta(hours=1)))
        store.append([make_event(lead_id="lead_R", lead_snapshot=SNAP)])
    return path


def test_every_read_search_and_grant_is_recorded(disk):
    with connect(disk, user="cora", role="compliance") as s:
        s.timeline("lead_A")
        s.sql("SELECT count(*) AS n FROM events WHERE lead_id = ?", ["lead_R"])
        s.find_leads(email="rosalind.audit@example.com")
        s.events(type="source.*", limit=2)
        s.lead_summary("lead_A")
        s.quarantined()
        grant = s.unmask(purpose="ticket 99: request from rosalind.audit@example.com", minutes=5)
        s.timeline("lead_R")
        grant.revoke()
        s.timeline("lead_R")
    with connect(disk, user="adam", role="admin") as admin:
        trail = admin.audit(user="cora")
        assert admin.verify_audit().ok
    assert trail.action.tolist() == [
        "connect",
        "timeline",
        "sql",
        "find_leads",
        "events",
        "lead_summary",
        "quarantined",
        "unmask",
        "timeline",
        "revoke",
        "timeline",
    ]
    assert set(trail.role) == {"compliance"} and trail.timestamp.map(ISO_UTC.match).all()
    rows = trail.set_index("action", append=True)
    by = {a: r for (_, a), r in rows.iterrows()}
    assert by["timeline"].lead_ids == ["lead_R"] and by["find_leads"].lead_ids == ["lead_R"]
    assert (
        by["sql"].detail.startswith("SELECT count(*)") and "params=['lead_R']" in by["sql"].detail
    )
    assert by["events"].rows == 2 and by["lead_summary"].rows == 1
    raw_read = trail.iloc[8]
    assert not raw_read.masked and raw_read.purpose.startswith("ticket 99")
    assert trail.iloc[10].masked and pd.isna(trail.iloc[10].purpose)
    text = trail.to_csv()
    assert "rosalind.audit@" not in text and "r***@example.com" in text


def test_audit_is_for_admins_only(disk):
    with connect(disk, user="ana") as s, pytest.raises(NotPermittedError, match="audit trail"):
        s.audit()
    with connect(disk, user="adam") as admin:
        last = admin.audit(user="ana").iloc[-1]
        assert (last.action, last.outcome) == ("audit", "refused")
        assert admin.audit(action="audit", user="ana", since=NOW - dt.timedelta(hours=1)).shape[0]
        assert admin.audit(lead_id="lead_nobody").empty


def test_the_trail_is_append_only_and_tampering_shows(disk):
    with connect(disk, user="ana") as s:
        s.timeline("lead_A")
    db = sqlite3.connect(str(disk) + ".audit.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit SET user = 'nobody'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit")
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET rows = 0 WHERE action = 'timeline'")
    db.commit()
    db.close()
    with connect(disk, user="adam") as admin:
        report = admin.verify_audit()
    assert not report.ok and report.first_bad_id == 2 and "TAMPERED" in str(report)


def test_a_read_that_cannot_be_recorded_is_refused(disk, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(AuditError, match="audit="):
        connect(disk, user="ana", audit=blocker / "audit.sqlite")
    s = connect(disk, user="ana", audit=tmp_path / "elsewhere.sqlite")
    s._trail.close()  # the trail is gone: no record, no data
    with pytest.raises((AuditError, sqlite3.ProgrammingError)):
        s.timeline("lead_A")


def test_a_store_in_memory_keeps_one_trail_for_its_sessions(store):
    store.append(lead_events("lead_A", NOW))
    connect(store, user="ana").timeline("lead_A")
    trail = connect(store, user="adam").audit()
    assert trail.user.tolist() == ["ana", "ana", "adam"]
    other = workbench.open_store()
    assert connect(other, user="adam").audit().user.tolist() == ["adam"]


def _reader(path: str, user: str, reads: int) -> int:
    """A process that reads ``reads`` times through its own session (spawned)."""
    config = {"users": {user: ["analyst"]}}
    with connect(path, user=user, config=config) as s:
        for i in range(reads):
            s.sql("SELECT ? AS i", [i])
    return reads


def test_parallel_processes_lose_no_record(disk):
    workers, reads = 4, 600
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        done = pool.starmap(_reader, [(str(disk), f"w{k}", reads) for k in range(workers)])
    assert done == [reads] * workers
    trail = AuditTrail(str(disk) + ".audit.sqlite")
    df = trail.read()
    assert len(df) == workers * (reads + 1)  # each worker connected once, then read
    assert df.id.tolist() == list(range(1, len(df) + 1))
    for k in range(workers):
        mine = df[df.user == f"w{k}"]
        assert sorted(int(d.rsplit("[", 1)[1].rstrip("]")) for d in mine.detail[1:]) == list(
            range(reads)
        )
    assert trail.verify().ok
    trail.close()


# --------------------------------------------------------------------------- anchors


def _trail_path(disk):
    return disk.with_name(disk.name + ".audit.sqlite")


def _fill_trail(disk, reads=5):
    with connect(disk, user="ana") as s:
        for _ in range(reads):
            s.timeline("lead_A")


def _raw_sqlite(disk, *statements):
    db = sqlite3.connect(_trail_path(disk))
    db.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    db.execute("DROP TRIGGER IF EXISTS audit_no_update")
    for sql in statements:
        db.execute(sql)
    db.commit()
    db.close()


def _verify(disk, expect=None):
    with connect(disk, user="adam", role="admin") as admin:
        return admin.verify_audit(expect=expect)


@pytest.mark.parametrize(
    "statements",
    [
        ["DELETE FROM audit WHERE id > (SELECT max(id) - 3 FROM audit)"],
        ["DELETE FROM audit"],
        ["DELETE FROM audit", "DELETE FROM audit_anchor"],
        [
            "DELETE FROM audit WHERE id = (SELECT max(id) FROM audit)",
            "UPDATE audit_anchor SET records = records - 1, "
            "head = (SELECT hash FROM audit ORDER BY id DESC LIMIT 1)",
        ],
    ],
)
def test_removing_records_from_the_end_is_caught(disk, statements):
    _fill_trail(disk)
    assert _verify(disk).ok
    _raw_sqlite(disk, *statements)
    r = _verify(disk)
    assert not r.ok and "removed" in r.problem


def test_a_deleted_trail_file_is_caught_by_the_anchor_file(disk):
    _fill_trail(disk)
    for suffix in ("", "-wal", "-shm"):
        p = disk.with_name(disk.name + ".audit.sqlite" + suffix)
        p.unlink(missing_ok=True)
    r = _verify(disk)
    assert not r.ok and "anchor file" in r.problem


def test_the_audit_head_can_be_kept_and_checked(disk):
    _fill_trail(disk, reads=2)
    head = _verify(disk).head
    assert head and len(head) == 64
    r = _verify(disk, expect=head)
    assert r.ok and "records were added since" in str(r)  # the checks themselves are records
    with pytest.raises(ValueError, match="16 hex"):
        _verify(disk, expect="nope")


def test_a_rewritten_trail_does_not_show_the_kept_head(disk, tmp_path):
    _fill_trail(disk, reads=2)
    head = _verify(disk).head
    for suffix in ("", "-wal", "-shm", ".head"):
        disk.with_name(disk.name + ".audit.sqlite" + suffix).unlink(missing_ok=True)
    _fill_trail(disk, reads=2)  # a fresh, self-consistent trail
    r = _verify(disk, expect=head)
    assert not r.ok and "not in this trail's chain" in r.problem


# --------------------------------------------------------------------------- what is kept


@pytest.mark.parametrize(
    "purpose",
    ["\u200b" * 30, "\x00\x01\x02" * 5, " \t\n" * 10, "\u200b\u200cticket\u200d\u2060\u200b"],
)
def test_an_invisible_purpose_is_no_purpose(disk, purpose):
    from workbench.access import GrantError

    with connect(disk, user="cora", role="compliance") as s:
        with pytest.raises(GrantError, match="visible"):
            s.unmask(purpose=purpose, minutes=5)
        assert s.masked


def test_pii_typed_into_sql_is_masked_on_the_trail(disk):
    with connect(disk, user="ana") as s:
        s.sql("SELECT count(*) FROM events WHERE lead_snapshot->>'first_name' = 'Rosalind'")
        s.sql(
            "SELECT count(*) FROM events WHERE lead_snapshot->>'first_name' = ? "
            "AND lead_snapshot->>'phone' = ? AND lead_id = ?",
            ["Rosalind", "4155550188", "lead_R"],
        )
    with connect(disk, user="adam", role="admin") as admin:
        details = admin.audit(user="ana", action="sql").detail.str.cat(sep="\n")
    assert "Rosalind" not in details and "4155550188" not in details
    name = placeholder("Rosalind")  # its length and the start of its SHA-256
    assert name == f"<text:8 chars #{hashlib.sha256(b'Rosalind').hexdigest()[:6]}>"
    assert f"lead_snapshot->>'first_name' = '{name}'" in details
    assert f"params=['{name}', '(415) ***-****', 'lead_R']" in details


@pytest.mark.parametrize(
    "purpose",
    [
        "\x1b[31m\x1b[0m" * 5,  # colour codes only
        "\x1b]0;ticket 4711 customer request\x07",  # a terminal title, not a purpose
        "\x9b31m\x9b0m" * 6,  # the 8-bit form of the same codes
        "\x1b[2J\x1b[H" * 8,  # clear the screen, cursor home
        "[31m[0m[31m[0m[31m[0m",  # what the codes leave once ESC is dropped
        "1234567890 12345",  # a number is no reason
        "-- -- -- ab -- cd --",
    ],
)
def test_escape_codes_and_signs_are_no_purpose(disk, purpose):
    from workbench.access import GrantError

    with connect(disk, user="cora", role="compliance") as s:
        with pytest.raises(GrantError, match="in words"):
            s.unmask(purpose=purpose, minutes=5)
        assert s.masked
    with connect(disk, user="adam", role="admin") as admin:
        last = admin.audit(user="cora", action="unmask").iloc[-1]
    assert last.outcome == "refused" and "no purpose stated" in last.detail
    assert "\x1b" not in last.purpose and "\x9b" not in last.purpose


def test_the_purpose_is_kept_as_given_with_its_control_characters_escaped(disk):
    given = "\x1b[1mticket 4711\x1b[0m: request\u200b from rosalind.audit@example.com\x07"
    with connect(disk, user="cora", role="compliance") as s:
        grant = s.unmask(purpose=given, minutes=5)
        assert grant.purpose == "ticket 4711: request from rosalind.audit@example.com"
        s.timeline("lead_R")
        grant.revoke()
    with connect(disk, user="adam", role="admin") as admin:
        trail = admin.audit(user="cora")
    kept = trail[trail.action.isin(["unmask", "timeline", "revoke"])].purpose.tolist()
    assert kept == ["\\x1b[1mticket 4711\\x1b[0m: request\\u200b from r***@example.com\\x07"] * 3
    assert not any(c in trail.to_csv() for c in "\x1b\x07\u200b")


# --------------------------------------------------------------------------- typed values

# Values a person may type that name somebody: none may reach the trail as typed.
TYPED = {
    "dob": "1979-03-14",
    "dob_us": "03/14/1979",
    "dob_dots": "14.03.1979",
    "name": "Zqwilhelmina",
    "dotted": "mary.jones",
    "underscored": "zqwilhelmina_zqfrobisher",
    "id_shaped": "lead_Zqwilhelmina",
    "like": "%zqcanary%",
    "like_name": "%mary%",
    "full": "Zqwilhelmina Zqfrobisher",
    "street": "742 Evergreen Terrace",
    "ipv6": "2001:db8:85a3::8a2e:370:7334",
    "ip": "203.0.113.77",
    "email": "zqcanary.person@example.com",
    "ssn": "078-05-1120",
}
SQL_FORMS = [
    "SELECT count(*) FROM events WHERE lead_snapshot->>'dob' = '{v}'",
    "SELECT count(*) FROM events WHERE lead_snapshot::VARCHAR LIKE '%{v}%'",
    "SELECT '{v}' AS x",
    "SELECT count(*) FROM events WHERE lead_snapshot->>'{v}' IS NOT NULL",
    'SELECT "{v}" FROM events',
    "SELECT count(*) FROM events -- {v}",
    "SELECT count(*) FROM events /* {v} */",
    "SELECT count(*) FROM events /* a /* {v} */ b */",
    "SELECT count(*) FROM events WHERE lead_id = E'{v}'",
    "SELECT count(*) FROM events WHERE lead_id = E'it\\'s {v}'",
    "SELECT count(*) FROM events WHERE lead_id = $${v}$$",
    "SELECT count(*) FROM events WHERE lead_id = $q${v}$q$",
    "SELECT count(*) FROM events WHERE lead_id = '{v}",  # never closed
]


def _raw_pieces(value: str) -> list[str]:
    """What of ``value`` must not be on the trail: the value and its longer words."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", value) if len(w) >= 5]
    return [value, *words]


@pytest.mark.parametrize("kind", sorted(TYPED))
def test_values_typed_into_a_read_are_not_kept_raw(disk, kind):
    value = TYPED[kind]
    with connect(disk, user="tess") as s:
        for form in SQL_FORMS:
            with contextlib.suppress(WorkbenchError):
                s.sql(form.replace("{v}", value.replace("'", "''")))
        s.sql("SELECT count(*) FROM events WHERE lead_snapshot->>'email' = ?", [value])
        s.sql("SELECT count(*) FROM events WHERE lead_id = $v", {"v": value})
        s.timeline(value)
        s.events(lead_id=value, type=value, outcome=value, entity_id=value)
        s.lead_summary(value)
    with connect(disk, user="adam", role="admin") as admin:
        trail = admin.audit(user="tess")
    text = trail.detail.str.cat(sep="\n") + repr(trail.lead_ids.tolist())
    for piece in _raw_pieces(value):
        assert piece not in text, piece
    assert placeholder(value) in text  # an auditor holding the value can find it


def test_comments_are_dropped_and_known_words_kept(disk):
    query = (
        "SELECT type, count(*) AS n -- by type, for mary.jones\n"
        "FROM events /* asked by Zqwilhelmina */ WHERE type LIKE 'recipient.%' "
        "AND outcome IN ('success', 'failure') AND lead_snapshot->>'first_name' IS NOT NULL "
        "AND metadata->>'$.raw_data.dob' IS NULL AND \"timestamp\" > NOW() - INTERVAL '24 hours' "
        f"AND lead_id <> 'lead_A' AND strftime(\"timestamp\", '%Y-%m-%d') >= '{NOW.date().isoformat()}' "
        "GROUP BY type"
    )
    with connect(disk, user="ana") as s:
        s.sql(query)
        s.events(type="recipient.*", outcome="success", lead_id="lead_A", since=NOW.date())
        s.timeline("lead_A")
    with connect(disk, user="adam", role="admin") as admin:
        sql, events, timeline = admin.audit(user="ana").detail.tolist()[1:]
    assert "mary" not in sql and "Zqwilhelmina" not in sql and "--" not in sql
    for kept in (
        "'recipient.%'",
        "('success', 'failure')",
        "'first_name'",
        "'$.raw_data.dob'",
        '"timestamp"',
        "'24 hours'",
        "'lead_A'",
        "'%Y-%m-%d'",
        f"'{NOW.date().isoformat()}'",
    ):
        assert kept in sql, kept
    assert "type='recipient.*'" in events and "lead_id='lead_A'" in events
    assert timeline == "timeline('lead_A')"


def test_an_unknown_lead_id_is_kept_as_a_placeholder(disk):
    with connect(disk, user="ana") as s:
        s.timeline("lead_Zqwilhelmina")
        s.sql("SELECT * FROM events WHERE lead_id IN ('lead_R', 'lead_Zqwilhelmina')")
    with connect(disk, user="adam", role="admin") as admin:
        trail = admin.audit(user="ana")
    timeline, sql = trail.detail.tolist()[1:]
    assert timeline == f"timeline('{placeholder('lead_Zqwilhelmina')}')"
    assert trail.lead_ids.tolist()[1] == []
    assert f"('lead_R', '{placeholder('lead_Zqwilhelmina')}')" in sql


@pytest.mark.parametrize(
    "read",
    [
        lambda s: s.sql("SELECT '\ud800' AS x"),
        lambda s: s.sql("SELECT 1 AS x -- \udfff"),
        lambda s: s.sql("SELECT ? AS x", ["\ud800"]),
        lambda s: s.sql("SELECT $v AS x", {"v": ["ok", "\ud83d"]}),
        lambda s: s.timeline("lead_\ud800"),
        lambda s: s.events(type="\ud800.x"),
        lambda s: s.lead_summary("\udc00"),
    ],
)
def test_a_lone_surrogate_is_refused_clearly_and_on_the_record(disk, read):
    from workbench.errors import InputError

    with connect(disk, user="ana") as s, pytest.raises(InputError, match="lone surrogate"):
        read(s)
    with connect(disk, user="adam", role="admin") as admin:
        last = admin.audit(user="ana").iloc[-1]
        assert admin.verify_audit().ok
    assert last.outcome == "refused" and "invalid text" in last.detail
    assert "\ud800" not in last.detail


def test_the_trail_records_text_that_is_not_valid_unicode(tmp_path):
    trail = AuditTrail(str(tmp_path / "t.sqlite"))
    rec = trail.append(user="ana", role="analyst", action="sql", detail="SELECT '\ud800'")
    assert rec["detail"] == "SELECT '\\ud800'"
    assert trail.verify().ok
    trail.close()


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_@ "


@settings(max_examples=300, deadline=None)
@given(
    value=st.text(alphabet=_LETTERS, min_size=3, max_size=30),
    form=st.sampled_from(SQL_FORMS),
)
def test_no_unknown_literal_survives_the_masking_of_sql_text(value, form):
    value = value.strip()
    assume(len(value) >= 3 and not Vocabulary().keeps(value))
    query = form.replace("{v}", value)
    assume(value not in form.replace("{v}", ""))
    # the literal as the query writes it: a LIKE pattern is read piece by piece, so
    # '%.JSON%' is kept for its known word 'json' although '.JSON' alone is not
    quoted = [a or b for a, b in re.findall(r"'([^']*)'|\"([^\"]*)\"", query)]
    literal = next((q for q in quoted if value in q), value)
    assume(not Vocabulary().keeps(literal))
    assert value not in mask_sql_text(query)


def test_a_long_list_parameter_is_kept_as_its_start_and_size(disk):
    """An explorer filter passes thousands of lead ids: the trail keeps the first ones,
    the count and a fingerprint of the rest (not one lookup per id), and no raw PII."""
    ids = ["lead_A", "lead_R"] + [f"lead_x{i:05d}" for i in range(3000)] + ["Rosalind"]
    with connect(disk, user="ana") as s:
        got = s.sql(
            "SELECT count(DISTINCT lead_id) AS n FROM events WHERE list_contains(?, lead_id)", [ids]
        )
    assert got.n.iloc[0] == 2
    with connect(disk, user="adam", role="admin") as admin:
        detail = admin.audit(user="ana", action="sql").detail.iloc[-1]
    assert "'lead_A', 'lead_R'" in detail
    assert "2,998 more values #" in detail  # 3,003 given, 5 shown
    assert "Rosalind" not in detail and "lead_x00010" not in detail
