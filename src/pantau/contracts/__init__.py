"""The event contract in code: models of the v1 events, the topics, encode/decode, schema validation.

    from pantau.contracts import PriceObserved, new_event, encode_event, decode_event, kafka_key, WIB

    event = new_event(PriceObserved(commodity="beras", quality_grade="medium", market_code="pibc",
                                    province_code="31", price_level="wholesale", unit="kg",
                                    price_idr_per_kg=12850),
                      occurred_at=datetime(2026, 3, 4, 8, tzinfo=WIB), source="simulator")
    producer.send(event.payload.TOPIC, key=kafka_key(event), value=encode_event(event))

contracts/ (AsyncAPI + JSON Schemas) is the source; these models are tested against it.
"""

from pantau.contracts.codec import (
    EVENT_ADAPTER,
    EventDecodeError,
    dead_letter_for,
    decode_event,
    encode_event,
    event_to_dict,
)
from pantau.contracts.models import (
    EVENT_TOPICS,
    EVENT_TYPES,
    PANTAU_NAMESPACE,
    PAYLOADS,
    SCHEMA_VERSION,
    AlertOpened,
    AlertOpenedEvent,
    AlertResolved,
    AlertResolvedEvent,
    AlertUpdated,
    AlertUpdatedEvent,
    AnyEvent,
    AnyPayload,
    Event,
    EventDeadLettered,
    EventDeadLetteredEvent,
    Evidence,
    HarvestReported,
    HarvestReportedEvent,
    LocalizedText,
    Place,
    PlannedCheckpoint,
    PriceObserved,
    PriceObservedEvent,
    ShipmentArrived,
    ShipmentArrivedEvent,
    ShipmentCheckpointPassed,
    ShipmentCheckpointPassedEvent,
    ShipmentDispatched,
    ShipmentDispatchedEvent,
    Signal,
    Vehicle,
    alert_id_for,
    new_event,
    stable_event_id,
)
from pantau.contracts.times import UTC, WIB, NaiveDatetimeError, now_wib, require_aware, to_utc, to_wib
from pantau.contracts.topics import (
    ALERT_TOPIC,
    DEADLETTER_TOPIC,
    HARVEST_TOPIC,
    PRICE_TOPIC,
    SHIPMENT_TOPIC,
    TOPICS,
    ContractError,
    TopicSpec,
    topic_spec,
    topic_specs,
)

_VALIDATION = frozenset({"SchemaValidationError", "SchemaValidator", "schema_validator"})


def __getattr__(name: str) -> object:
    # Imported on first use: jsonschema takes a second to import and only the gateway and tests need it.
    if name in _VALIDATION:
        from pantau.contracts import validation

        return getattr(validation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def kafka_key(event: AnyEvent) -> str:
    """The record key of an event, as its topic's contract says (e.g. beras:pibc on pangan.price.v1)."""
    return event.payload.kafka_key()


def topic_for(event: AnyEvent) -> str:
    """The topic an event belongs on."""
    return event.payload.TOPIC


__all__ = [
    "ALERT_TOPIC",
    "DEADLETTER_TOPIC",
    "EVENT_ADAPTER",
    "EVENT_TOPICS",
    "EVENT_TYPES",
    "HARVEST_TOPIC",
    "PANTAU_NAMESPACE",
    "PAYLOADS",
    "PRICE_TOPIC",
    "SCHEMA_VERSION",
    "SHIPMENT_TOPIC",
    "TOPICS",
    "UTC",
    "WIB",
    "AlertOpened",
    "AlertOpenedEvent",
    "AlertResolved",
    "AlertResolvedEvent",
    "AlertUpdated",
    "AlertUpdatedEvent",
    "AnyEvent",
    "AnyPayload",
    "ContractError",
    "Event",
    "EventDeadLettered",
    "EventDeadLetteredEvent",
    "EventDecodeError",
    "Evidence",
    "HarvestReported",
    "HarvestReportedEvent",
    "LocalizedText",
    "NaiveDatetimeError",
    "Place",
    "PlannedCheckpoint",
    "PriceObserved",
    "PriceObservedEvent",
    "SchemaValidationError",
    "SchemaValidator",
    "ShipmentArrived",
    "ShipmentArrivedEvent",
    "ShipmentCheckpointPassed",
    "ShipmentCheckpointPassedEvent",
    "ShipmentDispatched",
    "ShipmentDispatchedEvent",
    "Signal",
    "TopicSpec",
    "Vehicle",
    "alert_id_for",
    "dead_letter_for",
    "decode_event",
    "encode_event",
    "event_to_dict",
    "kafka_key",
    "new_event",
    "now_wib",
    "require_aware",
    "schema_validator",
    "stable_event_id",
    "to_utc",
    "to_wib",
    "topic_for",
    "topic_spec",
    "topic_specs",
]
