"""The processor's stages without Kafka: records in, committed outputs out, in one process.

Builds the real app (create_app) but never starts it: the stages run over fake records, their Work is
"committed" at once (states into the tables' in-memory stores), and forwarded records are fed to the
next stage, all in one partition per topic, in order. What this cannot show (transactions, rebalances,
recovery) the integration tests show with real workers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from pantau.contracts import encode_event, kafka_key
from pantau.settings import Settings
from services.processor.app import HeldRecords, Processor, create_app
from services.processor.committer import Record
from services.processor.work import Work


@dataclass
class FakeMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list | None = None
    timestamp: float | None = None
    generation_id: int = 0

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


@dataclass
class Harness:
    processor: Processor
    offsets: dict[str, int] = field(default_factory=dict)
    outputs: list[Record] = field(default_factory=list)  # alerts and dead letters, in order
    works: list[Work] = field(default_factory=list)

    @classmethod
    def create(cls, **settings: Any) -> Harness:
        return cls(create_app(Settings(kafka_bootstrap_servers="127.0.0.1:1", **settings)))

    def message(self, topic: str, key: bytes | None, value: bytes | None, headers: list | None = None):
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        return FakeMessage(topic, 0, offset, key, value, headers)

    def forwarded(self, works: Iterable[Work]) -> list[FakeMessage]:
        """The repartition records (bundles) the units wrote, as the next stage receives them."""
        return [self.message(r.topic, r.key, r.value) for work in works for r in work.forwards.records()]

    def run(
        self, stage_name: str, messages: list[FakeMessage], tick_at: float | None = None, *, forward: bool = True
    ) -> Work:
        """One committed batch of a stage; its forwards go through the stage that reads them (unless
        not `forward`: then they are the caller's, in `work.forwards`)."""
        stage = self.processor.stages[stage_name]
        work = Work(TP(stage.topic, 0), messages[-1].offset + 1 if messages else None, self.processor.runner.outputs)
        handed: list[Any] = messages
        if stage.time_sources:  # as the worker releases a held stage's items: in event-time order
            held = HeldRecords()
            held.add(item for message in messages for item in stage.unpack(message))
            handed = held.pop_ready(float("inf"))
        for message in handed:
            stage.handle(work, message)
        stage.finish(work)
        if tick_at is not None:
            stage.tick(work, 0, tick_at)
        work.apply_states()
        self.works.append(work)
        self.outputs.extend(work.records)
        if not forward:
            return work
        forwards: dict[str, list[FakeMessage]] = {}
        for message in self.forwarded([work]):
            forwards.setdefault(message.topic, []).append(message)
        for topic, batch in forwards.items():
            (next_stage,) = [name for name, s in self.processor.stages.items() if s.topic == topic]
            self.run(next_stage, batch)
        return work

    def feed(self, events: Iterable[Any], batch: int = 1) -> None:
        """Contract events through the stage of their topic, `batch` at a time (in order)."""
        pending: list[Any] = []
        for event in events:
            pending.append(event)
            if len(pending) >= batch:
                self._feed(pending)
                pending = []
        if pending:
            self._feed(pending)

    def _feed(self, events: list[Any]) -> None:
        topics = self.processor.topics
        by_topic = {topics.price: "price", topics.shipment: "shipment", topics.harvest: "harvest"}
        for event in events:
            topic = topics.contract_topics_reverse[event.payload.TOPIC]
            self.run(by_topic[topic], [self.message(topic, kafka_key(event).encode(), encode_event(event))])
