"""The simulator's runner with a fake Kafka and a fake wall clock: steps are checkpointed only after
Kafka acknowledged them, a restart continues where the checkpoint is (no duplicate, no gap), a crash
re-sends at most the unacknowledged step with the same event ids, and a run that follows the wall
clock catches up and then stays live."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pantau.contracts import WIB
from pantau.kafka import DeliveryFailed
from pantau.reference import load_reference
from pantau.simulation import GroundTruth, Simulation, parse_scenarios
from services.simulator.checkpoint import CheckpointStore, plan_run
from services.simulator.runner import SimulatorRunner

START = datetime(2026, 4, 1, tzinfo=WIB)
END = START + timedelta(hours=12)
SEED = 5


class Crashed(Exception):
    """The process died (SIGKILL): nothing after this point happens."""


class FakeWall:
    """A wall clock that moves a little on every reading and jumps through every wait."""

    def __init__(self, now: float = 1_800_000_000.0, tick: float = 0.002) -> None:
        self.now, self.tick = now, tick
        self.stop_at: float | None = None
        self.runner: SimulatorRunner | None = None

    def __call__(self) -> float:
        self.now += self.tick
        return self.now

    def wait(self, seconds: float) -> bool:
        self.now += seconds
        if self.stop_at is not None and self.now >= self.stop_at:
            self.runner.stop()
            return True
        return False


class FakeKafka:
    """Takes every event (the worst case for duplicates: whatever was sent arrived); flush acknowledges
    them unless told to fail. `on_send(n)` runs after the n-th event."""

    def __init__(self, wall: FakeWall | None = None) -> None:
        self.sent: list[dict] = []
        self.sent_at: list[float] = []
        self.acknowledged = 0
        self.fail_flush = False
        self.on_send = lambda count: None
        self.wall = wall

    def send(self, topic: str, key: str, value: bytes, event_type: str) -> None:
        self.sent.append(json.loads(value))
        if self.wall is not None:
            self.sent_at.append(self.wall.now)
        self.on_send(len(self.sent))

    def flush(self) -> None:
        if self.fail_flush:
            raise DeliveryFailed("3 event(s) were not acknowledged by Kafka (fake)")
        self.acknowledged = len(self.sent)


def closures():
    return parse_scenarios(
        {
            "scenarios": [
                {"name": "early_closure", "kind": "ferry_closure", "at": "+2h", "hours": 3},
                {"name": "late_closure", "kind": "ferry_closure", "at": "+9h", "hours": 2},
            ]
        },
        START,
        load_reference(),
    )


def new_runner(kafka, wall, state: Path, resume_at=None, scenarios=(), truth: Path | None = None, **options):
    simulation = Simulation(load_reference(), seed=SEED, start=START, scenarios=scenarios)
    runner = SimulatorRunner(
        simulation, kafka, speed=options.pop("speed", 1e9), checkpoints=CheckpointStore(state), resume_at=resume_at,
        ground_truth_file=truth, wall_clock=wall, wait=wall.wait, **options,
    )  # fmt: skip
    wall.runner = runner
    return runner


def resume_at(state: Path):
    stored, problem = CheckpointStore(state).load()
    assert problem is None and stored is not None
    plan = plan_run(seed=SEED, scenario_digest=None, explicit_start=START, default_start=START, stored=stored)
    assert plan.ignored_because is None
    return plan.resume_at


def uninterrupted(until: datetime = END, scenarios=()) -> list[dict]:
    """What one uninterrupted run sends (produced_at aside)."""
    simulation = Simulation(load_reference(), seed=SEED, start=START, scenarios=scenarios)
    return [json.loads(e.model_dump_json(exclude={"produced_at"})) for e in simulation.run(until=until)
            if not isinstance(e, GroundTruth)]  # fmt: skip


def comparable(events: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "produced_at"} for e in events]


@pytest.fixture(scope="module")
def reference_run() -> list[dict]:
    return uninterrupted()


def mid_moment_positions(events: list[dict], count: int) -> list[int]:
    """Numbers of sent events after which the next event has the same occurred_at (a stop there must
    not split the moment), spread over the run."""
    same = [i + 1 for i in range(len(events) - 1) if events[i]["occurred_at"] == events[i + 1]["occurred_at"]]
    return [same[k * len(same) // count] for k in range(1, count)]


def test_a_stopped_run_resumes_after_its_checkpoint_with_no_duplicate_and_no_gap(tmp_path, reference_run):
    for stop_after in [*mid_moment_positions(reference_run, 4), 1]:
        state = tmp_path / f"stop-{stop_after}"
        wall, kafka = FakeWall(), FakeKafka()
        first = new_runner(kafka, wall, state)
        kafka.on_send = lambda n, runner=first, at=stop_after: runner.stop() if n == at else None  # SIGTERM
        first.run(until=END)
        assert len(kafka.sent) >= stop_after
        sent_by_first = len(kafka.sent)

        second = new_runner(kafka, FakeWall(), state, resume_at=resume_at(state))
        second.run(until=END)
        assert second.stats.regenerated_events == sent_by_first
        assert comparable(kafka.sent) == reference_run, f"stopped after {stop_after} events"


def test_a_crash_resends_only_the_unacknowledged_step_with_the_same_event_ids(tmp_path, reference_run):
    wall, kafka = FakeWall(), FakeKafka()
    crash_after = len(reference_run) // 2
    first = new_runner(kafka, wall, tmp_path)

    def crash(count: int) -> None:
        if count == crash_after:
            raise Crashed

    kafka.on_send = crash
    with pytest.raises(Crashed):
        first.run(until=END)
    checkpointed = resume_at(tmp_path)
    acknowledged = kafka.acknowledged
    assert 0 < acknowledged < crash_after  # steps were checkpointed before the crash

    kafka.on_send = lambda count: None
    second = new_runner(kafka, FakeWall(), tmp_path, resume_at=checkpointed)
    second.run(until=END)

    ids = Counter(e["event_id"] for e in kafka.sent)
    assert set(ids) == {e["event_id"] for e in reference_run}  # nothing missing, nothing foreign
    repeated = [e for e in comparable(kafka.sent) if ids[e["event_id"]] > 1]
    assert repeated, "the crash came between two checkpoints: some events must be sent again"
    assert all(count == 2 for count in ids.values() if count > 1)
    # Only events of the step after the checkpoint come twice, and identical both times.
    assert all(datetime.fromisoformat(e["occurred_at"]) > checkpointed for e in repeated)
    assert len(repeated) == 2 * (crash_after - acknowledged)
    by_id = {}
    for event in repeated:
        assert by_id.setdefault(event["event_id"], event) == event


def test_no_checkpoint_covers_events_kafka_did_not_acknowledge(tmp_path):
    wall, kafka = FakeWall(), FakeKafka()
    runner = new_runner(kafka, wall, tmp_path)
    kafka.on_send = lambda count: setattr(kafka, "fail_flush", count >= 900)
    with pytest.raises(DeliveryFailed):
        runner.run(until=END)
    reached = resume_at(tmp_path)
    acknowledged = kafka.sent[: kafka.acknowledged]
    assert all(datetime.fromisoformat(e["occurred_at"]) <= reached for e in acknowledged)
    unacknowledged = kafka.sent[kafka.acknowledged :]
    assert unacknowledged and all(datetime.fromisoformat(e["occurred_at"]) > reached for e in unacknowledged)


def truth_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_ground_truth_is_appended_on_resume_without_duplicate_lines(tmp_path):
    whole = tmp_path / "whole.jsonl"
    new_runner(FakeKafka(), FakeWall(), tmp_path / "whole", scenarios=closures(), truth=whole).run(until=END)
    assert [json.loads(line)["scenario"] for line in truth_lines(whole)] == ["early_closure", "late_closure"]

    truth, state, kafka = tmp_path / "truth.jsonl", tmp_path / "state", FakeKafka()
    truth.write_text("a line of an older run\n")
    first = new_runner(kafka, FakeWall(), state, scenarios=closures(), truth=truth)
    first.run(until=START + timedelta(hours=6))
    assert truth_lines(truth) == truth_lines(whole)[:1]  # a fresh run starts a fresh file

    # Crash after the late closure's line was written but before its step was checkpointed.
    wall = FakeWall()
    crashing = new_runner(kafka, wall, state, resume_at=resume_at(state), scenarios=closures(), truth=truth)

    def crash_after_the_late_closure(count: int) -> None:
        if "late_closure" in truth.read_text():
            raise Crashed

    kafka.on_send = crash_after_the_late_closure
    with pytest.raises(Crashed):
        crashing.run(until=END)
    assert resume_at(state) < START + timedelta(hours=9) <= datetime.fromisoformat(kafka.sent[-1]["occurred_at"])

    kafka.on_send = lambda count: None
    last = new_runner(kafka, FakeWall(), state, resume_at=resume_at(state), scenarios=closures(), truth=truth)
    last.run(until=END)
    assert truth_lines(truth) == truth_lines(whole)


def test_a_resumed_run_writes_the_ground_truth_a_new_file_lacks(tmp_path):
    state = tmp_path / "state"
    new_runner(FakeKafka(), FakeWall(), state, scenarios=closures()).run(until=START + timedelta(hours=10))
    truth = tmp_path / "elsewhere.jsonl"
    new_runner(FakeKafka(), FakeWall(), state, resume_at=resume_at(state), scenarios=closures(), truth=truth).run(
        until=END
    )
    assert [json.loads(line)["scenario"] for line in truth_lines(truth)] == ["early_closure", "late_closure"]


def test_a_run_that_follows_the_wall_clock_catches_up_then_sends_each_event_at_its_time(tmp_path):
    now = datetime(2026, 4, 3, 13, 20, tzinfo=WIB).timestamp()  # two days and 13 h after START
    wall = FakeWall(now=now, tick=0.0)
    kafka = FakeKafka(wall)
    runner = new_runner(kafka, wall, tmp_path, speed=600.0, follow_wall_clock=True)
    caught_up = now + (now - START.timestamp()) / 599  # 600 simulated seconds a second, the wall clock's 1
    wall.stop_at = caught_up + 3600  # then an hour live
    runner.run()
    assert runner.phase == "stopped"

    sends = [
        (datetime.fromisoformat(e["occurred_at"]).timestamp(), sent)
        for e, sent in zip(kafka.sent, kafka.sent_at, strict=True)
    ]
    assert all(at <= sent for at, sent in sends)  # never an event from the future
    warm_up = [sent for at, sent in sends if at < START.timestamp()]
    backfill = [(at, sent) for at, sent in sends if START.timestamp() <= at and sent < caught_up]
    live = [(at, sent) for at, sent in sends if at > caught_up + 1]
    assert len(warm_up) > 500 and set(warm_up) == {now}  # the day before the start goes out at once
    assert len(backfill) > 3000  # 2.5 days in 6 minutes, each event at its time at 600x
    assert all(abs(sent - (now + (at - START.timestamp()) / 600)) < 1e-3 for at, sent in backfill)
    assert len(live) > 20  # then each event at its own time
    assert all(sent - at < 1e-3 for at, sent in live)
    assert max(at for at, _ in live) > caught_up + 3000
    reached = resume_at(tmp_path)
    assert wall.now - 1.5 <= reached.timestamp() <= wall.now  # checkpointed within a step of the end
