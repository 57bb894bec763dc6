"""The composition root: `create_app(settings)` builds the Faust app, its topics, tables and agents.

Nothing is created at import time. One agent per stage (services/processor/stages.py), each with
concurrency=1 (faust-streaming #606: concurrent actors can commit past an event still in flight);
throughput comes from batches (noack_take) and partitions shared among workers.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import structlog
from faust.types import TP, EventT

from pantau.reference import load_reference
from services.processor import faust_fixes
from services.processor.committer import CommitFailed, Committer
from services.processor.metrics import PROCESSING_SECONDS
from services.processor.sequencer import Sequencer
from services.processor.settings import ProcessorSettings
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

    def __init__(self, app: faust.App, settings: ProcessorSettings, committer: Committer, outputs: Outputs) -> None:
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

    def on_partitions_revoked(self) -> None:
        self.sequencer.reset()

    async def run(self, stage: Stage, stream: faust.StreamT) -> None:
        batches = stream.noack_take(
            self.settings.processor_batch_max_events, within=self.settings.processor_batch_max_seconds
        )
        async for events in batches:
            await self.process(stage, events)

    async def process(self, stage: Stage, events: Sequence[EventT]) -> None:
        async with self.locks[stage.name]:
            # events fetched before a rebalance are read again from the committed offsets
            generation = self.app.consumer_generation_id
            self.sequencer.add(e.message for e in events if e.message.generation_id == generation)
            await self._process_in_sequence(stage)

    async def _process_in_sequence(self, stage: Stage) -> None:
        epoch = self.committer.epoch
        started = time.perf_counter()
        runs = {}
        for tp in self.sequencer.partitions(stage.topic):
            run = await self.sequencer.run(tp)
            if run:
                runs[tp] = run
        if not runs or epoch != self.committer.epoch:
            return
        prepared = [self._prepare(stage, tp, run) for tp, run in runs.items()]
        if await self._commit(prepared, epoch):
            for tp, run in runs.items():
                self.sequencer.advance(tp, run[-1].offset + 1)
            PROCESSING_SECONDS.labels(self.outputs.label(stage.topic)).observe(time.perf_counter() - started)
        else:
            log.info("batch dropped after a rebalance; its events are read again", stage=stage.name)

    async def heal(self, stages: Iterable[Stage]) -> None:
        """Re-read partitions with a hole; process what a skipped gap unblocked."""
        stages = list(stages)
        skipped = await self.sequencer.heal({stage.topic for stage in stages})
        for stage in stages:
            if any(tp.topic == stage.topic for tp in skipped):
                async with self.locks[stage.name]:
                    await self._process_in_sequence(stage)

    def _prepare(self, stage: Stage, tp: TP, messages: list[Any]) -> tuple[Work, float, float | None]:
        work = Work(tp, messages[-1].offset + 1, self.outputs)
        watermark = self.partition_watermark.get(tp, NO_WATERMARK)
        for message in messages:
            stage.handle(work, message)
            event_time = stage.event_time(message)
            if event_time is not None and event_time > watermark:
                watermark = event_time
        tick_at = None
        if stage.ticks and self._tick_due(tp, watermark):
            stage.tick(work, tp.partition, watermark)
            tick_at = watermark
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
                self.last_batch_at[tp] = now
        return True

    async def tick_idle(self, stage: Stage, assigned: set[TP]) -> None:
        """Let event time pass on partitions that get no events (nothing arrives while a ferry is
        closed): judge them at the newest event time this worker has seen, not at wall time."""
        worker_watermark = max(self.partition_watermark.values(), default=NO_WATERMARK)
        idle_after = max(2 * self.settings.processor_batch_max_seconds, self.settings.processor_tick_seconds)
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

    async def report_lag(self, assigned: set[TP], topics: set[str]) -> None:
        for tp in assigned:
            if tp.topic not in topics:
                continue
            try:
                highwater = self.app.consumer.highwater(tp)
            except Exception:  # no fetch yet for this partition
                continue
            if highwater is None:
                continue
            processed = self.last_offset.get(tp)
            position = processed + 1 if processed is not None else await self.app.consumer.position(tp)
            if position is not None:
                set_lag(self.outputs.label(tp.topic), tp.partition, highwater - position)


@dataclass
class Processor:
    app: faust.App
    settings: ProcessorSettings
    topics: TopicNames
    stages: dict[str, Stage]
    tables: dict[str, StateTable]
    runner: Runner
    committer: Committer
    health: Health


def create_app(settings: ProcessorSettings, reference: Any = None) -> Processor:
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
        stream_buffer_maxsize=max(4096, 2 * settings.processor_batch_max_events),
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
            names.aggregates, tables["supply"], tables["route"], tables["harvest"], detection
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
    outputs = Outputs(names.alert, names.deadletter, settings.processor_app_id, names.contract_topics())
    runner = Runner(app, settings, committer, outputs)
    health = Health(
        unassigned_limit_s=settings.processor_unassigned_unhealthy_seconds,
        stall_limit_s=max(30.0, 10 * settings.processor_tick_seconds),
    )

    for stage in stages.values():
        topic = raw_topic(app, stage.topic, partitions[stage.topic], internal=stage.topic in internal)
        app.agent(topic, name=f"pantau.processor.{stage.name}", concurrency=1)(_agent_for(runner, stage))

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
            if stage.ticks:
                await runner.tick_idle(stage, assigned)
        await runner.report_lag(assigned, source_topics)

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
