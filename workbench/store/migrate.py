"""Upgrading a store made by an earlier workbench, in place, in one transaction.

Schema 4 -> 5: each distinct lead snapshot moves into ``snapshots`` (its id: the seq of
the first event that carried it) and the hot table keeps the id. Every event reads back
as before (the ``events`` relation joins the snapshot in), so exports, digests and
verify() are unchanged; a crash before the commit leaves the store as it was.
"""

from __future__ import annotations

from ..timeutil import utcnow
from .schema import DDL, HOT_COLUMNS, SCHEMA_VERSION, SNAPSHOT_KEY_SQL

__all__ = ["migrate"]


def migrate(con, version: str) -> None:
    """Upgrade the store on ``con`` from schema ``version`` to the current one."""
    if version != "4":  # pragma: no cover - MIGRATES_FROM names what is handled here
        raise ValueError(f"no migration from schema {version}")
    h1 = SNAPSHOT_KEY_SQL.format(x="lead_snapshot")
    con.run("BEGIN TRANSACTION")
    try:
        con.run("ALTER TABLE events RENAME TO events_v4")
        con.run(DDL)  # creates the new events and snapshots tables (the rest exist)
        # one row per distinct text (grouped by the text itself, not by its hash)
        con.run(
            f"INSERT INTO snapshots SELECT min(seq), any_value({h1}), lead_snapshot "
            "FROM events_v4 WHERE lead_snapshot IS NOT NULL GROUP BY lead_snapshot ORDER BY 1"
        )
        cols = ", ".join("s.snapshot_id" if c == "snapshot_id" else f"e.{c}" for c in HOT_COLUMNS)
        con.run(
            f"INSERT INTO events SELECT {cols} FROM events_v4 e LEFT JOIN snapshots s "
            f"ON s.h1 = {h1.replace('lead_snapshot', 'e.lead_snapshot')} "
            "AND CAST(s.lead_snapshot AS VARCHAR) = CAST(e.lead_snapshot AS VARCHAR) ORDER BY e.seq"
        )
        moved = con.val("SELECT count(*) FROM events")
        before = con.val("SELECT count(*) FROM events_v4")
        if moved != before:  # pragma: no cover - a join of unique keys keeps every row
            raise RuntimeError(f"migration kept {moved} of {before} events")
        con.run("DROP TABLE events_v4")
        con.run("UPDATE store_meta SET value = ? WHERE key = 'schema_version'", [SCHEMA_VERSION])
        con.run(
            "INSERT OR REPLACE INTO store_meta VALUES (?, ?)",
            [f"migrated_from_{version}_at", utcnow().isoformat()],
        )
        con.run("COMMIT")
    except BaseException:
        con.run("ROLLBACK")
        raise
    con.run("CHECKPOINT")
