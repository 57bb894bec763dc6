"""The simulator against the real broker: every message it produces is a valid contract event on
the right topic with the right key, ground truth is written, and Kafka trouble ends it loudly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from pantau.contracts import HARVEST_TOPIC, PRICE_TOPIC, SHIPMENT_TOPIC, WIB, decode_event, kafka_key, schema_validator
from pantau.kafka import DeliveryFailed, EventProducer
from pantau.reference import load_reference
from pantau.settings import REPO_ROOT
from pantau.simulation import Simulation, parse_scenarios
from services.simulator.runner import SimulatorRunner
from tests.conftest import make_settings
from tests.integration.producers.kafka_helpers import consume_all, fresh_topics

pytestmark = pytest.mark.kafka
START = datetime(2026, 4, 1, tzinfo=WIB)


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


def test_service_streams_from_the_first_seconds_serves_metrics_and_stops_on_sigterm(kafka_settings, tmp_path):
    from kafka import KafkaConsumer, TopicPartition

    from pantau.contracts import topic_specs
    from pantau.kafka import ensure_topics

    ensure_topics(kafka_settings, [s for s in topic_specs() if s.name in (HARVEST_TOPIC, SHIPMENT_TOPIC, PRICE_TOPIC)])
    consumer = KafkaConsumer(bootstrap_servers=kafka_settings.kafka_bootstrap_servers, group_id=None)
    partitions = [TopicPartition(PRICE_TOPIC, p) for p in consumer.partitions_for_topic(PRICE_TOPIC)]
    consumer.assign(partitions)
    consumer.seek_to_end()
    begin = {tp: consumer.position(tp) for tp in partitions}

    port, truth = free_port(), tmp_path / "truth.jsonl"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SIMULATOR_", "KAFKA_"))},
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.kafka_bootstrap_servers,
        "SIMULATOR_PORT": str(port),
        "SIMULATOR_SEED": "11",
        "SIMULATOR_SCENARIO_FILE": str(REPO_ROOT / "scenarios" / "demo.yaml"),
        "SIMULATOR_GROUND_TRUTH_FILE": str(truth),
        "LOG_FORMAT": "json",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.simulator"], cwd=REPO_ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline, prices = time.monotonic() + 30, []
        while time.monotonic() < deadline and len(prices) < 50:
            for records in consumer.poll(timeout_ms=500).values():
                prices += [r for r in records if json.loads(r.value)["source"] == "simulator"]
        assert len(prices) >= 50, "no simulated prices within 30 s of the start"
        assert all(consumer.position(tp) >= begin[tp] for tp in partitions)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'pantau_events_produced_total{event_type="PriceObserved",topic="pangan.price.v1"}' in metrics
        assert "pantau_simulator_simulated_time_seconds" in metrics
        assert "demo_jatinegara_rice_jump" in truth.read_text()  # onset in the warm-up day
        deadline = time.monotonic() + 30  # the closure at "+1h" is 6 s of wall time at speed 600
        while "demo_bakauheni_closure" not in truth.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "demo_bakauheni_closure" in truth.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
        consumer.close()
    assert process.returncode == 0, output[-3000:]
    assert "simulator stopped" in output
