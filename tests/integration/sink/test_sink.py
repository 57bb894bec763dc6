"""The sink against the real broker and a real TimescaleDB: what is produced to the contract's topics
ends up in the tables, once; what cannot be stored ends up on the dead-letter topic with the reason."""

from __future__ import annotations

import base64
import json
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import psycopg

from pantau.contracts.topics import DEADLETTER_TOPIC, PRICE_TOPIC
from tests.integration.sink.conftest import (
    count_rows,
    end_offsets,
    eventually,
    produce,
    produce_raw,
    read_from,
)
from tests.unit.storage.events import alert_lifecycle, dead_letter, harvest, price, shipment_journey, unique_source


def test_sink_stores_every_event_type_and_the_current_state(running_sink, sink_settings):
    source = unique_source()
    journey = shipment_journey(source, delay=timedelta(minutes=75))
    alert = alert_lifecycle(source)
    events = [price(source), harvest(source), *journey, *alert, dead_letter(source)]
    produce(sink_settings, events)

    expected = {"price_observations": 1, "harvests": 1, "shipment_events": 5, "alert_events": 3, "dead_letters": 1}
    eventually(lambda: _assert_counts(sink_settings, source, expected))
    with psycopg.connect(sink_settings.database_url) as conn:
        shipment = conn.execute(
            "SELECT stage, last_checkpoint_code, delay_minutes, delayed FROM shipment_state WHERE shipment_id = %s",
            (journey[0].payload.shipment_id,),
        ).fetchone()
        alert_row = conn.execute(
            "SELECT status, sequence, resolved_at FROM alert_state WHERE alert_id = %s", (alert[0].payload.alert_id,)
        ).fetchone()
        stored_price = conn.execute(
            "SELECT occurred_at, price_idr FROM price_observations WHERE source = %s", (source,)
        ).fetchone()
    assert shipment == ("arrived", "merak_port", 75.0, True)
    assert alert_row == ("resolved", 3, alert[-1].occurred_at)
    assert stored_price == (datetime(2026, 3, 4, 1, tzinfo=UTC), 12850.0)


def test_replaying_the_same_events_writes_no_duplicate(running_sink, sink_settings):
    source = unique_source()
    events = [price(source, at=datetime(2026, 3, 4, tzinfo=UTC) + timedelta(hours=i)) for i in range(200)]
    events += shipment_journey(source)
    produce(sink_settings, events)
    eventually(lambda: _assert_counts(sink_settings, source, {"price_observations": 200, "shipment_events": 5}))
    produce(sink_settings, events)  # the same events (same ids) again, as a producer retry or replay would
    marker = price(source, at=datetime(2026, 4, 1, tzinfo=UTC))
    produce(sink_settings, [marker])  # once this is stored, the replayed ones before it were handled too
    eventually(lambda: _assert_counts(sink_settings, source, {"price_observations": 201, "shipment_events": 5}))
    with psycopg.connect(sink_settings.database_url) as conn:
        assert conn.execute(
            "SELECT sum(observations) FROM price_daily WHERE day BETWEEN '2026-03-04' AND '2026-03-13'"
        ).fetchone()[0] == 200


def test_undecodable_record_and_refused_row_are_dead_lettered_and_the_rest_stored(running_sink, sink_settings):
    source = unique_source()
    dead_letters_before = end_offsets(sink_settings, DEADLETTER_TOPIC)
    garbage = f"not an event {source}".encode()
    refused = alert_lifecycle(source, title_en="Rice\x00price up")  # valid JSON, but PostgreSQL text refuses NUL
    good = [price(source, at=datetime(2026, 3, 4, tzinfo=UTC) + timedelta(minutes=i)) for i in range(100)]
    produce(sink_settings, good[:50])
    produce_raw(sink_settings, PRICE_TOPIC, "beras:pibc", garbage)
    produce(sink_settings, [*refused, *good[50:]])

    eventually(lambda: _assert_counts(sink_settings, source, {"price_observations": 100, "alert_events": 0}))
    letters = eventually(lambda: _dead_letters_about(sink_settings, dead_letters_before, garbage, refused), 30)
    undecodable, *rejected = letters
    assert undecodable["payload"]["error_type"] == "invalid_json"
    assert undecodable["payload"]["original_topic"] == PRICE_TOPIC
    assert base64.b64decode(undecodable["payload"]["original_key_b64"]) == b"beras:pibc"
    assert {r["payload"]["error_type"] for r in rejected} == {"database_rejected"}
    assert all("0x00" in r["payload"]["error_message"] for r in rejected)
    assert sorted(r["payload"]["original_event_id"] for r in rejected) == sorted(e.event_id for e in refused)

    # The sink also reads the dead-letter topic: the dead letters are queryable, with the original bytes.
    def stored() -> list[tuple]:
        with psycopg.connect(sink_settings.database_url) as conn:
            rows = conn.execute(
                "SELECT error_type, original_value FROM dead_letters WHERE consumer = 'sink'"
                " AND (original_value = %s OR original_event_id = ANY(%s::uuid[]))",
                (garbage, [e.event_id for e in refused]),
            ).fetchall()
        assert len(rows) == 4
        return rows

    rows = eventually(stored, 30)
    assert (("invalid_json", garbage)) in [(t, bytes(v)) for t, v in rows]


def test_sink_metrics_count_what_it_did(running_sink, sink_settings):
    from pantau.metrics import serve_metrics
    from tests.integration.sink.conftest import free_port

    port = free_port()
    server = serve_metrics("127.0.0.1", port, running_sink.health, "SINK_PORT")
    try:
        source = unique_source()
        before = _metric(port, 'pantau_sink_rows_written_total{table="price_observations"}')
        produce(sink_settings, [price(source, at=datetime(2026, 3, 4, tzinfo=UTC) + timedelta(minutes=i))
                                for i in range(30)])
        eventually(lambda: _assert_counts(sink_settings, source, {"price_observations": 30}))
        assert _metric(port, 'pantau_sink_rows_written_total{table="price_observations"}') - before == 30
        assert _metric(port, "pantau_sink_database_up") == 1
        assert _metric(port, 'pantau_events_consumed_total{topic="pangan.price.v1"}') >= 30
        assert _metric(port, "pantau_sink_batch_rows_count") >= 1
        eventually(lambda: _assert_lag_reported(port), 15)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as response:
            assert json.loads(response.read())["status"] == "ok"
    finally:
        server.shutdown()


def test_alerts_of_an_aborted_transaction_are_not_stored_and_the_lag_returns_to_zero(running_sink, sink_settings):
    """The processor writes alerts in Kafka transactions: the sink stores committed ones only, and
    the commit markers they leave behind do not count as lag."""
    from kafka import KafkaProducer

    from pantau.contracts import ALERT_TOPIC, encode_event, kafka_key
    from pantau.metrics import serve_metrics
    from tests.integration.sink.conftest import free_port

    source = unique_source()
    committed, aborted = alert_lifecycle(source), alert_lifecycle(source)
    producer = KafkaProducer(bootstrap_servers=sink_settings.kafka_bootstrap_servers,
                             transactional_id=f"sink-test-{source}", enable_idempotence=True)
    port = free_port()
    server = serve_metrics("127.0.0.1", port, running_sink.health, "SINK_PORT")
    try:
        producer.init_transactions()
        for events, finish in ((aborted, producer.abort_transaction), (committed, producer.commit_transaction)):
            producer.begin_transaction()
            for event in events:
                producer.send(ALERT_TOPIC, key=kafka_key(event).encode(), value=encode_event(event))
            producer.flush()
            finish()
        eventually(lambda: _assert_counts(sink_settings, source, {"alert_events": len(committed)}))
        with psycopg.connect(sink_settings.database_url) as conn:
            stored = {row[0] for row in conn.execute("SELECT event_id FROM alert_events WHERE source = %s",
                                                     (source,))}
        assert stored == {uuid.UUID(str(e.event_id)) for e in committed}

        def alert_lag_is_zero() -> None:
            lags = {k: v for k, v in _metrics(port).items()
                    if k.startswith("pantau_consumer_lag_messages{") and f'topic="{ALERT_TOPIC}"' in k}
            assert lags and not any(lags.values()), lags

        eventually(alert_lag_is_zero, 30)
    finally:
        producer.close()
        server.shutdown()


# --- helpers ----------------------------------------------------------------------------------------
def _assert_counts(settings, source: str, expected: dict[str, int]) -> None:
    assert {table: count_rows(settings, table, source) for table in expected} == expected


def _dead_letters_about(settings, starts, garbage: bytes, refused) -> list[dict]:
    wanted_ids = {e.event_id for e in refused}
    found = []
    for value in read_from(settings, starts, idle_ms=1500):
        letter = orjson.loads(value)
        payload = letter["payload"]
        if payload["consumer"] != "sink":
            continue
        original = base64.b64decode(payload["original_value_b64"] or "")
        if original == garbage or payload["original_event_id"] in wanted_ids:
            found.append(letter)
    found.sort(key=lambda letter: letter["payload"]["error_type"] != "invalid_json")
    assert len(found) == 1 + len(refused), found
    return found


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def _metric(port: int, name: str) -> float:
    return _metrics(port).get(name, 0.0)


def _assert_lag_reported(port: int) -> None:
    lags = {k: v for k, v in _metrics(port).items() if k.startswith("pantau_consumer_lag_messages{")}
    assert any('topic="pangan.price.v1"' in k for k in lags), lags
