"""The batch writer: rows of many events -> TimescaleDB in one transaction per batch.

Per table: binary COPY into a temporary staging table, then one INSERT ... SELECT ... ON CONFLICT DO
NOTHING into the table, so a replayed event writes nothing (never one INSERT per row: STYLE.md 6).
The same statement updates what depends on the rows it actually inserted: the current-state tables
(shipment_state, alert_state; only ever moved forward) and, where the database keeps no continuous
aggregates, the daily rollup tables. A replay therefore changes nothing anywhere.

A row the database refuses (a value it cannot store, a violated constraint) must not block the
others: the failed batch is retried in halves until the refused rows are isolated; those come back
as `Rejected` for the dead-letter topic, everything else is committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from pantau.storage.rows import (
    ALERT_EVENTS,
    DEAD_LETTERS,
    HARVESTS,
    PRICE_OBSERVATIONS,
    SHIPMENT_EVENTS,
    TABLES,
    Row,
    Table,
)

# Errors that belong to the rows written (bad values, violated constraints): bisect and reject.
# Anything else (connection lost, server shutting down, a bug in the SQL) is raised to the caller.
ROW_ERRORS = (psycopg.errors.DataError, psycopg.errors.IntegrityError)

_STAGES = "ARRAY['dispatched', 'in_transit', 'arrived']"


@dataclass(frozen=True)
class Pending:
    """One row to write and the record it came from (handed back if the row is refused)."""

    table: Table
    row: Row
    origin: Any = None


@dataclass(frozen=True)
class Rejected:
    item: Pending
    error: psycopg.Error

    @property
    def error_class(self) -> str:
        return type(self.error).__name__

    @property
    def reason(self) -> str:
        diag = self.error.diag
        primary = diag.message_primary or str(self.error).splitlines()[0]
        detail = f" ({diag.message_detail})" if diag.message_detail else ""
        # The context names the column for COPY errors ("COPY _stage_alert_events, line 1, column title_en").
        where = f" at {diag.context.strip().splitlines()[0]}" if diag.context else ""
        return f"{self.item.table.name}: {primary}{detail}{where} [SQLSTATE {diag.sqlstate}]"


@dataclass
class WriteResult:
    written: dict[str, int] = field(default_factory=dict)  # rows inserted per table (replays excluded)
    staged: dict[str, int] = field(default_factory=dict)  # rows offered per table
    rejected: list[Rejected] = field(default_factory=list)
    transactions: int = 0

    def add(self, other: WriteResult) -> None:
        for name, count in other.written.items():
            self.written[name] = self.written.get(name, 0) + count
        for name, count in other.staged.items():
            self.staged[name] = self.staged.get(name, 0) + count
        self.rejected.extend(other.rejected)
        self.transactions += other.transactions


def _stage(table: Table) -> str:
    return f"_stage_{table.name}"


def _insert_new(table: Table, returning: str | None = None) -> str:
    """Staging -> table, skipping events already stored. Without `returning` the statement's row
    count is the number inserted (RETURNING costs about a quarter of the insert's time)."""
    cols = ", ".join(table.columns)
    statement = (
        f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {_stage(table)} ORDER BY occurred_at "
        "ON CONFLICT DO NOTHING"
    )
    return f"{statement} RETURNING {returning}" if returning else statement


def _price_rollup(rows: str) -> str:
    """Add `rows` (new price observations) to the daily price rollup."""
    return f"""
INSERT INTO price_daily_rollup AS r (bucket, commodity, quality_grade, market_code, price_level, unit,
                                     price_sum, price_min, price_max, observations)
SELECT date_trunc('day', occurred_at, 'Asia/Jakarta'), commodity, quality_grade, market_code, price_level, unit,
       sum(price_idr), min(price_idr), max(price_idr), count(*)
FROM {rows}
GROUP BY 1, 2, 3, 4, 5, 6
ORDER BY 1, 2, 3, 4, 5, 6
ON CONFLICT (bucket, commodity, quality_grade, market_code, price_level, unit) DO UPDATE SET
    price_sum = r.price_sum + excluded.price_sum,
    price_min = least(r.price_min, excluded.price_min),
    price_max = greatest(r.price_max, excluded.price_max),
    observations = r.observations + excluded.observations"""


# Prices are the bulk of the events, so their rollup avoids INSERT ... RETURNING (a quarter of the
# insert's time): when every staged row was new (the normal case) it is computed from the staging
# table; when only some were (the batch a restart reads again), from the rows this transaction
# inserted, found by their xmin within the staged time range.
PRICE_ROLLUP_ALL_STAGED = _price_rollup(_stage(PRICE_OBSERVATIONS))
PRICE_ROLLUP_INSERTED_NOW = _price_rollup(
    f"""(SELECT * FROM price_observations
      WHERE occurred_at BETWEEN (SELECT min(occurred_at) FROM {_stage(PRICE_OBSERVATIONS)})
                            AND (SELECT max(occurred_at) FROM {_stage(PRICE_OBSERVATIONS)})
        AND xmin = pg_current_xact_id()::xid) AS inserted_now"""
)


def _when(condition: str, *columns: str) -> str:
    return ",\n        ".join(f"{c} = CASE WHEN {condition} THEN excluded.{c} ELSE s.{c} END" for c in columns)


def _first_known(*columns: str) -> str:
    return ",\n        ".join(f"{c} = coalesce(s.{c}, excluded.{c})" for c in columns)


def _shipment_statement(keeps_rollups: bool) -> str:
    arrivals = """
arrivals_rolled_up AS (
    INSERT INTO arrivals_daily_rollup AS r (bucket, commodity, destination_code, shipments, quantity_kg)
    SELECT date_trunc('day', occurred_at, 'Asia/Jakarta'), commodity, destination_code, count(*), sum(quantity_kg)
    FROM inserted
    WHERE event_type = 'ShipmentArrived'
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (bucket, commodity, destination_code) DO UPDATE SET
        shipments = r.shipments + excluded.shipments,
        quantity_kg = r.quantity_kg + excluded.quantity_kg
),""" if keeps_rollups else ""
    newer_event = "excluded.last_event_at >= s.last_event_at"
    newer_checkpoint = (
        "excluded.last_checkpoint_at IS NOT NULL AND (s.last_checkpoint_at IS NULL"
        " OR (excluded.last_checkpoint_at, excluded.last_checkpoint_sequence)"
        " > (s.last_checkpoint_at, s.last_checkpoint_sequence))"
    )
    return f"""
WITH inserted AS ({_insert_new(SHIPMENT_EVENTS, '*')}),{arrivals}
ranked AS (
    SELECT *, CASE event_type WHEN 'ShipmentDispatched' THEN 1 WHEN 'ShipmentCheckpointPassed' THEN 2 ELSE 3 END AS rank
    FROM inserted
),
latest AS (
    SELECT DISTINCT ON (shipment_id) * FROM ranked
    ORDER BY shipment_id, occurred_at DESC, rank DESC, checkpoint_sequence DESC NULLS LAST
),
dispatch AS (
    SELECT DISTINCT ON (shipment_id) * FROM inserted WHERE event_type = 'ShipmentDispatched'
    ORDER BY shipment_id, occurred_at DESC
),
checkpoint AS (
    SELECT DISTINCT ON (shipment_id) * FROM inserted WHERE event_type = 'ShipmentCheckpointPassed'
    ORDER BY shipment_id, occurred_at DESC, checkpoint_sequence DESC
),
arrival AS (
    SELECT DISTINCT ON (shipment_id) * FROM inserted WHERE event_type = 'ShipmentArrived'
    ORDER BY shipment_id, occurred_at DESC
),
progress AS (
    SELECT shipment_id, ({_STAGES})[max(rank)] AS stage FROM ranked GROUP BY shipment_id
),
state AS (
    INSERT INTO shipment_state AS s (
        shipment_id, stage, commodity, quantity_kg, origin_regency_code, destination_code,
        dispatched_at, planned_eta, vehicle_plate, vehicle_kind, harvest_id,
        last_checkpoint_code, last_checkpoint_sequence, last_checkpoint_at, eta, arrived_at, transit_minutes,
        last_event_id, last_event_type, last_event_at)
    SELECT l.shipment_id, p.stage, l.commodity, l.quantity_kg, l.origin_regency_code, l.destination_code,
           coalesce(d.occurred_at, a.dispatched_at), d.eta, d.vehicle_plate, d.vehicle_kind, d.harvest_id,
           c.checkpoint_code, c.checkpoint_sequence, c.occurred_at, coalesce(c.eta, d.eta), a.occurred_at,
           a.transit_minutes, l.event_id, l.event_type, l.occurred_at
    FROM latest l
    JOIN progress p USING (shipment_id)
    LEFT JOIN dispatch d USING (shipment_id)
    LEFT JOIN checkpoint c USING (shipment_id)
    LEFT JOIN arrival a USING (shipment_id)
    ORDER BY l.shipment_id
    ON CONFLICT (shipment_id) DO UPDATE SET
        -- the stage only advances; the latest event (by event time) sets what it carries
        stage = CASE WHEN array_position({_STAGES}, excluded.stage) > array_position({_STAGES}, s.stage)
                     THEN excluded.stage ELSE s.stage END,
        {_when(newer_event, "commodity", "quantity_kg", "origin_regency_code", "destination_code",
               "last_event_id", "last_event_type", "last_event_at")},
        -- facts of dispatch and arrival do not change once known
        {_first_known("dispatched_at", "planned_eta", "vehicle_plate", "vehicle_kind", "harvest_id", "arrived_at",
                      "transit_minutes")},
        -- the estimate of the newest checkpoint, else the planned one
        eta = CASE WHEN {newer_checkpoint} THEN excluded.eta
                   WHEN s.last_checkpoint_at IS NULL THEN coalesce(s.eta, excluded.eta)
                   ELSE s.eta END,
        {_when(newer_checkpoint, "last_checkpoint_code", "last_checkpoint_sequence", "last_checkpoint_at")},
        updated_at = now()
)
SELECT count(*) FROM inserted"""


_ALERT_STATE_COLUMNS = (
    "alert_type", "subject", "sequence", "severity", "previous_severity", "commodity", "place_kind", "place_code",
    "place_name", "affected_volume_kg", "evidence", "title_id", "title_en", "action_text_id", "action_text_en",
    "opened_at", "last_event_at", "last_event_id", "last_event_type",
)


def _alert_statement() -> str:
    columns = ", ".join(_ALERT_STATE_COLUMNS)
    source = columns.replace("last_event_at", "occurred_at").replace("last_event_id", "event_id").replace(
        "last_event_type", "event_type"
    )
    excluded = ", ".join(f"excluded.{c}" for c in _ALERT_STATE_COLUMNS)
    return f"""
WITH inserted AS ({_insert_new(ALERT_EVENTS, '*')}),
latest AS (
    SELECT DISTINCT ON (alert_id) * FROM inserted ORDER BY alert_id, sequence DESC, occurred_at DESC
),
state AS (
    INSERT INTO alert_state AS s (alert_id, {columns})
    SELECT alert_id, {source} FROM latest ORDER BY alert_id
    ON CONFLICT (alert_id) DO UPDATE SET ({columns}, updated_at) = ({excluded}, now())
    -- an alert's sequence numbers its events: an older or replayed event never rolls it back
    WHERE s.sequence < excluded.sequence
)
SELECT count(*) FROM inserted"""


def statements(keeps_rollups: bool) -> dict[str, str]:
    """The statement per table: staging -> table, and what depends on the rows it inserted."""
    return {
        PRICE_OBSERVATIONS.name: _insert_new(PRICE_OBSERVATIONS),  # + PRICE_ROLLUP_* where rollups are tables
        HARVESTS.name: _insert_new(HARVESTS),
        SHIPMENT_EVENTS.name: _shipment_statement(keeps_rollups),
        ALERT_EVENTS.name: _alert_statement(),
        DEAD_LETTERS.name: _insert_new(DEAD_LETTERS),
    }


def database_keeps_rollups(conn: psycopg.Connection) -> bool:
    """True when price_daily_rollup is a table (the sink maintains it), False for a continuous
    aggregate (TimescaleDB maintains it). Migration 0004 decided which by the license."""
    row = conn.execute(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relname = 'price_daily_rollup'"
    ).fetchone()
    if row is None:
        raise RuntimeError("table price_daily_rollup is missing: the database is not migrated; run `pantau migrate`")
    return row[0] == "r"


class BatchWriter:
    """Writes batches of rows over one connection (not autocommit), one transaction per batch."""

    def __init__(self, conn: psycopg.Connection) -> None:
        if conn.autocommit:
            raise ValueError("BatchWriter needs a connection with autocommit off: a batch is one transaction")
        self.conn = conn
        self._types: dict[str, list[int]] = {}
        with conn.transaction():
            self.keeps_rollups = database_keeps_rollups(conn)
            self._statements = statements(self.keeps_rollups)
            for table in TABLES:
                stage = sql.Identifier(_stage(table))
                columns = sql.SQL(", ").join(map(sql.Identifier, table.columns))
                create = "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS SELECT {} FROM {} WITH NO DATA"
                conn.execute(sql.SQL(create).format(stage, columns, sql.Identifier(table.name)))
                cur = conn.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(stage))
                self._types[table.name] = [column.type_code for column in cur.description or ()]

    def write(self, items: Sequence[Pending]) -> WriteResult:
        """Write every row that the database accepts; the others come back in `rejected`.

        Connection problems (psycopg.OperationalError) are raised: the caller retries the whole
        batch, which is safe because nothing is written twice."""
        if not items:
            return WriteResult()
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            # Inside an open transaction ours would be a savepoint, committed by nobody.
            raise RuntimeError("BatchWriter.write needs its connection outside a transaction (commit or roll back)")
        try:
            with self.conn.transaction():
                result = self._write_once(items)
            result.transactions = 1
            return result
        except ROW_ERRORS as exc:
            if len(items) == 1:
                return WriteResult(rejected=[Rejected(items[0], exc)], transactions=1)
        middle = len(items) // 2
        result = WriteResult(transactions=1)
        result.add(self.write(items[:middle]))
        result.add(self.write(items[middle:]))
        return result

    def ping(self) -> None:
        """A round trip to the database (raises psycopg.OperationalError when it is gone)."""
        with self.conn.transaction():
            self.conn.execute("SELECT 1")

    def _write_once(self, items: Sequence[Pending]) -> WriteResult:
        by_table: dict[str, list[Row]] = {}
        tables: dict[str, Table] = {}
        for item in items:
            by_table.setdefault(item.table.name, []).append(item.row)
            tables[item.table.name] = item.table
        result = WriteResult()
        with self.conn.cursor() as cur:
            for name, rows in by_table.items():
                with cur.copy(
                    sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                        sql.Identifier(_stage(tables[name])),
                        sql.SQL(", ").join(map(sql.Identifier, tables[name].columns)),
                    )
                ) as copy:
                    copy.set_types(self._types[name])
                    for row in rows:
                        copy.write_row(row)
                cur.execute(self._statements[name])
                # Statements with dependent writes end in SELECT count(*) FROM inserted; plain ones count rows.
                written = cur.fetchone()[0] if cur.description else cur.rowcount
                if name == PRICE_OBSERVATIONS.name and self.keeps_rollups and written:
                    cur.execute(PRICE_ROLLUP_ALL_STAGED if written == len(rows) else PRICE_ROLLUP_INSERTED_NOW)
                result.written[name] = written
                result.staged[name] = len(rows)
        return result

