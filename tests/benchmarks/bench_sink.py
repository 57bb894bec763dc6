"""Sink writer throughput for price observations against the local test database (PostgreSQL +
TimescaleDB of the test stack, started here if it is not running).

    .venv/bin/python -m tests.benchmarks.bench_sink [--rows 100000] [--repeat 5]   (or: make bench)

Prints rows/s of `BatchWriter.write` (binary COPY into a staging table, INSERT ... ON CONFLICT DO
NOTHING into the hypertable, daily rollup update) in batches of SINK_BATCH_MAX_ROWS, next to plain
binary COPY of the same rows straight into the same hypertable, measured in the same run, and the
ratio of the two (the figure that survives a busy machine: both are measured interleaved). Target:
>= 50,000 rows/s for the writer. Also the replay case (every row already stored) and decode + row
mapping per event (the CPU work before the writer)."""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from pantau.contracts.codec import decode_event, encode_event
from pantau.contracts.models import PriceObserved, new_event
from pantau.db import connect, migrate
from pantau.devstack import LocalInfra, port_is_open
from pantau.storage.rows import PRICE_OBSERVATIONS, Row, row_for
from pantau.storage.writer import BatchWriter, Pending
from tests.conftest import TEST_DIR, _start, make_settings

MARKETS = ("pibc", "pikj", "prov_18", "prov_31", "prov_36", "prov_32", "prov_33", "prov_35")
COMMODITIES = ("beras", "cabai_merah", "bawang_merah", "gula_pasir", "daging_ayam")


def price_records(count: int) -> list[bytes]:
    """Encoded PriceObserved events, 5 commodities x 8 markets, one every 10 s of event time."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    records = []
    for i in range(count):
        payload = PriceObserved(
            commodity=COMMODITIES[i % len(COMMODITIES)], quality_grade="medium",
            market_code=MARKETS[(i // len(COMMODITIES)) % len(MARKETS)], province_code="31",
            price_level="wholesale", unit="kg", price_idr_per_kg=10_000.0 + i % 5_000,
        )
        records.append(encode_event(new_event(payload, occurred_at=start + timedelta(seconds=10 * i), source="bench")))
    return records


def batches(items: Sequence, size: int) -> list[Sequence]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def reset(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("TRUNCATE price_observations, price_daily_rollup")


def plain_copy(conn: psycopg.Connection, row_batches: list[list[Row]], types: list[int]) -> None:
    columns = sql.SQL(", ").join(map(sql.Identifier, PRICE_OBSERVATIONS.columns))
    statement = sql.SQL("COPY price_observations ({}) FROM STDIN (FORMAT BINARY)").format(columns)
    for rows in row_batches:
        with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)


def writer_write(writer: BatchWriter, item_batches: list[list[Pending]]) -> None:
    for items in item_batches:
        result = writer.write(items)
        assert not result.rejected


def timed(work: Callable[[], None]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5, help="measurements per figure (median shown)")
    args = parser.parse_args(argv or [])
    settings = make_settings()
    infra = LocalInfra(settings, TEST_DIR)
    host, port = settings.database_address
    started_server = None
    if not port_is_open(host, port):
        started_server = _start(infra.postgres(), infra.prepare_postgres, [TEST_DIR / "postgres"])
    name = f"bench_sink_{uuid.uuid4().hex[:8]}"
    url = settings.database_url.rsplit("/", 1)[0] + f"/{name}"
    infra.provision_database(url, timescaledb=True)
    try:
        db = make_settings(database_url=url, log_level="WARNING")
        migrate(db)
        batch_rows = db.sink_batch_max_rows
        records = price_records(args.rows)
        started = time.perf_counter()
        rows = [row_for(decode_event(record))[1] for record in records]
        decode_map_rate = len(records) / (time.perf_counter() - started)
        row_batches = batches(rows, batch_rows)
        item_batches = [[Pending(PRICE_OBSERVATIONS, row) for row in chunk] for chunk in row_batches]
        with connect(db) as conn:
            writer = BatchWriter(conn)
            with conn.transaction():
                cur = conn.execute(sql.SQL("SELECT {} FROM price_observations LIMIT 0").format(
                    sql.SQL(", ").join(map(sql.Identifier, PRICE_OBSERVATIONS.columns))))
                types = [column.type_code for column in cur.description or ()]
            copy_s, write_s, replay_s = [], [], []
            for _ in range(args.repeat):  # interleaved, so load changes on the machine hit both alike
                reset(conn)
                copy_s.append(timed(lambda: plain_copy(conn, row_batches, types)))
                reset(conn)
                write_s.append(timed(lambda: writer_write(writer, item_batches)))
                replay_s.append(timed(lambda: writer_write(writer, item_batches)))
            with conn.transaction():
                stored = conn.execute("SELECT count(*) FROM price_observations").fetchone()[0]
                rolled_up = conn.execute("SELECT sum(observations) FROM price_daily").fetchone()[0]
            assert stored == rolled_up == len(rows), (stored, rolled_up)
        edition = "TimescaleDB (rollup tables kept by the sink)" if writer.keeps_rollups else "TimescaleDB"
        rates = {label: sorted(len(rows) / t for t in times)
                 for label, times in (("copy", copy_s), ("write", write_s), ("replay", replay_s))}
        print(f"{len(rows):,} PriceObserved rows in batches of {batch_rows:,} (SINK_BATCH_MAX_ROWS), {edition};"
              f" rows/s as median / best of {args.repeat} interleaved runs")
        for label, key in (("plain binary COPY into price_observations", "copy"),
                           ("sink writer: COPY->staging, ON CONFLICT, rollup", "write"),
                           ("sink writer, replay (every row already stored)", "replay")):
            print(f"{label:<50} {statistics.median(rates[key]):>9,.0f} / {rates[key][-1]:>9,.0f}")
        ratio_median = statistics.median(rates["write"]) / statistics.median(rates["copy"])
        ratio_best = rates["write"][-1] / rates["copy"][-1]
        print(f"{'sink writer / plain COPY':<50} {ratio_median:>9.2f} / {ratio_best:>9.2f}"
              "   (target: writer >= 50,000 rows/s)")
        print(f"{'decode_event + row_for (CPU, one core)':<50} {decode_map_rate:>9,.0f} events/s")
    finally:
        infra.drop_database(name)
        if started_server is not None:
            started_server.stop()


if __name__ == "__main__":
    main()
