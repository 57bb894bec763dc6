"""A month of realistic Lampung -> Jakarta events ending at `now`, stored the way the sink stores them
(contract models -> pantau.storage rows -> BatchWriter), so the dashboards' SQL panels have data:
prices at the Jakarta and Lampung markets with a rice spike at Cipinang, harvests in several regencies,
trucks at every stage of the route (some delayed at the ferry), alerts opened, escalated and
resolved, and a few dead letters."""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from pantau.contracts import (
    WIB,
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
    alert_id_for,
    new_event,
)
from pantau.db import connect
from pantau.reference import load_reference
from pantau.settings import Settings
from pantau.storage.rows import row_for
from pantau.storage.writer import BatchWriter, Pending

DAYS = 30


@dataclass(frozen=True)
class PriceSeries:
    commodity: str
    grade: str
    market: str
    province: str
    level: str
    base_price: float
    unit: str = "kg"
    source: str = "importer.pihps"


PRICE_SERIES = (
    PriceSeries("beras", "medium", "prov_31", "31", "retail", 13800),
    PriceSeries("beras", "premium", "prov_31", "31", "retail", 15200),
    PriceSeries("beras", "medium", "prov_18", "18", "retail", 12900),
    PriceSeries("beras", "premium", "prov_18", "18", "retail", 14300),
    PriceSeries("beras", "medium", "pibc", "31", "wholesale", 12400, source="simulator"),
    PriceSeries("beras", "premium", "pibc", "31", "wholesale", 13900, source="simulator"),
    PriceSeries("beras", "medium", "pasar_smep", "18", "retail", 13100, source="simulator"),
    PriceSeries("cabai_merah", "rata_rata", "prov_31", "31", "retail", 55000),
    PriceSeries("cabai_merah", "rata_rata", "prov_18", "18", "retail", 42000),
    PriceSeries("cabai_merah", "rata_rata", "pikj", "31", "wholesale", 45000, source="simulator"),
    PriceSeries("telur_ayam", "rata_rata", "prov_31", "31", "retail", 29000),
    PriceSeries("telur_ayam", "rata_rata", "prov_18", "18", "retail", 27500),
    PriceSeries("minyak_goreng", "minyakita", "prov_31", "31", "retail", 15900, unit="litre"),
    PriceSeries("minyak_goreng", "minyakita", "prov_18", "18", "retail", 15600, unit="litre"),
)

# regency, commodity, tonnes per harvest report
HARVESTS = (
    ("18.04", "beras", 120), ("18.05", "beras", 90), ("18.02", "beras", 60), ("18.05", "pisang", 40),
    ("18.05", "nanas", 25), ("18.02", "cabai_merah", 8), ("18.01", "cabai_merah", 6),
)
# origin regency, commodity, destination, tonnes per truck, vehicle kind
ROUTES = (
    ("18.04", "beras", "pibc", 10, "fuso"), ("18.05", "beras", "pibc", 8, "fuso"),
    ("18.02", "beras", "pibc", 20, "tronton"),
    ("18.05", "pisang", "pikj", 6, "cdd"), ("18.02", "cabai_merah", "pikj", 4, "cde"),
)


def _price_events(now: datetime, rng: random.Random) -> Iterator[AnyEvent]:
    first_day = (now.astimezone(WIB) - timedelta(days=DAYS)).replace(hour=8, minute=0, second=0, microsecond=0)
    for day in range(DAYS + 1):
        observed = first_day + timedelta(days=day)
        if observed > now:
            break
        for s in PRICE_SERIES:
            price = s.base_price * (1 + 0.01 * rng.uniform(-1.5, 1.5))
            if s.commodity == "beras" and s.market in ("pibc", "prov_31") and day >= DAYS - 6:
                price *= 1.08  # the spike the alerts below are about
            price = round(price / 50) * 50
            payload = PriceObserved(
                commodity=s.commodity, quality_grade=s.grade, market_code=s.market, province_code=s.province,
                price_level=s.level, unit=s.unit,
                price_idr_per_kg=price if s.unit == "kg" else None,
                price_idr_per_litre=price if s.unit == "litre" else None,
            )
            yield new_event(payload, occurred_at=observed, source=s.source, produced_at=observed + timedelta(minutes=1))


def _harvest_events(now: datetime, rng: random.Random) -> Iterator[AnyEvent]:
    for day in range(DAYS):
        reported = now - timedelta(days=day, hours=rng.uniform(1, 10))
        for regency, commodity, tonnes in HARVESTS:
            if rng.random() < 0.3:
                continue
            harvested = reported.astimezone(WIB).date()
            payload = HarvestReported(
                harvest_id=str(uuid.uuid4()), regency_code=regency, commodity=commodity,
                quality_grade="medium" if commodity == "beras" else None,
                quantity_kg=tonnes * 1000 * rng.uniform(0.7, 1.3), harvested_on=harvested,
                expected_available_from=harvested + timedelta(days=2),
                expected_available_until=harvested + timedelta(days=12),
            )
            yield new_event(payload, occurred_at=reported, source="simulator")


def _shipment_events(now: datetime, rng: random.Random) -> Iterator[AnyEvent]:
    ref = load_reference()
    legs = {leg.to: leg.normal_minutes for leg in ref.route("lampung_jakarta").legs}
    plate = 8000
    # A truck leaves every 40 minutes for 6 days; the newest are still on the road, at every stage.
    for n in range(int(6 * 24 * 60 / 40)):
        origin, commodity, destination, tonnes, kind = ROUTES[n % len(ROUTES)]
        dispatched = now - timedelta(minutes=40 * n + 5)
        road = ref.regency(origin).to_bakauheni.normal_road_minutes
        planned = {}
        at = dispatched
        for code, minutes in (("bakauheni_port", road), ("ferry_crossing", legs["ferry_crossing"]),
                              ("merak_port", legs["merak_port"]), ("destination", legs["destination"])):
            at += timedelta(minutes=minutes)
            planned[code] = at
        # every fourth truck waits three extra hours at Bakauheni (a ferry queue): more than an hour late
        delay = timedelta(hours=3) if n % 4 == 1 else timedelta(0)
        shipment_id = str(uuid.uuid4())
        plate += 1
        vehicle = Vehicle(plate=f"BE {plate} AB", kind=kind, capacity_kg=tonnes * 1250)
        quantity = tonnes * 1000 * rng.uniform(0.85, 1.0)
        yield new_event(ShipmentDispatched(
            shipment_id=shipment_id, commodity=commodity, quantity_kg=quantity, origin_regency_code=origin,
            destination_code=destination, vehicle=vehicle,
            planned_route=[PlannedCheckpoint(checkpoint_code=c, sequence=i + 1, planned_at=planned[c])
                           for i, c in enumerate(("bakauheni_port", "ferry_crossing", "merak_port"))],
            eta=planned["destination"],
        ), occurred_at=dispatched, source="simulator")
        on_the_road = False
        for sequence, code in enumerate(("bakauheni_port", "ferry_crossing", "merak_port"), start=1):
            passed = planned[code] + (delay if code != "bakauheni_port" else timedelta(0))
            if passed > now:
                on_the_road = True
                break
            yield new_event(ShipmentCheckpointPassed(
                shipment_id=shipment_id, checkpoint_code=code, sequence=sequence, commodity=commodity,
                quantity_kg=quantity, destination_code=destination, origin_regency_code=origin,
                planned_at=planned[code], eta=planned["destination"] + delay,
            ), occurred_at=passed, source="simulator")
        arrived = planned["destination"] + delay
        if not on_the_road and arrived <= now:
            yield new_event(ShipmentArrived(
                shipment_id=shipment_id, destination_code=destination, commodity=commodity, quantity_kg=quantity,
                origin_regency_code=origin, dispatched_at=dispatched,
                transit_minutes=(arrived - dispatched).total_seconds() / 60,
            ), occurred_at=arrived, source="simulator")


@dataclass(frozen=True)
class AlertStory:
    alert_type: str
    subject: str
    commodity: str | None
    place: Place
    severities: tuple[tuple[float, str], ...]  # (days before now, severity), "normal" resolves
    title: str


ALERT_STORIES = (
    AlertStory("price_spike", "price_spike:beras:pibc", "beras",
               Place(kind="market", code="pibc", name="Pasar Induk Beras Cipinang"),
               ((6, "alert"), (4, "crisis"), (1, "normal")), "Harga beras di Pasar Induk Beras Cipinang naik"),
    AlertStory("price_spike", "price_spike:beras:prov_31", "beras",
               Place(kind="province", code="31", name="DKI Jakarta"),
               ((2, "watch"), (1.5, "alert")), "Harga beras di DKI Jakarta naik"),
    AlertStory("supply_gap", "supply_gap:beras:pibc", "beras",
               Place(kind="destination", code="pibc", name="Pasar Induk Beras Cipinang"),
               ((1, "alert"),), "Pasokan beras ke Cipinang di bawah kebutuhan"),
    AlertStory("route_disruption", "route_disruption:ferry_crossing", None,
               Place(kind="checkpoint", code="ferry_crossing", name="Penyeberangan Selat Sunda (Bakauheni-Merak)"),
               ((0.4, "watch"),), "Antrean penyeberangan Bakauheni-Merak memanjang"),
    AlertStory("price_disparity", "price_disparity:cabai_merah:31:18", "cabai_merah",
               Place(kind="province", code="31", name="DKI Jakarta"),
               ((12, "watch"), (9, "normal")), "Selisih harga cabai merah Jakarta-Lampung melebar"),
    AlertStory("harvest_unshipped", "harvest_unshipped:pisang:18.05", "pisang",
               Place(kind="regency", code="18.05", name="Lampung Tengah"),
               ((8, "watch"), (7.2, "alert")), "Panen pisang Lampung Tengah belum terkirim"),
    AlertStory("harvest_unshipped", "harvest_unshipped:beras:18.04", "beras",
               Place(kind="regency", code="18.04", name="Lampung Timur"),
               ((15, "watch"), (13.5, "normal")), "Panen beras Lampung Timur belum terkirim"),
)


def _alert_events(now: datetime) -> Iterator[AnyEvent]:
    for story in ALERT_STORIES:
        opened_at = now - timedelta(days=story.severities[0][0])
        alert_id = alert_id_for(story.subject, opened_at)
        previous = None
        for sequence, (days_before, severity) in enumerate(story.severities, start=1):
            at = now - timedelta(days=days_before)
            kind = AlertOpened if sequence == 1 else AlertResolved if severity == "normal" else AlertUpdated
            payload = kind(
                alert_id=alert_id, alert_type=story.alert_type, subject=story.subject, sequence=sequence,
                severity=severity, previous_severity=previous, commodity=story.commodity, place=story.place,
                affected_volume_kg=None,
                evidence=Evidence(signals=[Signal(name="change_7d_pct", value=8.0, threshold=3.2, baseline=12400,
                                                  window="7d", severity=severity)], details={}),
                title=LocalizedText(id=story.title, en=story.title),
                action_text=LocalizedText(id="Periksa pasokan dan stok.", en="Check supply and stock."),
                opened_at=opened_at,
            )
            previous = severity
            yield new_event(payload, occurred_at=at, source="processor", produced_at=at + timedelta(seconds=1))


def _dead_letters(now: datetime) -> Iterator[AnyEvent]:
    for n, (topic, error_type) in enumerate((("pangan.price.v1", "schema_violation"),
                                             ("pangan.shipment.v1", "invalid_json"),
                                             ("pangan.price.v1", "schema_violation"))):
        failed = now - timedelta(days=n * 3 + 1)
        yield new_event(EventDeadLettered(
            original_topic=topic, partition=n, offset=1000 + n,
            original_key_b64=base64.b64encode(b"beras:pibc").decode(),
            original_value_b64=base64.b64encode(b'{"event_id": "x"}').decode(), original_event_id=None,
            error_type=error_type, error_message="event_id: 'x' is not a UUID", consumer="processor",
            failed_at=failed,
        ), occurred_at=failed, source="processor")


def realistic_events(now: datetime, seed: int = 7) -> list[AnyEvent]:
    rng = random.Random(seed)
    return [*_price_events(now, rng), *_harvest_events(now, rng), *_shipment_events(now, rng),
            *_alert_events(now), *_dead_letters(now)]


def store_events(settings: Settings, events: list[AnyEvent]) -> dict[str, int]:
    """Write the events as the sink does (one batch per 2,000 events); returns rows written per table."""
    written: dict[str, int] = {}
    with connect(settings) as conn:
        writer = BatchWriter(conn)
        pending = [Pending(*row_for(event)) for event in events]
        for start in range(0, len(pending), 2000):
            result = writer.write(pending[start:start + 2000])
            if result.rejected:
                raise AssertionError(f"the database refused realistic rows: {[r.reason for r in result.rejected]}")
            for table, count in result.written.items():
                written[table] = written.get(table, 0) + count
    return written
