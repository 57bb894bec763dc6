"""`python -m services.simulator`: simulated harvests, shipments and prices, at SIMULATOR_SPEED.

Settings: SIMULATOR_SEED, SIMULATOR_SPEED (simulated seconds per wall second), SIMULATOR_START,
SIMULATOR_SCENARIO_FILE (YAML, scenarios/demo.yaml under `make run`), SIMULATOR_GROUND_TRUTH_FILE
(JSON lines), SIMULATOR_PORT (/metrics, /healthz). Exits non-zero with the reason when Kafka does not
acknowledge events within PRODUCER_BUFFER_MAX_SECONDS; stops cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import signal
import sys
from datetime import datetime

from pantau.contracts import HARVEST_TOPIC, PRICE_TOPIC, SHIPMENT_TOPIC, WIB
from pantau.kafka import BrokerUnavailable, DeliveryFailed, EventProducer, wait_for_topics
from pantau.logging import configure_logging
from pantau.metrics import serve_metrics
from pantau.reference import load_reference
from pantau.settings import Settings
from pantau.simulation import ScenarioError, Simulation, load_scenarios
from services.simulator.runner import SimulatorRunner


def simulation_start(settings: Settings) -> datetime:
    try:
        start = datetime.fromisoformat(settings.simulator_start)
    except ValueError:
        raise SystemExit(
            f"SIMULATOR_START={settings.simulator_start!r} is not an RFC 3339 time, e.g. 2026-03-01T00:00:00+07:00"
        ) from None
    if start.tzinfo is None:
        raise SystemExit(f"SIMULATOR_START={settings.simulator_start!r} has no UTC offset; add +07:00 (WIB)")
    return start.astimezone(WIB)


def build_simulation(settings: Settings) -> Simulation:
    reference = load_reference()
    start = simulation_start(settings)
    scenarios = ()
    if settings.simulator_scenario_file is not None:
        try:
            scenarios = load_scenarios(settings.simulator_scenario_file, start, reference)
        except ScenarioError as exc:
            raise SystemExit(f"SIMULATOR_SCENARIO_FILE: {exc}") from None
    return Simulation(reference, seed=settings.simulator_seed, start=start, scenarios=scenarios)


def main() -> int:
    settings = Settings()
    log = configure_logging(settings, "simulator")
    simulation = build_simulation(settings)
    wait_for_topics(settings, [HARVEST_TOPIC, SHIPMENT_TOPIC, PRICE_TOPIC])
    try:
        producer = EventProducer(settings, client_id="simulator")
    except BrokerUnavailable as exc:
        log.error("kafka unavailable", error=str(exc))
        return 1
    runner = SimulatorRunner(
        simulation, producer, speed=settings.simulator_speed, ground_truth_file=settings.simulator_ground_truth_file
    )
    server = serve_metrics(settings.service_host, settings.simulator_port, runner.health, "SIMULATOR_PORT")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: runner.stop())
    log.info(
        "simulator started", seed=settings.simulator_seed, speed=settings.simulator_speed,
        start=simulation.start.isoformat(), scenarios=[s.name for s in simulation.scenarios],
        port=settings.simulator_port,
    )  # fmt: skip
    try:
        stats = runner.run()
        producer.close()
    except DeliveryFailed as exc:
        log.error("events not acknowledged by Kafka; stopping", error=str(exc), events_sent=runner.stats.events)
        return 1
    finally:
        server.shutdown()
    log.info("simulator stopped", events_sent=stats.events, ground_truth_lines=stats.ground_truth_lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
