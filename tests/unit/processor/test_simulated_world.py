"""The simulator's world through the processor's stages (in-process harness): what a calm run (over
two weeks) and a ferry closure raise must be exactly what the simulator's ground truth says."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from pantau.contracts import WIB
from pantau.reference import load_reference
from pantau.simulation import Simulation
from pantau.simulation.engine import GroundTruth
from pantau.simulation.scenarios import parse_scenarios
from tests.unit.processor.harness import Harness

START = datetime(2026, 11, 21, tzinfo=WIB)
TICK_S = 1800.0


def opened_alerts(scenarios: list[dict], days: float) -> tuple[set[str], set[str]]:
    """(subjects opened, subjects the ground truth requires) over `days` from the start (+ warm-up)."""
    reference = load_reference()
    scenario_objects = parse_scenarios({"scenarios": scenarios}, START, reference) if scenarios else ()
    simulation = Simulation(reference, seed=42, start=START, scenarios=scenario_objects)
    harness = Harness.create()
    expected, next_tick = set(), None
    for item in simulation.run(until=START + timedelta(days=days)):
        if isinstance(item, GroundTruth):
            if item.line["alert_subject"] and item.line["required"]:
                expected.add(item.line["alert_subject"])
            continue
        if item.payload.TOPIC == "pangan.price.v1":
            continue  # supply and route only: prices are the price detector's tests
        at = item.occurred_at.timestamp()
        next_tick = next_tick or at + TICK_S
        while at >= next_tick:
            harness.run("aggregates", [], tick_at=next_tick)  # time passes as the worker's timer lets it
            next_tick += TICK_S
        harness.feed([item])
    opened = {
        json.loads(record.value)["payload"]["subject"]
        for record in harness.outputs
        if record.topic == harness.processor.topics.alert and json.loads(record.value)["event_type"] == "AlertOpened"
    }
    return opened, expected


def test_a_calm_simulation_of_sixteen_days_raises_no_supply_route_or_harvest_alert():
    """Long enough for hundreds of perishable harvest lots (windows of 4-7 days) to open and close: each
    must ship within its window, or harvest_unshipped fires on a calm world (it did after 11 days when
    trucks planned the day before arrival left on the arrival day, after their lot's last day)."""
    opened, expected = opened_alerts([], days=16)
    assert expected == set()
    assert opened == set()


def test_a_ferry_closure_raises_exactly_the_alerts_of_its_ground_truth():
    closure = {"name": "closure", "kind": "ferry_closure", "checkpoint": "bakauheni_port", "at": "+1h", "hours": 16}
    opened, expected = opened_alerts([closure], days=3)
    assert expected == {"route_disruption:ferry_crossing", "supply_gap:beras:pibc", "supply_gap:pisang:pikj"}
    # no disruption at Merak when the backlog crosses, none at Bakauheni's gate, no small-flow gap
    assert opened == expected
