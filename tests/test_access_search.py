"""find_leads finds leads by a whole raw value and is no oracle for masked values."""

import string

import pytest

from workbench.access import SearchLimitError, connect, load_access_config

from .conftest import make_event

EMAIL = "rosalind.franklin@example.com"
PHONE = "7135550142"


@pytest.fixture
def searchable(store):
    snap = {"email": EMAIL, "phone": PHONE, "first_name": "Rosalind", "ssn": "123-45-6789"}
    store.append(
        [
            make_event(lead_id="lead_R", lead_snapshot=snap),
            make_event(
                "recipient.failed",
                lead_id="lead_R",
                metadata={
                    **make_event("recipient.failed")["metadata"],
                    "buyer_response": {"body": f"dup of {EMAIL} / call {PHONE}"},
                },
            ),
            make_event(lead_id="lead_S", lead_snapshot={"email": "ros@example.com"}),
        ]
    )
    return store


def test_whole_values_are_found_in_fields_and_in_text(searchable):
    s = connect(searchable, user="tess")
    assert s.find_leads(email=EMAIL.upper()) == ["lead_R"]
    assert s.find_leads(phone="(713) 555-0142") == ["lead_R"]
    assert s.find_leads(email="ros@example.com") == ["lead_S"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"email": "rosalind.franklin@example"},
        {"email": "rosalind.franklin@"},
        {"email": "r@"},
        {"phone": "713555"},
        {"ssn": "6789"},
        {"date_of_birth": "1980"},
        {"first_name": "R"},
    ],
)
def test_partial_values_are_refused(searchable, kwargs):
    s = connect(searchable, user="tess")
    with pytest.raises(ValueError, match="whole"):
        s.find_leads(**kwargs)


@pytest.mark.parametrize(
    "value",
    [
        "osalind.franklin@example.com",
        "alind.franklin@example.com",
        "franklin@example.com",
        "rosalind.franklin@example.co",
        "rosalind.franklin@example.com.au",
    ],
)
def test_a_prefix_or_substring_of_an_email_finds_nothing(searchable, value):
    s = connect(searchable, user="tess")
    assert s.find_leads(email=value) == []


def test_recovering_an_email_from_its_mask_fails(searchable):
    """The attack that worked: grow the hidden part a character at a time, from the
    known domain leftwards, asking whether the lead still matches."""
    roles = {"trainee": {"rights": ["read", "search"], "max_searches_per_minute": 10_000}}
    s = connect(searchable, user="tess", config={"roles": roles})
    masked = s.sql("SELECT lead_snapshot->>'email' AS e FROM events WHERE lead_id = 'lead_R'").e[0]
    assert masked == "r***@example.com"
    known = "@example.com"
    for _ in range(5):
        hits = [
            c for c in string.ascii_lowercase + "." if "lead_R" in s.find_leads(email=f"{c}{known}")
        ]
        if not hits:
            break
        known = hits[0] + known
    assert known == "@example.com"  # nothing learned beyond the mask


def test_searches_are_rate_limited_and_refusals_audited(searchable):
    s = connect(searchable, user="tess")
    for _ in range(30):
        s.find_leads(email="someone.else@example.com")
    with pytest.raises(SearchLimitError, match="30 times a minute"):
        s.find_leads(email=EMAIL)
    admin = connect(searchable, user="adam", role="admin")
    trail = admin.audit(user="tess", action="find_leads")
    assert (trail.outcome == "refused").sum() == 1
    assert EMAIL not in trail.detail.str.cat() and "r***@example.com" in trail.detail.str.cat()


def test_the_limit_is_per_role_in_the_config(searchable):
    config = load_access_config(
        {"roles": {"trainee": {"rights": ["read", "search"], "max_searches_per_minute": 2}}}
    )
    s = connect(searchable, user="tess", config=config)
    s.find_leads(email=EMAIL)
    s.find_leads(email=EMAIL)
    with pytest.raises(SearchLimitError):
        s.find_leads(email=EMAIL)
