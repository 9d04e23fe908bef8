"""Each analysis on three engines in one run: DuckDB over the store (a masked Session),
DuckDB over the lake (the Parquet files read in place, no masking: the floor), and Spark
local[2] over the lake (a masked LakeSession). Spark's start-up (the JVM, the session,
reading the lake's schema and keys) is reported apart.

    python bench/lake_bench.py --store /tmp/big.duckdb --lake /tmp/big-lake

The store is exported to the lake first unless the lake is already its export. Prints
seconds per analysis and the ratios to DuckDB over the store. Needs the ``spark`` extra
and Java 17.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import statistics
import time
from pathlib import Path

import duckdb

import workbench
from workbench.analysis import alerts, analytics
from workbench.store.schema import PUBLIC_COLUMNS

ANALYSES = [n for n in analytics.__all__ if callable(getattr(analytics, n))]


class LakeOnDuckDB:
    """The lake's Parquet files as DuckDB views: anything with .sql() runs an analysis."""

    def __init__(self, lake: Path):
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")  # as a store's connections
        cols = ", ".join(PUBLIC_COLUMNS)
        self.con.execute(
            f"CREATE VIEW events AS SELECT {cols} FROM read_parquet("
            f"'{lake}/events/**/*.parquet', hive_partitioning = true)"
        )
        for name in ("lead_summary", "flows", "entities", "steps"):
            self.con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{lake}/{name}/{name}.parquet')"
            )

    def sql(self, query, params=None):
        return self.con.execute(query, params).df()


def timed(fn, runs: int) -> float:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="a store file (10 M events for the figures)")
    ap.add_argument("--lake", required=True, help="its lake folder (exported if missing)")
    ap.add_argument("--runs", type=int, default=1, help="runs per analysis (median)")
    args = ap.parse_args()
    store, lake = Path(args.store), Path(args.lake)
    with workbench.open_store(store, read_only=True) as s:
        n = s.count()
        if not (lake / "_workbench_lake.json").exists():
            t = time.perf_counter()
            s.export_lake(lake, progress=False)
            print(f"export to the lake: {time.perf_counter() - t:.1f} s")
    size = sum(f.stat().st_size for f in lake.rglob("*.parquet"))
    print(f"{n:,} events; lake {size / 1e6:,.0f} MB")

    from workbench import lake as wlake

    t = time.perf_counter()
    spark = wlake.local_spark()
    started = time.perf_counter() - t
    t = time.perf_counter()
    on_spark = wlake.connect(lake, user="ana", role="analyst", spark=spark)
    connected = time.perf_counter() - t
    print(
        f"Spark start-up: local[2] {started:.1f} s, connect (schema, keys, views) {connected:.1f} s"
    )

    on_store = workbench.connect(store, user="ana", role="analyst")
    on_lake = LakeOnDuckDB(lake)
    first = []
    for reader in (on_store, on_lake, on_spark):  # the first read's set-up, apart
        t = time.perf_counter()
        reader.sql("SELECT count(*) AS n FROM events")
        first.append(time.perf_counter() - t)
    print("first read (count): store {:.1f} s, lake/duck {:.1f} s, spark {:.1f} s".format(*first))
    last = on_lake.sql("SELECT max(timestamp) AS t FROM events").t[0]
    day = dict(since=(last - dt.timedelta(days=1)).floor("D"), until=last.floor("D"))
    runs = [(name, getattr(analytics, name)) for name in ANALYSES]
    runs.append(
        (
            "source_performance by event",
            functools.partial(analytics.source_performance, basis="event"),
        )
    )
    runs.append(("alerts.evaluate", alerts.evaluate))
    # one day of the week: Spark reads that day's partition only
    for name in ("success_rates", "rejection_analysis", "step_durations"):
        runs.append((f"{name} (one day)", functools.partial(getattr(analytics, name), **day)))
    runs.append(("alerts.evaluate (one day)", functools.partial(alerts.evaluate, **day)))
    print(f"{'analysis':28s} {'store':>9s} {'lake/duck':>10s} {'spark':>9s} {'spark/store':>11s}")
    for name, fn in runs:
        row = []
        for reader in (on_store, on_lake, on_spark):
            try:
                row.append(timed(lambda r=reader, f=fn: f(r), args.runs))
            except Exception as e:  # an engine that cannot: say so, go on
                print(f"  {name} failed on {type(reader).__name__}: {str(e)[:120]}")
                row.append(float("nan"))
        a, b, c = row
        print(f"{name:28s} {a:8.2f}s {b:9.2f}s {c:8.2f}s {c / a:10.1f}x", flush=True)


if __name__ == "__main__":
    main()
