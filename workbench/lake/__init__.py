"""Sessions on Spark over the Parquet lake: the same reads, masking, grants and audit as
on a store, for data bigger than one machine.

``EventStore.export_lake(LAKE)`` (``workbench lake export``) writes the lake;
``connect(LAKE, user=..., role=...)`` opens a :class:`LakeSession` on it with Spark SQL:
a local Spark (``local[2]``) when no ``spark`` is given, else the ``SparkSession`` given
(a cluster's, or a Spark Connect one from ``SparkSession.builder.remote(...)``). Every
analysis, alert, diagnosis and the Dashboard runs on it unchanged.

>>> session = connect("var/lake", user="ana", role="analyst")        # doctest: +SKIP
>>> workbench.analytics.success_rates(session)                     # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..access.audit import AuditTrail
from ..access.config import ENV_USER, resolve_config
from ..errors import InputError
from ..store.lake import MANIFEST
from .session import LAKE_RELATIONS, LakeSession, inspect_spark_sql

__all__ = ["connect", "local_spark", "LakeSession", "LAKE_RELATIONS", "inspect_spark_sql"]

#: The audit trail of a lake, in the lake's folder unless ``connect(audit=...)`` says.
AUDIT_FILE = "_workbench_audit.sqlite"

# the loggers that report Spark falling back from generated to interpreted code for the
# masking's long expressions: expected, and no business of the person reading
_QUIET = (
    "org.apache.spark.sql.catalyst.expressions.codegen.CodeGenerator",
    "org.apache.spark.sql.execution.WholeStageCodegenExec",
    "org.apache.spark.sql.catalyst.expressions.codegen.GenerateUnsafeProjection",
)
# PySpark's loggers of a failed query, which print its text (and any value in it) to
# the notebook: the session reports the failure itself, masked
_QUIET_PY = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")


def local_spark(cores: int = 2, memory: str = "2g"):
    """A local Spark session for the workbench: ``local[cores]``, UTC, no web UI, bound
    to 127.0.0.1, Arrow transfers. Started once per process (start-up takes seconds)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError(
            "Spark is not installed: pip install 'workbench[spark]' (pyspark needs Java 17: "
            "apt-get install openjdk-17-jre-headless)"
        ) from None
    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("workbench")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(max(2, cores * 2)))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    quiet(spark)
    return spark


def quiet(spark) -> None:
    """Warnings only, none for the masking's fall back to interpreted code, and no log
    of a failed query's text (the session's QueryError says what failed, masked)."""
    try:
        from pyspark.logger import PySparkLogger

        get = PySparkLogger.getLogger  # of PySpark's class, as PySpark would make it
    except ImportError:
        get = logging.getLogger
    for name in _QUIET_PY:
        get(name).disabled = True
    try:
        spark.sparkContext.setLogLevel("ERROR")
        jvm = spark.sparkContext._jvm
        level = jvm.org.apache.logging.log4j.Level.OFF
        for name in _QUIET:
            jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(name, level)
    except Exception:  # Spark Connect: the server's logs are not ours
        pass


def _own_session(spark):
    """A session of its own on ``spark``'s cluster (its own views and settings), or
    ``spark`` itself where Spark does not make one (Spark Connect)."""
    try:
        own = spark.newSession()
    except Exception:
        own = spark
    own.conf.set("spark.sql.session.timeZone", "UTC")
    return own


def connect(
    lake,
    user: str | None = None,
    role: str | None = None,
    spark=None,
    *,
    config=None,
    audit=None,
    client: str | None = None,
) -> LakeSession:
    """Open a :class:`LakeSession` on the lake folder ``lake`` for ``user`` in ``role``.

    ``spark`` is a ``SparkSession`` (a cluster's, or Spark Connect's); without one a
    local Spark is started (``local_spark()``) and kept for the process's next connect(). Users and
    roles come from ``config``, else ``$WORKBENCH_ACCESS_CONFIG``, else
    ``<lake>.access.yaml`` beside the lake, else the built-in ones. The audit trail is
    ``audit`` (a SQLite path or an AuditTrail), else ``<lake>/_workbench_audit.sqlite``.

    >>> session = connect("var/lake", user="ana", role="analyst")   # doctest: +SKIP
    >>> session.sql("SELECT count(*) AS n FROM events").n[0]        # doctest: +SKIP
    222155
    """
    if not isinstance(lake, str | os.PathLike) or not str(lake).strip():
        raise TypeError(f"connect() takes the path of a lake folder, not {lake!r}")
    path = Path(lake)
    if not (path / MANIFEST).is_file():
        raise InputError(
            f"{path} is no workbench lake (no {MANIFEST}); write one with "
            f"`workbench lake export {path} --store STORE`"
        )
    user = user if user is not None else os.environ.get(ENV_USER)
    cfg = resolve_config(config, path)
    the_role = cfg.role_for(user, role)
    if isinstance(audit, AuditTrail):
        trail, owns_trail = audit, False
    else:
        trail, owns_trail = AuditTrail(str(audit or path / AUDIT_FILE)), True
    try:
        engine = local_spark() if spark is None else spark
        quiet(engine)
        own = _own_session(engine)
        return LakeSession(
            path,
            own,
            user=user,
            role=the_role,
            config=cfg,
            trail=trail,
            owns_trail=owns_trail,
            owns_spark=False,
            client=client,
        )
    except BaseException:
        if owns_trail:
            trail.close()
        raise
