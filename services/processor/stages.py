"""What each agent does with one event: the adapters between Kafka records and pantau.detect.

Stages fed by a contract topic (price, shipment, harvest) validate every record (the contract's
decoder, the event type the topic carries, the record key the contract prescribes), skip duplicates
(same event_id for the key), dead-letter events older than PROCESSOR_LATE_TOLERANCE_HOURS behind
their key's newest one, and hand the rest to the detectors. The repartition stages (disparity,
aggregates) get what the first ones forwarded, regrouped by the key their detector needs (items
with that key, bundled per partition and batch: services/processor/bundles.py):

    pangan.price.v1     --price-->      price_spike (per commodity:market)
                          `--> {app}-price-by-commodity-repartition (item key commodity)
                                    --disparity--> price_disparity (Jakarta/Lampung per commodity)
    pangan.shipment.v1  --shipment-->   shipment state (per shipment_id)
    pangan.harvest.v1   --harvest-->    (validated, deduplicated)
                          both `--> {app}-aggregates-repartition (item key "{aggregate}|{key}")
                                    --aggregates--> supply_gap (commodity:destination),
                                                    route_disruption (checkpoint),
                                                    harvest_unshipped (regency:commodity)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

import orjson
import structlog
from faust.types import Message

from pantau.contracts import (
    EventDecodeError,
    HarvestReportedEvent,
    PriceObservedEvent,
    ShipmentArrivedEvent,
    ShipmentCheckpointPassedEvent,
    ShipmentDispatchedEvent,
    decode_event,
)
from pantau.detect.conditions import Condition, PlaceKind, Rejected, TooLate
from pantau.detect.config import disparity_config, lifecycle_config, price_config, supply_config, supply_targets
from pantau.detect.disparity import DisparityConfig, DisparityState, step_disparity
from pantau.detect.lifecycle import AlertState, LifecycleConfig, Transition, step_lifecycle
from pantau.detect.price import PriceConfig, PriceObservation, PriceState, step_price
from pantau.detect.supply import (
    HarvestConfig,
    HarvestReported,
    HarvestState,
    RouteConfig,
    RouteState,
    ShipmentState,
    ShipmentStatus,
    SupplyConfig,
    SupplyState,
    SupplyTarget,
    apply_harvest,
    apply_route,
    apply_supply,
    judge_harvest,
    judge_route,
    judge_supply,
    shipment_event_from_contract,
    step_shipment,
    tick_harvest,
    tick_route,
    tick_supply,
)
from pantau.detect.timebase import drop_older, from_ts
from services.processor.bundles import Forwarded, unpack
from services.processor.tables import NO_WATERMARK, KeyState, StateTable
from services.processor.work import (
    INVALID_VALUE,
    PROCESSING_ERROR,
    SCHEMA,
    TOO_LATE,
    Source,
    Work,
    decode_error,
)

log = structlog.get_logger(__name__)

SEEN_PRUNE_AT = 64  # sweep a key's remembered event ids once it holds this many
SEEN_MAX = 1024  # and never keep more than this many (oldest go first)
SHIPMENT_KEEP_AFTER_ARRIVAL_S = 86400.0  # an arrived shipment's state is kept this long (plus the tolerance)


class TooLateError(ValueError):
    """An event older than the lateness tolerance behind its key's newest event."""


class InvalidValue(ValueError):
    """An event with an impossible value (the detector's reason)."""


@dataclass(frozen=True)
class Detection:
    """Detector configuration, from the reference data and the settings."""

    price: PriceConfig
    disparity: DisparityConfig
    lifecycle: LifecycleConfig
    supply_targets: dict[str, SupplyTarget]
    supply: SupplyConfig
    route: RouteConfig
    harvest: HarvestConfig
    place_kinds: dict[str, PlaceKind]
    tolerance_s: float

    @classmethod
    def from_reference(cls, ref: Any, late_tolerance_hours: float) -> Detection:
        # the price detector keeps whole days (at most 4 of lateness); the key-level check is exact
        days = max(0, min(4, math.ceil(late_tolerance_hours / 24.0)))
        return cls(
            price=price_config(ref, late_tolerance_days=days),
            disparity=disparity_config(ref),
            lifecycle=lifecycle_config(ref),
            supply_targets=supply_targets(ref),
            supply=supply_config(ref),
            route=RouteConfig(),
            harvest=HarvestConfig(),
            place_kinds={
                m.code: PlaceKind.PROVINCE if m.kind == "province_average" else PlaceKind.MARKET for m in ref.markets
            },
            tolerance_s=late_tolerance_hours * 3600.0,
        )


def _step_alert(
    state: KeyState, conditions: Iterable[Condition], detection: Detection, *, in_place: bool = False
) -> list[Transition]:
    transitions: list[Transition] = []
    alert: AlertState | None = state.alert
    for condition in conditions:
        alert, more = step_lifecycle(alert, condition, detection.lifecycle, in_place=in_place)
        transitions.extend(more)
    state.alert = alert
    return transitions


def _remember(state: KeyState, event_id: str, ts: float, tolerance_s: float) -> None:
    seen = state.seen
    seen[event_id] = ts
    if ts > state.watermark:
        state.watermark = ts
    # Ids of events beyond the tolerance are not needed: such an event is too late anyway. They go
    # from the front at once (a key's changelog record is written every batch it changes, and
    # 60 stale ids were most of a price key's), and in a full sweep for ids that came out of order.
    horizon = state.watermark - tolerance_s
    drop_older(seen, horizon, lambda event_ts: event_ts)
    if len(seen) >= SEEN_PRUNE_AT:
        for old in [k for k, t in seen.items() if t < horizon]:
            del seen[old]
        while len(seen) > SEEN_MAX:
            del seen[next(iter(seen))]


class Stage:
    """An agent's per-event logic over its tables; `tick` lets event time pass for a partition."""

    name: str
    topic: str
    tables: tuple[StateTable, ...] = ()
    ticks = False
    # Topics whose progress bounds this stage's event time; when set, the stage's records wait for
    # the worker to be safely past their event time and are handled in event-time order.
    time_sources: set[str] | None = None

    def handle(self, work: Work, message: Message) -> None:
        raise NotImplementedError

    def unpack(self, message: Message) -> list[Forwarded]:
        """A time-driven stage's items of a record, each handled at its own event time."""
        raise NotImplementedError

    def finish(self, work: Work) -> None:
        """After the unit's records, before its tick: complete what the records left pending."""

    def tick(self, work: Work, partition: int, now: float) -> None:
        pass

    def event_time(self, message: Message) -> float | None:
        """Event time of the last handled record (for partition watermarks), if known."""
        return None


class ContractStage(Stage):
    """Common intake of a contract topic: decode, topic rules, duplicates, lateness."""

    event_types: tuple[type, ...] = ()

    def __init__(self, name: str, topic: str, table: StateTable, detection: Detection) -> None:
        self.name = name
        self.topic = topic
        self.table = table
        self.tables = (table,)
        self.detection = detection
        self._last_event_time: float | None = None

    def handle(self, work: Work, message: Message) -> None:
        source: Source = message
        work.consumed += 1
        if message.timestamp:
            work.last_timestamp_ms = int(message.timestamp * 1000)
        self._last_event_time = None
        if message.value is None:
            work.dead_letter(source, SCHEMA, decode_error("the record has no value (a tombstone); events carry JSON"))
            return
        try:
            event = decode_event(message.value)
        except EventDecodeError as exc:
            work.dead_letter(source, SCHEMA, exc)
            return
        label = work.outputs.label(message.topic)
        if not isinstance(event, self.event_types):
            expected = ", ".join(t.__name__.removesuffix("Event") for t in self.event_types)
            error = decode_error(f"event_type: {event.event_type} does not belong on {label}, which carries {expected}")
            work.dead_letter(source, SCHEMA, error, event_id=event.event_id)
            return
        key = event.payload.kafka_key()
        if message.key != key.encode():
            shown = message.key.decode("utf-8", "replace") if message.key is not None else None
            error = decode_error(f"record key {shown!r} is not {key!r}, the key {label} prescribes for this event")
            work.dead_letter(source, SCHEMA, error, event_id=event.event_id)
            return
        ts = event.occurred_at.timestamp()
        stored = work.peek(self.table, key)
        if stored is not None:
            if event.event_id in stored.seen:
                work.duplicates[label] += 1
                return
            if ts < stored.watermark - self.detection.tolerance_s:
                error = TooLateError(
                    f"occurred_at {event.occurred_at.isoformat()} is more than "
                    f"{self.detection.tolerance_s / 3600:g} h before the newest event of {key} "
                    f"({from_ts(stored.watermark).isoformat()}); raise PROCESSOR_LATE_TOLERANCE_HOURS to accept it"
                )
                work.dead_letter(source, TOO_LATE, error, error_type=TOO_LATE, event_id=event.event_id)
                return
        self._last_event_time = ts
        try:
            self.process(work, source, event, key, stored, ts)
        except Exception as exc:  # a bug or an unforeseen input must not stop the stream (#315)
            log.exception("event processing failed; dead-lettered", topic=label, offset=message.offset)
            work.dead_letter(source, PROCESSING_ERROR, exc, error_type=PROCESSING_ERROR, event_id=event.event_id)

    def event_time(self, message: Message) -> float | None:
        return self._last_event_time

    def process(
        self, work: Work, source: Source, event: Any, key: str, stored: KeyState | None, ts: float
    ) -> None:
        """Handle a new, valid event of `key` (its event time `ts`); `stored` is the key's state."""
        raise NotImplementedError

    def rejected(self, work: Work, source: Source, event: Any, rejection: Rejected) -> None:
        if isinstance(rejection, TooLate):
            work.dead_letter(source, TOO_LATE, TooLateError(rejection.reason), error_type=TOO_LATE,
                             event_id=event.event_id)  # fmt: skip
        else:
            work.dead_letter(source, INVALID_VALUE, InvalidValue(rejection.reason), error_type=INVALID_VALUE,
                             event_id=event.event_id)  # fmt: skip


def _forward(event: Any, body: dict[str, Any]) -> bytes:
    """A repartition item: what the next stage needs, with the triggering event's identity."""
    return orjson.dumps({**body, "event_id": event.event_id, "produced_at": event.produced_at.timestamp()})


# --- prices --------------------------------------------------------------------------------------


class PriceStage(ContractStage):
    event_types = (PriceObservedEvent,)

    def __init__(self, topic: str, table: StateTable, detection: Detection, forward_topic: str) -> None:
        super().__init__("price", topic, table, detection)
        self.forward_topic = forward_topic

    def process(
        self, work: Work, source: Source, event: Any, key: str, stored: KeyState | None, ts: float
    ) -> None:
        p = event.payload
        detection = self.detection
        observation = PriceObservation(
            commodity=p.commodity,
            market_code=p.market_code,
            price_idr=p.price_idr,
            occurred_at=event.occurred_at,
            price_level=p.price_level,
            quality_grade=p.quality_grade,
            province_code=p.province_code,
            place_kind=detection.place_kinds.get(p.market_code, PlaceKind.MARKET),
            event_id=event.event_id,
        )
        # stepped in place on the unit's own copy: a key comes many times in a catch-up batch
        state = work.own(self.table, key)
        series, result = step_price(state.detector, observation, detection.price, in_place=True)
        if isinstance(result, Rejected):
            self.rejected(work, source, event, result)
            return
        transitions = _step_alert(state, result, detection, in_place=True)
        state.detector = series
        _remember(state, event.event_id, ts, detection.tolerance_s)
        if transitions:
            work.emit_transitions(transitions, event.produced_at.timestamp())
        market_seen = work.price_seen.get(p.market_code, NO_WATERMARK)
        work.price_seen[p.market_code] = max(market_seen, state.watermark)
        if detection.disparity.pairs_for(observation):
            body = {
                "commodity": p.commodity,
                "market_code": p.market_code,
                "price_idr": p.price_idr,
                "occurred_at": event.occurred_at.isoformat(),
                "price_level": p.price_level,
                "quality_grade": p.quality_grade,
                "province_code": p.province_code,
            }
            work.forward(self.forward_topic, (p.commodity,), _forward(event, body), ts)


class RepartitionStage(Stage):
    """Common intake of a repartition topic (written by this processor, never user input): its
    records are bundles of items (services/processor/bundles.py), taken apart when they arrive and
    handled one by one, each at its own event time."""

    def __init__(self, name: str, topic: str, tables: tuple[StateTable, ...], detection: Detection) -> None:
        self.name = name
        self.topic = topic
        self.tables = tables
        self.detection = detection
        self._last_event_time: float | None = None

    def unpack(self, message: Message) -> list[Forwarded]:
        return unpack(message, self.parse)

    def handle(self, work: Work, item: Forwarded) -> None:
        work.consumed += 1
        if item.timestamp:
            work.last_timestamp_ms = int(item.timestamp * 1000)
        self._last_event_time = None
        try:
            if item.error is not None:
                raise item.error
            self.process(work, item, item.subject, item.body)
        except Exception as exc:
            log.exception("repartitioned record failed; dead-lettered", topic=item.topic, offset=item.offset,
                          item=item.index)  # fmt: skip
            work.dead_letter(item, PROCESSING_ERROR, exc, error_type=PROCESSING_ERROR)

    def event_time(self, message: Message) -> float | None:
        return self._last_event_time

    def parse(self, value: dict[str, Any]) -> Any:
        """An item's JSON object as `process` takes it."""
        return value

    def process(self, work: Work, source: Source, key: str, record: Any) -> None:
        raise NotImplementedError


class DisparityStage(RepartitionStage):
    def __init__(self, topic: str, table: StateTable, detection: Detection) -> None:
        super().__init__("disparity", topic, (table,), detection)
        self.table = table

    def process(self, work: Work, source: Source, key: str, record: dict[str, Any]) -> None:
        occurred_at = datetime.fromisoformat(record["occurred_at"])
        self._last_event_time = occurred_at.timestamp()
        observation = PriceObservation(
            commodity=record["commodity"],
            market_code=record["market_code"],
            price_idr=record["price_idr"],
            occurred_at=occurred_at,
            price_level=record["price_level"],
            quality_grade=record["quality_grade"],
            province_code=record["province_code"],
            event_id=record["event_id"],
        )
        for pair in self.detection.disparity.pairs_for(observation):
            stored = work.peek(self.table, pair.key)
            detector, result = step_disparity(
                stored.detector if stored is not None else None, observation, pair, self.detection.disparity
            )
            if isinstance(result, Rejected):
                work.dead_letter(source, INVALID_VALUE, InvalidValue(result.reason), error_type=INVALID_VALUE,
                                 event_id=record["event_id"])  # fmt: skip
                continue
            state = work.state(self.table, pair.key)
            transitions = _step_alert(state, result, self.detection)
            state.detector = detector
            work.emit_transitions(transitions, record["produced_at"])


# --- shipments and harvests ----------------------------------------------------------------------


class ShipmentStage(ContractStage):
    event_types = (ShipmentDispatchedEvent, ShipmentCheckpointPassedEvent, ShipmentArrivedEvent)
    ticks = True

    def __init__(self, topic: str, table: StateTable, detection: Detection, forward_topic: str) -> None:
        super().__init__("shipment", topic, table, detection)
        self.forward_topic = forward_topic

    def process(
        self, work: Work, source: Source, event: Any, key: str, stored: KeyState | None, ts: float
    ) -> None:
        shipment_event = shipment_event_from_contract(event)
        before = stored.detector if stored is not None else None
        shipment, result = step_shipment(before, shipment_event)
        if isinstance(result, Rejected):
            self.rejected(work, source, event, result)
            return
        state = work.state(self.table, key)
        state.detector = shipment
        _remember(state, event.event_id, ts, self.detection.tolerance_s)
        if result is None:
            return  # a repeated or superseded event: the shipment is already past it
        status: ShipmentStatus = result
        value = _forward(event, {"kind": "status", "status": status.to_json()})
        keys = [f"supply|{status.destination_key}"] if status.destination_key in self.detection.supply_targets else []
        keys += [f"route|{checkpoint}" for checkpoint in status.checkpoint_keys]
        if status.dispatched_ts is not None and (before is None or before.dispatched_ts is None):
            # the harvest aggregate counts a shipment once: its first snapshot with a dispatch time
            keys.append(f"harvest|{status.origin_key}")
        work.forward(self.forward_topic, keys, value, status.occurred_ts)

    def tick(self, work: Work, partition: int, now: float) -> None:
        """Forget arrived shipments once no event of theirs can still be on time."""
        keep = SHIPMENT_KEEP_AFTER_ARRIVAL_S + self.detection.tolerance_s
        for key in self.table.keys_in_partition(partition):
            state = self.table.get(key)
            shipment = state.detector if state is not None else None
            if shipment is not None and shipment.arrived_ts is not None and shipment.arrived_ts < now - keep:
                work.delete(self.table, key)


class HarvestStage(ContractStage):
    event_types = (HarvestReportedEvent,)

    def __init__(self, topic: str, table: StateTable, detection: Detection, forward_topic: str) -> None:
        super().__init__("harvest", topic, table, detection)
        self.forward_topic = forward_topic

    def process(
        self, work: Work, source: Source, event: Any, key: str, stored: KeyState | None, ts: float
    ) -> None:
        p = event.payload
        if p.expected_available_until < p.expected_available_from:
            reason = (
                f"expected_available_until {p.expected_available_until} is before "
                f"expected_available_from {p.expected_available_from}"
            )
            work.dead_letter(source, INVALID_VALUE, InvalidValue(reason), error_type=INVALID_VALUE,
                             event_id=event.event_id)  # fmt: skip
            return
        state = work.state(self.table, key)
        _remember(state, event.event_id, ts, self.detection.tolerance_s)
        body = {
            "kind": "harvest",
            "harvest_id": p.harvest_id,
            "occurred_at": event.occurred_at.isoformat(),
            "regency": p.regency_code,
            "commodity": p.commodity,
            "quantity_kg": p.quantity_kg,
            "available_from": p.expected_available_from.isoformat(),
            "available_until": p.expected_available_until.isoformat(),
        }
        work.forward(self.forward_topic, (f"harvest|{key}",), _forward(event, body), ts)


TickFunction = Callable[[Any, datetime, str], tuple[Any, list[Condition]]]


class AggregateInput(NamedTuple):
    """An aggregates record, parsed: a shipment snapshot or a harvest report, at event time `at`."""

    event: ShipmentStatus | HarvestReported
    at: float
    event_id: str
    produced_at: float

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> AggregateInput:
        event: ShipmentStatus | HarvestReported
        if record["kind"] == "status":
            event = ShipmentStatus.from_json(record["status"])
        else:
            event = HarvestReported(
                harvest_id=record["harvest_id"],
                occurred_at=datetime.fromisoformat(record["occurred_at"]),
                regency=record["regency"],
                commodity=record["commodity"],
                quantity_kg=record["quantity_kg"],
                available_from=date.fromisoformat(record["available_from"]),
                available_until=date.fromisoformat(record["available_until"]),
            )
        at = event.occurred_ts if isinstance(event, ShipmentStatus) else event.occurred_at.timestamp()
        return cls(event, at, record["event_id"], record["produced_at"])


class AggregateStage(RepartitionStage):
    """Supply per commodity:destination, routes per checkpoint, harvests per regency:commodity.

    A record is applied at once and judged later, with the key's other records: at the end of the
    unit, or before a record that is `judge_every_s` or more of event time after the key's first
    unjudged one. A judgement looks at every shipment in transit, so judging per record cost most of
    a shipment's processing (a key comes hundreds of times in a batch). Each judgement is one that
    per-record judging made too (the state after a record); a record's judgement is at most that much
    event time later than its own, as with the time-driven tick."""

    ticks = True

    def __init__(
        self,
        topic: str,
        supply: StateTable,
        route: StateTable,
        harvest: StateTable,
        detection: Detection,
        judge_every_s: float,
    ) -> None:
        super().__init__("aggregates", topic, (supply, route, harvest), detection)
        self.by_kind = {"supply": supply, "route": route, "harvest": harvest}
        self.judge_every_s = judge_every_s

    def parse(self, value: dict[str, Any]) -> AggregateInput:
        # once per bundle, shared by the snapshot's items there (immutable, so sharing is safe)
        return AggregateInput.from_record(value)

    def process(self, work: Work, source: Source, key: str, record: AggregateInput) -> None:
        kind, _, subject_key = key.partition("|")
        table = self.by_kind[kind]
        detection = self.detection
        target = detection.supply_targets.get(subject_key) if kind == "supply" else None
        if kind == "supply" and target is None:
            return
        at = record.at
        slot = (kind, subject_key)
        unjudged = work.unjudged.get(slot)
        if unjudged is not None and at - unjudged[0] >= self.judge_every_s:
            del work.unjudged[slot]
            self._judge(work, kind, subject_key, unjudged[1])
        # stepped in place on the unit's own copy: a key comes many times in a batch
        state = work.own(table, subject_key)
        rejected = None
        event = record.event
        if target is not None:
            state.detector = apply_supply(state.detector, event, target, detection.supply, in_place=True)
        elif kind == "route":
            state.detector = apply_route(state.detector, event, subject_key, in_place=True)
        else:
            state.detector, rejected = apply_harvest(state.detector, event, subject_key, detection.harvest,
                                                     in_place=True)  # fmt: skip
        self._last_event_time = at
        if rejected is not None:
            work.dead_letter(source, INVALID_VALUE, InvalidValue(rejected.reason), error_type=INVALID_VALUE,
                             event_id=record.event_id)  # fmt: skip
            return
        work.unjudged.setdefault(slot, (at, record.produced_at))

    def finish(self, work: Work) -> None:
        for (kind, subject_key), (_, triggered_at) in work.unjudged.items():
            self._judge(work, kind, subject_key, triggered_at)
        work.unjudged.clear()

    def _judge(self, work: Work, kind: str, key: str, triggered_at: float) -> None:
        state = work.own(self.by_kind[kind], key)
        detection = self.detection
        if kind == "supply":
            condition = judge_supply(state.detector, detection.supply_targets[key], detection.supply)
        elif kind == "route":
            condition = judge_route(state.detector, key, detection.route)
        else:
            condition = judge_harvest(state.detector, key, detection.harvest)
        transitions = _step_alert(state, [condition], detection, in_place=True)
        # triggered by the oldest record judged now: the latency metric does not flatter the batching
        work.emit_transitions(transitions, triggered_at)

    def tick(self, work: Work, partition: int, now: float) -> None:
        """Judge every supply, route and harvest key of the partition at event time `now`."""
        moment = from_ts(now)
        detection = self.detection
        ticks: dict[str, TickFunction] = {
            "supply": lambda s, at, key: tick_supply(
                s, at, detection.supply_targets[key], detection.supply, in_place=True
            ),
            "route": lambda s, at, key: tick_route(s, at, key, detection.route, in_place=True),
            "harvest": lambda s, at, key: tick_harvest(s, at, key, detection.harvest, in_place=True),
        }
        for kind, table in self.by_kind.items():
            keys = set(table.keys_in_partition(partition)) | work.staged_keys(table)
            for key in sorted(keys):
                stored = work.peek(table, key)
                if stored is None or stored.detector is None:
                    continue
                if kind == "supply" and key not in detection.supply_targets:
                    continue
                state = work.own(table, key)
                detector, conditions = ticks[kind](state.detector, moment, key)
                transitions = _step_alert(state, conditions, detection, in_place=True)
                state.detector = detector
                work.emit_transitions(transitions, None)


DETECTOR_TYPES = {
    "price": PriceState,
    "disparity": DisparityState,
    "shipment": ShipmentState,
    "harvest_intake": type(None),
    "supply": SupplyState,
    "route": RouteState,
    "harvest": HarvestState,
}
