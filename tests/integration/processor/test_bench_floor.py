"""The bench's Kafka I/O floor does the work the processor is compared with: every event read, and one
record of it written back, committed."""

from __future__ import annotations

from collections import Counter

from tests.benchmarks.bench_processor import kafka_floor, simulator_events
from tests.integration.processor.workers import ProcessorEnv


def test_kafka_floor_writes_back_each_event_once(processor_env: ProcessorEnv) -> None:
    events = simulator_events(3_000)
    per_topic = Counter(event.payload.TOPIC for event in events)
    assert len(per_topic) == 3  # prices, shipments and harvests

    events_per_s, events_per_cpu_s = kafka_floor(processor_env, events)

    sent: Counter[bytes] = Counter()
    for topic, count in per_topic.items():
        records = processor_env.read_raw(processor_env.topic(topic), until=lambda rs, n=count: len(rs) >= n)
        sent.update(record.value for record in records)
    echoed = processor_env.read_raw(processor_env.prefix + "floor-echo", until=lambda rs: len(rs) >= len(events),
                                    settle_s=1.0)  # fmt: skip
    assert Counter(record.value for record in echoed) == sent
    assert sum(sent.values()) == len(events)
    assert 0 < events_per_s <= events_per_cpu_s  # the CPU time is the one thread's, never above the wall time
