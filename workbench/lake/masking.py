"""The masking rules of ``access.masking`` as Spark SQL expressions (Catalyst, no Python).

A masked view on Spark masks each column with an expression built here, so masking runs
in the executors wherever the data is, at the cluster's pace; no Python function is
called per row. The rules are those of :mod:`workbench.access.masking`, written as Java
regular expressions and Spark's array functions:

* a PII-typed column (``field``) by its type: an email keeps its first letter and
  domain, a phone its area code, an SSN its last four digits, a name each word's first
  letter, a street its first letter, an IP address its first two numbers, a birth date
  its year;
* free text (``text``, ``shape``) by the shapes of emails, phone numbers, SSNs, IP
  addresses, birth dates and runs of seven or more digits, and by ``key: value`` pairs
  whose key names a PII field (the value is withheld: ``first_name=***``);
* a JSON document (``json``) token by token: a string value under a key the catalogue
  types as PII is masked by that type, and so is every value inside an object or list
  under such a key (unless its key is a fact about the value: ``valid``, ``area``…);
  other strings as free text; a number of ten or more digits as a phone number unless
  its key says it is a time or a quantity. Keys are typed by the catalogue in Python
  once per view (the distinct keys of the lake are few), so a row costs look-ups.

Where an exact port of a Python rule would need a function per match, the Spark form
masks more, never less (a name in a ``key: value`` pair is withheld whole); the tests
hold both forms to the same leak checks and to equal output on the workbench's own data.
"""

from __future__ import annotations

import re

from .. import catalog
from ..access import masking as _py
from ..catalog import FieldType

__all__ = ["column_expr", "free_text", "typed", "json_doc", "key_types", "KEY_PATTERN"]

STARS = "***"
_U = "(?U)"  # Python's \d and \w are Unicode classes; so are Java's with this flag

# the Python patterns that port to Java as they are
_AT = r"(@|%40|\uff20|&#0*64;|&#[xX]0*40;)"
_DOMAIN = r"(\[[0-9A-Fa-f:.]+\]|[^\W_][\w-]*(?:\.[\w-]+)*)"
_EMAIL = _U + rf"(?<![\w.%+-])([\w.%+-])[\w.%+-]*{_AT}{_DOMAIN}"
_QUOTED_EMAIL = _U + rf'"([^\s"\\@:,;<>\[\]])[^"\\\n@:,;<>\[\]]{{0,63}}"{_AT}{_DOMAIN}'
_SEP = r"[\s./_\-\u2010-\u2015\u2212]"
_SSN = _U + r"(?<![\d*])\d{3}([- ./\u2010-\u2015\u2212])\d{2}\1(\d{4})(?!\d)"
_PHONE = (
    _U + rf"(?<![\d*])(?:\+?1{_SEP}?)?\(?([2-9]\d{{2}})\)?{_SEP}?\d{{3}}{_SEP}?\d{{4}}(?![\d*])"
)
# an international number with at least eight digits keeps its country code
_INTL_PHONE = (
    _U + rf"(?<![\w+*])\+(?!1)(?=(?:[^\d\n]{{0,3}}\d){{8}})(\d{{1,3}})"
    rf"(?:{_SEP}?\(?\d{{1,5}}\)?){{2,7}}(?![\d*])"
)
_LOCAL_PHONE = _U + r"(?<![\d*\-\u2010-\u2015])\d{3}[-\u2010-\u2015]\d{4}(?![\d*\-\u2010-\u2015])"
# each digit of a run of seven or more (Python: "*" times the run's length)
_LONG_DIGITS = _U + "|".join(
    (rf"(?<=\d{{{i}}})" if i else "") + r"\d" + rf"(?=\d{{{6 - i}}})" for i in range(7)
)
_IPV4 = _U + r"(?<![\d.])(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}(?!\.?\d)"
_H = r"[0-9A-Fa-f]{1,4}"
_IPV6_WHOLE = (
    rf"(?:{_H}(?::{_H}){{7}}|(?:{_H}(?::{_H}){{0,6}})?::(?:{_H}(?::{_H}){{0,6}})?)"
    r"(?:\.\d{1,3}){0,3}(?![\w:])"
)
# the address keeps its first two groups ("2001:db8:****"); a bare "::" is punctuation
_IPV6 = (
    _U + rf"(?<![\w:.])(?={_IPV6_WHOLE})(?=[0-9A-Fa-f:.]*[0-9A-Fa-f])"
    r"([0-9A-Fa-f]*:[0-9A-Fa-f]*)[0-9A-Fa-f:]*(?:\.\d{1,3}){0,3}"
)
_BIRTH_WORDS = r"(?i)\b(d\.?o\.?b\.?|born(?:\s+on)?|birth\s*date|birthday|b-?day|date\s+of\s+birth)"
# a birth date shows its year only: whatever stands before or after the year is withheld
_PART = r"(?:\d{1,2}|[A-Za-z]{3,9}\.?)"
_BIRTH_YEAR_LAST = (
    _U
    + _BIRTH_WORDS
    + rf"(\W{{1,4}}){_PART}([-/., ]{{1,2}}){_PART}([-/., ]{{1,3}})((?:1[89]|20)\d\d)(?!\d)"
)
_BIRTH_YEAR_FIRST = _U + _BIRTH_WORDS + r"(\W{1,4})((?:1[89]|20)\d\d)([-/.])\d{1,2}\4\d{1,2}"
_BIRTH_OTHER = _U + _BIRTH_WORDS + r"(\W{1,4})\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"

#: A JSON text as tokens: each string literal whole, and each run of anything else.
KEY_PATTERN = r'("(?:[^"\\]|\\.)*"|[^"]+)'

_KEEP_ANY = _py._KEEP_ANY
_KEEP_BY_TYPE = _py._KEEP_BY_TYPE


def _F():
    from pyspark.sql import functions

    return functions


def _pii_words() -> str:
    """The words of PII keys (the catalogue's names and rules), as a Java alternation
    that also takes a name as text writes it ("tax-id", "taxId")."""
    words = set(_py._DIGIT_KEY_WORDS) | set(_py._ANY_KEY_WORDS)
    words |= {"phone", "ssn", "social", "first", "last", "surname", "zip"} - {"zip"}
    for k, ft in catalog.FIELD_TYPES.items():
        if ft.pii:
            words.add(k.lower().split(".")[-1])
    words = {w for w in words if not any(u != w and u in w for u in words)}
    return "|".join(sorted(re.escape(w).replace("_", "[_-]?") for w in words))


def _loose_pairs() -> str:
    """``key: value`` and ``key=value`` where the key names a PII field: the value is
    withheld (an unquoted name runs on over up to three capitalised words)."""
    value = (
        r"(\\?\"(?:[^\"\\\n]|\\[^\"\n])*\\?\"?|'[^'\n]*'?"
        r"|[^\s,;&}\])(<>\"'\\]+(?:[ \t]+(?-i:\p{Lu})[\w'\u2019.\-]*(?![\w'\u2019.\-]*\s*[:=])){0,3})"
    )
    return (
        _U + rf"(?i)(\\?[\"']?)([\w.\-]{{0,40}}(?:{_pii_words()})[\w.\-]{{0,40}})"
        rf"\1(\s*[:=]\s*){value}"
    )


def free_text(col):
    """Free text masked by the shapes of PII and by PII ``key: value`` pairs.

    Only text the one RE2 test of the DuckDB views matches (``masking.needs_work_re2``)
    is rewritten, so plain reasons cost a regex per row here as there."""
    F = _F()
    s = col
    s = F.regexp_replace(s, _QUOTED_EMAIL, '"$1***"$2$3')
    s = F.regexp_replace(s, _EMAIL, "$1***$2$3")
    s = F.regexp_replace(s, _IPV6, "$1:****")
    s = F.regexp_replace(s, _BIRTH_YEAR_FIRST, "$1$2$3$4**$4**")
    s = F.regexp_replace(s, _BIRTH_YEAR_LAST, "$1$2**$3**$4$5")
    s = F.regexp_replace(s, _BIRTH_OTHER, "$1$2***")
    s = F.regexp_replace(s, _SSN, "***-**-$2")
    s = F.regexp_replace(s, _INTL_PHONE, "+$1 ***-****")
    s = F.regexp_replace(s, _PHONE, "($1) ***-****")
    s = F.regexp_replace(s, _LOCAL_PHONE, "***-****")
    s = F.regexp_replace(s, _LONG_DIGITS, "*")
    s = F.regexp_replace(s, _IPV4, "$1.$2.***.***")
    s = F.regexp_replace(s, _loose_pairs(), "$1$2$1$3***")
    needs = _py.needs_work_re2()
    return F.when(col.rlike(needs), s).otherwise(col)


def _first_letter(col):
    F = _F()
    first = F.substring(F.trim(col), 1, 1)
    return F.when(first.isin("*", ""), F.lit("")).otherwise(first)


def typed(label: str, col):
    """``col`` (text) masked as a value of the PII type ``label`` (see ``masking``)."""
    F = _F()
    ft = _py._resolve(label)
    v = col
    if ft is FieldType.EMAIL:
        local = F.substring_index(F.trim(v), "@", 1)
        domain = F.substring_index(F.trim(v), "@", -1)
        return (
            F.when(F.trim(v) == "", v)
            .when(F.instr(v, "@") == 0, F.concat(_first_letter(v), F.lit(STARS)))
            .otherwise(F.concat(_first_letter(local), F.lit(STARS + "@"), domain))
        )
    if ft is FieldType.PHONE:
        chars = F.regexp_replace(v, r"[^0-9*]", "")
        cc = F.regexp_extract(v, r"^\s*(?:tel:)?\s*\+\s*(\d+)", 1)
        national = F.when(
            (F.length(chars) == 11) & (F.substring(chars, 1, 1) == "1"), F.substring(chars, 2, 99)
        ).otherwise(chars)
        return (
            F.when(
                (cc != "") & (F.substring(cc, 1, 1) != "1") & (F.length(chars) >= 8),
                F.concat(
                    F.lit("+"),
                    F.when(F.length(cc) <= 3, cc).otherwise(F.substring(cc, 1, 2)),
                    F.lit(" ***-****"),
                ),
            )
            .when(
                (F.length(national) >= 10) & F.substring(national, 1, 3).rlike(r"^[0-9]{3}$"),
                F.concat(F.lit("("), F.substring(national, 1, 3), F.lit(") ***-****")),
            )
            .otherwise(F.regexp_replace(v, r"(?U)\d", "*"))
        )
    if ft is FieldType.SSN:
        chars = F.regexp_replace(v, r"[^0-9*]", "")
        last4 = F.substring(chars, -4, 4)
        return F.when(
            F.length(chars) >= 9,
            F.concat(F.lit("***-**-"), F.when(last4.rlike(r"^[0-9]{4}$"), last4).otherwise("****")),
        ).otherwise(F.regexp_replace(v, r"(?U)\d", "*"))
    if ft in (FieldType.FIRST_NAME, FieldType.LAST_NAME, FieldType.FULL_NAME):
        words = F.split(F.trim(v), r"\s+")
        masked = F.array_join(
            F.transform(
                words,
                lambda w: F.concat(
                    F.when(F.substring(w, 1, 1) == "*", F.lit("")).otherwise(F.substring(w, 1, 1)),
                    F.lit(STARS),
                ),
            ),
            " ",
        )
        return (
            F.when(F.trim(v) == "", v)
            .when((F.size(words) == 1) & (F.instr(v, "@") > 0), typed("email", v))
            .otherwise(masked)
        )
    if ft is FieldType.STREET_ADDRESS:
        letter = F.regexp_extract(v, r"(?U)([^\W\d_])", 1)
        return (
            F.when(F.trim(v) == "", v)
            .when(letter != "", F.concat(F.lit(STARS + " "), letter, F.lit(STARS)))
            .otherwise(F.lit(STARS))
        )
    if ft is FieldType.IP_ADDRESS:
        s = F.trim(v)
        parts = F.split(s, r"\.")
        head = F.transform(
            F.slice(parts, 1, 2), lambda p: F.when(p.rlike(r"^[0-9]+$"), p).otherwise(STARS)
        )
        v6 = F.concat(F.substring_index(s, ":", 2), F.lit(":****"))
        return (
            F.when(
                (F.instr(s, ":") > 0) & (F.instr(s, ".") == 0) & s.rlike(_py._IPV6_VALUE.pattern),
                v6,
            )
            .when(
                (F.size(parts) == 4) & s.rlike(r"\d"),
                F.concat(F.array_join(head, "."), F.lit(".***.***")),
            )
            .otherwise(F.regexp_replace(v, r"(?U)\d", "*"))
        )
    if ft is FieldType.DATE_OF_BIRTH:
        year = F.regexp_extract(v, r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)", 1)
        stars = F.regexp_replace(v, r"[0-9A-Za-z]", "*")
        at = F.position(year, v)
        return F.when(
            year != "",
            F.concat(F.substring(stars, 1, at - 1), year, F.substring(stars, at + 4, 1 << 20)),
        ).otherwise(stars)
    if ft.pii:  # a PII type without a rule of its own: nothing of it is shown
        return F.when(v.isNull(), v).otherwise(F.lit(STARS))
    return free_text(v)


# --------------------------------------------------------------------------- JSON

_TIME_KEY = _py._TIME_KEY.pattern
# numbers of ten or more digits read as phone numbers (an 11-digit one with its leading 1)
_NUMBER_US = r"(?<![\w.\-])-?1(\d{3})\d{7}(?:\.0+)?(?![\w.])"
_NUMBER_LONG = r"(?<![\w.\-])-?(\d{3})\d{7,}(?:\.\d+)?(?![\w.])"
_NUMBER = r"(?<![\w.\-])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.])"


def key_types(keys) -> dict[str, str]:
    """The catalogue's type of each JSON key (as it stands between its quotes) whose
    values are not plain text: a PII type's label, or ``#`` for numbers that are times
    or quantities (kept however many digits they have)."""
    _py.refresh_field_types()
    out = {}
    # the catalogue's own names too: a label may name a field no key is called
    for k in [*(n for n, ft in catalog.FIELD_TYPES.items() if ft.pii), *keys]:
        if not isinstance(k, str):
            continue
        ft = _py.key_type(k)
        if ft.pii:
            out[k] = ft.label
        elif _py._keeps_numbers(k, ft):
            out[k] = "#"
    return out


def _typed_any(ty, text, fallback):
    """``text`` masked by the type named in the column ``ty`` (a PII label), else
    ``fallback``."""
    F = _F()
    expr = None
    for ft in FieldType:
        if not ft.pii:
            continue
        branch = typed(ft.label, text)
        expr = F.when(ty == ft.label, branch) if expr is None else expr.when(ty == ft.label, branch)
    return expr.otherwise(fallback)


def json_doc(col, keys: dict[str, str]):
    """A JSON text masked token by token (see the module docstring), compact as the
    DuckDB views return it. Text that is not JSON is masked as free text and returned
    as a JSON string, as there. ``keys`` is :func:`key_types` of the keys it may hold;
    a key not in it is plain text."""
    F = _F()
    tokens = F.regexp_extract_all(col, F.lit(KEY_PATTERN), 1)
    n = F.size(tokens)

    def kind_of(t, i):
        nxt = F.try_element_at(tokens, i + F.lit(2))  # element_at counts from 1: i + 2 is the next
        colon = (i + 1 < n) & F.coalesce(F.ltrim(nxt).startswith(":"), F.lit(False))
        quoted = F.substring(t, 1, 1) == '"'
        return F.when(quoted & colon, "key").when(quoted, "str").otherwise("punct")

    kinds = F.transform(tokens, kind_of)
    if keys:
        type_map = F.create_map(*[F.lit(x) for k, v in sorted(keys.items()) for x in (k, v)])
    keep_map = F.create_map(
        *[
            x
            for ft in FieldType
            if ft.pii
            for x in (
                F.lit(ft.label),
                F.array(*[F.lit(w) for w in sorted(_KEEP_ANY | _KEEP_BY_TYPE.get(ft, set()))]),
            )
        ]
    )

    def inner(t):  # a string token's text between its quotes, escapes as they stand
        return F.substring(t, F.lit(2), F.length(t) - 2)

    def top(stack):
        return F.coalesce(F.try_element_at(stack, F.lit(-1)), F.lit(""))

    def key_type(t, stack):
        own = F.try_element_at(type_map, inner(t)) if keys else F.lit(None).cast("string")
        outer = top(stack)
        kept = F.coalesce(
            F.array_contains(F.try_element_at(keep_map, outer), F.lower(inner(t))), F.lit(False)
        )
        return (
            F.when(own.isNotNull() & (own != "#"), own)
            .when((outer != "") & ~kept, outer)
            .when(own == "#", F.lit("#"))
            .otherwise(F.lit(""))
        )

    def quoted(text):
        return F.concat(F.lit('"'), text, F.lit('"'))

    def value_str(t, ty, free):
        return quoted(F.when(ty.isin("", "#"), free).otherwise(_typed_any(ty, inner(t), free)))

    def numbers(p, ty):
        # a number under a PII key is masked as its type would mask it (as text)
        first = F.regexp_extract(p, _NUMBER, 0)
        digits = F.regexp_replace(first, r"[^0-9]", "")
        national = F.when(
            (F.length(digits) == 11) & (F.substring(digits, 1, 1) == "1"),
            F.substring(digits, 2, 99),
        ).otherwise(digits)
        as_type = (
            F.when(
                (ty == "phone") & (F.length(national) >= 10),
                F.concat(F.lit("("), F.substring(national, 1, 3), F.lit(") ***-****")),
            )
            .when(
                (ty == "ssn") & (F.length(digits) >= 9),
                F.concat(F.lit("***-**-"), F.substring(digits, -4, 4)),
            )
            .when(ty == "date_of_birth", typed("date_of_birth", first))
            .otherwise(F.regexp_replace(first, r"\d", "*"))
        )
        typed_all = F.regexp_replace(p, _NUMBER, quoted(as_type))
        phones = F.regexp_replace(
            F.regexp_replace(p, _NUMBER_US, '"($1) ***-****"'), _NUMBER_LONG, '"($1) ***-****"'
        )
        return (
            F.when(~p.rlike(r"\d"), p)
            .when(ty == "#", p)
            .when(ty != "", typed_all)
            .otherwise(phones)
        )

    def brackets(p, stack, ctx):
        # open and close the objects and lists of one run of punctuation, in order
        marks = F.regexp_extract_all(p, F.lit(r"([\[\]{}])"), 1)
        start = F.struct(stack.alias("stack"), ctx.alias("ctx"))

        def step(acc, m):
            opened = F.concat(
                acc["stack"], F.array(F.when(acc["ctx"] == "#", "").otherwise(acc["ctx"]))
            )
            closed = F.slice(acc["stack"], 1, F.greatest(F.size(acc["stack"]) - 1, F.lit(0)))
            new = F.when(m.isin("{", "["), opened).otherwise(closed)
            return F.struct(new.alias("stack"), top(new).alias("ctx"))

        return F.aggregate(marks, start, step, lambda acc: acc["stack"])

    start = F.struct(
        F.array().cast("array<string>").alias("out"),
        F.array().cast("array<string>").alias("stack"),
        F.lit("-").alias("pending"),
        F.lit("").alias("lastkey"),
        F.lit("").alias("label"),
    )

    def merge(acc, z):
        t, k, free = z["t"], z["k"], z["f"]
        out, stack, pending = acc["out"], acc["stack"], acc["pending"]
        lastkey, label = acc["lastkey"], acc["label"]
        ty = F.when(pending != "-", pending).otherwise(top(stack))
        this_key = F.lower(inner(t))
        # {"field": "last_name", "value": "Smith"}: a value named by the label before it
        own = key_type(t, stack)
        named = F.when(
            this_key.isin(*_py._VALUE_KEYS) & (label != "") & (own.isin("", "#")), label
        ).otherwise(own)
        label_of_value = (
            F.coalesce(F.try_element_at(type_map, inner(t)), F.lit("")) if keys else F.lit("")
        )
        new_label = F.when(
            lastkey.isin(*[k.lower() for k in _py._LABEL_KEYS]) & ~label_of_value.isin("", "#"),
            label_of_value,
        ).otherwise(label)
        p = F.regexp_replace(t, r"\s+", "")
        as_key = F.struct(
            F.concat(out, F.array(quoted(free))).alias("out"),
            stack.alias("stack"),
            named.alias("pending"),
            this_key.alias("lastkey"),
            label.alias("label"),
        )
        as_value = F.struct(
            F.concat(out, F.array(value_str(t, ty, free))).alias("out"),
            stack.alias("stack"),
            F.lit("-").alias("pending"),
            lastkey.alias("lastkey"),
            new_label.alias("label"),
        )
        as_punct = F.struct(
            F.concat(out, F.array(numbers(p, ty))).alias("out"),
            brackets(p, stack, ty).alias("stack"),
            F.when(p == ":", pending).otherwise(F.lit("-")).alias("pending"),
            lastkey.alias("lastkey"),
            F.when(F.instr(p, "{") + F.instr(p, "}") > 0, F.lit(""))
            .otherwise(label)
            .alias("label"),
        )
        return F.when(k == "key", as_key).when(k == "str", as_value).otherwise(as_punct)

    # each string's text masked as free text, once (the fold picks it or a typed mask)
    frees = F.transform(
        tokens,
        lambda t: F.when(F.substring(t, 1, 1) == '"', free_text(inner(t))).otherwise(F.lit("")),
    )
    zipped = F.arrays_zip(tokens.alias("t"), kinds.alias("k"), frees.alias("f"))
    folded = F.aggregate(zipped, start, merge, lambda acc: F.array_join(acc["out"], ""))
    as_text = F.to_json(F.array(free_text(col)))
    return (
        F.when(col.isNull(), col)
        .when(F.try_parse_json(col).isNotNull(), folded)
        .otherwise(F.substring(as_text, F.lit(2), F.length(as_text) - 2))
    )


def column_expr(column: str, kind: tuple[str, str | None], keys: dict[str, str], safe=()):
    """The masked form of one column of a lake relation, by its kind (see
    ``access.columns.column_kind``), named as the column."""
    F = _F()
    col = F.col(f"`{column}`")
    what, label = kind
    if what == "json":
        out = json_doc(col, keys)
    elif what == "field":
        out = typed(label, col.cast("string"))
    elif what in ("text", "raw"):
        out = free_text(col)
    elif what == "shape":
        out = free_text(col)
        if safe:
            out = F.when(col.isin(*safe), col).otherwise(out)
    else:
        out = col
    return out.alias(column)
