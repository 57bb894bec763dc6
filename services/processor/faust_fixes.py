"""Workarounds for faust-streaming 0.15.3 bugs the processor hits. Each says what broke, the issue,
and when it can go; `apply()` is called by create_app (it patches Faust's classes, so it is not run
at import time)."""

from __future__ import annotations

from collections.abc import Mapping

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP


async def _highwaters_from_the_broker(self: AIOKafkaConsumerThread, partitions: list[TP]) -> Mapping[TP, int]:
    # Under exactly_once Faust takes recovery highwaters from consumer.last_stable_offset(), which
    # aiokafka only knows after a fetch of that partition: a freshly started worker gets None, reads
    # it as "changelog empty" and starts with empty tables (robinhood/faust #658, robinhood/aiokafka #7;
    # seen here after a SIGKILL). ListOffsets with the consumer's isolation level (read_committed under
    # exactly_once) returns the last stable offset from the broker itself. Remove when faust-streaming
    # builds highwaters from end_offsets under exactly_once.
    consumer = self._ensure_consumer()
    return await consumer.end_offsets(list(partitions))


def apply() -> None:
    AIOKafkaConsumerThread._highwaters = _highwaters_from_the_broker
