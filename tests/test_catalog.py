import pytest

from workbench import catalog
from workbench.catalog import Catalog, CatalogError, FieldType

GUIDE_TYPES = [
    "source.submitted",
    "source.accepted",
    "source.rejected",
    "filter.passed",
    "filter.failed",
    "enhancement.success",
    "enhancement.failure",
    "enhancement.error",
    "recipient.delivered",
    "recipient.failed",
    "recipient.error",
    "feedback.received",
    "feedback.processed",
    "flow.completed",
    "retry.attempted",
]


def test_the_fifteen_guide_types_are_catalogued():
    names = [t.name for t in Catalog()]
    assert names == GUIDE_TYPES


def test_each_type_says_when_outcome_and_what_it_carries():
    for et in Catalog():
        assert et.when and et.use
        assert et.implied_outcome in catalog.OUTCOMES
        assert et.required_metadata, et.name


@pytest.mark.parametrize(
    "name, keys",
    [
        (
            "recipient.delivered",
            {"recipient", "payload", "request", "response", "buyer_lead_id", "revenue"},
        ),
        ("source.rejected", {"rejection_reason", "failed_validations", "field_errors"}),
        ("filter.failed", {"filter", "failed_rules", "failed_values", "would_have_destination"}),
        ("enhancement.error", {"http_status", "timeout", "circuit_breaker"}),
        (
            "flow.completed",
            {"total_duration_ms", "steps_executed", "final_outcome", "total_cost", "total_revenue"},
        ),
    ],
)
def test_required_metadata_follows_the_guide(name, keys):
    assert keys <= set(catalog.get(name).required_metadata)


def test_implied_outcomes():
    assert catalog.get("recipient.error").implied_outcome == "error"
    assert catalog.get("filter.failed").implied_outcome == "failure"
    assert catalog.get("source.accepted").implied_outcome == "success"


def test_unknown_type_error_lists_known_types():
    with pytest.raises(CatalogError, match="recipient.delivered"):
        catalog.get("recipient.delivrd")


def test_custom_type_registration_and_checks():
    cat = Catalog()
    et = cat.register(
        "quality.scored", when="A lead gets a quality score", required_metadata=["score"]
    )
    assert et.custom and et.category == "quality" and "quality.scored" in cat
    # same definition again is harmless, another definition under the name is refused
    cat.register("quality.scored", when="A lead gets a quality score", required_metadata=["score"])
    with pytest.raises(CatalogError, match="another definition"):
        cat.register("quality.scored", when="something else")
    with pytest.raises(CatalogError, match="dotted lower-case"):
        cat.register("Bad Name", when="x")
    with pytest.raises(CatalogError, match="unknown outcome"):
        cat.register("x.y", when="x", outcomes=["maybe"])
    with pytest.raises(CatalogError, match="already a built-in"):
        cat.register("flow.completed", when="redefined")


def test_example_metadata_satisfies_requirements():
    for et in Catalog():
        assert et.missing_metadata(catalog.example_metadata(et.name)) == []


@pytest.mark.parametrize(
    "field, expected, pii",
    [
        ("email", FieldType.EMAIL, True),
        ("phone_1", FieldType.PHONE, True),
        ("ssn", FieldType.SSN, True),
        ("first_name", FieldType.FIRST_NAME, True),
        ("dob", FieldType.DATE_OF_BIRTH, True),
        ("ip_address", FieldType.IP_ADDRESS, True),
        ("address_1", FieldType.STREET_ADDRESS, True),
        ("state", FieldType.STATE, False),
        ("zip", FieldType.ZIP, False),
        ("phone.valid", FieldType.BOOLEAN, False),
        ("appended.phone_score", FieldType.NUMBER, False),
        ("trustedform.age_seconds", FieldType.NUMBER, False),
        ("spouse.email", FieldType.EMAIL, True),
        ("favourite_colour", FieldType.TEXT, False),
    ],
)
def test_field_types(field, expected, pii):
    assert catalog.field_type(field) is expected
    assert catalog.field_type(field).pii is pii


def test_declaring_a_field_type_makes_it_pii():
    assert not catalog.field_type("co_applicant_tax_id").pii
    catalog.register_field("co_applicant_tax_id", "ssn")
    try:
        assert catalog.field_type("co_applicant_tax_id") is FieldType.SSN
        assert "co_applicant_tax_id" in catalog.lead_fields(pii=True)
    finally:
        catalog.FIELD_TYPES.pop("co_applicant_tax_id")
    with pytest.raises(CatalogError, match="unknown field type"):
        catalog.register_field("x", "passport")


@pytest.mark.parametrize(
    "field, expected",
    [
        ("first_name_2", FieldType.FIRST_NAME),
        ("firstName1", FieldType.FIRST_NAME),
        ("first_name1", FieldType.FIRST_NAME),
        ("addr1", FieldType.STREET_ADDRESS),
        ("street_line_1", FieldType.STREET_ADDRESS),
        ("born", FieldType.DATE_OF_BIRTH),
        ("birth", FieldType.DATE_OF_BIRTH),
        ("bday", FieldType.DATE_OF_BIRTH),
        ("dob_str", FieldType.DATE_OF_BIRTH),
        ("date_of_birth_text", FieldType.DATE_OF_BIRTH),
        ("given", FieldType.FIRST_NAME),
        ("customer", FieldType.FULL_NAME),
        ("contact", FieldType.FULL_NAME),
        ("nombre", FieldType.FIRST_NAME),
        ("vorname", FieldType.FIRST_NAME),
        ("Pr\u00e9nom", FieldType.FIRST_NAME),
        ("first_name\u200b", FieldType.FIRST_NAME),
        ("first\u00adname", FieldType.FIRST_NAME),
        ("\uff46\uff49\uff52\uff53\uff54_name", FieldType.FIRST_NAME),
        ("\ufb01rst_name", FieldType.FIRST_NAME),
        ("F\u0130RST_NAME", FieldType.FIRST_NAME),
        # not copies of a PII field
        ("contact_attempts", FieldType.TEXT),
        ("contacted", FieldType.TEXT),
        ("version2", FieldType.TEXT),
        ("phone_score_2", FieldType.NUMBER),
    ],
)
def test_copies_and_spellings_of_a_field_have_its_type(field, expected):
    assert catalog.field_type(field) is expected
