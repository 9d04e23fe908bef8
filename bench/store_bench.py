"""Benchmark the event store against its peers, on the same synthetic events.

For each size (default 1 M and 10 M events of the guide's shape, ~150 B metadata and
~375 B snapshot, spread over a week) it prints:

- append() events/s and peak memory, streaming from a Parquet file, beside a raw DuckDB
  ``INSERT ... SELECT`` from the same Arrow stream into a table of the event record,
  and SQLite (stdlib, lead_id indexed) ingesting the same rows;
- timeline() median and p99 over 1,000 random leads, cold (a fresh process, each lead
  read once) and warm (the same leads again), beside SQLite with an index on lead_id and
  raw DuckDB (the same rows in one plain table), each in its own process;
- the guide's two queries (Step Duration, Success Rates) and a rejection-reason
  breakdown through ``store.sql``, beside pandas and polars on the same columns
  (their load time excluded);
- store size per million events, in DuckDB and as the zstd Parquet export.

Targets on a 2-core machine: append >= 0.8x raw insert; timeline <= 3 ms median and
<= 10 ms p99 at 10 M; each query <= 100 ms at 10 M and faster than pandas and polars;
peak memory while appending 10 M from a stream <= 2 GB; <= 80 MB per million events in
DuckDB, <= 40 MB as Parquet.

    python bench/store_bench.py                     # 1 M and 10 M (several minutes)
    python bench/store_bench.py --events 200000     # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

RECORD_DDL = """
CREATE TABLE events (
    seq BIGINT, event_id VARCHAR, type VARCHAR, timestamp TIMESTAMPTZ, lead_id VARCHAR,
    flow_id VARCHAR, entity_id VARCHAR, step_id VARCHAR, outcome VARCHAR,
    duration_ms INTEGER, metadata JSON, lead_snapshot JSON
)
"""

STEP_DURATION = """
SELECT
step_name,
AVG(duration_ms) as avg_duration,
MAX(duration_ms) as max_duration,
COUNT(*) as executions
FROM events
WHERE timestamp > NOW() - INTERVAL '24 hours'
GROUP BY step_name
ORDER BY avg_duration DESC
"""

SUCCESS_RATES = """
SELECT
type,
outcome,
COUNT(*) as count,
COUNT(*) * 100.0 / SUM(COUNT(*)) OVER (PARTITION BY type) as percentage
FROM events
WHERE type LIKE 'recipient.%'
GROUP BY type, outcome
"""

REJECTIONS = """
SELECT rejection_reason, COUNT(*) AS rejections,
       CAST(COUNT(*) AS DOUBLE) / SUM(COUNT(*)) OVER () AS share
FROM events
WHERE type = 'filter.failed'
GROUP BY rejection_reason
ORDER BY rejections DESC
"""


# --------------------------------------------------------------------- data


def make_data(path: Path, n: int) -> None:
    import pyarrow.parquet as pq
    import synthetic

    writer = None
    for rb in synthetic.batches(n, span_days=7):
        if writer is None:
            writer = pq.ParquetWriter(path, rb.schema, compression="zstd")
        writer.write_batch(rb)
    writer.close()


def reader(path: Path, batch_rows: int = 250_000):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    return pa.RecordBatchReader.from_batches(
        pf.schema_arrow, pf.iter_batches(batch_size=batch_rows)
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------- children
# Ingest runs in a child process each, so peak memory is its own.


def child_append(data: Path, out: Path) -> dict:
    import workbench

    t0 = time.perf_counter()
    with workbench.open_store(out) as store:
        report = store.append(data, progress=False)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "events": report.stored, "rss_mb": peak_rss_mb()}


def child_raw(data: Path, out: Path) -> dict:
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect(str(out))
    con.execute(RECORD_DDL)
    src = reader(data)
    con.register("src", src)
    con.execute("INSERT INTO events SELECT 0, * FROM src").fetchall()
    con.close()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rss_mb": peak_rss_mb()}


def child_sqlite(data: Path, out: Path) -> dict:
    import sqlite3

    t0 = time.perf_counter()
    con = sqlite3.connect(out)
    con.execute(
        "CREATE TABLE events (seq INTEGER, event_id TEXT, type TEXT, timestamp TEXT, lead_id TEXT, "
        "flow_id TEXT, entity_id TEXT, step_id TEXT, outcome TEXT, duration_ms INTEGER, "
        "metadata TEXT, lead_snapshot TEXT)"
    )
    con.execute("CREATE INDEX events_lead ON events (lead_id)")
    seq = 0
    for rb in reader(data, 100_000):
        cols = rb.to_pydict()
        n = rb.num_rows
        ts = [t.isoformat() for t in cols["timestamp"]]
        rows = zip(
            range(seq, seq + n),
            cols["event_id"],
            cols["type"],
            ts,
            cols["lead_id"],
            cols["flow_id"],
            cols["entity_id"],
            cols["step_id"],
            cols["outcome"],
            cols["duration_ms"],
            cols["metadata"],
            cols["lead_snapshot"],
            strict=True,
        )
        with con:
            con.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        seq += n
    con.close()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rss_mb": peak_rss_mb()}


def _lead_sample(store_path: Path, n: int = 1000) -> list[str]:
    import duckdb

    con = duckdb.connect(str(store_path), read_only=True)
    leads = [
        r[0]
        for r in con.execute(
            f"SELECT lead_id FROM lead_summary_parts USING SAMPLE {n} ROWS (reservoir, 7)"
        ).fetchall()
    ]
    con.close()
    return leads


def _passes(read, leads) -> dict:
    """Each lead read once in a fresh process (cold), then all again (warm)."""
    out = {}
    for name in ("cold", "warm"):
        times = []
        for lead in leads:
            t0 = time.perf_counter()
            read(lead)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        out[name] = {
            "median_ms": statistics.median(times),
            "p99_ms": times[max(0, int(len(times) * 0.99) - 1)],
        }
    return out


def child_timeline(data: Path, out: Path) -> dict:
    """timeline() of the store at ``data`` (``out`` names the lead sample file)."""
    import workbench

    leads = json.loads(out.read_text())
    with workbench.open_store(data, read_only=True) as store:
        r = _passes(store.timeline, leads)
        r["events"] = sum(len(store.timeline(lead)) for lead in leads[:100])
    return r


def child_timeline_raw(data: Path, out: Path) -> dict:
    """The same lookup on a plain DuckDB table of the record (no index, no ranges)."""
    import duckdb

    leads = json.loads(out.read_text())
    con = duckdb.connect(str(data), read_only=True)

    def read(lead):
        return con.execute(
            "SELECT * FROM events WHERE lead_id = ? ORDER BY timestamp, seq", [lead]
        ).df()

    return _passes(read, leads)


def child_timeline_sqlite(data: Path, out: Path) -> dict:
    """SQLite with an index on lead_id, JSON decoded as the store's timeline does."""
    import sqlite3

    import pandas as pd

    leads = json.loads(out.read_text())
    con = sqlite3.connect(data)

    def read(lead):
        rows = con.execute(
            "SELECT * FROM events WHERE lead_id = ? ORDER BY timestamp, seq", [lead]
        ).fetchall()
        df = pd.DataFrame(rows)
        if len(df):
            df[10] = [json.loads(v) for v in df[10]]
            df[11] = [json.loads(v) for v in df[11]]
        return df

    return _passes(read, leads)


CHILDREN = {
    "append": child_append,
    "raw": child_raw,
    "sqlite": child_sqlite,
    "timeline": child_timeline,
    "timeline_raw": child_timeline_raw,
    "timeline_sqlite": child_timeline_sqlite,
}


def run_child(kind: str, data: Path, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(data), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------- reads


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_reads(store_path: Path, sqlite_path: Path | None) -> dict:
    import numpy as np
    import pandas as pd
    import polars as pl

    import workbench

    out: dict = {}
    with workbench.open_store(store_path, read_only=True) as store:
        for name, q in (
            ("step_duration", STEP_DURATION),
            ("success_rates", SUCCESS_RATES),
            ("rejections", REJECTIONS),
        ):
            store.sql(q)
            out[f"{name}_ms"] = median_ms(lambda q=q: store.sql(q), 5)
        cols = store.sql(
            "SELECT type, outcome, timestamp, duration_ms, step_name, rejection_reason FROM events"
        )
        arrow = store._con.raw.sql(
            "SELECT type, outcome, timestamp, duration_ms, step_name, rejection_reason FROM events"
        ).to_arrow_table()
    pdf = cols
    pldf = pl.from_arrow(arrow)
    now = pd.Timestamp.now(tz="UTC")

    def pd_step():
        d = pdf[pdf.timestamp > now - pd.Timedelta(hours=24)]
        g = d.groupby("step_name").duration_ms.agg(["mean", "max", "count"])
        return g.sort_values("mean", ascending=False)

    def pd_success():
        d = pdf[pdf.type.str.startswith("recipient.")]
        g = d.groupby(["type", "outcome"]).size().rename("count").reset_index()
        g["percentage"] = g["count"] * 100.0 / g.groupby("type")["count"].transform("sum")
        return g

    def pd_reject():
        d = pdf[pdf.type == "filter.failed"]
        g = d.groupby("rejection_reason").size().sort_values(ascending=False)
        return g / g.sum()

    import datetime as dt

    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(hours=24)

    def pl_step():
        return (
            pldf.filter(pl.col("timestamp") > cutoff)
            .group_by("step_name")
            .agg(pl.col("duration_ms").mean().alias("avg"), pl.col("duration_ms").max(), pl.len())
            .sort("avg", descending=True)
        )

    def pl_success():
        return (
            pldf.filter(pl.col("type").str.starts_with("recipient."))
            .group_by(["type", "outcome"])
            .agg(pl.len().alias("count"))
            .with_columns(
                (pl.col("count") * 100.0 / pl.col("count").sum().over("type")).alias("pct")
            )
        )

    def pl_reject():
        return (
            pldf.filter(pl.col("type") == "filter.failed")
            .group_by("rejection_reason")
            .agg(pl.len().alias("n"))
            .with_columns((pl.col("n") / pl.col("n").sum()).alias("share"))
            .sort("n", descending=True)
        )

    for name, fp, fl in (
        ("step_duration", pd_step, pl_step),
        ("success_rates", pd_success, pl_success),
        ("rejections", pd_reject, pl_reject),
    ):
        out[f"{name}_pandas_ms"] = median_ms(fp, 3)
        out[f"{name}_polars_ms"] = median_ms(fl, 3)

    del np, sqlite_path
    return out


# --------------------------------------------------------------------- main


def dir_size(path: Path) -> int:
    total = path.stat().st_size if path.exists() else 0
    tiers = path.with_name(path.name + ".tiers")
    if tiers.exists():
        total += sum(p.stat().st_size for p in tiers.rglob("*") if p.is_file())
    return total


def bench_size(n: int, work: Path, with_sqlite: bool) -> dict:
    data = work / f"events_{n}.parquet"
    if not data.exists():
        print(f"  generating {n:,} synthetic events ...", flush=True)
        make_data(data, n)
    store_path, raw_path, sqlite_path = (
        work / "store.duckdb",
        work / "raw.duckdb",
        work / "peer.sqlite",
    )
    for p in (store_path, raw_path, sqlite_path):
        for q in (p, p.with_name(p.name + ".wal")):
            q.unlink(missing_ok=True)
        shutil.rmtree(p.with_name(p.name + ".tiers"), ignore_errors=True)
    r: dict = {"n": n}
    print("  raw DuckDB insert ...", flush=True)
    r["raw"] = run_child("raw", data, raw_path)
    print("  store.append() ...", flush=True)
    r["append"] = run_child("append", data, store_path)
    if with_sqlite:
        print("  SQLite ingest ...", flush=True)
        r["sqlite"] = run_child("sqlite", data, sqlite_path)
    print("  timelines (1,000 leads, cold then warm) ...", flush=True)
    sample = work / "leads.json"
    sample.write_text(json.dumps(_lead_sample(store_path)))
    r["timeline"] = run_child("timeline", store_path, sample)
    r["timeline_raw"] = run_child("timeline_raw", raw_path, sample)
    if with_sqlite:
        r["timeline_sqlite"] = run_child("timeline_sqlite", sqlite_path, sample)
    print("  reads ...", flush=True)
    r["reads"] = bench_reads(store_path, sqlite_path if with_sqlite else None)
    r["store_bytes"] = dir_size(store_path)
    export = work / "export.parquet"
    import workbench

    with workbench.open_store(store_path, read_only=True) as store:
        store.export(export)
    r["parquet_bytes"] = export.stat().st_size
    export.unlink()
    r["raw_bytes"] = dir_size(raw_path)
    r["events"] = r["append"]["events"]
    return r


def report(r: dict) -> None:
    n = r["events"]
    a, raw, reads = r["append"], r["raw"], r["reads"]
    eps = n / a["seconds"]
    raw_eps = n / raw["seconds"]
    print(f"\n== {n:,} events ==")
    print(f"append()            {eps:>12,.0f} events/s   peak RSS {a['rss_mb']:>7,.0f} MB")
    print(f"raw DuckDB insert   {raw_eps:>12,.0f} events/s   peak RSS {raw['rss_mb']:>7,.0f} MB")
    print(f"  ratio append / raw insert: {eps / raw_eps:.2f}x   (target >= 0.8x)")
    if "sqlite" in r:
        s_eps = n / r["sqlite"]["seconds"]
        print(
            f"SQLite ingest       {s_eps:>12,.0f} events/s   (append is {eps / s_eps:.1f}x SQLite)"
        )
    print("timeline, 1,000 random leads       cold median / p99      warm median / p99")
    for label, key in (
        ("  store.timeline()", "timeline"),
        ("  raw DuckDB table", "timeline_raw"),
        ("  SQLite, indexed", "timeline_sqlite"),
    ):
        if key in r:
            c, w = r[key]["cold"], r[key]["warm"]
            print(
                f"{label:<34}{c['median_ms']:>8.2f} / {c['p99_ms']:>6.2f} ms"
                f"{w['median_ms']:>11.2f} / {w['p99_ms']:>6.2f} ms"
            )
    print("  (target at 10 M: median <= 3 ms, p99 <= 10 ms)")
    for name in ("step_duration", "success_rates", "rejections"):
        ours, p, pl = (reads[f"{name}_ms"], reads[f"{name}_pandas_ms"], reads[f"{name}_polars_ms"])
        print(
            f"{name:<18}  {ours:>8.1f} ms   pandas {p:>8.1f} ms ({p / ours:.1f}x)   "
            f"polars {pl:>8.1f} ms ({pl / ours:.1f}x)"
        )
    per_m = r["store_bytes"] / (n / 1e6) / 1e6
    print(
        f"store size          {per_m:>10.1f} MB per million events "
        f"(raw DuckDB table {r['raw_bytes'] / (n / 1e6) / 1e6:.1f} MB; target <= 80)"
    )
    print(
        f"Parquet export      {r['parquet_bytes'] / (n / 1e6) / 1e6:>10.1f} MB per million events"
        " (zstd; target <= 40)"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--workdir", type=Path, help="where data and stores go (default: a temp dir)")
    ap.add_argument("--no-sqlite", action="store_true", help="skip the SQLite peer")
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, data, out = args.child
        print(json.dumps(CHILDREN[kind](Path(data), Path(out))))
        return 0
    work = args.workdir or Path(tempfile.mkdtemp(prefix="store_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"store benchmark in {work} ({os.cpu_count()} cores)")
    results = []
    for n in args.events:
        print(f"\n{n:,} events:")
        r = bench_size(n, work, not args.no_sqlite)
        report(r)
        results.append(r)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
