"""`python -m services.simulator`: simulated harvests, shipments and prices, from Lampung to Jakarta.

Without SIMULATOR_START the first run starts at midnight WIB SIMULATOR_BACKFILL_DAYS (14) days ago,
catches up at SIMULATOR_SPEED and then follows the wall clock; with it, the run goes at SIMULATOR_SPEED
from that start (SIMULATOR_FOLLOW_WALL_CLOCK overrides either). A checkpoint in SIMULATOR_STATE_DIR
(default LOCAL_DIR/simulator) lets a restart continue where the last run stopped. Scenarios come from
SIMULATOR_SCENARIO_FILE (default scenarios/demo.yaml, `none` for none), their ground truth goes to
SIMULATOR_GROUND_TRUTH_FILE (default SIMULATOR_STATE_DIR/ground_truth.jsonl); /metrics and /healthz
on SIMULATOR_PORT. Exits non-zero with the reason when Kafka does not acknowledge events within
PRODUCER_BUFFER_MAX_SECONDS; stops cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pantau.contracts import HARVEST_TOPIC, PRICE_TOPIC, SHIPMENT_TOPIC, WIB, now_wib
from pantau.kafka import BrokerUnavailable, DeliveryFailed, EventProducer, wait_for_topics
from pantau.logging import configure_logging
from pantau.metrics import serve_metrics
from pantau.reference import load_reference
from pantau.settings import Settings
from pantau.simulation import ScenarioError, Simulation, default_start, load_scenarios
from services.simulator.checkpoint import CheckpointStore, RunPlan, plan_run, scenario_sha256
from services.simulator.runner import SimulatorRunner

NO_SCENARIOS = "none"


def explicit_start(settings: Settings) -> datetime | None:
    if settings.simulator_start is None:
        return None
    try:
        start = datetime.fromisoformat(settings.simulator_start)
    except ValueError:
        raise SystemExit(
            f"SIMULATOR_START={settings.simulator_start!r} is not an RFC 3339 time, e.g. 2026-03-01T00:00:00+07:00"
        ) from None
    if start.tzinfo is None:
        raise SystemExit(f"SIMULATOR_START={settings.simulator_start!r} has no UTC offset; add +07:00 (WIB)")
    return start.astimezone(WIB)


def scenario_file(settings: Settings) -> Path | None:
    path = settings.simulator_scenario_file
    return None if str(path).strip().lower() == NO_SCENARIOS else path


def state_dir(settings: Settings) -> Path:
    return settings.simulator_state_dir or settings.local_dir / "simulator"


def ground_truth_file(settings: Settings) -> Path:
    return settings.simulator_ground_truth_file or state_dir(settings) / "ground_truth.jsonl"


def follows_wall_clock(settings: Settings) -> bool:
    """Explicit SIMULATOR_FOLLOW_WALL_CLOCK wins; unset: follow unless SIMULATOR_START fixes the period."""
    if settings.simulator_follow_wall_clock is not None:
        return settings.simulator_follow_wall_clock
    return settings.simulator_start is None


@dataclass(frozen=True)
class Setup:
    simulation: Simulation
    plan: RunPlan
    checkpoints: CheckpointStore
    scenario_sha256: str | None
    checkpoint_problem: str | None  # an unreadable checkpoint file


def prepare(settings: Settings, now: datetime) -> Setup:
    """Decide the run (fresh or resumed, and its start) and build its simulation."""
    scenarios_path = scenario_file(settings)
    try:
        digest = scenario_sha256(scenarios_path)
    except OSError as exc:
        raise SystemExit(
            f"SIMULATOR_SCENARIO_FILE={scenarios_path}: cannot read it ({exc}); `none` runs without scenarios"
        ) from None
    checkpoints = CheckpointStore(state_dir(settings))
    try:
        checkpoints.check_writable()
    except OSError as exc:
        raise SystemExit(
            f"SIMULATOR_STATE_DIR={checkpoints.path.parent} is not writable ({exc}); the simulator keeps its "
            "checkpoint there: mount a volume the service user can write"
        ) from None
    stored, problem = checkpoints.load()
    plan = plan_run(
        seed=settings.simulator_seed,
        scenario_digest=digest,
        explicit_start=explicit_start(settings),
        default_start=default_start(now, settings.simulator_backfill_days),
        stored=stored,
    )
    reference = load_reference()
    scenarios = ()
    if scenarios_path is not None:
        try:
            scenarios = load_scenarios(scenarios_path, plan.start, reference)
        except ScenarioError as exc:
            raise SystemExit(f"SIMULATOR_SCENARIO_FILE: {exc}") from None
    simulation = Simulation(reference, seed=settings.simulator_seed, start=plan.start, scenarios=scenarios)
    return Setup(simulation, plan, checkpoints, digest, problem)


def main() -> int:
    settings = Settings()
    log = configure_logging(settings, "simulator")
    setup = prepare(settings, now_wib())
    if setup.checkpoint_problem is not None:
        log.warning("checkpoint ignored: starting afresh", reason=setup.checkpoint_problem)
    if setup.plan.ignored_because is not None:
        log.warning(
            "checkpoint ignored: starting afresh", reason=setup.plan.ignored_because,
            checkpoint=str(setup.checkpoints.path),
        )  # fmt: skip
    wait_for_topics(settings, [HARVEST_TOPIC, SHIPMENT_TOPIC, PRICE_TOPIC])
    try:
        producer = EventProducer(settings, client_id="simulator")
    except BrokerUnavailable as exc:
        log.error("kafka unavailable", error=str(exc))
        return 1
    follow = follows_wall_clock(settings)
    runner = SimulatorRunner(
        setup.simulation, producer, speed=settings.simulator_speed, follow_wall_clock=follow,
        checkpoints=setup.checkpoints, scenario_sha256=setup.scenario_sha256, resume_at=setup.plan.resume_at,
        ground_truth_file=ground_truth_file(settings),
    )  # fmt: skip
    server = serve_metrics(settings.service_host, settings.simulator_port, runner.health, "SIMULATOR_PORT")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: runner.stop())
    simulation = setup.simulation
    log.info(
        "simulator started", seed=settings.simulator_seed, speed=settings.simulator_speed,
        follow_wall_clock=follow, start=simulation.start.isoformat(),
        resume_at=setup.plan.resume_at.isoformat() if setup.plan.resume_at else None,
        scenarios=[s.name for s in simulation.scenarios], state_dir=str(state_dir(settings)),
        ground_truth_file=str(ground_truth_file(settings)), port=settings.simulator_port,
    )  # fmt: skip
    try:
        stats = runner.run()
        producer.close()
    except DeliveryFailed as exc:
        log.error("events not acknowledged by Kafka; stopping", error=str(exc), events_sent=runner.stats.events)
        return 1
    finally:
        server.shutdown()
    log.info(
        "simulator stopped", events_sent=stats.events, ground_truth_lines=stats.ground_truth_lines,
        simulated_time=stats.simulated_time.isoformat() if stats.simulated_time else None,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
