"""How fast each widget answers a click, server side, next to the queries behind it.

Builds (or reuses) a simulated store of about ``--events`` events (the sample flow with
its incidents, as bench/analytics_bench.py builds it), connects as an analyst (masked
reads, audit trail on), and times every interaction a person makes: a filter change, a
page flip, a facet refresh, opening a lead, a dashboard period change, the alert
monitor's and the live feed's refresh. Beside each: the same reads issued straight
through the Session (the ``analysis`` functions the widget calls, which are
``session.sql`` and a little pandas), so what the widget itself adds shows as a ratio.
Targets on this 2-core machine: median <= 200 ms at 1 M events, <= 500 ms at 10 M.

    python bench/widgets_bench.py --events 1000000
    python bench/widgets_bench.py --events 10000000 --store /tmp/big.duckdb   # builds once
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from analytics_bench import build  # noqa: E402  the same simulated store

import workbench  # noqa: E402
from workbench.analysis import alerts, analytics, business, explore, investigate, live  # noqa: E402
from workbench.widgets import (  # noqa: E402
    AlertMonitor,
    Dashboard,
    EventExplorer,
    LeadTimeline,
    LiveFeed,
)

# each a whole filter set: set_filters keeps what a call does not name, so a filter left
# out would stay from the one before (the session peer starts from nothing each time)
FILTERS = [
    dict(types=("recipient.*",), outcomes=("failure",), where=()),
    dict(types=("source.rejected",), outcomes=(), where=()),
    dict(types=(), outcomes=("error",), where=()),
    dict(types=("enhancement.*",), outcomes=(), where=()),
    dict(types=(), outcomes=(), where=(("state", "TX"),)),
]


def median_ms(fn, runs: int) -> float:
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _explorer_reads(session, f) -> None:
    explore.total(session, f)
    explore.facets(session, f)
    explore.histogram(session, f)
    explore.page(session, f, 0)


def _dashboard_reads(session, since, until) -> None:
    w = {"since": since, "until": until}
    business.kpis(session, **w)
    analytics.source_performance(session, **w)
    analytics.buyer_behaviour(session, **w)
    analytics.funnel_by_source(session, **w)
    analytics.rejection_analysis(session, by_source=True, **w)
    analytics.buyer_acceptance_by_hour(session, **w)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--store", type=Path, help="a store to reuse (built there if missing)")
    ap.add_argument("--runs", type=int, default=9, help="runs of each interaction")
    args = ap.parse_args(argv)
    path = args.store or Path(tempfile.mkdtemp(prefix="widgets_bench_")) / "big.duckdb"
    if not path.exists():
        build(path, args.events)
    store = workbench.open_store(path, read_only=True)
    n = store.count()
    session = workbench.connect(store, user="ana", role="analyst")
    target = 200 if n <= 2_000_000 else 500
    print(f"\n{n:,} events; analyst session (masked: {session.masked}); target {target} ms\n")
    runs = args.runs
    rows = []

    def row(name, widget_ms, peer_ms):
        rows.append((name, widget_ms, peer_ms))
        flag = "" if widget_ms <= target else "  OVER"
        ratio = widget_ms / peer_ms if peer_ms else float("nan")
        print(
            f"{name:34s} {widget_ms:>8.0f} ms {peer_ms:>8.0f} ms {ratio:>6.2f}x{flag}", flush=True
        )

    print(f"{'interaction':34s} {'widget':>11s} {'session':>11s}  ratio")
    builds = {}
    for name, make in [
        ("EventExplorer", lambda: EventExplorer(session)),
        ("Dashboard", lambda: Dashboard(session)),
        ("AlertMonitor", lambda: AlertMonitor(session)),
        ("LiveFeed", lambda: LiveFeed(session)),
    ]:
        t0 = time.perf_counter()
        builds[name] = make()
        print(f"  (build {name}: {(time.perf_counter() - t0) * 1000:,.0f} ms)", flush=True)
    ex, board = builds["EventExplorer"], builds["Dashboard"]
    monitor, feed = builds["AlertMonitor"], builds["LiveFeed"]

    cycle = itertools.cycle(FILTERS)
    widget = median_ms(lambda i: ex.set_filters(**next(cycle)), runs)
    cycle = itertools.cycle(FILTERS)
    peer = median_ms(lambda i: _explorer_reads(session, explore.filters(**next(cycle))), runs)
    row("explorer: filter change", widget, peer)

    ex.set_filters(types=(), outcomes=(), where=())
    pages = max(1, ex.total // explore.PAGE_SIZE)
    rng = random.Random(0)
    picks = [rng.randrange(pages) for _ in range(runs)]
    widget = median_ms(lambda i: ex.page(picks[i]), runs)
    peer = median_ms(lambda i: explore.page(session, ex.filters, picks[i]), runs)
    row("explorer: page flip (random page)", widget, peer)
    widget = median_ms(lambda i: ex.page(i % 5), runs)
    peer = median_ms(lambda i: explore.page(session, ex.filters, i % 5), runs)
    row("explorer: page flip (first pages)", widget, peer)

    cycle = itertools.cycle(FILTERS)

    def facet_refresh(i):
        ex._filters = explore.filters(**next(cycle))
        ex._facets = explore.facets(session, ex._filters)
        ex._show_facets()

    widget = median_ms(facet_refresh, runs)
    cycle = itertools.cycle(FILTERS)
    peer = median_ms(lambda i: explore.facets(session, explore.filters(**next(cycle))), runs)
    row("explorer: facet refresh", widget, peer)

    leads = store.sql("SELECT lead_id FROM lead_summary_parts USING SAMPLE 500 ROWS").lead_id
    leads = leads.tolist()[:runs]
    widget = median_ms(lambda i: ex.open_lead(leads[i]), runs)
    peer = median_ms(
        lambda i: (session.timeline(leads[i]), investigate.explain(session, leads[i])), runs
    )
    row("explorer: open a lead", widget, peer)
    view = LeadTimeline(session, leads[0])
    seqs = view.timeline.seq.tolist()
    widget = median_ms(lambda i: view.select(int(seqs[i % len(seqs)])), runs)
    row("timeline: select an event", widget, 0.0)

    last = store.sql("SELECT max(submitted_at) AS t FROM lead_summary").t[0].to_pydatetime()
    periods = [(last - dt.timedelta(days=d + 1), last - dt.timedelta(days=d)) for d in range(runs)]
    widget = median_ms(lambda i: board.set_period(*periods[i]), runs)
    peer = median_ms(lambda i: _dashboard_reads(session, *periods[i]), runs)
    row("dashboard: period change (a day)", widget, peer)

    widget = median_ms(lambda i: monitor.refresh(), runs)
    peer = median_ms(lambda i: alerts.alerts(session, evidence=False), runs)
    row("alert monitor: refresh (whole store)", widget, peer)

    widget = median_ms(lambda i: feed.refresh(), runs)
    peer = median_ms(
        lambda i: (
            session.sql("SELECT count(*) AS n FROM events"),
            live.newest(session, 20),
            live.rates(session, 5),
        ),
        runs,
    )
    row("live feed: refresh", widget, peer)

    worst = max(w for _, w, _ in rows)
    print(f"\nslowest interaction: {worst:,.0f} ms (target {target} ms)")
    session.close()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
