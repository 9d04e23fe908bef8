"""Ids that carry personal data: an event whose id is an email address, a phone number or
an SSN is quarantined at ingest.

Masking works on field values: ``lead_snapshot.email`` is masked for every role that
does not hold a grant, but ids (event_id, lead_id, flow_id, entity_id, step_id) are
shown as they are, everywhere: timelines, summaries, charts, exports. An id made of a
person's email or phone number would carry it past every mask, so such an event is
kept aside with the reason (never the value) instead of stored.

What counts, as RE2 reads it, anywhere in the id:

* an email address: ``x@domain.tld`` (a top-level domain of two letters or more);
* a phone number: a run of digits and ``( ) + . -`` or spaces holding 10 to 15 digits
  (E.164 allows 15), that stands alone: nothing but the start, the end or another
  separator such as ``_`` or ``:`` beside it. ``lead_5125550123`` and
  ``lead_(512) 867-5309`` are phone numbers; ``evt_test0000000000000001`` (digits
  inside a word) and a 24-hex API id are not;
* an SSN written as one: ``078-05-1120``, ``078.05.1120``, ``078 05 1120``.

Not caught: nine bare digits (as likely a record number as an SSN), names, and
numbers longer than 15 digits.

The check runs once per row, over the five ids joined by a unit separator: in Arrow
for text columns (:func:`flags`, one regular expression over the batch, a few per
cent of an append), in SQL for ids given as numbers or other types. Which id and what
it looks like is worked out in SQL only for the rows it flags.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["ID_FIELDS", "FLAG_COLUMN", "KINDS", "flags", "text_ids", "reason_sql"]

#: The ids of an event: shown unmasked to every role, so they must not be personal data.
ID_FIELDS = ("event_id", "lead_id", "flow_id", "entity_id", "step_id")
#: The column :func:`flags` adds to a batch: true where a text id looks like personal data.
FLAG_COLUMN = "_personal_id"

_SEP = "\x1f"  # joins the ids; a boundary for every pattern, never part of a match
_BOUNDARY = "[^0-9\\pL ().+-]"
_EMAIL = f"[^\\s@{_SEP}]@[^\\s@{_SEP}]+\\.\\pL{{2,}}"
_PHONE = f"(^|{_BOUNDARY})[ ().+-]*([0-9][ ().+-]*){{10,15}}($|{_BOUNDARY})"
_SSN = "(^|[^0-9\\pL])[0-9]{3}[ .-][0-9]{2}[ .-][0-9]{4}($|[^0-9\\pL])"

#: (what an id looks like, its RE2 pattern), in the order reasons name them.
KINDS = (("an email address", _EMAIL), ("a phone number", _PHONE), ("an SSN", _SSN))

_ANY = "|".join(f"({pattern})" for _, pattern in KINDS)


def text_ids(schema: pa.Schema) -> tuple[str, ...]:
    """The id columns of ``schema`` that are plain text: :func:`flags` checks these."""
    return tuple(c for c in ID_FIELDS if c in schema.names and schema.field(c).type == pa.string())


def flags(table: pa.Table) -> pa.ChunkedArray | None:
    """Per row of ``table``, whether one of its text ids looks like personal data (None
    when it has no text ids). Ids of other types are left to :func:`reason_sql`.

    >>> t = pa.table({"event_id": ["evt_1", "evt_2"], "lead_id": ["lead_a", "a@b.example"]})
    >>> flags(t).to_pylist()
    [False, True]
    """
    text = text_ids(table.schema)
    if not text or not table.num_rows:
        return None
    # a missing id joins as nothing ("skip" would drop rows whose ids are all missing)
    joined = pc.binary_join_element_wise(
        *(table.column(c) for c in text), _SEP, null_handling="replace", null_replacement=""
    )
    return pc.fill_null(pc.match_substring_regex(joined, _ANY), False)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def reason_sql(flagged: tuple[str, ...] = (), flag_column: bool = False) -> tuple[str, str]:
    """(condition, reason) in SQL over a batch's normalised ids: true when an id looks
    like personal data, and the reason naming the first such id and what it looks like
    (never its value). ``flagged`` ids were checked by :func:`flags` into the flag
    column; the others are checked here.

    "...; ids must not..." because a masked reader's free-text mask takes the words
    after "address:" for an address."""
    rest = [f for f in ID_FIELDS if f not in flagged]
    parts = [FLAG_COLUMN] if flag_column else []
    if rest:
        parts.append(f"regexp_matches(concat_ws(chr(31), {', '.join(rest)}), {_literal(_ANY)})")
    condition = " OR ".join(parts) if parts else "false"
    whens = " ".join(
        f"WHEN regexp_matches({f}, {_literal(pattern)}) THEN "
        + _literal(f"{f} looks like {kind}; ids must not carry personal data")
        for f in ID_FIELDS
        for kind, pattern in KINDS
    )
    fallback = _literal("an id looks like personal data; ids must not carry personal data")
    return f"coalesce({condition}, false)", f"CASE {whens} ELSE {fallback} END"
