"""Events -> table rows. Pure functions: one row per event, in the column order of its table.

Rows hold Python values that psycopg's binary COPY takes as they are: uuid.UUID, aware datetimes
(stored as UTC instants), dates, floats, bytes and Jsonb. ingested_at is not in a row: the database
sets it when the sink writes the row."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from pantau.contracts.models import (
    AlertOpenedEvent,
    AlertResolvedEvent,
    AlertUpdatedEvent,
    AnyEvent,
    EventDeadLetteredEvent,
    HarvestReportedEvent,
    PriceObservedEvent,
    ShipmentArrivedEvent,
    ShipmentCheckpointPassedEvent,
    ShipmentDispatchedEvent,
)

Row = tuple[Any, ...]

ENVELOPE_COLUMNS = ("event_id", "occurred_at", "produced_at", "source", "correlation_id", "schema_version")


@dataclass(frozen=True)
class Table:
    """An event table and the columns the sink writes, in row order."""

    name: str
    columns: tuple[str, ...]


PRICE_OBSERVATIONS = Table(
    "price_observations",
    (*ENVELOPE_COLUMNS, "commodity", "quality_grade", "market_code", "province_code", "price_level", "unit",
     "price_idr"),
)
HARVESTS = Table(
    "harvests",
    (*ENVELOPE_COLUMNS, "harvest_id", "regency_code", "commodity", "quality_grade", "quantity_kg", "harvested_on",
     "expected_available_from", "expected_available_until"),
)
SHIPMENT_EVENTS = Table(
    "shipment_events",
    (*ENVELOPE_COLUMNS, "event_type", "shipment_id", "commodity", "quantity_kg", "origin_regency_code",
     "destination_code", "eta", "vehicle_plate", "vehicle_kind", "vehicle_capacity_kg", "harvest_id",
     "planned_route", "checkpoint_code", "checkpoint_sequence", "planned_at", "dispatched_at", "transit_minutes"),
)
ALERT_EVENTS = Table(
    "alert_events",
    (*ENVELOPE_COLUMNS, "event_type", "alert_id", "alert_type", "subject", "sequence", "severity",
     "previous_severity", "commodity", "place_kind", "place_code", "place_name", "affected_volume_kg", "evidence",
     "title_id", "title_en", "action_text_id", "action_text_en", "opened_at"),
)
DEAD_LETTERS = Table(
    "dead_letters",
    (*ENVELOPE_COLUMNS, "original_topic", "original_partition", "original_offset", "original_key", "original_value",
     "original_event_id", "error_type", "error_message", "consumer", "failed_at"),
)
TABLES = (PRICE_OBSERVATIONS, HARVESTS, SHIPMENT_EVENTS, ALERT_EVENTS, DEAD_LETTERS)


def _uuid(value: str | None) -> UUID | None:
    return UUID(value) if value is not None else None


def _float(value: float | None) -> float | None:
    return float(value) if value is not None else None


def _envelope(event: AnyEvent) -> Row:
    return (
        UUID(event.event_id),
        event.occurred_at,
        event.produced_at,
        event.source,
        _uuid(event.correlation_id),
        event.schema_version,
    )


def _price(event: PriceObservedEvent) -> Row:
    p = event.payload
    return (*_envelope(event), p.commodity, p.quality_grade, p.market_code, p.province_code, p.price_level, p.unit,
            float(p.price_idr))


def _harvest(event: HarvestReportedEvent) -> Row:
    p = event.payload
    return (*_envelope(event), UUID(p.harvest_id), p.regency_code, p.commodity, p.quality_grade,
            float(p.quantity_kg), p.harvested_on, p.expected_available_from, p.expected_available_until)


def _dispatched(event: ShipmentDispatchedEvent) -> Row:
    p = event.payload
    route = Jsonb([c.model_dump(mode="json") for c in p.planned_route])
    return (*_envelope(event), event.event_type, UUID(p.shipment_id), p.commodity, float(p.quantity_kg),
            p.origin_regency_code, p.destination_code, p.eta, p.vehicle.plate, p.vehicle.kind,
            float(p.vehicle.capacity_kg), _uuid(p.harvest_id), route, None, None, None, None, None)


def _checkpoint(event: ShipmentCheckpointPassedEvent) -> Row:
    p = event.payload
    return (*_envelope(event), event.event_type, UUID(p.shipment_id), p.commodity, float(p.quantity_kg),
            p.origin_regency_code, p.destination_code, p.eta, None, None, None, None, None, p.checkpoint_code,
            p.sequence, p.planned_at, None, None)


def _arrived(event: ShipmentArrivedEvent) -> Row:
    p = event.payload
    return (*_envelope(event), event.event_type, UUID(p.shipment_id), p.commodity, float(p.quantity_kg),
            p.origin_regency_code, p.destination_code, None, None, None, None, None, None, None, None, None,
            p.dispatched_at, float(p.transit_minutes))


def _alert(event: AlertOpenedEvent | AlertUpdatedEvent | AlertResolvedEvent) -> Row:
    p = event.payload
    return (*_envelope(event), event.event_type, UUID(p.alert_id), p.alert_type, p.subject, p.sequence, p.severity,
            p.previous_severity, p.commodity, p.place.kind, p.place.code, p.place.name,
            _float(p.affected_volume_kg), Jsonb(p.evidence.model_dump(mode="json")), p.title.id, p.title.en,
            p.action_text.id, p.action_text.en, p.opened_at)


def _b64(value: str | None) -> bytes | None:
    return base64.b64decode(value) if value is not None else None


def _dead_letter(event: EventDeadLetteredEvent) -> Row:
    p = event.payload
    return (*_envelope(event), p.original_topic, p.partition, p.offset, _b64(p.original_key_b64),
            _b64(p.original_value_b64), _uuid(p.original_event_id), p.error_type, p.error_message, p.consumer,
            p.failed_at)


_MAPPERS: dict[str, tuple[Table, Callable[[Any], Row]]] = {
    "PriceObserved": (PRICE_OBSERVATIONS, _price),
    "HarvestReported": (HARVESTS, _harvest),
    "ShipmentDispatched": (SHIPMENT_EVENTS, _dispatched),
    "ShipmentCheckpointPassed": (SHIPMENT_EVENTS, _checkpoint),
    "ShipmentArrived": (SHIPMENT_EVENTS, _arrived),
    "AlertOpened": (ALERT_EVENTS, _alert),
    "AlertUpdated": (ALERT_EVENTS, _alert),
    "AlertResolved": (ALERT_EVENTS, _alert),
    "EventDeadLettered": (DEAD_LETTERS, _dead_letter),
}


def row_for(event: AnyEvent) -> tuple[Table, Row]:
    """The table an event is stored in and its row there."""
    try:
        table, mapper = _MAPPERS[event.event_type]
    except KeyError:
        raise ValueError(f"no table stores {event.event_type} events; add it to pantau.storage.rows") from None
    return table, mapper(event)
