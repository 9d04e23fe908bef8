"""The hash chain and the SHA-256 seals that make any change to stored facts visible.

What is proved, and how:

* Every event has a **digest**: SHA-256 of its canonical text (every record and derived
  column, see ``schema.content_text_sql``), computed in SQL over a whole batch.
* Every stored batch gets a **seal** in the ``ledger``:
  ``seal = SHA-256(previous seal | batch ranges | the batch's event digests in seq order |
  the digests of the rows it quarantined)``. The last seal is the store's **head**: it
  covers every event and every quarantined row ever stored, in order. A person who
  keeps the head somewhere else (``workbench verify --expect HEAD``) can later prove
  that the store still holds exactly what it held, the way ledger databases publish a
  digest: whoever can write the file can recompute seals, but cannot make them come
  out as the head that was kept.
* Every event also carries a 64-bit **chain hash**, ``h = c + K * h_prev (mod 2**64)``
  where ``c`` is the first 64 bits of its digest. It does not prove anything the seals
  do not; it lets ``verify()`` name the first event that changed instead of a batch.
  The recurrence is linear, so a batch is chained with numpy in one pass
  (``h_i = K**i * (K*h_prev + sum_j c_j * K**-j)``).

What is not proved: that the head a person kept is the right one. Keep it outside the
machine that holds the store.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from .. import display
from .schema import DERIVED_COLUMNS, RECORD_COLUMNS

__all__ = ["chain", "seal", "GENESIS", "GENESIS_SEAL", "VerifyReport"]

K = np.uint64(0x9E3779B97F4A7C15)
_K_INV = np.uint64(pow(int(K), -1, 2**64))
GENESIS = 0
GENESIS_SEAL = "0" * 64


def _powers(base: np.uint64, n: int) -> np.ndarray:
    p = np.full(n, base, dtype=np.uint64)
    p[0] = np.uint64(1)
    with np.errstate(over="ignore"):
        return np.cumprod(p, dtype=np.uint64)


def chain(content: np.ndarray, prev: int = GENESIS) -> np.ndarray:
    """Chain hashes for ``content`` hashes that follow an event whose chain hash is ``prev``.

    >>> import numpy as np
    >>> h = chain(np.array([1, 2, 3], dtype=np.uint64))
    >>> int(h[1]) == (2 + int(K) * 1) % 2**64
    True
    """
    c = np.asarray(content, dtype=np.uint64)
    n = len(c)
    if n == 0:
        return c.copy()
    with np.errstate(over="ignore"):
        kp = _powers(K, n)  # K**i
        kinv = _powers(_K_INV, n)  # K**-i
        acc = np.cumsum(c * kinv, dtype=np.uint64)
        acc += K * np.uint64(prev)
        return kp * acc


def string_bytes(array: pa.Array | pa.ChunkedArray) -> list[memoryview]:
    """The UTF-8 bytes of a string array's values, end to end, as buffer views (no copy,
    no Python object per value). Null values contribute nothing."""
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    out = []
    for a in chunks:
        if len(a) == 0:
            continue
        if a.type != pa.string():
            a = a.cast(pa.string())
        offsets = np.frombuffer(a.buffers()[1], dtype=np.int32)[a.offset : a.offset + len(a) + 1]
        data = a.buffers()[2]
        if data is not None:
            out.append(memoryview(data)[int(offsets[0]) : int(offsets[-1])])
    return out


class Sealer:
    """Builds one seal incrementally: ranges first, then event digests, then quarantine."""

    def __init__(self, prev: str, ingest_id, first_seq, last_seq, first_qid, last_qid):
        self._h = hashlib.sha256()
        head = f"{prev}|{ingest_id}|{first_seq}|{last_seq}|{first_qid}|{last_qid}|e|"
        self._h.update(head.encode())
        self._quarantine_started = False

    def events(self, digests) -> None:
        for view in string_bytes(digests):
            self._h.update(view)

    def quarantine(self, digests) -> None:
        if not self._quarantine_started:
            self._h.update(b"|q|")
            self._quarantine_started = True
        for view in string_bytes(digests):
            self._h.update(view)

    def hexdigest(self) -> str:
        if not self._quarantine_started:
            self._h.update(b"|q|")
            self._quarantine_started = True
        return self._h.hexdigest()


def seal(prev: str, ingest_id, first_seq, last_seq, first_qid, last_qid, events, quarantine) -> str:
    """The seal of one stored batch (see the module docstring).

    >>> len(seal(GENESIS_SEAL, 1, 1, 1, None, None, pa.array(["ab"]), pa.array([], pa.string())))
    64
    """
    s = Sealer(prev, ingest_id, first_seq, last_seq, first_qid, last_qid)
    s.events(events)
    s.quarantine(quarantine)
    return s.hexdigest()


@dataclass(frozen=True)
class VerifyReport:
    """The result of recomputing digests, seals and the chain over every stored fact.

    ``head_hash`` is the store's head seal (SHA-256, hex): keep it somewhere else and
    give it back as ``verify(expect=...)`` to prove nothing changed since.
    """

    ok: bool
    events_checked: int
    head_hash: str | None
    first_bad_seq: int | None = None
    first_bad_event_id: str | None = None
    problem: str | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        if self.ok:
            text = (
                f"OK: {self.events_checked:,} events, hash chain intact, seals match\n"
                f"head {self.head_hash}"
                if self.head_hash is not None
                else "OK: the store holds no events"
            )
            return "\n".join([text, *self.notes])
        where = f" at seq {self.first_bad_seq}" if self.first_bad_seq is not None else ""
        who = f" (event {self.first_bad_event_id})" if self.first_bad_event_id else ""
        return f"TAMPERED{where}{who}: {self.problem}"

    def _repr_html_(self) -> str:
        if self.ok:
            return display.card(
                "Verified: nothing changed",
                [("events checked", f"{self.events_checked:,}"), ("head", self.head_hash or "-")],
                status="ok",
                notes=self.notes,
            )
        return display.card(
            "TAMPERED",
            [
                ("first bad seq", self.first_bad_seq),
                ("event", self.first_bad_event_id),
                ("problem", self.problem),
            ],
            status="bad",
        )


# --------------------------------------------------------------------------- verify


class _Stream:
    """Rows of an Arrow reader taken ``n`` at a time, as a list of record-batch slices."""

    def __init__(self, reader):
        self._reader = reader
        self._rb = None
        self._i = 0

    def take(self, n: int) -> list[pa.RecordBatch]:
        out = []
        while n > 0:
            if self._rb is None or self._i >= self._rb.num_rows:
                try:
                    self._rb, self._i = self._reader.read_next_batch(), 0
                except StopIteration:
                    self._rb = None
                    break
                continue
            k = min(n, self._rb.num_rows - self._i)
            out.append(self._rb.slice(self._i, k))
            self._i += k
            n -= k
        return out

    def rest(self) -> pa.RecordBatch | None:
        """The next rows, if any are left."""
        got = self.take(1)
        return got[0] if got else None


def _normal_head(expect: str) -> str:
    text = str(expect).strip().lower()
    text = text.removeprefix("sha256:").removeprefix("head").strip(" :=")
    if len(text) < 16 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(
            f"expect={expect!r}: give the head digest verify() printed (64 hex characters, "
            "at least the first 16)"
        )
    return text


def verify_store(store, *, expect: str | None = None, chunk_rows: int = 1_000_000) -> VerifyReport:
    """Recompute every digest, seal and chain hash of ``store`` (see ``EventStore.verify``)."""
    from .schema import EVENT_DIGEST_SQL, QUARANTINE_DIGEST_SQL, TIERS
    from .summary import summary_problem

    want = _normal_head(expect) if expect is not None else None
    con = store._con.cursor()
    try:
        con.run("BEGIN TRANSACTION")
        bad_files = store._tiers.check_files(con)
        if bad_files:
            path, problem, lo, hi = bad_files[0]
            more = f" ({len(bad_files) - 1} more damaged file(s))" if len(bad_files) > 1 else ""
            return VerifyReport(
                False,
                0,
                None,
                lo,
                None,
                f"tier file {path}: {problem}; its events (seq {lo}..{hi}) cannot be checked{more}",
                tuple(f"{p}: {what}" for p, what, _, _ in bad_files),
            )
        ledger = con.rows(
            "SELECT batch_id, ingest_id, first_seq, last_seq, events, first_qid, last_qid, "
            "quarantined, head_hash, seal FROM ledger ORDER BY batch_id"
        )
        src = store._tiers.source_sql(
            con, TIERS, ("seq", "chain_hash", "id_hash", *_CONTENT_COLUMNS)
        )
        # id_hash is how append() finds an event it already holds; it is not part of the
        # digest, so it is checked against the event_id it was computed from (unless
        # DuckDB's hash() changed since, when duplicate checks compare ids instead)
        id_ok = "id_hash = hash(event_id)" if store._hash_ok else "true"
        events = _Stream(
            con.raw.sql(
                f"SELECT seq, event_id, d, CAST('0x' || left(d, 16) AS UBIGINT) AS c, chain_hash, "
                f"{id_ok} AS id_ok "
                f"FROM (SELECT *, {EVENT_DIGEST_SQL} AS d FROM ({src})) ORDER BY seq"
            ).to_arrow_reader(chunk_rows)
        )
        qcur = store._con.cursor()
        try:
            quarantine = _Stream(
                qcur.raw.sql(
                    f"SELECT qid, {QUARANTINE_DIGEST_SQL} AS d FROM quarantine ORDER BY qid"
                ).to_arrow_reader(chunk_rows)
            )
            report = _walk_ledger(ledger, events, quarantine)
        finally:
            qcur.close()
        if report is not None:
            return report
        checked = sum(r[4] for r in ledger)
        head = ledger[-1][9] if ledger else None
        problem = _history_problem(con) or _snapshots_problem(con) or summary_problem(con, src)
        if problem:
            return VerifyReport(False, checked, head, problem=problem)
        notes = []
        if want is not None:
            seals = [r[9] for r in ledger]
            hit = next((i for i, s in enumerate(seals) if s.startswith(want)), None)
            if hit is None:
                return VerifyReport(
                    False,
                    checked,
                    head,
                    problem=(
                        f"the head you kept ({want[:16]}...) is not in this store's seal chain: "
                        "the store was rewritten, rolled back or replaced since"
                    ),
                )
            if hit == len(seals) - 1:
                notes.append("the head you kept matches: nothing changed since")
            else:
                since = ledger[hit + 1 :]
                notes.append(
                    f"the head you kept is the seal of batch {ledger[hit][0]}; since then "
                    f"{sum(r[4] for r in since):,} events and {sum(r[7] for r in since):,} "
                    f"quarantined rows were stored in {len(since)} batch(es)"
                )
        return VerifyReport(True, checked, head, notes=tuple(notes))
    finally:
        con.close()


# every column the digest covers (the record and its typed columns, but seq)
_CONTENT_COLUMNS = tuple(c for c in (*RECORD_COLUMNS, *DERIVED_COLUMNS) if c != "seq")


def _walk_ledger(ledger, events: _Stream, quarantine: _Stream) -> VerifyReport | None:
    prev_seal, prev_h, next_seq, next_qid, checked = GENESIS_SEAL, GENESIS, 1, 1, 0
    for expected_id, row in enumerate(ledger, start=1):
        batch_id, ingest_id, first_seq, last_seq, n, first_qid, last_qid, nq, head, sealed = row
        if batch_id != expected_id:
            return VerifyReport(
                False,
                checked,
                None,
                first_seq,
                problem=f"ledger batch {expected_id} is missing (removed from the ledger)",
            )
        sealer = Sealer(prev_seal, ingest_id, first_seq, last_seq, first_qid, last_qid)
        if n:
            if first_seq != next_seq:
                return VerifyReport(
                    False,
                    checked,
                    None,
                    next_seq,
                    problem=f"the ledger skips from seq {next_seq - 1} to {first_seq}",
                )
            for rb in events.take(n):
                seq = rb.column("seq").to_numpy()
                expect_seq = np.arange(next_seq, next_seq + len(seq), dtype=np.int64)
                gap = np.flatnonzero(seq != expect_seq)
                c = rb.column("c").to_numpy().astype(np.uint64)
                h = chain(c, prev_h)
                changed = np.flatnonzero(h != rb.column("chain_hash").to_numpy().astype(np.uint64))
                wrong_id = np.flatnonzero(~rb.column("id_ok").to_numpy(zero_copy_only=False))
                first_gap = int(gap[0]) if len(gap) else None
                first_bad = int(changed[0]) if len(changed) else None
                first_id = int(wrong_id[0]) if len(wrong_id) else None
                if first_id is not None and all(
                    other is None or first_id < other for other in (first_gap, first_bad)
                ):
                    return VerifyReport(
                        False,
                        checked + first_id,
                        None,
                        int(seq[first_id]),
                        rb.column("event_id")[first_id].as_py(),
                        "its id_hash no longer matches its event_id (changed outside the "
                        "store): append() would not know the event and could store it twice",
                    )
                if first_gap is not None and (first_bad is None or first_gap <= first_bad):
                    s = int(seq[first_gap])
                    want = int(expect_seq[first_gap])
                    problem = (
                        f"events with seq {want}..{s - 1} are missing (deleted outside the store)"
                        if s > want
                        else f"seq {s} appears twice or out of order (an event was inserted)"
                    )
                    return VerifyReport(
                        False,
                        checked + first_gap,
                        None,
                        want,
                        rb.column("event_id")[first_gap].as_py(),
                        problem,
                    )
                if first_bad is not None:
                    return VerifyReport(
                        False,
                        checked + first_bad,
                        None,
                        int(seq[first_bad]),
                        rb.column("event_id")[first_bad].as_py(),
                        "its content no longer matches what was stored (a field of the event, "
                        "or of the one before it, was changed)",
                    )
                sealer.events(rb.column("d"))
                prev_h = int(h[-1])
                next_seq += len(seq)
                checked += len(seq)
            if next_seq != last_seq + 1:
                return VerifyReport(
                    False,
                    checked,
                    None,
                    next_seq,
                    problem=(
                        f"events with seq {next_seq}..{last_seq} are missing (deleted from the end)"
                    ),
                )
            if head is not None and int(head) != prev_h:
                return VerifyReport(
                    False,
                    checked,
                    None,
                    last_seq,
                    problem=f"the ledger's chain hash of batch {batch_id} was changed",
                )
        if nq:
            got = 0
            for rb in quarantine.take(nq):
                qid = rb.column("qid").to_numpy()
                want_q = np.arange(next_qid, next_qid + len(qid), dtype=np.int64)
                if (qid != want_q).any():
                    i = int(np.flatnonzero(qid != want_q)[0])
                    return VerifyReport(
                        False,
                        checked,
                        None,
                        problem=f"quarantined row {int(want_q[i])} is missing or out of order",
                    )
                sealer.quarantine(rb.column("d"))
                next_qid += len(qid)
                got += len(qid)
            if got != nq:
                return VerifyReport(
                    False,
                    checked,
                    None,
                    problem=f"quarantined rows {next_qid}..{last_qid} are missing",
                )
        if sealer.hexdigest() != sealed:
            where = f"seq {first_seq}..{last_seq}" if n else f"quarantine {first_qid}..{last_qid}"
            return VerifyReport(
                False,
                checked,
                None,
                first_seq,
                problem=(
                    f"the SHA-256 seal of batch {batch_id} ({where}) does not match what it "
                    "holds: an event or quarantined row in it was changed"
                ),
            )
        prev_seal = sealed
    extra = events.rest()
    if extra is not None:
        return VerifyReport(
            False,
            checked,
            None,
            int(extra.column("seq")[0].as_py()),
            extra.column("event_id")[0].as_py(),
            "events no seal covers were added after the last batch (inserted outside the store)",
        )
    extra_q = quarantine.rest()
    if extra_q is not None:
        return VerifyReport(
            False,
            checked,
            None,
            problem=f"quarantined row {int(extra_q.column('qid')[0].as_py())} was added outside the store",
        )
    return None


def _snapshots_problem(con) -> str | None:
    """Each stored snapshot once per id, and none that no hot event reads: the digests
    cover what the events relation reads, so a second copy under an id (which another
    read could pick) or a stray row is a change the digests alone would not show."""
    row = con.one(
        "SELECT snapshot_id, count(*) FROM snapshots GROUP BY snapshot_id "
        "HAVING count(*) > 1 ORDER BY snapshot_id LIMIT 1"
    )
    if row is not None:
        return f"snapshot {row[0]} is stored {row[1]} times (a row was added outside the store)"
    stray = con.val(
        "SELECT min(snapshot_id) FROM snapshots WHERE snapshot_id NOT IN "
        "(SELECT snapshot_id FROM events WHERE snapshot_id IS NOT NULL)"
    )
    if stray is not None:
        return f"snapshot {stray} is stored but no event refers to it (added outside the store)"
    return None


def _history_problem(con) -> str | None:
    row = con.one(
        """
        SELECT coalesce(i.ingest_id, l.ingest_id), i.stored, l.events, i.quarantined, l.q,
               i.received, i.duplicates
        FROM ingests i FULL OUTER JOIN (
            SELECT ingest_id, sum(events) AS events, sum(quarantined) AS q
            FROM ledger GROUP BY ingest_id
        ) l ON i.ingest_id = l.ingest_id
        WHERE i.ingest_id IS NULL
           OR coalesce(i.stored, 0) != coalesce(l.events, 0)
           OR coalesce(i.quarantined, 0) != coalesce(l.q, 0)
           OR i.received != i.stored + i.duplicates + i.quarantined
        ORDER BY 1 LIMIT 1
        """
    )
    if row is None:
        return None
    ingest_id, stored, sealed, quarantined, sealed_q, received, dups = row
    if stored is None:
        return f"ingest {ingest_id} sealed events but has no record in the ingest history"
    return (
        f"the ingest history of ingest {ingest_id} (received {received}, stored {stored}, "
        f"duplicates {dups}, quarantined {quarantined}) disagrees with the ledger "
        f"(sealed {sealed or 0} events and {sealed_q or 0} quarantined rows)"
    )
