"""Workarounds for faust-streaming 0.15.3 bugs the processor hits. Each says what broke, the issue,
and when it can go; `apply()` is called by create_app (it patches Faust's classes, so it is not run
at import time)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import cast

from faust.transport.consumer import CONSUMER_FETCHING, Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP, Message
from mode import Service, ServiceT


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
    Consumer._drain_messages = _drain_messages


async def _drain_messages(self: Consumer, fetcher: ServiceT) -> None:  # pragma: no cover
    # faust-streaming 0.15.3 Consumer._drain_messages with two changes. Records of a topic in
    # `app.batch_sinks` go to that sink as one list per partition and fetch (a stage's agent reads
    # those lists), instead of one conductor callback, stream event and sensor round per record:
    # those cost more than the processing of an event. Other records (table changelogs) go to the
    # conductor with a plain await while the flow is not suspended, instead of through
    # Service.wait_first(callback, suspend_flow.wait()) for every record. When a rebalance suspends
    # the flow the original path is taken. A record this path delivers late or twice is sorted out
    # by services/processor/sequencer.py; so a sink gets every fetched record, without Faust's
    # read-offset filter: records fetched before a seek (the sequencer seeks back to a hole) and
    # handed over after it would move that offset past the records the seek brings again, and the
    # filter would drop those as already read. Remove when Faust's fetch loop stops paying per record.
    callback = self.callback
    sinks: Mapping[str, Callable[[list[Message]], Awaitable[None]]] = getattr(self.app, "batch_sinks", {})
    to_message = self._to_message
    consumer_should_stop = cast(Service, self)._stopped.is_set
    fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    suspended = self.suspend_flow.is_set
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(CONSUMER_FETCHING)
            records, active_partitions = await self._wait_next_records(1.0)
            await self.sleep(0)
            if records is None or self.should_stop:
                unset_flag(CONSUMER_FETCHING)
                continue
            if not self.flow_active:
                await self.perform_seek()  # as Consumer.getmany does: read again from committed offsets
                unset_flag(CONSUMER_FETCHING)
                continue
            generation_id = self.app.consumer_generation_id
            for tp, tp_records in records.items():
                if not self.flow_active or self.app.consumer_generation_id != generation_id:
                    break
                paused = active_partitions is not None and tp not in active_partitions
                if paused and tp not in self._buffered_partitions:
                    continue
                sink = sinks.get(tp.topic)
                if sink is not None:
                    await sink([to_message(tp, record) for record in tp_records])
                    continue
                r_offset = get_read_offset(tp)
                for record in (r for r in tp_records if r_offset is None or r.offset >= r_offset):
                    message = to_message(tp, record)
                    if suspended():
                        await self.wait_first(callback(message), self.suspend_flow.wait())
                    else:
                        await callback(message)
                    set_read_offset(tp, record.offset)
            unset_flag(CONSUMER_FETCHING)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(CONSUMER_FETCHING)
