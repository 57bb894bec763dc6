"""The sink joins its consumer group only once its client knows every topic's partitions: a group
leader that assigns earlier leaves the group with no partitions for good (kafka-python #2377)."""

from __future__ import annotations

import threading

import pytest
import structlog
from kafka.errors import KafkaConnectionError

import services.sink.__main__ as sink_main
from pantau.kafka import BrokerUnavailable
from pantau.settings import Settings
from services.sink.service import TOPICS, Sink


class MetadataLagging:
    """A consumer whose metadata lists the topics only from the `known_from`-th lookup on."""

    def __init__(self, known_from: int) -> None:
        self.known_from = known_from
        self.lookups = 0
        self.subscribed: list[str] | None = None

    def partitions_for_topic(self, topic: str) -> set[int]:
        self.lookups += 1
        return {0, 1, 2} if self.lookups >= self.known_from else set()

    def subscribe(self, topics: list[str]) -> None:
        self.subscribed = topics


class BrokerGone:
    """A consumer whose broker went away after the sink started: lookups fail as kafka-python's do
    when the connection is refused."""

    def partitions_for_topic(self, topic: str) -> set[int]:
        raise KafkaConnectionError("111 ECONNREFUSED")


def sink_with(consumer: MetadataLagging | BrokerGone) -> Sink:
    sink = object.__new__(Sink)  # no broker or database: only the topic wait is under test
    sink.consumer = consumer
    sink.settings = Settings(kafka_bootstrap_servers="127.0.0.1:29092")
    sink._stopping = threading.Event()
    return sink


def test_the_sink_waits_until_every_topic_has_partitions():
    consumer = MetadataLagging(known_from=8)
    sink = sink_with(consumer)
    sink._stopping.wait = lambda timeout: False  # do not really sleep between lookups
    sink._wait_for_topics()
    assert consumer.lookups >= 8 + len(TOPICS) - 1  # it looked again until all of them were known


def test_a_stop_ends_the_wait():
    consumer = MetadataLagging(known_from=10**9)  # the topics never appear
    sink = sink_with(consumer)
    timer = threading.Timer(0.2, sink._stopping.set)
    timer.start()
    sink._wait_for_topics()
    timer.join()
    assert sink.stopping


def test_a_broker_gone_meanwhile_stops_the_sink_with_the_address_to_check():
    # kafka-python's consumer never recovers from this (its next lookup waits for ever, seen with a
    # real broker killed and restarted): the sink must stop, for its supervisor to restart it.
    sink = sink_with(BrokerGone())
    with pytest.raises(BrokerUnavailable, match=r"KAFKA_BOOTSTRAP_SERVERS=127\.0\.0\.1:29092 went away.*ECONNREFUSED"):
        sink._wait_for_topics()


def test_the_sink_exits_with_a_logged_error_when_kafka_is_unavailable(monkeypatch):
    def unavailable(settings, topics):
        raise BrokerUnavailable("no Kafka broker answered at KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1 within 120s")

    monkeypatch.setattr(sink_main, "wait_for_topics", unavailable)
    monkeypatch.setattr(sink_main, "configure_logging", lambda settings, service: structlog.get_logger())
    with structlog.testing.capture_logs() as logs:
        assert sink_main.main() == 1
    assert [(entry["log_level"], entry["event"]) for entry in logs] == [("error", "kafka unavailable")]
    assert "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1" in logs[0]["error"]
