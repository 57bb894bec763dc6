"""Kafka plumbing shared by the services: waiting for the broker, creating the contract's topics,
and a producer that never loses an event silently."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import structlog
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential

from pantau.metrics import EVENTS_PRODUCED, PRODUCE_ERRORS, PRODUCE_LATENCY
from pantau.settings import Settings

log = structlog.get_logger(__name__)


class TopicLike(Protocol):
    name: str
    partitions: int
    config: dict[str, str]


class BrokerUnavailable(RuntimeError):
    pass


def admin_client(settings: Settings, timeout_s: float = 60.0) -> KafkaAdminClient:
    """An admin client, waiting up to `timeout_s` for the broker to answer."""

    @retry(
        retry=retry_if_exception_type((KafkaError, OSError)),
        wait=wait_exponential(multiplier=0.2, max=2),
        stop=stop_after_delay(timeout_s),
        reraise=True,
    )
    def connect() -> KafkaAdminClient:
        return KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, client_id="pantau-admin")

    try:
        return connect()
    except (KafkaError, OSError) as exc:
        raise BrokerUnavailable(
            f"no Kafka broker answered at KAFKA_BOOTSTRAP_SERVERS={settings.kafka_bootstrap_servers} "
            f"within {timeout_s:.0f}s ({exc.__class__.__name__}); start it with `make run` or point the variable at one"
        ) from exc


def ensure_topics(settings: Settings, topics: Iterable[TopicLike]) -> list[str]:
    """Create missing topics with the contract's partitions and config; returns the names created.

    An existing topic with a different partition count is an error: keyed ordering and Faust's
    co-partitioning both depend on it."""
    topics = list(topics)
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        created = []
        for topic in topics:
            if topic.name in existing:
                continue
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            topic.name,
                            num_partitions=topic.partitions,
                            replication_factor=settings.kafka_replication_factor,
                            topic_configs=dict(topic.config),
                        )
                    ]
                )
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass  # another service created it between list and create
        described = _partition_counts(admin, [t.name for t in topics])
        for topic in topics:
            if described.get(topic.name) != topic.partitions:
                raise RuntimeError(
                    f"topic {topic.name} has {described.get(topic.name)} partitions but contracts/asyncapi.yaml "
                    f"says {topic.partitions}; fix the topic (or the contract) before starting"
                )
        if created:
            log.info("topics created", topics=created)
        return created
    finally:
        admin.close()


def _partition_counts(admin: KafkaAdminClient, names: list[str], settle_s: float = 10.0) -> dict[str, int]:
    """Partition count per topic; a just-created topic reports none until its metadata settles."""
    deadline = time.monotonic() + settle_s
    while True:
        counts = {d["name"]: len(d["partitions"]) for d in admin.describe_topics(names)}
        if all(counts.get(name) for name in names) or time.monotonic() > deadline:
            return counts
        time.sleep(0.2)


def wait_for_topics(settings: Settings, names: Iterable[str], timeout_s: float = 120.0) -> None:
    """Block until every topic exists (created by `pantau bootstrap`), logging what is missing."""
    names = set(names)
    deadline = time.monotonic() + timeout_s
    admin = admin_client(settings, timeout_s)
    try:
        while True:
            missing = names - set(admin.list_topics())
            if not missing:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"topics {sorted(missing)} do not exist; run `pantau bootstrap` to create them")
            log.info("waiting for topics", missing=sorted(missing))
            time.sleep(1.0)
    finally:
        admin.close()


class DeliveryFailed(RuntimeError):
    """Kafka did not acknowledge an event within the producer's delivery timeout."""


@dataclass
class _Failure:
    topic: str
    error: Exception


class EventProducer:
    """kafka-python producer with acks=all, idempotence, retries and a bounded buffer.

    A send the broker does not acknowledge within PRODUCER_BUFFER_MAX_SECONDS is recorded; the next
    `send` or `flush` raises DeliveryFailed naming the topic and the cause, so a producer service
    exits non-zero instead of losing events silently."""

    def __init__(self, settings: Settings, client_id: str, **overrides: object) -> None:
        timeout_ms = int(settings.producer_buffer_max_seconds * 1000)
        linger_ms = 5
        config: dict[str, object] = {
            "bootstrap_servers": settings.kafka_bootstrap_servers,
            "client_id": client_id,
            "acks": "all",
            "enable_idempotence": True,
            "retries": 2**31 - 1,
            "delivery_timeout_ms": timeout_ms,
            # kafka-python refuses delivery_timeout_ms < request_timeout_ms + linger_ms.
            "request_timeout_ms": max(1, min(timeout_ms - linger_ms - 1, 10_000)),
            "max_block_ms": timeout_ms,
            "bootstrap_timeout_ms": timeout_ms,
            "linger_ms": linger_ms,
        }
        config.update(overrides)
        try:
            self._producer = KafkaProducer(**config)
        except (KafkaError, OSError) as exc:
            raise BrokerUnavailable(
                f"no Kafka broker at KAFKA_BOOTSTRAP_SERVERS={settings.kafka_bootstrap_servers}"
            ) from exc
        self._failures: list[_Failure] = []
        self.acknowledged = 0

    def send(self, topic: str, key: str, value: bytes, event_type: str) -> None:
        self._raise_failures()
        started = time.perf_counter()
        try:
            future = self._producer.send(topic, key=key.encode(), value=value)
        except KafkaError as exc:  # buffer full or metadata unavailable for max_block_ms
            PRODUCE_ERRORS.labels(topic, exc.__class__.__name__).inc()
            raise DeliveryFailed(f"could not hand an event to Kafka for {topic}: {exc}") from exc

        def on_success(_metadata: object) -> None:
            self.acknowledged += 1
            EVENTS_PRODUCED.labels(topic, event_type).inc()
            PRODUCE_LATENCY.labels(topic).observe(time.perf_counter() - started)

        def on_error(exc: Exception) -> None:
            PRODUCE_ERRORS.labels(topic, exc.__class__.__name__).inc()
            self._failures.append(_Failure(topic, exc))

        future.add_callback(on_success)
        future.add_errback(on_error)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every sent event is acknowledged or failed; raise if any failed."""
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            raise DeliveryFailed(f"Kafka did not acknowledge pending events: {exc}") from exc
        self._raise_failures()

    def close(self, timeout_s: float = 10.0) -> None:
        try:
            self.flush(timeout_s)
        finally:
            self._producer.close(timeout=timeout_s)

    def _raise_failures(self) -> None:
        if self._failures:
            first = self._failures[0]
            count = len(self._failures)
            raise DeliveryFailed(
                f"{count} event(s) were not acknowledged by Kafka (first: topic {first.topic}, "
                f"{first.error.__class__.__name__}: {first.error}); check KAFKA_BOOTSTRAP_SERVERS and the broker"
            )

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
