"""The ingest gateway against the real broker: 202 with ids once Kafka has the events, 422 naming
the field (and the batch item), duplicates not produced twice, 503 while Kafka is away."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from pantau.contracts import HARVEST_TOPIC, PRICE_TOPIC, SHIPMENT_TOPIC, decode_event, kafka_key, schema_validator
from pantau.kafka import BrokerUnavailable, EventProducer
from pantau.settings import REPO_ROOT
from services.gateway.app import create_app
from services.gateway.sender import KafkaSender, RecentIds
from tests.conftest import make_settings
from tests.integration.producers.kafka_helpers import consume_all, fresh_topics

pytestmark = pytest.mark.kafka
EXAMPLES = REPO_ROOT / "contracts" / "examples"
PARTNER = {"X-Partner-Id": "koperasi-tani-maju"}


def example(name: str) -> dict:
    event = json.loads((EXAMPLES / name / "valid" / "basic.json").read_text())
    event["event_id"] = str(uuid.uuid4())
    return event


@pytest.fixture
def gateway(kafka_settings, fresh_topic_name):
    topics = fresh_topics(kafka_settings, fresh_topic_name, HARVEST_TOPIC, SHIPMENT_TOPIC, PRICE_TOPIC)
    app = create_app(kafka_settings, KafkaSender(kafka_settings), topic_names=topics)
    with TestClient(app) as client:
        client.topics = topics
        yield client


def produced(kafka_settings, client, expected: int) -> list:
    return consume_all(kafka_settings, list(client.topics.values()), expected=expected, idle_s=3)


def test_each_partner_event_type_is_accepted_and_produced_on_its_topic(kafka_settings, gateway):
    names = [
        "harvest_reported",
        "shipment_dispatched",
        "shipment_checkpoint_passed",
        "shipment_arrived",
        "price_observed",
    ]
    events = [example(name) for name in names]
    for event in events:
        response = gateway.post("/v1/events", json=event, headers=PARTNER)
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": 1, "event_ids": [event["event_id"]], "duplicates": []}
    records = produced(kafka_settings, gateway, expected=5)
    assert len(records) == 5
    by_id = {json.loads(r.value)["event_id"]: r for r in records}
    validator = schema_validator()
    for sent in events:
        record = by_id[sent["event_id"]]
        raw = json.loads(record.value)
        assert validator.errors(raw) == []
        event = decode_event(record.value)
        assert record.topic == gateway.topics[event.payload.TOPIC]
        assert record.key.decode() == kafka_key(event)
        assert raw["source"] == "gateway:koperasi-tani-maju"
        assert raw["payload"] == sent["payload"] and raw["occurred_at"] == sent["occurred_at"]


def test_resubmitting_an_event_id_does_not_create_a_second_event(kafka_settings, gateway):
    event = example("price_observed")
    first = gateway.post("/v1/events", json=event, headers=PARTNER)
    again = gateway.post("/v1/events", json=event, headers=PARTNER)
    in_batch = gateway.post("/v1/events:batch", json={"events": [event, event]}, headers=PARTNER)
    assert first.status_code == again.status_code == in_batch.status_code == 202
    assert again.json() == {"accepted": 0, "event_ids": [event["event_id"]], "duplicates": [event["event_id"]]}
    assert in_batch.json()["accepted"] == 0 and in_batch.json()["duplicates"] == [event["event_id"]] * 2
    assert len(produced(kafka_settings, gateway, expected=2)) == 1


def test_a_batch_is_produced_whole_and_repeated_ids_inside_it_count_once(kafka_settings, gateway):
    events = [example("shipment_arrived"), example("harvest_reported"), example("price_observed")]
    response = gateway.post("/v1/events:batch", json={"events": [*events, events[0]]}, headers=PARTNER)
    assert response.status_code == 202
    assert response.json()["accepted"] == 3 and response.json()["duplicates"] == [events[0]["event_id"]]
    assert sorted(json.loads(r.value)["event_id"] for r in produced(kafka_settings, gateway, expected=4)) == sorted(
        e["event_id"] for e in events
    )


def invalid(mutate) -> dict:
    event = example("price_observed")
    mutate(event)
    return event


@pytest.mark.parametrize(
    ("event", "loc", "message"),
    [
        (invalid(lambda e: e["payload"].update(price_idr_per_kg=-5)), ["body", "payload", "price_idr_per_kg"], "-5"),
        (invalid(lambda e: e["payload"].pop("market_code")), ["body", "payload"], "'market_code' is a required"),
        (invalid(lambda e: e.update(occurred_at="2026-03-04T08:00:00")), ["body", "occurred_at"], "does not match"),
        (invalid(lambda e: e.update(event_id="not-a-uuid")), ["body", "event_id"], "not-a-uuid"),
        (invalid(lambda e: e.update(event_type="PriceGuessed")), ["body", "event_type"], "PriceGuessed"),
        (json.loads((EXAMPLES / "alert_opened" / "valid" / "basic.json").read_text()), ["body", "event_type"],
         "AlertOpened is not accepted here"),
        ([1, 2], ["body"], "valid dictionary"),
    ],
)  # fmt: skip
def test_invalid_event_gets_422_naming_the_field(kafka_settings, gateway, event, loc, message):
    response = gateway.post("/v1/events", json=event, headers=PARTNER)
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    assert any(p["loc"] == loc and message in p["msg"] for p in problems), problems
    assert produced(kafka_settings, gateway, expected=1) == []


def test_an_invalid_item_refuses_the_whole_batch_naming_the_item(kafka_settings, gateway):
    good, bad = example("price_observed"), invalid(lambda e: e["payload"].update(unit="gallon"))
    response = gateway.post("/v1/events:batch", json={"events": [good, bad]}, headers=PARTNER)
    assert response.status_code == 422
    assert [p["loc"] for p in response.json()["detail"]][0][:4] == ["body", "events", 1, "payload"]
    too_many = gateway.post("/v1/events:batch", json={"events": [good] * 501}, headers=PARTNER)
    assert too_many.status_code == 422 and too_many.json()["detail"][0]["loc"] == ["body", "events"]
    assert produced(kafka_settings, gateway, expected=1) == []
    assert gateway.post("/v1/events:batch", json={"events": [good]}, headers=PARTNER).status_code == 202


def test_partner_must_name_itself(gateway):
    event = example("price_observed")
    missing = gateway.post("/v1/events", json=event)
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["header", "X-Partner-Id"]
    odd = gateway.post("/v1/events", json=event, headers={"X-Partner-Id": "no spaces please"})
    assert odd.status_code == 422
    broken = gateway.post("/v1/events", content=b"{not json", headers={**PARTNER, "Content-Type": "application/json"})
    assert broken.status_code == 422


def test_kafka_away_is_503_and_the_same_event_goes_through_once_it_is_back(kafka_settings, fresh_topic_name):
    topics = fresh_topics(kafka_settings, fresh_topic_name, PRICE_TOPIC)
    calls = []

    def flaky_factory(settings, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise BrokerUnavailable("no Kafka broker at KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092")
        return EventProducer(settings, **kwargs)

    app = create_app(kafka_settings, KafkaSender(kafka_settings, factory=flaky_factory), topic_names=topics)
    event = example("price_observed")
    with TestClient(app) as client:
        down = client.post("/v1/events", json=event, headers=PARTNER)
        assert down.status_code == 503 and down.headers["Retry-After"] == "5"
        assert "nothing is lost by retrying" in down.json()["detail"]
        back = client.post("/v1/events", json=event, headers=PARTNER)
        assert back.status_code == 202 and back.json()["accepted"] == 1  # not mistaken for a duplicate
    assert len(consume_all(kafka_settings, [topics[PRICE_TOPIC]], expected=1, idle_s=3)) == 1


def test_healthz_says_whether_kafka_is_reachable(kafka_settings):
    with TestClient(create_app(kafka_settings)) as client:
        assert client.get("/healthz").json()["status"] == "ok"
    nowhere = make_settings(kafka_bootstrap_servers="127.0.0.1:1")
    with TestClient(create_app(nowhere)) as client:
        response = client.get("/healthz")
        assert response.status_code == 503 and response.json()["status"] == "kafka_unreachable"
        assert client.post("/v1/events", json=example("price_observed"), headers=PARTNER).status_code == 503


def test_recent_ids_forget_the_oldest_and_release_what_kafka_did_not_take():
    recent = RecentIds(capacity=2)
    assert recent.claim(["a", "b"]) == (["a", "b"], [], [])
    assert recent.claim(["a"]) == ([], [], ["a"])  # still being produced by the first request
    recent.accept(["a", "b"])
    assert recent.claim(["a", "c"]) == (["c"], ["a"], [])
    recent.accept(["c"])  # capacity 2: b, the least recently seen, is forgotten
    assert recent.claim(["b"]) == (["b"], [], [])
    recent.release(["b"])
    assert recent.claim(["b"]) == (["b"], [], [])


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_service_serves_docs_metrics_and_health_and_stops_on_sigterm(kafka_settings, tmp_path: Path):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "KAFKA_"))},
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.kafka_bootstrap_servers,
        "GATEWAY_PORT": str(port),
        "LOG_FORMAT": "json",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.gateway"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "gateway did not listen within 30 s"
                time.sleep(0.3)
        assert health.status_code == 200
        assert httpx.get(f"{base}/docs", timeout=5).status_code == 200
        spec = httpx.get(f"{base}/openapi.json", timeout=5).json()
        assert {"/v1/events", "/v1/events:batch"} <= set(spec["paths"])
        bad = httpx.post(f"{base}/v1/events", json=copy.deepcopy({"event_type": "PriceObserved"}), headers=PARTNER)
        assert bad.status_code == 422
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert 'pantau_http_requests_total{method="POST",route="/v1/events",service="gateway",status="422"}' in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    # uvicorn finishes its shutdown, then re-raises the signal it caught: the conventional exit.
    assert process.returncode in (0, -signal.SIGTERM), output[-3000:]
    assert "Application shutdown complete" in output
