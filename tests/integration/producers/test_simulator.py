"""The simulator against the real broker: every message it produces is a valid contract event on
the right topic with the right key, ground truth is written, Kafka trouble ends it loudly, and a
restarted service continues where it stopped (test_simulator_restart.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from pantau.contracts import (
    HARVEST_TOPIC,
    PRICE_TOPIC,
    SHIPMENT_TOPIC,
    WIB,
    decode_event,
    kafka_key,
    now_wib,
    schema_validator,
    topic_specs,
)
from pantau.kafka import DeliveryFailed, EventProducer, ensure_topics
from pantau.reference import load_reference
from pantau.settings import REPO_ROOT
from pantau.simulation import Simulation, parse_scenarios
from services.simulator.checkpoint import Checkpoint, CheckpointStore
from services.simulator.runner import SimulatorRunner
from tests.conftest import make_settings
from tests.integration.producers.kafka_helpers import consume_all, fresh_topics

pytestmark = pytest.mark.kafka
START = datetime(2026, 4, 1, tzinfo=WIB)
SIMULATED_TOPICS = (HARVEST_TOPIC, SHIPMENT_TOPIC, PRICE_TOPIC)


def test_every_simulated_message_is_a_valid_event_on_its_topic_with_its_key(
    kafka_settings, fresh_topic_name, tmp_path: Path
):
    topics = fresh_topics(kafka_settings, fresh_topic_name, HARVEST_TOPIC, SHIPMENT_TOPIC, PRICE_TOPIC)
    scenarios = parse_scenarios(
        {"scenarios": [{"name": "closure", "kind": "ferry_closure", "at": "+3h", "hours": 8}]}, START, load_reference()
    )
    simulation = Simulation(load_reference(), seed=3, start=START, scenarios=scenarios)
    truth_file = tmp_path / "truth.jsonl"
    with EventProducer(kafka_settings, client_id="test-simulator") as producer:
        runner = SimulatorRunner(simulation, producer, speed=1e9, ground_truth_file=truth_file, topic_names=topics)
        stats = runner.run(until=START + timedelta(hours=12))
    assert stats.events > 1000

    records = consume_all(kafka_settings, list(topics.values()), expected=stats.events)
    assert len(records) == stats.events
    validator = schema_validator()
    contract_topic = {fresh: contract for contract, fresh in topics.items()}
    counts, delayed = Counter(), 0
    for record in records:
        raw = json.loads(record.value)
        assert validator.errors(raw) == [], raw
        event = decode_event(record.value)
        assert contract_topic[record.topic] == event.payload.TOPIC
        assert record.key.decode() == kafka_key(event)
        assert event.source == "simulator" and raw["occurred_at"].endswith("+07:00")
        counts[event.event_type] += 1
        if event.event_type == "ShipmentCheckpointPassed" and event.payload.checkpoint_code == "bakauheni_port":
            if START + timedelta(hours=3) <= event.occurred_at < START + timedelta(hours=11):
                delayed += event.payload.eta - event.payload.planned_at > timedelta(hours=5)
    assert set(counts) == {
        "HarvestReported", "ShipmentDispatched", "ShipmentCheckpointPassed", "ShipmentArrived", "PriceObserved",
    }  # fmt: skip
    assert delayed > 30  # trucks held at Bakauheni by the closure, visible in the stream

    lines = [json.loads(line) for line in truth_file.read_text().splitlines()]
    assert [(line["scenario"], line["kind"], line["expected_alert_type"]) for line in lines] == [
        ("closure", "ferry_closure", "route_disruption")  # eight hours: no supply gap expected
    ]
    assert lines[0]["onset"] == "2026-04-01T03:00:00+07:00" and lines[0]["end"] == "2026-04-01T11:00:00+07:00"


def test_a_topic_kafka_cannot_take_stops_the_simulator_with_the_reason(kafka_settings, fresh_topic_name):
    settings = make_settings(
        kafka_bootstrap_servers=kafka_settings.kafka_bootstrap_servers, producer_buffer_max_seconds=3
    )
    missing = fresh_topic_name()  # never created; the broker does not auto-create topics
    simulation = Simulation(load_reference(), seed=1, start=START)
    # request_timeout_ms below the 3 s buffer: kafka-python wants delivery > linger + request timeout
    producer = EventProducer(settings, client_id="test-simulator", request_timeout_ms=2000)
    runner = SimulatorRunner(simulation, producer, speed=1e9, topic_names={PRICE_TOPIC: missing})
    with pytest.raises(DeliveryFailed, match=missing):
        runner.run(until=START)
    producer.close(timeout_s=1)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_contract_topics(settings) -> None:
    """The service produces to the contract topics (shared on the test broker; tests tell their events
    apart by seed and simulated period)."""
    ensure_topics(settings, [s for s in topic_specs() if s.name in SIMULATED_TOPICS])


class SimulatorProcess:
    """`python -m services.simulator` as a real process, configured by environment variables only."""

    def __init__(self, kafka_settings, *, port: int, seed: int, state_dir: Path, **variables: str) -> None:
        self.state_dir = state_dir
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SIMULATOR_", "KAFKA_", "LOCAL_"))},
            "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.kafka_bootstrap_servers,
            "SIMULATOR_PORT": str(port),
            "SIMULATOR_SEED": str(seed),
            "SIMULATOR_STATE_DIR": str(state_dir),
            "LOG_FORMAT": "json",
            **variables,
        }
        self.log = state_dir.parent / f"simulator-{time.monotonic_ns()}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.simulator"], cwd=REPO_ROOT, env=env,
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    def checkpoint(self) -> Checkpoint | None:
        return CheckpointStore(self.state_dir).load()[0]

    def wait_for_checkpoint(self, reached: datetime, timeout_s: float = 60) -> Checkpoint:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            checkpoint = self.checkpoint()
            if checkpoint is not None and checkpoint.reached >= reached:
                return checkpoint
            if self.process.poll() is not None:
                pytest.fail(f"the simulator exited ({self.process.returncode}):\n{self.output()[-3000:]}")
            time.sleep(0.2)
        pytest.fail(f"no checkpoint at {reached.isoformat()} within {timeout_s:.0f}s:\n{self.output()[-3000:]}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> str:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        return self.output()

    @property
    def returncode(self) -> int | None:
        return self.process.returncode


def test_service_starts_two_weeks_back_streams_at_once_serves_metrics_and_stops_on_sigterm(kafka_settings, tmp_path):
    from kafka import KafkaConsumer, TopicPartition

    ensure_contract_topics(kafka_settings)
    consumer = KafkaConsumer(bootstrap_servers=kafka_settings.kafka_bootstrap_servers, group_id=None)
    partitions = [TopicPartition(PRICE_TOPIC, p) for p in consumer.partitions_for_topic(PRICE_TOPIC)]
    consumer.assign(partitions)
    consumer.seek_to_end()

    port, state = free_port(), tmp_path / "state"
    # Nothing but the port, the seed and the state dir: the defaults `make run` uses.
    service = SimulatorProcess(kafka_settings, port=port, seed=11, state_dir=state)
    midnight_two_weeks_ago = datetime.combine(now_wib().date() - timedelta(days=14), datetime.min.time(), WIB)
    try:
        deadline, prices = time.monotonic() + 30, []
        while time.monotonic() < deadline and len(prices) < 50:
            for records in consumer.poll(timeout_ms=500).values():
                prices += [decode_event(r.value) for r in records if json.loads(r.value)["source"] == "simulator"]
        assert len(prices) >= 50, "no simulated prices within 30 s of the start"
        ours = [p for p in prices if p.occurred_at < midnight_two_weeks_ago]
        assert ours, "the warm-up day before the start goes out at once"
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert health.json()["phase"] == "catching_up"
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'pantau_events_produced_total{event_type="PriceObserved",topic="pangan.price.v1"}' in metrics
        assert "pantau_simulator_simulated_time_seconds" in metrics
        lag = float(re.search(r"^pantau_simulator_wall_clock_lag_seconds (\S+)$", metrics, re.M).group(1))
        # two weeks to catch up: simulated time is still near the start (the warm-up day before it
        # goes out first), however late in the day the test runs
        since_start = (now_wib() - midnight_two_weeks_ago).total_seconds()
        assert since_start - 12 * 3600 < lag <= since_start + 86400, (lag, since_start)

        truth = state / "ground_truth.jsonl"  # default: in the state dir, from scenarios/demo.yaml
        assert "demo_jatinegara_rice_jump" in truth.read_text()  # onset in the warm-up day
        deadline = time.monotonic() + 30  # the closure at "+1h" is 6 s of wall time at speed 600
        while "demo_bakauheni_closure" not in truth.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "demo_bakauheni_closure" in truth.read_text()
        checkpoint = service.checkpoint()
        assert checkpoint is not None and checkpoint.start == midnight_two_weeks_ago and checkpoint.seed == 11
        assert checkpoint.reached > midnight_two_weeks_ago + timedelta(hours=1)
    finally:
        output = service.stop()
        consumer.close()
    assert service.returncode == 0, output[-3000:]
    assert f'"start": "{midnight_two_weeks_ago.isoformat()}"' in output
    assert "simulator stopped" in output
