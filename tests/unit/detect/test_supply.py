"""Supply gaps, route disruptions and unshipped harvests from shipment and harvest events."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest

from pantau.contracts.models import (
    PlannedCheckpoint,
    Vehicle,
    new_event,
)
from pantau.contracts.models import (
    ShipmentDispatched as DispatchedPayload,
)
from pantau.detect import config as detect_config
from pantau.detect.conditions import AlertType, Condition, Invalid, Severity
from pantau.detect.lifecycle import AlertState, step_lifecycle
from pantau.detect.supply import (
    HarvestConfig,
    HarvestReported,
    HarvestState,
    PlannedStop,
    RouteConfig,
    RouteState,
    ShipmentArrived,
    ShipmentCheckpointPassed,
    ShipmentDispatched,
    ShipmentState,
    ShipmentStatus,
    SupplyConfig,
    SupplyState,
    inflows_kg_per_day,
    judge_route,
    judge_supply,
    shipment_event_from_contract,
    step_harvest,
    step_route,
    step_shipment,
    step_supply,
    tick_harvest,
    tick_route,
    tick_supply,
)
from pantau.detect.timebase import WIB, day_to_date

from .conftest import kinds

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=WIB)
ROUTE = ("bakauheni_port", "ferry_crossing", "merak_port")


@dataclass
class Truck:
    shipment_id: str
    dispatched: datetime
    kg: float
    origin: str = "18.05"  # Lampung Tengah
    destination: str = "pibc"
    commodity: str = "beras"

    def plan(self) -> tuple[PlannedStop, ...]:
        hours = (3, 5, 8)
        return tuple(
            PlannedStop(cp, i + 1, self.dispatched + timedelta(hours=h))
            for i, (cp, h) in enumerate(zip(ROUTE, hours, strict=True))
        )

    @property
    def eta(self) -> datetime:
        return self.dispatched + timedelta(hours=10)

    def dispatch(self) -> ShipmentDispatched:
        return ShipmentDispatched(
            self.shipment_id,
            self.dispatched,
            self.commodity,
            self.kg,
            self.origin,
            self.destination,
            self.plan(),
            self.eta,
        )

    def passes(self, sequence: int, late: timedelta = timedelta()) -> ShipmentCheckpointPassed:
        stop = self.plan()[sequence - 1]
        return ShipmentCheckpointPassed(
            self.shipment_id,
            stop.planned_at + late,
            stop.checkpoint,
            sequence,
            self.commodity,
            self.kg,
            self.origin,
            self.destination,
            stop.planned_at,
            self.eta + late,
        )

    def arrives(self, late: timedelta = timedelta()) -> ShipmentArrived:
        return ShipmentArrived(
            self.shipment_id, self.eta + late, self.commodity, self.kg, self.origin, self.destination, self.dispatched
        )


def trip(truck: Truck, late: timedelta = timedelta()) -> list:
    return [truck.dispatch(), truck.passes(1, late), truck.passes(2, late), truck.passes(3, late), truck.arrives(late)]


def new_id(n: int) -> str:
    return str(uuid.UUID(int=n))


class Pipeline:
    """The processor's wiring, in memory: shipment states -> statuses -> aggregates -> lifecycle."""

    def __init__(self, lifecycle_config, target, in_place: bool = False):
        self.lifecycle, self.target = lifecycle_config, target
        self.in_place = in_place  # step the states it owns in place, as a processor batch does
        self.supply_config, self.route_config, self.harvest_config = SupplyConfig(), RouteConfig(), HarvestConfig()
        self.shipments: dict[str, ShipmentState] = {}
        self.supply: SupplyState | None = None
        self.routes: dict[str, RouteState] = {}
        self.harvests: dict[str, HarvestState] = {}
        self.alerts: dict[str, AlertState] = {}
        self.transitions: list = []
        self.conditions: list[Condition] = []
        self.rejected: list[Invalid] = []

    def _alert(self, conditions) -> None:
        for c in conditions:
            self.conditions.append(c)
            self.alerts[c.subject], out = step_lifecycle(
                self.alerts.get(c.subject), c, self.lifecycle, in_place=self.in_place
            )
            self.transitions.extend(out)

    def shipment(self, event) -> ShipmentStatus | None:
        self.shipments[event.shipment_id], status = step_shipment(self.shipments.get(event.shipment_id), event)
        if status is None:
            return None
        assert isinstance(status, ShipmentStatus)
        status = ShipmentStatus.from_json(json.loads(json.dumps(status.to_json())))  # as through a topic
        if status.destination_key == self.target.key:
            self.supply, out = step_supply(self.supply, status, self.target, self.supply_config,
                                           in_place=self.in_place)  # fmt: skip
            self._alert(out)
        for checkpoint in status.checkpoint_keys:
            self.routes[checkpoint], out = step_route(
                self.routes.get(checkpoint), status, checkpoint, self.route_config, in_place=self.in_place
            )
            self._alert(out)
        if status.origin_key in self.harvests:
            key = status.origin_key
            self.harvests[key], out = step_harvest(
                self.harvests[key], status, key, self.harvest_config, in_place=self.in_place
            )
            self._alert(out)
        return status

    def harvest(self, event: HarvestReported) -> None:
        self.harvests[event.key], out = step_harvest(
            self.harvests.get(event.key), event, event.key, self.harvest_config, in_place=self.in_place
        )
        if isinstance(out, Invalid):
            self.rejected.append(out)
            return
        self._alert(out)

    def tick(self, now: datetime) -> None:
        self.supply, out = tick_supply(self.supply, now, self.target, self.supply_config, in_place=self.in_place)
        self._alert(out)
        for checkpoint in ROUTE:
            self.routes[checkpoint], out = tick_route(
                self.routes.get(checkpoint), now, checkpoint, self.route_config, in_place=self.in_place
            )
            self._alert(out)
        for key in list(self.harvests):
            self.harvests[key], out = tick_harvest(
                self.harvests[key], now, key, self.harvest_config, in_place=self.in_place
            )
            self._alert(out)

    def run(self, events, until: datetime, tick_every: timedelta = timedelta(hours=1)) -> None:
        """Events in event-time order, with a tick every hour in between (the processor's timer)."""
        events = sorted(events, key=lambda e: e.occurred_at)
        now = min([e.occurred_at for e in events] + [until])
        for event in events:
            while now + tick_every <= event.occurred_at:
                now += tick_every
                self.tick(now)
            if isinstance(event, HarvestReported):
                self.harvest(event)
            else:
                self.shipment(event)
        while now + tick_every <= until:
            now += tick_every
            self.tick(now)

    def of_type(self, alert_type: AlertType) -> list:
        return [t for t in self.transitions if t.alert_type is alert_type]


@pytest.fixture(scope="module")
def cipinang(ref):
    return detect_config.supply_targets(ref)["beras:pibc"]


def steady_inflow(
    start: datetime, days: float, daily_kg: float, first_id: int = 0, truck_kg: float = 29_000.0, **truck: str
):
    """Trucks dispatched evenly, together carrying daily_kg a day, each arriving on time."""
    per_day = round(daily_kg / truck_kg)
    every = timedelta(days=1) / per_day
    events, n = [], 0
    while n * every < timedelta(days=days):
        events += trip(Truck(new_id(first_id + n), start + n * every, truck_kg, **truck))
        n += 1
    return events


def test_cipinang_target_comes_from_the_reference_data(cipinang):
    assert cipinang.daily_requirement_kg == 2_900_000 and cipinang.safe_stock_kg == 25_000_000
    assert cipinang.initial_stock_kg == 27_500_000
    assert cipinang.watch_cover_days == pytest.approx(8.62, abs=0.01)


def test_steady_inflow_keeps_supply_normal(lifecycle_config, cipinang):
    pipeline = Pipeline(lifecycle_config, cipinang)
    until = T0 + timedelta(days=4)
    events = [e for e in steady_inflow(T0, 4, 3_000_000) if e.occurred_at <= until]
    pipeline.run(events, until=until)
    assert pipeline.of_type(AlertType.SUPPLY_GAP) == []
    arrived_kg = sum(e.quantity_kg for e in events if isinstance(e, ShipmentArrived) and e.occurred_at <= until)
    used_kg = 2_900_000 * 4  # the clock started with the first event, at T0
    assert pipeline.supply.stock_kg == pytest.approx(27_500_000 + arrived_kg - used_kg)


def test_supply_cover_falls_below_threshold_opens_supply_gap(lifecycle_config, cipinang):
    pipeline = Pipeline(lifecycle_config, cipinang)
    inflow = steady_inflow(T0, 2, 3_000_000)  # two normal days, then the trucks stop coming
    pipeline.run(inflow, until=T0 + timedelta(days=12))
    gaps = pipeline.of_type(AlertType.SUPPLY_GAP)
    assert gaps and gaps[0].kind.value == "opened" and gaps[0].severity == Severity.ALERT
    opened = gaps[0]
    # the last trucks arrive ~10 h into day 2; ~27,700 t then fall below the 25,000 t safe stock ~0.6 days later
    assert timedelta(days=2, hours=10) < opened.occurred_at - T0 < timedelta(days=3)
    assert opened.details["projected_stock_kg"] < 25_000_000 and opened.details["expected_arrivals_kg"] == 0
    assert "Bulog" in opened.action_id
    assert opened.affected_volume_kg == pytest.approx(25_000_000 - opened.details["projected_stock_kg"])
    crisis = next(t for t in gaps if t.severity == Severity.CRISIS)  # under two days of cover later on
    assert crisis.details["projected_cover_days"] < 2.0
    assert timedelta(days=8) < crisis.occurred_at - T0 < timedelta(days=10)


def test_supply_gap_names_the_shipments_and_regencies_behind(lifecycle_config, cipinang):
    pipeline = Pipeline(lifecycle_config, cipinang)
    start = T0 + timedelta(days=2)
    stuck = [Truck(new_id(10_000 + i), start, 29_000.0, origin="18.04") for i in range(8)]  # Lampung Timur
    late_ones = [Truck(new_id(20_000 + i), start, 29_000.0, origin="18.02") for i in range(2)]  # Tanggamus
    events = [t.dispatch() for t in stuck + late_ones] + [t.passes(1) for t in late_ones]
    pipeline.run(steady_inflow(T0, 2, 3_000_000) + events, until=T0 + timedelta(days=4))
    gap = next(t for t in pipeline.of_type(AlertType.SUPPLY_GAP) if t.kind.value == "opened")
    assert gap.details["behind_count"] == 10
    assert gap.details["behind_by_origin_kg"] == {"18.04": 232_000.0, "18.02": 58_000.0}
    listed = {s["shipment_id"]: s for s in gap.details["behind_shipments"]}
    assert all(t.shipment_id in listed for t in stuck)
    assert listed[late_ones[0].shipment_id]["last_checkpoint"] == "bakauheni_port"
    assert "Kabupaten Lampung Timur" in gap.title_id and "Kabupaten Tanggamus" in gap.title_en


def test_supply_gap_resolves_when_deliveries_restore_the_stock(lifecycle_config, cipinang):
    pipeline = Pipeline(lifecycle_config, cipinang)
    relief_start = T0 + timedelta(days=5)
    relief = [
        t
        for i in range(60)
        for t in trip(Truck(new_id(50_000 + i), relief_start + timedelta(minutes=10 * i), 500_000.0))
    ]
    pipeline.run(steady_inflow(T0, 2, 3_000_000) + relief, until=T0 + timedelta(days=7))
    assert kinds(pipeline.of_type(AlertType.SUPPLY_GAP))[0] == "opened"
    assert kinds(pipeline.of_type(AlertType.SUPPLY_GAP))[-1] == "resolved"


def test_many_delays_at_bakauheni_open_route_disruption_with_the_affected_volume(lifecycle_config, cipinang):
    pipeline = Pipeline(lifecycle_config, cipinang)
    trucks = [Truck(new_id(i), T0 + timedelta(minutes=5 * i), 20_000.0 + 1_000 * i) for i in range(7)]
    blocked_for = timedelta(hours=9)  # the port closes: nobody passes Bakauheni for 9 hours
    events = [e for t in trucks for e in trip(t, late=blocked_for)]
    pipeline.run(events, until=T0 + timedelta(hours=24), tick_every=timedelta(minutes=15))
    route = [t for t in pipeline.of_type(AlertType.ROUTE_DISRUPTION) if t.subject == "route_disruption:bakauheni_port"]
    assert kinds(route)[0] == "opened" and kinds(route)[-1] == "resolved"
    opened = next(t for t in route if t.severity >= Severity.ALERT)
    assert opened.details["delayed_count"] >= 5
    delayed_kg = sum(s["quantity_kg"] for s in opened.details["delayed_shipments"])
    assert opened.affected_volume_kg == delayed_kg == opened.details["delayed_kg"]
    assert "tertahan di Pelabuhan Bakauheni" in opened.title_id
    resolved = route[-1]
    assert resolved.occurred_at >= trucks[-1].plan()[0].planned_at + blocked_for  # only once they moved again
    conditions = [c for c in pipeline.conditions if c.subject == "route_disruption:bakauheni_port"]
    assert max(c.affected_volume_kg or 0 for c in conditions) == sum(t.kg for t in trucks)  # all seven, 161 t


def test_a_single_late_truck_is_no_route_disruption(lifecycle_config, cipinang):
    pipeline = Pipeline(lifecycle_config, cipinang)
    events = trip(Truck(new_id(1), T0, 29_000.0), late=timedelta(hours=6))
    pipeline.run(events, until=T0 + timedelta(hours=24))
    assert pipeline.of_type(AlertType.ROUTE_DISRUPTION) == []


def harvest(hid: int, kg: float, start: date, end: date, regency: str = "18.04") -> HarvestReported:
    return HarvestReported(new_id(hid), datetime(2026, 2, 27, 9, 0, tzinfo=WIB), regency, "beras", kg, start, end)


def test_harvest_not_shipped_in_window_raises_harvest_unshipped(lifecycle_config, cipinang):
    pipeline = Pipeline(lifecycle_config, cipinang)
    lot = harvest(900, 200_000.0, date(2026, 3, 1), date(2026, 3, 10))
    shipped = [Truck(new_id(700 + i), datetime(2026, 3, 4, 8, tzinfo=WIB), 25_000.0, origin="18.04") for i in range(2)]
    events = [lot] + [e for t in shipped for e in trip(t)]
    pipeline.run(events, until=datetime(2026, 3, 20, tzinfo=WIB), tick_every=timedelta(hours=6))
    found = pipeline.of_type(AlertType.HARVEST_UNSHIPPED)
    assert kinds(found) == ["opened", "resolved"]
    opened = found[0]
    assert opened.subject == "harvest_unshipped:beras:18.04"
    assert opened.occurred_at.astimezone(WIB).date() == date(2026, 3, 11)  # the day after the window ends
    assert opened.affected_volume_kg == 150_000.0 and opened.severity == Severity.ALERT
    assert "150 t panen beras di Kabupaten Lampung Timur" in opened.title_id
    assert found[1].occurred_at.astimezone(WIB).date() >= date(2026, 3, 18)  # forgotten a week after the window


def test_harvest_shipped_within_its_window_raises_nothing(lifecycle_config, cipinang):
    pipeline = Pipeline(lifecycle_config, cipinang)
    lot = harvest(901, 100_000.0, date(2026, 3, 1), date(2026, 3, 10))
    shipped = [Truck(new_id(800 + i), datetime(2026, 3, 3, 8, tzinfo=WIB), 25_000.0, origin="18.04") for i in range(4)]
    pipeline.run([lot] + [e for t in shipped for e in trip(t)], until=datetime(2026, 3, 20, tzinfo=WIB))
    assert pipeline.of_type(AlertType.HARVEST_UNSHIPPED) == []
    assert pipeline.harvests["18.04:beras"].lots == {}


def test_stepping_in_place_gives_what_stepping_copies_gives(lifecycle_config, cipinang):
    """The processor steps a key's own copy in place within a batch: a closure at Bakauheni that empties
    Cipinang, harvests shipped and unshipped, and ticks must come out exactly the same."""
    trucks = [Truck(new_id(30_000 + i), T0 + timedelta(days=2, minutes=5 * i), 29_000.0) for i in range(8)]
    lots = [harvest(903, 200_000.0, date(2026, 3, 1), date(2026, 3, 6)), harvest(904, 1_000.0, date(2026, 3, 9),
                                                                              date(2026, 3, 1))]  # fmt: skip
    events = steady_inflow(T0, 2, 3_000_000) + [e for t in trucks for e in trip(t, late=timedelta(hours=9))] + lots
    results = []
    for in_place in (False, True):
        pipeline = Pipeline(lifecycle_config, cipinang, in_place=in_place)
        pipeline.run(events, until=T0 + timedelta(days=14), tick_every=timedelta(minutes=30))
        results.append(pipeline)
    copied, stepped = results
    assert {t.alert_type for t in copied.transitions} == {
        AlertType.SUPPLY_GAP, AlertType.ROUTE_DISRUPTION, AlertType.HARVEST_UNSHIPPED
    }  # fmt: skip
    assert len(copied.rejected) == 1 and stepped.rejected == copied.rejected
    assert stepped.transitions == copied.transitions
    assert stepped.conditions == copied.conditions
    assert (stepped.supply, stepped.routes, stepped.harvests, stepped.alerts) == (
        copied.supply, copied.routes, copied.harvests, copied.alerts
    )  # fmt: skip


def test_harvest_with_an_impossible_window_is_rejected():
    bad = harvest(902, 1_000.0, date(2026, 3, 10), date(2026, 3, 1))
    state, result = step_harvest(None, bad, bad.key, HarvestConfig())
    assert isinstance(result, Invalid) and "before" in result.reason
    assert state == HarvestState()


def test_duplicate_and_stale_shipment_events_change_nothing():
    truck = Truck(new_id(5), T0, 29_000.0)
    state, first = step_shipment(None, truck.dispatch())
    assert first.next_checkpoint == "bakauheni_port" and first.checkpoint_keys == ("bakauheni_port",)
    again_state, again = step_shipment(state, truck.dispatch())
    assert again is None and again_state == state
    state, passed2 = step_shipment(state, truck.passes(2))
    assert passed2.checkpoint_keys == ("bakauheni_port", "merak_port")  # bakauheni must drop it, merak add it
    stale_state, stale = step_shipment(state, truck.passes(1))
    assert stale is None and stale_state == state
    state, arrived = step_shipment(state, truck.arrives())
    assert arrived.arrived_ts is not None and arrived.checkpoint_keys == ("merak_port",)
    assert step_shipment(state, truck.arrives())[1] is None


def _as_version_1(status: ShipmentStatus) -> dict:
    """A snapshot as the previous release wrote it to the repartition topic: a dict, ISO 8601 times."""
    times = {"occurred_ts": "occurred_at", "dispatched_ts": "dispatched_at", "eta_ts": "eta",
             "arrived_ts": "arrived_at", "last_checkpoint_ts": "last_checkpoint_at",
             "next_checkpoint_planned_ts": "next_checkpoint_planned_at",
             "next_checkpoint_due_ts": "next_checkpoint_due_at"}  # fmt: skip
    data = {"v": 1}
    for name, value in status._asdict().items():
        if name in times:
            data[times[name]] = datetime.fromtimestamp(value, WIB).isoformat() if value is not None else None
        else:
            data[name] = value
    return data


def test_shipment_snapshots_written_by_the_previous_release_still_decode():
    truck = Truck(new_id(7), T0, 29_000.0)
    state, snapshots = None, []
    for event in (truck.dispatch(), truck.passes(1), truck.passes(2), truck.arrives()):
        state, status = step_shipment(state, event)
        snapshots.append(status)
    for status in snapshots:
        assert ShipmentStatus.from_json(json.loads(json.dumps(status.to_json()))) == status
        assert ShipmentStatus.from_json(json.loads(json.dumps(_as_version_1(status)))) == status
    oldest = {k: v for k, v in _as_version_1(snapshots[0]).items() if k not in ("next_checkpoint_due_at",
                                                                               "next_leg_minutes")}  # fmt: skip
    assert ShipmentStatus.from_json(oldest).next_checkpoint_due_ts is None  # before due times existed
    with pytest.raises(ValueError, match="unknown ShipmentStatus version 3"):
        ShipmentStatus.from_json([3, *snapshots[0]])
    with pytest.raises(ValueError, match="has 18 fields, got 17"):
        ShipmentStatus.from_json(snapshots[0].to_json()[:-1])


def test_a_repeated_arrival_snapshot_adds_stock_once(cipinang):
    truck = Truck(new_id(6), T0, 29_000.0)
    state, statuses = None, []
    for event in trip(truck):
        state, status = step_shipment(state, event)
        statuses.append(status)
    supply = None
    for status in statuses + [statuses[-1], statuses[1]]:  # the arrival and an older one again
        supply, _ = step_supply(supply, status, cipinang, SupplyConfig())
    used = cipinang.daily_requirement_kg * 10 / 24
    assert supply.stock_kg == pytest.approx(cipinang.initial_stock_kg + 29_000.0 - used)
    assert supply.in_transit == {}


# --- produce markets: arrivals against the usual inflow --------------------------------------------

CHILLI = {"commodity": "cabai_merah", "destination": "pikj", "origin": "18.02"}  # Tanggamus chilli for Kramat Jati


@pytest.fixture(scope="module")
def kramat_jati_chilli(ref):
    return detect_config.supply_targets(ref)["cabai_merah:pikj"]


def test_a_produce_market_alerts_when_its_arrivals_fall_to_half_the_usual(lifecycle_config, kramat_jati_chilli):
    target = kramat_jati_chilli
    assert target.daily_requirement_kg == 90_000 and target.turnover_days == 4.5
    pipeline = Pipeline(lifecycle_config, target)
    drop = T0 + timedelta(days=42)
    usual = steady_inflow(T0, 42, 125_000, truck_kg=5_000, **CHILLI)  # more than the 90 t requirement
    failure = steady_inflow(drop, 8, 60_000, first_id=100_000, truck_kg=5_000, **CHILLI)
    pipeline.run(usual + failure, until=drop + timedelta(days=8))

    gaps = pipeline.of_type(AlertType.SUPPLY_GAP)
    assert gaps, "a chilli inflow at half the usual raised no supply gap"
    opened = gaps[0]
    assert opened.kind.value == "opened" and drop < opened.occurred_at < drop + timedelta(days=7)
    (recent,) = [s for s in opened.signals if s.name == "recent_inflow_pct"]
    assert recent.severity == Severity.ALERT and recent.value < SupplyConfig().recent_inflow_alert_pct
    assert 100_000 < opened.details["usual_inflow_kg_per_day"] < 125_000  # learning the 125 t, from the 90 t
    assert f"arrivals are {recent.value:.0f}% of usual" in opened.title_en and "dari biasanya" in opened.title_id
    # the stock is about 4.5 days of arrivals: weeks of 125 t a day do not pile up as weeks of cover
    stock = {c.observed_at.date(): c.details["stock_kg"] for c in pipeline.conditions
             if c.alert_type is AlertType.SUPPLY_GAP}  # fmt: skip
    for day in (21, 42):
        assert stock[(T0 + timedelta(days=day)).date()] == pytest.approx(4.5 * 125_000, rel=0.1)


def test_a_stocking_market_is_judged_by_its_stock_not_by_a_few_days_of_low_arrivals(lifecycle_config, cipinang):
    assert cipinang.turnover_days is None
    pipeline = Pipeline(lifecycle_config, cipinang)
    low = T0 + timedelta(days=7)
    usual = steady_inflow(T0, 7, 3_000_000)
    dip = steady_inflow(low, 3, 750_000, first_id=100_000)  # a quarter for three days: Cipinang's stock covers it
    pipeline.run(usual + dip, until=low + timedelta(days=3))
    recent = [s for c in pipeline.conditions if c.alert_type is AlertType.SUPPLY_GAP
              for s in c.signals if s.name == "recent_inflow_pct"]  # fmt: skip
    assert min(s.value for s in recent) < SupplyConfig().recent_inflow_alert_pct
    assert {s.severity for s in recent} == {Severity.NORMAL}


def test_a_produce_market_expects_fewer_arrivals_over_lebaran(lifecycle_config, kramat_jati_chilli, ref):
    config = detect_config.supply_config(ref)
    lebaran = date(2026, 3, 21)  # Idul Fitri 2026 in the reference data
    assert {day_to_date(d) for d in config.demand_calendar if day_to_date(d).year == 2026} == {
        lebaran + timedelta(days=offset) for offset in range(-2, 5)
    }
    mudik = datetime(2026, 3, 19, tzinfo=WIB)  # H-2: the city empties for a week
    start = mudik - timedelta(days=42)
    trucks = {"truck_kg": 5_000, **CHILLI}
    events = (
        steady_inflow(start, 42, 90_000, **trucks)
        + steady_inflow(mudik, 7, 45_000, first_id=100_000, **trucks)  # half: a little below the 60 % expected
        + steady_inflow(mudik + timedelta(days=7), 5, 90_000, first_id=200_000, **trucks)
    )
    pipeline = Pipeline(lifecycle_config, kramat_jati_chilli)
    pipeline.supply_config = config
    pipeline.run(events, until=mudik + timedelta(days=12))
    assert pipeline.of_type(AlertType.SUPPLY_GAP) == []
    notes = {s.note for c in pipeline.conditions if c.alert_type is AlertType.SUPPLY_GAP
             for s in c.signals if s.name == "recent_inflow_pct"}  # fmt: skip
    assert any(note and "holiday calendar" in note for note in notes), "the evidence does not say fewer were expected"

    # the same week without the calendar is a supply gap
    pipeline = Pipeline(lifecycle_config, kramat_jati_chilli)
    pipeline.run(events, until=mudik + timedelta(days=12))
    assert kinds(pipeline.of_type(AlertType.SUPPLY_GAP))[0] == "opened"


def test_a_produce_market_is_not_short_after_lebaran_while_arrivals_follow_the_demand(
    lifecycle_config, kramat_jati_chilli, ref
):
    """Arrivals followed the mudik week's low demand, so the stock (recent arrivals) is low for days after
    it while the city buys as usual again: the cover counts in the demand of the days the stock spans."""
    mudik = datetime(2026, 3, 19, tzinfo=WIB)
    start, usual = mudik - timedelta(days=42), 85_000  # a little below the 90 t requirement, as at the market
    trucks = {"truck_kg": 5_000, **CHILLI}
    events = (
        steady_inflow(start, 42, usual, **trucks)
        + steady_inflow(mudik, 7, 0.6 * usual, first_id=100_000, **trucks)  # as the calendar expects
        + steady_inflow(mudik + timedelta(days=7), 7, usual, first_id=200_000, **trucks)
    )
    pipeline = Pipeline(lifecycle_config, kramat_jati_chilli)
    pipeline.supply_config = detect_config.supply_config(ref)
    pipeline.run(events, until=mudik + timedelta(days=14))
    assert pipeline.of_type(AlertType.SUPPLY_GAP) == []
    after = [c for c in pipeline.conditions
             if c.alert_type is AlertType.SUPPLY_GAP and c.observed_at > mudik + timedelta(days=7)]  # fmt: skip
    (cover,) = [s for s in after[0].signals if s.name == "projected_cover_days"]
    assert cover.note and "holiday calendar" in cover.note
    assert after[0].details["stock_kg"] < 0.8 * 4.5 * usual  # the stock is still low ...
    assert cover.severity == Severity.NORMAL  # ... as expected


def _arrival_statuses(trucks: list[Truck]) -> list[ShipmentStatus]:
    statuses = []
    for truck in trucks:
        state = None
        for event in trip(truck):
            state, status = step_shipment(state, event)
        statuses.append(status)
    return statuses


def test_a_late_arrival_counts_toward_the_inflows_as_if_it_had_come_in_order(kramat_jati_chilli):
    arrivals = _arrival_statuses([Truck(new_id(i), T0 + timedelta(hours=5 * i), 5_000.0, **CHILLI) for i in range(6)])
    config, until = SupplyConfig(), T0 + timedelta(days=2)
    in_order, _ = tick_supply(None, T0, kramat_jati_chilli, config)  # both start (and learn) at T0
    late, _ = tick_supply(None, T0, kramat_jati_chilli, config)
    for status in arrivals:
        in_order, _ = step_supply(in_order, status, kramat_jati_chilli, config)
    for status in arrivals[3:] + arrivals[:3]:  # the first three arrive after the others
        late, _ = step_supply(late, status, kramat_jati_chilli, config)
    in_order, _ = tick_supply(in_order, until, kramat_jati_chilli, config)
    late, _ = tick_supply(late, until, kramat_jati_chilli, config)
    assert inflows_kg_per_day(late, config) == pytest.approx(inflows_kg_per_day(in_order, config), rel=1e-9)
    assert late.stock_kg == pytest.approx(in_order.stock_kg)


def test_a_supply_state_stored_before_the_inflows_existed_still_loads(kramat_jati_chilli):
    (arrival,) = _arrival_statuses([Truck(new_id(1), T0, 5_000.0, **CHILLI)])
    stored = SupplyState(stock_kg=300_000.0, stock_ts=T0.timestamp(), watermark=T0.timestamp(),
                         started_ts=T0.timestamp()).to_json()  # fmt: skip
    del stored["usual_inflow_kg"], stored["recent_inflow_kg"]
    state, (condition,) = step_supply(SupplyState.from_json(stored), arrival, kramat_jati_chilli, SupplyConfig())
    usual, recent = inflows_kg_per_day(state, SupplyConfig())
    assert usual == pytest.approx(90_000, rel=0.05) and recent == pytest.approx(90_000, rel=0.3)  # the requirement
    assert condition.details["usual_inflow_kg_per_day"] == usual


def test_in_transit_entries_stored_before_due_and_leg_times_still_load_and_judge_by_the_planned_time(cipinang):
    """Entries of states written before checkpoint due times (supply: 7 items) and leg times (route: 6)."""
    planned, now = T0.timestamp(), (T0 + timedelta(hours=3)).timestamp()  # an hour past the grace of either
    supply = SupplyState(stock_kg=300_000.0, stock_ts=now, watermark=now, started_ts=planned).to_json()
    supply["in_transit"] = {
        new_id(n): [1, 29_000.0, "18.05", now + 7200.0, "bakauheni_port", planned, None] for n in range(5)
    }
    route = RouteState(watermark=now).to_json()
    route["expected"] = {new_id(n): [1, planned, 29_000.0, "beras", "18.05", "pibc"] for n in range(5)}
    held_up = judge_supply(SupplyState.from_json(json.loads(json.dumps(supply))), cipinang, SupplyConfig())
    delayed = judge_route(RouteState.from_json(json.loads(json.dumps(route))), "bakauheni_port", RouteConfig())
    assert held_up.details["behind_count"] == 5
    assert delayed.details["delayed_count"] == 5 and delayed.severity is Severity.ALERT


def test_shipment_events_convert_from_the_contract():
    payload = DispatchedPayload(
        shipment_id=new_id(7),
        commodity="beras",
        quantity_kg=29_000.0,
        origin_regency_code="18.05",
        destination_code="pibc",
        vehicle=Vehicle(plate="BE 1234 AB", kind="tronton", capacity_kg=30_000.0),
        planned_route=[
            PlannedCheckpoint(checkpoint_code="bakauheni_port", sequence=1, planned_at=T0 + timedelta(hours=3))
        ],
        eta=T0 + timedelta(hours=10),
    )
    event = shipment_event_from_contract(new_event(payload, occurred_at=T0, source="simulator"))
    assert event == ShipmentDispatched(
        new_id(7),
        T0,
        "beras",
        29_000.0,
        "18.05",
        "pibc",
        (PlannedStop("bakauheni_port", 1, T0 + timedelta(hours=3)),),
        T0 + timedelta(hours=10),
        None,
    )


def test_states_round_trip_through_json(lifecycle_config, cipinang):
    pipeline = Pipeline(lifecycle_config, cipinang)
    stuck = [Truck(new_id(30_000 + i), T0 + timedelta(days=1), 29_000.0) for i in range(3)]
    lot = harvest(903, 50_000.0, date(2026, 3, 1), date(2026, 3, 10))
    pipeline.run(steady_inflow(T0, 1, 3_000_000) + [t.dispatch() for t in stuck] + [lot], until=T0 + timedelta(days=2))
    states = [
        pipeline.supply,
        pipeline.routes["bakauheni_port"],
        pipeline.harvests["18.04:beras"],
        pipeline.shipments[stuck[0].shipment_id],
    ]
    for state in states:
        assert type(state).from_json(json.loads(json.dumps(state.to_json()))) == state
    assert pipeline.routes["bakauheni_port"].expected  # the stuck trucks are still expected there


# --- targets without a reported safe stock, and delays inherited from an earlier leg ---------------


def test_produce_targets_alert_only_below_their_safe_stock():
    from pantau.reference import load_reference

    targets = detect_config.supply_targets(load_reference())
    for target in targets.values():
        assert 0 < target.crisis_cover_days < target.alert_cover_days <= target.watch_cover_days, target.key
    from pantau.detect.supply import SupplyConfig, tick_supply
    from pantau.detect.timebase import WIB

    _, (condition,) = tick_supply(None, datetime(2026, 3, 2, tzinfo=WIB), targets["pisang:pikj"], SupplyConfig())
    assert condition.severity == Severity.NORMAL  # the stock estimate's start is a usual stock


def test_cover_thresholds_out_of_order_are_refused():
    from pantau.detect.supply import SupplyTarget

    with pytest.raises(ValueError, match="crisis < alert <= watch"):
        SupplyTarget("pisang", "pikj", 300_000, 900_000, 1_080_000, alert_cover_days=5.0)


def test_a_backlog_leaving_a_reopened_port_is_no_new_disruption_at_the_next_checkpoint():
    from pantau.detect.supply import (
        PlannedStop,
        RouteConfig,
        ShipmentCheckpointPassed,
        ShipmentDispatched,
        step_route,
        step_shipment,
        tick_route,
    )
    from pantau.detect.timebase import WIB

    t0 = datetime(2026, 3, 2, 8, tzinfo=WIB)
    stops = (("bakauheni_port", 1, 4.0), ("ferry_crossing", 2, 5.5), ("merak_port", 3, 8.5))
    route = tuple(PlannedStop(code, seq, t0 + timedelta(hours=h)) for code, seq, h in stops)
    eta = t0 + timedelta(hours=11)
    reopened = t0 + timedelta(hours=22)  # held 16 h at Bakauheni
    config, merak = RouteConfig(), None
    for n in range(8):
        shipment_id = f"s{n}"
        dispatched = ShipmentDispatched(shipment_id, t0, "beras", 20_000, "18.05", "pibc", route, eta)
        state, _ = step_shipment(None, dispatched)
        for code, seq, at in (("bakauheni_port", 1, t0 + timedelta(hours=4)), ("ferry_crossing", 2, reopened)):
            passed = ShipmentCheckpointPassed(
                shipment_id, at, code, seq, "beras", 20_000, "18.05", "pibc", route[seq - 1].planned_at, eta
            )
            state, status = step_shipment(state, passed)
        merak, _ = step_route(merak, status, "merak_port", config)
    _, (condition,) = tick_route(merak, reopened + timedelta(hours=2), "merak_port", config)
    assert condition.severity == Severity.NORMAL  # 13.5 h past the plan, but on time since the crossing
    _, (condition,) = tick_route(merak, reopened + timedelta(hours=6), "merak_port", config)
    assert condition.severity == Severity.ALERT  # stuck on the sailing itself: that is a disruption
