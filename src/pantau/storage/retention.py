"""Retention: event rows older than RETENTION_DAYS (by event time) are removed.

How depends on the database, decided by `retention_mode`:
* TimescaleDB, community license: `add_retention_policy` on each hypertable; TimescaleDB's own job
  drops old chunks (`ensure_retention_policies`, run by the sink at start).
* TimescaleDB, Apache edition (no policies): `drop_chunks` on each hypertable, run by the sink
  every hour (`apply_retention`).
* plain PostgreSQL: DELETE of old rows, run by the sink every hour.
In every mode `apply_retention` also deletes current-state rows nothing has touched within the
retention (shipments last seen, resolved alerts; open alerts stay). Daily rollups are kept: they
are small and the long history is what they are for.
"""

from __future__ import annotations

from enum import StrEnum

import psycopg
import structlog
from psycopg import sql

from pantau.db import timescaledb_edition
from pantau.storage.rows import TABLES

log = structlog.get_logger(__name__)

EVENT_TABLES = tuple(t.name for t in TABLES)
# State table -> the condition (with %(cutoff)s) that makes a row expire.
STATE_EXPIRY = {
    "shipment_state": "last_event_at < %(cutoff)s",
    "alert_state": "resolved_at < %(cutoff)s",
}


class RetentionMode(StrEnum):
    POLICY = "policy"  # TimescaleDB background job (community license)
    DROP_CHUNKS = "drop_chunks"  # the sink calls drop_chunks (Apache edition)
    DELETE = "delete"  # the sink deletes rows (plain PostgreSQL)


def retention_mode(edition: str | None) -> RetentionMode:
    """edition: pantau.db.timescaledb_edition() -> 'timescale', 'apache' or None (no TimescaleDB)."""
    if edition is None:
        return RetentionMode.DELETE
    if edition == "timescale":
        return RetentionMode.POLICY
    return RetentionMode.DROP_CHUNKS


def database_retention_mode(conn: psycopg.Connection) -> RetentionMode:
    return retention_mode(timescaledb_edition(conn))


def ensure_retention_policies(conn: psycopg.Connection, days: int) -> list[str]:
    """Make each hypertable's retention policy drop after `days` days (replacing one with another
    age). Only for RetentionMode.POLICY. Returns the tables whose policy was (re)created."""
    changed = []
    wanted = f"{days} days"
    with conn.transaction():
        for table in EVENT_TABLES:
            row = conn.execute(
                "SELECT config->>'drop_after' FROM timescaledb_information.jobs"
                " WHERE proc_name = 'policy_retention' AND hypertable_schema = 'public' AND hypertable_name = %s",
                (table,),
            ).fetchone()
            if row is not None and row[0] == wanted:
                continue
            conn.execute("SELECT remove_retention_policy(%s::regclass, if_exists => true)", (table,))
            conn.execute(
                "SELECT add_retention_policy(%s::regclass, drop_after => make_interval(days => %s))", (table, days)
            )
            changed.append(table)
    if changed:
        log.info("retention policies set", tables=changed, days=days)
    return changed


def apply_retention(conn: psycopg.Connection, days: int, mode: RetentionMode) -> dict[str, int]:
    """Remove what is older than `days` days. Returns per table the chunks dropped (drop_chunks)
    or rows deleted (delete, state tables); policy mode leaves the event tables to TimescaleDB."""
    removed: dict[str, int] = {}
    with conn.transaction():
        cutoff = conn.execute("SELECT now() - make_interval(days => %s)", (days,)).fetchone()[0]
        for table in EVENT_TABLES:
            if mode is RetentionMode.DROP_CHUNKS:
                dropped = conn.execute(
                    "SELECT drop_chunks(%s::regclass, older_than => %s::timestamptz)", (table, cutoff)
                ).fetchall()
                removed[table] = len(dropped)
            elif mode is RetentionMode.DELETE:
                cur = conn.execute(
                    sql.SQL("DELETE FROM {} WHERE occurred_at < %s").format(sql.Identifier(table)), (cutoff,)
                )
                removed[table] = cur.rowcount
        for table, condition in STATE_EXPIRY.items():
            cur = conn.execute(
                sql.SQL("DELETE FROM {} WHERE " + condition).format(sql.Identifier(table)), {"cutoff": cutoff}
            )
            removed[table] = cur.rowcount
    log.info("retention applied", mode=str(mode), days=days, removed={k: v for k, v in removed.items() if v})
    return removed
