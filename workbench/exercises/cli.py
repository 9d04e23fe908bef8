"""The ``drill`` subcommand of the ``workbench`` command: new, check, reveal."""

from __future__ import annotations

from .drills import DRILL_KINDS, check_drill, new_drill, reveal

__all__ = ["register_cli"]


def register_cli(sub, command) -> None:
    p = sub.add_parser(
        "drill",
        help="incident drills: build a store with a hidden incident, check an answer",
        description="Incident drills for new staff: `drill new` builds a store with one "
        "hidden incident drawn from the seed; `drill check` says which parts of an answer "
        "are right; `drill reveal` shows the answer to a trainer.",
    )
    dsub = p.add_subparsers(dest="drill_command", required=True)
    n = dsub.add_parser("new", help="build a drill store")
    n.add_argument(
        "--seed", type=int, required=True, help="drill number (different seeds, different drills)"
    )
    n.add_argument("--store", required=True, help="the new store file")
    c = dsub.add_parser("check", help="check an answer (exit 0 only when every part is right)")
    c.add_argument("--store", required=True)
    c.add_argument("--incident", required=True, help=f"one of: {', '.join(sorted(DRILL_KINDS))}")
    c.add_argument("--entity", required=True, help="the source, service, filter or buyer it hit")
    c.add_argument("--since", required=True, help="when it started (UTC), e.g. '2026-11-25 14:00'")
    c.add_argument("--until", required=True, help="when it ended (UTC)")
    r = dsub.add_parser("reveal", help="show the answer (trainer or admin)")
    r.add_argument("--store", required=True)
    r.add_argument("--user", required=True)
    r.add_argument("--role", default=None)
    command("drill")(_drill)


def _drill(args) -> int:
    if args.drill_command == "new":
        drill = new_drill(args.seed, args.store)
        print(drill.briefing)
        return 0
    if args.drill_command == "check":
        fb = check_drill(
            args.store,
            incident=args.incident,
            entity=args.entity,
            since=args.since,
            until=args.until,
        )
        print(fb)
        return 0 if fb.correct else 1
    answer = reveal(args.store, user=args.user, role=args.role)
    print(
        f"drill {answer['seed']}: {answer['incident']} on {answer['entity']}, "
        f"{answer['since']} to {answer['until']} UTC\n  {answer['description']}"
    )
    return 0
