"""The leads of a chunk: who they are (fake PII), which data problems each source's
leads carry, and the problems incidents plant (``LeadProblem`` effects).

Each lead gets one uniform number per kind of problem; a source's quality rates
decide which problems it has, and a planted problem replaces every other problem of
the lead, so the incident is the only thing wrong with it. A duplicate repeats the
identity of an earlier lead of the chunk.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _data
from .. import _text as T
from ..chunk import Chunk, as_float
from ..incidents import LeadProblem
from ..plan import lognormal

__all__ = ["run"]

#: The data problems a lead may carry, in the order their random numbers are drawn.
_PROBLEMS = ("nine", "malf", "miss", "email", "disc", "low", "dup", "area", "tfm", "tfx")
# geography columns
_GEO = _data.GEOGRAPHY
_GEO_CITY = [g[0] for g in _GEO]
_GEO_STATE = np.array([_data.STATES.index(g[1]) for g in _GEO], dtype=np.int16)
_GEO_ZIP = [g[2] for g in _GEO]
_GEO_AREA = [g[3] for g in _GEO]
_GEO_W = np.array([g[4] for g in _GEO])
_REMOTE = np.array([g[5] for g in _GEO])
_MAIN_P = np.where(_REMOTE, 0, _GEO_W) / np.where(_REMOTE, 0, _GEO_W).sum()
_REMOTE_P = np.where(_REMOTE, _GEO_W, 0) / np.where(_REMOTE, _GEO_W, 0).sum()


def _in_order(acting: list) -> list:
    """Planted problems in the order the runner has always applied them (a lead takes
    the first incident that hits it): 9-digit phones, missing fields, duplicates."""
    order = {"nine": 0, "miss": 1, "dup": 2}
    return sorted(acting, key=lambda a: (order.get(a[2].problem, 9), a[0]))


def run(c: Chunk) -> None:
    """Fields of every lead (fake PII), with each source's data problems and the
    incidents that plant problems in leads."""
    p, rng, m, t = c.plan, c.rng, c.size, c.arrived
    src = c.source
    q = [s.quality for s in p.sources]

    def rate(attr):
        return np.array([getattr(x, attr) for x in q])[src]

    u = {k: rng.random(m) for k in _PROBLEMS}
    flag = {
        "nine": u["nine"] < rate("nine_digit_phone"),
        "malf": u["malf"] < rate("malformed_phone"),
        "miss": u["miss"] < rate("missing_field"),
        "email": u["email"] < rate("invalid_email"),
        "disc": u["disc"] < rate("disconnected_phone"),
        "low": u["low"] < rate("low_phone_score"),
        "dup": u["dup"] < rate("duplicate"),
        "area": u["area"] < rate("out_of_area"),
        "tfm": u["tfm"] < rate("trustedform_missing"),
        "tfx": u["tfx"] < rate("trustedform_expired"),
    }
    miss_field = np.full(m, "", dtype=object)
    vert = p.src_vert[src]
    vfields = [p.flow.verticals[v] for v in p.vert_names]
    # a missing field is one of the lead's fields, never the first name
    choice = rng.random(m)
    for vi, fields in enumerate(vfields):
        cand = [f for f in fields if f != "first_name"]
        sel = flag["miss"] & (vert == vi)
        miss_field[sel] = np.array(cand, dtype=object)[(choice[sel] * len(cand)).astype(int)]
    # incidents that plant problems in leads: the incident is the lead's only problem
    planted = np.zeros(m, dtype=bool)
    planted_by = []
    for k, inc, effect in _in_order(p.acting(LeadProblem)):
        key = effect.problem
        s = p.ent_index[inc.parameters[effect.target]]
        hit = (src == s) & p.window(inc, t) & (u[key] < inc.parameters[effect.rate])
        hit &= ~flag[key] & ~planted
        for f in flag:
            flag[f][hit] = False
        miss_field[hit] = ""
        if effect.field is not None:
            miss_field[hit] = inc.parameters[effect.field]
        flag[key][hit] = True
        planted |= hit
        planted_by.append((k, key, hit))
    c.problems = flag
    c.missing_field = miss_field

    # identities: names, place, contact data
    geo = rng.choice(len(_GEO), size=m, p=_MAIN_P)
    geo[flag["area"]] = rng.choice(len(_GEO), size=int(flag["area"].sum()), p=_REMOTE_P)
    person = {
        "geo": geo,
        "fn": rng.integers(0, len(_data.FIRST_NAMES), m),
        "ln": rng.integers(0, len(_data.LAST_NAMES), m),
        "mail_n": rng.integers(1, 100, m),
        "dom": rng.integers(0, 3, m),
        "line": rng.integers(100, 10000, m),
        "house": rng.integers(100, 10000, m),
        "street": rng.integers(0, len(_data.STREETS), m),
        "suffix": rng.integers(0, len(_data.STREET_SUFFIXES), m),
        "zip2": rng.integers(0, 100, m),
        "by": rng.integers(1946, 2007, m),
        "bm": rng.integers(1, 13, m),
        "bd": rng.integers(1, 29, m),
        "ssn": rng.integers(0, 10**8, m),
    }
    ip = rng.integers(1, 255, m)
    ipn = rng.integers(0, 3, m)
    # a duplicate repeats the identity of an earlier lead of the chunk; chains of
    # duplicates resolve to the first lead of the person
    # (only leads in the service area are copied, so a duplicate's one problem is
    # being a duplicate)
    ident = np.arange(m)
    home = np.flatnonzero(~flag["area"])
    before = np.searchsorted(home, np.arange(m), "left")  # in-area leads before each
    dup = flag["dup"] & (before > 0)
    pick_home = (rng.random(m) * before).astype(np.int64)
    if len(home):
        ident[dup] = home[np.minimum(pick_home, len(home) - 1)][dup]
    while True:
        nxt = ident[ident]
        if np.array_equal(nxt, ident):
            break
        ident = nxt
    flag["dup"] = dup
    for k, key, hit in planted_by:
        # a lead cannot duplicate one that came before it in no chunk
        c.touch(k, np.flatnonzero(hit & dup if key == "dup" else hit))
    c.duplicate_of = ident
    person = {k: v[ident] for k, v in person.items()}
    geo, fn, ln = person["geo"], person["fn"], person["ln"]
    mail_n, dom, line, house = person["mail_n"], person["dom"], person["line"], person["house"]
    street, suffix, zip2, ssn = person["street"], person["suffix"], person["zip2"], person["ssn"]
    by, bm, bd = person["by"], person["bm"], person["bd"]
    c.geo = geo
    st = _GEO_STATE[geo]

    first = T.pick(_data.FIRST_NAMES, fn)
    last = T.pick(_data.LAST_NAMES, ln)
    email = T.cat(
        m,
        pc.utf8_lower(first),
        ".",
        pc.utf8_lower(last),
        T.num(mail_n),
        T.masked(T.pick(["@"], np.zeros(m, np.int64)), ~flag["email"]),
        T.pick(_data.EMAIL_DOMAINS, dom),
    )
    area = T.pick(_GEO_AREA, geo)
    line4 = T.digits(line, 4)
    # data problems the source sends: 9 digits, or 11 / 8 digits
    eleven = rng.random(m) < 0.5
    malf = flag["malf"] & ~flag["nine"]
    c.phone_len = np.where(flag["nine"], 9, np.where(malf, np.where(eleven, 11, 8), 10))
    cut = np.where(flag["nine"], 3, np.where(malf & ~eleven, 2, 4))
    line_cut = line4
    if (cut < 4).any():
        # the number as sent: its last digit(s) cut off
        line_cut = pc.if_else(
            pa.array(cut == 4),
            line4,
            pc.if_else(
                pa.array(cut == 3),
                pc.utf8_slice_codeunits(line4, 0, 3),
                pc.utf8_slice_codeunits(line4, 0, 2),
            ),
        )
    one = T.masked(T.pick(["1"], np.zeros(m, np.int64)), malf & eleven)
    phone = T.cat(m, one, area, "555", line_cut)
    tf_age = np.where(
        flag["tfx"],
        rng.integers(3 * 86400, 12 * 86400, m),
        (lognormal(rng, 120, 0.9, m)).astype(np.int64) + 5,
    )
    c.trustedform_age = tf_age
    ssn_txt = T.cat(
        m,
        '"9',
        T.digits(ssn // 10**6, 2),
        "-",
        T.digits(ssn // 10**4 % 100, 2),
        "-",
        T.digits(ssn % 10**4, 4),
        '"',
    )
    vals = {
        "first_name": T.pick([T.lit(x) for x in _data.FIRST_NAMES], fn),
        "last_name": T.pick([T.lit(x) for x in _data.LAST_NAMES], ln),
        "email": T.quoted(email),
        "phone": T.quoted(phone),
        "address": T.cat(
            m,
            '"',
            T.num(house),
            " ",
            T.pick(_data.STREETS, street),
            " ",
            T.pick(_data.STREET_SUFFIXES, suffix),
            '"',
        ),
        "city": T.pick([T.lit(x) for x in _GEO_CITY], geo),
        "state": T.pick([T.lit(x) for x in _data.STATES], st),
        "zip": T.cat(m, '"', T.pick(_GEO_ZIP, geo), T.digits(zip2, 2), '"'),
        "ip_address": T.cat(m, '"', T.pick(_data.IP_PREFIXES, ipn), T.num(ip), '"'),
        "dob": T.cat(m, '"', T.num(by), "-", T.digits(bm, 2), "-", T.digits(bd, 2), '"'),
        "ssn": ssn_txt,
        "trustedform_cert_url": T.cat(m, '"' + _data.TRUSTEDFORM_URL, T.hexes(rng, m, 40), '"'),
        "vehicle_year": T.num(rng.integers(2008, 2027, m)),
        "currently_insured": T.when(rng.random(m) < 0.7, "true", "false"),
        "coverage_amount": T.num(
            np.array([100_000, 250_000, 500_000, 750_000, 1_000_000])[rng.integers(0, 5, m)]
        ),
    }
    c.values = vals  # JSON value text per field
    # which lead has which field: its vertical's fields, minus what is missing
    has = {}
    for f in vals:
        in_vert = np.array([f in fs for fs in vfields])[vert]
        has[f] = in_vert & (miss_field != f)
    has["trustedform_cert_url"] &= ~flag["tfm"]
    c.has = has
    # numbers and booleans of lead fields that rules and conditions may read
    c.fields: dict[str, tuple[str, np.ndarray]] = {
        "state": ("cat", np.where(has["state"], st, -1).astype(np.int64)),
        "source": ("cat", src.copy()),
        "vertical": ("cat", vert.astype(np.int64)),
        "coverage_amount": (
            "num",
            np.where(has["coverage_amount"], as_float(vals["coverage_amount"]), np.nan),
        ),
        "vehicle_year": (
            "num",
            np.where(has["vehicle_year"], as_float(vals["vehicle_year"]), np.nan),
        ),
        "currently_insured": (
            "bool",
            np.where(
                has["currently_insured"],
                np.asarray(pc.equal(vals["currently_insured"], "true")).astype(np.int8),
                -1,
            ).astype(np.int8),
        ),
    }
    c.base = c.fields_json(vals, has, tuple(vals))
    c.submitted = T.cat(m, c.base, "}")  # the lead as submitted
