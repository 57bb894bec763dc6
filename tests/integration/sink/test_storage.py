"""The storage schema and the batch writer on real databases: PostgreSQL with TimescaleDB and plain
PostgreSQL. What dashboards and the query API read must look and answer the same on both."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg
import pytest

from pantau.db import connect, migrate
from pantau.settings import Settings
from pantau.storage.retention import RetentionMode, apply_retention, database_retention_mode
from pantau.storage.rows import row_for
from pantau.storage.writer import BatchWriter, Pending
from tests.unit.storage.events import alert_lifecycle, dead_letter, harvest, price, shipment_journey, unique_source

EVENT_TABLES = {"price_observations", "harvests", "shipment_events", "alert_events", "dead_letters"}
READ_MODEL = EVENT_TABLES | {"shipment_state", "alert_state", "price_daily", "arrivals_daily"}

# Queries the dashboards and the API are expected to run; each must work on both kinds of database.
DASHBOARD_QUERIES = [
    "SELECT DISTINCT ON (commodity, market_code) commodity, market_code, occurred_at, price_idr"
    " FROM price_observations WHERE occurred_at >= '2026-03-01' ORDER BY commodity, market_code,"
    " occurred_at DESC",
    "SELECT bucket AS time, market_code, avg_price_idr FROM price_daily WHERE commodity = 'beras'"
    " AND bucket BETWEEN '2026-03-01' AND '2026-04-01' ORDER BY 1",
    "SELECT day, destination_code, sum(quantity_kg) FROM arrivals_daily GROUP BY 1, 2 ORDER BY 1",
    "SELECT destination_code, count(*) FILTER (WHERE delayed) AS delayed, count(*) FROM shipment_state"
    " WHERE stage <> 'arrived' GROUP BY 1",
    "SELECT alert_type, severity, count(*) FROM alert_state WHERE status = 'open' GROUP BY 1, 2",
    "SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM ingested_at - produced_at))"
    " FROM price_observations WHERE ingested_at > now() - interval '1 hour'",
    "SELECT original_topic, error_type, count(*) FROM dead_letters GROUP BY 1, 2",
]


@pytest.fixture(params=["timescaledb", "plain"])
def migrated(request: pytest.FixtureRequest) -> Settings:
    settings = request.getfixturevalue("database" if request.param == "timescaledb" else "plain_database")
    migrate(settings)
    return settings


def columns(settings: Settings) -> dict[str, list[tuple[str, str]]]:
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = ANY(%s) ORDER BY table_name, ordinal_position",
            (list(READ_MODEL),),
        ).fetchall()
    found: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        found.setdefault(table, []).append((column, data_type))
    return found


def write(settings: Settings, events) -> dict[str, int]:
    with connect(settings) as conn:
        result = BatchWriter(conn).write([Pending(*row_for(e)) for e in events])
    assert not result.rejected
    return result.written


def test_migrations_make_the_event_tables_hypertables_on_timescaledb(database):
    assert {1, 2, 3, 4} <= set(migrate(database))
    with connect(database) as conn:
        hypertables = {
            name: column
            for name, column in conn.execute(
                "SELECT hypertable_name, column_name FROM timescaledb_information.dimensions"
                " WHERE hypertable_schema = 'public'"
            )
        }
    assert hypertables == {table: "occurred_at" for table in EVENT_TABLES}


def test_plain_postgresql_gets_the_same_tables_and_columns(database, plain_database):
    migrate(database)
    migrate(plain_database)
    with_timescaledb = columns(database)
    assert set(with_timescaledb) == READ_MODEL
    assert columns(plain_database) == with_timescaledb


@pytest.mark.parametrize("kind", ["timescaledb", "plain"])
def test_dashboard_queries_answer_on_both_kinds_of_database(kind, request):
    settings = request.getfixturevalue("database" if kind == "timescaledb" else "plain_database")
    migrate(settings)
    source = unique_source()
    write(settings, [price(source), *shipment_journey(source), *alert_lifecycle(source), dead_letter(source)])
    with connect(settings) as conn:
        answers = [conn.execute(query).fetchall() for query in DASHBOARD_QUERIES]
    assert answers[0] == [("beras", "pibc", datetime(2026, 3, 4, 1, tzinfo=UTC), 12850.0)]
    assert [row[1:] for row in answers[1]] == [("pibc", 12850.0)]
    assert answers[2] == [(datetime(2026, 3, 4).date(), "pibc", 8000.0)]
    assert answers[4] == []  # the one alert is resolved
    assert answers[6] == [("pangan.price.v1", "schema_violation", 1)]


def test_running_the_migrations_again_changes_nothing(migrated):
    before = columns(migrated)
    assert migrate(migrated) == []
    assert columns(migrated) == before


def test_reader_role_reads_every_table_and_view_but_cannot_write(migrated):
    with connect(migrated, autocommit=True) as conn:
        # What `pantau bootstrap` does with DATABASE_READER_PASSWORD.
        conn.execute(
            psycopg.sql.SQL("ALTER ROLE pantau_reader LOGIN PASSWORD {}").format(
                psycopg.sql.Literal(migrated.database_reader_password)
            )
        )
        conn.execute("CREATE TABLE added_by_a_later_migration (id int)")
    url = migrated.database_url.replace("pantau:pantau-dev@", f"pantau_reader:{migrated.database_reader_password}@")
    with psycopg.connect(url, autocommit=True) as reader:
        for relation in sorted(READ_MODEL | {"added_by_a_later_migration"}):
            reader.execute(f"SELECT * FROM {relation} LIMIT 1").fetchall()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("DELETE FROM price_observations")


def test_writer_stores_every_event_type_and_a_replay_adds_nothing(migrated):
    source = unique_source()
    events = [price(source), price(source, commodity="minyak_goreng", unit="litre", price_idr=17500),
              harvest(source), *shipment_journey(source), *alert_lifecycle(source), dead_letter(source)]
    assert write(migrated, events) == {
        "price_observations": 2, "harvests": 1, "shipment_events": 5, "alert_events": 3, "dead_letters": 1
    }
    assert write(migrated, events) == {
        "price_observations": 0, "harvests": 0, "shipment_events": 0, "alert_events": 0, "dead_letters": 0
    }
    with connect(migrated) as conn:
        for table in EVENT_TABLES:
            assert conn.execute(f"SELECT count(*), count(DISTINCT event_id) FROM {table}").fetchone() == (
                {"price_observations": (2, 2), "harvests": (1, 1), "shipment_events": (5, 5),
                 "alert_events": (3, 3), "dead_letters": (1, 1)}[table]
            )
        ingest = conn.execute("SELECT bool_and(ingested_at >= produced_at) FROM price_observations").fetchone()[0]
        assert ingest is True
        rollup = conn.execute("SELECT sum(observations) FROM price_daily").fetchone()[0]
        assert rollup == 2  # the replay did not count twice


def test_shipment_state_follows_the_journey_and_knows_a_delay(migrated):
    source = unique_source()
    on_time = shipment_journey(source)
    late = shipment_journey(source, delay=timedelta(minutes=150))
    write(migrated, on_time[:3])  # dispatched, two checkpoints
    write(migrated, late)
    with connect(migrated) as conn:
        state = {
            str(row[0]): row[1:]
            for row in conn.execute(
                "SELECT shipment_id, stage, last_checkpoint_code, eta, planned_eta, arrived_at, delay_minutes, delayed"
                " FROM shipment_state"
            )
        }
    dispatched = on_time[0].payload
    assert state[dispatched.shipment_id] == (
        "in_transit", "ferry_crossing", dispatched.eta, dispatched.eta, None, 0.0, False
    )
    late_arrival = late[-1]
    assert state[late[0].payload.shipment_id] == (
        "arrived", "merak_port", late[3].payload.eta, late[0].payload.eta, late_arrival.occurred_at, 150.0, True
    )


def test_shipment_state_never_moves_back_when_older_events_arrive_late(migrated):
    source = unique_source()
    dispatched, first, second, third, arrived = shipment_journey(source, delay=timedelta(minutes=90))
    write(migrated, [second, arrived])  # dispatch and two checkpoints are late
    write(migrated, [dispatched, first])
    write(migrated, [third])
    with connect(migrated) as conn:
        row = conn.execute(
            "SELECT stage, last_checkpoint_code, last_event_type, vehicle_plate, planned_eta, dispatched_at,"
            " delay_minutes FROM shipment_state"
        ).fetchone()
    assert row == ("arrived", "merak_port", "ShipmentArrived", "BE 8123 AB", dispatched.payload.eta,
                   dispatched.occurred_at, 90.0)


STATE_COLUMNS = (
    "stage, commodity, quantity_kg, destination_code, dispatched_at, planned_eta, vehicle_plate, last_checkpoint_code,"
    " last_checkpoint_sequence, last_checkpoint_at, eta, arrived_at, transit_minutes, delay_minutes, delayed,"
    " last_event_type, last_event_at"
)


def test_shipment_state_ends_the_same_whatever_order_its_events_arrive_in(database):
    migrate(database)
    source = unique_source()
    orders = list(itertools.permutations(range(5)))
    journeys = [shipment_journey(source, delay=timedelta(minutes=75)) for _ in range(len(orders) + 1)]
    shuffled_in_one_batch = [shipment_journey(source, delay=timedelta(minutes=75)) for _ in range(10)]
    with connect(database) as conn:
        writer = BatchWriter(conn)
        writer.write([Pending(*row_for(e)) for e in journeys[0]])  # in order, in one batch: the reference
        for order, journey in zip(orders, journeys[1:], strict=True):
            for index in order:  # one batch per event: the state table merges across batches
                writer.write([Pending(*row_for(journey[index]))])
        for n, journey in enumerate(shuffled_in_one_batch):
            writer.write([Pending(*row_for(journey[i])) for i in orders[n * 11]])
        states = conn.execute(f"SELECT {STATE_COLUMNS} FROM shipment_state").fetchall()
    assert len(states) == len(journeys) + len(shuffled_in_one_batch)
    assert set(states) == {states[0]}
    assert states[0][:2] == ("arrived", "beras") and states[0][-4:-2] == (75.0, True)


def test_alert_state_shows_the_latest_event_and_a_replayed_open_does_not_reopen(migrated):
    source = unique_source()
    opened, updated, resolved = alert_lifecycle(source)
    write(migrated, [opened])
    with connect(migrated) as conn:
        assert conn.execute("SELECT status, severity FROM alert_state").fetchone() == ("open", "alert")
    write(migrated, [updated, resolved])
    write(migrated, [opened.model_copy(update={"event_id": "00000000-0000-4000-8000-000000000001"})])
    with connect(migrated) as conn:
        row = conn.execute(
            "SELECT alert_id, status, severity, previous_severity, sequence, opened_at, resolved_at, title_en"
            " FROM alert_state"
        ).fetchone()
        assert conn.execute("SELECT count(*) FROM alert_events").fetchone()[0] == 4
    assert row == (UUID(opened.payload.alert_id), "resolved", "normal", "crisis", 3, opened.occurred_at,
                   resolved.occurred_at, "Rice price up")


def test_daily_rollups_count_by_wib_day(migrated):
    source = unique_source()
    late_evening_wib = datetime(2026, 3, 4, 23, 30, tzinfo=UTC) - timedelta(hours=7)  # 23:30 WIB on 4 March
    just_after_midnight_wib = datetime(2026, 3, 4, 17, 30, tzinfo=UTC)  # 00:30 WIB on 5 March
    write(migrated, [
        price(source, at=late_evening_wib, price_idr=12000),
        price(source, at=late_evening_wib - timedelta(hours=3), price_idr=13000),
        price(source, at=just_after_midnight_wib, price_idr=14000),
        *shipment_journey(source, dispatched=late_evening_wib - timedelta(hours=12), quantity_kg=8000),
        *shipment_journey(source, dispatched=late_evening_wib - timedelta(hours=11), quantity_kg=6000),
    ])
    with connect(migrated) as conn:
        prices = conn.execute(
            "SELECT day, avg_price_idr, min_price_idr, max_price_idr, observations FROM price_daily ORDER BY day"
        ).fetchall()
        arrivals = conn.execute("SELECT day, shipments, quantity_kg FROM arrivals_daily").fetchall()
    assert prices == [(datetime(2026, 3, 4).date(), 12500.0, 12000.0, 13000.0, 2),
                      (datetime(2026, 3, 5).date(), 14000.0, 14000.0, 14000.0, 1)]
    assert arrivals == [(datetime(2026, 3, 4).date(), 2, 14000.0)]


def test_rollup_counts_only_the_new_rows_of_a_batch_read_again_after_a_crash(migrated):
    source = unique_source()
    events = [price(source, at=datetime(2026, 3, 4, tzinfo=UTC) + timedelta(minutes=i), price_idr=10_000 + i)
              for i in range(100)]
    write(migrated, events[:60])  # stored before the crash
    assert write(migrated, events) == {"price_observations": 40}  # the whole batch again, after the restart
    with connect(migrated) as conn:
        row = conn.execute(
            "SELECT observations, min_price_idr, max_price_idr, avg_price_idr FROM price_daily"
        ).fetchone()
    assert row == (100, 10_000.0, 10_099.0, 10_049.5)


def test_a_row_the_database_refuses_is_isolated_and_the_others_are_stored(migrated):
    source = unique_source()
    good = [price(source, at=datetime(2026, 3, 4, tzinfo=UTC) + timedelta(minutes=i)) for i in range(300)]
    refused = alert_lifecycle(source, title_en="Rice\x00price up")[0]  # PostgreSQL text cannot hold NUL
    items = [Pending(*row_for(e), origin=e.event_id) for e in [*good[:150], refused, *good[150:]]]
    with connect(migrated) as conn:
        result = BatchWriter(conn).write(items)
    assert [r.item.origin for r in result.rejected] == [refused.event_id]
    assert "alert_events" in result.rejected[0].reason and "0x00" in result.rejected[0].reason
    assert result.written == {"price_observations": 300}
    assert 1 < result.transactions < 40  # halving, not one row at a time


@pytest.mark.parametrize("kind", ["timescaledb", "plain"])
def test_retention_removes_events_older_than_retention_days(kind, request):
    settings = request.getfixturevalue("database" if kind == "timescaledb" else "plain_database")
    migrate(settings)
    source = unique_source()
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=60), now - timedelta(days=1)
    old_alert = alert_lifecycle(source, opened=old - timedelta(days=10))
    write(settings, [price(source, at=old), price(source, at=recent), *shipment_journey(source, dispatched=old),
                     *old_alert, alert_lifecycle(source, opened=old)[0]])
    with connect(settings) as conn:
        mode = database_retention_mode(conn)
        conn.commit()
        assert mode is {"timescaledb": RetentionMode.DROP_CHUNKS, "plain": RetentionMode.DELETE}[kind]
        apply_retention(conn, days=30, mode=mode)
        prices = conn.execute("SELECT occurred_at FROM price_observations").fetchall()
        shipments = conn.execute("SELECT count(*) FROM shipment_state").fetchone()[0]
        alerts = conn.execute("SELECT status FROM alert_state").fetchall()
        daily = conn.execute("SELECT count(*) FROM price_daily").fetchone()[0]
    assert prices == [(recent,)]
    assert shipments == 0
    assert alerts == [("open",)]  # the resolved one went; the still-open one stays
    assert daily == 2  # rollups keep the long history
