"""The ``workbench`` command: a thin layer over the Python API.

Each subcommand parses its arguments, calls one API function and prints the result;
the API is what the tests exercise. Exit status: 0 on success, 1 when the command ran
but found a problem (a broken hash chain), 2 for bad input or a store that cannot be
opened.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

import pandas as pd

from .store import StoreError, open_store

_COMMANDS: dict[str, Callable] = {}
_SUBCOMMAND_MODULES = ("workbench.sim.cli", "workbench.importer")


def command(name: str):
    def wrap(fn):
        _COMMANDS[name] = fn
        return fn

    return wrap


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Simulate, store and investigate lead events.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("ingest", help="append events from a JSONL, JSON or Parquet file")
    p.add_argument("file", help="events file (.jsonl, .json array, .parquet)")
    p.add_argument("--store", required=True, help="store file (created if missing)")
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")

    p = sub.add_parser("timeline", help="print every event of one lead, in order")
    p.add_argument("lead_id")
    p.add_argument("--store", required=True)

    p = sub.add_parser("verify", help="recompute the hash chain and report tampering")
    p.add_argument("--store", required=True)

    p = sub.add_parser("export", help="write every event to Parquet or JSONL")
    p.add_argument("file", help="output file (.parquet or .jsonl)")
    p.add_argument("--store", required=True)

    p = sub.add_parser("archive", help="move old events to the warm or cold tier")
    p.add_argument("--store", required=True)
    p.add_argument(
        "--older-than", default="30 days", help="e.g. '30 days', '12 hours' (default 30 days)"
    )
    p.add_argument("--tier", choices=["warm", "cold"], default="warm")

    p = sub.add_parser("restore", help="bring cold-tier events back into the warm tier")
    p.add_argument("--store", required=True)
    p.add_argument("--since", help="first event date to restore (ISO-8601)")
    p.add_argument("--until", help="restore event dates before this (ISO-8601)")

    p = sub.add_parser("sql", help="run one read-only SQL query and print the result")
    p.add_argument("query")
    p.add_argument("--store", required=True)

    # subcommands of other rooms (simulate, incidents, import) register themselves
    for name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name is None or not name.startswith(e.name):
                raise
            continue
        module.register_cli(sub, command)
    return parser


@command("ingest")
def _ingest(args) -> int:
    with open_store(args.store) as store:
        report = store.append(args.file, progress=not args.no_progress, label=args.file)
    print(report)
    return 0


@command("timeline")
def _timeline(args) -> int:
    with open_store(args.store, read_only=True) as store:
        df = store.timeline(args.lead_id)
    if df.empty:
        print(f"no events for lead {args.lead_id!r} in {args.store}", file=sys.stderr)
        return 1
    cols = ["seq", "timestamp", "type", "outcome", "duration_ms", "step_name", "rejection_reason"]
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(df[cols].to_string(index=False))
    return 0


@command("verify")
def _verify(args) -> int:
    with open_store(args.store, read_only=True) as store:
        report = store.verify()
    print(report)
    return 0 if report.ok else 1


@command("export")
def _export(args) -> int:
    with open_store(args.store, read_only=True) as store:
        n = store.export(args.file)
    print(f"wrote {n:,} events to {args.file}")
    return 0


@command("archive")
def _archive(args) -> int:
    with open_store(args.store) as store:
        print(store.archive(args.older_than, tier=args.tier))
    return 0


@command("restore")
def _restore(args) -> int:
    with open_store(args.store) as store:
        print(store.restore(since=args.since, until=args.until))
    return 0


@command("sql")
def _sql(args) -> int:
    with open_store(args.store, read_only=True) as store:
        df = store.sql(args.query)
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(df.to_string(index=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args) or 0
    except (StoreError, PermissionError, ValueError, FileNotFoundError) as e:
        print(f"workbench {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
