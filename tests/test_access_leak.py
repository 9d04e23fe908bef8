"""Leak test: no output of a masked Session holds a raw PII value or a revealing part.

Random leads with random PII are appended to a copy of the sample store, with PII
everywhere the guide puts it (lead snapshots, raw data and headers of source.submitted,
parsed typed field objects, request and response bodies as JSON, form data and XML,
rejection reasons, quarantined events and broken input lines). Then every public read of
every masked role is rendered to text and checked with :func:`assert_no_pii`.

Later layers add their outputs (chart JSON, HTML reports, widget states, notebook
outputs) by importing the helpers::

    from tests.test_access_leak import PII, pii_records, lead_with_pii, assert_no_pii

``assert_no_pii(text, records)`` fails on a raw value or a revealing part of one: the full
local part of an email, 7+ consecutive digits of a phone, the first five digits of an SSN,
a name, a street name, an IP address or a date of birth as given.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import workbench
from workbench import sample
from workbench.access import QueryError, connect

# --------------------------------------------------------------------------- PII records


@dataclass(frozen=True)
class PII:
    """One person's personal data, in distinctive values (no false alarms)."""

    first_name: str
    last_name: str
    email: str
    phone: str  # ten digits
    ssn: str  # nine digits
    street: str
    ip: str
    dob: dt.date
    ipv6: str = ""  # hex letters only ("dead:beef::cafe"): no digit betrays it

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def phone_formatted(self) -> str:
        p = self.phone
        return f"({p[:3]}) {p[3:6]}-{p[6:]}"

    @property
    def phone_dashed(self) -> str:
        p = self.phone
        return f"{p[:3]}-{p[3:6]}-{p[6:]}"

    @property
    def ssn_dashed(self) -> str:
        s = self.ssn
        return f"{s[:3]}-{s[3:5]}-{s[5:]}"

    @property
    def ssn_dotted(self) -> str:
        s = self.ssn
        return f"{s[:3]}.{s[3:5]}.{s[5:]}"

    @property
    def ssn_slashed(self) -> str:
        s = self.ssn
        return f"{s[:3]}/{s[3:5]}/{s[5:]}"

    def phone_with(self, sep: str) -> str:
        p = self.phone
        return f"{p[:3]}{sep}{p[3:6]}{sep}{p[6:]}"

    @property
    def dob_iso(self) -> str:
        return self.dob.isoformat()

    @property
    def dob_us(self) -> str:
        return self.dob.strftime("%m/%d/%Y")

    def raw_values(self) -> list[str]:
        """Every raw form the generator writes; none may appear in a masked output."""
        return [
            self.first_name,
            self.last_name,
            self.full_name,
            self.email,
            self.phone,
            self.phone_formatted,
            self.phone_dashed,
            self.ssn,
            self.ssn_dashed,
            self.street,
            self.street.split()[1],  # the street name
            self.ip,
            self.dob_iso,
            self.dob_us,
            self.email.split("@")[0],  # the full local part
            self.ssn_dotted,
            self.ssn_slashed,
            *(self.phone_with(sep) for sep in "/_\u2013\u2014"),
            *([self.ipv6] if self.ipv6 else []),
        ]


_letters = string.ascii_lowercase


def _word(prefix: str):
    return st.text(alphabet=_letters, min_size=4, max_size=8).map(lambda s: prefix + s)


@st.composite
def pii_records(draw) -> PII:
    """A hypothesis strategy of :class:`PII` records with distinctive values."""
    first = draw(_word("zq")).capitalize()
    last = draw(_word("xj")).capitalize()
    local = draw(_word("zz")) + draw(st.sampled_from(["", ".", "_", "+"])) + draw(_word("k"))
    domain = draw(st.sampled_from(["example.com", "mail.example.org", "test.io"]))
    area = draw(st.integers(201, 989))
    exchange = draw(st.integers(201, 999))
    line = draw(st.integers(0, 9999))
    ssn_area = draw(st.integers(1, 899).filter(lambda a: a != 666))
    ssn = f"{ssn_area:03d}{draw(st.integers(1, 99)):02d}{draw(st.integers(1, 9999)):04d}"
    street = f"{draw(st.integers(100, 9999))} {draw(_word('qv')).capitalize()} St"
    ip = "10." + ".".join(str(draw(st.integers(0, 255))) for _ in range(3))
    dob = draw(st.dates(min_value=dt.date(1940, 1, 1), max_value=dt.date(2005, 12, 31)))
    hexes = [draw(st.text(alphabet="abcdef", min_size=4, max_size=4)) for _ in range(4)]
    ipv6 = f"{hexes[0]}:{hexes[1]}::{hexes[2]}:{hexes[3]}"
    return PII(
        first,
        last,
        f"{local}@{domain}",
        f"{area}{exchange}{line:04d}",
        ssn,
        street,
        ip,
        dob,
        ipv6,
    )


# --------------------------------------------------------------------------- the check

_PHONE_SEP = "[\\s./_\\-\u2010-\u2015]"
_PHONE_SHAPED = re.compile(rf"\(?\d{{3}}\)?{_PHONE_SEP}?\d{{3}}{_PHONE_SEP}?\d{{4}}")
# an international number, its digits in groups of any size: "+44 51 2867 5309"
_INTL_SHAPED = re.compile(rf"\+\d(?:{_PHONE_SEP}?\(?\d+\)?)+")
# the first five digits of an SSN as an SSN shows them: "123-45", "123 45", "12345***",
# "123.45.6789" and "123/45/****" (with a dot or slash only in an SSN's whole shape)
_SSN_HEADS = re.compile(
    r"(?<!\d)(\d{3})[- \u2013\u2014](\d{2})(?!\d)|(?<!\d)(\d{5})[*xX#]"
    r"|(?<![\d.])(\d{3})([./_])(\d{2})\5[\d*]{4}(?!\d)"
)


def assert_no_pii(text: str, records: PII | Iterable[PII], where: str = "output") -> None:
    """Fail if ``text`` holds a raw PII value of ``records`` or a revealing part of one.

    Revealing parts: the full local part of an email, any 7 consecutive digits of a phone
    (also across the separators of a phone-shaped number), the first five digits of an
    SSN in an SSN's shape, a name, a street name, an IP address or a date of birth as
    given. Plain five-digit numbers (a seq, a zip code) are not taken for an SSN's head.
    """
    records = [records] if isinstance(records, PII) else list(records)
    low = text.casefold()
    runs = re.findall(r"\d+", text)
    shaped = [
        "".join(c for c in m if c.isdigit())
        for m in _PHONE_SHAPED.findall(text) + _INTL_SHAPED.findall(text)
    ]
    heads = {(a + b) or c or (d + f) for a, b, c, d, _, f in _SSN_HEADS.findall(text)}
    for p in records:
        for value in p.raw_values():
            assert value.casefold() not in low, f"raw PII {value!r} in {where}:\n{text[:3000]}"
        for i in range(len(p.phone) - 6):
            window = p.phone[i : i + 7]
            hit = next((r for r in runs + shaped if window in r), None)
            assert hit is None, f"7 digits {window!r} of phone {p.phone} in {where}: {hit!r}"
        assert p.ssn[:5] not in heads, f"SSN first five {p.ssn[:5]!r} in {where}"
        assert not any(p.ssn in r for r in runs), f"SSN {p.ssn} in {where}"


def frame_text(df: pd.DataFrame) -> str:
    """Everything a DataFrame shows, as text (CSV and JSON records, nested values too)."""
    records = json.dumps(df.to_dict(orient="records"), default=str, ensure_ascii=False)
    return df.to_csv(index=False) + "\n" + records + "\n" + "|".join(map(str, df.columns))


# --------------------------------------------------------------------------- lead events

_ids = itertools.count(1)


def _id(prefix: str) -> str:
    n = next(_ids)
    letters = "".join(_letters[(n // 26**i) % 26] for i in range(6))
    return f"{prefix}{letters}"


def lead_with_pii(p: PII, lead_id: str, at: dt.datetime, spouse: PII | None = None) -> list:
    """The events of one lead carrying ``p`` (and a spouse's data) wherever PII goes."""
    spouse = spouse or p
    snapshot = {
        "first_name": p.first_name,
        "last_name": p.last_name,
        "full_name": p.full_name,
        "email": p.email,
        "phone": p.phone,
        "ssn": p.ssn_dashed,
        "address": p.street,
        "ip_address": p.ip,
        "dob": p.dob_iso,
        "state": "TX",
        "email.valid": True,
        "spouse.email": spouse.email,
        "spouse": {"phone_1": spouse.phone_formatted, "ssn": spouse.ssn},
    }
    typed_phone = {
        "normal": p.phone,
        "raw": p.phone_formatted,
        "area": p.phone[:3],
        "exchange": p.phone[3:6],
        "line": p.phone[6:],
        "type": "mobile",
        "valid": True,
    }
    typed_email = {
        "normal": p.email.lower(),
        "raw": p.email,
        "user": p.email.split("@")[0],
        "domain": p.email.split("@")[1],
        "valid": True,
    }
    typed_dob = {
        "normal": p.dob_iso,
        "raw": p.dob_us,
        "year": p.dob.year,
        "month": p.dob.month,
        "day": p.dob.day,
    }
    typed_ssn = {
        "normal": p.ssn,
        "raw": p.ssn_dashed,
        "area": p.ssn[:3],
        "group": p.ssn[3:5],
        "serial": p.ssn[5:],
    }
    masked_already = {"normal": p.phone[:6] + "****", "masked": True}
    body_json = json.dumps(
        {
            "email": p.email,
            "phone": p.phone_dashed,
            "first_name": p.first_name,
            "lead": {"ssn": p.ssn, "dob": p.dob_us},
        }
    )
    body_form = (
        f"first_name={p.first_name}&last_name={p.last_name}&email={p.email.replace('@', '%40')}"
        f"&phone={p.phone}&ip={p.ip}"
    )
    body_xml = (
        f"<lead><first_name>{p.first_name}</first_name><phone>{p.phone_formatted}</phone>"
        f"<email>{p.email}</email><ssn>{p.ssn_dashed}</ssn></lead>"
    )
    local, domain = p.email.split("@")
    # PII in free text in shapes beyond the plain ones: a pair inside a pair's value, a
    # URL's query, a full name, a phone as a float, SSNs and phones with other separators,
    # an international number, IPv6 without digits, emails quoted, at a bare host or
    # with "@" as an HTML entity
    shapes = [
        f"reason: first_name={p.first_name}",
        f"see https://buyer.example/?first_name={p.first_name}&phone={p.phone}",
        f"Too young: date_of_birth={p.dob_iso}",
        f"Name: {p.first_name} {p.last_name}",
        f"callback {float(p.phone)}",
        f"ssn {p.ssn_dotted} or {p.ssn_slashed}",
        " ".join(p.phone_with(sep) for sep in "/_\u2013\u2014"),
        f"+44 {p.phone[:2]} {p.phone[2:6]} {p.phone[6:]}",
        f"from {p.ipv6}",
        f'mail "{p.first_name} {p.last_name}"@{domain}',
        f"{local}@localhost or {local}&#64;{domain}",
    ]

    def ev(type_, metadata, ms, **extra):
        e = {
            "event_id": _id("evt_"),
            "type": type_,
            "timestamp": (at + dt.timedelta(milliseconds=ms)).isoformat(),
            "lead_id": lead_id,
            "flow_id": "flow_leaktest",
            "entity_id": "ent_leaktest",
            "step_id": "step_leaktest",
            "duration_ms": 30,
            "metadata": metadata,
            "lead_snapshot": snapshot,
        }
        e.update(extra)
        return e

    return [
        ev(
            "source.submitted",
            {
                "source": "Leak Source",
                "raw_data": {
                    "first_name": p.first_name,
                    "email": p.email,
                    "phone": p.phone_formatted,
                    "ssn": p.ssn_dashed,
                    "address": p.street,
                    "dob": p.dob_us,
                    # names a source gives its fields beyond the catalogue's own
                    "first_name_2": p.first_name,
                    "firstName1": p.first_name,
                    "given": p.first_name,
                    "nombre": p.first_name,
                    "vorname": p.last_name,
                    "customer": p.full_name,
                    "contact": p.full_name,
                    "addr1": p.street,
                    "street_line_1": p.street,
                    "born": p.dob_iso,
                    "bday": p.dob_us,
                    "dob_str": p.dob_iso,
                    # keys spelt with invisible or compatibility characters
                    "first\u200bname": p.first_name,
                    "last\u00adname": p.last_name,
                    "\uff46\uff49\uff52\uff53\uff54_name": p.first_name,
                    "\ufb01rst_name": p.first_name,
                    "phone_f": float(p.phone),
                    "notes": shapes,
                },
                "headers": {
                    "x-forwarded-for": p.ip,
                    "x-lead-email": p.email,
                    "user-agent": "curl/8.0",
                },
                "ip_address": p.ip,
                "source_config": {"posting_method": "json"},
            },
            0,
        ),
        ev(
            "source.accepted",
            {
                "source": "Leak Source",
                "parsed_fields": {
                    "phone": typed_phone,
                    "email": typed_email,
                    "dob": typed_dob,
                    "ssn": typed_ssn,
                    "phone_2": masked_already,
                },
                "acceptance_criteria": {"required": ["phone"], "passed": True},
                "cost": 1.0,
                "field_mapping": {"phone_1": "phone"},
            },
            10,
        ),
        ev(
            "enhancement.success",
            {
                "service": "Phone Validation",
                "request": {"method": "POST", "body": body_json},
                "response": {"status": 200, "body": body_form},
                "appended_fields": {"phone.valid": True},
                "cost": 0.01,
            },
            20,
        ),
        ev(
            "filter.failed",
            {
                "filter": "Service Area",
                "filter_id": "flt_1",
                "failed_rules": ["dob"],
                "failed_values": {"phone": int(p.phone), "dob": p.dob_iso, "ssn": p.ssn},
                "would_have_destination": "Buyer A",
                "rejection_reason": f"phone {p.phone_dashed} outside area; contact {p.email}",
            },
            30,
            outcome="failure",
        ),
        ev(
            "recipient.failed",
            {
                "recipient": "Buyer A",
                "rejection_reason": f"Duplicate of {p.email} / {p.phone_formatted} (SSN {p.ssn_dashed})",
                "buyer_response": {
                    "status": "rejected",
                    "message": f"lead {p.email} seen before",
                    "callback": int(p.phone),
                    "ids": [int(spouse.phone)],
                    "body": body_xml,
                },
                "business_logic": True,
            },
            40,
        ),
        ev(
            "enhancement.failure",
            {
                "service": f"Lookup of customer={p.full_name}",
                "error_type": "; ".join(shapes),
                "error_message": " | ".join(shapes),
                "retry_attempts": 1,
                "step_name": f"first_name: {p.first_name}",
                "field_errors": [
                    {"field": "last_name", "value": p.last_name},
                    {"name": "first_name", "value": p.first_name},
                    {"key": "email", "val": p.email},
                ],
                "response_body": json.dumps(json.dumps({"first_name": p.first_name})),
                "ids": [float(spouse.phone)],
            },
            25,
            outcome="failure",
        ),
        ev(
            "recipient.delivered",
            {
                "recipient": "Buyer B",
                "payload": {
                    "email": p.email,
                    "phone": p.phone,
                    "full_name": p.full_name,
                    "address_1": p.street,
                    "birth_date": p.dob_us,
                },
                "request": {"body": body_xml, "url": f"https://buyer.example/?email={p.email}"},
                "response": {"body": f"accepted {p.phone} for {p.email}"},
                "buyer_lead_id": "b-1",
                "revenue": 40.0,
            },
            50,
        ),
        ev(
            "feedback.received",
            {
                "feedback_type": f"name: {p.first_name} {p.last_name}",
                "status": "returned",
                "quality_metrics": {"contacted": True},
                "original_lead_id": lead_id,
                "rejection_reason": f"Returned: first_name={p.first_name}, from {p.ipv6}",
            },
            60,
        ),
    ]


def bad_events_with_pii(p: PII) -> list:
    """Events the store must quarantine, carrying PII in several places."""
    return [
        {
            "event_id": _id("evt_"),
            "type": "no.such.type",
            "lead_id": "lead_leakq",
            "timestamp": "2026-11-20T10:00:00Z",
            "metadata": {"email": p.email, "ssn": p.ssn},
            "lead_snapshot": {"first_name": p.first_name, "phone": p.phone},
        },
        {
            "event_id": _id("evt_"),
            "type": "source.submitted",
            "lead_id": "lead_leakq",
            "timestamp": p.phone_formatted,
            "metadata": {"source": "x"},
        },
        {
            "event_id": _id("evt_"),
            "type": "source.submitted",
            "lead_id": "lead_leakq",
            "timestamp": "2026-11-20T10:00:00Z",
            "metadata": {"source": "x"},
            "outcome": p.email,
            "duration_ms": p.ssn_dashed,
        },
        {  # a JSON escape of a lone surrogate in the raw text: not text, quarantined
            "event_id": _id("evt_"),
            "type": "source.submitted",
            "lead_id": "lead_leakq",
            "timestamp": "2026-11-20T10:00:00Z",
            "metadata": {"source": "x", "note": "\ud800 " + p.email},
        },
    ]


def broken_lines_with_pii(p: PII) -> str:
    """A JSONL text whose lines are not JSON but hold PII (the raw text is quarantined)."""
    return (
        "\n".join(
            [
                '{"event_id": "evt_broken", "lead_snapshot": {"email": "'
                + p.email
                + '", "ssn": "'
                + p.ssn_dashed[:8],
                "first_name=" + p.first_name + "; phone: " + p.phone_dashed + "; ip " + p.ip,
            ]
        )
        + "\n"
    )


# --------------------------------------------------------------------------- fixtures

MASKED_ROLES = [("ana", "analyst"), ("tess", "trainee"), ("cora", "compliance"), ("adam", "admin")]


@pytest.fixture(scope="module")
def leak_store(tmp_path_factory):
    """A writable copy of the sample store (sample.build gives a fresh one)."""
    folder = tmp_path_factory.mktemp("leak")
    path = sample.build(folder / "s.duckdb")
    store = workbench.open_store(path)
    yield store, folder
    store.close()


@pytest.fixture(scope="module")
def sessions(leak_store):
    store, _ = leak_store
    out = {role: connect(store, user=user, role=role) for user, role in MASKED_ROLES}
    yield out
    for s in out.values():
        s.close()


def masked_outputs(session, store, lead_id: str, p: PII, since: dt.datetime, full: bool = True):
    """Every public read of ``session`` for ``lead_id`` (``since``: its first event), as
    text. ``full=False`` keeps the reads that differ by role cheap."""
    out = {
        "timeline": frame_text(session.timeline(lead_id)),
        "sql paths": frame_text(
            session.sql(
                "SELECT lead_snapshot->>'email' AS e, lead_snapshot->'spouse' AS sp, "
                "metadata->'raw_data'->>'ssn' AS ssn, metadata->'parsed_fields' AS pf, "
                "json_extract_string(metadata, '$.request.body') AS body, "
                "metadata->'buyer_response'->>'body' AS xml, rejection_reason, error_type "
                "FROM events WHERE lead_id = $lead",
                {"lead": lead_id},
            )
        ),
        "repr": repr(session),
    }
    for query in (
        "SELECT CAST(lead_snapshot->>'email' AS INTEGER) FROM events WHERE lead_id = ?",
        "SELECT CAST(metadata->'raw_data'->>'phone' AS DATE) FROM events WHERE lead_id = ?",
        "SELECT CAST(lead_snapshot->>'ssn' AS BIGINT) FROM events WHERE lead_id = ?",
    ):
        with pytest.raises(QueryError) as e:
            session.sql(query, [lead_id])
        out[f"error {query[:30]}"] = str(e.value)
    if session.rights >= {"audit"}:
        out["audit"] = frame_text(session.audit(since=since - dt.timedelta(hours=1)))
    if not full:
        return out
    raw = store.events(lead_id=lead_id)
    out.update(
        {
            "find_leads": repr(session.find_leads(email=p.email, phone=p.phone_formatted)),
            "events(lead_id)": frame_text(session.events(lead_id=lead_id)),
            "events(type)": frame_text(
                session.events(type=["recipient.*", "filter.failed"], since=since)
            ),
            "sql *": frame_text(session.sql("SELECT * FROM events WHERE lead_id = ?", [lead_id])),
            "sql json_tree": frame_text(
                session.sql(
                    "SELECT t.key, t.value FROM events e, json_tree(e.metadata) t "
                    "WHERE e.lead_id = ?",
                    [lead_id],
                )
            ),
            "sql quarantine": frame_text(session.sql("SELECT * FROM quarantine")),
            "lead_summary(lead)": frame_text(session.lead_summary(lead_id)),
            "quarantined": frame_text(session.quarantined()),
            "mask_frame": frame_text(session.mask_frame(raw)),
            "mask_text": session.mask_text(json.dumps(raw.metadata.tolist())),
            "mask_value": repr([session.mask_value(k, v) for k, v in raw.lead_snapshot[0].items()]),
        }
    )
    return out


# --------------------------------------------------------------------------- the property


LEAD_EVENTS = 8  # the events lead_with_pii gives a lead
_SEEN: list[tuple[str, PII]] = []  # (lead_id, record) of every example, for the export test
_T0 = dt.datetime(2027, 6, 1, tzinfo=dt.UTC)  # after the sample's events: a clean window


def _add_lead(store, folder, p: PII, spouse: PII) -> tuple[str, dt.datetime]:
    lead_id = _id("lead_leak")
    at = _T0 + dt.timedelta(hours=len(_SEEN))
    events = lead_with_pii(p, lead_id, at, spouse)
    report = store.append(events)
    assert report.stored == len(events) == LEAD_EVENTS, str(report)
    assert store.append(bad_events_with_pii(p)).quarantined == 4
    broken = folder / "broken.jsonl"
    broken.write_text(broken_lines_with_pii(p))
    assert store.append(broken).quarantined == 2
    _SEEN.extend([(lead_id, p), (lead_id, spouse)])
    return lead_id, at


# no shrinking: every example appends to the shared store, so shrinking would replay
# slow examples for minutes; the failing example and its message name the leak anyway
@settings(
    max_examples=8,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(p=pii_records(), spouse=pii_records())
def test_no_masked_output_holds_raw_pii(leak_store, sessions, p, spouse):
    store, folder = leak_store
    lead_id, at = _add_lead(store, folder, p, spouse)
    for role, session in sessions.items():
        assert session.masked
        outputs = masked_outputs(session, store, lead_id, p, at, full=role == "analyst")
        for where, text in outputs.items():
            assert_no_pii(text, [p, spouse], f"{role} {where}")
        if role == "analyst":  # a search by the raw values finds the lead, and only says so
            assert repr(lead_id) in outputs["find_leads"]


@settings(
    max_examples=1,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(p=pii_records(), spouse=pii_records())
def test_exports_hold_no_raw_pii(leak_store, sessions, p, spouse):
    """One export of the whole store, checked against the PII of every example so far."""
    store, folder = leak_store
    _add_lead(store, folder, p, spouse)
    session = sessions["analyst"]
    path = folder / "export.jsonl"
    assert session.export(path) == store.count(("hot", "warm"))
    by_lead: dict[str, list[PII]] = {}
    for lead_id, record in _SEEN:
        by_lead.setdefault(lead_id, []).append(record)
    checked = 0
    with path.open() as f:
        for line in f:
            lead_id = json.loads(line)["lead_id"]
            if lead_id in by_lead:
                assert_no_pii(line, by_lead[lead_id], f"export of {lead_id}")
                checked += 1
    assert checked == LEAD_EVENTS * len(by_lead)


def test_the_check_catches_each_kind_of_leak():
    p = PII(
        "Zqalpha",
        "Xjbeta",
        "zzlocal.kx@example.com",
        "5125551234",
        "123456789",
        "100 Qvmain St",
        "10.1.2.3",
        dt.date(1980, 1, 2),
    )
    for text in (
        "Zqalpha",
        "mail zzlocal.kx at example",
        "call 555 1234? no: 5551234",
        "(512) 555-1234",
        "SSN 123-45-****",
        "ssn 12345****",
        "1980-01-02",
        "the street Qvmain",
        "from 10.1.2.3",
    ):
        with pytest.raises(AssertionError):
            assert_no_pii(text, p)
    assert_no_pii("Z*** j***@example.com (512) ***-**** ***-**-6789 1980-**-** 10.1.***.***", p)


def test_a_grant_shows_raw_pii_so_the_check_would_see_a_leak(leak_store, sessions):
    store, _ = leak_store
    p = PII(
        "Zqgrant",
        "Xjgrant",
        "zzgrant.kk@example.com",
        "7135550199",
        "234567890",
        "200 Qvgrant St",
        "10.9.8.7",
        dt.date(1975, 5, 6),
    )
    store.append(lead_with_pii(p, "lead_grantcheck", dt.datetime(2026, 11, 22, tzinfo=dt.UTC)))
    session = sessions["compliance"]
    with session.unmask(purpose="leak test positive control", minutes=1):
        text = frame_text(session.timeline("lead_grantcheck"))
        with pytest.raises(AssertionError):
            assert_no_pii(text, p)
    assert_no_pii(frame_text(session.timeline("lead_grantcheck")), p)
