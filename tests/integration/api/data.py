"""A small, known week of the corridor, written through the sink's own batch writer: prices at
Lampung and Jakarta markets, three rice shipments to Cipinang (one arrived, one late, one just
dispatched) and three alerts. The tests check the API's answers against these figures."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pantau.contracts import (
    WIB,
    PlannedCheckpoint,
    PriceObserved,
    ShipmentArrived,
    ShipmentCheckpointPassed,
    ShipmentDispatched,
    Vehicle,
    new_event,
)
from pantau.db import connect
from pantau.settings import Settings
from pantau.storage.rows import row_for
from pantau.storage.writer import BatchWriter, Pending
from tests.integration.api.support import AlertStory

MONDAY = datetime(2026, 3, 2, tzinfo=WIB)  # D0, a Monday
S1, S2, S3 = (str(uuid.UUID(int=i)) for i in (1, 2, 3))


def at(day: int, hour: float) -> datetime:
    return MONDAY + timedelta(days=day, hours=hour)


def price(market: str, province: str, level: str, when: datetime, idr: float, grade: str = "medium"):
    return new_event(
        PriceObserved(
            commodity="beras",
            quality_grade=grade,
            market_code=market,
            province_code=province,
            price_level=level,
            unit="kg",
            price_idr_per_kg=idr,
        ),
        occurred_at=when,
        source="simulator",
    )


def prices() -> list:
    return [
        price("pasar_smep", "18", "retail", at(0, 8), 12000),
        price("pasar_smep", "18", "retail", at(1, 8), 12500),
        price("pasar_smep", "18", "retail", at(7, 8), 14000),  # 3.7 % above the HET of 13,500
        price("pasar_tugu", "18", "retail", at(0, 8), 12200),
        price("prov_18", "18", "retail", at(0, 10), 12000),
        price("prov_18", "18", "retail", at(1, 10), 12100),
        price("prov_31", "31", "retail", at(0, 10), 14000),
        price("prov_31", "31", "retail", at(1, 10), 14300),
        price("pibc", "31", "wholesale", at(0, 5), 12850),
        price("pibc", "31", "wholesale", at(0, 5.5), 12950),
    ]


def _dispatched(shipment: str, hour: float, eta_hour: float, kg: float, plate: str):
    return new_event(
        ShipmentDispatched(
            shipment_id=shipment,
            commodity="beras",
            quantity_kg=kg,
            origin_regency_code="18.04",
            destination_code="pibc",
            vehicle=Vehicle(plate=plate, kind="fuso", capacity_kg=12000),
            planned_route=[PlannedCheckpoint(checkpoint_code="bakauheni_port", sequence=1, planned_at=at(0, hour + 4))],
            eta=at(0, eta_hour),
        ),
        occurred_at=at(0, hour),
        source="simulator",
    )


def _checkpoint(shipment: str, hour: float, planned: float, eta_hour: float, kg: float):
    return new_event(
        ShipmentCheckpointPassed(
            shipment_id=shipment,
            checkpoint_code="bakauheni_port",
            sequence=1,
            commodity="beras",
            quantity_kg=kg,
            destination_code="pibc",
            origin_regency_code="18.04",
            planned_at=at(0, planned),
            eta=at(0, eta_hour),
        ),
        occurred_at=at(0, hour),
        source="simulator",
    )


def shipments() -> list:
    arrived = new_event(
        ShipmentArrived(
            shipment_id=S1,
            destination_code="pibc",
            commodity="beras",
            quantity_kg=8000,
            origin_regency_code="18.04",
            dispatched_at=at(0, 6),
            transit_minutes=660,
        ),
        occurred_at=at(0, 17),
        source="simulator",
    )
    return [
        _dispatched(S1, 6, 18, 8000, "BE 1234 AB"),
        _checkpoint(S1, 10, 10, 18, 8000),
        arrived,
        _dispatched(S2, 7, 19, 10000, "BE 5678 CD"),
        _checkpoint(S2, 12, 11, 22, 10000),  # three hours behind plan
        _dispatched(S3, 8, 20, 5000, "BE 9012 EF"),
    ]


def alerts() -> tuple[dict[str, AlertStory], list]:
    spike = AlertStory(commodity="beras", opened_at=at(1, 9))
    gap = AlertStory(
        alert_type="supply_gap", commodity="beras", place=("destination", "pibc", "PIBC"), opened_at=at(3, 9)
    )
    route = AlertStory(
        alert_type="route_disruption",
        commodity=None,
        place=("checkpoint", "merak_port", "Pelabuhan Merak"),
        opened_at=at(4, 9),
    )
    events = [
        spike.opened("alert"),
        spike.updated("crisis", at(2, 9)),
        spike.resolved(at(5, 9)),
        gap.opened("watch"),
        route.opened("alert"),
    ]
    return {"spike": spike, "gap": gap, "route": route}, events


def seed(settings: Settings) -> dict:
    """Write the dataset; returns the alert stories and every event by kind."""
    stories, alert_events = alerts()
    events = {"prices": prices(), "shipments": shipments(), "alerts": alert_events}
    with connect(settings) as conn:
        writer = BatchWriter(conn)
        items = [Pending(*row_for(e)) for group in events.values() for e in group]
        result = writer.write(items)
    assert not result.rejected, [r.reason for r in result.rejected]
    return {"stories": stories, **events}
