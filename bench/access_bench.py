"""Masked reads against raw reads: what the access layer costs (target: at most 1.5x).

Builds a store of synthetic events of the guide's shape (bench/synthetic.py), then times
the same reads on the raw store and through a masked analyst Session (audit trail
included): the timeline of one lead (median over many leads) and the guide's queries
(Step Duration over the last 24 hours, Success Rates), which touch no PII column. Also
prints, for information, a read that does touch every snapshot (masking cost per row).

    .venv/bin/python bench/access_bench.py                 # 1 M events (the target)
    .venv/bin/python bench/access_bench.py --events 200000 # a quick run
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb  # noqa: E402
import synthetic  # noqa: E402
from store_bench import STEP_DURATION, SUCCESS_RATES  # noqa: E402  the guide's queries

import workbench  # noqa: E402
from workbench.access import connect  # noqa: E402

REJECTIONS = """
SELECT rejection_reason, count(*) AS n FROM events
WHERE type = 'recipient.failed' GROUP BY rejection_reason
"""

SNAPSHOT_SCAN = """
SELECT lead_snapshot->>'state' AS state, count(*) AS n FROM events
WHERE timestamp > NOW() - INTERVAL '24 hours' GROUP BY 1
"""


def _median_ms(fn, runs: int) -> float:
    fn()  # warm up: views, caches, file pages
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def build(path: Path, n_events: int) -> None:
    t0 = time.perf_counter()
    with workbench.open_store(path) as store:
        for batch in synthetic.batches(n_events):
            store.append(batch, progress=False)
        n = store.count()
    print(f"built {n:,} events in {time.perf_counter() - t0:.1f} s at {path}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="events in the store")
    ap.add_argument("--leads", type=int, default=200, help="timelines to time")
    ap.add_argument("--runs", type=int, default=7, help="runs of each query")
    ap.add_argument("--store", help="reuse (or build) this store file instead of a temp one")
    ap.add_argument("--scan", action="store_true", help="also time a full snapshot scan")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.store) if args.store else Path(tmp) / "bench.duckdb"
        if not path.exists():
            build(path, args.events)
        store = workbench.open_store(path, read_only=True)
        session = connect(store, user="ana", role="analyst", audit=Path(tmp) / "audit.sqlite")
        leads = [
            r[0]
            for r in store.sql(
                "SELECT lead_id FROM lead_summary USING SAMPLE 2000 ROWS"
            ).itertuples(index=False)
        ]
        random.Random(0).shuffle(leads)
        leads = leads[: args.leads]

        rows = []

        def timelines(read):
            it = iter(leads * 2)
            return lambda: read(next(it))

        raw_tl = _median_ms(timelines(store.timeline), len(leads) - 1)
        masked_tl = _median_ms(timelines(session.timeline), len(leads) - 1)
        rows.append(("timeline (median of leads)", raw_tl, masked_tl))
        queries = [("Step Duration, 24 h", STEP_DURATION), ("Success Rates", SUCCESS_RATES)]
        queries.append(("rejection reasons (masked text)", REJECTIONS))
        if args.scan:
            queries.append(("snapshot scan (masks every row)", SNAPSHOT_SCAN))
        for label, q in queries:
            raw = _median_ms(lambda q=q: store.sql(q), args.runs)
            masked = _median_ms(lambda q=q: session.sql(q), args.runs)
            rows.append((label, raw, masked))
        same = store.sql(STEP_DURATION).equals(session.sql(STEP_DURATION))

        n = store.count()
        print(f"\n{n:,} events; access bench on DuckDB {duckdb.__version__}")
        print(f"{'read':<34}{'raw ms':>10}{'masked ms':>12}{'ratio':>8}")
        for label, raw, masked in rows:
            print(f"{label:<34}{raw:>10.2f}{masked:>12.2f}{masked / raw:>7.2f}x")
        print(f"masked Step Duration equals raw: {same}")
        session.close()
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
