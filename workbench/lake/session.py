"""A Session on Spark SQL over a Parquet lake (see ``workbench.lake.connect``).

The same door as a store's Session: the relations ``events``, ``lead_summary``,
``steps``, ``entities`` and ``flows`` as views masked by role (Spark SQL expressions,
``lake.masking``), raw only during an unmask grant; the same rights, grants and audit
trail; user SQL parsed (sqlglot, Spark dialect) and refused unless it is one read of
those relations. The analyses run on it unchanged: they ask ``session.dialect`` how to
spell the few constructs the engines differ on (``analysis.portable``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import re
import threading
import uuid
import warnings
import weakref
from pathlib import Path

import pandas as pd

from ..access import masking as py_masking
from ..access import search
from ..access.audit import AuditTrail, Vocabulary, mask_params, mask_sql_text, placeholder
from ..access.columns import column_kind
from ..access.config import (
    AccessConfig,
    QueryError,
    RelationNotAllowedError,
    Role,
    SessionClosedError,
)
from ..access.session import Session, _call, _lead_ids, _Masked
from ..errors import ReadOnlyViolation
from ..store.lake import JSON_KEY, LAKE_TABLES, MANIFEST
from ..store.queries import decode
from ..store.schema import PARTITION_COLUMN, PUBLIC_COLUMNS
from ..timeutil import as_utc, utc_iso
from . import masking
from .sparksql import (
    DATED,
    LAKE_RELATIONS,
    checked_spark_sql,
    date_pruned,
    inspect_spark_sql,
    spark_params,
)

__all__ = ["LakeSession", "LAKE_RELATIONS", "checked_spark_sql", "inspect_spark_sql"]

_ids = itertools.count(1)


def _arg(v):
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime()
    if isinstance(v, dt.datetime) and v.tzinfo is None:
        v = v.replace(tzinfo=dt.UTC)
    if isinstance(v, tuple | set | frozenset):
        v = list(v)
    return v


class _Views:
    """The lake's relations in one Spark session: raw DataFrames (never named, so no SQL
    reaches them) and the views SQL reads by bare name, masked or raw."""

    def __init__(self, spark, lake: Path):
        self.spark = spark
        self.lake = lake
        self.manifest_path = lake / MANIFEST
        self.version = None
        self.mode = None
        self.kinds: dict[str, dict] = {}
        self.safe_names: list[str] = []
        self.keys: dict[str, str] = {}
        self.raw: dict = {}
        self.masked: dict = {}
        self.raw_dated = self.masked_dated = None

    def _manifest(self) -> dict:
        try:
            return json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            raise QueryError(
                f"{self.lake} is no workbench lake (no {MANIFEST}); write one with "
                "`workbench lake export LAKE --store STORE`"
            ) from None

    def current(self, masked: bool) -> None:
        """Rebuild the views when an export added to the lake; point the bare names at
        the masked or the raw views."""
        m = self._manifest()
        version = (len(m.get("exports", ())), tuple(sorted(py_masking.catalog.FIELD_TYPES.items())))
        if version != self.version:
            self._build(m)
            self.version = version
            self.mode = None
        mode = "masked" if masked else "raw"
        if mode != self.mode:
            for name, df in (self.masked if masked else self.raw).items():
                df.createOrReplaceTempView(name)
            (self.masked_dated if masked else self.raw_dated).createOrReplaceTempView(DATED)
            self.mode = mode

    def _build(self, manifest: dict) -> None:
        from pyspark.sql import functions as F

        spark, lake = self.spark, self.lake
        events_dir = lake / "events"
        schema = _events_schema()
        # the files the manifest lists, not whatever lies in the folder: a file put there
        # by hand was never read for the keys its documents use, so could not be masked
        files = [f for export in manifest.get("exports", ()) for f in self._files(export)]
        if files:
            # the schema given, so no file is opened until a query reads it (a lake of
            # many days is not scanned for its footers at connect)
            events = spark.read.schema(schema).option("basePath", str(events_dir)).parquet(*files)
        else:  # an export of an empty store: the relation, with no rows
            events = spark.createDataFrame([], schema)
        raw = {"events": events.select(*[F.col(f"`{c}`") for c in PUBLIC_COLUMNS])}
        for name in LAKE_TABLES:
            raw[name] = spark.read.parquet(str(lake / name / f"{name}.parquet"))
        self.raw = raw
        self.kinds = {
            name: {f.name: column_kind(name, f.name, _sql_type(name, f)) for f in df.schema.fields}
            for name, df in raw.items()
        }
        self.keys = masking.key_types(self._known(manifest, "json_keys", self._json_keys))
        self.safe_names = self._safe_names(self._known(manifest, "names", self._names))
        self.masked = {
            name: df.select(
                *[
                    masking.column_expr(c, self.kinds[name][c], self.keys, self.safe_names)
                    for c in df.columns
                ]
            )
            for name, df in raw.items()
        }
        # the events with their partition column, read (masked alike) where a query
        # bounds the time, so Spark opens only the days' folders (see date_pruned)
        dated_cols = [*PUBLIC_COLUMNS, PARTITION_COLUMN]
        self.raw_dated = events.select(*[F.col(f"`{c}`") for c in dated_cols])
        self.masked_dated = events.select(
            *[
                masking.column_expr(c, self.kinds["events"][c], self.keys, self.safe_names)
                for c in PUBLIC_COLUMNS
            ],
            F.col(PARTITION_COLUMN),
        )

    def _known(self, manifest: dict, field: str, scan) -> set[str]:
        """What each export listed in the manifest under ``field``; an export that did not
        list it (a lake written before exports did) has its files read for it."""
        found: set[str] = set()
        unlisted: list[str] = []
        for export in manifest.get("exports", ()):
            if isinstance(export.get(field), list):
                found.update(v for v in export[field] if isinstance(v, str))
            else:
                unlisted += self._files(export)
        if unlisted:
            ev = self.spark.read.option("basePath", str(self.lake / "events")).parquet(*unlisted)
            found |= scan(ev)
        return found

    def _files(self, export: dict) -> list[str]:
        """The event files one manifest entry lists that are in the lake's events folder."""
        return [
            str(self.lake / f)
            for f in export.get("files", ())
            if isinstance(f, str)
            and f.startswith("events/")
            and ".." not in Path(f).parts
            and (self.lake / f).is_file()
        ]

    @staticmethod
    def _json_keys(ev) -> set[str]:
        """Every key the documents of ``ev`` use (every event is read)."""
        from pyspark.sql import functions as F

        pattern = F.lit(JSON_KEY)
        keys = ev.select(
            F.explode(
                F.array_distinct(
                    F.concat(
                        F.coalesce(F.regexp_extract_all("metadata", pattern, 1), F.array()),
                        F.coalesce(F.regexp_extract_all("lead_snapshot", pattern, 1), F.array()),
                    )
                )
            ).alias("k")
        ).distinct()
        return {r.k for r in keys.collect()}

    @staticmethod
    def _names(ev) -> set[str]:
        from pyspark.sql import functions as F

        names = ev.select(
            F.explode(F.array("step_name", "entity_name", "feedback_type")).alias("n")
        ).distinct()
        return {r.n for r in names.collect() if r.n is not None}

    def _safe_names(self, of_events: set[str]) -> list[str]:
        """The names masking shows as they are: those of the dimension tables and of the
        events (as the export listed them) that hold nothing personal."""
        names = set(of_events)
        for name in ("steps", "entities", "flows"):
            if "name" in self.raw[name].columns:
                names |= {r[0] for r in self.raw[name].select("name").distinct().collect()}
        return sorted(n for n in names if isinstance(n, str) and py_masking.mask_free_text(n) == n)[
            :5000
        ]

    def vocabulary(self) -> Vocabulary:
        from pyspark.sql import functions as F

        words = set(LAKE_RELATIONS) | set(self.safe_names)
        for cols in self.kinds.values():
            words.update(cols)
        words.update(k for k in self.keys if py_masking.mask_free_text(k) == k)
        ids: set[str] = set()
        for name, col in (("flows", "flow_id"), ("entities", "entity_id"), ("steps", "step_id")):
            if col in self.raw[name].columns:
                ids |= {r[0] for r in self.raw[name].select(col).collect() if r[0]}
        span = (
            self.raw["lead_summary"]
            .select(F.min(F.to_date("first_seen")), F.max(F.to_date("last_seen")))
            .collect()[0]
            if {"first_seen", "last_seen"} <= set(self.raw["lead_summary"].columns)
            else (None, None)
        )
        return Vocabulary(
            words=frozenset(w.casefold() for w in words if isinstance(w, str)),
            ids=frozenset(ids),
            period=(span[0], span[1]) if span[0] is not None else None,
            exists=self.ids_that_exist,
        )

    def ids_that_exist(self, ids) -> set[str]:
        from pyspark.sql import functions as F

        leads = [i for i in ids if i.startswith("lead_")]
        events = [i for i in ids if i.startswith("evt_")]
        found: set[str] = set()
        if leads:
            df = self.raw["lead_summary"].where(F.col("lead_id").isin(leads)).select("lead_id")
            found |= {r[0] for r in df.collect()}
        if events:
            df = self.raw["events"].where(F.col("event_id").isin(events)).select("event_id")
            found |= {r[0] for r in df.collect()}
        return found


def _sql_type(relation: str, field) -> str:
    if relation == "events" and field.name in ("metadata", "lead_snapshot"):
        return "JSON"
    return "VARCHAR" if field.dataType.typeName() == "string" else field.dataType.simpleString()


def _events_schema():
    """The lake's events as Spark reads them: the store's columns, then the partition's."""
    from pyspark.sql import types as T

    from ..store.schema import arrow_type

    out = []
    for c in PUBLIC_COLUMNS:
        at = str(arrow_type(c))
        t = (
            T.LongType()
            if at == "int64"
            else T.IntegerType()
            if at == "int32"
            else T.DoubleType()
            if at == "double"
            else T.TimestampType()
            if at.startswith("timestamp")
            else T.StringType()
        )
        out.append(T.StructField(c, t))
    out.append(T.StructField(PARTITION_COLUMN, T.DateType()))
    return T.StructType(out)


def to_pandas(df) -> pd.DataFrame:
    """A Spark result as the DuckDB session returns it: times as UTC instants."""
    with warnings.catch_warnings():
        # PySpark warns on every result under pandas 3; the results are checked equal
        # to DuckDB's (tests/test_lake_spark.py), so an analyst need not read it each time
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
        out = df.toPandas()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]) and out[col].dt.tz is None:
            out[col] = out[col].dt.tz_localize("UTC")
    return out


def _release(views, trail, spark) -> None:
    if views is not None:
        for name in (*LAKE_RELATIONS, DATED):
            with contextlib.suppress(Exception):
                views.spark.catalog.dropTempView(name)
    if trail is not None:
        trail.close()
    if spark is not None:
        with contextlib.suppress(Exception):
            spark.stop()


class LakeSession(Session):
    """A user's reads of a lake on Spark, in one role (see ``workbench.lake.connect``).

    Reads, grants and the audit trail work as in a store's :class:`Session`; ``sql()``
    takes Spark SQL (the analyses' ``$name`` parameters are taken too)."""

    dialect = "spark"

    def __init__(
        self,
        lake: Path,
        spark,
        *,
        user: str,
        role: Role,
        config: AccessConfig,
        trail: AuditTrail,
        owns_trail: bool = True,
        owns_spark: bool = False,
        client: str | None = None,
    ):
        self.user = user
        self.role = role.name
        self._role = role
        self._config = config
        self._store = None
        self._trail = trail
        self._lake = lake
        self._lock = threading.RLock()
        self.id = f"{os.getpid()}-lake{next(_ids)}-{uuid.uuid4().hex[:6]}"
        self._grant = None
        self._grant_purpose = None
        self._clock = lambda: dt.datetime.now(dt.UTC)
        self.spark = spark
        self._views = _Views(spark, lake)
        self._vocabulary = Vocabulary(load=self._views.vocabulary)
        self._finalizer = weakref.finalize(
            self,
            _release,
            self._views,
            trail if owns_trail else None,
            spark if owns_spark else None,
        )
        try:
            self._views.current(masked=True)
            via = f" via {client}" if client else ""
            self._record("connect", detail=f"{self._store_label()} as {self.role} on Spark{via}")
        except BaseException:
            self._finalizer()
            raise

    # ------------------------------------------------------------------ basics

    @property
    def relations(self) -> tuple[str, ...]:
        return LAKE_RELATIONS

    @property
    def store(self):
        """None: a lake session reads Parquet files, not a store."""
        return None

    @property
    def lake(self) -> Path:
        return self._lake

    def _store_label(self) -> str:
        return f"lake {self._lake}"

    def _check_open(self) -> None:
        if self.closed:
            raise SessionClosedError("this session is closed; connect() again to read")

    def owned_paths(self) -> set[Path]:
        owned = {self._lake}
        if self._trail.path is not None:
            owned.add(Path(self._trail.path))
        return owned

    def _df(self, query: str, params=None) -> pd.DataFrame:
        q = date_pruned(spark_params(query))
        if params is None:
            df = self.spark.sql(q)
        elif isinstance(params, dict):
            df = self.spark.sql(q, args={k: _arg(v) for k, v in params.items()})
        else:
            df = self.spark.sql(q, args=[_arg(v) for v in params])
        return to_pandas(df)

    def _read(self, action: str, detail, run, *, lead_ids=None, relation=None):
        """Run one read on the current views (masked, or raw during a grant), recorded
        on the trail either way; a Spark error becomes a QueryError, its text masked."""
        from pyspark.errors import PySparkException

        with self._lock:
            self._check_open()
            self._require("read", action)
            masked = self.masked
            self._views.current(masked)
            try:
                df = run()
            except (PySparkException, Exception) as e:
                if isinstance(e, QueryError | RelationNotAllowedError | ReadOnlyViolation):
                    raise
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                text = detail(None) if callable(detail) else detail
                self._record(action, outcome="failed", masked=masked, detail=text)
                raise QueryError(f"{action} failed: {py_masking.mask_free_text(first)}") from None
            if lead_ids is None:
                lead_ids = _lead_ids(df, 100 if masked else 10_000)
            text = detail(df) if callable(detail) else detail
            self._record(action, masked=masked, detail=text, lead_ids=lead_ids, rows=len(df))
            return df

    # ------------------------------------------------------------------ reads

    def sql(self, query: str, params=None) -> pd.DataFrame:
        """Run one read-only Spark SQL query over the session's views; PII masked unless
        a grant is active. Values as ``params``: ``:name`` (or ``$name``) with a dict,
        ``?`` with a list.

        >>> session.sql("SELECT type, count(*) AS n FROM events GROUP BY type")  # doctest: +SKIP
        """
        with self._lock:
            self._check_open()
            detail = mask_sql_text(str(query), self._vocabulary)
            if params is not None:
                detail += f"  params={mask_params(params, self._vocabulary)!r}"
            detail = _Masked(detail)
            self._require("read", "sql")
            self._refuse_invalid_text("sql", detail, query, params)
            if not isinstance(query, str):
                raise QueryError(f"sql() takes the query as text, not {type(query).__name__}")
            try:
                # what runs is what was checked: the parsed query written out again
                text = checked_spark_sql(spark_params(query))
            except (ReadOnlyViolation, QueryError, RelationNotAllowedError):
                self._record("sql", outcome="refused", detail=detail)
                raise
            return self._read("sql", detail, lambda: self._df(text, params))

    def timeline(self, lead_id: str) -> pd.DataFrame:
        """Every event of one lead, in (timestamp, seq) order, metadata as (masked) dicts."""

        def run():
            return decode(
                self._df(
                    "SELECT * FROM events WHERE lead_id = :lead ORDER BY timestamp, seq",
                    {"lead": lead_id},
                )
            )

        def detail(df=None):
            found = df is not None and len(df) > 0
            return _call("timeline", lead_id if found else self._typed(lead_id))

        with self._lock:
            self._refuse_invalid_text("timeline", detail, lead_id)
            return self._read("timeline", detail, run)

    def events(
        self,
        type=None,
        outcome=None,
        lead_id=None,
        entity_id=None,
        flow_id=None,
        since=None,
        until=None,
        limit=None,
    ) -> pd.DataFrame:
        """Events matching every filter given, in (timestamp, seq) order."""
        where, params = [], {}
        for col, value in (("type", type), ("outcome", outcome)):
            if value is None:
                continue
            values = [value] if isinstance(value, str) else list(value)
            ors = []
            for i, v in enumerate(values):
                if not isinstance(v, str):
                    raise ValueError(f"{col}={v!r}: give text, e.g. {col}='recipient.delivered'")
                key = f"{col}{i}"
                if col == "type" and v.endswith(".*"):
                    ors.append(f"type LIKE :{key}")
                    params[key] = v[:-1].replace("%", "\\%").replace("_", "\\_") + "%"
                else:
                    ors.append(f"{col} = :{key}")
                    params[key] = v
            where.append("(" + " OR ".join(ors or ["false"]) + ")")
        for col, value in (("lead_id", lead_id), ("entity_id", entity_id), ("flow_id", flow_id)):
            if value is not None:
                where.append(f"{col} = :{col}")
                params[col] = value
        if since is not None:
            where.append("timestamp >= :since")
            params["since"] = as_utc(since, "since")
        if until is not None:
            where.append("timestamp < :until")
            params["until"] = as_utc(until, "until")
        q = "SELECT * FROM events" + (" WHERE " + " AND ".join(where) if where else "")
        q += " ORDER BY timestamp, seq"
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise ValueError(f"limit must be a whole number >= 0, got {limit!r}")
            q += f" LIMIT {int(limit)}"

        def detail(df=None):
            found = df is not None and len(df) > 0
            return _call(
                "events",
                type=self._typed(type),
                outcome=self._typed(outcome),
                lead_id=lead_id if found or lead_id is None else self._typed(lead_id),
                entity_id=self._typed(entity_id),
                flow_id=self._typed(flow_id),
                since=None if since is None else self._typed(utc_iso(as_utc(since, "since"))),
                until=None if until is None else self._typed(utc_iso(as_utc(until, "until"))),
                limit=limit,
            )

        with self._lock:
            self._refuse_invalid_text("events", detail, type, outcome, lead_id, entity_id, flow_id)
            return self._read("events", detail, lambda: decode(self._df(q, params)))

    def lead_summary(self, lead_id: str | None = None) -> pd.DataFrame:
        """The per-lead summary (source, stage reached, outcome, cost, revenue)."""
        if lead_id is None:
            q, params = "SELECT * FROM lead_summary ORDER BY first_seen, lead_id", None
        else:
            q, params = "SELECT * FROM lead_summary WHERE lead_id = :lead", {"lead": lead_id}

        def detail(df=None):
            found = df is not None and len(df) > 0
            return _call("lead_summary", lead_id if found else self._typed(lead_id))

        with self._lock:
            self._refuse_invalid_text("lead_summary", detail, lead_id)
            return self._read("lead_summary", detail, lambda: self._df(q, params))

    def quarantined(self, limit=None):
        """The lake holds no quarantine: read it on the store the lake was exported from."""
        raise QueryError(
            "a lake holds the stored events only; the quarantine stays in the store: "
            "connect(store_path, ...).quarantined()"
        )

    def export(self, path, *, format: str | None = None) -> int:
        """Write the events this session sees (masked unless a grant is active) as a
        folder of Parquet (or JSON lines) files written by Spark; returns the count."""
        p = Path(path)
        fmt = format or ("jsonl" if p.suffix.lower() in (".jsonl", ".json") else "parquet")
        if fmt not in ("parquet", "jsonl"):
            raise ValueError(f"format={fmt!r}: use 'parquet' or 'jsonl'")
        with self._lock:
            self._check_open()
            self._require("export", "export")
            real = p.resolve()
            if any(real == o.resolve() or o.resolve() in real.parents for o in self.owned_paths()):
                self._record("export", outcome="refused", detail=f"export to {p}: inside the lake")
                raise PermissionError(f"{p} is inside the lake or its audit trail; write elsewhere")
            if p.exists():
                raise FileExistsError(f"{p} exists; give a new path")

            def run():
                df = self.spark.sql("SELECT * FROM events ORDER BY seq")
                (df.write.parquet if fmt == "parquet" else df.write.json)(str(p))
                return pd.DataFrame(index=range(df.count()))

            return len(self._read("export", f"export to {p} ({fmt})", run, lead_ids=[]))

    def _search(self, typed: dict) -> set[str]:
        """As a store's Session searches, over the lake's raw events (never named in SQL)."""
        self._views.current(self.masked)
        found: set[str] | None = None
        for ft, norm in typed.values():
            leads = self._leads_with(ft, norm)
            found = leads if found is None else found & leads
        return found or set()

    def _leads_with(self, ft, norm: str) -> set[str]:
        from pyspark.sql import functions as F

        token = search.search_token(ft, norm).lower()
        ev = self._views.raw["events"]
        rows = (
            ev.where(
                F.lower(F.col("lead_snapshot")).contains(token)
                | F.lower(F.col("metadata")).contains(token)
            )
            .select("lead_id", "lead_snapshot", "metadata")
            .collect()
        )
        hits = set()
        for lead_id, snapshot, metadata in rows:
            if lead_id not in hits and any(
                t and search.document_has(t, ft, norm) for t in (snapshot, metadata)
            ):
                hits.add(lead_id)
        return hits

    def leads_where(self, field: str, value) -> list[str]:
        """The leads whose submitted data has the non-personal ``field`` equal to ``value``."""
        from pyspark.sql import functions as F

        path, text = search.lead_field_value(field, value)
        with self._lock:
            self._check_open()
            self._require("read", "leads_where")
            self._views.current(self.masked)
            ev = self._views.raw["events"]
            rows = (
                ev.where(
                    (F.col("type") == "source.submitted")
                    & (F.get_json_object("lead_snapshot", _spark_path(path)) == text)
                )
                .select("lead_id")
                .distinct()
                .collect()
            )
            result = sorted(r[0] for r in rows)
            label = field if self._vocabulary.keeps(field) else placeholder(field)
            shown = text if self._vocabulary.keeps(text) else placeholder(text)
            self._record("leads_where", detail=f"leads_where({label}={shown!r})", rows=len(result))
            return result


def _spark_path(path: str) -> str:
    """A DuckDB JSON path (``$."phone.valid"``) as Spark's (``$['phone.valid']``)."""
    m = re.fullmatch(r'\$\."((?:[^"]|"")*)"', path)
    return f"$['{m.group(1)}']" if m else path
