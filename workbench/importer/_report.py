"""The mapping report: what an import read, how it mapped it, and what the store did.

Every object read is accounted for exactly once: mapped, repeated (an overlap between
API pages), could not be classified, or unreadable; the last two are handed to the
store too, which quarantines them with their raw text. So
``objects == mapped_objects + repeats + len(unclassified) + len(unreadable)`` and the
store's ``received`` is the mapped events plus the derived ones plus those two.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .. import display
from ..store import IngestReport


@dataclass(frozen=True)
class Problem:
    """One object or piece of a file the import could not map, and why."""

    file: str
    place: str
    reason: str
    original_id: str | None = None
    lead_id: str | None = None

    def __str__(self) -> str:
        who = []
        if self.original_id:
            who.append(f"id {self.original_id}")
        if self.lead_id:
            who.append(f"lead {self.lead_id}")
        ids = f" ({', '.join(who)})" if who else ""
        return f"{self.file} {self.place}{ids}: {self.reason}"


@dataclass(frozen=True)
class FileSummary:
    """One file of the import: its shape and how many objects it held."""

    name: str
    format: str
    objects: int
    unreadable: int


@dataclass(frozen=True)
class ImportReport:
    """What :func:`workbench.importer.import_events` did, object by object.

    ``mapped`` holds (source label, our label, count): the source label is the
    platform's ``type/outcome`` for the events API and the event type for dotted
    events; our label is ``type/outcome`` (``type`` for dotted events).
    """

    source: str
    files: tuple[FileSummary, ...]
    objects: int
    mapped_objects: int
    repeats: int
    mapped: tuple[tuple[str, str, int], ...]
    derived: tuple[tuple[str, int], ...]
    metadata_only: tuple[tuple[str, int], ...]
    null_required: tuple[tuple[str, int], ...]
    classified_by: tuple[tuple[str, int], ...]
    timestamp_from: tuple[tuple[str, int], ...]
    unclassified: tuple[Problem, ...]
    unreadable: tuple[Problem, ...]
    notices: tuple[str, ...]
    ignored_files: tuple[str, ...]
    ingest: IngestReport
    events_sent: int = 0
    #: the store's reports, one per append: the mapped events, then (when there are
    #: any) what could not be mapped; ``ingest`` adds them up
    ingests: tuple[IngestReport, ...] = ()

    @property
    def derived_events(self) -> int:
        return sum(n for _, n in self.derived)

    @property
    def formats(self) -> tuple[str, ...]:
        return tuple(sorted({f.format for f in self.files}))

    def counts(self) -> dict[tuple[str, str], int]:
        """``{(source label, our label): count}`` of the mapping."""
        return {(a, b): n for a, b, n in self.mapped}

    def __str__(self) -> str:
        shapes = {"api": "events API", "dotted": "dotted events", "unknown": "unreadable"}
        kinds = ", ".join(shapes.get(f, f) for f in self.formats)
        n_files = len(self.files)
        lines = [f"import of {self.source} ({kinds}; {n_files} file{'s' * (n_files != 1)})"]
        for f in self.files:
            bad = f", {f.unreadable} unreadable" if f.unreadable else ""
            lines.append(
                f"  {f.name:<28} {shapes.get(f.format, f.format):<14} {f.objects:>6,}{bad}"
            )
        rep = (
            f"   ({self.repeats:,} repeated on overlapping pages: taken once)"
            if self.repeats
            else ""
        )
        lines.append(f"  objects read       {self.objects:>8,}{rep}")
        lines.append("  mapped (source -> workbench)")
        width = max((len(a) for a, _, _ in self.mapped), default=10)
        for a, b, n in self.mapped:
            lines.append(f"    {a:<{width}}  -> {b:<32} {n:>6,}")
        if self.derived:
            lines.append('  derived events (metadata "derived": true)')
            for t, n in self.derived:
                lines.append(f"    {t:<{width + 36}} {n:>6,}")
        if self.classified_by:
            rules = ", ".join(f"{rule} {n}" for rule, n in self.classified_by)
            lines.append(f"  recipient steps classified by: {rules}")
        if self.timestamp_from:
            whence = ", ".join(f"{k} {n}" for k, n in self.timestamp_from)
            lines.append(f"  timestamps inferred (no start_timestamp): {whence}")
        if self.metadata_only:
            lines.append("  fields kept only in metadata (under these keys of metadata)")
            lines.append(_wrap([f"{k} {n}" for k, n in self.metadata_only]))
        if self.null_required:
            lines.append("  required metadata the export does not carry (stored as null)")
            lines.append(_wrap([f"{k} {n}" for k, n in self.null_required]))
        lines.append(
            f"  could not classify {len(self.unclassified):>4,}   (handed to the store's "
            "quarantine with the reason; never dropped)"
        )
        for p in self.unclassified[:10]:
            lines.append(f"    {p}")
        if len(self.unclassified) > 10:
            lines.append(f"    ... and {len(self.unclassified) - 10} more")
        lines.append(
            f"  unreadable         {len(self.unreadable):>4,}   (quarantined with raw text)"
        )
        for p in self.unreadable[:10]:
            lines.append(f"    {p}")
        if len(self.unreadable) > 10:
            lines.append(f"    ... and {len(self.unreadable) - 10} more")
        for note in self.notices:
            lines.append(f"  note: {note}")
        if self.ignored_files:
            lines.append(f"  ignored (not JSON): {', '.join(self.ignored_files)}")
        lines.append(f"  events handed to the store: {self.events_sent:,}")
        if len(self.ingests) > 1:
            ids = ", ".join(str(i.ingest_id) for i in self.ingests)
            lines.append(
                f"  (ingests {ids}: the mapped events, then what could not be mapped; together:)"
            )
        lines.append(str(self.ingest))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return _report_html(self)


def _report_html(r: ImportReport) -> str:
    shapes = {"api": "events API", "dotted": "dotted events", "unknown": "unreadable"}
    ing = r.ingest
    rows = [
        ("files", ", ".join(f"{f.name} ({f.objects:,})" for f in r.files)),
        (
            "objects read",
            f"{r.objects:,}" + (f" ({r.repeats:,} repeats taken once)" if r.repeats else ""),
        ),
        ("events to the store", f"{r.events_sent:,}"),
        (
            "stored",
            f"{ing.stored:,} stored · {ing.duplicates:,} duplicates · {ing.quarantined:,} quarantined",
        ),
        ("could not classify", f"{len(r.unclassified):,} (quarantined with the reason)"),
        ("unreadable", f"{len(r.unreadable):,} (quarantined with the raw text)"),
    ]
    if r.derived:
        rows.append(("derived events", ", ".join(f"{t} {n:,}" for t, n in r.derived)))
    if r.metadata_only:
        rows.append(
            ("kept in metadata only", ", ".join(f"{k} ({n:,})" for k, n in r.metadata_only))
        )
    if r.null_required:
        rows.append(
            ("required, not in the export", ", ".join(f"{k} ({n:,})" for k, n in r.null_required))
        )
    problems = [*r.unclassified[:5], *r.unreadable[:5]]
    mapping = display.table(
        ["source label", "workbench event", "objects"],
        [(a, b, n) for a, b, n in r.mapped],
        caption="how the export was mapped",
    )
    kinds = ", ".join(shapes.get(f, f) for f in r.formats)
    bad = ing.quarantined or r.unclassified or r.unreadable
    return display.card(
        f"Import of {r.source}",
        rows,
        status="warn" if bad else "ok",
        subtitle=kinds,
        notes=[*(f"note: {n}" for n in r.notices), *(f"problem: {p}" for p in problems)],
        extra_html=mapping,
    )


def _wrap(parts: list[str], width: int = 96, indent: str = "    ") -> str:
    out, line = [], indent
    for p in parts:
        piece = p if line == indent else ", " + p
        if len(line) + len(piece) > width and line != indent:
            out.append(line + ",")
            line = indent + p
        else:
            line += piece
    out.append(line)
    return "\n".join(out)


@dataclass
class Stats:
    """What the mappers count while they run (turned into an :class:`ImportReport`)."""

    objects: int = 0
    mapped_objects: int = 0
    repeats: int = 0
    events: int = 0
    mapped: Counter = field(default_factory=Counter)
    derived: Counter = field(default_factory=Counter)
    metadata_only: Counter = field(default_factory=Counter)
    null_required: Counter = field(default_factory=Counter)
    classified_by: Counter = field(default_factory=Counter)
    timestamp_from: Counter = field(default_factory=Counter)
    unclassified: list = field(default_factory=list)
    unreadable: list = field(default_factory=list)
    notices: list = field(default_factory=list)

    def report(self, source, files, ignored, ingests: list[IngestReport]) -> ImportReport:
        def ordered(c: Counter):
            return tuple(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))

        return ImportReport(
            source=source,
            files=tuple(files),
            objects=self.objects,
            mapped_objects=self.mapped_objects,
            repeats=self.repeats,
            mapped=tuple((a, b, n) for (a, b), n in sorted(self.mapped.items())),
            derived=tuple(sorted(self.derived.items())),
            metadata_only=ordered(self.metadata_only),
            null_required=ordered(self.null_required),
            classified_by=ordered(self.classified_by),
            timestamp_from=ordered(self.timestamp_from),
            unclassified=tuple(self.unclassified),
            unreadable=tuple(self.unreadable),
            notices=tuple(self.notices),
            ignored_files=tuple(ignored),
            ingest=combine(ingests, source),
            events_sent=self.events,
            ingests=tuple(ingests),
        )


def combine(reports: list[IngestReport], source: str) -> IngestReport:
    """One ingest report adding up several (the first one's id and seq range)."""
    if len(reports) == 1:
        return reports[0]
    reasons: Counter = Counter()
    for r in reports:
        reasons.update(dict(r.reasons))
    stored = [r for r in reports if r.stored]
    return IngestReport(
        received=sum(r.received for r in reports),
        stored=sum(r.stored for r in reports),
        duplicates=sum(r.duplicates for r in reports),
        quarantined=sum(r.quarantined for r in reports),
        reasons=tuple(reasons.most_common()),
        first_seq=stored[0].first_seq if stored else None,
        last_seq=stored[-1].last_seq if stored else None,
        ingest_id=reports[0].ingest_id,
        source=source,
        seconds=sum(r.seconds for r in reports),
    )
