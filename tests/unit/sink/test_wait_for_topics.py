"""The sink joins its consumer group only once its client knows every topic's partitions: a group
leader that assigns earlier leaves the group with no partitions for good (kafka-python #2377)."""

from __future__ import annotations

import threading

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


def sink_with(consumer: MetadataLagging) -> Sink:
    sink = object.__new__(Sink)  # no broker or database: only the topic wait is under test
    sink.consumer = consumer
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
