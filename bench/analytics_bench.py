"""How fast the guide's analyses and explain() answer on a big store, through a Session.

Builds (or reuses) a simulated store of about ``--events`` events (the sample flow with
its ten incidents, spread over a week), connects as an analyst (masked reads, audit
trail on) and prints, for every analytics function, the median of three runs, and for
explain() the median over ``--leads`` random leads, against the targets on this 2-core
machine: each analysis <= 500 ms and explain() <= 100 ms at 10 M events. The same
queries through the raw store are printed beside them, so the cost of masking shows.

    python bench/analytics_bench.py                       # 10 M events (builds ~3 min)
    python bench/analytics_bench.py --events 1000000
    python bench/analytics_bench.py --store /tmp/big.duckdb   # reuse a built store
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import workbench
from workbench import alerts, analytics, investigate
from workbench.sim import sample_run

CALLS = [
    ("step_durations", lambda s: analytics.step_durations(s)),
    ("success_rates", lambda s: analytics.success_rates(s)),
    ("rejection_analysis", lambda s: analytics.rejection_analysis(s)),
    ("rejection_analysis by source", lambda s: analytics.rejection_analysis(s, by_source=True)),
    ("enhancement_value", lambda s: analytics.enhancement_value(s)),
    ("source_performance", lambda s: analytics.source_performance(s)),
    ("source_performance by event", lambda s: analytics.source_performance(s, basis="event")),
    ("buyer_behaviour", lambda s: analytics.buyer_behaviour(s)),
    (
        "buyer_acceptance_by_hour",
        lambda s: analytics.buyer_acceptance_by_hour(s, tz="America/Chicago"),
    ),
    ("buyer_rejection_reasons", lambda s: analytics.buyer_rejection_reasons(s)),
    ("funnel_by_source", lambda s: analytics.funnel_by_source(s)),
    ("funnel_by_source by event", lambda s: analytics.funnel_by_source(s, basis="event")),
    ("lead_paths", lambda s: analytics.lead_paths(s)),
    ("events_by_hour", lambda s: analytics.events_by_hour(s, tz="America/Chicago")),
    ("business_hours_check", lambda s: analytics.business_hours_check(s, tz="America/Chicago")),
    ("errors_by_type", lambda s: analytics.errors_by_type(s)),
    ("timeouts_over_time", lambda s: analytics.timeouts_over_time(s)),
    ("retry_effectiveness", lambda s: analytics.retry_effectiveness(s)),
    ("step_duration_samples", lambda s: analytics.step_duration_samples(s)),
]


def build(path: Path, events: int) -> None:
    run = sample_run.sample_run()
    per_lead = 11.1  # the sample flow's events per lead
    leads = int(events / per_lead)
    print(f"simulating {leads:,} leads (about {events:,} events) into {path} ...", flush=True)
    t0 = time.perf_counter()
    report = workbench.simulate(
        run.flow,
        leads=leads,
        days=7,
        end=run.end,
        seed=1,
        incidents=run.incidents,
        store=path,
        progress=True,
    )
    print(f"  {report.stored:,} events in {time.perf_counter() - t0:.0f} s", flush=True)


def median_ms(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--store", type=Path, help="a store to reuse (built there if missing)")
    ap.add_argument("--leads", type=int, default=100, help="leads to explain")
    args = ap.parse_args(argv)
    path = args.store or Path(tempfile.mkdtemp(prefix="analytics_bench_")) / "big.duckdb"
    if not path.exists():
        build(path, args.events)
    store = workbench.open_store(path, read_only=True)
    n = store.count()
    session = workbench.connect(store, user="ana", role="analyst")
    print(
        f"\n{n:,} events, {store.sql('SELECT count(*) AS n FROM lead_summary').n[0]:,} leads; "
        f"analyst session (masked: {session.masked})\n"
    )
    print(f"{'analysis':32s} {'session':>10s} {'raw store':>10s}   target 500 ms")
    worst = 0.0
    for name, fn in CALLS:
        fn(session)  # warm
        ours = median_ms(lambda fn=fn: fn(session))
        raw = median_ms(lambda fn=fn: fn(store))
        worst = max(worst, ours)
        flag = "" if ours <= 500 else "  OVER"
        print(f"{name:32s} {ours:>8.0f} ms {raw:>8.0f} ms{flag}")
    t0 = time.perf_counter()
    alerts.evaluate(session)
    print(f"{'alerts.evaluate (whole week)':32s} {(time.perf_counter() - t0) * 1000:>8.0f} ms")
    leads = store.sql(
        "SELECT lead_id FROM lead_summary_parts USING SAMPLE 2000 ROWS"
    ).lead_id.tolist()
    random.Random(0).shuffle(leads)
    leads = leads[: args.leads]
    investigate.explain(session, leads[0])
    times = []
    for lead in leads:
        t0 = time.perf_counter()
        investigate.explain(session, lead)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    print(
        f"\nexplain() over {len(leads)} leads: median {statistics.median(times):.1f} ms, "
        f"p90 {times[int(len(times) * 0.9)]:.1f} ms   (target 100 ms)"
    )
    tl = []
    for lead in leads:
        t0 = time.perf_counter()
        session.timeline(lead)
        tl.append((time.perf_counter() - t0) * 1000)
    print(f"session.timeline() median {statistics.median(tl):.1f} ms")
    print(f"\nslowest analysis: {worst:.0f} ms")
    session.close()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
