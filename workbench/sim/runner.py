"""The flow runner: leads arrive over a window, flow through, and stream out as Arrow.

Arrivals follow the flow's hourly and weekly traffic curves (each source within its
schedule; incidents may raise a source's volume). Leads are processed in chunks of a
few thousand; each chunk's events are sorted by time and held back only until no
later chunk can produce an earlier event, so the output is in global time order, in
tables of at least 100 k rows, with memory bounded by one chunk plus the feedback
still to come. Every random draw comes from generators seeded by ``seed`` and the
chunk number: the same arguments give the same events, event ids included.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from .. import display
from ..store.schema import INPUT_FIELDS, arrow_type
from ..timeutil import as_utc as _as_utc
from . import stages
from .chunk import Chunk
from .flow import Flow
from .flow_parse import load_flow
from .incidents import Incident, MoreLeads, _b62, as_spec, resolve
from .plan import DAY, HOUR, TYPES, Plan

__all__ = ["FlowRunner", "RunReport", "simulate", "SCHEMA"]

#: The event columns the runner produces (the store's record, without seq).
SCHEMA = pa.schema([(c, arrow_type(c)) for c in INPUT_FIELDS])
#: Arrivals stop this long before the run's end, so every lead completes inside it.
_TAIL_MS = 10 * 60_000
#: The longest run simulate() makes, in days (ten years of hourly arrivals).
MAX_DAYS = 3_660
_OUT_ROWS = 100_000


@dataclass(frozen=True)
class RunReport:
    """What a simulation produced.

    ``counts`` has the events per type; ``incident_leads`` (not shown, not compared)
    maps each incident id to the lead ids it changed, the ground truth for tests.
    """

    run_id: str
    flow_id: str
    seed: int
    start: dt.datetime
    end: dt.datetime
    leads: int
    events: int
    counts: Mapping[str, int]
    incidents: tuple[Incident, ...]
    seconds: float
    events_per_second: float
    stored: int | None = None
    duplicates: int | None = None
    quarantined: int | None = None
    incident_leads: Mapping[str, tuple[str, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __str__(self) -> str:
        lines = [
            f"run {self.run_id}  flow {self.flow_id}  seed {self.seed}",
            f"  {self.start:%Y-%m-%d %H:%M} .. {self.end:%Y-%m-%d %H:%M} UTC",
            f"  leads        {self.leads:>12,}",
            f"  events       {self.events:>12,}   ({self.events_per_second:,.0f} events/s, "
            f"{self.seconds:.1f} s)",
        ]
        if self.stored is not None:
            lines.append(
                f"  stored       {self.stored:>12,}   duplicates {self.duplicates:,}, "
                f"quarantined {self.quarantined:,}"
            )
        for t in TYPES:
            if self.counts.get(t):
                lines.append(f"    {t:<22} {self.counts[t]:>10,}")
        for inc in self.incidents:
            n = len(self.incident_leads.get(inc.incident_id, ()))
            lines.append(
                f"  incident {inc.name} on {inc.entity or 'flow'}: "
                f"{inc.starts_at:%m-%d %H:%M}..{inc.ends_at:%m-%d %H:%M}, {n:,} leads"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = [
            ("period", f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"),
            ("leads", f"{self.leads:,}"),
            ("events", f"{self.events:,} ({self.events_per_second:,.0f}/s, {self.seconds:.1f} s)"),
        ]
        if self.stored is not None:
            rows.append(
                (
                    "stored",
                    f"{self.stored:,} · {self.duplicates:,} duplicates · "
                    f"{self.quarantined:,} quarantined",
                )
            )
        incidents = display.table(
            ["incident", "on", "from (UTC)", "to", "leads hit"],
            [
                (
                    i.name,
                    i.entity or "flow",
                    f"{i.starts_at:%m-%d %H:%M}",
                    f"{i.ends_at:%m-%d %H:%M}",
                    len(self.incident_leads.get(i.incident_id, ())),
                )
                for i in self.incidents
            ],
        )
        return display.card(
            f"Simulation {self.run_id} of {self.flow_id} (seed {self.seed})",
            rows,
            status="warn" if self.quarantined else "ok",
            extra_html=incidents if self.incidents else "",
        )


def _utc(value, what: str) -> dt.datetime:
    """As the store reads times, truncated to the millisecond events carry."""
    value = _as_utc(value, what)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _ms(t: dt.datetime) -> int:
    return int(round(t.timestamp() * 1000))


class FlowRunner:
    """A simulation ready to run: the flow, the window, the seed and the incidents.

    ``tables()`` yields the events as Arrow tables in time order; ``report()`` then
    says what was produced.

    >>> run = FlowRunner(leads=1000, days=1, seed=1)
    >>> sum(t.num_rows for t in run.tables()) == run.report().events
    True
    """

    def __init__(
        self,
        flow: Flow | str | os.PathLike | None = None,
        *,
        leads: int = 20_000,
        start=None,
        end=None,
        days: float | None = None,
        seed: int = 0,
        incidents: Iterable = (),
        batch_leads: int = 8_000,
        arrivals_end=None,
    ):
        self.flow = flow if isinstance(flow, Flow) else load_flow(flow)
        if isinstance(leads, bool) or not isinstance(leads, (int, np.integer)) or leads < 0:
            raise ValueError(f"leads={leads!r}: give a whole number of leads >= 0")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed={seed!r}: give a whole number >= 0")
        if days is not None and (
            isinstance(days, bool)
            or not isinstance(days, int | float | np.integer | np.floating)
            or not 0 < days <= MAX_DAYS
        ):
            raise ValueError(
                f"days={days!r}: give a number of days above 0 and at most {MAX_DAYS:,}"
            )
        try:
            if start is not None and end is not None:
                start, end = _utc(start, "start"), _utc(end, "end")
            elif start is not None:
                start = _utc(start, "start")
                end = start + dt.timedelta(days=days or 7)
            else:
                end = _utc(end, "end") if end is not None else _utc(dt.datetime.now(dt.UTC), "end")
                start = end - dt.timedelta(days=days or 7)
        except OverflowError:
            raise ValueError(
                "the run would reach outside the calendar (years 1 to 9999): "
                "choose a start or end well inside it"
            ) from None
        if arrivals_end is None:
            if end <= start + dt.timedelta(milliseconds=2 * _TAIL_MS):
                raise ValueError(
                    f"the run from {start} to {end} is too short; give at least an hour"
                )
            self.arrivals_end = end - dt.timedelta(milliseconds=_TAIL_MS)
        else:
            # a live stream's slice: leads arrive in [start, arrivals_end), their later
            # events (feedback days later) run on to ``end``
            self.arrivals_end = _utc(arrivals_end, "arrivals_end")
            if not start < self.arrivals_end <= end - dt.timedelta(milliseconds=_TAIL_MS):
                raise ValueError(
                    f"arrivals_end={self.arrivals_end} must be after start={start} and at "
                    f"least {_TAIL_MS // 60_000} minutes before end={end}"
                )
        self.start, self.end = start, end
        self.leads = int(leads)
        self.seed = int(seed)
        self.batch_leads = int(batch_leads)
        specs = [as_spec(i) for i in (incidents or ())]
        parts = [
            self.flow.id,
            self.seed,
            self.leads,
            _ms(start),
            _ms(end),
            [s.text() for s in specs],
        ]
        if arrivals_end is not None:
            parts.append(_ms(self.arrivals_end))
        key = json.dumps(parts)
        self.run_id = "run_" + _b62(hashlib.sha256(key.encode()).digest(), 12)
        incidents = resolve(specs, self.flow, start, end, self.run_id)
        self.plan = Plan(self.flow, incidents, _ms(start), _ms(end))
        self._report: RunReport | None = None

    @property
    def incidents(self) -> tuple[Incident, ...]:
        """The run's incidents, resolved against its flow and window."""
        return self.plan.incidents

    # ------------------------------------------------------------------ arrivals

    def _buckets(self):
        """Clock-hour buckets of the arrival window with each source's intensity."""
        flow, plan = self.flow, self.plan
        a0, a1 = plan.start_ms, _ms(self.arrivals_end)
        edges = [a0]
        t = a0 - a0 % HOUR + HOUR
        while t < a1:
            edges.append(t)
            t += HOUR
        edges.append(a1)
        edges = np.array(edges, dtype=np.int64)
        mid = (edges[:-1] + edges[1:]) // 2
        width = (edges[1:] - edges[:-1]) / HOUR
        loc = plan.local(mid, flow.timezone)
        hour = (loc // HOUR) % 24
        wday = ((loc // DAY) + 3) % 7
        curve = np.array(flow.hourly)[hour] * np.array(flow.weekly)[wday] * width
        lam = []
        for s in flow.sources:
            base = curve * in_schedule(plan, s, mid)
            total = base.sum()
            lam.append(s.share * base / total if total > 0 else base * 0)
        return edges, more_leads(plan, np.array(lam), mid)

    def _arrivals(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(times, sources) of every lead, in time order, in pieces of <= batch_leads."""
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(0,)))
        edges, lam = self._buckets()
        per_bucket = lam.sum(axis=0)
        total = per_bucket.sum()
        if total <= 0 or self.leads == 0:
            return
        counts = rng.multinomial(self.leads, per_bucket / total)
        n_src = lam.shape[0]
        for b, c in enumerate(counts):
            done = 0
            while done < c:
                k = min(int(c) - done, self.batch_leads)
                lo, hi = edges[b], edges[b + 1]
                t = np.sort(lo + (rng.random(k) * (hi - lo)).astype(np.int64))
                src = rng.choice(n_src, size=k, p=lam[:, b] / per_bucket[b])
                done += k
                yield t, src

    def _chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        buf_t, buf_s, n = [], [], 0
        for t, s in self._arrivals():
            buf_t.append(t)
            buf_s.append(s)
            n += len(t)
            while n >= self.batch_leads:
                tt, ss = np.concatenate(buf_t), np.concatenate(buf_s)
                yield tt[: self.batch_leads], ss[: self.batch_leads]
                buf_t, buf_s = [tt[self.batch_leads :]], [ss[self.batch_leads :]]
                n -= self.batch_leads
        if n:
            yield np.concatenate(buf_t), np.concatenate(buf_s)

    # ------------------------------------------------------------------ events

    def tables(self, on_chunk: Callable[[int], None] | None = None) -> Iterator[pa.Table]:
        """Yield every event as Arrow tables (>= 100 k rows but the last), in time order.

        ``on_chunk(n_leads)`` is called after each chunk of leads (for progress bars).
        """
        t_begin = time.perf_counter()
        plan = self.plan
        self._counts = np.zeros(len(TYPES), dtype=np.int64)
        self._touched = {}
        pending: list[tuple[pa.Table, np.ndarray]] = []  # events not yet due, each sorted
        out: list[pa.Table] = []
        out_rows = 0
        n_events = 0
        chunks = self._chunks()
        nxt = next(chunks, None)
        k = 0
        while nxt is not None:
            t_arr, src = nxt
            nxt = next(chunks, None)
            ev = self.chunk_events(k, t_arr, src)
            # a later chunk's leads arrive no earlier than its first arrival: every
            # event before that moment can go out now
            mark = int(nxt[0][0]) if nxt is not None else plan.end_ms + 1
            due, pending = _split(pending, mark)
            merged, rest = _gather(ev, due, mark, self.flow.id)
            if rest is not None:
                pending.append(rest)
            del ev
            if merged.num_rows:
                out.append(merged)
                out_rows += merged.num_rows
                n_events += merged.num_rows
            if out_rows >= _OUT_ROWS or (nxt is None and out_rows):
                yield pa.concat_tables(out)
                out, out_rows = [], 0
            if on_chunk is not None:
                on_chunk(len(t_arr))
            k += 1
            # the allocator keeps freed chunks' pages; give them back so memory stays flat
            pa.default_memory_pool().release_unused()
        if pending:  # pragma: no cover - the last mark is past every event
            raise RuntimeError("internal error: events left after the run's end")
        self._report = self.make_report(n_events, time.perf_counter() - t_begin)

    def chunk_events(self, k: int, t_arr: np.ndarray, src: np.ndarray) -> dict:
        """Run chunk ``k`` (leads arriving at times ``t_arr`` from sources ``src``)
        through the flow; returns its events as ``Chunk.sources`` gives them. The
        counts per type and the leads each incident changed add up on the runner."""
        if not hasattr(self, "_counts"):
            self._counts = np.zeros(len(TYPES), dtype=np.int64)
            self._touched = {}
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(1, k)))
        ch = Chunk(self.plan, rng, t_arr, src)
        stages.run(ch)
        ev = ch.sources(
            pa.array(self.plan.entity_ids, pa.string()), pa.array(self.plan.step_ids, pa.string())
        )
        self._counts += np.bincount(ev["types"], minlength=len(TYPES))
        for inc_k, parts in ch.touched.items():
            ids = ch.lead_ids.take(pa.array(np.concatenate(parts)))
            self._touched.setdefault(inc_k, []).append(ids)
        return ev

    def chunk_table(self, k: int, t_arr: np.ndarray, src: np.ndarray) -> pa.Table:
        """Chunk ``k``'s events (see :meth:`chunk_events`) as one table in time order."""
        table, _ = _gather(self.chunk_events(k, t_arr, src), [], 1 << 62, self.flow.id)
        return table

    def make_report(self, n_events: int, seconds: float, **changes) -> RunReport:
        """The report of what the chunks run so far produced."""
        counts = getattr(self, "_counts", np.zeros(len(TYPES), dtype=np.int64))
        touched = getattr(self, "_touched", {})
        incident_leads = {}
        for inc_k, inc in enumerate(self.incidents):
            arrs = touched.get(inc_k, [])
            ids = pa.concat_arrays(arrs).to_pylist() if arrs else []
            incident_leads[inc.incident_id] = tuple(dict.fromkeys(ids))
        fields = dict(
            run_id=self.run_id,
            flow_id=self.flow.id,
            seed=self.seed,
            start=self.start,
            end=self.end,
            leads=self.leads,
            events=n_events,
            counts={t: int(c) for t, c in zip(TYPES, counts, strict=True) if c},
            incidents=self.incidents,
            seconds=seconds,
            events_per_second=n_events / seconds if seconds else 0.0,
            incident_leads=incident_leads,
        )
        return RunReport(**{**fields, **changes})

    def report(self) -> RunReport:
        """The report of the run (after ``tables()`` was consumed)."""
        if self._report is None:
            raise RuntimeError("the run has not finished: consume tables() first")
        return self._report

    def register(self, store) -> None:
        """Register the flow's dimensions and this run's incidents in ``store``."""
        self.flow.register(store)
        known = set()
        if self.incidents:
            df = store.sql("SELECT incident_id FROM incidents WHERE run_id = ?", [self.run_id])
            known = set(df["incident_id"])
        store.record_incidents(i.record() for i in self.incidents if i.incident_id not in known)


_DONE = object()


def ahead(items: Iterable, depth: int = 2) -> Iterator:
    """``items`` produced by a thread of their own, at most ``depth`` ahead of the
    consumer: the producer's work overlaps the consumer's. An error in the producer is
    raised in the consumer; a consumer that stops early stops the producer.

    >>> list(ahead(iter(range(5))))
    [0, 1, 2, 3, 4]
    """
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as e:  # handed to the consumer, raised there
            box.put((_DONE, e))
            return
        box.put((_DONE, None))

    worker = threading.Thread(target=produce, name="workbench-sim-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item, error = box.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                box.get(timeout=0.1)
        worker.join()


def in_schedule(plan: Plan, source, t: np.ndarray) -> np.ndarray:
    """1.0 where ``source`` sends leads at times ``t`` (its schedule, if any), else 0.0."""
    if source.schedule is None:
        return np.ones(len(t))
    sl = plan.local(t, source.schedule.timezone)
    minute = (sl // 60_000) % 1440
    wd = ((sl // DAY) + 3) % 7
    sched = source.schedule
    on = np.isin(wd, sched.days) & (minute >= sched.start_minute) & (minute < sched.end_minute)
    return on.astype(float)


def more_leads(plan: Plan, lam: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Source intensities ``lam`` (sources x times ``t``) raised by volume incidents."""
    names = [s.name for s in plan.flow.sources]
    for _, inc, effect in plan.acting(MoreLeads):
        si = names.index(inc.parameters[effect.target])
        w = plan.window(inc, t)
        lam[si] = np.where(w, lam[si] * inc.parameters[effect.factor], lam[si])
    return lam


def _split(pending, mark: int):
    """(rows of pending segments before ``mark``, what stays pending)."""
    due, keep = [], []
    for table, ts in pending:
        j = int(np.searchsorted(ts, mark, "left"))
        if j:
            due.append((table.slice(0, j), ts[:j]))
        if j < len(ts):
            rest = table.slice(j)
            if j > len(ts) // 2:
                # a slice keeps its parent's memory alive: copy the smaller rest
                rest = rest.take(pa.array(np.arange(rest.num_rows)))
            keep.append((rest, ts[j:]))
    return due, keep


def _gather(ev: dict, due: list, mark: int, flow_id: str):
    """The chunk's events before ``mark`` merged with earlier chunks' ``due`` rows, in
    time order, and the chunk's later events as a new pending segment.

    Each text column is copied once into one source (the chunk's pieces, then the due
    rows) and taken from it once, so no event is copied more than needed.
    """
    order, ts, dur = ev["order"], ev["ts"], ev["dur"]
    ts_sorted = ts[order]
    i = int(np.searchsorted(ts_sorted, mark, "left"))
    now_rows, later_rows = order[:i], order[i:]
    n_old = sum(len(t) for _, t in due)
    ts_all = np.concatenate([ts, *[t for _, t in due]])
    dur_all = np.concatenate([dur, *[d.column("duration_ms").to_numpy() for d, _ in due]])
    merge = None
    if n_old:
        merge = np.argsort(np.concatenate([ts_sorted[:i], *[t for _, t in due]]), kind="stable")
    cols_now, cols_later = {}, {}
    for name, (pieces, refs) in ev["text"].items():
        base = sum(len(p) for p in pieces)
        old = [c for d, _ in due for c in d.column(name).chunks]
        allp = pieces + old
        src = allp[0] if len(allp) == 1 else pa.concat_arrays(allp)
        rows_now = now_rows if refs is None else refs[now_rows]
        if n_old:
            rows_now = np.concatenate([rows_now, base + np.arange(n_old)])[merge]
        cols_now[name] = src.take(pa.array(rows_now))
        if len(later_rows):
            rows_later = later_rows if refs is None else refs[later_rows]
            cols_later[name] = src.take(pa.array(rows_later))
    n_ts = np.concatenate([now_rows, len(ts) + np.arange(n_old)])
    if n_old:
        n_ts = n_ts[merge]
    now = _table(cols_now, ts_all[n_ts], dur_all[n_ts], flow_id)
    later = None
    if len(later_rows):
        later = (_table(cols_later, ts[later_rows], dur[later_rows], flow_id), ts[later_rows])
    return now, later


def _table(cols: dict, ts: np.ndarray, dur: np.ndarray, flow_id: str) -> pa.Table:
    n = len(ts)
    return pa.table(
        {
            "event_id": cols["event_id"],
            "type": cols["type"],
            "timestamp": pa.array(ts, pa.timestamp("ms", tz="UTC")),
            "lead_id": cols["lead_id"],
            "flow_id": pa.array([flow_id], pa.string()).take(pa.array(np.zeros(n, np.int64))),
            "entity_id": cols["entity_id"],
            "step_id": cols["step_id"],
            "outcome": cols["outcome"],
            "duration_ms": pa.array(dur, pa.int32()),
            "metadata": cols["metadata"],
            "lead_snapshot": cols["lead_snapshot"],
        },
        schema=SCHEMA,
    )


def simulate(
    flow: Flow | str | os.PathLike | None = None,
    *,
    leads: int = 20_000,
    start=None,
    days: float | None = None,
    end=None,
    seed: int = 0,
    incidents: Iterable = (),
    store=None,
    progress: bool = False,
) -> RunReport:
    """Simulate ``leads`` leads through ``flow`` and append their events to ``store``.

    ``flow`` is a :class:`Flow` or the path of a flow YAML (default: the sample flow).
    The run covers ``days`` days (default 7) ending ``end`` (default: now), or starting
    ``start``. ``incidents`` are names with parameters (see ``workbench incidents``).
    ``store`` is an EventStore or the path of one; without a store the events are
    generated and counted only. The flow's dimensions and the incidents are recorded
    in the store before its events.

    >>> import workbench
    >>> store = workbench.open_store()
    >>> report = simulate(leads=200, days=1, seed=7, store=store,
    ...                   incidents=["nine_digit_phones:rate=0.9"])
    >>> report.quarantined, report.stored == report.events
    (0, True)
    """
    runner = FlowRunner(
        flow, leads=leads, start=start, end=end, days=days, seed=seed, incidents=incidents
    )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=runner.leads, unit=" leads", unit_scale=True, desc="simulate")
    on_chunk = bar.update if bar is not None else None
    try:
        if store is None:
            for _ in runner.tables(on_chunk):
                pass
            return runner.report()
        own = not hasattr(store, "append")
        if own:
            from ..store import open_store

            store = open_store(Path(store))
        try:
            runner.register(store)
            # the next tables are generated while the store takes the last ones (DuckDB
            # lets go of the GIL while it inserts): the two cores work at once
            reader = pa.RecordBatchReader.from_batches(
                SCHEMA, (b for t in ahead(runner.tables(on_chunk)) for b in t.to_batches())
            )
            ingest = store.append(reader, progress=False, label=f"simulate {runner.run_id}")
        finally:
            if own:
                store.close()
    finally:
        if bar is not None:
            bar.close()
    r = runner.report()
    return RunReport(
        **{
            **{f: getattr(r, f) for f in r.__dataclass_fields__},
            "stored": ingest.stored,
            "duplicates": ingest.duplicates,
            "quarantined": ingest.quarantined,
        }
    )
