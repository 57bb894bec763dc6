"""A restarted simulator service continues where it stopped, on the real broker: after SIGTERM no event
is sent twice and none is missing; after SIGKILL only events of the last unacknowledged step come
again, with the same event ids (the at-least-once bound). The reference is what one uninterrupted
run of the same seed sends over the same simulated span (the deterministic simulation itself)."""

from __future__ import annotations

import json
import random
import signal
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from pantau.contracts import WIB
from pantau.reference import load_reference
from pantau.simulation import GroundTruth, Simulation, load_scenarios
from tests.integration.producers.test_simulator import (
    SIMULATED_TOPICS,
    SimulatorProcess,
    ensure_contract_topics,
    free_port,
)

pytestmark = pytest.mark.kafka
SPEED = "7200"  # a simulated hour in half a second
SCENARIOS = """
scenarios:
  - {name: closure_before_the_stop, kind: ferry_closure, at: "+3h", hours: 4}
  - {name: closure_after_the_stop, kind: ferry_closure, at: "+14h", hours: 3}
"""


def end_offsets(settings) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None)
    try:
        partitions = [TopicPartition(t, p) for t in SIMULATED_TOPICS for p in consumer.partitions_for_topic(t)]
        return consumer.end_offsets(partitions)
    finally:
        consumer.close()


def events_since(settings, begin: dict[TopicPartition, int], start: datetime) -> list[dict]:
    """Every simulator event written since `begin` whose time lies around `start` (this test's period:
    far from what other tests on the shared topics simulate)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None)
    try:
        consumer.assign(list(begin))
        for partition, offset in begin.items():
            consumer.seek(partition, offset)
        end = consumer.end_offsets(list(begin))
        records = []
        while any(consumer.position(tp) < end[tp] for tp in begin):
            for batch in consumer.poll(timeout_ms=1000, max_records=5000).values():
                records.extend(batch)
    finally:
        consumer.close()
    window = (start - timedelta(days=2), start + timedelta(days=10))
    events = [json.loads(r.value) for r in records]
    return [
        e for e in events
        if e["source"] == "simulator" and window[0] <= datetime.fromisoformat(e["occurred_at"]) < window[1]
    ]  # fmt: skip


def uninterrupted(seed: int, start: datetime, scenario_file: Path, until: datetime) -> tuple[list[dict], list[str]]:
    """Events (produced_at aside) and ground truth lines of one uninterrupted run up to `until`."""
    reference = load_reference()
    scenarios = load_scenarios(scenario_file, start, reference)
    simulation = Simulation(reference, seed=seed, start=start, scenarios=scenarios)
    events, truth = [], []
    for item in simulation.run(until=until):
        if isinstance(item, GroundTruth):
            truth.append(json.dumps(item.line, ensure_ascii=False))
        else:
            events.append(json.loads(item.model_dump_json(exclude={"produced_at"})))
    return events, truth


def without_produced_at(event: dict) -> dict:
    return {k: v for k, v in event.items() if k != "produced_at"}


def run_stopped_and_restarted(kafka_settings, tmp_path: Path, start: datetime, stop_signal: int):
    """First run until 8 h are checkpointed, stopped with `stop_signal`; second run until 20 h, SIGTERM.
    Returns what Kafka holds, the reference run, the checkpoint at the stop and the second run's log."""
    ensure_contract_topics(kafka_settings)
    begin = end_offsets(kafka_settings)
    seed = random.randrange(1, 2**31)
    scenario_file, state = tmp_path / "scenarios.yaml", tmp_path / "state"
    scenario_file.write_text(SCENARIOS)
    variables = {
        "SIMULATOR_START": start.isoformat(),  # a fixed start: runs at SIMULATOR_SPEED
        "SIMULATOR_SPEED": SPEED,
        "SIMULATOR_SCENARIO_FILE": str(scenario_file),
    }

    first = SimulatorProcess(kafka_settings, port=free_port(), seed=seed, state_dir=state, **variables)
    try:
        first.wait_for_checkpoint(start + timedelta(hours=8))
    finally:
        first.stop(stop_signal)
    at_stop = first.checkpoint()
    assert at_stop is not None and at_stop.reached < start + timedelta(hours=14)

    second = SimulatorProcess(kafka_settings, port=free_port(), seed=seed, state_dir=state, **variables)
    try:
        second.wait_for_checkpoint(start + timedelta(hours=20))
    finally:
        log = second.stop()
    assert second.returncode == 0, log[-3000:]
    final = second.checkpoint()
    expected, expected_truth = uninterrupted(seed, start, scenario_file, final.reached)
    sent = events_since(kafka_settings, begin, start)
    truth = (state / "ground_truth.jsonl").read_text(encoding="utf-8").splitlines()
    return sent, expected, truth, expected_truth, at_stop, log


def test_after_sigterm_a_restarted_simulator_sends_every_event_exactly_once(kafka_settings, tmp_path):
    start = datetime(2071, 5, 3, tzinfo=WIB)
    sent, expected, truth, expected_truth, at_stop, log = run_stopped_and_restarted(
        kafka_settings, tmp_path, start, signal.SIGTERM
    )
    assert "resumed: continuing after the checkpoint" in log
    assert len(expected) > 1500
    ids = Counter(e["event_id"] for e in sent)
    assert [event_id for event_id, count in ids.items() if count > 1] == []
    assert set(ids) == {e["event_id"] for e in expected}  # nothing missing, nothing extra
    by_id = {e["event_id"]: without_produced_at(e) for e in sent}
    assert [by_id[e["event_id"]] for e in expected] == expected  # the same events, not only the same ids
    assert truth == expected_truth  # both closures' lines, once each
    assert len(truth) == 2


def test_after_sigkill_only_the_unacknowledged_step_is_sent_again_with_the_same_ids(kafka_settings, tmp_path):
    start = datetime(2072, 8, 10, tzinfo=WIB)
    sent, expected, truth, expected_truth, at_stop, _ = run_stopped_and_restarted(
        kafka_settings, tmp_path, start, signal.SIGKILL
    )
    ids = Counter(e["event_id"] for e in sent)
    assert set(ids) == {e["event_id"] for e in expected}  # nothing missing, nothing foreign
    repeated = [without_produced_at(e) for e in sent if ids[e["event_id"]] > 1]
    assert all(count <= 2 for count in ids.values())
    # Repeats come only from after the checkpoint the killed run left, within about one step
    # (FLUSH_EVERY_S = 1 s of wall time, 2 simulated hours at 7200x), and they are the same events.
    assert all(at_stop.reached < datetime.fromisoformat(e["occurred_at"]) for e in repeated)
    assert all(datetime.fromisoformat(e["occurred_at"]) <= at_stop.reached + timedelta(hours=3) for e in repeated)
    first_copy: dict[str, dict] = {}
    for event in repeated:
        assert first_copy.setdefault(event["event_id"], event) == event
    assert truth == expected_truth
