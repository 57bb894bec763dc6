"""The simulation: a discrete-event model of Lampung's harvests, the trucks that carry them through
Bakauheni-Merak to Jakarta's wholesale markets, and the prices that follow supply.

    sim = Simulation(load_reference(), seed=42, start=datetime(2026, 3, 1, tzinfo=WIB), scenarios=...)
    for item in sim.run(until=start + timedelta(days=7)):
        ...  # contract events (pantau.contracts) in occurred_at order, and GroundTruth lines

Deterministic: the same seed, start and scenarios give the same events (ids included; only
produced_at, the wall-clock time of writing, differs). Every random draw comes from a stream named
after what it decides (e.g. the trucks of one flow on one day), so a scenario changes what it
touches and nothing else.

The run begins one day before `start` (the warm-up: trucks already on the road, yesterday's prices),
so consumers see a world in motion from the first second.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from pantau.contracts import (
    WIB,
    AnyEvent,
    HarvestReported,
    PlannedCheckpoint,
    PriceObserved,
    ShipmentArrived,
    ShipmentCheckpointPassed,
    ShipmentDispatched,
    Vehicle,
    new_event,
    require_aware,
)
from pantau.reference import ReferenceData
from pantau.simulation import world as w
from pantau.simulation.scenarios import Scenario
from pantau.simulation.world import Flow, PriceSeries, TruckKind, World

SOURCE = "simulator"
WARMUP = timedelta(days=1)
# Jakarta prices rise with a demand surge by this share of the extra demand (ramped over 3 days).
DEMAND_SURGE_PRICE_PASS = 0.25
DEMAND_SURGE_RAMP_DAYS = 3.0


@dataclass(frozen=True)
class GroundTruth:
    """A ground-truth line, emitted when the simulation reaches the scenario's onset."""

    occurred_at: datetime
    line: dict[str, Any]


Emission = AnyEvent | GroundTruth


@dataclass
class _Batch:
    harvest_id: str | None  # None: stock carried over (milled rice in store), no harvest report
    remaining_kg: float
    available_from: date
    available_until: date | None


@dataclass
class _Truck:
    shipment_id: str
    flow_key: str
    commodity: str
    destination: str
    origin: str
    quantity_kg: float
    vehicle: Vehicle
    harvest_id: str | None
    dispatched_at: datetime
    planned: list[datetime]  # planned passing time of each checkpoint
    eta: datetime
    legs: list[float] = field(default_factory=list)  # actual minutes: origin->bakauheni, queue, sailing, last
    rng: random.Random | None = None


class Simulation:
    def __init__(
        self,
        reference: ReferenceData,
        *,
        seed: int,
        start: datetime,
        scenarios: Sequence[Scenario] = (),
        source: str = SOURCE,
    ) -> None:
        self.seed = seed
        self.start = require_aware(start, "start").astimezone(WIB)
        self.scenarios = tuple(scenarios)
        self.source = source
        self.world = World(reference)
        self.reference = reference
        self._queue: list[tuple[datetime, int, Callable[..., list[Emission]], tuple]] = []
        self._seq = 0
        self.now = datetime.combine(self.start.date() - WARMUP, time(0), tzinfo=WIB)
        self._flows = {flow.key: flow for flow in self.world.flows}
        self._stock = {key: flow.stock_target_kg for key, flow in self._flows.items()}
        self._in_transit = dict.fromkeys(self._flows, 0.0)
        self._regency_stock: dict[tuple[str, str], list[_Batch]] = {}
        self._shipped_today: dict[tuple[str, str, date], float] = {}
        self._harvest_actual: dict[tuple[str, date], float] = {}
        self._common_noise: dict[str, float] = {}
        self._local_noise: dict[str, float] = {}
        self._noise_day: date | None = None
        self._ferry_next_slot = self.now - timedelta(days=1)
        self._prices: dict[str, float] = {}  # last price per series, for tests and tools
        self.events_emitted = 0
        self._init_stocks()
        first_day = self.now.date()
        self._plan_arrivals(first_day)  # trucks arriving on the warm-up day left the day before
        self._schedule(self.now, self._start_day, first_day)
        for scenario in self.scenarios:
            self._schedule(max(scenario.onset, self.now), self._scenario_onset, scenario)

    # --- running ---------------------------------------------------------------------------------

    def run(self, until: datetime | None = None) -> Iterator[Emission]:
        """Events and ground-truth lines in occurred_at order, up to `until` (forever without)."""
        limit = require_aware(until, "until") if until is not None else None
        while self._queue:
            moment, _, action, args = self._queue[0]
            if limit is not None and moment > limit:
                return
            heapq.heappop(self._queue)
            self.now = moment
            for item in action(*args):
                if not isinstance(item, GroundTruth):
                    self.events_emitted += 1
                yield item

    def _schedule(self, moment: datetime, action: Callable[..., list[Emission]], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (moment, self._seq, action, args))

    def _rng(self, *parts: object) -> random.Random:
        return random.Random("|".join(str(p) for p in (self.seed, *parts)))

    @staticmethod
    def _uuid(rng: random.Random) -> str:
        """A version-4 UUID from the stream (what uuid.UUID(int=..., version=4) gives, 10x faster)."""
        bits = (rng.getrandbits(128) & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x4000 << 64) | (0x8000 << 48)
        h = f"{bits:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _event(self, payload: Any, moment: datetime, rng: random.Random, **extra: Any) -> AnyEvent:
        return new_event(payload, occurred_at=moment, source=self.source, event_id=self._uuid(rng), **extra)

    # --- state at the start ----------------------------------------------------------------------

    def _init_stocks(self) -> None:
        first = self.now.date()
        for commodity in {flow.commodity for flow in self.world.flows}:
            requirement = self.world.requirement(commodity)
            if commodity == "beras":
                days = w.RICE_MIN_STOCK_DAYS + self._seasonal_surplus_days(commodity, first)
            else:
                days = 2.0
            for regency, share in self.world.producers(commodity):
                if regency != w.TRADE_HUB_REGENCY:  # the hub trades what others grow: never short
                    self._regency_stock[(regency, commodity)] = [_Batch(None, share * requirement * days, first, None)]
            if self.world.harvested(commodity):
                normal = requirement * w.HARVEST_COVER[commodity]
                for back in range(1, max(w.SUPPLY_WINDOW_DAYS.values()) + 1):
                    day = first - timedelta(days=back)
                    self._harvest_actual[(commodity, day)] = normal * self.world.season_weight(commodity, day)

    def _seasonal_surplus_days(self, commodity: str, day: date) -> float:
        """Days of requirement that the harvests since 1 March have put into store by `day`."""
        march = date(day.year if day.month >= 3 else day.year - 1, 3, 1)
        cover = w.HARVEST_COVER[commodity]
        total, current = 0.0, march
        while current < day:
            total += self.world.season_weight(commodity, current) * cover - 1.0
            current += timedelta(days=1)
        return max(total, 0.0)

    # --- the daily cycle -------------------------------------------------------------------------

    def _start_day(self, day: date) -> list[Emission]:
        midnight = datetime.combine(day, time(0), tzinfo=WIB)
        self._advance_noise(day)
        for key, flow in self._flows.items():
            outflow = flow.requirement_kg * self._demand_factor(flow, day)
            if flow.commodity not in w.STORABLE:  # a produce surplus moves on to other markets in days
                outflow += w.PRODUCE_SURPLUS_OUTFLOW * max(self._stock[key] - flow.stock_target_kg, 0.0)
            self._stock[key] -= outflow
        cutoff = day - timedelta(days=3)
        self._shipped_today = {k: v for k, v in self._shipped_today.items() if k[2] >= cutoff}
        rng = self._rng("day", day)
        for commodity in sorted({flow.commodity for flow in self.world.flows}):
            if not self.world.harvested(commodity):
                continue
            for regency, share in self.world.producers(commodity):
                moment = midnight + timedelta(hours=16, minutes=rng.randrange(0, 120))
                self._schedule(moment, self._report_harvest, regency, commodity, share, day)
        for series in self.world.price_series:
            hour = w.OBSERVATION_HOUR[series.market.kind]
            moment = midnight + timedelta(hours=hour, minutes=rng.randrange(0, 30))
            self._schedule(moment, self._observe_price, series, day)
        self._plan_arrivals(day + timedelta(days=1))
        self._schedule(midnight + timedelta(days=1), self._start_day, day + timedelta(days=1))
        return []

    def _scenario_onset(self, scenario: Scenario) -> list[Emission]:
        if scenario.kind == "price_jump":
            # The jump is reported when it happens, not only at the next daily survey.
            for series in self.world.price_series:
                if series.commodity == scenario.commodity and series.market.code == scenario.market:
                    self._schedule(self.now + timedelta(minutes=1), self._observe_price, series, self.now.date())
        return [GroundTruth(self.now, line) for line in scenario.ground_truth(self.seed)]

    def _active(self, kind: str, moment: datetime) -> list[Scenario]:
        return [s for s in self.scenarios if s.kind == kind and s.active(moment)]

    def _active_on(self, kind: str, day: date) -> list[Scenario]:
        noon = datetime.combine(day, time(12), tzinfo=WIB)
        return self._active(kind, noon)

    # --- harvests --------------------------------------------------------------------------------

    def _report_harvest(self, regency: str, commodity: str, share: float, day: date) -> list[Emission]:
        rng = self._rng("harvest", regency, commodity, day)
        normal = self.world.requirement(commodity) * w.HARVEST_COVER[commodity] * share
        quantity = normal * self.world.season_weight(commodity, day) * rng.uniform(0.85, 1.15)
        for failure in self._active("harvest_failure", self.now):
            if failure.regency == regency and failure.commodity == commodity:
                quantity *= 1.0 - failure.change
        quantity = round(quantity / 100.0) * 100.0
        self._harvest_actual[(commodity, day)] = self._harvest_actual.get((commodity, day), 0.0) + quantity
        if quantity < 1000.0:
            return []  # nothing worth reporting (a failed harvest)
        harvest_id = self._uuid(rng)
        ready, until = w.AVAILABILITY_DAYS.get(commodity, w.DEFAULT_AVAILABILITY_DAYS)
        available_from, available_until = day + timedelta(days=ready), day + timedelta(days=until)
        self._regency_stock.setdefault((regency, commodity), []).append(
            _Batch(harvest_id, quantity, available_from, available_until)
        )
        payload = HarvestReported(
            harvest_id=harvest_id,
            regency_code=regency,
            commodity=commodity,
            quality_grade="medium" if commodity == "beras" else None,
            quantity_kg=quantity,
            harvested_on=day,
            expected_available_from=available_from,
            expected_available_until=available_until,
        )
        return [self._event(payload, self.now, rng)]

    def _draw(self, regency: str, commodity: str, quantity: float, day: date) -> tuple[str | None, float, date | None]:
        """Load up to `quantity` kg from one lot of the regency's stock available on `day` (the oldest
        harvest first, stored stock last): a truck carries one harvest, so shipments account for it.
        Also gives the lot's last day, by which the truck must leave (None: stored stock, no limit)."""
        batches = self._regency_stock.get((regency, commodity))
        if batches is None:  # the trade hub: consolidated from outside Lampung, never short
            return None, quantity, None
        carried = 0.0
        for batch in batches:
            if batch.available_until is not None and batch.available_until < day:
                if commodity in w.STORABLE:  # milled rice keeps in store
                    carried += batch.remaining_kg
                batch.remaining_kg = 0.0
        batches[:] = [b for b in batches if b.remaining_kg > 0.0]
        if carried:
            store = next((b for b in batches if b.harvest_id is None), None)
            if store is None:
                batches.insert(0, _Batch(None, carried, day, None))
            else:
                store.remaining_kg += carried
        ordered = sorted(
            (b for b in batches if b.available_from <= day),
            key=lambda b: (b.harvest_id is None, b.available_from),
        )
        for batch in ordered:
            if batch.remaining_kg >= min(quantity, w.MIN_CLEARANCE_KG):
                part = min(batch.remaining_kg, quantity)
                batch.remaining_kg -= part
                if batch.remaining_kg <= 0.0:
                    batches.remove(batch)
                return batch.harvest_id, part, batch.available_until
        return None, 0.0, None

    def _available(self, regency: str, commodity: str, day: date) -> float:
        batches = self._regency_stock.get((regency, commodity))
        if batches is None:
            return math.inf
        return sum(
            b.remaining_kg
            for b in batches
            if b.available_from <= day
            and (b.available_until is None or b.available_until >= day or commodity == "beras")
        )

    # --- shipments -------------------------------------------------------------------------------

    def _demand_factor(self, flow: Flow, day: date) -> float:
        factor = self.world.jakarta_demand_factor(day)
        for surge in self._active_on("demand_surge", day):
            if surge.commodity == flow.commodity and surge.destination == flow.destination:
                factor *= 1.0 + surge.change
        return factor

    def _plan_arrivals(self, day: date) -> None:
        """Dispatch the trucks that should reach each Jakarta destination on `day`."""
        for flow in self.world.flows:
            target = (
                flow.requirement_kg * w.INFLOW_WEEKDAY_FACTOR[day.weekday()] * self._demand_factor(flow, day)
                + (flow.stock_target_kg - self._stock[flow.key] - self._in_transit[flow.key]) / w.RESTORE_DAYS
            )
            target = min(max(target, 0.3 * flow.requirement_kg), 1.8 * flow.requirement_kg)
            self._plan_flow(flow, day, target, self._rng("trucks", flow.key, day))
        if day.weekday() == w.WAREHOUSE_DELIVERY_WEEKDAY:
            for destination, commodity in self.world.warehouse_destinations:
                producers = self.world.producers(commodity)
                flow = Flow(commodity, destination, 0.0, 0.0, producers)
                self._plan_flow(flow, day, w.WAREHOUSE_DELIVERY_KG, self._rng("warehouse", destination, day))

    def _plan_flow(self, flow: Flow, day: date, target_kg: float, rng: random.Random) -> None:
        fleet = w.FLEETS.get(flow.commodity, w.PRODUCE_FLEET)
        smallest = min(kind.min_load_kg for kind in fleet)
        dispatch_day = day - timedelta(days=1)
        requirement = self.world.requirement(flow.commodity) or target_kg
        remaining, exhausted = target_kg, set()
        while remaining >= smallest:
            kind = rng.choices(fleet, weights=[k.weight for k in fleet])[0]
            load = round(min(rng.uniform(kind.min_load_kg, kind.capacity_kg), max(remaining, kind.min_load_kg)), -2)
            picked = self._pick_origin(flow, dispatch_day, kind.min_load_kg, requirement, rng, exhausted)
            if picked is None:
                break  # Lampung cannot supply more today: a real shortfall
            origin, room = picked
            harvest_id, taken, ship_by = self._draw(origin, flow.commodity, min(load, room), dispatch_day)
            if taken <= 0.0:
                exhausted.add(origin)  # only remnants left there
                continue
            key = (origin, flow.commodity, dispatch_day)
            self._shipped_today[key] = self._shipped_today.get(key, 0.0) + taken
            remaining -= taken
            self._create_truck(flow, origin, taken, kind, harvest_id, day, rng, ship_by)
        if flow.commodity not in w.STORABLE:
            self._clear_expiring(flow, day, fleet, rng)

    def _clear_expiring(self, flow: Flow, day: date, fleet: tuple[TruckKind, ...], rng: random.Random) -> None:
        """Produce on its last day goes to Jakarta anyway: traders sell off a surplus rather than let
        it rot, so a harvest reported for the Jakarta trade ships within its window."""
        dispatch_day = day - timedelta(days=1)
        for regency, _ in flow.origins:
            for batch in self._regency_stock.get((regency, flow.commodity), []):
                if batch.harvest_id is None or batch.available_until != dispatch_day:
                    continue
                while batch.remaining_kg >= w.MIN_CLEARANCE_KG:
                    kind = rng.choices(fleet, weights=[k.weight for k in fleet])[0]
                    load = round(min(rng.uniform(kind.min_load_kg, kind.capacity_kg), batch.remaining_kg), -2)
                    load = min(max(load, w.MIN_CLEARANCE_KG), batch.remaining_kg)
                    batch.remaining_kg -= load
                    self._create_truck(flow, regency, load, kind, batch.harvest_id, day, rng, batch.available_until)

    def _pick_origin(
        self, flow: Flow, day: date, min_load: float, requirement: float, rng: random.Random, exhausted: set[str]
    ) -> tuple[str, float] | None:
        """A regency that can load at least `min_load` today (weighted by its share), and how much."""
        candidates, weights, rooms = [], [], []
        for regency, share in flow.origins:
            if regency in exhausted:
                continue
            # Mills and trucks: a multiple of the regency's share, and at least one full truck a day.
            capacity = max(share * requirement * w.REGENCY_CAPACITY_FACTOR, w.MAX_TRUCK_KG)
            room = min(
                capacity - self._shipped_today.get((regency, flow.commodity, day), 0.0),
                self._available(regency, flow.commodity, day),
            )
            if room >= min_load:
                candidates.append(regency)
                weights.append(share)
                rooms.append(room)
        if not candidates:
            return None
        index = rng.choices(range(len(candidates)), weights=weights)[0]
        return candidates[index], rooms[index]

    def _create_truck(
        self, flow: Flow, origin: str, quantity: float, kind: TruckKind, harvest_id: str | None, day: date,
        rng: random.Random, ship_by: date | None = None,
    ) -> None:  # fmt: skip
        """A truck arriving on `day`; one with a harvest lot leaves by the end of the lot's last day
        (`ship_by`). Trucks are planned the day before `day`, but one arriving late in the day leaves
        on `day` itself, after a lot that ended the day before: it arrives in the small hours instead."""
        road = self.world.road_minutes(origin)
        normal = [road, *(leg.normal_minutes for leg in self.world.legs_after_origin)]
        hours = range(24)
        if ship_by is not None:
            latest_arrival = datetime.combine(ship_by + timedelta(days=1), time(0), tzinfo=WIB) + timedelta(
                minutes=sum(normal)
            )
            midnight = datetime.combine(day, time(0), tzinfo=WIB)
            hours = range(min(max(int((latest_arrival - midnight).total_seconds() // 3600), 0), 24))
            if not hours:
                raise ValueError(f"a truck arriving on {day} cannot carry a lot that had to leave by {ship_by}")
        hour = rng.choices(hours, weights=w.ARRIVAL_HOUR_WEIGHTS[: len(hours)])[0]
        planned_arrival = datetime.combine(day, time(hour), tzinfo=WIB) + timedelta(minutes=rng.randrange(60))
        dispatched_at = planned_arrival - timedelta(minutes=sum(normal))
        planned, elapsed = [], 0.0
        for minutes in normal[:-1]:
            elapsed += minutes
            planned.append(dispatched_at + timedelta(minutes=elapsed))
        legs = [road * rng.uniform(*w.ROAD_FACTOR_RANGE)]
        legs += [
            rng.triangular(leg.min_minutes, leg.max_minutes, leg.normal_minutes) for leg in self.world.legs_after_origin
        ]
        plate = f"BE {rng.randint(1000, 9999)} {''.join(rng.choices('ABCDEFGHJKLMNPRSTUVWXYZ', k=2))}"
        truck = _Truck(
            shipment_id=self._uuid(rng),
            flow_key=flow.key,
            commodity=flow.commodity,
            destination=flow.destination,
            origin=origin,
            quantity_kg=quantity,
            vehicle=Vehicle(plate=plate, kind=kind.kind, capacity_kg=kind.capacity_kg),
            harvest_id=harvest_id,
            dispatched_at=dispatched_at,
            planned=planned,
            eta=planned_arrival,
            legs=legs,
            rng=self._rng("truck", flow.key, day, rng.random()),
        )
        if flow.key in self._in_transit:
            self._in_transit[flow.key] += quantity
        self._schedule(dispatched_at, self._dispatch, truck)

    def _dispatch(self, truck: _Truck) -> list[Emission]:
        route = [
            PlannedCheckpoint(checkpoint_code=code, sequence=i + 1, planned_at=at)
            for i, (code, at) in enumerate(zip(self.world.checkpoint_codes, truck.planned, strict=True))
        ]
        payload = ShipmentDispatched(
            shipment_id=truck.shipment_id,
            commodity=truck.commodity,
            quantity_kg=truck.quantity_kg,
            origin_regency_code=truck.origin,
            destination_code=truck.destination,
            vehicle=truck.vehicle,
            harvest_id=truck.harvest_id,
            planned_route=route,
            eta=truck.eta,
        )
        self._schedule(self.now + timedelta(minutes=truck.legs[0]), self._pass_checkpoint, truck, 0)
        return [self._event(payload, self.now, truck.rng)]

    def _ferry_departure(self, ready: datetime) -> datetime:
        """When a truck ready to board at `ready` leaves Bakauheni: after any closure, in queue order."""
        departure = ready
        for closure in self.scenarios:
            if closure.kind == "ferry_closure" and closure.onset <= departure < closure.end:
                departure = closure.end
        if departure < self._ferry_next_slot:
            departure = self._ferry_next_slot  # the backlog of a closure is still boarding
        if departure != ready:
            self._ferry_next_slot = departure + timedelta(hours=1.0 / w.FERRY_BACKLOG_TRUCKS_PER_HOUR)
        return departure

    def _pass_checkpoint(self, truck: _Truck, index: int) -> list[Emission]:
        legs = self.world.legs_after_origin
        if index == 0:  # entering Bakauheni port: queue, then the ferry (closures hold it here)
            departure = self._ferry_departure(self.now + timedelta(minutes=truck.legs[1]))
            eta = departure + timedelta(minutes=legs[1].normal_minutes + legs[2].normal_minutes)
            next_at = departure
        else:
            remaining = sum(leg.normal_minutes for leg in legs[index:])
            eta = self.now + timedelta(minutes=remaining)
            next_at = self.now + timedelta(minutes=truck.legs[index + 1])
        truck.eta = max(eta, self.now)
        payload = ShipmentCheckpointPassed(
            shipment_id=truck.shipment_id,
            checkpoint_code=self.world.checkpoint_codes[index],
            sequence=index + 1,
            commodity=truck.commodity,
            quantity_kg=truck.quantity_kg,
            destination_code=truck.destination,
            origin_regency_code=truck.origin,
            planned_at=truck.planned[index],
            eta=truck.eta,
        )
        if index + 1 < len(self.world.checkpoint_codes):
            self._schedule(next_at, self._pass_checkpoint, truck, index + 1)
        else:
            self._schedule(next_at, self._arrive, truck)
        return [self._event(payload, self.now, truck.rng)]

    def _arrive(self, truck: _Truck) -> list[Emission]:
        if truck.flow_key in self._stock:
            self._stock[truck.flow_key] += truck.quantity_kg
            self._in_transit[truck.flow_key] -= truck.quantity_kg
        payload = ShipmentArrived(
            shipment_id=truck.shipment_id,
            destination_code=truck.destination,
            commodity=truck.commodity,
            quantity_kg=truck.quantity_kg,
            origin_regency_code=truck.origin,
            dispatched_at=truck.dispatched_at,
            transit_minutes=round((self.now - truck.dispatched_at).total_seconds() / 60.0, 1),
        )
        return [self._event(payload, self.now, truck.rng)]

    # --- prices ----------------------------------------------------------------------------------

    def _advance_noise(self, day: date) -> None:
        if self._noise_day is not None and day <= self._noise_day:
            return
        rng = self._rng("noise", day)
        first = self._noise_day is None
        for commodity in sorted({s.commodity for s in self.world.price_series}):
            total_sd = self._noise_sd(commodity)
            common_sd = total_sd * math.sqrt(1.0 - w.LOCAL_NOISE_SHARE)
            phi = w.NOISE_PERSISTENCE
            if first:
                self._common_noise[commodity] = rng.gauss(0.0, common_sd)
            else:
                step = common_sd * math.sqrt(1.0 - phi * phi)
                self._common_noise[commodity] = phi * self._common_noise[commodity] + rng.gauss(0.0, step)
        for series in self.world.price_series:
            local_sd = self._noise_sd(series.commodity) * math.sqrt(w.LOCAL_NOISE_SHARE)
            phi = w.LOCAL_NOISE_PERSISTENCE
            if first:
                self._local_noise[series.key] = rng.gauss(0.0, local_sd)
            else:
                step = local_sd * math.sqrt(1.0 - phi * phi)
                self._local_noise[series.key] = phi * self._local_noise[series.key] + rng.gauss(0.0, step)
        self._noise_day = day

    def _noise_sd(self, commodity: str) -> float:
        """Stationary sd of the log-price noise whose 7-day change has the commodity's p95."""
        p95 = self.reference.commodity(commodity).price_change_7d.p95_pct / 100.0 * w.NOISE_SHARE_OF_P95
        phi = w.NOISE_PERSISTENCE
        return p95 / (1.96 * math.sqrt(2.0 * (1.0 - phi**7)))

    def _lampung_supply_factor(self, commodity: str, day: date) -> float:
        """Price factor from the recent harvest against that of the months the base prices come from."""
        elasticity = w.LAMPUNG_SUPPLY_ELASTICITY.get(commodity)
        if elasticity is None or not self.world.harvested(commodity):
            return 1.0
        window = w.SUPPLY_WINDOW_DAYS[commodity]
        normal = (
            self.world.requirement(commodity) * w.HARVEST_COVER[commodity] * window
            * self.world.calibration_weight(commodity)
        )  # fmt: skip
        recent = sum(self._harvest_actual.get((commodity, day - timedelta(days=k)), 0.0) for k in range(1, window + 1))
        return _clip(max(recent / normal, 0.05) ** -elasticity, *w.SUPPLY_FACTOR_RANGE)

    def _jakarta_factor(self, commodity: str, day: date) -> float:
        factor = 1.0
        flows = [flow for flow in self.world.flows if flow.commodity == commodity]
        for flow in flows[:1]:
            elasticity = w.JAKARTA_STOCK_ELASTICITY.get(commodity, w.DEFAULT_STOCK_ELASTICITY)
            # The stock is counted after the day's demand left it, so normal is target - requirement.
            normal = flow.stock_target_kg - flow.requirement_kg
            cover = max(self._stock[flow.key], 0.05 * normal)
            factor = _clip((cover / normal) ** -elasticity, *w.SUPPLY_FACTOR_RANGE)
        for surge in self._active("demand_surge", self.now):
            if surge.commodity == commodity:
                ramp = min((self.now - surge.onset).total_seconds() / 86400.0 / DEMAND_SURGE_RAMP_DAYS, 1.0)
                factor *= 1.0 + DEMAND_SURGE_PRICE_PASS * surge.change * ramp
        return factor

    def price_of(self, series: PriceSeries, moment: datetime) -> float:
        """The price the series shows at `moment` (IDR per unit, rounded like PIHPS)."""
        day = moment.date()
        factor = self._lampung_supply_factor(series.commodity, day)
        if series.side == "jakarta":
            factor *= self._jakarta_factor(series.commodity, day)
        factor *= 1.0 + self.world.holiday_uplift(series.commodity, day)
        if series.price_level == "retail" and day.weekday() >= 5:
            factor *= w.WEEKEND_RETAIL_FACTOR
        factor *= math.exp(self._common_noise.get(series.commodity, 0.0) + self._local_noise.get(series.key, 0.0))
        for jump in self._active("price_jump", moment):
            if jump.commodity == series.commodity and jump.market == series.market.code:
                factor *= 1.0 + jump.change
        for glitch in self._active("data_glitch", moment):
            if glitch.commodity == series.commodity and glitch.market == series.market.code:
                factor *= 1.0 + glitch.change
        return max(
            round(series.base_price * factor / w.PRICE_ROUNDING_IDR) * w.PRICE_ROUNDING_IDR, w.PRICE_ROUNDING_IDR
        )

    def _observe_price(self, series: PriceSeries, day: date) -> list[Emission]:
        self._advance_noise(day)
        price = float(self.price_of(series, self.now))
        self._prices[series.key] = price
        per_kg, per_litre = (price, None) if series.unit == "kg" else (None, price)
        payload = PriceObserved(
            commodity=series.commodity,
            quality_grade=series.quality_grade,
            market_code=series.market.code,
            province_code=series.market.province_code,
            price_level=series.price_level,
            unit=series.unit,
            price_idr_per_kg=per_kg,
            price_idr_per_litre=per_litre,
        )
        rng = self._rng("price", series.key, self.now.isoformat())
        return [self._event(payload, self.now, rng)]

    # --- for tests and tools ---------------------------------------------------------------------

    def destination_stock_kg(self, commodity: str, destination: str) -> float:
        return self._stock[f"{commodity}:{destination}"]


def _clip(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value
