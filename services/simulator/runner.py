"""Runs a Simulation against the wall clock: SIMULATOR_SPEED simulated seconds per wall second,
from SIMULATOR_START. The warm-up day before the start goes out at once, so consumers (and the
database) have data within seconds; after that every event leaves when the simulated clock reaches
its occurred_at. Ground truth lines go to SIMULATOR_GROUND_TRUTH_FILE as their scenarios begin.

Kafka trouble is never silent: EventProducer raises DeliveryFailed once an event is not
acknowledged within PRODUCER_BUFFER_MAX_SECONDS, and the runner lets it end the service.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

import structlog
from prometheus_client import Counter, Gauge

from pantau.contracts import encode_event, kafka_key, now_wib, topic_for
from pantau.kafka import EventProducer
from pantau.simulation import GroundTruth, Simulation

log = structlog.get_logger(__name__)

SIMULATED_TIME = Gauge(
    "pantau_simulator_simulated_time_seconds", "The simulation clock (Unix time of the last event sent)."
)
BEHIND = Gauge(
    "pantau_simulator_behind_schedule_seconds",
    "Wall seconds the last event left after its due time (producer slower than SIMULATOR_SPEED asks).",
)
SCENARIOS_STARTED = Counter(
    "pantau_simulator_scenarios_started_total", "Scenarios whose onset the simulation reached.", ["kind"]
)
FLUSH_EVERY_S = 1.0


@dataclass
class RunStats:
    events: int = 0
    ground_truth_lines: int = 0
    simulated_time: datetime | None = None
    started: float = field(default_factory=time.monotonic)


class SimulatorRunner:
    def __init__(
        self,
        simulation: Simulation,
        producer: EventProducer,
        *,
        speed: float,
        ground_truth_file: Path | None = None,
        topic_names: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.simulation = simulation
        self.producer = producer
        self.speed = speed
        self.ground_truth_file = ground_truth_file
        self.topic_names = dict(topic_names or {})  # tests send to fresh topics
        self.clock = clock
        self.stats = RunStats()
        self.stop_requested = threading.Event()
        self._started: set[str] = set()

    def stop(self) -> None:
        self.stop_requested.set()

    def health(self) -> dict:
        simulated = self.stats.simulated_time
        return {
            "status": "ok",
            "events_sent": self.stats.events,
            "simulated_time": simulated.isoformat() if simulated else None,
        }

    def run(self, until: datetime | None = None) -> RunStats:
        """Send events until `until` (simulated), the end of the simulation, or stop()."""
        origin_wall = self.clock()
        origin_sim = self.simulation.start
        last_flush = origin_wall
        truth: IO[str] | None = None
        if self.ground_truth_file is not None:
            self.ground_truth_file.parent.mkdir(parents=True, exist_ok=True)
            truth = self.ground_truth_file.open("w", encoding="utf-8")  # a new run replays from the start
        try:
            for item in self.simulation.run(until=until):
                due = origin_wall + (item.occurred_at - origin_sim).total_seconds() / self.speed
                while (wait := due - self.clock()) > 0:
                    if self.stop_requested.wait(min(wait, FLUSH_EVERY_S)):
                        return self.stats
                    self.producer.flush()
                    last_flush = self.clock()
                if self.stop_requested.is_set():
                    return self.stats
                BEHIND.set(max(self.clock() - due, 0.0))
                if isinstance(item, GroundTruth):
                    self._write_truth(truth, item)
                    continue
                event = item.model_copy(update={"produced_at": now_wib()})
                topic = topic_for(event)
                self.producer.send(
                    self.topic_names.get(topic, topic), kafka_key(event), encode_event(event), event.event_type
                )
                self.stats.events += 1
                self.stats.simulated_time = item.occurred_at
                SIMULATED_TIME.set(item.occurred_at.timestamp())
                if self.clock() - last_flush >= FLUSH_EVERY_S:
                    self.producer.flush()  # surfaces a failed delivery within a second of it
                    last_flush = self.clock()
            return self.stats
        finally:
            if truth is not None:
                truth.close()

    def _write_truth(self, handle: IO[str] | None, item: GroundTruth) -> None:
        line = item.line
        if line["scenario"] not in self._started:  # one scenario can expect several alerts
            self._started.add(line["scenario"])
            SCENARIOS_STARTED.labels(line["kind"]).inc()
        log.info(
            "scenario started", scenario=line["scenario"], kind=line["kind"],
            expected_alert=line["expected_alert_type"], onset=line["onset"], end=line["end"],
        )  # fmt: skip
        if handle is not None:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
            handle.flush()
        self.stats.ground_truth_lines += 1
