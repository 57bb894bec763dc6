"""One unit of work: the events of one input partition in one batch (or one timer tick).

A stage reads key states through the Work (its own staged copies first, then the table), stages new
states, and adds output records and metric effects; nothing reaches Kafka, the tables or Prometheus
until the committer has committed the unit. A batch that loses its partitions to a rebalance is
dropped whole, with no trace.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from faust.types import TP

from pantau.contracts import (
    EventDecodeError,
    dead_letter_for,
    encode_event,
    new_event,
    stable_event_id,
)
from pantau.detect.lifecycle import Transition
from pantau.metrics import ALERTS_EMITTED, CONSUMER_LAG, EVENTS_CONSUMED, EVENTS_DEADLETTERED, LAST_EVENT_TIMESTAMP
from services.processor.bundles import Bundler, Forwarded
from services.processor.committer import Record, Unit
from services.processor.metrics import (
    DUPLICATES,
    EVENT_TO_ALERT_LATENCY,
    FORWARDED_ITEMS,
    LATE_EVENTS,
    PRICE_LAST_OBSERVED,
)
from services.processor.tables import KeyState, StateTable

# Dead-letter reason classes (the `reason` label of pantau_events_deadlettered_total).
SCHEMA = "schema"
INVALID_VALUE = "invalid_value"
TOO_LATE = "too_late"
PROCESSING_ERROR = "processing_error"


@dataclass(frozen=True)
class Outputs:
    """Where a stage's outputs go and how they are labelled."""

    alert_topic: str
    deadletter_topic: str
    consumer: str  # the dead letter's `consumer` field: the processor's app id
    contract_names: dict[str, str]  # actual topic name -> contract topic name (metric labels)
    forward_partitions: dict[str, int]  # repartition topic -> its partition count

    def label(self, topic: str) -> str:
        return self.contract_names.get(topic, topic)


class Source(Protocol):
    """Where an event came from, enough to dead-letter it with its original bytes: the consumed
    record itself (a Faust message, or a repartition item), not a copy made for every record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Work:
    tp: TP
    next_offset: int | None
    outputs: Outputs
    staged: dict[tuple[str, str], tuple[StateTable, str, KeyState | None]] = field(default_factory=dict)
    owned: set[tuple[str, str]] = field(default_factory=set)  # staged with private detector and alert
    records: list[Record] = field(default_factory=list)  # alerts and dead letters
    forwards: Bundler = field(init=False)  # repartition items, bundled per target partition
    consumed: int = 0
    deadlettered: Counter[tuple[str, str]] = field(default_factory=Counter)
    late: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    alerts: list[tuple[Transition, float | None]] = field(default_factory=list)
    price_seen: dict[str, float] = field(default_factory=dict)
    # (kind, key) -> (event time, produced_at) of its oldest record applied but not judged yet
    unjudged: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    last_timestamp_ms: int | None = None

    def __post_init__(self) -> None:
        self.forwards = Bundler(self.outputs.forward_partitions)

    # --- state -----------------------------------------------------------------------------------
    def state(self, table: StateTable, key: str) -> KeyState:
        """The key's state for update: a copy staged for this unit (the stored one stays untouched
        until the commit). Detector and alert states are replaced, never mutated, by pantau.detect."""
        slot = (table.name, key)
        staged = self.staged.get(slot)
        if staged is not None and staged[2] is not None:
            return staged[2]
        stored = table.get(key) if staged is None else None
        state = (
            KeyState(stored.detector, stored.alert, dict(stored.seen), stored.watermark)
            if stored is not None
            else KeyState()
        )
        self.staged[slot] = (table, key, state)
        return state

    def own(self, table: StateTable, key: str) -> KeyState:
        """The key's staged state with its own copies of the detector and alert states, so that a
        stage may step them in place (in_place=True) however often the key comes in this unit.
        A step that raises midway (a bug: the event is dead-lettered) leaves them as far as it got."""
        state = self.state(table, key)
        slot = (table.name, key)
        if slot not in self.owned:
            self.owned.add(slot)
            if state.detector is not None:
                state.detector = state.detector.copy()
            if state.alert is not None:
                state.alert = state.alert.copy()
        return state

    def peek(self, table: StateTable, key: str) -> KeyState | None:
        """The key's current state (staged in this unit, else stored) for reading only."""
        staged = self.staged.get((table.name, key))
        if staged is not None:
            return staged[2]
        return table.get(key)

    def staged_keys(self, table: StateTable) -> set[str]:
        return {key for name, key in self.staged if name == table.name}

    def delete(self, table: StateTable, key: str) -> None:
        self.staged[(table.name, key)] = (table, key, None)
        self.owned.discard((table.name, key))

    def changelog(self) -> list[Record]:
        partition = self.tp.partition
        return [
            Record(table.changelog_topic, key.encode(), state.to_bytes() if state is not None else None, partition)
            for table, key, state in self.staged.values()
        ]

    def apply_states(self) -> None:
        for table, key, state in self.staged.values():
            if state is None:
                table.delete_committed(key)
            else:
                table.put_committed(key, state, self.tp.partition)

    # --- outputs ---------------------------------------------------------------------------------
    def forward(self, topic: str, keys: Iterable[str], value: bytes, event_time: float) -> None:
        """`value` for each of `keys` to a repartition topic (the next stage), at `event_time`."""
        self.forwards.add(topic, keys, value, event_time)

    def emit_transitions(self, transitions: Iterable[Transition], triggered_at: float | None) -> None:
        """Alert events for lifecycle transitions; `triggered_at`: produced_at of the event behind them."""
        for transition in transitions:
            event = new_event(
                transition.to_contract(),
                occurred_at=transition.occurred_at,
                source="processor",
                # one id per transition: a replay or an at-least-once retry produces the same event
                event_id=stable_event_id("alert-event", transition.alert_id, transition.sequence),
            )
            self.records.append(Record(self.outputs.alert_topic, transition.subject.encode(), encode_event(event)))
            self.alerts.append((transition, triggered_at))

    def dead_letter(
        self,
        source: Source,
        reason: str,
        error: Exception,
        *,
        error_type: str | None = None,
        event_id: str | None = None,
    ) -> None:
        now = datetime.now(UTC)
        payload = dead_letter_for(
            topic=self.outputs.label(source.topic),
            partition=source.partition,
            offset=source.offset,
            key=source.key,
            value=source.value,
            error=error,
            consumer=self.outputs.consumer,
            failed_at=now,
        )
        updates: dict[str, Any] = {}
        if error_type is not None:
            updates["error_type"] = error_type
        if event_id is not None and payload.original_event_id is None:
            updates["original_event_id"] = event_id
        if updates:
            payload = payload.model_copy(update=updates)
        event = new_event(
            payload,
            occurred_at=now,
            source="processor",
            # an item of a repartition bundle shares its record's offset: its index tells it apart
            event_id=stable_event_id(
                "dead-letter", self.outputs.consumer, source.topic, source.partition, source.offset,
                *((source.index,) if isinstance(source, Forwarded) else ()),
            ),
        )
        self.records.append(Record(self.outputs.deadletter_topic, payload.original_topic.encode(), encode_event(event)))
        self.deadlettered[(self.outputs.label(source.topic), reason)] += 1
        if reason == TOO_LATE:
            self.late[self.outputs.label(source.topic)] += 1

    def unit(self) -> Unit:
        return Unit(self.tp, self.next_offset, self.records, self.changelog(), self.forwards.records())

    # --- after the commit ------------------------------------------------------------------------
    def publish_metrics(self, price_latest: dict[str, float]) -> None:
        """Count what the committed unit did; `price_latest` keeps the newest price time per market."""
        label = self.outputs.label(self.tp.topic)
        if self.consumed:
            EVENTS_CONSUMED.labels(label).inc(self.consumed)
        for (topic, reason), count in self.deadlettered.items():
            EVENTS_DEADLETTERED.labels(topic, reason).inc(count)
        for topic, count in self.late.items():
            LATE_EVENTS.labels(topic).inc(count)
        for topic, count in self.duplicates.items():
            DUPLICATES.labels(topic).inc(count)
        for topic, count in self.forwards.items.items():
            FORWARDED_ITEMS.labels(topic).inc(count)
        for market, ts in self.price_seen.items():
            if ts > price_latest.get(market, float("-inf")):
                price_latest[market] = ts
                PRICE_LAST_OBSERVED.labels(market).set(ts)
        if self.last_timestamp_ms is not None:
            LAST_EVENT_TIMESTAMP.labels(label, str(self.tp.partition)).set(self.last_timestamp_ms / 1000.0)
        wall = time.time()
        for transition, triggered_at in self.alerts:
            ALERTS_EMITTED.labels(transition.alert_type.value, transition.kind.value, transition.severity.label).inc()
            if triggered_at is not None:
                EVENT_TO_ALERT_LATENCY.labels(transition.alert_type.value).observe(max(0.0, wall - triggered_at))


def decode_error(message: str) -> EventDecodeError:
    """A schema-class error for a record that decodes but breaks a topic rule (type, key)."""
    return EventDecodeError("schema_violation", [message])


def set_lag(topic_label: str, partition: int, lag: int) -> None:
    CONSUMER_LAG.labels(topic_label, str(partition)).set(max(0, lag))
