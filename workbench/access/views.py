"""A session's relations as views, twice: raw (read during a grant, and by the few reads
whose rows Python masks itself) and masked (what a masked role's SQL reads).

Each column of a relation is masked by its kind (``columns.column_kind``): JSON by its
keys, a PII-typed column by its type, free text and names of things by the shape of
their values, identifiers not at all. The masking runs as Arrow functions registered
on the session's masked cursor, called only for the rows a regex says may need it.
The views are rebuilt when the store's tiers move or a PII field is declared.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
from duckdb.sqltypes import VARCHAR, DuckDBPyType

from .. import catalog
from ..store import EventStore
from ..store.connection import Connection
from ..store.schema import snapshot_join
from . import columns, masking
from .audit import Vocabulary
from .config import QueryError
from .sandbox import Sandbox

__all__ = ["MaskedViews", "SESSION_RELATIONS"]

#: The relations a Session's SQL may read, each a masked view (or raw during a grant).
#: A new table of the store becomes readable by adding its name here (its text columns
#: are masked until ``masking.PLAIN_COLUMNS`` says otherwise).
SESSION_RELATIONS = (
    "events",
    "lead_summary",
    "steps",
    "entities",
    "flows",
    "incidents",
    "quarantine",
)

_JSON_ARROW = pa.json_(pa.string())
# The masking functions, one instance each (their caches are shared by all sessions).
_JSON_MASKER = columns.Masker(masking.mask_json_text)
_TEXT_MASKER = columns.Masker(masking.mask_free_text)
_RAW_MASKER = columns.Masker(masking.mask_raw_text)


class MaskedViews:
    """The raw and masked views of one session, on its two cursors."""

    def __init__(self, store: EventStore, tag: str):
        self._store = store
        self.masked: Connection = store.cursor()
        self.raw: Connection = store.cursor()
        self.db = self.raw.val("SELECT current_database()")
        for con in (self.masked, self.raw):
            # a bare name never reads a pandas frame or Arrow table of the caller's frames
            con.run("SET python_enable_replacements = false")
        self.sandbox = Sandbox()
        self.kinds: dict[str, dict] = {}
        self.safe_names: list[str] = []
        self.fn = {
            "json": f"_wb_mask_json_{tag}",
            "text": f"_wb_mask_text_{tag}",
            "raw": f"_wb_mask_raw_{tag}",
            "field": f"_wb_mask_field_{tag}",
        }
        self._version = None
        self._register_functions()

    def _register_functions(self) -> None:
        con = self.masked.raw
        functions = (
            (self.fn["json"], lambda a: _JSON_MASKER.arrow(a, _JSON_ARROW), DuckDBPyType("JSON")),
            (self.fn["text"], lambda a: _TEXT_MASKER.arrow(a), VARCHAR),
            (self.fn["raw"], lambda a: _RAW_MASKER.arrow(a), VARCHAR),
        )
        for name, fn, returns in functions:
            con.create_function(name, fn, [VARCHAR], returns, type="arrow", side_effects=False)
        con.create_function(
            self.fn["field"],
            columns.mask_field_arrow,
            [VARCHAR, VARCHAR],
            VARCHAR,
            type="arrow",
            side_effects=False,
        )

    def current(self) -> None:
        """Rebuild the views if the tiers moved or a PII field was declared since."""
        version = (self._store._tier_version, tuple(sorted(catalog.FIELD_TYPES.items())))
        if version != self._version:
            self._build()
            self._version = version

    def sources(self, con: Connection) -> dict[str, str]:
        """The raw SELECT of each relation, for queries on ``con``."""
        store, db = self._store, self.db
        out = {name: f'SELECT * FROM "{db}".main.{name}' for name in SESSION_RELATIONS}
        out["events"] = store.events_source(con)
        out["lead_summary"] = store.lead_summary_source(con)
        return out

    def _build(self) -> None:
        raw, masked = self.raw, self.masked
        for name, src in self.sources(raw).items():
            raw.run(f"CREATE OR REPLACE TEMP VIEW {name} AS {src}")
        # the names (of steps, entities, buyers...) that masking leaves as they are: a
        # name column shows them at the cost of a hash lookup, not a regex per row; a
        # name that is not listed takes the regex (and the masking function) as before
        db = self.db
        names = raw.rows(
            f"""
            SELECT DISTINCT n FROM (
                SELECT name AS n FROM "{db}".main.steps
                UNION ALL SELECT name FROM "{db}".main.entities
                UNION ALL SELECT name FROM "{db}".main.flows
                UNION ALL SELECT unnest(list(DISTINCT step_name)) FROM "{db}".main.events
                UNION ALL SELECT unnest(list(DISTINCT entity_name)) FROM "{db}".main.events
                UNION ALL SELECT unnest(list(DISTINCT feedback_type)) FROM "{db}".main.events
            ) WHERE n IS NOT NULL LIMIT 20000
            """
        )
        self.safe_names = sorted(
            n for (n,) in names if isinstance(n, str) and masking.mask_free_text(n) == n
        )[:5000]
        shapes = {}
        for name, src in self.sources(masked).items():
            described = raw.rows(f"DESCRIBE SELECT * FROM {name}")
            self.kinds[name] = {c[0]: columns.column_kind(name, c[0], c[1]) for c in described}
            if name == "events":
                view = self._masked_events()
            else:
                exprs = ", ".join(self.masked_expr(c, k) for c, k in self.kinds[name].items())
                view = f"SELECT {exprs} FROM ({src})"
            masked.run(f"CREATE OR REPLACE TEMP VIEW {name} AS {view}")
            shapes[name] = [(c[0], c[1]) for c in masked.rows(f"DESCRIBE SELECT * FROM {name}")]
        self.sandbox.load(shapes)

    def vocabulary(self) -> Vocabulary:
        """The words of this store a person may type into a read that name no person (for
        the audit trail, see ``audit.Vocabulary``): the relations and their columns, the
        names of steps, entities and flows, the ids of flows, entities, steps, incidents
        and runs, the keys of its documents, the days its events span; and a look-up of
        the lead and event ids that exist."""
        self.current()
        raw, db = self.raw, self.db
        words = set(SESSION_RELATIONS) | set(self.safe_names)
        for cols in self.kinds.values():
            words.update(cols)
        (flows, entities, steps), *_ = raw.rows(
            "SELECT list(DISTINCT flow_id), list(DISTINCT entity_id), list(DISTINCT step_id) "
            "FROM events"
        )
        ids = {*(flows or ()), *(entities or ()), *(steps or ())}
        ids.update(
            r[0]
            for r in raw.rows(
                f'SELECT flow_id FROM "{db}".main.flows '
                f'UNION ALL SELECT entity_id FROM "{db}".main.entities '
                f'UNION ALL SELECT step_id FROM "{db}".main.steps '
                f'UNION ALL SELECT incident_id FROM "{db}".main.incidents '
                f'UNION ALL SELECT run_id FROM "{db}".main.incidents'
            )
        )
        # the keys documents use (of the first events: keys are few and repeat)
        keys = raw.rows(
            "SELECT DISTINCT k FROM (SELECT unnest(json_keys(lead_snapshot)) AS k FROM "
            "(SELECT lead_snapshot FROM events LIMIT 1000) UNION ALL SELECT "
            "unnest(json_keys(metadata)) FROM (SELECT metadata FROM events LIMIT 1000))"
        )
        words.update(k for (k,) in keys if isinstance(k, str) and masking.mask_free_text(k) == k)
        first, last = raw.rows(
            f'SELECT min(first_ts)::DATE, max(last_ts)::DATE FROM "{db}".main.lead_summary_parts'
        )[0]
        return Vocabulary(
            words=frozenset(w.casefold() for w in words if isinstance(w, str)),
            ids=frozenset(i for i in ids if isinstance(i, str)),
            period=(first, last) if first is not None and last is not None else None,
            exists=self.ids_that_exist,
        )

    def ids_that_exist(self, ids) -> set[str]:
        """Those of ``ids`` (lead and event ids) that the store holds."""
        leads = [i for i in ids if i.startswith("lead_")]
        events = [i for i in ids if i.startswith("evt_")]
        found: set[str] = set()
        if leads:
            marks = ", ".join("?" * len(leads))
            found.update(
                r[0]
                for r in self.raw.rows(
                    f'SELECT DISTINCT lead_id FROM "{self.db}".main.lead_summary_parts '
                    f"WHERE lead_id IN ({marks})",
                    leads,
                )
            )
        if events:
            marks = ", ".join("?" * len(events))
            found.update(
                r[0]
                for r in self.raw.rows(
                    f"SELECT event_id FROM events WHERE event_id IN ({marks})", events
                )
            )
        return found

    def _masked_events(self) -> str:
        """The masked ``events``: every column masked, then the lead snapshot joined on
        top and masked there. With the join above the masking, DuckDB drops it from every
        query that does not read ``lead_snapshot`` (below, the masking's lookups of known
        names keep it from seeing that nothing uses the snapshot)."""
        kinds = self.kinds["events"]
        apart = self._store.events_source(self.masked, apart=True)
        inner = ", ".join(
            [self.masked_expr(c, k) for c, k in kinds.items() if c != "lead_snapshot"]
            + ["_snapshot_id", "_inline_snapshot"]
        )
        joined, snapshot = snapshot_join(self.db, f"SELECT {inner} FROM ({apart})")
        outer = ", ".join(
            self.masked_expr(c, k, value=snapshot)
            if c == "lead_snapshot"
            else "m." + '"' + c.replace('"', '""') + '"'
            for c, k in kinds.items()
        )
        return f"SELECT {outer} FROM {joined}"

    def masked_expr(
        self, column: str, kind: tuple[str, str | None], value: str | None = None
    ) -> str:
        """The masked SQL form of one column of the given kind (see ``column_kind``).

        Text is masked by a Python function only where a regex says masking may change it
        (one regex for every text column, ``masking.needs_work_re2``, so a name of a thing
        and a reason are masked alike, and as the rows Python masks), so a column of plain
        reasons costs a regex per row, not a Python call."""
        name = '"' + column.replace('"', '""') + '"'
        col = value or name  # what is masked: the column, or an expression for it
        what, label = kind
        needs = masking.needs_work_re2().replace("'", "''")
        if what == "json":
            return f"{self.fn['json']}({col}) AS {name}"
        if what == "raw":
            return f"{self.fn['raw']}({col}) AS {name}"
        if what == "field":
            return f"{self.fn['field']}('{label}', CAST({col} AS VARCHAR)) AS {name}"
        if what == "shape":
            known = ""
            if self.safe_names:
                listed = ", ".join("'" + n.replace("'", "''") + "'" for n in self.safe_names)
                known = f"WHEN {col} IN ({listed}) THEN {col} "
            return (
                f"CASE {known}WHEN regexp_matches({col}, '{needs}') "
                f"THEN {self.fn['text']}({col}) ELSE {col} END AS {name}"
            )
        if what == "text":
            return (
                f"CASE WHEN regexp_matches({col}, '{needs}') THEN {self.fn['text']}({col}) "
                f"ELSE {col} END AS {name}"
            )
        return col if value is None else f"{col} AS {name}"

    def mask_rows(self, relation: str, df: pd.DataFrame) -> pd.DataFrame:
        """Mask a frame read from the raw view ``relation`` exactly as its masked view
        would (used where Python must decode the rows anyway: timeline, events)."""
        kinds = self.kinds[relation]
        try:
            for col in df.columns:
                what, label = kinds.get(col, ("text", None))
                if what != "plain":
                    df[col] = pd.Series(
                        columns.mask_column(df[col], what, label),
                        index=df.index,
                        name=col,
                        dtype=object,
                    )
        except Exception:  # never a message that could quote a value
            raise QueryError(f"masking the {relation} rows failed") from None
        return df
