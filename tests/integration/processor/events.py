"""Contract events for the processor tests, built with the contracts package."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from pantau.contracts import (
    ALERT_TOPIC,
    WIB,
    HarvestReported,
    PlannedCheckpoint,
    PriceObserved,
    ShipmentArrived,
    ShipmentCheckpointPassed,
    ShipmentDispatched,
    Vehicle,
    new_event,
    stable_event_id,
)

DAY0 = datetime(2026, 3, 1, 8, 0, tzinfo=WIB)
PROVINCE = {"prov_31": "31", "prov_18": "18", "pibc": "31", "pikj": "31", "pasar_minggu": "31", "pasar_tugu": "18"}
ROUTE = ("bakauheni_port", "ferry_crossing", "merak_port")


def price(commodity: str, market: str, day: int, price_idr: float, *, hour: int = 8, event_id: str | None = None,
          level: str = "wholesale", grade: str = "rata_rata"):  # fmt: skip
    """A PriceObserved on day `day` after DAY0 (WIB), with a deterministic id unless given one."""
    at = datetime.combine(DAY0.date() + timedelta(days=day), time(hour), tzinfo=WIB)
    payload = PriceObserved(
        commodity=commodity,
        quality_grade=grade,
        market_code=market,
        province_code=PROVINCE.get(market, "31"),
        price_level=level,
        unit="kg",
        price_idr_per_kg=price_idr,
    )
    event_id = event_id or stable_event_id("test-price", commodity, market, at, price_idr)
    return new_event(payload, occurred_at=at, source="simulator", event_id=event_id, produced_at=datetime.now(WIB))


def shipment_dispatched(shipment_id: str, at: datetime, *, destination: str = "pibc", commodity: str = "beras",
                        quantity_kg: float = 8000, origin: str = "18.04", leg_hours: float = 3.0):  # fmt: skip
    route = [PlannedCheckpoint(checkpoint_code=c, sequence=i + 1, planned_at=at + timedelta(hours=leg_hours * (i + 1)))
             for i, c in enumerate(ROUTE)]  # fmt: skip
    payload = ShipmentDispatched(
        shipment_id=shipment_id,
        commodity=commodity,
        quantity_kg=quantity_kg,
        origin_regency_code=origin,
        destination_code=destination,
        vehicle=Vehicle(plate="BE 8123 AB", kind="fuso", capacity_kg=10000),
        planned_route=route,
        eta=at + timedelta(hours=leg_hours * (len(ROUTE) + 1)),
    )
    return new_event(payload, occurred_at=at, source="simulator", produced_at=datetime.now(WIB))


def checkpoint_passed(dispatched, checkpoint: str, at: datetime):
    d = dispatched.payload
    stop = next(s for s in d.planned_route if s.checkpoint_code == checkpoint)
    payload = ShipmentCheckpointPassed(
        shipment_id=d.shipment_id,
        checkpoint_code=checkpoint,
        sequence=stop.sequence,
        commodity=d.commodity,
        quantity_kg=d.quantity_kg,
        destination_code=d.destination_code,
        origin_regency_code=d.origin_regency_code,
        planned_at=stop.planned_at,
        eta=d.eta + (at - stop.planned_at),
    )
    return new_event(payload, occurred_at=at, source="simulator", produced_at=datetime.now(WIB))


def arrived(dispatched, at: datetime):
    d = dispatched.payload
    payload = ShipmentArrived(
        shipment_id=d.shipment_id,
        destination_code=d.destination_code,
        commodity=d.commodity,
        quantity_kg=d.quantity_kg,
        origin_regency_code=d.origin_regency_code,
        dispatched_at=dispatched.occurred_at,
        transit_minutes=(at - dispatched.occurred_at).total_seconds() / 60,
    )
    return new_event(payload, occurred_at=at, source="simulator", produced_at=datetime.now(WIB))


def harvest(
    harvest_id: str,
    at: datetime,
    *,
    regency: str = "18.04",
    commodity: str = "beras",
    quantity_kg: float = 120_000,
    available_from: date | None = None,
    available_until: date | None = None,
):
    start = available_from or at.date()
    payload = HarvestReported(
        harvest_id=harvest_id,
        regency_code=regency,
        commodity=commodity,
        quantity_kg=quantity_kg,
        harvested_on=at.date(),
        expected_available_from=start,
        expected_available_until=available_until or start + timedelta(days=5),
    )
    return new_event(payload, occurred_at=at, source="simulator", produced_at=datetime.now(WIB))


def opened_between(events, subject: str, onset: datetime, end: datetime) -> list:
    """AlertOpened events of `subject` whose event time is within [onset, end]."""
    return [a for a in events if a.event_type == "AlertOpened" and a.payload.subject == subject
            and onset <= a.occurred_at <= end]  # fmt: skip


def read_closure_alerts(processor_env, onset: datetime, end: datetime, timeout_s: float) -> tuple[list, list]:
    """The route disruption and Cipinang supply gap alerts a ferry closure opened within [onset, end],
    read from the alert topic until both are there (or the timeout)."""
    subjects = ("route_disruption:ferry_crossing", "supply_gap:beras:pibc")
    alerts = processor_env.read(
        ALERT_TOPIC, until=lambda ev: all(opened_between(ev, s, onset, end) for s in subjects), timeout_s=timeout_s
    )
    route, supply = (opened_between(alerts, s, onset, end) for s in subjects)
    return route, supply
