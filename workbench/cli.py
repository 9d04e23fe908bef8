"""The ``workbench`` command: a thin layer over the Python API.

Each subcommand parses its arguments, calls public functions and prints the result;
the API is what the tests exercise. The shell is a person too: commands that show
events (``timeline``, ``sql``, ``export``) read through a Session, masked and audited,
as ``--user`` (default ``$WORKBENCH_USER``, else the access config's first analyst) in
``--role``; a compliance officer unmasks with ``--purpose`` and ``--minutes``.

Exit status: 0 on success, 1 when the command ran but found a problem (a broken hash
chain, a lead with no events), 2 for bad input, a refusal or a store that cannot be
opened, 130 when interrupted. Errors are one line on stderr, never a traceback (set
``WORKBENCH_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .access import ENV_USER, connect, load_access_config
from .access.config import ENV_CONFIG
from .errors import InputError, StoreNotFoundError, WorkbenchError
from .store import open_store
from .store.tiers import check_target

_COMMANDS: dict[str, Callable] = {}
_SUBCOMMAND_MODULES = ("workbench.sim.cli", "workbench.importer", "workbench.exercises.cli")
#: Rows ``workbench sql`` prints unless --all or --output.
SQL_ROWS = 40


def command(name: str):
    def wrap(fn):
        _COMMANDS[name] = fn
        return fn

    return wrap


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("workbench")
    except Exception:  # noqa: BLE001 - a checkout that was never installed
        return "unknown"


def _reader_options(p: argparse.ArgumentParser) -> None:
    """The options of a command that shows events to a person."""
    g = p.add_argument_group("who reads (masked and audited)")
    g.add_argument(
        "--user",
        help=f"who you are (default ${ENV_USER}, else the access config's first analyst)",
    )
    g.add_argument("--role", help="the role to read in (default: the user's first role)")
    g.add_argument(
        "--purpose",
        help="read raw PII for this stated purpose (compliance and admin roles; audited)",
    )
    g.add_argument(
        "--minutes",
        type=float,
        default=5.0,
        help="how long an unmask with --purpose lasts (default 5)",
    )
    g.add_argument("--access-config", metavar="FILE", help="users and roles (YAML)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Simulate, store and investigate lead events.",
    )
    parser.add_argument("--version", action="version", version=f"workbench {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("ingest", help="append events from a JSONL, JSON or Parquet file")
    p.add_argument("file", help="events file (.jsonl, .jsonl.gz, .json array, .parquet)")
    p.add_argument("--store", required=True, help="store file (created if missing)")
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")

    p = sub.add_parser("timeline", help="print every event of one lead, in order (masked)")
    p.add_argument("lead_id")
    p.add_argument("--store", required=True)
    _reader_options(p)

    p = sub.add_parser("verify", help="recompute digests and seals; report any change")
    p.add_argument("--store", required=True)
    p.add_argument(
        "--expect",
        metavar="HEAD",
        help="a head digest printed by an earlier verify: the store must still hold all it held",
    )

    p = sub.add_parser("export", help="write the events to Parquet or JSONL (masked)")
    p.add_argument("file", help="output file (.parquet or .jsonl)")
    p.add_argument("--store", required=True)
    _reader_options(p)

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

    p = sub.add_parser("upgrade", help="upgrade a store made by an earlier workbench, in place")
    p.add_argument("--store", required=True)

    p = sub.add_parser(
        "lake",
        help="the Parquet lake: every event and table for DuckDB, Spark or any Parquet reader",
        description="`lake export LAKE_DIR` writes the store's events (every tier, "
        "Hive-partitioned by event date, zstd) and its tables to LAKE_DIR; run it again to "
        "add what was stored since. The lake holds raw events, like the store's own files: "
        "it takes a role that may unmask and a --purpose, and goes on the audit trail.",
    )
    lsub = p.add_subparsers(dest="lake_command", required=True)
    e = lsub.add_parser("export", help="add the store's new events and its tables to a lake")
    e.add_argument("lake", help="the lake folder (created if missing)")
    e.add_argument("--store", required=True)
    _reader_options(e)

    p = sub.add_parser("sql", help="run one read-only SQL query and print the result (masked)")
    p.add_argument("query")
    p.add_argument("--store", required=True)
    p.add_argument("--all", action="store_true", help=f"print every row (default: {SQL_ROWS})")
    p.add_argument("--output", metavar="FILE", help="write every row to .csv, .parquet or .jsonl")
    _reader_options(p)

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


# --------------------------------------------------------------------------- sessions


def _existing_store(path: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise StoreNotFoundError(
            f"no store at {p} (check --store; `workbench ingest FILE --store {p}` creates one)"
        )
    return p


def _default_user(config) -> str:
    user = os.environ.get(ENV_USER)
    if user:
        return user
    for name, roles in config.users.items():
        if "analyst" in roles:
            return name
    raise InputError(f"say who you are: --user NAME (or set ${ENV_USER})")


def _session(args):
    """A Session for the command's reader options, unmasked when --purpose is given."""
    store = _existing_store(args.store)
    config = load_access_config(args.access_config or os.environ.get(ENV_CONFIG) or _beside(store))
    user = args.user or _default_user(config)
    session = connect(
        store,
        user=user,
        role=args.role,
        config=config,
        client=f"workbench {args.command} (OS user {_os_user()})",
    )
    if args.purpose is not None:
        try:
            session.unmask(purpose=args.purpose, minutes=args.minutes)
        except BaseException:
            session.close()
            raise
    return session


def _beside(store: Path):
    beside = store.with_name(store.name + ".access.yaml")
    return beside if beside.exists() else None


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in this environment
        return "unknown"


# --------------------------------------------------------------------------- commands


@command("ingest")
def _ingest(args) -> int:
    source = Path(args.file).expanduser()
    if not source.exists():
        raise InputError(f"no such file: {source}")
    if source.is_dir():
        raise InputError(f"{source} is a folder; `workbench import` reads folders of exports")
    with open_store(args.store) as store:
        report = store.append(source, progress=not args.no_progress, label=str(source))
    print(report)
    return 0


@command("timeline")
def _timeline(args) -> int:
    with _session(args) as session:
        df = session.timeline(args.lead_id)
    if df.empty:
        print(f"no events for lead {args.lead_id!r} in {args.store}", file=sys.stderr)
        return 1
    cols = ["seq", "timestamp", "type", "outcome", "duration_ms", "step_name", "rejection_reason"]
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(df[cols].to_string(index=False))
    return 0


@command("verify")
def _verify(args) -> int:
    with open_store(_existing_store(args.store), read_only=True) as store:
        report = store.verify(expect=args.expect)
    print(report)
    if report.ok and report.head_hash and args.expect is None:
        print("keep this head elsewhere; `workbench verify --expect HEAD` proves nothing changed")
    return 0 if report.ok else 1


@command("export")
def _export(args) -> int:
    with _session(args) as session:
        n = session.export(args.file)
        state = "masked" if session.masked else "raw, under the grant"
    print(f"wrote {n:,} events to {args.file} ({state})")
    return 0


@command("archive")
def _archive(args) -> int:
    with open_store(_existing_store(args.store), create=False) as store:
        print(store.archive(args.older_than, tier=args.tier))
    return 0


@command("restore")
def _restore(args) -> int:
    with open_store(_existing_store(args.store), create=False) as store:
        print(store.restore(since=args.since, until=args.until))
    return 0


@command("upgrade")
def _upgrade(args) -> int:
    with open_store(_existing_store(args.store), create=False) as store:
        current, old = store._meta("schema_version"), store.upgraded_from
    print(
        f"{args.store}: upgraded to store schema {current} (from {old})"
        if old
        else f"{args.store}: store schema {current}, nothing to upgrade"
    )
    return 0


@command("lake")
def _lake(args) -> int:
    if args.purpose is None:
        raise InputError(
            "a lake holds raw events: give --purpose (why), as a user whose role may unmask "
            "(e.g. --role compliance)"
        )
    with _session(args) as session:  # the grant is checked and audited there
        report = session._store.export_lake(args.lake)
        session._record(
            "lake_export",
            masked=False,
            purpose=args.purpose,
            detail=f"lake export {report.export_id}: {report.events} events",
            rows=report.events,
        )
    print(report)
    return 0


@command("sql")
def _sql(args) -> int:
    with _session(args) as session:
        # refused before the query runs: --output never lands on a file of the store
        # (its database, tiers, audit trail), however the path is spelled
        output = _output_path(args.output, session.owned_paths()) if args.output else None
        df = session.sql(args.query)
    if output is not None:
        _write_frame(df, output)
        print(f"wrote {len(df):,} rows to {args.output}")
        return 0
    shown = df if args.all else df.head(SQL_ROWS)
    with pd.option_context(
        "display.width", 200, "display.max_rows", None, "display.max_colwidth", 80
    ):
        print(shown.to_string(index=False))
    if len(df) > len(shown):
        print(
            f"... {len(df) - len(shown):,} more rows (--all to print them, --output FILE to save)"
        )
    return 0


_FRAME_WRITERS = {
    ".csv": lambda df, p: df.to_csv(p, index=False),
    ".parquet": lambda df, p: df.to_parquet(p, index=False),
    ".jsonl": lambda df, p: df.to_json(p, orient="records", lines=True, date_format="iso"),
}


def _output_path(output: str, owned) -> Path:
    path = check_target(output, owned, what="write --output")
    if path.suffix.lower() not in _FRAME_WRITERS:
        raise InputError(f"--output {path}: use a .csv, .parquet or .jsonl name")
    return path


def _write_frame(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` beside ``path`` and move it in place: a failed write leaves nothing,
    and a file that was there is replaced, never written through."""
    write = _FRAME_WRITERS[path.suffix.lower()]
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.close(fd)
        write(df, tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise InputError(f"--output {path}: {e.strerror or e}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


# --------------------------------------------------------------------------- main

# Python argument names in messages, as the CLI spells them
_FLAGS = {
    "older_than": "--older-than",
    "since": "--since",
    "until": "--until",
    "expect": "--expect",
    "minutes": "--minutes",
    "purpose": "--purpose",
    "tier": "--tier",
    "user": "--user",
    "role": "--role",
}
_ARG = re.compile(r"\b(" + "|".join(_FLAGS) + r")=")


def _in_cli_words(message: str) -> str:
    message = _ARG.sub(lambda m: _FLAGS[m.group(1)] + " ", message)
    message = re.sub(r"\bconnect\(\.\.\., user='name'\)", "--user NAME", message)
    return message.replace("open_store(path)", "--store PATH")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args) or 0
    except WorkbenchError as e:
        print(f"workbench {args.command}: {_in_cli_words(str(e))}", file=sys.stderr)
        return 2
    except (ValueError, PermissionError, FileNotFoundError, OSError) as e:
        print(f"workbench {args.command}: {_in_cli_words(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - one line, never a traceback
        if os.environ.get("WORKBENCH_DEBUG"):
            raise
        from .access.masking import mask_free_text

        first = mask_free_text(str(e).strip().splitlines()[0]) if str(e).strip() else ""
        print(
            f"workbench {args.command}: internal error ({type(e).__name__}: {first}); "
            "set WORKBENCH_DEBUG=1 to see where",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
