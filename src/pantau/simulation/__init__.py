"""Simulated Lampung -> Jakarta food supply: harvests, trucks through Bakauheni-Merak, market prices,
and injected scenarios with their ground truth. Pure: no Kafka, no clock; services/simulator paces
it against the wall clock (pantau.simulation.clock) and produces the events.

    from pantau.simulation import Simulation, load_scenarios
"""

from pantau.simulation.clock import SimulatedClock, default_start
from pantau.simulation.engine import Emission, GroundTruth, Simulation
from pantau.simulation.scenarios import Expectation, Scenario, ScenarioError, load_scenarios, parse_scenarios
from pantau.simulation.world import World

__all__ = [
    "Emission",
    "Expectation",
    "GroundTruth",
    "Scenario",
    "ScenarioError",
    "SimulatedClock",
    "Simulation",
    "World",
    "default_start",
    "load_scenarios",
    "parse_scenarios",
]
