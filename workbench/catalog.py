"""The event catalogue: every event type the reference guide names, what it means, and
what it must carry.

Each type is declared once, as data with its documentation (when it happens, the
outcome it implies, the metadata keys it must carry, what an analyst uses it for), so
the list of types is also their reference. The store validates every incoming event
against this catalogue; custom types (the guide's "Custom Events") are registered here
and validated the same way.

The second half declares the *field types* of lead fields (email, phone, ssn, name,
address, ip, date of birth, ...). Masking in the access layer works from these types,
so a new PII field is protected by declaring its type, not by editing masking code.

>>> from workbench import catalog
>>> catalog.get("recipient.delivered").required_metadata[:2]
('recipient', 'payload')
>>> catalog.field_type("email").pii
True
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from .errors import WorkbenchError

__all__ = [
    "OUTCOMES",
    "EventType",
    "Catalog",
    "CatalogError",
    "FieldType",
    "FIELD_TYPES",
    "DEFAULT_CATALOG",
    "get",
    "event_types",
    "register_event_type",
    "field_type",
    "register_field",
    "lead_fields",
    "example_metadata",
]

#: The four outcomes an event can record (DESIGN.md, the event record).
OUTCOMES: tuple[str, ...] = ("success", "failure", "error", "skipped")

_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_KEY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class CatalogError(WorkbenchError, ValueError):
    """An event type or field declaration that the catalogue cannot accept."""


@dataclass(frozen=True)
class EventType:
    """One event type: its name, meaning and what it must carry.

    ``outcomes`` lists the outcomes an event of this type may record; the first is
    the one the type implies when an event arrives without an outcome.
    ``required_metadata`` are top-level keys of ``metadata`` that must be present;
    ``optional_metadata`` are keys the guide mentions that may be present.
    """

    name: str
    category: str
    when: str
    outcomes: tuple[str, ...]
    required_metadata: tuple[str, ...]
    optional_metadata: tuple[str, ...] = ()
    use: str = ""
    custom: bool = False

    @property
    def implied_outcome(self) -> str:
        """The outcome an event of this type records when none is given."""
        return self.outcomes[0]

    def missing_metadata(self, metadata: Mapping) -> list[str]:
        """The required keys absent from ``metadata`` (empty when it is complete)."""
        return [k for k in self.required_metadata if k not in metadata]

    def describe(self) -> str:
        """A few lines for people: when, outcome, what it carries, what it is for."""
        lines = [
            f"{self.name}  ({self.category})",
            f"  when:     {self.when}",
            f"  outcome:  {', '.join(self.outcomes)}",
            f"  carries:  {', '.join(self.required_metadata) or '(nothing required)'}",
        ]
        if self.optional_metadata:
            lines.append(f"  may carry: {', '.join(self.optional_metadata)}")
        if self.use:
            lines.append(f"  use:      {self.use}")
        return "\n".join(lines)


def _t(name, category, when, outcomes, required, optional=(), use=""):
    return EventType(
        name=name,
        category=category,
        when=when,
        outcomes=tuple(outcomes),
        required_metadata=tuple(required),
        optional_metadata=tuple(optional),
        use=use,
    )


# Step events may also be recorded as skipped (a step the flow did not run for this
# lead); the import of the platform's events API produces such events.
_STEP = ("skipped",)

#: The fifteen event types of the reference guide, in the guide's order.
BUILTIN_TYPES: tuple[EventType, ...] = (
    _t(
        "source.submitted",
        "source",
        "Lead arrives at source endpoint",
        ["success"],
        ["source", "raw_data", "headers", "ip_address", "source_config"],
        use="See exactly what was sent",
    ),
    _t(
        "source.accepted",
        "source",
        "Lead passes source validation",
        ["success"],
        ["source", "parsed_fields", "acceptance_criteria", "cost", "field_mapping"],
        use="Verify parsing and initial acceptance",
    ),
    _t(
        "source.rejected",
        "source",
        "Lead fails source validation",
        ["failure", "error"],
        ["source", "rejection_reason", "failed_validations", "field_errors"],
        use="Help sources fix their data",
    ),
    _t(
        "filter.passed",
        "filter",
        "Lead passes filter rules",
        ["success", *_STEP],
        ["filter", "filter_id", "rules_evaluated", "results"],
        use="Verify routing logic",
    ),
    _t(
        "filter.failed",
        "filter",
        "Lead fails filter rules",
        ["failure", *_STEP],
        [
            "filter",
            "filter_id",
            "failed_rules",
            "failed_values",
            "would_have_destination",
            "rejection_reason",
        ],
        use="Understand why leads are filtered",
    ),
    _t(
        "enhancement.success",
        "enhancement",
        "Enhancement returns data",
        ["success", *_STEP],
        ["service", "request", "response", "appended_fields", "cost"],
        use="Verify enhancement working correctly",
    ),
    _t(
        "enhancement.failure",
        "enhancement",
        "Enhancement fails",
        ["failure", *_STEP],
        ["service", "error_type", "error_message", "retry_attempts"],
        optional=["cost", "http_status"],
        use="Debug integration issues",
    ),
    _t(
        "enhancement.error",
        "enhancement",
        "Technical error occurs",
        ["error", *_STEP],
        ["service", "http_status", "timeout", "circuit_breaker"],
        optional=["error_type", "error_message", "retry_attempts"],
        use="Monitor service health",
    ),
    _t(
        "recipient.delivered",
        "recipient",
        "Successful delivery",
        ["success", *_STEP],
        ["recipient", "payload", "request", "response", "buyer_lead_id", "revenue"],
        optional=["http_status", "integration"],
        use="Prove delivery, track revenue",
    ),
    _t(
        "recipient.failed",
        "recipient",
        "Buyer rejects lead",
        ["failure", *_STEP],
        ["recipient", "rejection_reason", "buyer_response", "business_logic"],
        optional=["revenue", "http_status", "payload", "request"],
        use="Understand buyer rejections",
    ),
    _t(
        "recipient.error",
        "recipient",
        "Technical delivery failure",
        ["error", *_STEP],
        ["recipient", "error_type", "http_status", "retry_attempts", "timeout"],
        optional=["error_message", "request"],
        use="Debug delivery problems",
    ),
    _t(
        "feedback.received",
        "feedback",
        "Buyer sends status update",
        ["success", "failure"],
        ["feedback_type", "status", "quality_metrics", "original_lead_id"],
        optional=["recipient", "reason", "revenue_adjustment"],
        use="Track lead outcomes",
    ),
    _t(
        "feedback.processed",
        "feedback",
        "Feedback applied to lead",
        ["success", "failure", "error"],
        ["updates_applied", "metrics_changed", "routing_impact"],
        use="Verify feedback handling",
    ),
    _t(
        "flow.completed",
        "system",
        "All processing complete",
        ["success", "failure", "error"],
        ["total_duration_ms", "steps_executed", "final_outcome", "total_cost", "total_revenue"],
        use="Measure flow performance",
    ),
    _t(
        "retry.attempted",
        "system",
        "Retry occurs",
        ["failure", "success", "error"],
        ["original_failure", "retry_count", "retry_result", "elapsed_ms"],
        optional=["step", "service", "recipient"],
        use="Monitor retry effectiveness",
    ),
)


class Catalog:
    """A set of event types: the built-in fifteen plus any registered custom types.

    >>> cat = Catalog()
    >>> cat.register("quality.scored", when="A lead gets a quality score",
    ...              required_metadata=["score"]).name
    'quality.scored'
    """

    def __init__(self, types: Iterable[EventType] = BUILTIN_TYPES):
        self._types: dict[str, EventType] = {}
        self._lock = threading.Lock()
        for t in types:
            self._types[t.name] = t

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self):
        return iter(self._types.values())

    def __len__(self) -> int:
        return len(self._types)

    def names(self) -> list[str]:
        return list(self._types)

    def get(self, name: str) -> EventType:
        """The event type called ``name``; a clear error names the known types."""
        try:
            return self._types[name]
        except KeyError:
            raise CatalogError(
                f"unknown event type {name!r}; known types: {', '.join(self._types)}"
            ) from None

    def register(
        self,
        name: str,
        *,
        when: str,
        outcomes: Iterable[str] = ("success", "failure", "error", "skipped"),
        required_metadata: Iterable[str] = (),
        optional_metadata: Iterable[str] = (),
        use: str = "",
        category: str | None = None,
    ) -> EventType:
        """Add a custom event type (the guide's "Custom Events").

        Its events are validated like the built-in ones: a known name, an allowed
        outcome, every required metadata key present. Registering the same
        definition twice is harmless; a different definition under a taken name is
        refused.
        """
        et = make_event_type(
            name,
            when=when,
            outcomes=outcomes,
            required_metadata=required_metadata,
            optional_metadata=optional_metadata,
            use=use,
            category=category,
        )
        with self._lock:
            old = self._types.get(name)
            if old is not None and old != et:
                kind = "a built-in" if not old.custom else "a custom"
                raise CatalogError(
                    f"event type {name!r} is already {kind} type with another definition; "
                    "choose a new name"
                )
            self._types[name] = et
        return et

    def put(self, et: EventType) -> None:
        """Add or replace a type without checks (a store restoring its own definitions)."""
        with self._lock:
            self._types[et.name] = et

    def copy(self) -> Catalog:
        return Catalog(self._types.values())


def make_event_type(
    name: str,
    *,
    when: str,
    outcomes: Iterable[str] = ("success", "failure", "error", "skipped"),
    required_metadata: Iterable[str] = (),
    optional_metadata: Iterable[str] = (),
    use: str = "",
    category: str | None = None,
) -> EventType:
    """Build and check a custom :class:`EventType` without registering it."""
    if not isinstance(name, str) or not _TYPE_NAME.match(name):
        raise CatalogError(
            f"custom event type name {name!r} is not accepted: use dotted lower-case words "
            "such as 'quality.scored' or 'compliance.consent_checked'"
        )
    outcomes = tuple(outcomes)
    if not outcomes:
        raise CatalogError(f"event type {name!r} needs at least one outcome of {OUTCOMES}")
    bad = [o for o in outcomes if o not in OUTCOMES]
    if bad:
        raise CatalogError(f"event type {name!r}: unknown outcome(s) {bad}; accepted: {OUTCOMES}")
    required = tuple(required_metadata)
    for k in (*required, *optional_metadata):
        if not isinstance(k, str) or not _KEY_NAME.match(k):
            raise CatalogError(f"event type {name!r}: metadata key {k!r} is not a plain identifier")
    if not isinstance(when, str) or not when.strip():
        raise CatalogError(f"event type {name!r}: say when it happens (when='...')")
    return EventType(
        name=name,
        category=category or name.split(".", 1)[0],
        when=when.strip(),
        outcomes=outcomes,
        required_metadata=required,
        optional_metadata=tuple(optional_metadata),
        use=use,
        custom=True,
    )


#: The process-wide catalogue. Stores start from it and add their own custom types.
DEFAULT_CATALOG = Catalog()


def get(name: str) -> EventType:
    """The event type called ``name`` in the default catalogue."""
    return DEFAULT_CATALOG.get(name)


def event_types() -> list[EventType]:
    """Every event type in the default catalogue, built-in ones first."""
    return list(DEFAULT_CATALOG)


def register_event_type(name: str, **kwargs) -> EventType:
    """Register a custom event type in the default catalogue (see :meth:`Catalog.register`).

    >>> register_event_type("quality.scored", when="A lead gets a quality score",
    ...                     required_metadata=["score"]).implied_outcome
    'success'
    """
    return DEFAULT_CATALOG.register(name, **kwargs)


_EXAMPLES: dict[str, object] = {
    "source": "Acme Leads",
    "raw_data": {"first_name": "John", "phone": "5125550123"},
    "headers": {"content-type": "application/json"},
    "ip_address": "203.0.113.9",
    "source_config": {"posting_method": "json"},
    "parsed_fields": {"phone": "5125550123"},
    "acceptance_criteria": {"required": ["phone"], "passed": True},
    "cost": 1.25,
    "field_mapping": {"phone_1": "phone"},
    "rejection_reason": "Invalid phone format: expected 10 digits, got 9",
    "failed_validations": ["phone.format"],
    "field_errors": {"phone": "expected 10 digits, got 9"},
    "filter": "Service Area",
    "filter_id": "flt_001",
    "rules_evaluated": ["state in service area"],
    "results": {"state in service area": True},
    "failed_rules": ["state in service area"],
    "failed_values": {"state": "AK"},
    "would_have_destination": "Buyer A",
    "service": "Phone Validation",
    "request": {"method": "POST", "uri": "https://api.example.com", "body": {}},
    "response": {"status": 200, "body": {}},
    "appended_fields": {"phone.valid": True},
    "error_type": "timeout",
    "error_message": "no response within 5000 ms",
    "retry_attempts": 2,
    "http_status": 504,
    "timeout": {"limit_ms": 5000},
    "circuit_breaker": "closed",
    "recipient": "Buyer A",
    "payload": {"phone": "5125550123"},
    "buyer_lead_id": "buyer-lead-12345",
    "revenue": 45.0,
    "buyer_response": {"status": "rejected", "reason": "Duplicate lead"},
    "business_logic": True,
    "feedback_type": "conversion",
    "status": "converted",
    "quality_metrics": {"contacted": True},
    "original_lead_id": "lead_5T8nK3mP9Q2wR7xN",
    "updates_applied": {"status": "converted"},
    "metrics_changed": ["conversion_rate"],
    "routing_impact": "none",
    "total_duration_ms": 266,
    "steps_executed": 5,
    "final_outcome": "delivered",
    "total_cost": 1.26,
    "total_revenue": 45.0,
    "original_failure": "timeout",
    "retry_count": 1,
    "retry_result": "success",
    "elapsed_ms": 1200,
}


def example_metadata(event_type: str, catalog: Catalog | None = None) -> dict:
    """A metadata object that satisfies ``event_type``'s requirements, for docs and tests.

    >>> sorted(example_metadata("retry.attempted"))
    ['elapsed_ms', 'original_failure', 'retry_count', 'retry_result']
    """
    et = (catalog or DEFAULT_CATALOG).get(event_type)
    return {k: _EXAMPLES.get(k, f"example {k}") for k in et.required_metadata}


# --------------------------------------------------------------------------- fields


class FieldType(Enum):
    """The type of a lead field, and whether it is personal data (PII).

    The value names the masking rule the access layer applies.
    """

    EMAIL = ("email", True)
    PHONE = ("phone", True)
    SSN = ("ssn", True)
    FIRST_NAME = ("first_name", True)
    LAST_NAME = ("last_name", True)
    FULL_NAME = ("full_name", True)
    STREET_ADDRESS = ("street_address", True)
    IP_ADDRESS = ("ip_address", True)
    DATE_OF_BIRTH = ("date_of_birth", True)
    CITY = ("city", False)
    STATE = ("state", False)
    ZIP = ("zip", False)
    URL = ("url", False)
    NUMBER = ("number", False)
    BOOLEAN = ("boolean", False)
    DATE = ("date", False)
    TEXT = ("text", False)

    def __init__(self, label: str, pii: bool):
        self.label = label
        self.pii = pii


@dataclass(frozen=True)
class _FieldRule:
    pattern: re.Pattern
    type: FieldType


#: Lead fields by exact name (case-insensitive), as sources and buyers name them.
FIELD_TYPES: dict[str, FieldType] = {
    "email": FieldType.EMAIL,
    "email_address": FieldType.EMAIL,
    "phone": FieldType.PHONE,
    "phone_1": FieldType.PHONE,
    "phone_2": FieldType.PHONE,
    "phone_number": FieldType.PHONE,
    "mobile_phone": FieldType.PHONE,
    "home_phone": FieldType.PHONE,
    "work_phone": FieldType.PHONE,
    "ssn": FieldType.SSN,
    "social_security_number": FieldType.SSN,
    "first_name": FieldType.FIRST_NAME,
    "last_name": FieldType.LAST_NAME,
    "full_name": FieldType.FULL_NAME,
    "name": FieldType.FULL_NAME,
    "address": FieldType.STREET_ADDRESS,
    "address_1": FieldType.STREET_ADDRESS,
    "address_2": FieldType.STREET_ADDRESS,
    "street": FieldType.STREET_ADDRESS,
    "street_address": FieldType.STREET_ADDRESS,
    "ip": FieldType.IP_ADDRESS,
    "ip_address": FieldType.IP_ADDRESS,
    "dob": FieldType.DATE_OF_BIRTH,
    "date_of_birth": FieldType.DATE_OF_BIRTH,
    "birth_date": FieldType.DATE_OF_BIRTH,
    "birthdate": FieldType.DATE_OF_BIRTH,
    # how sources, buyers and other systems also name them
    "fname": FieldType.FIRST_NAME,
    "firstname": FieldType.FIRST_NAME,
    "forename": FieldType.FIRST_NAME,
    "given_name": FieldType.FIRST_NAME,
    "givenname": FieldType.FIRST_NAME,
    "middle_name": FieldType.FIRST_NAME,
    "lname": FieldType.LAST_NAME,
    "lastname": FieldType.LAST_NAME,
    "surname": FieldType.LAST_NAME,
    "family_name": FieldType.LAST_NAME,
    "familyname": FieldType.LAST_NAME,
    "maiden_name": FieldType.LAST_NAME,
    "fullname": FieldType.FULL_NAME,
    "names": FieldType.FULL_NAME,
    "human_name": FieldType.FULL_NAME,
    "humanname": FieldType.FULL_NAME,
    "emails": FieldType.EMAIL,
    "e_mail": FieldType.EMAIL,
    "mail": FieldType.EMAIL,
    "email_addr": FieldType.EMAIL,
    "phones": FieldType.PHONE,
    "telephone": FieldType.PHONE,
    "tel": FieldType.PHONE,
    "cell": FieldType.PHONE,
    "cell_phone": FieldType.PHONE,
    "mobile": FieldType.PHONE,
    "mobile_number": FieldType.PHONE,
    "phone_no": FieldType.PHONE,
    "ssn_number": FieldType.SSN,
    "social_security": FieldType.SSN,
    "tax_id": FieldType.SSN,
    "addr": FieldType.STREET_ADDRESS,
    "addresses": FieldType.STREET_ADDRESS,
    "address1": FieldType.STREET_ADDRESS,
    "address2": FieldType.STREET_ADDRESS,
    "address_line": FieldType.STREET_ADDRESS,
    "address_line_1": FieldType.STREET_ADDRESS,
    "address_line_2": FieldType.STREET_ADDRESS,
    "address_line1": FieldType.STREET_ADDRESS,
    "address_line2": FieldType.STREET_ADDRESS,
    "street1": FieldType.STREET_ADDRESS,
    "street2": FieldType.STREET_ADDRESS,
    "client_ip": FieldType.IP_ADDRESS,
    "remote_addr": FieldType.IP_ADDRESS,
    "remote_ip": FieldType.IP_ADDRESS,
    "user_ip": FieldType.IP_ADDRESS,
    "x_forwarded_for": FieldType.IP_ADDRESS,
    "birthday": FieldType.DATE_OF_BIRTH,
    "birth_day": FieldType.DATE_OF_BIRTH,
    "birth": FieldType.DATE_OF_BIRTH,
    "born": FieldType.DATE_OF_BIRTH,
    "bday": FieldType.DATE_OF_BIRTH,
    "b_day": FieldType.DATE_OF_BIRTH,
    # names as other languages and forms call them; a person under a role's name
    "given": FieldType.FIRST_NAME,
    "name_first": FieldType.FIRST_NAME,
    "nombre": FieldType.FIRST_NAME,
    "vorname": FieldType.FIRST_NAME,
    "prenom": FieldType.FIRST_NAME,
    "name_last": FieldType.LAST_NAME,
    "apellido": FieldType.LAST_NAME,
    "apellidos": FieldType.LAST_NAME,
    "nachname": FieldType.LAST_NAME,
    "customer": FieldType.FULL_NAME,
    "contact": FieldType.FULL_NAME,
    "street_line": FieldType.STREET_ADDRESS,
    "addr_line": FieldType.STREET_ADDRESS,
    "ipv4": FieldType.IP_ADDRESS,
    "ipv6": FieldType.IP_ADDRESS,
    "city": FieldType.CITY,
    "state": FieldType.STATE,
    "zip": FieldType.ZIP,
    "zip_code": FieldType.ZIP,
    "postal_code": FieldType.ZIP,
    "trustedform_cert_url": FieldType.URL,
}

# Appended and derived fields are named after the field they describe
# ("phone.valid", "email.valid", "appended.phone_score"): their values are facts about
# the field, not the field itself, so they are not PII.
_RULES: tuple[_FieldRule, ...] = (
    _FieldRule(re.compile(r"\.(valid|verified|deliverable|masked)$"), FieldType.BOOLEAN),
    _FieldRule(re.compile(r"(score|age_seconds|_count|_ms|_seconds)$"), FieldType.NUMBER),
    _FieldRule(re.compile(r"(^|[._])(timestamp|date|_at)$"), FieldType.DATE),
    _FieldRule(re.compile(r"(^|[._])email$"), FieldType.EMAIL),
    _FieldRule(re.compile(r"(^|[._])(phone|mobile)(_\d+)?$"), FieldType.PHONE),
    _FieldRule(re.compile(r"(^|[._])ssn$"), FieldType.SSN),
    _FieldRule(re.compile(r"(^|[._])(ip|ip_address)$"), FieldType.IP_ADDRESS),
    _FieldRule(re.compile(r"(^|[._])(dob|date_of_birth|birth_date)$"), FieldType.DATE_OF_BIRTH),
    _FieldRule(re.compile(r"(^|[._])(address(_\d)?|street)$"), FieldType.STREET_ADDRESS),
    _FieldRule(re.compile(r"(^|[._])first_name$"), FieldType.FIRST_NAME),
    _FieldRule(re.compile(r"(^|[._])last_name$"), FieldType.LAST_NAME),
    _FieldRule(re.compile(r"(^|[._])full_name$"), FieldType.FULL_NAME),
    # a person's name under any role: contact_name, customer_name, patient_name, ...
    _FieldRule(
        re.compile(
            r"(^|[._])(contact|customer|applicant|co_applicant|patient|person|member|"
            r"subscriber|consumer|borrower|insured|owner|spouse|legal|preferred|display|"
            r"nick|user|account_holder|card_holder|cardholder)_?name$"
        ),
        FieldType.FULL_NAME,
    ),
    _FieldRule(re.compile(r"(^|[._])(email|e_mail)(_address|_\d+)?$"), FieldType.EMAIL),
    _FieldRule(
        re.compile(r"(^|[._])(phone|mobile|cell|telephone)(_number|_no|_\d+)?$"), FieldType.PHONE
    ),
    _FieldRule(
        re.compile(r"(^|[._])(home|work|mailing|billing|shipping|street)_address$"),
        FieldType.STREET_ADDRESS,
    ),
)

_fields_lock = threading.Lock()


# A numbered copy of a field ("first_name_2", "addr1") or the field as text ("dob_str",
# "full_name_text") is the field itself.
_COPY_SUFFIX = re.compile(r"(?:[_.]?\d+|_(?:str|string|text|txt|raw|value|val))$")


def field_type(name: str) -> FieldType:
    """The declared type of lead field ``name`` (TEXT when nothing says otherwise).

    A numbered copy of a field or the field as text has the field's type.

    >>> field_type("phone_1").label, field_type("phone.valid").label
    ('phone', 'boolean')
    >>> field_type("firstName2").label, field_type("dob_str").label
    ('first_name', 'date_of_birth')
    """
    key = normal_key(name)
    for _ in range(3):
        ft = FIELD_TYPES.get(key)
        if ft is not None:
            return ft
        for rule in _RULES:
            if rule.pattern.search(key):
                return rule.type
        base = _COPY_SUFFIX.sub("", key)
        if base == key or not base:
            break
        key = base
    return FieldType.TEXT


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[\s\-]+")


def normal_key(name: str) -> str:
    """A field name as the catalogue compares it: camelCase and spaced or dashed names
    become snake_case, so ``firstName``, ``First-Name`` and ``first_name`` are one field.

    Other scripts' forms of the same letters count as the letters: fullwidth letters and
    ligatures (NFKC), invisible format characters (zero-width spaces, soft hyphens) and
    accents are dropped, so ``ｆｉｒｓｔ_ｎａｍｅ`` and ``first\u200bname`` name no other field.

    >>> normal_key("dateOfBirth"), normal_key("HumanName"), normal_key("first_name")
    ('date_of_birth', 'human_name', 'first_name')
    >>> normal_key("\uff46\uff49\uff52\uff53\uff54_name"), normal_key("Pr\u00e9nom")
    ('first_name', 'prenom')
    """
    if not name.isascii():
        name = _fold(name)
    if name.islower() and " " not in name and "-" not in name:
        return name
    return _SEPARATORS.sub("_", _CAMEL.sub("_", name.strip())).lower()


def _fold(name: str) -> str:
    """``name`` in plain letters: NFKC, no format characters, no accents."""
    s = unicodedata.normalize("NFKC", name)
    s = "".join(c for c in s if unicodedata.category(c) != "Cf")
    if s.isascii():
        return s
    s = unicodedata.normalize("NFKD", s)
    return unicodedata.normalize("NFC", "".join(c for c in s if not unicodedata.combining(c)))


def register_field(name: str, type: FieldType | str) -> FieldType:
    """Declare the type of a lead field, e.g. ``register_field("spouse_ssn", "ssn")``.

    Declaring a PII type is all it takes for the access layer to mask the field.
    """
    if isinstance(type, str):
        matches = [t for t in FieldType if t.label == type]
        if not matches:
            raise CatalogError(
                f"unknown field type {type!r}; accepted: {', '.join(t.label for t in FieldType)}"
            )
        type = matches[0]
    if not isinstance(name, str) or not name.strip():
        raise CatalogError(f"field name {name!r} must be a non-empty string")
    with _fields_lock:
        FIELD_TYPES[normal_key(name)] = type
    return type


def lead_fields(pii: bool | None = None) -> dict[str, FieldType]:
    """The declared lead fields, optionally only the PII (``pii=True``) or the others."""
    return {k: v for k, v in FIELD_TYPES.items() if pii is None or v.pii == pii}
