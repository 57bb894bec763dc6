"""The composition root: `create_app(settings)` builds the Faust app, its topics, tables and agents.

Nothing is created at import time. One agent per stage (services/processor/stages.py), each with
concurrency=1 (faust-streaming #606: concurrent actors can commit past an event still in flight).
An agent reads its topic's records as the worker fetched them, a list per partition and fetch (see
faust_fixes: Faust's per-record delivery costs more than the processing of an event), and
processes what came while it was busy as one batch; more throughput comes from partitions shared
among workers.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from faust.types import TP, Message

from pantau.reference import load_reference
from pantau.settings import Settings
from services.processor import faust_fixes
from services.processor.committer import CommitFailed, Committer
from services.processor.metrics import HELD_EVENTS, PROCESSING_SECONDS
from services.processor.sequencer import Sequencer
from services.processor.stages import (
    DETECTOR_TYPES,
    AggregateStage,
    Detection,
    DisparityStage,
    HarvestStage,
    PriceStage,
    ShipmentStage,
    Stage,
)
from services.processor.tables import NO_WATERMARK, StateTable
from services.processor.topics import PARTITIONS, TopicNames, raw_topic
from services.processor.work import Outputs, Work, set_lag

log = structlog.get_logger(__name__)

FETCHED_LISTS_WAITING = 64  # per agent; beyond it the fetch loop waits (back-pressure)
MARKS_MAX = 1024  # noted points per time-source set; beyond it every other one goes (see safe_time)


class HeldRecords:
    """One partition's items waiting for the safe time: a heap by event time, so that each batch
    releases what became ready without sorting everything still waiting (a catch-up holds hundreds
    of thousands), and the offsets of their records in arrival order, whose first is the oldest
    record with an item still waiting (the committed offset stays there)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Any]] = []
        self._offsets: deque[int] = deque()
        self._waiting: dict[int, int] = {}  # record offset -> its items still waiting

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, items: Iterable[Any]) -> None:
        """Items of records in offset order, each with its event time `at`, `offset` and `index`."""
        heap, offsets, waiting = self._heap, self._offsets, self._waiting
        for item in items:
            # (offset, index) is unique within a partition: items are never compared
            heapq.heappush(heap, (item.at, item.offset, item.index, item))
            count = waiting.get(item.offset)
            if count is None:
                offsets.append(item.offset)
                count = 0
            waiting[item.offset] = count + 1

    def has_ready(self, safe: float) -> bool:
        return bool(self._heap) and self._heap[0][0] <= safe

    def pop_ready(self, safe: float, limit: int | None = None) -> list[Any]:
        """The items with event time up to `safe` (the first `limit` of them), in event-time order
        (then record order)."""
        ready: list[Any] = []
        heap, waiting = self._heap, self._waiting
        limit = len(heap) if limit is None else limit
        while heap and heap[0][0] <= safe and len(ready) < limit:
            item = heapq.heappop(heap)[3]
            left = waiting[item.offset] - 1
            if left:
                waiting[item.offset] = left
            else:
                del waiting[item.offset]
            ready.append(item)
        offsets = self._offsets
        while offsets and offsets[0] not in waiting:
            offsets.popleft()
        return ready

    def oldest_offset(self) -> int | None:
        return self._offsets[0] if self._offsets else None


@dataclass
class Health:
    """What /healthz reports. Written on the event loop, read from the metrics thread."""

    unassigned_limit_s: float
    stall_limit_s: float
    started: float = field(default_factory=time.monotonic)
    last_beat: float = field(default_factory=time.monotonic)
    last_assigned: float | None = None
    assigned_partitions: int = 0
    stopped_agents: tuple[str, ...] = ()

    def check(self) -> dict[str, Any]:
        now = time.monotonic()
        since_assigned = now - (self.last_assigned if self.last_assigned is not None else self.started)
        report: dict[str, Any] = {
            "status": "ok",
            "assigned_partitions": self.assigned_partitions,
            "seconds_since_assignment": round(since_assigned, 1) if self.assigned_partitions == 0 else 0.0,
        }
        if self.stopped_agents:
            report["status"] = "agents_stopped"
            report["stopped_agents"] = list(self.stopped_agents)
        elif now - self.last_beat > self.stall_limit_s:
            report["status"] = "event_loop_stalled"
            report["seconds_since_heartbeat"] = round(now - self.last_beat, 1)
        elif self.assigned_partitions == 0 and since_assigned > self.unassigned_limit_s:
            report["status"] = "no_partitions_assigned"
        return report


class Runner:
    """Runs a stage over batches: sequence, process, commit, then (and only then) apply states and
    metrics. A batch whose partitions were revoked meanwhile is dropped: it is read again."""

    def __init__(self, app: faust.App, settings: Settings, committer: Committer, outputs: Outputs) -> None:
        self.app = app
        self.settings = settings
        self.committer = committer
        self.outputs = outputs
        self.sequencer = Sequencer(app)
        self.tick_event_s = settings.processor_tick_event_minutes * 60.0
        self.partition_watermark: dict[TP, float] = {}
        self.last_tick: dict[TP, float] = {}
        self.last_batch_at: dict[TP, float] = {}
        self.last_offset: dict[TP, int] = {}
        self.price_latest: dict[str, float] = {}
        self.locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.input_topics: set[str] = set()  # set by create_app: the topics the stages read
        self.handed: dict[TP, int] = {}  # last offset given to a stage (processed, or waiting in `held`)
        self.received_watermark: dict[TP, float] = {}
        self.held: dict[TP, HeldRecords] = {}  # items of time-driven stages waiting for the safe time
        self.repartition_topics: set[str] = set()  # set by create_app
        self.safe: dict[frozenset[str], float] = {}
        # per time-source set: (repartition log ends, source time then), see safe_time
        self.marks: dict[frozenset[str], list[tuple[dict[TP, int], float]]] = {}
        self._offsets_client: AIOKafkaConsumer | None = None

    def on_partitions_revoked(self) -> None:
        self.sequencer.reset()
        self.held.clear()
        self.handed.clear()
        self.safe.clear()
        self.marks.clear()

    async def run(self, stage: Stage, stream: faust.StreamT) -> None:
        """Each batch is what was fetched while the previous one was processed and committed: no
        waiting for a batch to fill when little comes, larger batches when much does."""
        fetched = stream.channel.queue
        limit = self.settings.processor_batch_max_events
        async for messages in stream:
            batch = list(messages)
            while len(batch) < limit and not fetched.empty():
                batch += fetched.get_nowait()
            for start in range(0, len(batch), limit):  # one fetch can bring more than the limit
                await self.process(stage, batch[start : start + limit])

    async def process(self, stage: Stage, messages: Sequence[Message]) -> None:
        async with self.locks[stage.name]:
            # records fetched before a rebalance are read again from the committed offsets
            generation = self.app.consumer_generation_id
            self.sequencer.add(m for m in messages if m.generation_id == generation)
            await self._process_in_sequence(stage)

    async def _process_in_sequence(self, stage: Stage) -> None:
        while await self._process_batch(stage):
            pass  # a held stage releases at most a batch of items at a time

    async def _process_batch(self, stage: Stage) -> bool:
        """One batch of the stage; True when it was committed and held items are still ready."""
        epoch = self.committer.epoch
        started = time.perf_counter()
        runs: dict[TP, list[Any]] = {}
        for tp in self.sequencer.partitions(stage.topic):
            run = await self.sequencer.run(tp)
            if run:
                runs[tp] = run
        if epoch != self.committer.epoch:
            return False
        if stage.time_sources:
            now, plans = await self._release(stage, runs, epoch)
        else:
            plans = {tp: (run, run[-1].offset + 1, run, True) for tp, run in runs.items()}
            now = await self.safe_time({stage.topic}) if stage.ticks and plans else NO_WATERMARK
        if not plans:
            return False
        prepared = [
            # a partition with ready items still held is not judged at `now` yet: they come first
            self._prepare(stage, tp, ready, next_offset, now if complete else NO_WATERMARK)
            for tp, (ready, next_offset, _, complete) in plans.items()
        ]
        if not await self._commit(prepared, epoch):
            log.info("batch dropped after a rebalance; its events are read again", stage=stage.name)
            return False
        for tp, (_, _, received, _) in plans.items():
            if received:
                self.sequencer.advance(tp, received[-1].offset + 1)
                self.handed[tp] = received[-1].offset
        if stage.time_sources:
            waiting = sum(len(held) for tp, held in self.held.items() if tp.topic == stage.topic)
            HELD_EVENTS.labels(self.outputs.label(stage.topic)).set(waiting)
        PROCESSING_SECONDS.labels(self.outputs.label(stage.topic)).observe(time.perf_counter() - started)
        return not all(complete for _, _, _, complete in plans.values())

    async def _release(
        self, stage: Stage, runs: dict[TP, list[Any]], epoch: int
    ) -> tuple[float, dict[TP, tuple[list, int, list, bool]]]:
        """Items of a time-driven stage's records wait until the worker is safely past their event
        time, then go in event-time order: a replay or a catch-up after a restart does not judge a
        shipment late only because another partition's records about it have not been handled yet.
        At most PROCESSOR_BATCH_MAX_EVENTS items go per batch (a bundle holds hundreds); a partition
        whose ready items did not all go is not `complete`. The committed offset stays at the oldest
        record with an item still waiting (it is read again after a crash; the aggregates' detectors
        ignore an item they have already applied). The held items are changed in place: a batch
        that is not committed means a rebalance, which forgets them. Returns the safe time too."""
        items = {tp: [item for message in run for item in stage.unpack(message)] for tp, run in runs.items()}
        for tp, unpacked in items.items():  # tentatively handed: counts for the stage's safe time
            newest = max(item.at for item in unpacked)
            if newest > self.received_watermark.get(tp, NO_WATERMARK):
                self.received_watermark[tp] = newest
        safe = await self.safe_time(stage.time_sources, extra=runs)
        if epoch != self.committer.epoch:
            return safe, {}  # revoked meanwhile: these records are read again
        plans = {}
        budget = self.settings.processor_batch_max_events
        for tp in sorted({*runs, *(tp for tp, held in self.held.items() if held and tp.topic == stage.topic)}):
            received = runs.get(tp, [])
            held = self.held.setdefault(tp, HeldRecords())
            held.add(items.get(tp, ()))
            ready = held.pop_ready(safe, budget)
            budget -= len(ready)
            if not ready and not received:
                continue
            oldest = held.oldest_offset()
            if oldest is not None:
                next_offset = oldest
            else:
                next_offset = 1 + (received[-1].offset if received else self.handed.get(tp, -1))
            plans[tp] = (ready, next_offset, received, not held.has_ready(safe))
        return safe, plans

    async def heal(self, stages: Iterable[Stage]) -> None:
        """Re-read partitions with a hole; process what a skipped gap unblocked."""
        stages = list(stages)
        skipped = await self.sequencer.heal({stage.topic for stage in stages})
        for stage in stages:
            if any(tp.topic == stage.topic for tp in skipped):
                async with self.locks[stage.name]:
                    await self._process_in_sequence(stage)

    def _prepare(
        self, stage: Stage, tp: TP, messages: list[Any], next_offset: int | None, now: float
    ) -> tuple[Work, float, float | None]:
        work = Work(tp, next_offset, self.outputs)
        watermark = self.partition_watermark.get(tp, NO_WATERMARK)
        for message in messages:  # offset order; a held stage's items are released in event-time order
            stage.handle(work, message)
            event_time = stage.event_time(message)
            if event_time is not None and event_time > watermark:
                watermark = event_time
        stage.finish(work)
        tick_at = None
        if stage.ticks and self._tick_due(tp, now):
            stage.tick(work, tp.partition, now)
            tick_at = now
        return work, watermark, tick_at

    def _tick_due(self, tp: TP, watermark: float) -> bool:
        if watermark == NO_WATERMARK:
            return False
        last = self.last_tick.get(tp)
        return last is None or watermark - last >= self.tick_event_s

    async def _commit(self, prepared: list[tuple[Work, float, float | None]], epoch: int) -> bool:
        try:
            committed = await self.committer.commit([work.unit() for work, _, _ in prepared], epoch)
        except CommitFailed as exc:
            log.error("commit failed; stopping so that a restart recovers the tables", error=str(exc))
            await self.app.crash(exc)
            raise
        if not committed:
            return False
        now = time.monotonic()
        for work, watermark, tick_at in prepared:
            work.apply_states()
            work.publish_metrics(self.price_latest)
            tp = work.tp
            if watermark > self.partition_watermark.get(tp, NO_WATERMARK):
                self.partition_watermark[tp] = watermark
            if tick_at is not None:
                self.last_tick[tp] = tick_at
            if work.next_offset is not None:
                self.last_offset[tp] = work.next_offset - 1
                self.handed.setdefault(tp, work.next_offset - 1)
                self.handed[tp] = max(self.handed[tp], work.next_offset - 1)
                self.last_batch_at[tp] = now
        return True

    async def safe_time(self, topics: set[str], extra: dict[TP, list[Any]] | None = None) -> float:
        """The event time up to which this worker has been given everything from `topics`.

        A contract topic's partition holds events roughly in event-time order, so one that still has
        records to hand over holds time at its own watermark (one that is caught up does not hold it).
        A repartition partition interleaves several sources and has no such order; instead every
        call notes the repartition log ends with the time the sources had reached: whatever is
        written after that point is at least that late, so once a noted point is fully received,
        its time bounds what is still to come. Time-driven judgements (overdue shipments, stock
        running down) use this time, so that a partition lagging behind (a replay, a restart) does
        not make its shipments look late. Log ends come from the broker. Partitions of other workers
        are not seen."""
        key = frozenset(topics)
        previous = self.safe.get(key, NO_WATERMARK)
        assigned = sorted(tp for tp in self.app.consumer.assignment() if tp.topic in topics)
        if not assigned:
            return previous
        # progress first, log ends after: a record handed meanwhile then only makes us more careful
        handed = {tp: self.handed.get(tp) for tp in assigned}
        for tp, run in (extra or {}).items():
            if run and tp in handed:
                handed[tp] = run[-1].offset
        watermarks = {
            tp: max(self.partition_watermark.get(tp, NO_WATERMARK), self.received_watermark.get(tp, NO_WATERMARK))
            for tp in assigned
        }
        ends = await self._end_offsets(assigned)
        if len(ends) < len(assigned):
            return previous
        position = {tp: handed[tp] + 1 if handed[tp] is not None else 0 for tp in assigned}
        sources = [tp for tp in assigned if tp.topic not in self.repartition_topics]
        repartitions = [tp for tp in assigned if tp.topic in self.repartition_topics]
        behind = [watermarks[tp] for tp in sources if position[tp] < ends[tp]]
        from_sources = min(behind) if behind else max(watermarks.values())
        marks = self.marks.setdefault(key, [])
        marks.append(({tp: ends[tp] for tp in repartitions}, from_sources))
        received = [
            index for index, (mark_ends, _) in enumerate(marks)
            if all(position[tp] >= end for tp, end in mark_ends.items() if tp in position)
        ]  # fmt: skip
        if not received:
            if len(marks) > MARKS_MAX:
                # thinned, not cut: the oldest points are the next to be reached; dropping them
                # would hold every record until a repartition partition caught up completely
                del marks[1::2]
            return previous
        latest = received[-1]
        bound = marks[latest][1]
        del marks[:latest]
        safe = max(previous, min(from_sources, bound))
        self.safe[key] = safe
        return safe

    async def _end_offsets(self, tps: list[TP]) -> dict[TP, int]:
        """Log end offsets from the broker (last stable offsets under read_committed)."""
        if self._offsets_client is None:
            # its own client in this loop: Faust's consumer thread answers only between long polls
            self._offsets_client = AIOKafkaConsumer(
                bootstrap_servers=self.settings.kafka_bootstrap_servers,
                isolation_level="read_committed" if self.committer.exactly_once else "read_uncommitted",
                enable_auto_commit=False,
                client_id=f"{self.settings.processor_app_id}-offsets",
            )
            await self._offsets_client.start()
        partitions = [TopicPartition(tp.topic, tp.partition) for tp in tps]
        try:
            ends = await self._offsets_client.end_offsets(partitions)
        except Exception as exc:  # broker busy or topic metadata changing: nothing is safe yet
            log.info("end offsets unavailable", error=repr(exc))
            return {}
        return {TP(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    async def release_held(self, stage: Stage) -> None:
        """Hand over records that waited for the safe time (the timer calls this)."""
        if any(self.held.get(tp) for tp in self.held if tp.topic == stage.topic):
            async with self.locks[stage.name]:
                await self._process_in_sequence(stage)

    async def tick_idle(self, stage: Stage, assigned: set[TP]) -> None:
        """Let event time pass on partitions that get no events (nothing arrives while a ferry is
        closed): judge them at the event time the worker has safely reached, not at wall time."""
        worker_watermark = await self.safe_time(stage.time_sources or {stage.topic})
        idle_after = self.settings.processor_tick_seconds
        now = time.monotonic()
        for tp in sorted(tp for tp in assigned if tp.topic == stage.topic):
            if now - self.last_batch_at.get(tp, 0.0) < idle_after:
                continue
            if not self._tick_due(tp, worker_watermark):
                continue
            async with self.locks[stage.name]:
                epoch = self.committer.epoch
                work = Work(tp, None, self.outputs)
                stage.tick(work, tp.partition, worker_watermark)
                if not work.staged and not work.records:
                    self.last_tick[tp] = worker_watermark
                    continue
                await self._commit([(work, worker_watermark, worker_watermark)], epoch)

    async def watch_partitions(self, assigned: set[TP], stage_topics: set[str], source_topics: set[str]) -> None:
        """pantau_consumer_lag_messages: records in each source partition not yet handed to a stage;
        and re-read any stage partition whose records stopped coming (Sequencer.rescue)."""
        tps = sorted(tp for tp in assigned if tp.topic in stage_topics)
        ends = await self._end_offsets(tps) if tps else {}
        for tp in tps:
            end = ends.get(tp)
            position = self.handed.get(tp)
            position = position + 1 if position is not None else self.sequencer.expected.get(tp)
            if end is not None and position is not None and tp.topic in source_topics:
                set_lag(self.outputs.label(tp.topic), tp.partition, end - position)
        await self.sequencer.rescue(ends)


@dataclass
class Processor:
    app: faust.App
    settings: Settings
    topics: TopicNames
    stages: dict[str, Stage]
    tables: dict[str, StateTable]
    runner: Runner
    committer: Committer
    health: Health

    def internal_topics(self) -> list[InternalTopic]:
        """The repartition and changelog topics, to create before the worker starts: Faust creates
        them itself only after joining, and its consumer meanwhile finds no metadata for them (the
        first alerts came minutes late). min.insync.replicas fits the replication factor."""
        replicas = self.settings.kafka_replication_factor
        config = {"min.insync.replicas": "2" if replicas >= 3 else "1"}
        topics = [
            InternalTopic(self.topics.price_by_commodity, PARTITIONS["price_by_commodity"], dict(config)),
            InternalTopic(self.topics.aggregates, PARTITIONS["aggregates"], dict(config)),
        ]
        for table in self.tables.values():
            changelog = {**config, "cleanup.policy": "compact"}
            topics.append(InternalTopic(table.changelog_topic, table.table.partitions, changelog))
        return topics


@dataclass(frozen=True)
class InternalTopic:
    name: str
    partitions: int
    config: dict[str, str]


def create_app(settings: Settings, reference: Any = None) -> Processor:
    """Build the processor from settings (and the reference data, loaded unless given)."""
    faust_fixes.apply()
    reference = reference if reference is not None else load_reference()
    detection = Detection.from_reference(reference, settings.processor_late_tolerance_hours)
    names = TopicNames.from_settings(settings)
    session_timeout = settings.processor_session_timeout_seconds
    datadir = settings.processor_data_dir / settings.processor_app_id
    datadir.mkdir(parents=True, exist_ok=True)  # Faust's worker needs it even with memory tables
    app = faust.App(
        settings.processor_app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.kafka_bootstrap_servers.split(",")],
        processing_guarantee=settings.processing_guarantee,
        store="memory://",
        datadir=str(datadir),
        autodiscover=False,
        web_enabled=False,  # /metrics and /healthz come from pantau.metrics.serve_metrics
        topic_replication_factor=settings.kafka_replication_factor,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",  # a new group starts at the oldest event: nothing skipped
        broker_session_timeout=session_timeout,
        broker_heartbeat_interval=max(0.5, session_timeout / 10.0),
        stream_wait_empty=False,  # the processor commits itself; Faust has no acks to wait for
        table_standby_replicas=0,
    )
    tables = {
        "price": StateTable(app, "price", PARTITIONS["price"], DETECTOR_TYPES["price"]),
        "disparity": StateTable(app, "disparity", PARTITIONS["price_by_commodity"], DETECTOR_TYPES["disparity"]),
        "shipment": StateTable(app, "shipment", PARTITIONS["shipment"], DETECTOR_TYPES["shipment"]),
        "harvest_intake": StateTable(app, "harvest-intake", PARTITIONS["harvest"], DETECTOR_TYPES["harvest_intake"]),
        "supply": StateTable(app, "supply", PARTITIONS["aggregates"], DETECTOR_TYPES["supply"]),
        "route": StateTable(app, "route", PARTITIONS["aggregates"], DETECTOR_TYPES["route"]),
        "harvest": StateTable(app, "harvest", PARTITIONS["aggregates"], DETECTOR_TYPES["harvest"]),
    }
    stages: dict[str, Stage] = {
        "price": PriceStage(names.price, tables["price"], detection, names.price_by_commodity),
        "disparity": DisparityStage(names.price_by_commodity, tables["disparity"], detection),
        "shipment": ShipmentStage(names.shipment, tables["shipment"], detection, names.aggregates),
        "harvest": HarvestStage(names.harvest, tables["harvest_intake"], detection, names.aggregates),
        "aggregates": AggregateStage(
            names.aggregates,
            tables["supply"],
            tables["route"],
            tables["harvest"],
            detection,
            judge_every_s=settings.processor_tick_event_minutes * 60.0,
        ),
    }
    internal = {names.price_by_commodity, names.aggregates}
    partitions = {
        names.price: PARTITIONS["price"],
        names.shipment: PARTITIONS["shipment"],
        names.harvest: PARTITIONS["harvest"],
        names.price_by_commodity: PARTITIONS["price_by_commodity"],
        names.aggregates: PARTITIONS["aggregates"],
    }
    committer = Committer(app, exactly_once=settings.processing_guarantee == "exactly_once")
    outputs = Outputs(
        names.alert,
        names.deadletter,
        settings.processor_app_id,
        names.contract_topics(),
        {name: partitions[name] for name in internal},
    )
    runner = Runner(app, settings, committer, outputs)
    runner.input_topics = {stage.topic for stage in stages.values()}
    runner.repartition_topics = {names.price_by_commodity, names.aggregates}
    stages["aggregates"].time_sources = {names.shipment, names.harvest, names.aggregates}
    # a day's disparity is judged when a later day comes: both provinces' reports of it must be in by
    # then, whichever price partition is behind (a replay, a restart)
    stages["disparity"].time_sources = {names.price, names.price_by_commodity}
    health = Health(
        unassigned_limit_s=settings.processor_unassigned_unhealthy_seconds,
        stall_limit_s=max(30.0, 10 * settings.processor_tick_seconds),
    )

    app.batch_sinks = {}  # topic -> where faust_fixes hands its fetched records
    for stage in stages.values():
        topic = raw_topic(app, stage.topic, partitions[stage.topic], internal=stage.topic in internal)
        app.topics.add(topic)  # subscribed, though no Faust stream reads it record by record
        fetched = app.channel(maxsize=FETCHED_LISTS_WAITING)
        app.batch_sinks[stage.topic] = fetched.put
        app.agent(fetched, name=f"pantau.processor.{stage.name}", concurrency=1)(_agent_for(runner, stage))

    @app.on_partitions_revoked.connect
    async def _revoked(sender: Any, revoked: set[TP], **_: Any) -> None:
        await committer.on_partitions_revoked()
        runner.on_partitions_revoked()

    source_topics = set(partitions)

    @app.timer(settings.processor_tick_seconds, name="pantau.processor.tick")
    async def _tick() -> None:
        try:
            await _on_timer()
        except CommitFailed:
            raise  # the runner has crashed the app: a restart recovers the tables
        except Exception:  # an exception escaping a Faust timer stops the whole worker
            log.exception("timer failed; retrying at the next tick")

    async def _on_timer() -> None:
        health.last_beat = time.monotonic()
        health.stopped_agents = _stopped_agents(app)
        assigned = app.consumer.assignment()
        health.assigned_partitions = sum(1 for tp in assigned if tp.topic in source_topics)
        if health.assigned_partitions:
            health.last_assigned = time.monotonic()
        await runner.heal(stages.values())
        for stage in stages.values():
            if stage.time_sources:
                await runner.release_held(stage)
            if stage.ticks:
                await runner.tick_idle(stage, assigned)
        await runner.watch_partitions(assigned, {stage.topic for stage in stages.values()}, source_topics)

    return Processor(app, settings, names, stages, tables, runner, committer, health)


def _agent_for(runner: Runner, stage: Stage) -> Any:
    async def agent(stream: faust.StreamT) -> None:
        await runner.run(stage, stream)

    agent.__name__ = agent.__qualname__ = f"{stage.name}_agent"
    return agent


def _stopped_agents(app: faust.App) -> tuple[str, ...]:
    stopped = []
    for name, agent in app.agents.items():
        tasks = [actor.actor_task for actor in agent._actors if actor.actor_task is not None]  # faust 0.15
        if tasks and all(task.done() for task in tasks):
            stopped.append(name)
    return tuple(stopped)
