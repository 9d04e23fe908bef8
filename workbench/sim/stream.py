"""A live stream: a simulation that appends to an open store as its clock runs.

``stream(store, leads_per_minute=120, speed=60)`` starts a background thread with a
simulated clock (``speed`` times real time, starting now). Leads arrive at the given
rate, spread over the flow's sources by their shares (within their schedules), and
run through the flow one short slice of time after another; every event is appended
to the store once the clock reaches its timestamp, a small batch each tick. Buyer caps
and circuit breakers carry from slice to slice as in a batch run.

Incidents given to ``stream`` start when the stream starts unless their ``start``
says otherwise (``"start=20m"``: 20 simulated minutes in); ``start_incident`` starts
one while it runs, from the current moment of its clock. Both are recorded in the
store's ``incidents`` table, as a batch run records them.

Readers (Sessions, widgets) read the store while it grows. ``stop()`` ends the stream
at the current moment: every batch written is whole, so ``verify()`` is clean; leads
still in flight stay as far as they got, and feedback not yet due is not written.

>>> import workbench
>>> store = workbench.open_store()
>>> with stream(store, leads_per_minute=300, speed=3600, duration="30m", seed=2) as live:
...     live.join()
>>> live.report().leads > 0, store.verify().ok
(True, True)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import WorkbenchError
from ..timeutil import as_utc
from .incidents import as_spec, parse_duration, resolve
from .runner import _TAIL_MS, FlowRunner, RunReport, _ms, in_schedule, more_leads

__all__ = ["Stream", "StreamError", "stream"]

#: How far past the stream's clock a feedback event may fall and still be written
#: (feedback arrives days after delivery).
FEEDBACK_HORIZON = dt.timedelta(days=30)
#: Leads per slice of simulated time the stream runs through the flow at once.
_SLICE_LEADS = 400
#: Longest a tick spends running leads through the flow before it writes what is due.
_STEP_S = 0.5


class StreamError(WorkbenchError):
    """A live stream could not start, or stopped on an error."""


def _positive(value, name: str, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise StreamError(f"{name}={value!r}: give a number above 0, e.g. {name}={example}")
    return float(value)


class Stream:
    """A running live simulation (see :func:`stream`): its clock, what it wrote, stop."""

    def __init__(
        self,
        store,
        *,
        leads_per_minute: float = 60.0,
        incidents: Iterable = (),
        speed: float = 1.0,
        flow=None,
        seed: int = 0,
        start=None,
        duration=None,
        tick_s: float = 1.0,
    ):
        self.leads_per_minute = _positive(leads_per_minute, "leads_per_minute", "120")
        self.speed = _positive(speed, "speed", "60")
        self.tick_s = _positive(tick_s, "tick_s", "1")
        self._own_store = not hasattr(store, "append")
        if self._own_store:
            from ..store import open_store

            store = open_store(store)
        if getattr(store, "read_only", False):
            raise StreamError("a stream appends: open the store writable, not read_only")
        self.store = store
        t0 = as_utc(start, "start") if start is not None else dt.datetime.now(dt.UTC)
        t0 = t0.replace(microsecond=t0.microsecond // 1000 * 1000)
        self.started_at = t0
        self.ends_at = None
        if duration is not None:
            length = (
                duration
                if isinstance(duration, dt.timedelta)
                else parse_duration(duration, "duration")
            )
            if length <= dt.timedelta(0):
                raise StreamError(f"duration={duration!r}: give a length above 0, e.g. '2h'")
            self.ends_at = t0 + length
        last = (self.ends_at or t0 + dt.timedelta(days=365)) + FEEDBACK_HORIZON
        self._runner = FlowRunner(
            flow,
            leads=0,
            start=t0,
            end=last,
            arrivals_end=last - dt.timedelta(milliseconds=_TAIL_MS),
            seed=seed,
        )
        self.run_id = "stream_" + self._runner.run_id.removeprefix("run_")
        self._rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(7,)))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pending: pa.Table | None = None
        self._generated_ms = _ms(t0)
        self._k = 0
        self._dropped: set[str] = set()
        self._counts = {"leads": 0, "events": 0, "stored": 0, "duplicates": 0, "quarantined": 0}
        self._clock_ms = _ms(t0)
        self.error: BaseException | None = None
        self._wall0 = time.monotonic()
        self._runner.flow.register(store)
        self._by_type: dict[str, int] = {}
        for item in incidents or ():
            self._add_incident(item, default_start="0m")
        self._thread = threading.Thread(target=self._run, name=f"stream {self.run_id}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ reading

    def __repr__(self) -> str:
        state = "running" if self.running else ("failed" if self.error else "stopped")
        behind = self.behind if self.running else dt.timedelta(0)
        lag = (
            f", {behind.total_seconds():,.0f} s behind" if behind > dt.timedelta(seconds=5) else ""
        )
        return (
            f"<Stream {self.run_id} {state}: {self._counts['events']:,} events of "
            f"{self._counts['leads']:,} leads, clock at {self.clock:%Y-%m-%d %H:%M:%S} UTC, "
            f"{self.speed:g}x real time{lag}>"
        )

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def clock(self) -> dt.datetime:
        """The simulated time the stream has written up to."""
        return dt.datetime.fromtimestamp(self._clock_ms / 1000, dt.UTC)

    @property
    def behind(self) -> dt.timedelta:
        """How far the written events trail the clock (the simulation cannot keep up
        with ``leads_per_minute`` times ``speed`` when this grows)."""
        return dt.timedelta(milliseconds=max(self._now_ms() - self._clock_ms, 0))

    @property
    def events_written(self) -> int:
        return self._counts["events"]

    @property
    def incidents(self) -> tuple:
        """The incidents started so far, as recorded in the store."""
        return self._runner.incidents

    def report(self) -> RunReport:
        """What the stream has written so far, with each incident's affected leads."""
        with self._lock:
            r = self._runner.make_report(
                self._counts["events"],
                time.monotonic() - self._wall0,
                run_id=self.run_id,
                start=self.started_at,
                end=self.clock,
                leads=self._counts["leads"],
                counts=dict(self._by_type),
                stored=self._counts["stored"],
                duplicates=self._counts["duplicates"],
                quarantined=self._counts["quarantined"],
            )
        if self._dropped:
            leads = {
                k: tuple(x for x in v if x not in self._dropped)
                for k, v in r.incident_leads.items()
            }
            r = dataclasses.replace(r, incident_leads=leads)
        return r

    # ------------------------------------------------------------------ control

    def start_incident(self, incident):
        """Start an incident now (by the stream's clock), e.g.
        ``live.start_incident("source_rejection_spike:rate=0.9")``; a ``start``
        parameter (``"start=10m"``: from the stream's start) or ``duration`` shift and
        bound it. Leads that arrive from then on meet it. Returns the incident as
        recorded in the store."""
        return self._add_incident(incident, default_start=None)

    def _add_incident(self, incident, default_start: str | None):
        spec = as_spec(incident)
        with self._lock:
            # now as readers see it: the moment written up to
            now_ms = self._clock_ms
            now = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC)
            if "start" not in spec.params:
                spec = dataclasses.replace(
                    spec, params={**spec.params, "start": default_start or now.isoformat()}
                )
            window_end = self.ends_at or (now + dt.timedelta(days=365))
            (inc,) = resolve(
                [spec],
                self._runner.flow,
                self.started_at,
                window_end,
                self.run_id,
                first=len(self._runner.incidents),
            )
            # leads not arrived yet were run through the flow without it: run them again
            self._forget_future(now_ms)
            self._runner.plan.add_incidents([inc])
        self.store.record_incidents([inc.record()])
        return inc

    def stop(self, timeout: float | None = 30) -> RunReport:
        """Stop at the current moment of the clock; returns the report. Raises the
        error the stream stopped on, if any."""
        self._stop.set()
        self._thread.join(timeout)
        self._finish()
        return self.report()

    def join(self, timeout: float | None = None) -> RunReport:
        """Wait until a stream with a ``duration`` ends (or ``timeout`` seconds)."""
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._finish()
        return self.report()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _finish(self) -> None:
        if self._own_store and not self.store.closed and not self._thread.is_alive():
            self.store.close()
        if self.error is not None:
            raise StreamError(f"the stream stopped on an error: {self.error}") from self.error

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                now = self._now_ms()
                written = self._step(now)
                if self.ends_at is not None and written >= _ms(self.ends_at):
                    return
                if written >= now:  # caught up: wait for the clock
                    self._stop.wait(self.tick_s)
        except BaseException as e:  # noqa: BLE001 - kept for stop()/join() to raise
            self.error = e

    def _step(self, now: int) -> int:
        """Write the events due by ``now`` (or as far as the simulation got); returns
        the time written up to."""
        with self._lock:
            now = self._generate(now)
            due = None
            if self._pending is not None and self._pending.num_rows:
                ts = self._pending.column("timestamp").cast(pa.int64()).to_numpy()
                j = int(np.searchsorted(ts, now, "right"))
                if j:
                    due = self._pending.slice(0, j)
                    self._pending = self._pending.slice(j)
            # the clock moves before the events land, so a reader never sees an event
            # ahead of it (appending takes a while when the stream is behind)
            self._clock_ms = now
        if due is not None:
            report = self.store.append(due, progress=False, label=f"stream {self.run_id}")
        with self._lock:
            if due is None:
                return now
            for row in pc.value_counts(due["type"]).to_pylist():
                self._by_type[row["values"]] = self._by_type.get(row["values"], 0) + row["counts"]
            c = self._counts
            c["leads"] = self._by_type.get("source.submitted", 0)
            c["events"] += due.num_rows
            c["stored"] += report.stored
            c["duplicates"] += report.duplicates
            c["quarantined"] += report.quarantined
            return now

    def _now_ms(self) -> int:
        """The clock: ``speed`` times the real time since the start, up to the end."""
        now = _ms(self.started_at) + int((time.monotonic() - self._wall0) * 1000 * self.speed)
        return min(now, _ms(self.ends_at)) if self.ends_at is not None else now

    def _slice_ms(self) -> int:
        minutes = _SLICE_LEADS / self.leads_per_minute
        return int(min(max(minutes * 60_000, 1_000), 15 * 60_000))

    def _arrivals_end(self) -> int:
        if self.ends_at is None:
            return 1 << 62
        tail = min(_TAIL_MS, (_ms(self.ends_at) - _ms(self.started_at)) // 4)
        return _ms(self.ends_at) - tail

    def _generate(self, now: int) -> int:
        """Run slices of arrivals up to ``now`` through the flow, a few at a time so
        writes keep flowing when the clock outruns the simulation; returns the time up
        to which every event is known (all leads arriving before it have been run)."""
        plan, flow = self._runner.plan, self._runner.flow
        stop_at = self._arrivals_end()
        started = time.monotonic()
        while (
            self._generated_ms <= now
            and self._generated_ms < stop_at
            and time.monotonic() - started < _STEP_S
        ):
            lo = self._generated_ms
            hi = min(lo + self._slice_ms(), stop_at)
            mid = np.array([(lo + hi) // 2], dtype=np.int64)
            lam = np.array([s.share * in_schedule(plan, s, mid) for s in flow.sources])
            if lam.sum() > 0:
                # the rate holds whenever some source sends; volume incidents add to it
                lam = lam / lam.sum() * self.leads_per_minute
            lam = more_leads(plan, lam, mid)[:, 0]
            n_src = self._rng.poisson(lam * (hi - lo) / 60_000)
            self._generated_ms = hi
            n = int(n_src.sum())
            if n == 0:
                continue
            src = np.repeat(np.arange(len(flow.sources)), n_src)
            t = lo + (self._rng.random(n) * (hi - lo)).astype(np.int64)
            order = np.argsort(t, kind="stable")
            table = self._runner.chunk_table(self._k, t[order], src[order])
            self._k += 1
            self._merge(table)
        if self._generated_ms >= stop_at:
            return now
        return min(now, self._generated_ms - 1)

    def _merge(self, table: pa.Table) -> None:
        if self._pending is not None and self._pending.num_rows:
            table = pa.concat_tables([self._pending, table])
            table = table.take(pc.sort_indices(table, sort_keys=[("timestamp", "ascending")]))
        self._pending = table

    def _forget_future(self, now: int) -> None:
        """Drop the leads that arrive after ``now`` (to run them again later)."""
        p = self._pending
        if p is not None and p.num_rows:
            arriving = pc.and_(
                pc.equal(p["type"], "source.submitted"),
                pc.greater(p["timestamp"].cast(pa.int64()), now),
            )
            later = pc.filter(p["lead_id"], arriving)
            if len(later):
                self._dropped.update(later.to_pylist())
                self._pending = p.filter(pc.invert(pc.is_in(p["lead_id"], later)))
        self._generated_ms = min(self._generated_ms, now + 1)


def stream(
    store,
    *,
    leads_per_minute: float = 60.0,
    incidents: Iterable = (),
    speed: float = 1.0,
    flow=None,
    seed: int = 0,
    start=None,
    duration=None,
    tick_s: float = 1.0,
) -> Stream:
    """Start a live simulation that appends to ``store`` (an open EventStore, or the
    path of one) in a background thread; returns the running :class:`Stream`.

    ``leads_per_minute`` is the arrival rate when every source sends; ``speed`` runs
    the clock faster than real time (60: a simulated minute each second); ``start``
    sets the clock's first moment (default: now); ``duration`` (``"2h"``) ends the
    stream by itself, else ``stop()`` ends it. ``incidents`` are as for ``simulate``
    and start with the stream unless they give a ``start`` (``"start=30m"``).

    >>> live = stream(store, leads_per_minute=200, speed=60,                 # doctest: +SKIP
    ...               incidents=["buyer_acceptance_drop:start=30m,acceptance=0.2"])
    >>> live.start_incident("enhancement_outage")                           # doctest: +SKIP
    >>> live.stop().events                                                   # doctest: +SKIP
    48213
    """
    return Stream(
        store,
        leads_per_minute=leads_per_minute,
        incidents=incidents,
        speed=speed,
        flow=flow,
        seed=seed,
        start=start,
        duration=duration,
        tick_s=tick_s,
    )
