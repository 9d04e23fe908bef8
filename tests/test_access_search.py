"""find_leads finds leads by a whole raw value and is no oracle for masked values."""

import contextlib
import datetime as dt
import multiprocessing
import string
import threading

import pytest

import workbench
from workbench.access import SearchLimitError, connect, load_access_config
from workbench.access.audit import AuditTrail
from workbench.errors import InputError

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


# --------------------------------------------------------------------------- limits per user


def _limited(per_minute=3, per_day=300):
    roles = {
        "trainee": {
            "rights": ["read", "search"],
            "max_searches_per_minute": per_minute,
            "max_searches_per_day": per_day,
        }
    }
    return load_access_config({"roles": roles})


def _at(session, when):
    session._clock = lambda: when
    return session


def test_the_limit_is_per_user_not_per_session(searchable):
    """The attack that worked: a new session every 30 searches reset the limit."""
    config = _limited(per_minute=4)
    made = 0
    with pytest.raises(SearchLimitError, match="4 times a minute.*all their sessions"):
        for i in range(20):
            s = connect(searchable, user="tess", config=config)
            s.find_leads(email=f"someone{i}@example.com")
            made += 1
            s.close()
    assert made == 4
    # another user has a limit of their own
    assert connect(searchable, user="ana").find_leads(email=EMAIL) == ["lead_R"]


def test_the_minute_and_the_day_both_limit(searchable):
    config = _limited(per_minute=3, per_day=5)
    t0 = dt.datetime.now(dt.UTC)
    s = _at(connect(searchable, user="tess", config=config), t0)
    for _ in range(3):
        s.find_leads(email=EMAIL)
    with pytest.raises(SearchLimitError, match="3 times a minute.*try again in 60 s"):
        s.find_leads(email=EMAIL)
    _at(s, t0 + dt.timedelta(seconds=61))
    assert s.find_leads(email=EMAIL) == ["lead_R"]  # the fifth search of the day
    with pytest.raises(SearchLimitError, match="5 times a day"):
        s.find_leads(email=EMAIL)
    with pytest.raises(SearchLimitError, match="5 times a day"):
        other = connect(searchable, user="tess", config=config)
        _at(other, t0 + dt.timedelta(hours=20)).find_leads(email=EMAIL)
    later = connect(searchable, user="tess", config=config)
    later = _at(later, t0 + dt.timedelta(days=1, minutes=2))
    assert later.find_leads(email=EMAIL) == ["lead_R"]


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"email": "rosalind.franklin@"}, InputError),
        ({"date_of_birth": "1980"}, InputError),
        ({"state": "TX"}, InputError),
        ({"email": ["a@b.com"]}, InputError),
        ({}, InputError),
        ({"email": "\ud800@x.com"}, InputError),
        ({"first_name": "Ro\udfffsalind"}, InputError),
    ],
)
def test_refused_searches_are_audited_and_count(searchable, kwargs, error):
    config = _limited(per_minute=2)
    s = connect(searchable, user="tess", config=config)
    for _ in range(2):
        with pytest.raises(error) as e:
            s.find_leads(**kwargs)
        assert not isinstance(e.value, SearchLimitError)
    with pytest.raises(SearchLimitError):
        s.find_leads(email=EMAIL)  # the refusals used the minute up
    admin = connect(searchable, user="adam", role="admin")
    trail = admin.audit(user="tess", action="find_leads")
    assert trail.outcome.tolist() == ["refused"] * 3
    text = trail.detail.str.cat(sep="\n")
    assert "rosalind.franklin@" not in text and "\\ud800" not in text and admin.verify_audit().ok


def test_a_lone_surrogate_is_a_clear_error(searchable):
    s = connect(searchable, user="tess")
    with pytest.raises(InputError, match="lone surrogate"):
        s.find_leads(email="\ud800@x.com")


def test_a_daily_limit_stops_enumerating_a_birth_date(searchable):
    config = _limited(per_minute=10_000, per_day=50)
    tried = 0
    day = dt.date(1980, 1, 1)
    with pytest.raises(SearchLimitError, match="50 times a day"):
        while day.year == 1980:
            s = connect(searchable, user="tess", config=config)
            s.find_leads(date_of_birth=day.isoformat())
            tried += 1
            day += dt.timedelta(days=1)
    assert tried == 50


def _searcher(path: str, config: dict, n: int) -> int:
    """A process searching ``n`` times as tess (spawned); returns how many were allowed."""
    allowed = 0
    with connect(path, user="tess", config=config) as s:
        for i in range(n):
            try:
                s.find_leads(email=f"p{i}@example.com")
                allowed += 1
            except SearchLimitError:
                pass
    return allowed


def test_processes_searching_at_once_share_one_limit(tmp_path):
    path = tmp_path / "events.duckdb"
    with workbench.open_store(path) as store:
        store.append([make_event(lead_id="lead_R")])
    config = {"roles": {"trainee": {"rights": ["read", "search"], "max_searches_per_minute": 12}}}
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        allowed = pool.starmap(_searcher, [(str(path), config, 10)] * 3)
    assert sum(allowed) == 12
    trail = AuditTrail(str(path) + ".audit.sqlite")
    searches = trail.read(user="tess", action="find_leads")
    assert len(searches) == 30 and (searches.outcome == "ok").sum() == 12
    trail.close()


def test_threads_of_one_session_share_the_limit(searchable):
    s = connect(searchable, user="tess", config=_limited(per_minute=7))
    allowed = []

    def hammer(k):
        for i in range(5):
            with contextlib.suppress(SearchLimitError):
                s.find_leads(email=f"t{k}_{i}@example.com")
                allowed.append(1)

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 7
