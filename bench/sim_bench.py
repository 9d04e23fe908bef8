"""Simulator speed and memory: vectorised runner vs a naive per-event Python generator.

For each scale (leads over a week of the sample flow, with three incidents) it measures,
each phase in its own process so peak memory (RSS) is the phase's own:

* ``generate``  the runner alone (Arrow tables produced and dropped): events/s, peak RSS
* ``store``     ``simulate()`` into a fresh store file: end-to-end events/s, peak RSS
* ``raw``       the same events (written to Parquet first, untimed) inserted into a
                plain DuckDB table of the record: events/s, peak RSS
* ``naive``     a per-event pure-Python generator (dicts + json.dumps, ``random``), on
                at most ``--naive-leads`` leads: events/s, then the ratios

    .venv/bin/python bench/sim_bench.py                       # 100 k and 1 M leads
    .venv/bin/python bench/sim_bench.py --leads 100000        # one smaller scale

The issue's targets: >= 400 k events/s end to end, memory flat (<= 1 GB) whatever N.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

END = "2026-11-27T12:00:00Z"
INCIDENTS = ["nine_digit_phones", "enhancement_timeouts", "buyer_segment_rejection"]


def _peak_mb() -> float:
    # ru_maxrss is in kilobytes on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_generate(leads: int) -> dict:
    from workbench.sim import FlowRunner

    runner = FlowRunner(leads=leads, end=END, seed=1, incidents=INCIDENTS)
    t0, c0 = time.perf_counter(), time.process_time()
    events = sum(t.num_rows for t in runner.tables())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"events": events, "seconds": wall, "cpu_seconds": cpu, "peak_mb": _peak_mb()}


def phase_store(leads: int) -> dict:
    import workbench
    from workbench.sim import simulate

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.duckdb"
        t0, c0 = time.perf_counter(), time.process_time()
        with workbench.open_store(path) as store:
            report = simulate(leads=leads, end=END, seed=1, incidents=INCIDENTS, store=store)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        size = path.stat().st_size
    assert report.quarantined == 0
    return {
        "events": report.stored,
        "seconds": wall,
        "cpu_seconds": cpu,
        "generator_seconds": report.seconds,
        "peak_mb": _peak_mb(),
        "file_mb": size / 1e6,
    }


# --------------------------------------------------------------------------- naive


_FIRST = ["James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Maria", "Wei"]
_LAST = ["Smith", "Johnson", "Garcia", "Nguyen", "Patel", "Brown", "Lee", "Kim"]
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _id(rng: random.Random, prefix: str, n: int) -> str:
    return prefix + "".join(rng.choice(_B62) for _ in range(n))


def naive_events(leads: int, seed: int = 1):
    """The obvious generator: one lead at a time, one event at a time, one dict each."""
    rng = random.Random(seed)
    t = 1_764_000_000_000
    for _ in range(leads):
        t += rng.randint(1, 60_000)
        lead_id = _id(rng, "lead_", 16)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        lead = {
            "first_name": first,
            "last_name": last,
            "email": f"{first.lower()}.{last.lower()}{rng.randint(1, 99)}@example.com",
            "phone": f"512555{rng.randint(100, 9999):04d}",
            "address": f"{rng.randint(100, 9999)} Oak St",
            "city": "Austin",
            "state": "TX",
            "zip": f"787{rng.randint(0, 99):02d}",
            "ip_address": f"203.0.113.{rng.randint(1, 254)}",
            "dob": f"{rng.randint(1950, 2005)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
            "trustedform_cert_url": "https://cert.trustedform.com/" + _id(rng, "", 40),
        }
        cur = t
        steps = [
            (
                "source.submitted",
                {
                    "source": "Acme",
                    "raw_data": dict(lead),
                    "headers": {},
                    "ip_address": "198.51.100.10",
                    "source_config": {},
                },
            ),
            (
                "source.accepted",
                {
                    "source": "Acme",
                    "parsed_fields": {"phone": lead["phone"]},
                    "acceptance_criteria": {},
                    "cost": 1.25,
                    "field_mapping": {},
                },
            ),
            (
                "enhancement.success",
                {
                    "service": "Phone Validation",
                    "request": {},
                    "response": {},
                    "appended_fields": {"phone.valid": True},
                    "cost": 0.01,
                },
            ),
        ]
        lead["phone.valid"] = True
        lead["appended.phone_score"] = rng.randint(30, 99)
        for f in ("Phone Quality", "Service Area", "Duplicate Check", "Lead Quality"):
            steps.append(
                (
                    "filter.passed",
                    {"filter": f, "filter_id": "flt", "rules_evaluated": [], "results": {}},
                )
            )
        for svc, field in (("TrustedForm", "trustedform.age_seconds"), ("Email", "email.valid")):
            lead[field] = rng.randint(1, 900)
            steps.append(
                (
                    "enhancement.success",
                    {
                        "service": svc,
                        "request": {},
                        "response": {},
                        "appended_fields": {field: lead[field]},
                        "cost": 0.05,
                    },
                )
            )
        steps.append(
            (
                "recipient.delivered",
                {
                    "recipient": "Apex",
                    "payload": dict(lead),
                    "request": {},
                    "response": {},
                    "buyer_lead_id": "APX-1",
                    "revenue": 42.0,
                },
            )
        )
        steps.append(
            (
                "flow.completed",
                {
                    "total_duration_ms": 900,
                    "steps_executed": 9,
                    "final_outcome": "delivered",
                    "total_cost": 1.315,
                    "total_revenue": 42.0,
                },
            )
        )
        for type_, meta in steps:
            dur = int(rng.lognormvariate(4, 1))
            yield {
                "event_id": _id(rng, "evt_", 20),
                "type": type_,
                "timestamp": cur,
                "lead_id": lead_id,
                "flow_id": "flow_x",
                "entity_id": "ent_x",
                "step_id": "step_x",
                "outcome": "success",
                "duration_ms": dur,
                "metadata": json.dumps(meta),
                "lead_snapshot": json.dumps(lead),
            }
            cur += dur + 1


def phase_naive(leads: int) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    events = sum(1 for _ in naive_events(leads))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"events": events, "seconds": wall, "cpu_seconds": cpu, "peak_mb": _peak_mb()}


RAW_DDL = """
CREATE TABLE events (
    seq BIGINT, event_id VARCHAR, type VARCHAR, timestamp TIMESTAMPTZ, lead_id VARCHAR,
    flow_id VARCHAR, entity_id VARCHAR, step_id VARCHAR, outcome VARCHAR,
    duration_ms INTEGER, metadata JSON, lead_snapshot JSON
)
"""


def phase_raw(leads: int) -> dict:
    """The same run's events written to Parquet first (not timed), then inserted as they
    are into a plain DuckDB table of the record: what the store's ingest is measured
    against (no validation, no snapshots, no seals, no summary)."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from workbench.sim import FlowRunner
    from workbench.sim.runner import SCHEMA

    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "run.parquet"
        writer = pq.ParquetWriter(data, SCHEMA, compression="zstd")
        runner = FlowRunner(leads=leads, end=END, seed=1, incidents=INCIDENTS)
        for table in runner.tables():
            writer.write_table(table)
        writer.close()
        del runner
        pa.default_memory_pool().release_unused()
        pf = pq.ParquetFile(data)
        events = pf.metadata.num_rows
        t0, c0 = time.perf_counter(), time.process_time()
        con = duckdb.connect(str(Path(d) / "raw.duckdb"))
        con.execute(RAW_DDL)
        src = pa.RecordBatchReader.from_batches(pf.schema_arrow, pf.iter_batches(250_000))
        con.register("src", src)
        con.execute(f"INSERT INTO events SELECT 0, {', '.join(SCHEMA.names)} FROM src")
        con.close()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"events": events, "seconds": wall, "cpu_seconds": cpu, "peak_mb": _peak_mb()}


PHASES = {
    "generate": phase_generate,
    "store": phase_store,
    "raw": phase_raw,
    "naive": phase_naive,
}


def run_phase(name: str, leads: int) -> dict:
    """Run one phase in a fresh interpreter (its own peak RSS), return its figures."""
    out = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--leads", str(leads)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--leads",
        default="100000,1000000",
        help="comma-separated scales in leads (default 100000,1000000)",
    )
    ap.add_argument("--naive-leads", type=int, default=20_000, help="leads for the naive generator")
    ap.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.phase:
        print(json.dumps(PHASES[args.phase](int(args.leads))))
        return 0
    scales = [int(x) for x in args.leads.split(",")]
    print(f"simulator benchmark  ({os.cpu_count()} cores; load {os.getloadavg()[0]:.1f})")
    naive = run_phase("naive", min(args.naive_leads, max(scales)))
    naive_rate = naive["events"] / naive["seconds"]
    print(
        f"naive per-event Python: {naive['events']:,} events in {naive['seconds']:.2f} s = "
        f"{naive_rate:,.0f} events/s (cpu {naive['cpu_seconds']:.2f} s), "
        f"peak {naive['peak_mb']:.0f} MB"
    )
    print(
        f"{'leads':>10} {'phase':>9} {'events':>11} {'wall s':>7} {'cpu s':>7} "
        f"{'events/s':>11} {'x naive':>8} {'peak MB':>8}"
    )
    for n in scales:
        rates = {}
        for phase in ("generate", "store", "raw"):
            r = run_phase(phase, n)
            rates[phase] = r["events"] / r["seconds"]
            rate = r["events"] / r["seconds"]
            print(
                f"{n:>10,} {phase:>9} {r['events']:>11,} {r['seconds']:>7.2f} "
                f"{r['cpu_seconds']:>7.2f} {rate:>11,.0f} {rate / naive_rate:>8.1f} "
                f"{r['peak_mb']:>8.0f}"
                + (
                    f"   (store file {r['file_mb']:.0f} MB, "
                    f"{r['file_mb'] / (r['events'] / 1e6):.0f} MB per M events)"
                    if "file_mb" in r
                    else ""
                )
            )
        print(
            f"{'':>10} simulate() into a store: {rates['store'] / rates['raw']:.2f}x the raw "
            f"insert of the same events ({rates['raw']:,.0f} events/s), "
            f"{rates['store'] / rates['generate']:.2f}x the generator alone"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
