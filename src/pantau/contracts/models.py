"""Pydantic models of the v1 events: one payload model per event type (past tense) inside the shared
envelope. They mirror contracts/schemas/*.v1.json; the accept/reject fixtures under
contracts/examples/ and a property test keep the two in agreement.

Producers build events with `new_event(PriceObserved(...), occurred_at=..., source="simulator")`.
Models are strict: no string-to-number coercion, no naive timestamps, no unknown fields.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from pantau.contracts.times import WIB, now_wib, require_aware, to_utc
from pantau.contracts.topics import ALERT_TOPIC, DEADLETTER_TOPIC, HARVEST_TOPIC, PRICE_TOPIC, SHIPMENT_TOPIC

SCHEMA_VERSION: Final = "1.0"
# Namespace of every deterministic id (uuid5 of the project URL), fixed forever.
PANTAU_NAMESPACE: Final = uuid.UUID("3a20410d-1802-58d7-b221-b135a812b0fc")

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
CODE_PATTERN = r"^[a-z][a-z0-9_]*$"
_B64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
# The same patterns as contracts/schemas/common.v1.json: RFC 3339 with an explicit offset, no naive times.
TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIMESTAMP_RE = re.compile(TIMESTAMP_PATTERN)
_DATE_RE = re.compile(DATE_PATTERN)
NAIVE_TIMESTAMP_MESSAGE = (
    "is not an RFC 3339 timestamp with an offset, e.g. 2026-03-04T08:00:00+07:00 "
    "(naive timestamps are refused: producers emit WIB +07:00)"
)


def _python_timestamp(value: object) -> datetime:
    """From Python (producers): an aware datetime, or text in the wire format."""
    if isinstance(value, datetime):
        return require_aware(value, "timestamp")
    if isinstance(value, str) and _TIMESTAMP_RE.fullmatch(value):
        return datetime.fromisoformat(value)
    raise ValueError(f"{value!r} {NAIVE_TIMESTAMP_MESSAGE}")


def _python_date(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE_RE.fullmatch(value):
        return date.fromisoformat(value)
    raise ValueError(f"{value!r} is not a calendar date (datetime.date or YYYY-MM-DD)")


class _RFC3339:
    """Timestamp type: from JSON only the RFC 3339 form the schema allows (pattern checked in Rust,
    parsed by C fromisoformat: no Python code on the hot path); from Python an aware datetime."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        from_text = core_schema.no_info_after_validator_function(
            datetime.fromisoformat, core_schema.str_schema(pattern=TIMESTAMP_PATTERN)
        )
        return core_schema.json_or_python_schema(
            json_schema=from_text,
            python_schema=core_schema.no_info_plain_validator_function(_python_timestamp),
            serialization=core_schema.simple_ser_schema("datetime"),
        )

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}


class _CalendarDate:
    """Date type: YYYY-MM-DD text from JSON, a datetime.date from Python."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        from_text = core_schema.no_info_after_validator_function(
            date.fromisoformat, core_schema.str_schema(pattern=DATE_PATTERN)
        )
        return core_schema.json_or_python_schema(
            json_schema=from_text,
            python_schema=core_schema.no_info_plain_validator_function(_python_date),
            serialization=core_schema.simple_ser_schema("date"),
        )

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"type": "string", "format": "date", "pattern": DATE_PATTERN}


Uuid = Annotated[str, StringConstraints(pattern=UUID_PATTERN)]
Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN, max_length=64)]
CommodityCode = Code  # contracts/reference/commodities.v1.json
QualityGrade = Code
MarketCode = Code  # contracts/reference/markets.v1.json (markets, destinations, prov_<bps>)
CheckpointCode = Code  # contracts/reference/checkpoints.v1.json
RegencyCode = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]\.[0-9]{2}$")]
ProvinceCode = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]$")]
Timestamp = Annotated[datetime, _RFC3339()]  # RFC 3339 with offset; naive refused
CalendarDate = Annotated[date, _CalendarDate()]
QuantityKg = Annotated[float, Field(gt=0, le=100_000_000)]
PriceIdr = Annotated[float, Field(gt=0, le=100_000_000)]
Source = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*(:[A-Za-z0-9_.-]+)?$", max_length=100)
]
SchemaVersion = Annotated[str, StringConstraints(pattern=r"^1\.[0-9]+$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=1000)]

# Aligned with pantau.detect.conditions (Severity labels, AlertType, PlaceKind); a test checks it.
SeverityLabel = Literal["normal", "watch", "alert", "crisis"]
RaisedSeverity = Literal["watch", "alert", "crisis"]
AlertTypeName = Literal["price_spike", "price_disparity", "supply_gap", "route_disruption", "harvest_unshipped"]
PlaceKindName = Literal["market", "province", "destination", "checkpoint", "regency"]
PriceLevel = Literal["producer", "wholesale", "retail"]
Unit = Literal["kg", "litre"]
VehicleKind = Literal["pickup", "cde", "cdd", "fuso", "tronton", "wingbox", "trailer", "reefer"]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


class _Payload(_Strict):
    EVENT_TYPE: ClassVar[str]
    TOPIC: ClassVar[str]

    def kafka_key(self) -> str:
        raise NotImplementedError

    def default_correlation_id(self) -> str | None:
        return None


# --- pangan.harvest.v1 --------------------------------------------------------------------------


class HarvestReported(_Payload):
    EVENT_TYPE: ClassVar[str] = "HarvestReported"
    TOPIC: ClassVar[str] = HARVEST_TOPIC

    harvest_id: Uuid
    regency_code: RegencyCode
    commodity: CommodityCode
    quality_grade: QualityGrade | None = None
    quantity_kg: QuantityKg
    harvested_on: CalendarDate
    expected_available_from: CalendarDate
    expected_available_until: CalendarDate

    def kafka_key(self) -> str:
        return f"{self.regency_code}:{self.commodity}"

    def default_correlation_id(self) -> str | None:
        return self.harvest_id


# --- pangan.shipment.v1 -------------------------------------------------------------------------


class Vehicle(_Strict):
    plate: Annotated[str, StringConstraints(pattern=r"^[A-Z]{1,2} [0-9]{1,4}( [A-Z]{1,3})?$")]
    kind: VehicleKind
    capacity_kg: Annotated[float, Field(gt=0, le=60_000)]


class PlannedCheckpoint(_Strict):
    checkpoint_code: CheckpointCode
    sequence: Annotated[int, Field(ge=1, le=50)]
    planned_at: Timestamp


class _ShipmentPayload(_Payload):
    TOPIC: ClassVar[str] = SHIPMENT_TOPIC
    shipment_id: Uuid

    def kafka_key(self) -> str:
        return self.shipment_id

    def default_correlation_id(self) -> str | None:
        return self.shipment_id


class ShipmentDispatched(_ShipmentPayload):
    EVENT_TYPE: ClassVar[str] = "ShipmentDispatched"

    commodity: CommodityCode
    quantity_kg: QuantityKg
    origin_regency_code: RegencyCode
    destination_code: MarketCode
    vehicle: Vehicle
    harvest_id: Uuid | None = None
    planned_route: Annotated[list[PlannedCheckpoint], Field(max_length=50)]
    eta: Timestamp


class ShipmentCheckpointPassed(_ShipmentPayload):
    EVENT_TYPE: ClassVar[str] = "ShipmentCheckpointPassed"

    checkpoint_code: CheckpointCode
    sequence: Annotated[int, Field(ge=1, le=50)]
    commodity: CommodityCode
    quantity_kg: QuantityKg
    destination_code: MarketCode
    origin_regency_code: RegencyCode
    planned_at: Timestamp
    eta: Timestamp


class ShipmentArrived(_ShipmentPayload):
    EVENT_TYPE: ClassVar[str] = "ShipmentArrived"

    destination_code: MarketCode
    commodity: CommodityCode
    quantity_kg: QuantityKg
    origin_regency_code: RegencyCode
    dispatched_at: Timestamp
    transit_minutes: Annotated[float, Field(ge=0, le=100_000)]


# --- pangan.price.v1 ----------------------------------------------------------------------------


class PriceObserved(_Payload):
    EVENT_TYPE: ClassVar[str] = "PriceObserved"
    TOPIC: ClassVar[str] = PRICE_TOPIC

    commodity: CommodityCode
    quality_grade: QualityGrade
    market_code: MarketCode
    province_code: ProvinceCode
    price_level: PriceLevel
    unit: Unit
    price_idr_per_kg: PriceIdr | None = None
    price_idr_per_litre: PriceIdr | None = None

    @model_validator(mode="after")
    def _one_price_in_the_stated_unit(self) -> PriceObserved:
        wanted, other = (
            ("price_idr_per_kg", "price_idr_per_litre")
            if self.unit == "kg"
            else ("price_idr_per_litre", "price_idr_per_kg")
        )
        if getattr(self, wanted) is None or getattr(self, other) is not None:
            raise ValueError(f"unit {self.unit} needs {wanted} and no {other}")
        return self

    @property
    def price_idr(self) -> float:
        """The price in IDR per `unit`."""
        return self.price_idr_per_kg if self.unit == "kg" else self.price_idr_per_litre  # type: ignore[return-value]

    def kafka_key(self) -> str:
        return f"{self.commodity}:{self.market_code}"


# --- pangan.alert.v1 ----------------------------------------------------------------------------


class Place(_Strict):
    kind: PlaceKindName
    code: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.]*$", max_length=64)]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Signal(_Strict):
    name: Code
    value: float
    threshold: float | None
    baseline: float | None
    window: Annotated[str, StringConstraints(max_length=32)] | None
    severity: SeverityLabel
    note: Text | None = None


class Evidence(_Strict):
    signals: Annotated[list[Signal], Field(max_length=50)]
    details: dict[str, Any]


class LocalizedText(_Strict):
    id: Text
    en: Text


class _AlertPayload(_Payload):
    TOPIC: ClassVar[str] = ALERT_TOPIC

    alert_id: Uuid
    alert_type: AlertTypeName
    subject: Annotated[str, StringConstraints(pattern=r"^[a-z_]+:[A-Za-z0-9_.:-]+$", max_length=200)]
    sequence: Annotated[int, Field(ge=1)]
    severity: SeverityLabel
    previous_severity: SeverityLabel | None
    commodity: CommodityCode | None
    place: Place
    affected_volume_kg: Annotated[float, Field(ge=0, le=1_000_000_000)] | None
    evidence: Evidence
    title: LocalizedText
    action_text: LocalizedText
    opened_at: Timestamp

    def kafka_key(self) -> str:
        return self.subject

    def default_correlation_id(self) -> str | None:
        return self.alert_id


class AlertOpened(_AlertPayload):
    EVENT_TYPE: ClassVar[str] = "AlertOpened"
    sequence: Annotated[int, Field(ge=1, le=1)]  # not Literal[1]: that accepts JSON true
    severity: RaisedSeverity
    previous_severity: None


class AlertUpdated(_AlertPayload):
    EVENT_TYPE: ClassVar[str] = "AlertUpdated"
    sequence: Annotated[int, Field(ge=2)]
    severity: RaisedSeverity
    previous_severity: SeverityLabel


class AlertResolved(_AlertPayload):
    EVENT_TYPE: ClassVar[str] = "AlertResolved"
    sequence: Annotated[int, Field(ge=2)]
    severity: Literal["normal"]
    previous_severity: SeverityLabel


# --- pangan.deadletter.v1 -----------------------------------------------------------------------


class EventDeadLettered(_Payload):
    EVENT_TYPE: ClassVar[str] = "EventDeadLettered"
    TOPIC: ClassVar[str] = DEADLETTER_TOPIC

    original_topic: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,249}$")]
    partition: Annotated[int, Field(ge=0)]
    offset: Annotated[int, Field(ge=0)]
    original_key_b64: Annotated[str, StringConstraints(pattern=_B64, max_length=2_000_000)] | None
    original_value_b64: Annotated[str, StringConstraints(pattern=_B64, max_length=20_000_000)] | None
    original_event_id: Uuid | None
    error_type: Annotated[str, StringConstraints(pattern=CODE_PATTERN, max_length=100)]
    error_message: Annotated[str, StringConstraints(min_length=1, max_length=10_000)]
    consumer: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    failed_at: Timestamp

    def kafka_key(self) -> str:
        return self.original_topic


# --- envelope -----------------------------------------------------------------------------------


class _Envelope(_Strict):
    event_id: Uuid
    event_type: str
    schema_version: SchemaVersion
    occurred_at: Timestamp
    produced_at: Timestamp
    source: Source
    correlation_id: Uuid | None
    payload: _Payload


class HarvestReportedEvent(_Envelope):
    event_type: Literal["HarvestReported"]
    payload: HarvestReported


class ShipmentDispatchedEvent(_Envelope):
    event_type: Literal["ShipmentDispatched"]
    payload: ShipmentDispatched


class ShipmentCheckpointPassedEvent(_Envelope):
    event_type: Literal["ShipmentCheckpointPassed"]
    payload: ShipmentCheckpointPassed


class ShipmentArrivedEvent(_Envelope):
    event_type: Literal["ShipmentArrived"]
    payload: ShipmentArrived


class PriceObservedEvent(_Envelope):
    event_type: Literal["PriceObserved"]
    payload: PriceObserved


class AlertOpenedEvent(_Envelope):
    event_type: Literal["AlertOpened"]
    payload: AlertOpened


class AlertUpdatedEvent(_Envelope):
    event_type: Literal["AlertUpdated"]
    payload: AlertUpdated


class AlertResolvedEvent(_Envelope):
    event_type: Literal["AlertResolved"]
    payload: AlertResolved


class EventDeadLetteredEvent(_Envelope):
    event_type: Literal["EventDeadLettered"]
    payload: EventDeadLettered


Event = Annotated[
    HarvestReportedEvent
    | ShipmentDispatchedEvent
    | ShipmentCheckpointPassedEvent
    | ShipmentArrivedEvent
    | PriceObservedEvent
    | AlertOpenedEvent
    | AlertUpdatedEvent
    | AlertResolvedEvent
    | EventDeadLetteredEvent,
    Field(discriminator="event_type"),
]
AnyEvent = _Envelope  # for isinstance checks and annotations of "some event"
AnyPayload = _Payload

ENVELOPES: Final[dict[type[_Payload], type[_Envelope]]] = {
    HarvestReported: HarvestReportedEvent,
    ShipmentDispatched: ShipmentDispatchedEvent,
    ShipmentCheckpointPassed: ShipmentCheckpointPassedEvent,
    ShipmentArrived: ShipmentArrivedEvent,
    PriceObserved: PriceObservedEvent,
    AlertOpened: AlertOpenedEvent,
    AlertUpdated: AlertUpdatedEvent,
    AlertResolved: AlertResolvedEvent,
    EventDeadLettered: EventDeadLetteredEvent,
}
PAYLOADS: Final[dict[str, type[_Payload]]] = {p.EVENT_TYPE: p for p in ENVELOPES}
EVENT_TYPES: Final = tuple(PAYLOADS)
EVENT_TOPICS: Final[dict[str, str]] = {p.EVENT_TYPE: p.TOPIC for p in ENVELOPES}


# --- building events ----------------------------------------------------------------------------

_DERIVED: Final = object()


def new_event(
    payload: _Payload,
    *,
    occurred_at: datetime,
    source: str,
    correlation_id: str | None | object = _DERIVED,
    event_id: str | None = None,
    produced_at: datetime | None = None,
) -> _Envelope:
    """Wrap a payload in its envelope.

    occurred_at must be timezone-aware; it is carried in WIB (+07:00). event_id is a random UUID
    unless a deterministic one is given (see stable_event_id). correlation_id defaults to the
    shipment, harvest or alert id the payload belongs to (None for prices and dead letters)."""
    envelope = ENVELOPES.get(type(payload))
    if envelope is None:
        raise TypeError(f"{type(payload).__name__} is not an event payload; use one of {', '.join(EVENT_TYPES)}")
    if correlation_id is _DERIVED:
        correlation_id = payload.default_correlation_id()
    return envelope(
        event_id=event_id or str(uuid.uuid4()),
        event_type=payload.EVENT_TYPE,
        schema_version=SCHEMA_VERSION,
        occurred_at=require_aware(occurred_at, "occurred_at").astimezone(WIB),
        produced_at=require_aware(produced_at, "produced_at").astimezone(WIB) if produced_at else now_wib(),
        source=source,
        correlation_id=correlation_id,
        payload=payload,
    )


def stable_event_id(*parts: object) -> str:
    """A deterministic event id (UUID v5) from the parts that make an event unique, so that
    re-importing the same observation produces the same id and consumers drop the duplicate.
    Datetimes must be aware; they are normalised to UTC so that +07:00 and Z give the same id."""
    text = "|".join(to_utc(p).isoformat() if isinstance(p, datetime) else str(p) for p in parts)
    return str(uuid.uuid5(PANTAU_NAMESPACE, text))


def alert_id_for(subject: str, opened_at: datetime) -> str:
    """The alert id: the same for every event of one alert, and for a replay that opens it again."""
    return stable_event_id("alert", subject, require_aware(opened_at, "opened_at"))
