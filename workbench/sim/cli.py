"""The ``simulate`` and ``incidents`` subcommands of the ``workbench`` command.

A thin layer over :func:`workbench.sim.simulate` and the incident registry; the
workbench CLI imports this module and calls :func:`register_cli`.

    workbench simulate --leads 20000 --days 7 --seed 1 --store var/sim.duckdb \\
        --incident nine_digit_phones:source=LeadRiver,rate=0.8 --incident enhancement_outage
    workbench incidents
"""

from __future__ import annotations

import sys

from .flow import FlowError
from .incidents import IncidentError, describe_all, parse_spec
from .runner import MAX_DAYS, simulate

__all__ = ["register_cli"]


def register_cli(sub, command) -> None:
    """Add ``simulate`` and ``incidents`` to the ``workbench`` subparsers ``sub``.

    >>> import argparse
    >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers(dest="command")
    >>> register_cli(sub, lambda name: (lambda fn: fn))
    >>> parser.parse_args(["simulate", "--store", "x.duckdb"]).leads
    20000
    """
    p = sub.add_parser(
        "simulate",
        help="simulate leads through a flow (with incidents) into a store",
        description="Simulate leads through a flow definition and append their events to a "
        "store. Incidents plant known problems; `workbench incidents` lists them.",
    )
    p.add_argument("--leads", type=int, default=20_000, help="number of leads (default 20000)")
    p.add_argument("--days", type=float, default=7.0, help="length of the run in days (default 7)")
    p.add_argument(
        "--incident",
        action="append",
        default=[],
        metavar="NAME[:k=v,...]",
        help="an incident to plant (repeatable), e.g. nine_digit_phones:source=LeadRiver,rate=0.8",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same events)")
    p.add_argument("--store", required=True, help="store file (created if missing)")
    p.add_argument(
        "--flow", default=None, help="flow definition YAML (default sample_data/flow.yaml)"
    )
    p.add_argument("--end", default=None, help="end of the run, ISO-8601 (default: now)")
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    command("simulate")(_simulate)

    p = sub.add_parser(
        "incidents",
        help="list the incidents simulate can plant, with their parameters",
        description="Incidents simulate can plant, what each plants and its parameters.",
    )
    command("incidents")(_incidents)


def _simulate(args) -> int:
    try:
        if args.leads < 0:
            raise ValueError(f"--leads {args.leads}: give a number of leads >= 0")
        if args.seed < 0:
            raise ValueError(f"--seed {args.seed}: give a whole number >= 0")
        if not 0 < args.days <= MAX_DAYS:  # NaN too
            raise ValueError(
                f"--days {args.days:g}: give a number of days above 0 and at most {MAX_DAYS:,}"
            )
        incidents = [parse_spec(text) for text in args.incident]
        report = simulate(
            args.flow,
            leads=args.leads,
            days=args.days,
            end=args.end,
            seed=args.seed,
            incidents=incidents,
            store=args.store,
            progress=not args.no_progress,
        )
    except (FlowError, IncidentError, ValueError) as e:
        print(f"workbench simulate: {e}", file=sys.stderr)
        return 2
    print(report)
    return 0


def _incidents(args) -> int:
    print(describe_all())
    return 0
