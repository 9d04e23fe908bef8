"""Does every incident the simulator can plant get caught, how fast, and is it explained?

For each incident kind, over several seeds, strengths and windows, simulates the sample
flow's week (``--leads`` leads) with that one incident planted, and asks:

* **recall**: does an alert fire for the right subject (the source, service or buyer
  the incident hit; the flow as a whole for a filter's incident) while it lasts?
* **delay**: how long after the onset (the first lead the incident changed) the first
  such alert could be raised (the end of its first firing window, as ``check_latest``
  every 15 minutes would see it);
* **false alarms**: how many alerts fire on the same week with nothing planted;
* **explain**: of the leads the incident hit, the share whose ``explain()`` names the
  planted cause (recall), and of the leads it names that cause for, the share that
  were hit (precision; estimated from a sample of the other leads of the window).

Goal: every kind detected, median delay <= one evaluation window (the firing rule's
window), no false alarm on clean weeks, explain >= 95% on affected leads.

    python bench/detection_bench.py                 # 3 seeds, about 10 minutes
    python bench/detection_bench.py --seeds 1 --kinds enhancement_outage nine_digit_phones
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

import pandas as pd
import pyarrow as pa

import workbench
from workbench.analysis import alerts, investigate
from workbench.sim import FlowRunner
from workbench.sim.incidents import INCIDENT_TYPES, incident
from workbench.sim.runner import SCHEMA
from workbench.sim.sample_run import sample_run

# kind -> the parameter that sets its strength, and its weak value, where a person would
# still care: just past the guide's own lines (a source's rejections over 50%, a buyer's
# acceptance under 70%), or about half the default share
WEAK = {
    "nine_digit_phones": ("rate", 0.6),
    "source_rejection_spike": ("rate", 0.6),
    "duplicate_flood": ("rate", 0.35),
    "enhancement_outage": ("rate", 0.5),
    "enhancement_timeouts": ("rate", 0.35),
    "business_hours_wrong_timezone": ("timezone", "America/Los_Angeles"),
    "field_mapping_corruption": ("reject_rate", 0.3),
    "buyer_segment_rejection": ("values", "CA|TX"),
    "buyer_endpoint_errors": ("rate", 0.3),
    "buyer_acceptance_drop": ("acceptance", 0.6),
}
# kinds whose effect is a filter's rejections: the flow-wide quality rule is a right answer
FLOW_WIDE = {"duplicate_flood", "business_hours_wrong_timezone"}
# kind -> (cause tag explain must give, or None: any; words its verdict or its "also"
# must hold). A lead a buyer refused and another bought went fine: its verdict says
# what happened on the way.
PLANTED = {
    "nine_digit_phones": ("source.rejected:phone_format", "expected 10 digits, got 9"),
    "source_rejection_spike": ("source.rejected:missing_field", "Missing required field"),
    "duplicate_flood": ("filter.failed:duplicate", "Duplicate"),
    "enhancement_outage": ("enhancement:Phone Validation", "Phone Validation"),
    "enhancement_timeouts": (None, "Email Verification"),
    "business_hours_wrong_timezone": ("filter.failed:business_hours_timezone", "checked the time"),
    "field_mapping_corruption": ("mapping:zip", "zip"),
    "buyer_segment_rejection": (None, "Not buying leads with"),
    "buyer_endpoint_errors": (None, "errored"),
    "buyer_acceptance_drop": (None, "Lead quality below threshold"),
}
STARTS = ("20%", "60%")


def simulate(run, seed: int, leads: int, specs):
    runner = FlowRunner(run.flow, leads=leads, days=7, end=run.end, seed=seed, incidents=specs)
    store = workbench.open_store()
    runner.register(store)
    tables = list(runner.tables())
    reader = pa.RecordBatchReader.from_batches(SCHEMA, (b for t in tables for b in t.to_batches()))
    store.append(reader, progress=False)
    return store, runner.report()


def names_cause(d: investigate.Diagnosis, kind: str) -> bool:
    tag, words = PLANTED[kind]
    return (tag is None or tag in d.causes) and any(words in v for v in (d.verdict, *d.also))


def onset(store, report, inc):
    """When the incident first showed: its start, or the first lead it changed (a
    business-hours filter in the wrong zone changes nothing until a lead arrives in the
    shifted hours)."""
    hit = list(report.incident_leads.get(inc.incident_id, ()))
    if not hit:
        return inc.starts_at
    first = store.sql(
        "SELECT min(timestamp) AS t FROM events WHERE list_contains(?, lead_id) AND timestamp >= ?",
        [hit, inc.starts_at],
    ).t.iloc[0]
    return max(inc.starts_at, first) if first is not None and not pd.isna(first) else inc.starts_at


def detection(store, report, kind, inc) -> tuple[bool, float | None, str]:
    """Did an alert name the incident's subject during it; minutes from its onset to the
    end of its first firing window; which rule and subject."""
    fired = alerts.alerts(store, evidence=False)
    entity = inc.entity
    if entity is not None and str(entity).startswith("all"):
        entity = None  # "all buyers": any buyer's alert names it
    start, end = onset(store, report, inc), inc.ends_at
    best = None
    for a in fired:
        right = a.subject == entity or (
            a.subject == "all leads" and (kind in FLOW_WIDE or entity is None)
        )
        if entity is None and a.rule.group_by == "recipient":
            right = True
        if not right or not (a.started < end and a.ended > start):
            continue
        seen = a.started + a.rule.window
        delay = max(0.0, (seen - start).total_seconds() / 60)
        if best is None or delay < best[1]:
            best = (True, delay, f"{a.rule.name}:{a.subject}", a.rule.window)
    return best or (False, None, "-", None)


def explain_scores(store, report, inc, kind, rng, n: int) -> tuple[float, float]:
    hit = sorted(report.incident_leads.get(inc.incident_id, ()))
    if not hit:
        return float("nan"), float("nan")
    sample = rng.sample(hit, min(n, len(hit)))
    recall = sum(names_cause(investigate.explain(store, x), kind) for x in sample) / len(sample)
    others = store.sql(
        "SELECT lead_id FROM lead_summary WHERE submitted_at >= ? AND submitted_at < ?",
        [inc.starts_at, inc.ends_at],
    ).lead_id
    others = sorted(set(others) - set(hit))
    if not others:
        return recall, 1.0
    sample = rng.sample(others, min(n, len(others)))
    false_rate = sum(names_cause(investigate.explain(store, x), kind) for x in sample) / len(sample)
    tp, fp = recall * len(hit), false_rate * len(others)
    return recall, tp / (tp + fp) if tp + fp else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--leads", type=int, default=20_000, help="leads per simulated week")
    ap.add_argument("--kinds", nargs="*", default=sorted(INCIDENT_TYPES))
    ap.add_argument("--explain", type=int, default=60, help="leads sampled per explain score")
    args = ap.parse_args(argv)
    run = sample_run()
    rng = random.Random(7)
    seeds = range(1, args.seeds + 1)
    t0 = time.perf_counter()

    false_alarms = []
    for seed in seeds:
        store, _ = simulate(run, seed, args.leads, [])
        fired = alerts.alerts(store, evidence=False)
        false_alarms.append(len(fired))
        for a in fired:
            print(f"  clean week seed {seed}: {a.message}", flush=True)
        store.close()
    print(f"clean weeks: {false_alarms} alerts ({time.perf_counter() - t0:.0f} s)\n", flush=True)

    header = (
        f"{'incident':30s} {'strength':>22s} {'caught':>7s} {'median delay':>13s} "
        f"{'max':>6s} {'window':>7s} {'explain R':>9s} {'explain P':>9s}  fired"
    )
    print(header)
    print("-" * len(header))
    misses = []
    for kind in args.kinds:
        param, weak = WEAK[kind]
        for strength in ("default", f"{param}={weak}"):
            caught, delays, windows, rules, recalls, precisions = 0, [], [], set(), [], []
            trials = 0
            for seed in seeds:
                for start in STARTS:
                    params = {"start": start}
                    if strength != "default":
                        params[param] = weak
                    store, report = simulate(run, seed, args.leads, [incident(kind, **params)])
                    inc = next(
                        store.sql(
                            "SELECT incident_id, entity, starts_at, ends_at FROM incidents"
                        ).itertuples()
                    )
                    trials += 1
                    ok, delay, rule, window = detection(store, report, kind, inc)
                    if ok:
                        caught += 1
                        delays.append(delay)
                        windows.append(window.total_seconds() / 60)
                        rules.add(rule.split(":")[0])
                    else:
                        misses.append(f"{kind} ({strength}, seed {seed}, start {start})")
                    if strength == "default" and start == STARTS[0]:
                        r, p = explain_scores(store, report, inc, kind, rng, args.explain)
                        recalls.append(r)
                        precisions.append(p)
                    store.close()
            med = f"{statistics.median(delays):.0f} min" if delays else "-"
            worst = f"{max(delays):.0f}" if delays else "-"
            win = f"{statistics.median(windows):.0f}" if windows else "-"
            er = f"{statistics.mean(recalls):.0%}" if recalls else ""
            ep = f"{statistics.mean(precisions):.0%}" if precisions else ""
            print(
                f"{kind:30s} {strength:>22s} {caught:>3d}/{trials:<3d} {med:>13s} {worst:>6s} "
                f"{win:>7s} {er:>9s} {ep:>9s}  {','.join(sorted(rules))}",
                flush=True,
            )
    print(f"\nfalse alarms on clean weeks: {sum(false_alarms)} over {len(false_alarms)} weeks")
    print("missed: " + ("; ".join(misses) if misses else "none"))
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
