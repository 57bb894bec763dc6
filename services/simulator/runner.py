"""Runs a Simulation against the wall clock (pantau.simulation.clock): at SIMULATOR_SPEED, and when
following the wall clock never ahead of it (catch up, then live). The warm-up day before the start
goes out at once, so consumers (and the database) have data within seconds; after that every event
leaves when the simulated clock reaches its occurred_at.

Work goes in steps of about FLUSH_EVERY_S wall seconds. A step ends on a boundary between two
simulated moments, is flushed (Kafka acknowledged every event of it), and only then checkpointed
(services.simulator.checkpoint), so a restart neither repeats nor skips events; after a SIGKILL at
most the last unflushed step is sent again, with the same event ids.

Ground truth lines go to the ground truth file as their scenarios begin: a fresh run truncates it, a
resumed run appends the lines the file does not hold yet.

Kafka trouble is never silent: EventProducer raises DeliveryFailed once an event is not
acknowledged within PRODUCER_BUFFER_MAX_SECONDS, and the runner lets it end the service.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import structlog
from prometheus_client import Counter, Gauge

from pantau.contracts import encode_event, kafka_key, now_wib, topic_for
from pantau.kafka import EventProducer
from pantau.simulation import Emission, GroundTruth, SimulatedClock, Simulation
from services.simulator.checkpoint import Checkpoint, CheckpointStore

log = structlog.get_logger(__name__)

SIMULATED_TIME = Gauge(
    "pantau_simulator_simulated_time_seconds",
    "The simulation clock (Unix time up to which every event has been sent).",
)
WALL_CLOCK_LAG = Gauge(
    "pantau_simulator_wall_clock_lag_seconds",
    "Wall clock minus the simulation clock: the backfill still to catch up (about 0 once live; negative "
    "when a fixed-speed run is ahead of the wall clock).",
)
BEHIND = Gauge(
    "pantau_simulator_behind_schedule_seconds",
    "Wall seconds the last event left after its due time (producer slower than SIMULATOR_SPEED asks).",
)
SCENARIOS_STARTED = Counter(
    "pantau_simulator_scenarios_started_total", "Scenarios whose onset the simulation reached.", ["kind"]
)
FLUSH_EVERY_S = 1.0  # one step: flush, then checkpoint
PROGRESS_EVERY_S = 10.0
MIN_WAIT_S = 0.001
REGENERATE_STOP_CHECK = 1000  # items between looks at stop() while regenerating


@dataclass
class RunStats:
    events: int = 0  # sent by this process
    ground_truth_lines: int = 0  # written by this process
    regenerated_events: int = 0  # skipped on resume: sent by an earlier run
    simulated_time: datetime | None = None  # every event up to here has been handed to Kafka


class SimulatorRunner:
    def __init__(
        self,
        simulation: Simulation,
        producer: EventProducer,
        *,
        speed: float,
        follow_wall_clock: bool = False,
        checkpoints: CheckpointStore | None = None,
        scenario_sha256: str | None = None,
        resume_at: datetime | None = None,
        ground_truth_file: Path | None = None,
        topic_names: Mapping[str, str] | None = None,
        wall_clock: Callable[[], float] = time.time,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self.simulation = simulation
        self.producer = producer
        self.speed = speed
        self.follow_wall_clock = follow_wall_clock
        self.checkpoints = checkpoints
        self.scenario_sha256 = scenario_sha256
        self.resume_at = resume_at
        self.ground_truth_file = ground_truth_file
        self.topic_names = dict(topic_names or {})  # tests send to fresh topics
        self.wall_clock = wall_clock
        self.stats = RunStats()
        self.stop_requested = threading.Event()
        # Sleeps up to the given seconds; True when stop() ends the sleep. Tests pass a fake clock's.
        self.wait = wait or self.stop_requested.wait
        self.phase = "starting"
        self._started: set[str] = set()
        self._truth_seen: set[str] = set()
        self._items: Iterator[Emission] | None = None
        self._pending: Emission | None = None
        self._handed: datetime | None = None  # every item up to here handed to the producer
        self._committed: datetime | None = None  # ... and acknowledged and checkpointed
        self._last_commit = 0.0
        self._last_progress = 0.0

    def stop(self) -> None:
        self.stop_requested.set()

    def health(self) -> dict:
        simulated = self.stats.simulated_time
        return {
            "status": "ok",
            "phase": self.phase,  # regenerating | catching_up | live | fixed_speed | stopped
            "events_sent": self.stats.events,
            "simulated_time": simulated.isoformat() if simulated else None,
        }

    # --- the run -----------------------------------------------------------------------------------

    def run(self, until: datetime | None = None) -> RunStats:
        """Send events until `until` (simulated), the end of the simulation, or stop()."""
        truth = self._open_truth()
        try:
            if self._items is None:
                if not self._regenerate(truth):
                    self._items, self._pending = iter(()), None  # stopped half-way: this runner is done
                    return self.stats
                self._items = self.simulation.run()
                self._pending = next(self._items, None)
            clock = SimulatedClock(
                origin_wall=self.wall_clock(),
                origin_sim=self._handed or self.simulation.start,
                speed=self.speed,
                follow_wall_clock=self.follow_wall_clock,
            )
            self._last_commit = self._last_progress = self.wall_clock()
            if not self.follow_wall_clock:
                self.phase = "fixed_speed"
            elif not clock.caught_up(self._last_commit):
                self.phase = "catching_up"
            while True:
                target = clock.simulated(self.wall_clock())
                if until is not None:
                    target = min(target, until)
                finished_step = self._send_due(target, clock, truth)
                if finished_step:
                    self._hand_over(target)  # nothing else is due up to the clock
                self._report(clock)
                out_of_events = self._pending is None or (until is not None and self._pending.occurred_at > until)
                if self.stop_requested.is_set() or out_of_events:
                    self._commit()
                    return self.stats
                if self.wall_clock() - self._last_commit >= FLUSH_EVERY_S:
                    self._commit()
                # Nothing is due before the next item (or the next step); at least a millisecond, as
                # the clock's microsecond rounding can put an item a hair after its due time.
                wait = min(clock.wall_due(self._pending.occurred_at), self._last_commit + FLUSH_EVERY_S)
                if self.wait(max(wait - self.wall_clock(), MIN_WAIT_S)):
                    self._commit()
                    return self.stats
        finally:
            self.phase = "stopped" if self.stop_requested.is_set() else self.phase
            if truth is not None:
                truth.close()

    def _send_due(self, target: datetime, clock: SimulatedClock, truth: IO[str] | None) -> bool:
        """Send every item due by `target`, a whole simulated moment at a time; a step ends (flush and
        checkpoint) on the first moment boundary after FLUSH_EVERY_S. False when stop() cut it short."""
        while self._pending is not None and self._pending.occurred_at <= target:
            moment = self._pending.occurred_at
            BEHIND.set(max(self.wall_clock() - clock.wall_due(moment), 0.0))
            while self._pending is not None and self._pending.occurred_at == moment:
                self._emit(self._pending, truth)
                self._pending = next(self._items, None)
            self._hand_over(moment)
            if self.stop_requested.is_set():
                return False
            if self.wall_clock() - self._last_commit >= FLUSH_EVERY_S:
                self._commit()
        return True

    def _emit(self, item: Emission, truth: IO[str] | None) -> None:
        if isinstance(item, GroundTruth):
            self._scenario_started(item)
            self._write_truth(truth, item)
            return
        event = item.model_copy(update={"produced_at": now_wib()})
        topic = topic_for(event)
        self.producer.send(self.topic_names.get(topic, topic), kafka_key(event), encode_event(event), event.event_type)
        self.stats.events += 1

    def _hand_over(self, reached: datetime) -> None:
        if self._handed is None or reached > self._handed:
            self._handed = reached
            self.stats.simulated_time = reached
            SIMULATED_TIME.set(reached.timestamp())
            WALL_CLOCK_LAG.set(self.wall_clock() - reached.timestamp())

    def _commit(self) -> None:
        """Flush (DeliveryFailed propagates: no checkpoint for events Kafka did not take), then checkpoint."""
        self.producer.flush()
        self._last_commit = self.wall_clock()
        if self._handed is None or self._handed == self._committed:
            return
        if self.checkpoints is not None:
            self.checkpoints.save(
                Checkpoint(self.simulation.seed, self.simulation.start, self.scenario_sha256, self._handed)
            )
        self._committed = self._handed

    # --- resume ------------------------------------------------------------------------------------

    def _regenerate(self, truth: IO[str] | None) -> bool:
        """Run the simulation silently up to the checkpoint (ground truth lines missing from the file
        are written). False when stop() came first."""
        if self.resume_at is None:
            return True
        self.phase = "regenerating"
        began, count = time.monotonic(), 0
        log.info("resuming from checkpoint: regenerating the simulation up to it", reached=self.resume_at.isoformat())
        for item in self.simulation.run(until=self.resume_at):
            if isinstance(item, GroundTruth):
                self._started.add(item.line["scenario"])
                self._write_truth(truth, item)
                continue
            count += 1
            if count % REGENERATE_STOP_CHECK == 0 and self.stop_requested.is_set():
                return False
        self.stats.regenerated_events = count
        self._hand_over(self.resume_at)
        self._committed = self.resume_at
        log.info(
            "resumed: continuing after the checkpoint", reached=self.resume_at.isoformat(),
            events_already_sent=count, regenerated_in_s=round(time.monotonic() - began, 2),
        )  # fmt: skip
        return True

    # --- ground truth ------------------------------------------------------------------------------

    def _open_truth(self) -> IO[str] | None:
        if self.ground_truth_file is None:
            return None
        self.ground_truth_file.parent.mkdir(parents=True, exist_ok=True)
        if self._items is not None or self.resume_at is not None:  # continuing: keep what is there
            if self.ground_truth_file.exists():
                self._truth_seen.update(self.ground_truth_file.read_text(encoding="utf-8").splitlines())
            return self.ground_truth_file.open("a", encoding="utf-8")
        return self.ground_truth_file.open("w", encoding="utf-8")  # a fresh run starts a fresh file

    def _write_truth(self, handle: IO[str] | None, item: GroundTruth) -> None:
        text = json.dumps(item.line, ensure_ascii=False)
        if handle is None or text in self._truth_seen:
            return
        handle.write(text + "\n")
        handle.flush()
        self._truth_seen.add(text)
        self.stats.ground_truth_lines += 1

    def _scenario_started(self, item: GroundTruth) -> None:
        line = item.line
        if line["scenario"] not in self._started:  # one scenario can expect several alerts
            self._started.add(line["scenario"])
            SCENARIOS_STARTED.labels(line["kind"]).inc()
        log.info(
            "scenario started", scenario=line["scenario"], kind=line["kind"],
            expected_alert=line["expected_alert_type"], onset=line["onset"], end=line["end"],
        )  # fmt: skip

    # --- progress ----------------------------------------------------------------------------------

    def _report(self, clock: SimulatedClock) -> None:
        wall = self.wall_clock()
        simulated = self._handed or clock.simulated(wall)
        if not self.follow_wall_clock:
            self.phase = "fixed_speed"
        elif clock.caught_up(wall):
            if self.phase != "live":
                log.info("caught up with the wall clock: simulating live", simulated_time=simulated.isoformat())
            self.phase = "live"
            return
        else:
            self.phase = "catching_up"
        if wall - self._last_progress < PROGRESS_EVERY_S:
            return
        self._last_progress = wall
        fields = {"simulated_time": simulated.isoformat(), "events_sent": self.stats.events}
        if self.follow_wall_clock:
            fields["backfill_done_pct"] = round(100 * clock.catch_up_fraction(wall, self.simulation.start), 1)
            fields["behind_wall_clock"] = str(timedelta(seconds=round(wall - simulated.timestamp())))
            log.info("catching up with the wall clock", **fields)
        else:
            log.info("simulation progress", **fields)
