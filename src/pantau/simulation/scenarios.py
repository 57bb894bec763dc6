"""Scenarios: disruptions injected into the simulation, each with the ground truth a detector
evaluation scores against.

A scenario file (SIMULATOR_SCENARIO_FILE) is YAML:

    scenarios:
      - name: bakauheni_closure           # unique; the ground truth names it
        kind: ferry_closure               # ferry_closure | harvest_failure | demand_surge | price_jump | data_glitch
        at: "+2h"                         # offset from the start (+90m, +2h, +3d, +1d6h) or RFC 3339;
                                          # down to -1d: the warm-up day before the start. The start is
                                          # SIMULATOR_START, or the run's default (14 days back)
        hours: 18
      - {name: jatinegara_rice, kind: price_jump, commodity: beras, market: pasar_jatinegara,
         at: "+1h", days: 10, change_pct: 20}
      - {name: lampung_tengah_failure, kind: harvest_failure, regency: "18.05", commodity: beras,
         at: "+5d", days: 30, loss_pct: 90}
      - {name: lebaran_surge, kind: demand_surge, commodity: beras, destination: pibc,
         before_holiday: idul_fitri, days: 10, demand_pct: 35}
      - {name: prov31_glitch, kind: data_glitch, commodity: beras, market: prov_31, at: "+9d", change_pct: -8}

Every kind expects certain alerts (DEFAULT_EXPECTATIONS); `expect:` in the file replaces them,
`expect: []` says no alert should follow (the one-day glitch). Each expected alert is one ground
truth line (JSON): scenario, kind, expected_alert_type (null: no alert expected), required, subject,
onset, end. `required: false` marks an alert the disruption may raise but need not (a ferry closure
and a small flow, whose few trucks may or may not be held up): neither a miss when absent nor a
false alarm when raised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from pantau.reference import ReferenceData
from pantau.simulation.world import World

KINDS = ("ferry_closure", "harvest_failure", "demand_surge", "price_jump", "data_glitch")
CLOSABLE = ("bakauheni_port", "ferry_crossing")  # where a closure of the crossing holds the trucks
ALERT_TYPES = ("price_spike", "price_disparity", "supply_gap", "route_disruption", "harvest_unshipped")
# A closure of 12 h or more is a supply gap for flows of this many trucks a day (Cipinang's rice, about
# 150; Kramat Jati's bananas, about 40; the next largest, shallots, about 15, hold up fewer than the
# five shipments the detector needs).
CLOSURE_GAP_MIN_DAILY_TRUCKS = 30.0
_OFFSET = re.compile(r"^([+-])(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file, the scenario and the field."""


@dataclass(frozen=True)
class Expectation:
    """An alert a scenario should raise (alert_type None: it should raise none; required False: it may)."""

    alert_type: str | None
    commodity: str | None
    place_kind: str  # market | province | destination | checkpoint | regency
    place_code: str
    required: bool = True

    @property
    def alert_subject(self) -> str | None:
        """The subject the processor's alert is expected to carry (alert topic key)."""
        if self.alert_type is None:
            return None
        if self.alert_type == "route_disruption":
            return f"route_disruption:{self.place_code}"
        if self.alert_type == "price_disparity":
            return f"price_disparity:{self.commodity}:prov_31:prov_18"
        return f"{self.alert_type}:{self.commodity}:{self.place_code}"


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str
    onset: datetime
    end: datetime
    commodity: str | None = None
    market: str | None = None  # price_jump, data_glitch
    destination: str | None = None  # demand_surge
    regency: str | None = None  # harvest_failure
    checkpoint: str | None = None  # ferry_closure
    change: float = 0.0  # fractional: price change, harvest loss or demand increase
    expectations: tuple[Expectation, ...] = field(default=())

    def active(self, moment: datetime) -> bool:
        return self.onset <= moment < self.end

    def ground_truth(self, seed: int) -> list[dict[str, Any]]:
        """The ground truth lines of this scenario (one per expected alert)."""
        parameters = {
            k: v
            for k, v in (
                ("commodity", self.commodity), ("market", self.market), ("destination", self.destination),
                ("regency", self.regency), ("checkpoint", self.checkpoint),
            )
            if v is not None
        }  # fmt: skip
        parameters["change"] = self.change
        lines = []
        for expectation in self.expectations:
            lines.append(
                {
                    "scenario": self.name,
                    "kind": self.kind,
                    "expected_alert_type": expectation.alert_type,
                    "required": expectation.required,
                    "alert_subject": expectation.alert_subject,
                    "subject": {
                        "commodity": expectation.commodity,
                        "place_kind": expectation.place_kind,
                        "place_code": expectation.place_code,
                    },
                    "onset": self.onset.isoformat(),
                    "end": self.end.isoformat(),
                    "seed": seed,
                    "parameters": parameters,
                }
            )
        return lines


def default_expectations(scenario: Scenario, reference: ReferenceData) -> tuple[Expectation, ...]:
    """What each kind of disruption should make the detectors say, in the simulated world."""
    kind = scenario.kind
    if kind == "ferry_closure":
        # Trucks wait in Bakauheni port: they are overdue at the next checkpoint, the crossing itself.
        expected = [Expectation("route_disruption", None, "checkpoint", "ferry_crossing")]
        # Half a day with the crossing shut holds up more than half of what the large flows should
        # bring over the supply detector's horizon (its held-up signal): a supply gap at their
        # destinations although the stock in store is fine. A small flow may run short or not,
        # depending on where its few trucks were.
        if scenario.end - scenario.onset >= timedelta(hours=12):
            world = World(reference)
            expected += [
                Expectation("supply_gap", flow.commodity, "destination", flow.destination,
                            required=world.daily_trucks(flow) >= CLOSURE_GAP_MIN_DAILY_TRUCKS)
                for flow in world.flows
            ]  # fmt: skip
        # A day and a half without arrivals drains Cipinang enough to lift Jakarta's rice prices.
        if scenario.end - scenario.onset >= timedelta(hours=36):
            expected += [
                Expectation("price_spike", "beras", _place_kind(series.market.kind), series.market.code)
                for series in World(reference).price_series
                if series.commodity == "beras" and series.side == "jakarta"
            ]
        return tuple(expected)
    if kind == "harvest_failure":
        # One regency's failure is absorbed by the mills' stocks and the other regencies: Jakarta's
        # arrivals hold, so no alert is due; the harvest stream shows the failure. Add `expect:` for
        # failures that should reach a destination.
        return (Expectation(None, scenario.commodity, "regency", scenario.regency or ""),)
    if kind == "demand_surge":
        # Every Jakarta price of the commodity rises, and with it the Jakarta/Lampung ratio.
        expected = [
            Expectation("price_spike", scenario.commodity, _place_kind(series.market.kind), series.market.code)
            for series in World(reference).price_series
            if series.commodity == scenario.commodity and series.side == "jakarta"
        ]
        expected.append(Expectation("price_disparity", scenario.commodity, "province", "prov_31"))
        return tuple(expected)
    market = reference.market(scenario.market or "")
    if kind == "price_jump":
        return (Expectation("price_spike", scenario.commodity, _place_kind(market.kind), market.code),)
    # data_glitch: a one-day glitch must raise no alert
    return (Expectation(None, scenario.commodity, _place_kind(market.kind), market.code),)


def _place_kind(market_kind: str) -> str:
    return "province" if market_kind == "province_average" else "market"


def load_scenarios(path: Path, start: datetime, reference: ReferenceData) -> tuple[Scenario, ...]:
    """Parse and check a scenario file; ScenarioError names what to fix."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{path}: scenario file not found (SIMULATOR_SCENARIO_FILE)") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    return parse_scenarios(document, start, reference, where=str(path))


def parse_scenarios(
    document: Any, start: datetime, reference: ReferenceData, where: str = "<scenarios>"
) -> tuple[Scenario, ...]:
    if not isinstance(document, Mapping) or not isinstance(document.get("scenarios"), list):
        raise ScenarioError(f"{where}: expected a mapping with a list under 'scenarios'")
    scenarios: list[Scenario] = []
    names: set[str] = set()
    for index, raw in enumerate(document["scenarios"]):
        label = f"{where}: scenarios[{index}]"
        if not isinstance(raw, Mapping):
            raise ScenarioError(f"{label}: expected a mapping, got {type(raw).__name__}")
        scenario = _parse_one(raw, start, reference, label)
        if scenario.name in names:
            raise ScenarioError(f"{label}.name: duplicate scenario name {scenario.name!r}")
        names.add(scenario.name)
        scenarios.append(scenario)
    return tuple(scenarios)


_FIELDS: Mapping[str, tuple[str, ...]] = {
    "ferry_closure": ("checkpoint", "hours"),
    "harvest_failure": ("regency", "commodity", "days", "loss_pct"),
    "demand_surge": ("commodity", "destination", "days", "demand_pct", "before_holiday"),
    "price_jump": ("commodity", "market", "days", "hours", "change_pct"),
    "data_glitch": ("commodity", "market", "change_pct"),
}
_COMMON = ("name", "kind", "at", "expect")


def _parse_one(raw: Mapping[str, Any], start: datetime, ref: ReferenceData, label: str) -> Scenario:
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ScenarioError(f"{label}.kind: {kind!r} is not one of {', '.join(KINDS)}")
    unknown = sorted(set(raw) - set(_COMMON) - set(_FIELDS[kind]))
    if unknown:
        raise ScenarioError(
            f"{label}: unknown field(s) {unknown} for kind {kind}; allowed: {list(_COMMON + _FIELDS[kind])}"
        )
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ScenarioError(f"{label}.name: give a name of lowercase letters, digits, '_', '.', '-' (got {name!r})")
    label = f"{label} ({name})"

    def number(key: str, default: float | None = None, positive: bool = True) -> float:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(f"{label}.{key}: expected a number, got {value!r}")
        if positive and value <= 0:
            raise ScenarioError(f"{label}.{key}: must be above 0, got {value!r}")
        return float(value)

    def code(key: str, exists: Any, default: str | None = None) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str):
            raise ScenarioError(f"{label}.{key}: expected a code, got {value!r}")
        try:
            exists(value)
        except KeyError as exc:
            raise ScenarioError(f"{label}.{key}: {exc}") from None
        return value

    commodity = market = destination = regency = checkpoint = None
    change = 0.0
    if kind == "demand_surge" and "before_holiday" in raw:
        if "at" in raw:
            raise ScenarioError(f"{label}: give either 'at' or 'before_holiday', not both")
        holiday = code("before_holiday", ref.holiday)
        days = number("days")
        day = _holiday_on_or_after(ref, holiday, start)
        onset = datetime.combine(day, datetime.min.time(), tzinfo=start.tzinfo) - timedelta(days=days)
    else:
        onset = _moment(raw.get("at"), start, f"{label}.at")

    if kind == "ferry_closure":
        checkpoint = code("checkpoint", ref.checkpoint, default="bakauheni_port")
        if checkpoint not in CLOSABLE:
            raise ScenarioError(f"{label}.checkpoint: a ferry closure holds trucks at {' or '.join(CLOSABLE)}")
        end = onset + timedelta(hours=number("hours"))
    elif kind == "harvest_failure":
        regency = code("regency", ref.regency)
        commodity = code("commodity", ref.commodity)
        if commodity not in ref.regency(regency).main_commodities:
            raise ScenarioError(f"{label}.commodity: regency {regency} does not grow {commodity!r} (regencies.v1.json)")
        change = number("loss_pct") / 100.0
        if change > 1.0:
            raise ScenarioError(f"{label}.loss_pct: at most 100, got {change * 100:g}")
        end = onset + timedelta(days=number("days"))
    elif kind == "demand_surge":
        commodity = code("commodity", ref.commodity)
        destination = code("destination", ref.market, default="pibc")
        if commodity not in {s.commodity for s in ref.market(destination).supply}:
            raise ScenarioError(f"{label}.destination: {destination} receives no {commodity} (markets.v1.json supply)")
        change = number("demand_pct") / 100.0
        end = onset + timedelta(days=number("days"))
    elif kind == "price_jump":
        commodity = code("commodity", ref.commodity)
        market = code("market", ref.market)
        change = number("change_pct", positive=False) / 100.0
        if change <= -1.0 or change == 0.0:
            raise ScenarioError(f"{label}.change_pct: must be above -100 and not 0, got {change * 100:g}")
        if "days" in raw and "hours" in raw:
            raise ScenarioError(f"{label}: give either 'days' or 'hours', not both")
        duration = timedelta(hours=number("hours")) if "hours" in raw else timedelta(days=number("days", 7))
        end = onset + duration
    else:  # data_glitch: one day's observation
        commodity = code("commodity", ref.commodity)
        market = code("market", ref.market)
        change = number("change_pct", positive=False) / 100.0
        if change <= -1.0 or change == 0.0:
            raise ScenarioError(f"{label}.change_pct: must be above -100 and not 0, got {change * 100:g}")
        end = onset + timedelta(days=1)

    scenario = Scenario(name, kind, onset, end, commodity, market, destination, regency, checkpoint, change)
    if "expect" in raw:
        expectations = _expectations(raw["expect"], scenario, label)
    else:
        expectations = default_expectations(scenario, ref)
    return Scenario(name, kind, onset, end, commodity, market, destination, regency, checkpoint, change, expectations)


def _expectations(raw: Any, scenario: Scenario, label: str) -> tuple[Expectation, ...]:
    """expect: [] (no alert) or a list of {alert_type, place_kind, place_code, commodity?, required?}."""
    if not isinstance(raw, list):
        raise ScenarioError(f"{label}.expect: expected a list (empty: no alert expected)")
    if not raw:
        place = scenario.market or scenario.destination or scenario.checkpoint or scenario.regency or "none"
        return (Expectation(None, scenario.commodity, "market", place),)
    result = []
    for index, item in enumerate(raw):
        where = f"{label}.expect[{index}]"
        if not isinstance(item, Mapping):
            raise ScenarioError(f"{where}: expected a mapping")
        alert_type = item.get("alert_type")
        if alert_type not in ALERT_TYPES:
            raise ScenarioError(f"{where}.alert_type: {alert_type!r} is not one of {', '.join(ALERT_TYPES)}")
        place_kind, place_code = item.get("place_kind"), item.get("place_code")
        if place_kind not in ("market", "province", "destination", "checkpoint", "regency"):
            raise ScenarioError(
                f"{where}.place_kind: {place_kind!r} is not market/province/destination/checkpoint/regency"
            )
        if not isinstance(place_code, str):
            raise ScenarioError(f"{where}.place_code: expected a code, got {place_code!r}")
        required = item.get("required", True)
        if not isinstance(required, bool):
            raise ScenarioError(f"{where}.required: expected true or false, got {required!r}")
        commodity = item.get("commodity", scenario.commodity)
        result.append(Expectation(alert_type, commodity, place_kind, place_code, required))
    return tuple(result)


def _moment(value: Any, start: datetime, where: str) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ScenarioError(f"{where}: {value.isoformat()} has no UTC offset; write +07:00")
        return value
    if not isinstance(value, str):
        raise ScenarioError(f"{where}: expected an offset like '+2h' / '+3d' or an RFC 3339 time, got {value!r}")
    match = _OFFSET.fullmatch(value.strip())
    if match and any(match.groups()[1:]):
        days, hours, minutes = (int(g) if g else 0 for g in match.groups()[1:])
        offset = timedelta(days=days, hours=hours, minutes=minutes)
        return start + offset if match.group(1) == "+" else start - offset
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ScenarioError(f"{where}: {value!r} is neither an offset like '+2h' nor an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise ScenarioError(f"{where}: {value!r} has no UTC offset; write +07:00")
    return moment


def _holiday_on_or_after(ref: ReferenceData, code: str, start: datetime) -> Any:
    dates = sorted(entry.date for entry in ref.holiday(code).dates)
    for day in dates:
        if day >= start.date():
            return day
    raise ScenarioError(f"holiday {code!r} has no date on or after {start.date()} in holidays.v1.json")


def ground_truth_lines(scenarios: Sequence[Scenario], seed: int) -> list[dict[str, Any]]:
    return [line for scenario in scenarios for line in scenario.ground_truth(seed)]
