"""Hands each partition's records to the processor in offset order, without holes.

The processor commits offsets itself (services/processor/committer.py), so it must never commit past a
record it has not processed. Faust's consumer relies on acks for that: around a rebalance or its
recovery it seeks back to the committed offsets while fetched records are still in flight, and
records can then be delivered twice, out of order, or not at all (dropped by the read-offset check in
Consumer._drain_messages; a later seek delivers them again). With acks on, Faust simply cannot commit
past such a hole; here the sequencer gives the same guarantee:

- the expected next offset of a partition starts at the group's committed offset (asked from the
  broker after every assignment) and moves only with a commit;
- records are kept per partition by offset (a repeat replaces itself), records below the expected
  offset are dropped (already committed), and only the run contiguous from the expected offset is
  handed out;
- a hole that stays open (the record was dropped, not just late) makes the sequencer seek the
  partition back to the expected offset so the broker delivers it again; a hole still open after
  HOLE_RETRIES seeks is a real gap in the log (retention, compaction, a transactional producer's
  markers) and is skipped with an error logged;
- a dropped delivery with nothing after it shows no hole (a takeover once left the last 214 records of
  a partition unread for good): a partition whose log goes on past its expected offset while nothing
  of it has been delivered for STALL_S is re-read the same way (`rescue`, given the log end offsets).

The processor's inputs are written by non-transactional producers (including its own repartition
topics), so their offsets are contiguous and a hole always means a lost delivery.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable

import faust
import structlog
from aiokafka.structs import TopicPartition
from faust.types import TP, Message

log = structlog.get_logger(__name__)

HOLE_GRACE_S = 0.5  # a hole this old is re-read from the broker
HOLE_RETRIES = 3  # seeks before a hole is accepted as a gap in the log
STALL_S = 20.0  # a partition with records in the log and none delivered this long is re-read


class Sequencer:
    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.expected: dict[TP, int] = {}
        self.pending: dict[TP, dict[int, Message]] = defaultdict(dict)
        self.hole_since: dict[TP, float] = {}
        self.seeks: dict[TP, int] = defaultdict(int)
        self.stalled_since: dict[TP, float] = {}
        self.resets = 0

    def reset(self) -> None:
        """Forget everything (a rebalance: what was delivered is read again from committed offsets)."""
        self.resets += 1
        self.expected.clear()
        self.pending.clear()
        self.hole_since.clear()
        self.seeks.clear()
        self.stalled_since.clear()

    def add(self, messages: Iterable[Message]) -> None:
        for message in messages:
            self.pending[message.tp][message.offset] = message

    def partitions(self, topic: str) -> list[TP]:
        """Partitions of `topic` with records waiting; forgets those no longer assigned."""
        assigned = self.app.consumer.assignment()
        for tp in [tp for tp in self.pending if tp not in assigned]:
            self.forget(tp)
        return [tp for tp, records in self.pending.items() if tp.topic == topic and records]

    def forget(self, tp: TP) -> None:
        self.pending.pop(tp, None)
        self.expected.pop(tp, None)
        self.hole_since.pop(tp, None)
        self.seeks.pop(tp, None)
        self.stalled_since.pop(tp, None)

    async def run(self, tp: TP) -> list[Message]:
        """The records of `tp` contiguous from its expected offset (not removed until `advance`)."""
        if tp not in self.expected:
            resets = self.resets
            start = await self._start_offset(tp)
            if resets != self.resets:
                return []  # a rebalance came meanwhile: the offset may be stale
            self.expected[tp] = start
        records = self.pending[tp]
        expected = self.expected[tp]
        for offset in [o for o in records if o < expected]:
            del records[offset]  # already committed: a repeated delivery
        run = []
        while expected in records:
            run.append(records[expected])
            expected += 1
        if run or not records:
            self.hole_since.pop(tp, None)
        else:
            self.hole_since.setdefault(tp, time.monotonic())
        return run

    def advance(self, tp: TP, next_offset: int) -> None:
        """The records below next_offset are committed."""
        records = self.pending.get(tp, {})
        for offset in [o for o in records if o < next_offset]:
            del records[offset]
        self.expected[tp] = next_offset
        self.seeks.pop(tp, None)
        self.stalled_since.pop(tp, None)

    async def rescue(self, ends: dict[TP, int]) -> list[TP]:
        """Re-read the partitions (of those in `ends`, log end offsets of assigned partitions) whose log
        goes on past the expected offset while nothing has been delivered for STALL_S; returns them."""
        now, resets = time.monotonic(), self.resets
        stalled = []
        for tp, end in ends.items():
            expected = self.expected.get(tp)
            if self.pending.get(tp) or (expected is not None and end <= expected):
                self.stalled_since.pop(tp, None)  # delivering (a hole among the records is heal's), or done
                continue
            if now - self.stalled_since.setdefault(tp, now) < STALL_S or self.seeks[tp] > HOLE_RETRIES:
                continue  # after that many re-reads: markers at the log's end, not records (see heal)
            if expected is None:  # nothing delivered since the assignment: from the committed offset
                expected = await self._start_offset(tp)
                if resets != self.resets:
                    return []  # a rebalance came meanwhile: the offset may be stale
                self.expected[tp] = expected
                if end <= expected:
                    self.stalled_since.pop(tp, None)
                    continue
            log.warning("records stopped coming; re-reading the partition", topic=tp.topic, partition=tp.partition,
                        offset=expected, log_end=end, attempt=self.seeks[tp] + 1)  # fmt: skip
            self.stalled_since[tp] = now
            stalled.append(tp)
        for topic in {tp.topic for tp in stalled}:
            await self._rewind({topic}, [tp for tp in stalled if tp.topic == topic])
        return stalled

    async def heal(self, topics: set[str]) -> list[TP]:
        """Re-read when a hole stayed open; returns the partitions whose hole was skipped as a gap.

        Faust's fetch loop can drop records it already took from the broker when the flow stops
        (Consumer.getmany breaks out of a fetched batch), so a seek of one partition while the
        flow runs is not enough: like Faust's own rebalance handling, the flow is stopped, every
        assigned partition of `topics` is put back to its first unprocessed offset, and the flow
        resumes."""
        now = time.monotonic()
        due = [tp for tp, since in self.hole_since.items() if now - since >= HOLE_GRACE_S * (1 + self.seeks[tp])]
        if not due:
            return []
        skipped = []
        for tp in due:
            records = self.pending.get(tp)
            if not records:
                self.hole_since.pop(tp, None)
            elif self.seeks[tp] >= HOLE_RETRIES:
                first = min(records)
                log.error(
                    "offsets never delivered; skipping them as a gap in the log",
                    topic=tp.topic, partition=tp.partition, missing_from=self.expected[tp], missing_to=first - 1,
                )  # fmt: skip
                self.expected[tp] = first
                self.seeks.pop(tp, None)
                self.hole_since.pop(tp, None)
                skipped.append(tp)
        holes = [tp for tp in due if tp in self.hole_since]
        if holes:
            await self._rewind(topics, holes)
        return skipped

    async def _rewind(self, topics: set[str], holes: list[TP]) -> None:
        app, consumer = self.app, self.app.consumer
        if app.rebalancing or not consumer.flow_active:
            return  # Faust's rebalance handling seeks every partition back to its committed offset
        resets = self.resets
        for tp in holes:
            self.seeks[tp] += 1
            self.hole_since[tp] = time.monotonic()
            log.info("re-reading from the first unprocessed offset", topic=tp.topic, partition=tp.partition,
                     offset=self.expected[tp], attempt=self.seeks[tp])  # fmt: skip
        consumer.stop_flow()
        try:
            for tp in sorted(t for t in consumer.assignment() if t.topic in topics):
                offset = self.expected.get(tp)
                if offset is None:
                    offset = await self._start_offset(tp)
                await consumer.seek(tp, offset)
        finally:
            if not app.rebalancing and resets == self.resets:
                consumer.resume_flow()

    async def _start_offset(self, tp: TP) -> int:
        """The group's committed offset for tp, or the log start when the group has none."""
        thread = self.app.consumer._thread  # faust-streaming 0.15 aiokafka driver: the consumer thread
        consumer = thread._ensure_consumer()
        partition = TopicPartition(tp.topic, tp.partition)
        committed = await thread.call_thread(consumer.committed, partition)
        if committed is not None:
            return committed
        beginning = await thread.call_thread(consumer.beginning_offsets, [partition])
        return beginning[partition]
