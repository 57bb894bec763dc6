"""Commits a batch: its outputs, its table changes and its input offsets, together.

exactly_once: one Kafka transaction per input partition, on the transactional producer Faust keeps
for that partition (transactional id `{app id}-{topic group}-{partition}`): the batch's alerts,
dead letters, repartition records and changelog records are sent, the input offset is added with
send_offsets_to_transaction, and the transaction commits. A crash before the commit aborts all of
it; a read_committed consumer sees all of it or none of it.

Why not Faust's own commit: with exactly_once Faust commits acked offsets from a background task
whose offset snapshot can be older than a commit made meanwhile (it moved committed offsets back:
duplicates after a kill), its changelog writes go through a buffer that can miss the transaction
of the offsets they belong to (faust-streaming #517, #177), and a send to a topic it does not
consume (our alert and dead-letter topics) has no transactional producer at all. So the source
topics are declared with acks=False, agents get fetched records without Faust events to ack (see
faust_fixes), and this class commits.

Repartition records are the exception: they are sent (and acknowledged) before the transaction,
outside it, so that the repartition topics stay free of transaction markers and their offsets stay
contiguous (services/processor/sequencer.py relies on that to tell a lost delivery from a gap). A
batch that fails after that point is processed again and forwards the same items again (bundled as
that batch comes); the repartition stages' detectors are idempotent per item (shipment snapshots
carry a version, harvests an id, prices an event time), so the alerts stay exactly-once.

at_least_once: repartition records and outputs are sent and acknowledged first, then the changelog
records, then the offsets are committed; a crash in between repeats work, never loses it (ids are
deterministic).

A rebalance bumps `epoch` (on_partitions_revoked waits for a commit in flight); a batch prepared in
an older epoch is not committed: its events are read again from the committed offsets.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import faust
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from faust.types import TP

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes | None  # None: a tombstone (a table key deleted)
    partition: int | None = None  # None: partition_for picks it from the key


@dataclass
class Unit:
    """What one input partition's share of a batch (or one timer tick of it) commits."""

    tp: TP
    next_offset: int | None  # None for a timer tick: no input consumed
    outputs: list[Record] = field(default_factory=list)  # alerts and dead letters
    changelog: list[Record] = field(default_factory=list)
    # repartition records: written before the transaction, outside it (see the module docstring)
    forwards: list[Record] = field(default_factory=list)


@lru_cache(maxsize=65536)
def partition_for(key: bytes, partitions: int) -> int:
    """Where Kafka's default partitioner (murmur2, as every producer of the project uses) puts a record
    with this key; cached: murmur2 runs in Python here."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def _append(batch: Any, record: Record) -> bool:
    metadata = batch.append(key=record.key, value=record.value, timestamp=None, headers=[])
    return metadata is not None


class CommitFailed(RuntimeError):
    """Kafka refused a commit while the partition was still ours; the worker must restart and
    recover its tables from the changelogs."""


class Committer:
    def __init__(self, app: faust.App, exactly_once: bool) -> None:
        self.app = app
        self.exactly_once = exactly_once
        self.lock = asyncio.Lock()
        self.epoch = 0
        self._partitions: dict[str, int] = {}  # topic -> its partition count

    async def on_partitions_revoked(self) -> None:
        async with self.lock:  # let a commit in flight finish first
            self.epoch += 1

    async def commit(self, units: Sequence[Unit], epoch: int) -> bool:
        """True when committed; False when a rebalance came first (nothing was committed)."""
        async with self.lock:
            if epoch != self.epoch:
                return False
            assigned = self.app.consumer.assignment()
            if any(unit.tp not in assigned for unit in units):
                return False
            if self.exactly_once:
                await self._send_acknowledged([r for u in units for r in u.forwards])
                await asyncio.gather(*(self._commit_transaction(unit) for unit in units))
                return True
            return await self._commit_at_least_once(units)

    def _transactional_id(self, tp: TP) -> str:
        group = self.app.assignor.group_for_topic(tp.topic)
        return f"{self.app.conf.id}-{group}-{tp.partition}"

    async def _send_acknowledged(self, records: list[Record]) -> None:
        """Send outside any transaction and wait until Kafka acknowledged every record."""
        if not records:
            return
        producer = self.app.producer._producer  # faust-streaming 0.15: Faust's plain aiokafka producer
        try:
            await asyncio.gather(*await self._send(producer, records))
        except Exception as exc:
            raise CommitFailed(f"Kafka did not acknowledge {len(records)} records: {exc!r}") from exc

    async def _send(self, producer: AIOKafkaProducer, records: Sequence[Record]) -> list[asyncio.Future]:
        """Hand records to the producer, one batch per partition (a per-record send costs about as
        much as the processing of an event); keyed records go where Kafka's default partitioner
        (murmur2, as every other producer of the project) puts them."""
        by_partition: dict[tuple[str, int], list[Record]] = defaultdict(list)
        for record in records:
            partition = record.partition
            if partition is None:
                partitions = self._partitions.get(record.topic)
                if partitions is None:
                    partitions = self._partitions[record.topic] = len(await producer.partitions_for(record.topic))
                partition = partition_for(record.key, partitions)
            by_partition[(record.topic, partition)].append(record)
        futures = []
        for (topic, partition), batch_records in by_partition.items():
            batch = producer.create_batch()
            for record in batch_records:
                if not _append(batch, record):
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    if not _append(batch, record):
                        raise CommitFailed(f"a record for {topic} is larger than the producer's max batch size")
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures

    async def _commit_transaction(self, unit: Unit) -> None:
        tid = self._transactional_id(unit.tp)
        producers = self.app.producer._transaction_producers  # faust-streaming 0.15 aiokafka driver
        producer = producers.get(tid)
        if producer is None:
            raise CommitFailed(f"no transactional producer {tid} for assigned partition {unit.tp}")
        try:
            async with self.app.producer._trn_locks[tid]:
                await self._send(producer, [*unit.outputs, *unit.changelog])
                if unit.next_offset is not None:
                    await producer.send_offsets_to_transaction({unit.tp: unit.next_offset}, self.app.conf.id)
                await producer.commit_transaction()
                await producer.begin_transaction()
        except Exception as exc:
            raise CommitFailed(f"transaction {tid} for {unit.tp} did not commit: {exc!r}") from exc

    async def _commit_at_least_once(self, units: Sequence[Unit]) -> bool:
        await self._send_acknowledged([r for u in units for r in (*u.forwards, *u.outputs)])
        await self._send_acknowledged([r for u in units for r in u.changelog])
        offsets = {unit.tp: unit.next_offset for unit in units if unit.next_offset is not None}
        if not offsets:
            return True
        return await self.app.consumer._commit(offsets)  # False: rebalanced before the commit
