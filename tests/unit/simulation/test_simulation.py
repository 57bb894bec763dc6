"""The simulated supply chain behaves like the real one the brief describes: seasons, transit
times from the reference checkpoints, Cipinang's inflows, and Jakarta/Lampung price ratios."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta

import pytest

from pantau.contracts import WIB, event_to_dict, schema_validator
from pantau.reference import load_reference
from pantau.simulation import GroundTruth, Simulation
from pantau.simulation import world as w

START = datetime(2026, 4, 1, tzinfo=WIB)  # after Lebaran 2026 (21 March): normal times


def events(seed: int = 42, start: datetime = START, days: float = 2, scenarios=()) -> list:
    sim = Simulation(load_reference(), seed=seed, start=start, scenarios=scenarios)
    return [e for e in sim.run(until=start + timedelta(days=days)) if not isinstance(e, GroundTruth)]


@pytest.fixture(scope="module")
def fortnight() -> list:
    """Fifteen normal days of events (shared: a run takes a few seconds)."""
    return events(days=15)


def without_produced_at(event) -> dict:
    data = event_to_dict(event)
    data.pop("produced_at")
    return data


def test_same_seed_gives_the_same_events():
    first, second = events(seed=7, days=1), events(seed=7, days=1)
    assert len(first) > 1000
    assert [without_produced_at(e) for e in first] == [without_produced_at(e) for e in second]


def test_different_seed_gives_different_events():
    first, second = events(seed=7, days=1), events(seed=8, days=1)
    assert {e.event_id for e in first}.isdisjoint({e.event_id for e in second})
    assert [e.payload.model_dump() for e in first[:200]] != [e.payload.model_dump() for e in second[:200]]


def test_events_come_in_event_time_order_and_validate_against_the_json_schemas(fortnight):
    times = [e.occurred_at for e in fortnight]
    assert times == sorted(times)
    validator = schema_validator()
    by_type = defaultdict(list)
    for event in fortnight:
        by_type[event.event_type].append(event)
    assert set(by_type) == {
        "HarvestReported", "ShipmentDispatched", "ShipmentCheckpointPassed", "ShipmentArrived", "PriceObserved",
    }  # fmt: skip
    for event_type, group in by_type.items():
        for event in group[:: max(len(group) // 300, 1)]:  # a spread sample of each type
            assert validator.errors(event_to_dict(event)) == [], event_type
    assert all(e.source == "simulator" and e.occurred_at.utcoffset() == timedelta(hours=7) for e in fortnight)


def test_warm_up_day_puts_trucks_on_the_road_and_prices_before_the_start():
    early = events(days=0)
    kinds = {e.event_type for e in early}
    assert {"ShipmentDispatched", "ShipmentArrived", "PriceObserved", "HarvestReported"} <= kinds
    assert all(e.occurred_at <= START for e in early)


def daily_rice_harvest(start: datetime, days: int = 3) -> float:
    harvested = [
        e.payload.quantity_kg
        for e in events(start=start, days=days)
        if e.event_type == "HarvestReported" and e.payload.commodity == "beras" and e.occurred_at >= start
    ]
    return sum(harvested) / days


def test_rice_harvest_is_larger_in_the_main_season_than_in_june():
    march, april, june = (daily_rice_harvest(datetime(2026, m, 14, tzinfo=WIB)) for m in (3, 4, 6))
    assert march > 2.5 * june
    assert april > 2.5 * june
    august = daily_rice_harvest(datetime(2026, 8, 20, tzinfo=WIB))
    assert august > 1.5 * june  # the second (gadu) harvest


def test_transit_times_stay_within_the_reference_bounds(fortnight):
    ref = load_reference()
    legs = ref.route("lampung_jakarta").legs
    dispatched = {e.payload.shipment_id: e for e in fortnight if e.event_type == "ShipmentDispatched"}
    passed = defaultdict(dict)
    for e in fortnight:
        if e.event_type == "ShipmentCheckpointPassed":
            passed[e.payload.shipment_id][e.payload.checkpoint_code] = e.occurred_at
    arrived = {e.payload.shipment_id: e for e in fortnight if e.event_type == "ShipmentArrived"}
    complete = [s for s in arrived if s in dispatched and len(passed[s]) == 3]
    assert len(complete) > 1000

    def minutes(a: datetime, b: datetime) -> float:
        return (b - a).total_seconds() / 60.0

    for shipment in complete:
        d, p, a = dispatched[shipment], passed[shipment], arrived[shipment]
        road = ref.regency(d.payload.origin_regency_code).to_bakauheni.normal_road_minutes
        low, high = (road * f for f in w.ROAD_FACTOR_RANGE)
        assert low - 0.1 <= minutes(d.occurred_at, p["bakauheni_port"]) <= high + 0.1
        stages = [
            (p["bakauheni_port"], p["ferry_crossing"], legs[1]),
            (p["ferry_crossing"], p["merak_port"], legs[2]),
            (p["merak_port"], a.occurred_at, legs[3]),
        ]
        for begin, end, leg in stages:
            assert leg.range_minutes.min - 0.1 <= minutes(begin, end) <= leg.range_minutes.max + 0.1, leg.to
        assert a.payload.transit_minutes == pytest.approx(minutes(d.occurred_at, a.occurred_at), abs=0.1)
        assert [c.checkpoint_code for c in d.payload.planned_route] == [
            "bakauheni_port",
            "ferry_crossing",
            "merak_port",
        ]


def cipinang_arrivals_by_day(fortnight) -> dict[date, float]:
    by_day: dict[date, float] = defaultdict(float)
    for e in fortnight:
        if e.event_type == "ShipmentArrived" and e.payload.destination_code == "pibc" and e.occurred_at >= START:
            by_day[e.occurred_at.date()] += e.payload.quantity_kg
    return by_day


def test_cipinang_receives_its_normal_inflow_in_trucks_of_8_to_30_tonnes(fortnight):
    by_day = cipinang_arrivals_by_day(fortnight)
    days = [d for d in by_day if d < (START + timedelta(days=14)).date()]
    tonnes = [by_day[d] / 1000 for d in days]
    assert 2500 <= statistics.mean(tonnes) <= 3300  # Jakarta needs about 2,900 t a day
    assert all(2000 <= t <= 4500 for t in tonnes)
    trucks = [e for e in fortnight if e.event_type == "ShipmentDispatched" and e.payload.destination_code == "pibc"]
    assert all(8000 <= t.payload.vehicle.capacity_kg <= 30000 for t in trucks)
    assert all(t.payload.quantity_kg <= t.payload.vehicle.capacity_kg for t in trucks)
    per_day = len(trucks) / 15
    assert 100 <= per_day <= 250


def test_more_rice_arrives_at_cipinang_on_mondays(fortnight):
    by_day = cipinang_arrivals_by_day(fortnight)
    mondays = [v for d, v in by_day.items() if d.weekday() == 0]
    others = [v for d, v in by_day.items() if d.weekday() != 0 and d < (START + timedelta(days=14)).date()]
    assert len(mondays) == 2
    assert min(mondays) > 1.1 * statistics.mean(others)


def test_jakarta_lampung_rice_ratio_stays_in_its_normal_band(fortnight):
    prices: dict[str, dict[date, float]] = defaultdict(dict)
    for e in fortnight:
        if e.event_type == "PriceObserved" and e.payload.commodity == "beras":
            prices[e.payload.market_code][e.occurred_at.date()] = e.payload.price_idr
    ratios = [prices["prov_31"][d] / prices["prov_18"][d] for d in prices["prov_31"] if d in prices["prov_18"]]
    assert len(ratios) >= 15
    assert all(1.07 <= r <= 1.19 for r in ratios), ratios


def test_each_series_has_one_price_level_and_grade_so_detectors_never_mix_them(fortnight):
    seen: dict[str, set] = defaultdict(set)
    for e in fortnight:
        if e.event_type == "PriceObserved":
            p = e.payload
            seen[p.kafka_key()].add((p.price_level, p.quality_grade, p.unit))
    assert all(len(v) == 1 for v in seen.values())
    assert seen["beras:pibc"] == {("wholesale", "medium", "kg")}
    assert seen["minyak_goreng:prov_31"] == {("retail", "rata_rata", "litre")}
    markets = {key.split(":")[1] for key in seen}
    assert {"pibc", "pikj", "prov_31", "prov_18", "pasar_minggu", "pasar_smep"} <= markets


def test_lebaran_raises_jakarta_rice_demand_and_prices():
    before = [e for e in events(start=datetime(2026, 2, 20, tzinfo=WIB), days=3) if e.event_type == "PriceObserved"]
    peak = [e for e in events(start=datetime(2026, 3, 17, tzinfo=WIB), days=3) if e.event_type == "PriceObserved"]
    world = w.World(load_reference())
    assert world.jakarta_demand_factor(date(2026, 3, 17)) > 1.05
    assert world.jakarta_demand_factor(date(2026, 3, 21)) < 1.0  # the city empties for mudik
    assert world.holiday_uplift("bawang_merah", date(2026, 3, 20)) == pytest.approx(0.10)

    def mean_price(items, key):
        return statistics.mean(e.payload.price_idr for e in items if e.payload.kafka_key() == key)

    assert mean_price(peak, "bawang_merah:prov_31") > 1.05 * mean_price(before, "bawang_merah:prov_31")


def test_harvests_reported_for_the_jakarta_trade_ship_within_their_window(fortnight):
    """In normal times no harvest lot is left mostly unshipped (what a harvest_unshipped alert means)."""
    lots, shipped = {}, defaultdict(float)
    for e in fortnight:
        if e.event_type == "HarvestReported":
            lots[e.payload.harvest_id] = e.payload
        elif e.event_type == "ShipmentDispatched" and e.payload.harvest_id:
            shipped[e.payload.harvest_id] += e.payload.quantity_kg
    closed = [lot for lot in lots.values() if lot.expected_available_until < (START + timedelta(days=14)).date()]
    assert len(closed) > 100
    late = [lot for lot in closed if shipped[lot.harvest_id] < 0.7 * lot.quantity_kg]
    assert late == []


def test_trucks_carrying_a_harvest_leave_within_its_availability_window(fortnight):
    """A truck planned the day before it arrives may leave on the arrival day: one carrying a lot on
    its last day must still leave that day, or the lot counts as unshipped when its window closes."""
    windows = {
        e.payload.harvest_id: (e.payload.expected_available_from, e.payload.expected_available_until)
        for e in fortnight
        if e.event_type == "HarvestReported"
    }
    dispatches = [
        (e.occurred_at.astimezone(WIB).date(), windows[e.payload.harvest_id])
        for e in fortnight
        if e.event_type == "ShipmentDispatched" and e.payload.harvest_id in windows
    ]
    assert len(dispatches) > 500
    outside = [(day, window) for day, window in dispatches if not window[0] <= day <= window[1]]
    assert outside == []
