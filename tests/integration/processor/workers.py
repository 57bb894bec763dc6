"""Real processor workers (`python -m services.processor` subprocesses) on the real broker, each test
with its own topic prefix and consumer group, and helpers to feed and read the topics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaConsumer

from pantau.contracts import (
    ALERT_TOPIC,
    DEADLETTER_TOPIC,
    HARVEST_TOPIC,
    PRICE_TOPIC,
    SHIPMENT_TOPIC,
    decode_event,
    encode_event,
    kafka_key,
    topic_spec,
)
from pantau.kafka import EventProducer, ensure_topics
from pantau.settings import REPO_ROOT, Settings
from services.processor.bundles import unpack

CONTRACT_TOPICS = (PRICE_TOPIC, SHIPMENT_TOPIC, HARVEST_TOPIC, ALERT_TOPIC, DEADLETTER_TOPIC)


@dataclass
class _Topic:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=lambda: {"retention.ms": "86400000"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ProcessorEnv:
    """One test's world: a topic prefix, an app id (consumer group), the broker."""

    settings: Settings
    prefix: str
    app_id: str
    log_dir: Path
    workers: list[Worker] = field(default_factory=list)

    @classmethod
    def fresh(cls, settings: Settings, log_dir: Path) -> ProcessorEnv:
        token = uuid.uuid4().hex[:12]
        env = cls(settings, f"t{token}.", f"test-processor-{token}", log_dir)
        ensure_topics(settings, [_Topic(env.topic(t), topic_spec(t).partitions) for t in CONTRACT_TOPICS])
        return env

    def topic(self, contract_topic: str) -> str:
        return self.prefix + contract_topic

    def produce(self, events: Iterable[Any], key: Callable[[Any], str] | None = None) -> int:
        """Send contract events to their (prefixed) topics with their contract keys; waits for acks."""
        count = 0
        with EventProducer(self.settings, client_id="test-processor-feed") as producer:
            for event in events:
                producer.send(self.topic(event.payload.TOPIC), (key or kafka_key)(event), encode_event(event),
                              event.event_type)  # fmt: skip
                count += 1
        return count

    def produce_raw(self, records: Iterable[tuple[str, str | None, bytes]]) -> int:
        """Send (contract topic, key, value bytes) records as they are, valid or not; waits for acks."""
        count = 0
        with EventProducer(self.settings, client_id="test-processor-feed") as producer:
            for contract_topic, key, value in records:
                producer.send(self.topic(contract_topic), key or "", value, "raw")
                count += 1
        return count

    def read_raw(
        self,
        topic: str,
        until: Callable[[list[Any]], bool] = lambda records: False,
        timeout_s: float = 60.0,
        settle_s: float = 0.0,
    ) -> list[Any]:
        """Records of any topic (full name) as a read_committed consumer sees them; see `read`."""
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            isolation_level="read_committed",
        )
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        settle_until = None
        try:
            while time.monotonic() < (settle_until or deadline):
                for batch in consumer.poll(timeout_ms=300, max_records=5000).values():
                    records.extend(batch)
                if settle_until is None and until(records):
                    settle_until = time.monotonic() + settle_s
        finally:
            consumer.close()
        return records

    def read_forwarded(
        self, stream: str, until: Callable[[list[dict[str, Any]]], bool] = lambda items: False, **kwargs: Any
    ) -> list[dict[str, Any]]:
        """The items (JSON objects) the worker forwarded to its repartition topic `stream` (for
        example "price-by-commodity"), taken out of their bundles (a record that cannot be taken apart
        is left out: tests write such); see `read_raw`."""
        def items_of(records: list[Any]) -> list[dict[str, Any]]:
            items = (item for record in records for item in unpack(record, lambda value: value))
            return [item.body for item in items if item.error is None]

        records = self.read_raw(f"{self.app_id}-{stream}-repartition", until=lambda rs: until(items_of(rs)), **kwargs)
        return items_of(records)

    def worker(self, name: str = "w1", **env: str) -> Worker:
        worker = Worker(self, name, env)
        self.workers.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()

    def read(
        self,
        contract_topic: str,
        until: Callable[[list[Any]], bool] = lambda records: False,
        timeout_s: float = 60.0,
        settle_s: float = 0.0,
    ) -> list[Any]:
        """Decoded events on a topic as a read_committed consumer sees them, from the beginning, until
        `until(events)` holds (then `settle_s` more seconds, to catch extras) or the timeout."""
        records = self.read_raw(
            self.topic(contract_topic),
            until=lambda records: until([decode_event(r.value) for r in records]),
            timeout_s=timeout_s,
            settle_s=settle_s,
        )
        return [decode_event(r.value) for r in records]


class Worker:
    """A processor worker subprocess with its own /metrics port."""

    def __init__(self, env: ProcessorEnv, name: str, overrides: dict[str, str]) -> None:
        self.env = env
        self.name = name
        self.port = free_port()
        self.log_path = env.log_dir / f"processor-{name}.log"
        self.environ = {
            **os.environ,
            "ENVIRONMENT": "test",
            "KAFKA_BOOTSTRAP_SERVERS": env.settings.kafka_bootstrap_servers,
            "PROCESSOR_APP_ID": env.app_id,
            "PROCESSOR_TOPIC_PREFIX": env.prefix,
            "PROCESSOR_PORT": str(self.port),
            "PROCESSOR_DATA_DIR": str(env.log_dir / "data"),
            "PROCESSOR_SESSION_TIMEOUT_SECONDS": "6",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            **overrides,
        }
        self.popen: subprocess.Popen | None = None

    def start(self) -> Worker:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "services.processor"],
            cwd=REPO_ROOT,
            env=self.environ,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def health(self) -> dict[str, Any] | None:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return None

    def wait_assigned(self, timeout_s: float = 90.0) -> dict[str, Any]:
        """Block until the worker reports partitions assigned (its agents are running)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.assert_running()
            health = self.health()
            if health and health.get("assigned_partitions", 0) > 0:
                return health
            time.sleep(0.3)
        raise AssertionError(f"worker {self.name} got no partitions within {timeout_s}s; log:\n{self.log_tail()}")

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples whose labels include `labels` (0 when absent)."""
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            series, _, value = line.rpartition(" ")
            metric_name, _, label_text = series.partition("{")
            if metric_name != name:
                continue
            if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
                total += float(value)
        return total

    def assert_running(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            code = None if self.popen is None else self.popen.returncode
            raise AssertionError(f"worker {self.name} is not running (exit {code}); log:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else "(no log)"

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final commit."""
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.popen is None or self.popen.poll() is not None:
            return None if self.popen is None else self.popen.returncode
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            return self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
