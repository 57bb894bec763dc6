"""The real parts the platform promises: a Kafka broker that keeps acknowledged events, a database
with TimescaleDB loaded, migrations that apply once, and clear errors when a part is missing."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from pantau.db import connect, migrate, timescaledb_edition
from pantau.kafka import BrokerUnavailable, DeliveryFailed, EventProducer, ensure_topics
from tests.conftest import make_settings


class Topic:
    def __init__(self, name: str, partitions: int) -> None:
        self.name, self.partitions, self.config = name, partitions, {"retention.ms": "86400000"}


def test_produced_events_are_acknowledged_and_readable_in_key_order(kafka_settings, fresh_topic_name):
    topic = Topic(fresh_topic_name(), partitions=3)
    assert ensure_topics(kafka_settings, [topic]) == [topic.name]
    assert ensure_topics(kafka_settings, [topic]) == []  # idempotent
    with EventProducer(kafka_settings, client_id="test") as producer:
        for i in range(50):
            producer.send(topic.name, key=f"k{i % 5}", value=f"{i}".encode(), event_type="Test")
        producer.flush()
        assert producer.acknowledged == 50
    consumer = KafkaConsumer(
        topic.name, bootstrap_servers=kafka_settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest", consumer_timeout_ms=5000, group_id=None,
    )
    by_key: dict[bytes, list[int]] = {}
    for message in consumer:
        by_key.setdefault(message.key, []).append(int(message.value))
    consumer.close()
    assert sum(len(v) for v in by_key.values()) == 50
    assert all(values == sorted(values) for values in by_key.values())


def test_partition_count_different_from_the_contract_is_refused(kafka_settings, fresh_topic_name):
    name = fresh_topic_name()
    ensure_topics(kafka_settings, [Topic(name, partitions=2)])
    with pytest.raises(RuntimeError, match=f"topic {name} has 2 partitions but contracts/asyncapi.yaml says 4"):
        ensure_topics(kafka_settings, [Topic(name, partitions=4)])


def test_unreachable_broker_is_a_clear_error_naming_the_variable():
    settings = make_settings(kafka_bootstrap_servers="127.0.0.1:1", producer_buffer_max_seconds=1)
    with pytest.raises(BrokerUnavailable, match="no Kafka broker at KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1"):
        EventProducer(settings, client_id="test")


def test_broker_gone_after_start_fails_the_send_instead_of_losing_the_event(kafka_settings, fresh_topic_name):
    topic = Topic(fresh_topic_name(), partitions=1)
    ensure_topics(kafka_settings, [topic])
    settings = make_settings(kafka_bootstrap_servers=kafka_settings.kafka_bootstrap_servers,
                             producer_buffer_max_seconds=2)
    producer = EventProducer(settings, client_id="test")
    try:
        producer.send(topic.name, key="k", value=b"ok", event_type="Test")
        producer.flush(10)
        # A topic that does not exist stands in for an unreachable partition: metadata never arrives.
        with pytest.raises(DeliveryFailed, match="could not hand an event to Kafka for no-such-topic"):
            producer.send("no-such-topic", key="k", value=b"lost?", event_type="Test")
    finally:
        producer.close(timeout_s=2)


def test_database_has_timescaledb_loaded(database):
    with connect(database) as conn:
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        assert version is not None and version[0].startswith("2.")
        assert timescaledb_edition(conn) in ("apache", "timescale")


def test_plain_database_has_no_timescaledb(plain_database):
    with connect(plain_database) as conn:
        assert timescaledb_edition(conn) is None


def test_migrations_apply_once_and_refuse_an_edited_file(database, tmp_path: Path):
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    (tmp_path / "0002_second.sql").write_text("ALTER TABLE things ADD COLUMN name text;")
    assert migrate(database, tmp_path) == [1, 2]
    assert migrate(database, tmp_path) == []
    (tmp_path / "0002_second.sql").write_text("ALTER TABLE things ADD COLUMN label text;")
    with pytest.raises(RuntimeError, match="0002_second.sql changed after it was applied"):
        migrate(database, tmp_path)


def test_failed_migration_leaves_nothing_half_applied(database, tmp_path: Path):
    (tmp_path / "0001_broken.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    with pytest.raises(Exception, match="no_such_function"):
        migrate(database, tmp_path)
    with connect(database) as conn:
        assert conn.execute("SELECT to_regclass('half')").fetchone()[0] is None


def test_unreachable_database_is_a_clear_error_naming_the_variable():
    from pantau.db import DatabaseUnavailable

    settings = make_settings(database_url=f"postgresql://x:y@127.0.0.1:1/{uuid.uuid4().hex}")
    with pytest.raises(DatabaseUnavailable, match="DATABASE_URL"):
        connect(settings, timeout_s=1)
