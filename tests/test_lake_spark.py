"""Sessions on Spark over the lake: every analysis, alert, diagnosis, BubbleUp and the
Dashboard give on Spark (local mode) what they give on DuckDB over the store; masking,
grants, the audit trail and the SQL check hold there too.

Spark needs Java 17 and the ``spark`` extra. Without them these tests are skipped, unless
WORKBENCH_REQUIRE_SPARK=1 (CI sets it), where their absence fails the run.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench.access import NotPermittedError, QueryError, RelationNotAllowedError
from workbench.analysis import alerts, analytics, investigate
from workbench.analysis.bubbleup import bubbleup
from workbench.errors import ReadOnlyViolation
from workbench.sim import simulate

END = "2026-11-27T12:00:00Z"


def _spark_ready() -> str | None:
    try:
        import pyspark  # noqa: F401
        import sqlglot  # noqa: F401
    except ImportError:
        return "pyspark or sqlglot is not installed (pip install -e '.[spark]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java (apt-get install openjdk-17-jre-headless)"
    return None


_why = _spark_ready()
if _why is not None:
    if os.environ.get("WORKBENCH_REQUIRE_SPARK") == "1":
        raise RuntimeError(f"WORKBENCH_REQUIRE_SPARK=1 but Spark cannot run: {_why}")
    pytest.skip(_why, allow_module_level=True)

from workbench import lake as wlake  # noqa: E402


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """One simulated store (its oldest day archived warm) and its lake, with a DuckDB
    session on the store and a Spark session on the lake, both masked (ana, analyst)."""
    root = tmp_path_factory.mktemp("lakespark")
    path = root / "run.duckdb"
    with workbench.open_store(path) as s:
        simulate(leads=1500, days=3, end=END, seed=11, store=s)
        s.archive(older_than="2 days", now=END, tier="warm")
        s.export_lake(root / "lake", progress=False)
    duck = workbench.connect(path, user="ana", role="analyst")
    spark = wlake.connect(root / "lake", user="ana", role="analyst")
    yield duck, spark, root
    duck.close()
    spark.close()


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    """A frame as compared: rows in a canonical order, index dropped."""
    df = df.reset_index(drop=True)
    if df.empty:
        return df
    key = pd.Series(["\x1f".join(map(str, row)) for row in df.itertuples(index=False)])
    return df.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)


def assert_same(duck, spark, what: str) -> None:
    if isinstance(duck, pd.DataFrame):
        assert isinstance(spark, pd.DataFrame), what
        assert list(duck.columns) == list(spark.columns), what
        assert len(duck) == len(spark), f"{what}: {len(duck)} rows on DuckDB, {len(spark)} on Spark"
        a, b = _frame(_rounded(duck)), _frame(_rounded(spark))
        for col in a.columns:
            x, y = a[col], b[col]
            if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
                np.testing.assert_allclose(
                    x.astype(float).to_numpy(),
                    y.astype(float).to_numpy(),
                    rtol=1e-9,
                    equal_nan=True,
                    err_msg=f"{what}: column {col}",
                )
            else:
                assert _texts(x) == _texts(y), f"{what}: column {col}"
        return
    assert str(duck) == str(spark), what


def _rounded(df):
    # floats are sorted on by their text: the 1e-9 tolerance is checked column by column
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(6)
    return out


def _texts(s: pd.Series) -> list[str]:
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in s]


ANALYSES = [n for n in analytics.__all__ if callable(getattr(analytics, n))]


@pytest.mark.parametrize("name", ANALYSES)
def test_every_analysis_gives_on_spark_what_it_gives_on_duckdb(pair, name):
    duck, spark, _ = pair
    fn = getattr(analytics, name)
    assert_same(fn(duck), fn(spark), name)


def test_analyses_with_a_window_and_a_time_zone_agree(pair):
    duck, spark, _ = pair
    w = dict(since="2026-11-25T06:00:00Z", until="2026-11-26T18:00:00Z")
    for fn in (analytics.success_rates, analytics.rejection_analysis, analytics.lead_paths):
        assert_same(fn(duck, **w), fn(spark, **w), fn.__name__)
    for basis in ("event", "submission"):
        assert_same(
            analytics.source_performance(duck, basis=basis, **w),
            analytics.source_performance(spark, basis=basis, **w),
            f"source_performance by {basis}",
        )
        assert_same(
            analytics.funnel_by_source(duck, basis=basis),
            analytics.funnel_by_source(spark, basis=basis),
            f"funnel_by_source by {basis}",
        )
    assert_same(
        analytics.buyer_acceptance_by_hour(duck, tz="America/Chicago"),
        analytics.buyer_acceptance_by_hour(spark, tz="America/Chicago"),
        "by hour, Chicago",
    )


def test_alerts_explain_and_bubbleup_agree(pair):
    duck, spark, _ = pair
    assert_same(alerts.evaluate(duck), alerts.evaluate(spark), "alerts.evaluate")
    assert str(alerts.alerts(duck)) == str(alerts.alerts(spark))
    leads = duck.sql("SELECT lead_id FROM lead_summary ORDER BY outcome, lead_id").lead_id.tolist()[
        ::150
    ]
    for lead in leads:
        assert str(investigate.explain(duck, lead)) == str(investigate.explain(spark, lead))
    assert_same(
        bubbleup(duck, "outcome = 'rejected'"), bubbleup(spark, "outcome = 'rejected'"), "bubbleup"
    )


def test_the_dashboard_shows_the_same_on_spark(pair):
    from workbench.widgets import Dashboard

    duck, spark, _ = pair
    a, b = Dashboard(duck), Dashboard(spark)
    assert a.tiles.value == b.tiles.value and a.period.value == b.period.value
    for fig in ("funnel", "rejections", "heatmap"):
        assert _traces(getattr(a, fig)) == _traces(getattr(b, fig)), fig
    for table in ("source_table", "buyer_table"):
        ta, tb = getattr(a, table), getattr(b, table)
        assert ta.columns == tb.columns and len(ta.rows) == len(tb.rows) > 0, table
        for ra, rb in zip(ta.rows, tb.rows, strict=True):
            for x, y in zip(ra, rb, strict=True):
                # a money total summed as DOUBLE in another order may round to the other
                # cent when it sits on half a cent: equal within a cent, else equal text
                if x != y:
                    nx, ny = (float(re.sub(r"[$,%]", "", v)) for v in (x, y))
                    assert abs(nx - ny) <= 0.011, (table, ra, rb)


def _traces(fig) -> list[dict]:
    """A figure's traces with arrays as lists (an int16 and an int64 array are equal)."""

    def plain(v):
        if hasattr(v, "tolist"):
            return v.tolist()
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        return v

    return [{k: plain(v) for k, v in t.to_plotly_json().items() if k != "uid"} for t in fig.data]


def test_masked_documents_are_masked_alike_and_hold_no_raw_value(pair):
    duck, spark, _ = pair
    q = "SELECT seq, metadata, lead_snapshot, rejection_reason FROM events WHERE seq % 7 = 0"
    a = duck.sql(q).sort_values("seq").reset_index(drop=True)
    b = spark.sql(q).sort_values("seq").reset_index(drop=True)
    assert len(a) == len(b) > 1000
    for col in ("metadata", "lead_snapshot"):
        pa_ = [None if v is None else json.loads(v) for v in a[col]]
        pb_ = [None if v is None else json.loads(v) for v in b[col]]
        assert pa_ == pb_, col
    assert _texts(a.rejection_reason) == _texts(b.rejection_reason)
    # no email, phone number or name of the raw data shows in what Spark masked
    raw = duck.store.sql(
        "SELECT DISTINCT json_extract_string(lead_snapshot, '$.email') AS email, "
        "json_extract_string(lead_snapshot, '$.phone') AS phone, "
        "json_extract_string(lead_snapshot, '$.last_name') AS last_name "
        "FROM events WHERE type = 'source.submitted' LIMIT 300"
    )
    text = "\n".join(b.metadata.dropna()) + "\n".join(b.lead_snapshot.dropna())
    values = [v for v in [*raw.email, *raw.phone] if isinstance(v, str) and len(v) > 5]
    assert len(values) > 100
    for v in values:
        assert v not in text
    names = [n for n in raw.last_name if isinstance(n, str) and len(n) > 3]
    assert not any(re.search(rf'"{re.escape(n)}"', text) for n in names)


def test_the_spark_masking_follows_the_python_rules_on_hard_documents(pair):
    from pyspark.sql import functions as F

    from workbench.access import masking as py
    from workbench.lake import masking as M

    _, spark, _ = pair
    docs = [
        '{"email":"john.smith@example.com","phone":"(512) 555-1234","ssn":"123-45-6789"}',
        '{"contact":{"first_name":"John","last_name":"Smith"},"note":"call 512-555-1234"}',
        '{"field":"last_name","value":"Smith"}',
        '{"phone":5125551234,"created_at":17000000000000,"n":12}',
        '{"names":["Ann Lee","Bo Diddley"],"ip_address":"203.0.113.9","dob":"1980-01-02"}',
        '{"x":"reason: SSN 123-45-6789, ip 203.0.113.9 and jo@example.com"}',
        "not json: jo@example.com 512-555-1234",
    ]
    keys = M.key_types({k for d in docs for k in re.findall(r'"(\w+)"\s*:', d)})
    df = spark.spark.createDataFrame([(d,) for d in docs], "v string")
    got = [r.m for r in df.select(M.json_doc(F.col("v"), keys).alias("m")).collect()]
    assert got == [py.mask_json_text(d) for d in docs]


def _copy_lake(root, tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(root / "lake", lake, ignore=shutil.ignore_patterns("_workbench_audit*"))
    return lake


def test_a_time_bounded_read_opens_only_the_days_it_bounds(pair, tmp_path):
    # the oldest day's files made unreadable: a read bounded to later days never opens
    # them (Spark prunes the event_date partitions), a read of everything does
    duck, _, root = pair
    lake = _copy_lake(root, tmp_path)
    days = sorted((lake / "events").glob("event_date=*"))
    assert len(days) >= 3
    for f in days[0].glob("*.parquet"):
        f.write_bytes(b"not parquet")
    later = days[1].name.split("=")[1] + "T00:00:00Z"
    w = dict(since=later, until="2026-11-28T00:00:00Z")
    with wlake.connect(lake, user="ana", role="analyst") as s:
        for fn in (analytics.success_rates, analytics.step_durations, analytics.lead_paths):
            assert_same(fn(duck, **w), fn(s, **w), fn.__name__)
        assert_same(
            alerts.evaluate(duck, since=later, until=END),
            alerts.evaluate(s, since=later, until=END),
            "alerts after the first day",
        )
        assert len(s.events(since=later, limit=5)) == 5
        q = "SELECT count(*) AS n FROM events e WHERE e.timestamp BETWEEN $a AND $b"
        assert s.sql(q, {"a": later, "b": END}).n[0] == duck.sql(q, {"a": later, "b": END}).n[0]
        with pytest.raises(QueryError):
            s.sql("SELECT count(*) AS n FROM events")
        with pytest.raises(QueryError):  # the bound is in another table: no pruning
            s.sql(
                "SELECT count(*) AS n FROM events e JOIN lead_summary l USING (lead_id) "
                "WHERE e.timestamp >= l.first_seen"
            )


@pytest.mark.parametrize(
    "bound",
    [
        "timestamp >= '{d}T02:00:00+05:00'",  # 21:00 the day before, in UTC
        "timestamp < '{d}T22:00:00-04:00'",  # 02:00 the day after
        "timestamp BETWEEN '{d}T00:30:00+01:00' AND '{d}T23:59:59-01:00'",
        "'{d}T03:00:00+06:00' > timestamp",
        "timestamp = (SELECT max(timestamp) FROM events)",
    ],
)
def test_a_pruned_read_counts_every_event_of_its_bounds(pair, bound):
    duck, spark, root = pair
    day = sorted((root / "lake" / "events").glob("event_date=*"))[1].name.split("=")[1]
    q = "SELECT count(*) AS n, sum(seq) AS s FROM events WHERE " + bound.format(d=day)
    assert spark.sql(q).iloc[0].tolist() == duck.sql(q).iloc[0].tolist()


def test_a_lake_whose_manifest_lists_no_keys_is_masked_the_same(pair, tmp_path):
    # a lake written before exports listed their keys and names: they are read off
    # the events instead, and the masking is the same
    _, spark, root = pair
    lake = _copy_lake(root, tmp_path)
    path = lake / "_workbench_lake.json"
    manifest = json.loads(path.read_text())
    assert manifest["exports"][0]["json_keys"] and manifest["exports"][0]["names"]
    for e in manifest["exports"]:
        e.pop("json_keys"), e.pop("names")
    path.write_text(json.dumps(manifest))
    q = "SELECT seq, metadata, lead_snapshot, step_name FROM events WHERE seq % 11 = 0"
    with wlake.connect(lake, user="ana", role="analyst") as old:
        assert_same(spark.sql(q), old.sql(q), "masked as from the manifest")


def test_unmask_grants_and_the_audit_trail_work_as_on_a_store(pair):
    _, _, root = pair
    lake = root / "lake"
    with wlake.connect(lake, user="cora", role="compliance") as cora:
        masked = cora.sql(
            "SELECT lead_snapshot FROM events WHERE type = 'source.submitted' LIMIT 1"
        )
        assert "***" in masked.lead_snapshot[0]
        cora.unmask(purpose="ticket 4711: customer asked for their data", minutes=5)
        raw = cora.sql("SELECT lead_snapshot FROM events WHERE type = 'source.submitted' LIMIT 1")
        assert "***" not in raw.lead_snapshot[0] and "@" in raw.lead_snapshot[0]
        email = json.loads(raw.lead_snapshot[0])["email"]
        assert cora.find_leads(email=email)
    with wlake.connect(lake, user="ana", role="analyst") as ana, pytest.raises(NotPermittedError):
        ana.unmask(purpose="ticket 4711: just curious about it", minutes=5)
    with wlake.connect(lake, user="adam", role="admin") as adam:
        trail = adam.audit()
    acts = trail[trail.user == "cora"].action.tolist()
    assert acts[:4] == ["connect", "sql", "unmask", "sql"]
    assert trail[(trail.user == "ana") & (trail.action == "unmask")].outcome.tolist() == ["refused"]
    assert (trail.store.str.startswith("lake ")).all()


@pytest.mark.parametrize(
    "query, error",
    [
        ("DROP VIEW events", ReadOnlyViolation),
        ("INSERT INTO events SELECT * FROM events", ReadOnlyViolation),
        ("SELECT 1; SELECT 2", ReadOnlyViolation),
        ("CACHE TABLE events", ReadOnlyViolation),
        ("SET spark.sql.ansi.enabled = false", ReadOnlyViolation),
        ("SELECT * FROM parquet.`/tmp`", RelationNotAllowedError),
        ("SELECT * FROM global_temp.events", RelationNotAllowedError),
        ("SELECT * FROM some_table", RelationNotAllowedError),
        ("SELECT reflect('java.lang.System', 'getenv', 'HOME')", RelationNotAllowedError),
        ("SELECT input_file_name() FROM events", RelationNotAllowedError),
        ("SELECT * FROM read_files('/tmp')", RelationNotAllowedError),
        # the view a time-bounded read is narrowed to is the session's, not the user's
        ("SELECT * FROM _workbench_events_by_date", RelationNotAllowedError),
        (
            "SELECT count(*) FROM events WHERE timestamp >= reflect('java.lang.System', "
            "'getenv', 'HOME')",
            RelationNotAllowedError,
        ),
    ],
)
def test_user_sql_on_spark_is_one_read_of_the_session_relations(pair, query, error):
    _, spark, _ = pair
    with pytest.raises(error):
        spark.sql(query)


def _no_raw_email(df: pd.DataFrame) -> bool:
    return not any("@" in str(v) and "***" not in str(v) for v in df.to_numpy().ravel())


def test_spark_runs_the_query_the_check_read_not_what_a_comment_hid(pair):
    # Spark's -- comment runs on past a line ending in a backslash; the parser's ends
    # at the line's end (both nest /* */). Each query here, had Spark run its text, would read the
    # lake's raw files or call Java; the session runs the query as the parser read it.
    _, spark, root = pair
    files = (root / "lake" / "events").as_posix()
    raw = (
        "SELECT lead_id -- \\\n, ' AS s\nFROM (SELECT get_json_object(lead_snapshot, "
        f'"$.email") AS lead_id FROM parquet.`{files}`) x -- \' AS s2 -- \\\nFROM events LIMIT 5'
    )
    got = spark.sql(raw)
    assert list(got.columns) == ["lead_id", "s2"] and _no_raw_email(got)
    java = (
        'SELECT 1 AS a -- \\\n, \' AS s\n, reflect("java.lang.System", "getProperty", '
        '"user.name") AS r -- \' AS s2 -- \\\nFROM events LIMIT 2'
    )
    got = spark.sql(java)
    assert list(got.columns) == ["a", "s2"] and got.s2[0].startswith(" AS s\n, reflect(")
    nested = "SELECT seq /* /* */, lead_snapshot AS x */, type AS kind FROM events LIMIT 3"
    assert list(spark.sql(nested).columns) == ["seq", "kind"]


@pytest.mark.parametrize(
    "query",
    [
        # a CTE's name means the CTE only inside the query that declares it
        "SELECT t.a, d.lead_snapshot FROM (WITH _workbench_events_by_date AS (SELECT 1 AS a) "
        "SELECT a FROM _workbench_events_by_date) t, _workbench_events_by_date d LIMIT 2",
        # and in a CTE's body only after it: before, Spark reads the name from its catalogue
        "WITH a AS (SELECT * FROM _workbench_events_by_date), "
        "_workbench_events_by_date AS (SELECT 1 AS x) SELECT * FROM a",
        "WITH a AS (SELECT 1 AS x) SELECT * FROM _workbench_events_by_date "
        "WHERE seq IN (WITH _workbench_events_by_date AS (SELECT 1 AS seq) "
        "SELECT seq FROM _workbench_events_by_date)",
    ],
)
def test_a_cte_name_does_not_open_a_hidden_view_outside_its_scope(pair, query):
    _, spark, _ = pair
    with pytest.raises(RelationNotAllowedError, match="_workbench_events_by_date"):
        spark.sql(query)


def test_ctes_read_as_spark_reads_them(pair):
    duck, spark, _ = pair
    for q in (
        "WITH x AS (SELECT type FROM events), y AS (SELECT * FROM x) SELECT count(*) AS n FROM y",
        "SELECT count(*) AS n FROM (WITH x AS (SELECT seq FROM events) SELECT seq FROM x)",
        "WITH x AS (SELECT lead_id FROM events) SELECT count(*) AS n FROM lead_summary "
        "WHERE lead_id IN (SELECT lead_id FROM x)",
    ):
        assert spark.sql(q).n[0] == duck.sql(q).n[0] > 0, q


@pytest.mark.parametrize(
    "query",
    [
        # a bound that is new each time it is read would differ in a copy of it
        "SELECT count(*) FROM events WHERE timestamp >= "
        "CASE WHEN rand() < 0.5 THEN '2026-11-25' ELSE '2026-11-26' END",
        "SELECT count(*) FROM events WHERE timestamp >= date_add('2026-11-25', "
        "CAST(uniform(0, 2) AS INT))",
        # events AS e(..., timestamp) names another column timestamp
        "SELECT count(*) FROM events AS e(seq, lead_id, a, b, c, d, e, f, g, h, timestamp) "
        "WHERE timestamp >= '2026-11-26'",
    ],
)
def test_a_bound_the_pruning_cannot_copy_faithfully_is_left_as_it_is(query):
    from workbench.lake.sparksql import date_pruned

    assert date_pruned(query) == query


def test_only_the_files_the_manifest_lists_are_read(pair, tmp_path):
    # a file laid in the lake by hand was never read for its documents' keys, so its
    # values could not be masked: the session reads the files its exports wrote
    duck, spark, root = pair
    lake = _copy_lake(root, tmp_path)
    day = sorted((lake / "events").glob("event_date=*"))[-1]
    shutil.copy(next(day.glob("*.parquet")), day / "laid-by-hand.parquet")
    q = "SELECT count(*) AS n FROM events"
    with wlake.connect(lake, user="ana", role="analyst") as s:
        assert s.sql(q).n[0] == duck.sql(q).n[0]
        later = day.name.split("=")[1]
        bounded = f"SELECT count(*) AS n FROM events WHERE timestamp >= '{later}'"
        assert s.sql(bounded).n[0] == duck.sql(bounded).n[0]


def test_a_query_spark_cannot_run_is_a_query_error_with_its_text_masked(pair, capfd):
    _, spark, _ = pair
    capfd.readouterr()
    with pytest.raises(QueryError) as e:
        spark.sql("SELECT no_such_column FROM events WHERE email = 'jo@example.com'")
    assert "jo@example.com" not in str(e.value)
    out, err = capfd.readouterr()  # nor in Spark's own log of the failed query
    assert "jo@example.com" not in out + err
    assert spark.sql("WITH x AS (SELECT type FROM events) SELECT count(*) AS n FROM x").n[0] > 0


def test_connect_says_what_is_wrong_with_a_folder_that_is_no_lake(tmp_path):
    with pytest.raises(workbench.errors.InputError, match="no workbench lake"):
        wlake.connect(tmp_path, user="ana", role="analyst")
