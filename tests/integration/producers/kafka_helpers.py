"""Fresh copies of the contract's topics for one test, and reading them back from the real broker."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kafka import KafkaConsumer

from pantau.contracts import topic_spec
from pantau.kafka import ensure_topics
from pantau.settings import Settings


@dataclass
class FreshTopic:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=lambda: {"retention.ms": "86400000"})


def fresh_topics(settings: Settings, fresh_topic_name, *contract_topics: str) -> dict[str, str]:
    """{contract topic: fresh topic with the same partition count}, created on the broker."""
    mapping = {topic: fresh_topic_name() for topic in contract_topics}
    ensure_topics(settings, [FreshTopic(name, topic_spec(topic).partitions) for topic, name in mapping.items()])
    return mapping


def consume_all(settings: Settings, topics: list[str], expected: int | None = None, idle_s: float = 5.0) -> list:
    """Every record on `topics` (from the beginning): stops at `expected` records or after `idle_s`
    seconds without a new one."""
    consumer = KafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    records, last_new = [], time.monotonic()
    try:
        while time.monotonic() - last_new < idle_s:
            batch = consumer.poll(timeout_ms=500, max_records=5000)
            for partition_records in batch.values():
                records.extend(partition_records)
                last_new = time.monotonic()
            if expected is not None and len(records) >= expected:
                break
    finally:
        consumer.close()
    return records
