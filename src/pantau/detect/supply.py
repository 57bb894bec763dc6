"""Supply detection: shipments, stock at Jakarta destinations, route checkpoints and harvests.

Four small states, each with the key it is sharded by, so the processor can partition them:

- ShipmentState, key shipment_id (the pangan.shipment.v1 key): shipment events.
- SupplyState, key `{commodity}:{destination}` (ShipmentStatus.destination_key): statuses + ticks.
- RouteState, key `{checkpoint}` (each of ShipmentStatus.checkpoint_keys): statuses + ticks.
- HarvestState, key `{regency_code}:{commodity}` (the pangan.harvest.v1 key; ShipmentStatus.origin_key):
  HarvestReported + statuses + ticks.

`step_shipment` turns each shipment event into a ShipmentStatus snapshot (or nothing for a duplicate
or stale event); the processor forwards that snapshot (a JSON record, `to_json()`) to the destination,
checkpoint and origin aggregates by the keys it names. The aggregates emit one Condition per step and
per tick; `tick_*` lets time alone move them (stock runs down, shipments pass their ETA) from a timer.
All times are event times; a tick's `now` should be the stream's event-time watermark.

Conditions:
- supply_gap (SupplyState): stock estimate (stock += arrivals - daily requirement x elapsed time) plus
  the in-transit shipments expected within the horizon, as days of cover and as a share of the
  requirement, and the shipments held up on the way (behind schedule) as a share of the requirement
  (a cut crossing: an alert even with stock in store); evidence lists the shipments behind schedule
  and their origin regencies. A produce market (Kramat Jati) sells as it comes: its stock estimate is
  its arrivals of the last few days (exponentially weighted), and its arrivals of the last day or two
  against its usual inflow (learned from arrivals) are a signal of their own. Over Lebaran (mudik) a
  demand calendar lowers the requirement and the inflow expected, so an emptied city is no gap.
- route_disruption (RouteState): shipments past their due time at the checkpoint (the planned time,
  or their last passage plus the leg's planned time: a delay from an earlier leg is not this one's)
  plus a grace; many at once raise it with their count and volume; it resolves when they move again.
- harvest_unshipped (HarvestState): harvested quantity not shipped by the end of its availability
  window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple

from pantau.detect.conditions import AlertType, Condition, Invalid, Place, PlaceKind, Rejected, Severity, Signal
from pantau.detect.timebase import WIB, NaiveTimeError, drop_older, from_ts, timestamp, wib_day_of_ts

_SEVERITIES = (Severity.NORMAL, Severity.WATCH, Severity.ALERT, Severity.CRISIS)
_EVIDENCE_ITEMS = 10  # shipments listed in a condition's details, largest first


def _iso(ts: float | None) -> str | None:
    return from_ts(ts).astimezone(WIB).isoformat() if ts is not None else None


# --- shipment events and the per-shipment state --------------------------------------------------
# Events and snapshots are named tuples: immutable, and built for every shipment event at a fraction
# of a frozen dataclass's cost.


class PlannedStop(NamedTuple):
    checkpoint: str
    sequence: int
    planned_at: datetime


class ShipmentDispatched(NamedTuple):
    shipment_id: str
    occurred_at: datetime
    commodity: str
    quantity_kg: float
    origin_regency: str
    destination: str
    planned_route: tuple[PlannedStop, ...]
    eta: datetime
    harvest_id: str | None = None


class ShipmentCheckpointPassed(NamedTuple):
    shipment_id: str
    occurred_at: datetime
    checkpoint: str
    sequence: int
    commodity: str
    quantity_kg: float
    origin_regency: str
    destination: str
    planned_at: datetime
    eta: datetime


class ShipmentArrived(NamedTuple):
    shipment_id: str
    occurred_at: datetime
    commodity: str
    quantity_kg: float
    origin_regency: str
    destination: str
    dispatched_at: datetime


ShipmentEvent = ShipmentDispatched | ShipmentCheckpointPassed | ShipmentArrived


def shipment_event_from_contract(event: Any) -> ShipmentEvent:
    """From a `pantau.contracts.models` Shipment*Event envelope (occurred_at + payload)."""
    p, at = event.payload, event.occurred_at
    if event.event_type == "ShipmentDispatched":
        route = tuple(PlannedStop(s.checkpoint_code, s.sequence, s.planned_at) for s in p.planned_route)
        return ShipmentDispatched(
            p.shipment_id,
            at,
            p.commodity,
            p.quantity_kg,
            p.origin_regency_code,
            p.destination_code,
            route,
            p.eta,
            p.harvest_id,
        )
    if event.event_type == "ShipmentCheckpointPassed":
        return ShipmentCheckpointPassed(
            p.shipment_id,
            at,
            p.checkpoint_code,
            p.sequence,
            p.commodity,
            p.quantity_kg,
            p.origin_regency_code,
            p.destination_code,
            p.planned_at,
            p.eta,
        )
    if event.event_type == "ShipmentArrived":
        return ShipmentArrived(
            p.shipment_id, at, p.commodity, p.quantity_kg, p.origin_regency_code, p.destination_code, p.dispatched_at
        )
    raise ValueError(f"{event.event_type} is not a shipment event")


class ShipmentStatus(NamedTuple):
    """Where one shipment stands after an event: what the aggregates need, nothing more. Times are
    seconds since the epoch (the aggregates' states keep them so).

    Travels through the processor's repartition topic as `to_json()`, a JSON array in field order (to
    two to four aggregates: epoch seconds spare a datetime conversion at every step). `version` grows
    with every change, so an aggregate can drop a duplicate or an older snapshot.
    """

    shipment_id: str
    version: int
    occurred_ts: float
    commodity: str
    quantity_kg: float
    origin_regency: str
    destination: str
    harvest_id: str | None
    dispatched_ts: float | None
    eta_ts: float | None
    arrived_ts: float | None
    last_checkpoint: str | None
    last_checkpoint_ts: float | None
    next_checkpoint: str | None
    next_checkpoint_planned_ts: float | None
    previous_next_checkpoint: str | None  # the checkpoint aggregate that must drop this shipment
    # When the shipment is due at its next checkpoint given where it is: the planned time, or, when it
    # is already late, its last passage (or dispatch) plus the planned time of the leg. A delay picked
    # up earlier is not the next leg's: a backlog leaving a reopened port is not a new disruption.
    next_checkpoint_due_ts: float | None = None
    next_leg_minutes: float | None = None  # planned duration of the leg to the next checkpoint

    @property
    def destination_key(self) -> str:
        return f"{self.commodity}:{self.destination}"

    @property
    def origin_key(self) -> str:
        return f"{self.origin_regency}:{self.commodity}"

    @property
    def checkpoint_keys(self) -> tuple[str, ...]:
        before, after = self.previous_next_checkpoint, self.next_checkpoint
        if before is None or before == after:
            return () if after is None else (after,)
        return (before,) if after is None else (before, after)

    def to_json(self) -> list[Any]:
        return [STATUS_VERSION, *self]

    @classmethod
    def from_json(cls, data: list[Any] | Mapping[str, Any]) -> ShipmentStatus:
        if isinstance(data, list) and data and data[0] == STATUS_VERSION:
            if len(data) != len(cls._fields) + 1:
                raise ValueError(f"a ShipmentStatus has {len(cls._fields)} fields, got {len(data) - 1}")
            return cls._make(data[1:])
        if isinstance(data, Mapping) and data.get("v") == 1:
            return cls._from_v1(data)
        shown = data[0] if isinstance(data, list) and data else data.get("v") if isinstance(data, Mapping) else data
        raise ValueError(f"unknown ShipmentStatus version {shown!r}; expected {STATUS_VERSION} (or 1)")

    @classmethod
    def _from_v1(cls, data: Mapping[str, Any]) -> ShipmentStatus:
        """Version 1 (a dict with ISO 8601 times), still in a repartition topic after an upgrade."""
        values = {}
        for name in cls._fields:
            v1_name = _V1_TIMES.get(name, name)
            value = data.get(v1_name) if name in _V1_OPTIONAL else data[v1_name]
            if name in _V1_TIMES and value is not None:
                value = timestamp(datetime.fromisoformat(value))
            values[name] = value
        return cls(**values)


STATUS_VERSION = 2
_V1_TIMES = {
    "occurred_ts": "occurred_at",
    "dispatched_ts": "dispatched_at",
    "eta_ts": "eta",
    "arrived_ts": "arrived_at",
    "last_checkpoint_ts": "last_checkpoint_at",
    "next_checkpoint_planned_ts": "next_checkpoint_planned_at",
    "next_checkpoint_due_ts": "next_checkpoint_due_at",
}
_V1_OPTIONAL = frozenset({"next_checkpoint_due_ts", "next_leg_minutes"})  # absent in older records


@dataclass(slots=True)
class ShipmentState:
    """One shipment (key shipment_id). Bounded by its planned route (<= 50 stops)."""

    shipment_id: str = ""
    version: int = 0
    commodity: str = ""
    quantity_kg: float = 0.0
    origin_regency: str = ""
    destination: str = ""
    harvest_id: str | None = None
    route: list[list[Any]] = field(default_factory=list)  # [checkpoint, sequence, planned ts] in travel order
    dispatched_ts: float | None = None
    eta_ts: float | None = None
    passed_sequence: int = 0
    last_checkpoint: str | None = None
    last_checkpoint_ts: float | None = None
    arrived_ts: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"v": 1, **{name: getattr(self, name) for name in self.__slots__}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ShipmentState:
        if data.get("v") != 1:
            raise ValueError(f"unknown ShipmentState version {data.get('v')!r}; expected 1")
        return cls(**{name: data[name] for name in cls.__slots__})

    def copy(self) -> ShipmentState:  # spelled out: one per shipment event (a test checks every field)
        return ShipmentState(
            self.shipment_id,
            self.version,
            self.commodity,
            self.quantity_kg,
            self.origin_regency,
            self.destination,
            self.harvest_id,
            [list(stop) for stop in self.route],
            self.dispatched_ts,
            self.eta_ts,
            self.passed_sequence,
            self.last_checkpoint,
            self.last_checkpoint_ts,
            self.arrived_ts,
        )

    def next_stop(self) -> list[Any] | None:
        for stop in self.route:
            if stop[1] > self.passed_sequence:
                return stop
        return None

    def next_leg(self) -> tuple[float, float] | None:
        """(due ts, planned leg seconds) of the next stop: see ShipmentStatus.next_checkpoint_due_at."""
        stop = self.next_stop()
        if stop is None or self.dispatched_ts is None:
            return None
        previous_planned, started = self.dispatched_ts, self.dispatched_ts
        for other in self.route:
            if other[1] == self.passed_sequence:
                previous_planned = other[2]
        if self.last_checkpoint_ts is not None and self.passed_sequence:
            started = self.last_checkpoint_ts
        leg = max(stop[2] - previous_planned, 0.0)
        return max(stop[2], started + leg), leg


def step_shipment(
    state: ShipmentState | None, event: ShipmentEvent
) -> tuple[ShipmentState, ShipmentStatus | None | Rejected]:
    """Apply one shipment event. None: a duplicate or an event the shipment is already past."""
    try:
        at = timestamp(event.occurred_at)
    except NaiveTimeError as exc:
        return state or ShipmentState(), Invalid(str(exc))
    if not event.quantity_kg > 0:
        return state or ShipmentState(), Invalid(f"quantity_kg must be positive, got {event.quantity_kg!r}")
    new = state.copy() if state is not None else ShipmentState(shipment_id=event.shipment_id)
    if new.shipment_id != event.shipment_id:
        raise ValueError(f"event for shipment {event.shipment_id} given to the state of {new.shipment_id}")
    before_next = new.next_stop()
    previous_next = before_next[0] if before_next and new.arrived_ts is None else None
    new.commodity, new.quantity_kg = event.commodity, event.quantity_kg
    new.origin_regency, new.destination = event.origin_regency, event.destination

    if isinstance(event, ShipmentDispatched):
        if new.dispatched_ts is not None:
            return state or new, None  # duplicate dispatch
        new.dispatched_ts, new.eta_ts, new.harvest_id = at, timestamp(event.eta), event.harvest_id
        new.route = [[s.checkpoint, s.sequence, timestamp(s.planned_at)] for s in event.planned_route]
        new.route.sort(key=lambda stop: stop[1])
    elif isinstance(event, ShipmentCheckpointPassed):
        if new.arrived_ts is not None or event.sequence <= new.passed_sequence:
            return state or new, None  # late or duplicate: the shipment is already past this checkpoint
        new.passed_sequence, new.last_checkpoint, new.last_checkpoint_ts = event.sequence, event.checkpoint, at
        new.eta_ts = timestamp(event.eta)
    else:
        if new.arrived_ts is not None:
            return state or new, None  # duplicate arrival
        new.arrived_ts = at
        if new.dispatched_ts is None:
            new.dispatched_ts = timestamp(event.dispatched_at)

    new.version += 1
    stop = new.next_stop() if new.arrived_ts is None else None
    leg = new.next_leg() if stop else None
    status = ShipmentStatus(
        shipment_id=new.shipment_id,
        version=new.version,
        occurred_ts=at,
        commodity=new.commodity,
        quantity_kg=new.quantity_kg,
        origin_regency=new.origin_regency,
        destination=new.destination,
        harvest_id=new.harvest_id,
        dispatched_ts=new.dispatched_ts,
        eta_ts=new.eta_ts,
        arrived_ts=new.arrived_ts,
        last_checkpoint=new.last_checkpoint,
        last_checkpoint_ts=new.last_checkpoint_ts,
        next_checkpoint=stop[0] if stop else None,
        next_checkpoint_planned_ts=stop[2] if stop else None,
        previous_next_checkpoint=previous_next,
        next_checkpoint_due_ts=leg[0] if leg else None,
        next_leg_minutes=leg[1] / 60.0 if leg else None,
    )
    return new, status


# --- destination stock: supply_gap ---------------------------------------------------------------


ALERT_COVER_DAYS = 5.0  # default cover thresholds (Cipinang's rice: safe stock is 8-10 days)
CRISIS_COVER_DAYS = 2.0


@dataclass(frozen=True, slots=True)
class SupplyTarget:
    """What a destination needs of one commodity (contracts/reference/markets.v1.json supply)."""

    commodity: str
    destination: str
    daily_requirement_kg: float
    safe_stock_kg: float  # the lower end of the safe-stock range
    initial_stock_kg: float  # the stock estimate's starting point until a stock report exists
    # A produce market sells fresh produce as it comes (what does not sell spoils or is sold on): its
    # stock is its arrivals of about the last `turnover_days` (exponentially weighted with that time
    # constant), not a running balance against the requirement, which is only an assumption: a balance
    # drifts with any error in it, piles up weeks of imagined cover or never refills after a lean week.
    # Its arrivals of the last days against its usual inflow are a signal of their own.
    # None: a stocking market (Cipinang's rice): a running balance whose stock absorbs lean days.
    turnover_days: float | None = None
    # Look-ahead for expected arrivals: about the shortest Lampung -> Jakarta trip, so every arrival in
    # it has already been dispatched (and is known) when it is judged.
    horizon_hours: float = 8.0
    alert_cover_days: float = ALERT_COVER_DAYS
    crisis_cover_days: float = CRISIS_COVER_DAYS

    def __post_init__(self) -> None:
        if not 0 < self.crisis_cover_days < self.alert_cover_days <= self.watch_cover_days:
            raise ValueError(
                f"supply target {self.key}: cover thresholds must rise crisis < alert <= watch (safe stock), got "
                f"{self.crisis_cover_days:g} < {self.alert_cover_days:g} <= {self.watch_cover_days:g} days"
            )

    @property
    def key(self) -> str:
        return f"{self.commodity}:{self.destination}"

    @property
    def watch_cover_days(self) -> float:
        return self.safe_stock_kg / self.daily_requirement_kg


@dataclass(frozen=True)
class SupplyConfig:
    # Shipments dispatched before the processor started are unknown, so expected arrivals are only judged
    # after watching this long (about the longest trip); until then the arrivals signal says so.
    warmup: timedelta = timedelta(hours=24)
    behind_grace: timedelta = timedelta(hours=2)  # past the ETA or a checkpoint's due time by this much
    leg_slack: float = 0.4  # ... plus this share of the leg's planned time (long roads vary more)
    # Shipments held up (behind) as a share of the requirement over the horizon: supply cut off on the
    # way, whatever the stock. Needs at least held_up_min_count shipments, so that one late truck of a
    # small flow is not a gap.
    held_up_watch_pct: float = 25.0
    held_up_alert_pct: float = 50.0
    held_up_min_count: int = 5
    arrivals_watch_pct: float = 80.0  # expected arrivals over the horizon, % of the requirement
    arrivals_alert_pct: float = 50.0
    arrivals_crisis_pct: float = 25.0
    forget_after: timedelta = timedelta(days=7)  # in-transit entries this long past their ETA are dropped
    # Produce markets: arrivals of the last days against the usual inflow, both exponentially weighted
    # with these half-lives. The usual remembers long enough that a two-week shortfall is still measured
    # against the weeks before it.
    usual_inflow_halflife: timedelta = timedelta(days=28)
    recent_inflow_halflife: timedelta = timedelta(days=2)  # shorter: a market of a few trucks a day is noise
    recent_inflow_watch_pct: float = 80.0
    recent_inflow_alert_pct: float = 65.0
    # WIB day (days since epoch) -> the share of the usual demand expected that day (absent: all of it):
    # Jakarta empties over Lebaran (mudik); its markets need, and so receive, less without being short.
    demand_calendar: Mapping[int, float] = field(default_factory=dict)
    arrived_memory: timedelta = timedelta(days=3)  # arrivals remembered to ignore a repeated snapshot
    # the inflows' time constants in days (from the half-lives), used at every arrival and judgement
    usual_inflow_tau_days: float = field(init=False, repr=False, compare=False)
    recent_inflow_tau_days: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_expected_shares", {})
        object.__setattr__(self, "usual_inflow_tau_days", _days(self.usual_inflow_halflife))
        object.__setattr__(self, "recent_inflow_tau_days", _days(self.recent_inflow_halflife))

    def demand_share(self, day: int) -> float:
        return self.demand_calendar.get(day, 1.0)

    def expected_share(self, day: int, tau_days: float) -> float:
        """The calendar's share of the usual expected on `day` of a sum of arrivals weighted over past days
        as exp(-age / tau_days) weights them (the recent inflow; a produce market's stock). The same for
        every destination, so computed once a day."""
        if not self.demand_calendar:
            return 1.0
        cache: dict[tuple[int, float], float] = self._expected_shares  # type: ignore[attr-defined]
        share = cache.get((day, tau_days))
        if share is None:
            weights = [math.exp(-back / tau_days) for back in range(int(6 * tau_days) + 1)]
            expected = sum(w * self.demand_share(day - back) for back, w in enumerate(weights))
            share = cache[(day, tau_days)] = expected / sum(weights)
        return share


@dataclass(slots=True)
class SupplyState:
    """Stock estimate and in-transit shipments for one `{commodity}:{destination}`.

    Bounded by the shipments in transit to it (entries are dropped on arrival or `forget_after` past
    their ETA) and by the arrivals of the last `arrived_memory`.
    """

    stock_kg: float | None = None  # None until the first step sets it from the target
    stock_ts: float = 0.0  # event time the estimate is valid at
    unmet_kg: float = 0.0  # requirement not covered since the estimate hit zero (stocking markets)
    in_transit: dict[str, list[Any]] = field(default_factory=dict)
    # shipment_id -> [version, quantity_kg, origin, eta ts, next checkpoint, its planned ts, last checkpoint,
    #                 its due ts, planned leg seconds]
    arrived: dict[str, float] = field(default_factory=dict)  # shipment_id -> arrival ts
    watermark: float = float("-inf")
    started_ts: float | None = None  # first event time seen
    # Arrivals decayed to stock_ts (SupplyConfig.usual/recent_inflow_halflife); over the decay's time
    # constant in days, each is an inflow per day. None until the first step seeds them with the requirement.
    usual_inflow_kg: float | None = None
    recent_inflow_kg: float | None = None

    def copy(self) -> SupplyState:
        return SupplyState(
            self.stock_kg,
            self.stock_ts,
            self.unmet_kg,
            dict(self.in_transit),  # entries are replaced, never changed in place: a shallow copy will do
            dict(self.arrived),
            self.watermark,
            self.started_ts,
            self.usual_inflow_kg,
            self.recent_inflow_kg,
        )

    def to_json(self) -> dict[str, Any]:
        data = {"v": 1, **{name: getattr(self, name) for name in self.__slots__}}
        data["watermark"] = None if self.watermark == float("-inf") else self.watermark
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SupplyState:
        if data.get("v") != 1:
            raise ValueError(f"unknown SupplyState version {data.get('v')!r}; expected 1")
        values = {name: data[name] for name in cls.__slots__ if name in data or name not in _ADDED_LATER}
        if values["watermark"] is None:
            values["watermark"] = float("-inf")
        for shipment_id, entry in values["in_transit"].items():
            if len(entry) == 7:  # written before checkpoint due times existed
                values["in_transit"][shipment_id] = [*entry, None, 0.0]
        return cls(**values)


_ADDED_LATER = frozenset({"usual_inflow_kg", "recent_inflow_kg"})  # absent from states written before them


def step_supply(
    state: SupplyState | None,
    status: ShipmentStatus,
    target: SupplyTarget,
    config: SupplyConfig,
    *,
    in_place: bool = False,
) -> tuple[SupplyState, list[Condition]]:
    """Apply a shipment snapshot bound for `target` and judge the supply at its event time."""
    new = apply_supply(state, status, target, config, in_place=in_place)
    return new, [judge_supply(new, target, config)]


def apply_supply(
    state: SupplyState | None,
    status: ShipmentStatus,
    target: SupplyTarget,
    config: SupplyConfig,
    *,
    in_place: bool = False,
) -> SupplyState:
    """step_supply without the judgement: a processor applies a batch of snapshots, then judges once."""
    if status.destination_key != target.key:
        raise ValueError(f"status for {status.destination_key} given to supply target {target.key}")
    new = _supply_state(state, target, config, in_place)
    at = status.occurred_ts
    _run_down(new, max(at, new.watermark), target, config)
    known = new.in_transit.get(status.shipment_id)
    if status.shipment_id in new.arrived or (known is not None and known[0] >= status.version):
        pass  # a repeated or older snapshot
    elif status.arrived_ts is not None:
        arrived_ts = status.arrived_ts
        new.in_transit.pop(status.shipment_id, None)
        new.arrived[status.shipment_id] = arrived_ts
        _count_arrival(new, status.quantity_kg, arrived_ts, target, config)
    else:
        new.in_transit[status.shipment_id] = [
            status.version,
            status.quantity_kg,
            status.origin_regency,
            status.eta_ts,
            status.next_checkpoint,
            status.next_checkpoint_planned_ts,
            status.last_checkpoint,
            status.next_checkpoint_due_ts,
            status.next_leg_minutes * 60.0 if status.next_leg_minutes is not None else 0.0,
        ]
    return new


def tick_supply(
    state: SupplyState | None, now: datetime, target: SupplyTarget, config: SupplyConfig, *, in_place: bool = False
) -> tuple[SupplyState, list[Condition]]:
    """Let time pass: the stock runs down and shipments may fall behind."""
    new = _supply_state(state, target, config, in_place)
    _run_down(new, max(timestamp(now), new.watermark), target, config)
    return new, [judge_supply(new, target, config)]


def _supply_state(state: SupplyState | None, target: SupplyTarget, config: SupplyConfig, in_place: bool) -> SupplyState:
    new = _working_copy(state, in_place, SupplyState)
    if new.stock_kg is None:
        new.stock_kg = target.initial_stock_kg
    if new.usual_inflow_kg is None:  # until arrivals teach them, inflows are the requirement
        new.usual_inflow_kg = target.daily_requirement_kg * config.usual_inflow_tau_days
        new.recent_inflow_kg = target.daily_requirement_kg * config.recent_inflow_tau_days
    return new


def _halflife_label(halflife: timedelta) -> str:
    return f"{halflife.total_seconds() / 86400.0:g}d"


def _days(halflife: timedelta) -> float:
    """Time constant of an exponential decay with this half-life, in days."""
    return halflife.total_seconds() / 86400.0 / math.log(2.0)


def _decays(age_days: float, target: SupplyTarget, config: SupplyConfig) -> tuple[float, float, float]:
    """What is left after `age_days` of an arrival's weight in the usual inflow, the recent inflow and
    (produce markets) the stock."""
    return (
        math.exp(-age_days / config.usual_inflow_tau_days),
        math.exp(-age_days / config.recent_inflow_tau_days),
        math.exp(-age_days / target.turnover_days) if target.turnover_days is not None else 1.0,
    )


def _count_arrival(
    state: SupplyState, kg: float, arrived_ts: float, target: SupplyTarget, config: SupplyConfig
) -> None:
    # decayed from its own time: a late arrival counts as much as it would have in order
    usual, recent, stock = _decays(max(state.stock_ts - arrived_ts, 0.0) / 86400.0, target, config)
    state.usual_inflow_kg = (state.usual_inflow_kg or 0.0) + kg * usual
    state.recent_inflow_kg = (state.recent_inflow_kg or 0.0) + kg * recent
    state.stock_kg = (state.stock_kg or 0.0) + kg * stock


def inflows_kg_per_day(state: SupplyState, config: SupplyConfig) -> tuple[float, float]:
    """(usual, recent) arrivals per day, as of state.stock_ts."""
    return (
        (state.usual_inflow_kg or 0.0) / config.usual_inflow_tau_days,
        (state.recent_inflow_kg or 0.0) / config.recent_inflow_tau_days,
    )


def _working_copy(state: Any, in_place: bool, empty: Callable[[], Any]) -> Any:
    """The state a step changes: the given one when the caller owns it (in_place: a processor batch
    stepping one key many times copies it once), else a copy; a new one when there is none."""
    if state is None:
        return empty()
    return state if in_place else state.copy()


def _run_down(state: SupplyState, now: float, target: SupplyTarget, config: SupplyConfig) -> None:
    if state.watermark == float("-inf"):
        state.stock_ts = state.started_ts = now
    elif now > state.stock_ts:
        elapsed_days = (now - state.stock_ts) / 86400.0
        usual, recent, kept = _decays(elapsed_days, target, config)
        stock = state.stock_kg or 0.0
        if target.turnover_days is None:
            used = target.daily_requirement_kg * config.demand_share(wib_day_of_ts(now)) * elapsed_days
            state.unmet_kg += max(0.0, used - stock)
            state.stock_kg = max(0.0, stock - used)
        else:
            state.stock_kg = stock * kept
        state.usual_inflow_kg = (state.usual_inflow_kg or 0.0) * usual
        state.recent_inflow_kg = (state.recent_inflow_kg or 0.0) * recent
        state.stock_ts = now
    state.watermark = max(state.watermark, now)


def _below(value: float, watch: float, alert: float, crisis: float | None = None) -> tuple[int, float]:
    """Severity level of a value that is bad when low, and the threshold it was judged against."""
    if crisis is not None and value < crisis:
        return 3, crisis
    if value < alert:
        return 2, alert
    if value < watch:
        return 1, watch
    return 0, watch


def judge_supply(state: SupplyState, target: SupplyTarget, config: SupplyConfig) -> Condition:
    """The supply of `target` at the state's event time (drops in-transit entries long past their ETA)."""
    now = state.watermark
    memory = config.arrived_memory.total_seconds()
    drop_older(state.arrived, now - memory, lambda arrived_ts: arrived_ts)

    # One pass over the shipments in transit, the bulk of a judgement: inlined, no call per entry.
    # Behind: past the ETA, or past the next checkpoint's due time plus slack for the leg, by the grace.
    behind_at_eta = config.behind_grace.total_seconds()
    forgotten_at_eta = config.forget_after.total_seconds()
    slack = config.leg_slack
    until = now + target.horizon_hours * 3600.0
    expected_kg, behind, forgotten = 0.0, [], []
    for shipment_id, entry in state.in_transit.items():
        eta = entry[3]
        if eta is not None:
            if now > eta + forgotten_at_eta:
                forgotten.append(shipment_id)
                continue
            if now > eta + behind_at_eta:
                behind.append((shipment_id, entry))
                continue
        due, leg = entry[7], entry[8]
        if due is None:
            due, leg = entry[5], 0.0
        if due is not None and now > due + behind_at_eta + slack * leg:
            behind.append((shipment_id, entry))
        elif eta is not None and eta <= until:
            expected_kg += entry[1]
    for shipment_id in forgotten:
        del state.in_transit[shipment_id]
    today = wib_day_of_ts(now)
    daily_kg = target.daily_requirement_kg * config.demand_share(today)  # what the city needs today
    requirement_kg = daily_kg * target.horizon_hours / 24.0
    stock = state.stock_kg or 0.0
    projected_kg = stock + expected_kg - requirement_kg
    # A produce market's stock is its recent arrivals, low for days after a holiday of low demand
    # (they followed the demand): its cover counts in the days' demand the calendar weights it by.
    stock_share = (
        config.expected_share(today, target.turnover_days) if target.turnover_days is not None
        else config.demand_share(today)
    )  # fmt: skip
    cover_days = max(projected_kg, 0.0) / (target.daily_requirement_kg * stock_share)
    arrivals_pct = expected_kg / requirement_kg * 100.0
    warming_up = state.started_ts is None or now - state.started_ts < config.warmup.total_seconds()

    cover_level, cover_threshold = _below(
        cover_days, target.watch_cover_days, target.alert_cover_days, target.crisis_cover_days
    )
    if warming_up:
        arrivals_level, arrivals_threshold = 0, config.arrivals_watch_pct
    else:
        arrivals_level, arrivals_threshold = _below(
            arrivals_pct, config.arrivals_watch_pct, config.arrivals_alert_pct, config.arrivals_crisis_pct
        )
    # Few arrivals matter as far as the stock cannot absorb them: one level above the cover's, and
    # never a crisis on their own (that takes under crisis_cover_days of stock). Markets receive mostly
    # at night, so a daytime horizon is short of the requirement in a normal week: with the stock at
    # its usual level (above the safe stock) this is a watch at most.
    arrivals_level = min(arrivals_level, cover_level + 1, 2)
    behind_kg = sum(entry[1] for _, entry in behind)
    held_up_pct = behind_kg / requirement_kg * 100.0
    # Held-up shipments are the supply line cut (a closed crossing): an alert even with stock in store,
    # a crisis only with the stock low too.
    if len(behind) < config.held_up_min_count or held_up_pct < config.held_up_watch_pct:
        held_level, held_threshold = 0, config.held_up_watch_pct
    elif held_up_pct < config.held_up_alert_pct:
        held_level, held_threshold = 1, config.held_up_watch_pct
    else:
        held_level, held_threshold = 2, config.held_up_alert_pct
    # Arrivals of the last days against the usual: a produce market that receives half its usual inflow
    # is short whatever the stock estimate says. An alert at most.
    usual_kg, recent_kg = inflows_kg_per_day(state, config)
    expected_share = config.expected_share(today, config.recent_inflow_tau_days)
    expected_inflow_kg = usual_kg * expected_share
    recent_pct = recent_kg / expected_inflow_kg * 100.0 if expected_inflow_kg > 0.0 else 100.0
    if target.turnover_days is None or warming_up:  # a stocking market: the cover signal judges it
        recent_level, recent_threshold = 0, config.recent_inflow_watch_pct
    else:
        recent_level, recent_threshold = _below(recent_pct, config.recent_inflow_watch_pct,
                                                config.recent_inflow_alert_pct)  # fmt: skip
    severity = max(cover_level, arrivals_level, held_level, recent_level)

    window = f"{target.horizon_hours:g}h"
    behind.sort(key=lambda item: -item[1][1])
    by_origin: dict[str, float] = {}
    for _, entry in behind:
        by_origin[entry[2]] = by_origin.get(entry[2], 0.0) + entry[1]
    return Condition(
        alert_type=AlertType.SUPPLY_GAP,
        subject=f"supply_gap:{target.commodity}:{target.destination}",
        severity=_SEVERITIES[severity],
        observed_at=from_ts(now),
        commodity=target.commodity,
        place=Place(PlaceKind.DESTINATION, target.destination),
        signals=(
            Signal(
                "projected_cover_days",
                cover_days,
                cover_threshold,
                target.watch_cover_days,
                window,
                _SEVERITIES[cover_level],
                f"holiday calendar: {stock_share:.0%} of the usual demand" if stock_share < 1.0 else None,
            ),
            Signal(
                "expected_arrivals_pct",
                arrivals_pct,
                arrivals_threshold,
                requirement_kg,
                window,
                _SEVERITIES[arrivals_level],
                f"warming up: shipments dispatched before {_iso(state.started_ts)} are unknown" if warming_up else None,
            ),
            Signal(
                "held_up_pct",
                held_up_pct,
                held_threshold,
                requirement_kg,
                window,
                _SEVERITIES[held_level],
                f"{len(behind)} shipments behind schedule (at least {config.held_up_min_count} count)",
            ),
            Signal(
                "recent_inflow_pct",
                recent_pct,
                recent_threshold,
                expected_inflow_kg,
                f"{_halflife_label(config.recent_inflow_halflife)} vs {_halflife_label(config.usual_inflow_halflife)}",
                _SEVERITIES[recent_level],
                "warming up" if warming_up and target.turnover_days is not None
                else f"holiday calendar: {expected_share:.0%} of the usual inflow expected" if expected_share < 1.0
                else None,
            ),
        ),
        affected_volume_kg=max(0.0, target.safe_stock_kg - projected_kg) if severity else None,
        details={
            "stock_kg": stock,
            "projected_stock_kg": projected_kg,
            "projected_cover_days": cover_days,
            "expected_arrivals_kg": expected_kg,
            "daily_requirement_kg": target.daily_requirement_kg,
            "requirement_today_kg": daily_kg,  # less where the calendar expects less (Lebaran)
            "usual_inflow_kg_per_day": usual_kg,
            "recent_inflow_kg_per_day": recent_kg,
            "low_inflow_pct": recent_pct if recent_level else None,  # set when the arrivals signal it
            "safe_stock_kg": target.safe_stock_kg,
            "unmet_requirement_kg": state.unmet_kg,
            "in_transit_count": len(state.in_transit),
            "behind_count": len(behind),
            "behind_kg": behind_kg,
            "behind_by_origin_kg": dict(sorted(by_origin.items(), key=lambda kv: -kv[1])),
            "behind_shipments": [
                {
                    "shipment_id": shipment_id,
                    "origin_regency": entry[2],
                    "quantity_kg": entry[1],
                    "eta": _iso(entry[3]),
                    "last_checkpoint": entry[6],
                    "next_checkpoint": entry[4],
                }
                for shipment_id, entry in behind[:_EVIDENCE_ITEMS]
            ],
        },
    )


# --- checkpoints: route_disruption ---------------------------------------------------------------


@dataclass(frozen=True)
class RouteConfig:
    grace: timedelta = timedelta(hours=1)  # past the due time at the checkpoint by this much = delayed
    leg_slack: float = 0.4  # ... plus this share of the leg's planned time (a 6 h road varies by 2 h)
    window: timedelta = timedelta(days=2)  # delays older than this are no longer counted (and forgotten)
    watch_count: int = 3
    alert_count: int = 5
    crisis_count: int = 15


@dataclass(slots=True)
class RouteState:
    """Shipments expected at one checkpoint (key: checkpoint code), bounded by those in transit to it."""

    expected: dict[str, list[Any]] = field(default_factory=dict)
    # shipment_id -> [version, due ts, quantity_kg, commodity, origin, destination, leg seconds]
    versions: dict[str, list[Any]] = field(default_factory=dict)  # shipment_id -> [version, seen ts] of passed ones
    watermark: float = float("-inf")

    def copy(self) -> RouteState:
        return RouteState(
            dict(self.expected),  # entries are replaced, never changed in place: a shallow copy will do
            dict(self.versions),
            self.watermark,
        )

    def to_json(self) -> dict[str, Any]:
        data = {"v": 1, **{name: getattr(self, name) for name in self.__slots__}}
        data["watermark"] = None if self.watermark == float("-inf") else self.watermark
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RouteState:
        if data.get("v") != 1:
            raise ValueError(f"unknown RouteState version {data.get('v')!r}; expected 1")
        values = {name: data[name] for name in cls.__slots__}
        if values["watermark"] is None:
            values["watermark"] = float("-inf")
        for shipment_id, entry in values["expected"].items():
            if len(entry) == 6:  # written before leg times existed
                values["expected"][shipment_id] = [*entry, 0.0]
        return cls(**values)


def step_route(
    state: RouteState | None, status: ShipmentStatus, checkpoint: str, config: RouteConfig, *, in_place: bool = False
) -> tuple[RouteState, list[Condition]]:
    """Apply a shipment snapshot that concerns `checkpoint` (it is or was the shipment's next stop)."""
    new = apply_route(state, status, checkpoint, in_place=in_place)
    return new, [judge_route(new, checkpoint, config)]


def apply_route(
    state: RouteState | None, status: ShipmentStatus, checkpoint: str, *, in_place: bool = False
) -> RouteState:
    """step_route without the judgement."""
    if checkpoint not in status.checkpoint_keys:
        raise ValueError(f"status of {status.shipment_id} does not concern checkpoint {checkpoint}")
    new = _working_copy(state, in_place, RouteState)
    at = status.occurred_ts
    new.watermark = max(new.watermark, at)
    current = new.expected.get(status.shipment_id) or new.versions.get(status.shipment_id)
    if current is None or current[0] < status.version:
        heading_here = status.next_checkpoint == checkpoint and status.arrived_ts is None
        if heading_here and status.next_checkpoint_planned_ts is not None:
            due = status.next_checkpoint_due_ts
            new.expected[status.shipment_id] = [
                status.version,
                due if due is not None else status.next_checkpoint_planned_ts,
                status.quantity_kg,
                status.commodity,
                status.origin_regency,
                status.destination,
                (status.next_leg_minutes or 0.0) * 60.0,
            ]
        else:
            new.expected.pop(status.shipment_id, None)
            new.versions[status.shipment_id] = [status.version, at]
    return new


def tick_route(
    state: RouteState | None, now: datetime, checkpoint: str, config: RouteConfig, *, in_place: bool = False
) -> tuple[RouteState, list[Condition]]:
    new = _working_copy(state, in_place, RouteState)
    new.watermark = max(new.watermark, timestamp(now))
    return new, [judge_route(new, checkpoint, config)]


def judge_route(state: RouteState, checkpoint: str, config: RouteConfig) -> Condition:
    """The checkpoint's delays at the state's event time (forgets those older than the window)."""
    now = state.watermark
    window, grace, slack = config.window.total_seconds(), config.grace.total_seconds(), config.leg_slack
    delayed, stuck = [], []
    for shipment_id, entry in state.expected.items():
        due = entry[1]
        if now - due > window:
            stuck.append(shipment_id)  # stuck longer than the window: no longer a current delay
        elif now > due + grace + slack * entry[6]:
            delayed.append((shipment_id, entry))
    for shipment_id in stuck:
        del state.expected[shipment_id]
    drop_older(state.versions, now - window, lambda entry: entry[1])
    delayed.sort(key=lambda item: -item[1][2])
    count = len(delayed)
    volume = sum(entry[2] for _, entry in delayed)
    level = (
        3
        if count >= config.crisis_count
        else 2
        if count >= config.alert_count
        else 1
        if count >= config.watch_count
        else 0
    )
    threshold = (config.watch_count, config.watch_count, config.alert_count, config.crisis_count)[level]
    by_destination: dict[str, float] = {}
    for _, entry in delayed:
        key = f"{entry[3]}:{entry[5]}"
        by_destination[key] = by_destination.get(key, 0.0) + entry[2]
    oldest = max((now - entry[1] for _, entry in delayed), default=0.0)
    return Condition(
        alert_type=AlertType.ROUTE_DISRUPTION,
        subject=f"route_disruption:{checkpoint}",
        severity=_SEVERITIES[level],
        observed_at=from_ts(now),
        commodity=None,
        place=Place(PlaceKind.CHECKPOINT, checkpoint),
        signals=(
            Signal("delayed_shipments", float(count), float(threshold), None, str(config.window), _SEVERITIES[level]),
            Signal("delayed_volume_kg", volume, None, None, str(config.window), _SEVERITIES[level]),
        ),
        affected_volume_kg=volume if level else None,
        details={
            "delayed_count": count,
            "delayed_kg": volume,
            "expected_count": len(state.expected),
            "oldest_delay_minutes": oldest / 60.0,
            "delayed_kg_by_commodity_destination": by_destination,
            "delayed_shipments": [
                {
                    "shipment_id": shipment_id,
                    "due_at": _iso(entry[1]),
                    "quantity_kg": entry[2],
                    "commodity": entry[3],
                    "origin_regency": entry[4],
                    "destination": entry[5],
                }
                for shipment_id, entry in delayed[:_EVIDENCE_ITEMS]
            ],
        },
    )


# --- harvests: harvest_unshipped -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HarvestReported:
    harvest_id: str
    occurred_at: datetime
    regency: str
    commodity: str
    quantity_kg: float
    available_from: date
    available_until: date  # last day (WIB) the harvest is available for shipping

    @property
    def key(self) -> str:
        return f"{self.regency}:{self.commodity}"


def harvest_from_contract(event: Any) -> HarvestReported:
    """From a `pantau.contracts.models.HarvestReportedEvent` envelope."""
    p = event.payload
    return HarvestReported(
        p.harvest_id,
        event.occurred_at,
        p.regency_code,
        p.commodity,
        p.quantity_kg,
        p.expected_available_from,
        p.expected_available_until,
    )


@dataclass(frozen=True)
class HarvestConfig:
    alert_unshipped_pct: float = 30.0  # unshipped share at the end of the window that alerts
    watch_unshipped_pct: float = 50.0  # unshipped share once watch_elapsed_pct of the window has passed
    watch_elapsed_pct: float = 75.0
    crisis_unshipped_kg: float = 500_000.0  # and this much left over is a crisis
    keep_after_window: timedelta = timedelta(days=7)  # then the lot is forgotten (and the alert resolves)
    early_shipping: timedelta = timedelta(days=1)  # shipments this long before the window still count


@dataclass(slots=True)
class HarvestState:
    """Harvest lots of one `{regency_code}:{commodity}`, bounded by lots in or shortly after their window."""

    lots: dict[str, list[float]] = field(default_factory=dict)  # harvest_id -> [kg, from ts, until ts, shipped kg]
    counted: dict[str, float] = field(default_factory=dict)  # shipment_id -> dispatch ts, already allocated
    watermark: float = float("-inf")

    def copy(self) -> HarvestState:
        return HarvestState({k: list(v) for k, v in self.lots.items()}, dict(self.counted), self.watermark)

    def to_json(self) -> dict[str, Any]:
        data = {"v": 1, **{name: getattr(self, name) for name in self.__slots__}}
        data["watermark"] = None if self.watermark == float("-inf") else self.watermark
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HarvestState:
        if data.get("v") != 1:
            raise ValueError(f"unknown HarvestState version {data.get('v')!r}; expected 1")
        values = {name: data[name] for name in cls.__slots__}
        if values["watermark"] is None:
            values["watermark"] = float("-inf")
        return cls(**values)


def _day_start(day: date) -> float:
    return datetime.combine(day, time(0, 0), tzinfo=WIB).timestamp()


def step_harvest(
    state: HarvestState | None,
    event: HarvestReported | ShipmentStatus,
    key: str,
    config: HarvestConfig,
    *,
    in_place: bool = False,
) -> tuple[HarvestState, list[Condition] | Rejected]:
    """Apply a harvest report, or a shipment snapshot whose origin_key is `key` (it ships that harvest).
    A rejected report leaves the state as it was, in place or not."""
    new, rejected = apply_harvest(state, event, key, config, in_place=in_place)
    if rejected is not None:
        return new, rejected
    return new, [judge_harvest(new, key, config)]


def apply_harvest(
    state: HarvestState | None,
    event: HarvestReported | ShipmentStatus,
    key: str,
    config: HarvestConfig,
    *,
    in_place: bool = False,
) -> tuple[HarvestState, Invalid | None]:
    """step_harvest without the judgement."""
    new = _working_copy(state, in_place, HarvestState)
    if isinstance(event, HarvestReported):
        if event.key != key:
            raise ValueError(f"harvest for {event.key} given to the state of {key}")
        if not event.quantity_kg > 0:
            return state or new, Invalid(f"quantity_kg must be positive, got {event.quantity_kg!r}")
        if event.available_until < event.available_from:
            return state or new, Invalid(
                f"expected_available_until {event.available_until} is before expected_available_from "
                f"{event.available_from}"
            )
        try:
            at = timestamp(event.occurred_at)
        except NaiveTimeError as exc:
            return state or new, Invalid(str(exc))
        if event.harvest_id not in new.lots:  # a repeated report changes nothing
            until = _day_start(event.available_until + timedelta(days=1))
            new.lots[event.harvest_id] = [event.quantity_kg, _day_start(event.available_from), until, 0.0]
    else:
        if event.origin_key != key:
            raise ValueError(f"status with origin {event.origin_key} given to the state of {key}")
        at = event.occurred_ts
        if event.shipment_id not in new.counted and event.dispatched_ts is not None:
            dispatched = event.dispatched_ts
            new.counted[event.shipment_id] = dispatched
            _allocate(new, event.harvest_id, event.quantity_kg, dispatched, config)
    new.watermark = max(new.watermark, at)
    return new, None


def tick_harvest(
    state: HarvestState | None, now: datetime, key: str, config: HarvestConfig, *, in_place: bool = False
) -> tuple[HarvestState, list[Condition]]:
    new = _working_copy(state, in_place, HarvestState)
    new.watermark = max(new.watermark, timestamp(now))
    return new, [judge_harvest(new, key, config)]


def _allocate(state: HarvestState, harvest_id: str | None, kg: float, dispatched: float, config: HarvestConfig) -> None:
    """Count a shipment against its named harvest, else the open lots whose window closes first."""
    early = config.early_shipping.total_seconds()
    if harvest_id is not None and harvest_id in state.lots:
        candidates = [state.lots[harvest_id]]
    else:
        candidates = sorted(
            (lot for lot in state.lots.values() if lot[1] - early <= dispatched <= lot[2]), key=lambda lot: lot[2]
        )
    for lot in candidates:
        take = min(kg, lot[0] - lot[3])
        lot[3] += take
        kg -= take
        if kg <= 0:
            break


def judge_harvest(state: HarvestState, key: str, config: HarvestConfig) -> Condition:
    """The lots of `key` at the state's event time (forgets those long past their window)."""
    now = state.watermark
    keep = config.keep_after_window.total_seconds()
    state.lots = {hid: lot for hid, lot in state.lots.items() if now <= lot[2] + keep and lot[3] < lot[0]}
    oldest_lot = min((lot[1] for lot in state.lots.values()), default=now)
    drop_older(state.counted, oldest_lot - keep, lambda dispatched_ts: dispatched_ts)  # counted as they left
    level, unshipped_kg, late = 0, 0.0, []
    for harvest_id, (kg, start, until, shipped) in state.lots.items():
        left = kg - shipped
        left_pct = left / kg * 100.0
        elapsed_pct = (now - start) / max(until - start, 1.0) * 100.0
        if now > until and left_pct >= config.alert_unshipped_pct:
            lot_level = 3 if left >= config.crisis_unshipped_kg else 2
        elif elapsed_pct >= config.watch_elapsed_pct and left_pct >= config.watch_unshipped_pct:
            lot_level = 1
        else:
            continue
        level = max(level, lot_level)
        if lot_level >= 2:
            unshipped_kg += left
        late.append(
            {
                "harvest_id": harvest_id,
                "quantity_kg": kg,
                "unshipped_kg": left,
                "available_until": _iso(until - 1.0),
                "severity": _SEVERITIES[lot_level].label,
            }
        )
    regency, _, commodity = key.partition(":")
    total_kg = sum(lot[0] for lot in state.lots.values())
    left_total = sum(lot[0] - lot[3] for lot in state.lots.values())
    late.sort(key=lambda item: -item["unshipped_kg"])
    return Condition(
        alert_type=AlertType.HARVEST_UNSHIPPED,
        subject=f"harvest_unshipped:{commodity}:{regency}",
        severity=_SEVERITIES[level],
        observed_at=from_ts(now),
        commodity=commodity,
        place=Place(PlaceKind.REGENCY, regency),
        signals=(
            Signal("unshipped_after_window_kg", unshipped_kg, None, None, None, _SEVERITIES[level]),
            Signal(
                "unshipped_pct",
                left_total / total_kg * 100.0 if total_kg else 0.0,
                config.alert_unshipped_pct,
                None,
                None,
                _SEVERITIES[level],
            ),
        ),
        affected_volume_kg=unshipped_kg if level >= 2 else None,
        details={
            "open_lots": len(state.lots),
            "harvested_kg": total_kg,
            "unshipped_kg": left_total,
            "late_lots": late[:_EVIDENCE_ITEMS],
        },
    )
