"""Events for the storage and sink tests, built with the contract's models (never raw dicts), so a
contract change shows up here first. Every builder takes the source, which tests make unique per
run (`test:<hex>`) to count only their own rows on the shared broker."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta

from pantau.contracts.models import (
    AlertOpened,
    AlertResolved,
    AlertUpdated,
    AnyEvent,
    EventDeadLettered,
    Evidence,
    HarvestReported,
    LocalizedText,
    Place,
    PlannedCheckpoint,
    PriceObserved,
    ShipmentArrived,
    ShipmentCheckpointPassed,
    ShipmentDispatched,
    Signal,
    Vehicle,
    new_event,
)
from pantau.contracts.times import WIB

T0 = datetime(2026, 3, 4, 8, 0, tzinfo=WIB)
CHECKPOINTS = ("bakauheni_port", "ferry_crossing", "merak_port")


def unique_source() -> str:
    return f"test:{uuid.uuid4().hex[:12]}"


def price(source: str, *, at: datetime = T0, market: str = "pibc", commodity: str = "beras",
          price_idr: float = 12850.0, unit: str = "kg", grade: str = "medium") -> AnyEvent:
    payload = PriceObserved(
        commodity=commodity, quality_grade=grade, market_code=market, province_code="31", price_level="wholesale",
        unit=unit, price_idr_per_kg=price_idr if unit == "kg" else None,
        price_idr_per_litre=price_idr if unit == "litre" else None,
    )
    return new_event(payload, occurred_at=at, source=source)


def harvest(source: str, *, at: datetime = T0, quantity_kg: float = 120_000.0) -> AnyEvent:
    payload = HarvestReported(
        harvest_id=str(uuid.uuid4()), regency_code="18.04", commodity="beras", quality_grade="medium",
        quantity_kg=quantity_kg, harvested_on=at.date(), expected_available_from=at.date() + timedelta(days=2),
        expected_available_until=at.date() + timedelta(days=12),
    )
    return new_event(payload, occurred_at=at, source=source)


def shipment_journey(source: str, *, dispatched: datetime = T0, delay: timedelta = timedelta(0),
                     quantity_kg: float = 8000.0, destination: str = "pibc") -> list[AnyEvent]:
    """Dispatched, three checkpoints and arrival of one shipment; `delay` is added from the ferry on."""
    shipment_id = str(uuid.uuid4())
    common = dict(shipment_id=shipment_id, commodity="beras", quantity_kg=quantity_kg, origin_regency_code="18.04",
                  destination_code=destination)
    planned = [dispatched + timedelta(hours=3 + 1.5 * i) for i in range(3)]
    planned_eta = dispatched + timedelta(hours=10)
    events = [new_event(
        ShipmentDispatched(
            **common, vehicle=Vehicle(plate="BE 8123 AB", kind="fuso", capacity_kg=10_000.0),
            harvest_id=str(uuid.uuid4()),
            planned_route=[PlannedCheckpoint(checkpoint_code=c, sequence=i + 1, planned_at=planned[i])
                           for i, c in enumerate(CHECKPOINTS)],
            eta=planned_eta,
        ),
        occurred_at=dispatched, source=source,
    )]
    for i, code in enumerate(CHECKPOINTS):
        late = delay if i > 0 else timedelta(0)
        events.append(new_event(
            ShipmentCheckpointPassed(**common, checkpoint_code=code, sequence=i + 1, planned_at=planned[i],
                                     eta=planned_eta + late),
            occurred_at=planned[i] + late, source=source,
        ))
    arrived = planned_eta + delay
    transit_minutes = (arrived - dispatched).total_seconds() / 60
    events.append(new_event(
        ShipmentArrived(**common, dispatched_at=dispatched, transit_minutes=transit_minutes),
        occurred_at=arrived, source=source,
    ))
    return events


def _alert_parts(subject: str, severity: str, value: float) -> dict:
    return dict(
        alert_type="price_spike", subject=subject, commodity="beras",
        place=Place(kind="market", code="pibc", name="Pasar Induk Beras Cipinang"), affected_volume_kg=None,
        evidence=Evidence(signals=[Signal(name="change_7d_pct", value=value, threshold=3.2, baseline=12350.0,
                                          window="7d", severity=severity)], details={"price_idr_per_kg": 12850}),
        title=LocalizedText(id="Harga beras naik", en="Rice price up"),
        action_text=LocalizedText(id="Periksa stok beras.", en="Check rice stock."),
    )


def alert_lifecycle(source: str, *, opened: datetime = T0, title_en: str = "Rice price up") -> list[AnyEvent]:
    """AlertOpened (alert) -> AlertUpdated (crisis) -> AlertResolved, one alert."""
    alert_id = str(uuid.uuid4())
    subject = f"price_spike:beras:{uuid.uuid4().hex[:8]}"
    steps = [
        (AlertOpened, 1, "alert", None, 4.1, opened),
        (AlertUpdated, 2, "crisis", "alert", 7.5, opened + timedelta(days=1)),
        (AlertResolved, 3, "normal", "crisis", 0.8, opened + timedelta(days=5)),
    ]
    events = []
    for model, sequence, severity, previous, value, at in steps:
        parts = _alert_parts(subject, severity, value)
        parts["title"] = LocalizedText(id="Harga beras naik", en=title_en)
        events.append(new_event(
            model(alert_id=alert_id, sequence=sequence, severity=severity, previous_severity=previous,
                  opened_at=opened, **parts),
            occurred_at=at, source=source,
        ))
    return events


def dead_letter(source: str, *, at: datetime = T0, value: bytes = b'{"event_id": "x"}') -> AnyEvent:
    payload = EventDeadLettered(
        original_topic="pangan.price.v1", partition=4, offset=18234,
        original_key_b64=base64.b64encode(b"beras:pibc").decode(), original_value_b64=base64.b64encode(value).decode(),
        original_event_id=None, error_type="schema_violation", error_message="event_id: 'x' is not a UUID",
        consumer="processor", failed_at=at,
    )
    return new_event(payload, occurred_at=at, source=source)
