"""Helpers for the sink tests: the contract's real topics on the test broker, a fresh consumer group
that starts at their current end (so a test reads only what is produced after it starts), a
producer for events, and waits with bounded retries."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from pantau.contracts.codec import encode_event
from pantau.contracts.models import EVENT_TOPICS, AnyEvent
from pantau.contracts.topics import TOPICS, topic_specs
from pantau.db import migrate
from pantau.kafka import EventProducer, ensure_topics
from pantau.settings import Settings
from services.sink.service import Sink
from tests.conftest import make_settings

T = TypeVar("T")


class NotYet(AssertionError):
    pass


def eventually(check: Callable[[], T], timeout_s: float = 60.0, interval_s: float = 0.5) -> T:
    """Retry `check` (which raises AssertionError until it holds) for up to `timeout_s`."""
    for attempt in Retrying(
        retry=retry_if_exception_type(AssertionError),
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(interval_s),
        reraise=True,
    ):
        with attempt:
            return check()
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_group_at_end(settings: Settings) -> str:
    """A new consumer group whose committed offsets are the topics' current end offsets."""
    group = f"sink-test-{uuid.uuid4().hex[:12]}"
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    try:
        partitions = [TopicPartition(t, p) for t in TOPICS for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in ends.items()})
    finally:
        consumer.close(autocommit=False)
    return group


def end_offsets(settings: Settings, topic: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return consumer.end_offsets(partitions)
    finally:
        consumer.close()


def read_from(settings: Settings, starts: dict[TopicPartition, int], idle_ms: int = 3000) -> list[bytes]:
    """Every record value from `starts` on, until nothing new arrives for `idle_ms`."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False, consumer_timeout_ms=idle_ms
    )
    try:
        consumer.assign(list(starts))
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        return [message.value for message in consumer]
    finally:
        consumer.close()


def produce(settings: Settings, events: Iterable[AnyEvent]) -> int:
    count = 0
    with EventProducer(settings, client_id="sink-test") as producer:
        for event in events:
            producer.send(EVENT_TOPICS[event.event_type], event.payload.kafka_key(), encode_event(event),
                          event.event_type)
            count += 1
        producer.flush()
    return count


def produce_raw(settings: Settings, topic: str, key: str, value: bytes) -> None:
    with EventProducer(settings, client_id="sink-test") as producer:
        producer.send(topic, key, value, "Raw")
        producer.flush()


def count_rows(settings: Settings, table: str, source: str) -> int:
    with psycopg.connect(settings.database_url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table} WHERE source = %s", (source,)).fetchone()[0]


@pytest.fixture(scope="session")
def sink_topics(kafka_broker: str) -> None:
    """The contract's five topics exist on the test broker (as `pantau bootstrap` creates them)."""
    ensure_topics(make_settings(kafka_bootstrap_servers=kafka_broker), topic_specs())


@pytest.fixture
def sink_settings(database: Settings, sink_topics: None) -> Settings:
    """A migrated TimescaleDB database and the test broker; small batches so tests see several."""
    migrate(database)
    return make_settings(database_url=database.database_url, sink_batch_max_rows=500, sink_batch_max_seconds=0.2)


@pytest.fixture
def running_sink(sink_settings: Settings) -> Iterator[Sink]:
    """A sink in this process (a thread), in a fresh consumer group starting at the topics' end."""
    sink = Sink(sink_settings, group_id=fresh_group_at_end(sink_settings))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            sink.run()
        except BaseException as exc:  # surfaced by the fixture, not lost in the thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="sink", daemon=True)
    thread.start()
    eventually(lambda: _assert(sink.consumer.assignment()), timeout_s=60)  # joined the group
    yield sink
    sink.stop()
    thread.join(60)
    assert not thread.is_alive(), "the sink did not stop within 60 s of stop()"
    if failure:
        raise failure[0]


def _assert(value: object) -> object:
    assert value
    return value
