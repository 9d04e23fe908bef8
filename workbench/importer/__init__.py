"""Import real platform exports into a store: dotted events and the events API.

Analysts have their platform's events in one of two shapes: **dotted events** as the
reference guide prints them (``evt_`` ids, ``recipient.delivered``; a JSON array or
JSON lines) and the **events API** (one object per flow step, pages of up to 1000,
24-hex ids, ``vars``, epoch-millisecond timings). :func:`import_events` reads a file or
a folder of pages (``.json``, ``.jsonl``, ``.ndjson``, optionally gzipped), tells the
shapes apart file by file, maps every object to the catalogue's event record, and
appends through the store, so validation, quarantine and the ingest report apply. It
returns an :class:`ImportReport` that accounts for every object: mapped (platform
``type/outcome`` -> our ``type/outcome``, see :data:`MAPPING`), derived
(``source.submitted`` and ``flow.completed`` from each source object, flagged
``"derived": true``), taken once when API pages overlap, or kept aside in the store's
quarantine with the reason (a step type no catalogue event fits, a piece of a file that
is not JSON) -- never dropped. ``--flow-config`` (:func:`load_flow_config`) says which
API ``recipient`` steps enhance and which deliver, and names the flow's steps.

Importing the same export again stores nothing new: event ids are kept (dotted) or
derived from the API ids (``evt_`` + 20 base62 characters; the API id is kept as
``metadata.original_id``). The modules: ``_read`` (files, shapes, truncated JSON),
``_api`` and ``_dotted`` (the two mappings), ``_flow_config``, ``_records`` (Arrow
batches for the store), ``_report``.

>>> import workbench
>>> from workbench.importer import import_events
>>> store = workbench.open_store()
>>> report = import_events("tests/fixtures/api", store)        # doctest: +SKIP
>>> report.ingest.quarantined == len(report.unclassified) + len(report.unreadable)  # doctest: +SKIP
True
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..store import EventStore, Rejected, open_store
from ..store.inputs import raw_text
from ._api import MAPPING, ApiMapper
from ._dotted import DottedMapper
from ._errors import FlowConfigError, ImportInputError
from ._flow_config import FlowConfig, StepConfig, load_flow_config
from ._read import FORMATS, Notice, Unreadable, detect, list_files, read_items
from ._records import record_batches
from ._report import FileSummary, ImportReport, Problem, Stats

__all__ = [
    "FORMATS",
    "MAPPING",
    "FileSummary",
    "FlowConfig",
    "FlowConfigError",
    "ImportInputError",
    "ImportReport",
    "Problem",
    "StepConfig",
    "import_events",
    "load_flow_config",
    "register_cli",
]

#: The type under which an unreadable piece of a file is handed to the store's
#: quarantine (no catalogue type has this name, so the store keeps it aside).
UNREADABLE_TYPE = "import.unreadable"
_BIG_EXPORT_BYTES = 50_000_000


def import_events(
    path: str | os.PathLike,
    store: EventStore | str | os.PathLike,
    format: str = "auto",
    flow_config: str | os.PathLike | FlowConfig | None = None,
    progress: bool | None = None,
) -> ImportReport:
    """Import an export file or folder into ``store`` and report what happened.

    ``format`` is ``"auto"`` (decided per file from its first objects), ``"dotted"``
    or ``"api"``. ``flow_config`` is a YAML/JSON file naming the flow's steps and their
    kinds (see :mod:`workbench.importer._flow_config`); it decides whether an API
    ``recipient`` step enhances or delivers and registers the names in the store.
    ``store`` is an open :class:`EventStore` or the path of one (opened and closed).
    Raises :class:`ImportInputError` before storing anything when the input as a whole
    cannot be imported; problems with single objects are reported, never raised.

    >>> store = workbench.open_store()                                  # doctest: +SKIP
    >>> print(import_events("tests/fixtures/dotted/events.json", store))  # doctest: +SKIP
    """
    if format not in FORMATS:
        raise ImportInputError(f"format {format!r} is not one of {', '.join(FORMATS)}")
    if flow_config is None or isinstance(flow_config, FlowConfig):
        config = flow_config
    else:
        config = load_flow_config(flow_config)
    root = Path(path)
    files, ignored = list_files(root)
    shapes = [format if format != "auto" else _shape(p, name) for p, name in files]
    if progress is None:
        # the store cannot size a stream: show a bar for big exports only
        progress = sum(p.stat().st_size for p, _ in files) >= _BIG_EXPORT_BYTES

    own = not isinstance(store, EventStore)
    st = open_store(store) if own else store
    try:
        if config is not None:
            config.register(st)
        stats = Stats()
        api = ApiMapper(st.catalog, config, stats)
        dotted = DottedMapper(st.catalog, stats)
        summaries: list[FileSummary] = []
        # what no catalogue type takes is kept aside in the same ingest, with the
        # import's own reason and the file and place it came from
        aside: list[Rejected] = []

        def route(event: dict, piece=None):
            if isinstance(event.get("type"), str) and event["type"] in st.catalog:
                return event
            aside.append(_rejected(event, piece, stats))
            return None

        def events():
            for (p, name), shape in zip(files, shapes, strict=True):
                mapper = api if shape == "api" else dotted
                good = bad = 0
                for piece in read_items(p, name):
                    if isinstance(piece, Notice):
                        stats.notices.append(f"{piece.file} {piece.place}: {piece.message}")
                        continue
                    stats.objects += 1
                    if isinstance(piece, Unreadable):
                        bad += 1
                        stats.unreadable.append(Problem(piece.file, piece.place, piece.reason))
                        stats.events += 1
                        aside.append(
                            Rejected(
                                piece.raw,
                                piece.reason,
                                f"{piece.file} {piece.place}",
                                type=UNREADABLE_TYPE,
                            )
                        )
                        continue
                    good += 1
                    for event in mapper.map(piece):
                        stats.events += 1
                        if route(event, piece) is not None:
                            yield event
                summaries.append(FileSummary(name, shape, good, bad))
            for event in api.finish():
                stats.events += 1
                if route(event) is not None:
                    yield event

        label = str(path)

        # `aside` fills while the batches stream; the store reads it after the last one
        def unwritable(event: dict, reason: str) -> None:
            r = _rejected(event, None, stats)
            aside.append(Rejected(r.raw, reason, r.origin, r.event_id, r.type, r.lead_id))

        ingests = [
            st.append(
                record_batches(events(), on_reject=unwritable),
                progress=progress,
                label=label,
                rejects=aside,
            )
        ]
        _register_names(st, api)
    finally:
        if own:
            st.close()
    return stats.report(label, summaries, ignored, ingests)


def _shape(p: Path, name: str) -> str:
    shape, keys = detect(p, name)
    if shape is None and keys:
        raise ImportInputError(
            f"cannot tell the shape of {name}: its first objects have the keys "
            f"{', '.join(keys)}; dotted events carry event_id, a type like "
            "'recipient.delivered' and lead_id, API objects a 24-hex id, vars and "
            "start_timestamp. Give --format dotted or --format api to say which"
        )
    return shape or "unknown"


def _rejected(event: dict, piece, stats: Stats) -> Rejected:
    """An event no catalogue type takes, as the store's quarantine should keep it: the
    original object, the import's reason and the place in the export."""
    md = event.get("metadata") if isinstance(event.get("metadata"), dict) else {}
    imp = md.get("import") if isinstance(md.get("import"), dict) else {}
    file = imp.get("file") or getattr(piece, "file", None)
    place = imp.get("place") or getattr(piece, "place", None)
    origin = " ".join(str(x) for x in (file, place) if x) or None
    if "unclassified_reason" in md:
        original = md.get("api", md.get("value", event))
        reason = md["unclassified_reason"]
        kind = original.get("type") if isinstance(original, dict) else None
    else:  # a dotted event of a type the catalogue does not know
        original = event
        reason = stats.unclassified[-1].reason if stats.unclassified else "unknown event type"
        kind = event.get("type")
    return Rejected(
        raw_text(original),
        reason,
        origin,
        event_id=md.get("original_id") or event.get("event_id"),
        type=str(kind) if kind is not None else None,
        lead_id=event.get("lead_id"),
    )


def _register_names(store: EventStore, api: ApiMapper) -> None:
    """Name flows and sources seen in the data that no one has named yet."""
    if api.flows:
        known = set(store.sql("SELECT flow_id FROM flows").flow_id)
        for flow_id, name in api.flows.items():
            if name and flow_id not in known:
                store.register_flow(flow_id, name)
    if api.sources:
        known = set(store.sql("SELECT entity_id FROM entities").entity_id)
        for source_id, name in api.sources.items():
            if name and source_id not in known:
                store.register_entity(source_id, name, "source")


# --------------------------------------------------------------------------- CLI


def register_cli(sub, command) -> None:
    """Add ``workbench import FILE_OR_FOLDER --store PATH [--format ...] [--flow-config F]``."""
    p = sub.add_parser(
        "import",
        help="import platform exports (dotted events or events-API pages) into a store",
        description=(
            "Import an export file or a folder of them: dotted events (JSON array or "
            "lines) or events-API pages. Prints the mapping report and the store's "
            "ingest report."
        ),
    )
    p.add_argument("path", metavar="FILE_OR_FOLDER", help="an export file or a folder of them")
    p.add_argument("--store", required=True, help="store file (created if missing)")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="shape of the export (default: auto, decided per file)",
    )
    p.add_argument(
        "--flow-config",
        metavar="FILE",
        help="YAML/JSON naming the flow's steps and their kinds (source, filter, "
        "enhancement, recipient)",
    )
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    command("import")(_import_command)


def _import_command(args) -> int:
    try:
        report = import_events(
            args.path,
            args.store,
            format=args.format,
            flow_config=args.flow_config,
            progress=False if args.no_progress else None,
        )
    except ImportInputError as e:
        print(f"workbench import: {e}", file=sys.stderr)
        return 2
    print(report)
    return 0
