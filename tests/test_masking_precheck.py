"""The SQL pre-check of masked text columns lets through only text masking leaves as it is.

Masked views call Python to mask a text value only when ``needs_work_re2()`` matches it
(DuckDB's RE2 runs in C++, so reasons like "Invalid phone format: expected 10 digits"
cost nothing). That is safe only if every text the pattern does not match masks to
itself: this property is what these tests check, on text built from PII shapes, PII
and plain keys, separators and words.
"""

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import catalog
from workbench.access import masking as _masking

FRAGMENTS = [
    "john.smith@example.com",
    "jo%40x.com",
    "(512) 555-0123",
    "512-555-0123",
    "5125550123",
    "123-45-6789",
    "203.0.113.9",
    "1980-01-02",
    "12/31/1980",
    "90210",
    "TX",
    "name",
    "first_name",
    "email",
    "phone_1",
    "ssn",
    "dob",
    "ip",
    "address",
    "zip",
    "state",
    "format",
    "reason",
    "score",
    "hours",
    "field",
    ": ",
    "=",
    " ",
    ", ",
    "&",
    '"',
    "'",
    "(",
    ")",
    "-",
    "/",
    ".",
    "<",
    ">",
    "{",
    "}",
    "[",
    "]",
    "Invalid",
    "expected",
    "10 digits",
    "got 9",
    "08:00-20:00",
    "America/Chicago",
    "John",
    "Smith",
    "Main St",
    "45",
    "7",
    "2026",
    "ü",
    "٣",
    "unknown",
    "number",
    "n/a",
    "mobile",
    "birth_date",
    "social_security_number",
    "\n",
]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=12).map("".join))
def test_text_the_precheck_lets_through_masks_to_itself(text):
    pattern = re.compile(_masking.needs_work_re2())
    if not pattern.search(text):
        assert _masking.mask_free_text(text) == text


def test_precheck_skips_the_reasons_analyses_group_by():
    pattern = re.compile(_masking.needs_work_re2())
    for reason in (
        "Invalid phone format: expected 10 digits, got 9",
        "Outside business hours (08:00-20:00 America/Chicago, Mon,Tue,Wed,Thu,Fri,Sat)",
        "Missing required field: email",
        "Phone score below the minimum of 30",
        "Not buying leads with state CA at this time",
        "Invalid phone: number is disconnected or not in service",
    ):
        assert not pattern.search(reason), reason


def test_a_field_declared_later_is_covered():
    assert not re.search(_masking.needs_work_re2(), "tax_ref: X9")
    catalog.register_field("tax_ref", "ssn")
    try:
        assert re.search(_masking.needs_work_re2(), "tax_ref: X9")
    finally:
        catalog.FIELD_TYPES.pop("tax_ref")
