"""Kafka behind the gateway: a batch is answered only once Kafka acknowledged all of it, and an
outage becomes `Unavailable` (HTTP 503) instead of an exit; the next request reconnects."""

from __future__ import annotations

import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

from pantau.kafka import BrokerUnavailable, DeliveryFailed, EventProducer
from pantau.settings import Settings

# A partner waits at most this long for Kafka before getting 503 (the platform default of
# PRODUCER_BUFFER_MAX_SECONDS suits batch producers, not an HTTP request).
DELIVERY_TIMEOUT_MS = 10_000
REQUEST_TIMEOUT_MS = 4_000
Record = tuple[str, str, bytes, str]  # topic, key, value, event_type


class Unavailable(RuntimeError):
    """Kafka did not take the events; nothing of the batch may be assumed delivered."""


class KafkaSender:
    def __init__(self, settings: Settings, factory: Callable[..., EventProducer] = EventProducer) -> None:
        self.settings = settings
        self._factory = factory
        self._producer: EventProducer | None = None
        self._lock = threading.Lock()
        self._reachable: tuple[float, bool] = (0.0, False)

    def send(self, records: Sequence[Record]) -> None:
        """Produce the records and wait for Kafka's acknowledgement of every one (acks=all)."""
        with self._lock:  # flush() waits for everything in flight: one batch at a time keeps it exact
            try:
                producer = self._connect()
                for topic, key, value, event_type in records:
                    producer.send(topic, key, value, event_type)
                producer.flush(DELIVERY_TIMEOUT_MS / 1000 + 1)
            except (BrokerUnavailable, DeliveryFailed) as exc:
                self._discard()  # EventProducer keeps its failures: start clean after the outage
                raise Unavailable(str(exc)) from exc

    def _connect(self) -> EventProducer:
        if self._producer is None:
            self._producer = self._factory(
                self.settings, client_id="gateway", delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
                request_timeout_ms=REQUEST_TIMEOUT_MS, max_block_ms=REQUEST_TIMEOUT_MS,
                bootstrap_timeout_ms=REQUEST_TIMEOUT_MS,
            )  # fmt: skip
        return self._producer

    def _discard(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout_s=1)
            except Exception:  # noqa: BLE001 - it already failed; closing must not hide that
                pass

    def kafka_reachable(self) -> bool:
        """A bootstrap server accepts connections (checked at most every 2 s)."""
        checked_at, ok = self._reachable
        if time.monotonic() - checked_at < 2.0:
            return ok
        ok = any(_connects(address) for address in _addresses(self.settings.kafka_bootstrap_servers))
        self._reachable = (time.monotonic(), ok)
        return ok

    def close(self) -> None:
        with self._lock:
            self._discard()


def _addresses(servers: str) -> Iterable[tuple[str, int]]:
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        yield host or "127.0.0.1", int(port)


def _connects(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1.0):
            return True
    except OSError:
        return False


class RecentIds:
    """The event ids accepted lately (bounded, least recently seen dropped first), so that a
    partner's retry of the same event is answered without producing it again."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._pending: set[str] = set()
        self._lock = threading.Lock()

    def claim(self, event_ids: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
        """Split into (new, duplicates, in flight). New ones are reserved until accept() or
        release(); ids another request is still producing are in flight (that request may fail)."""
        new, duplicates, in_flight = [], [], []
        with self._lock:
            for event_id in event_ids:
                if event_id in self._ids:
                    duplicates.append(event_id)
                    self._ids.move_to_end(event_id)
                elif event_id in self._pending:
                    (duplicates if event_id in new else in_flight).append(event_id)
                else:
                    self._pending.add(event_id)
                    new.append(event_id)
            if in_flight:
                self._pending.difference_update(new)
                new = []
        return new, duplicates, in_flight

    def accept(self, event_ids: Iterable[str]) -> None:
        with self._lock:
            for event_id in event_ids:
                self._pending.discard(event_id)
                self._ids[event_id] = None
            while len(self._ids) > self.capacity:
                self._ids.popitem(last=False)

    def release(self, event_ids: Iterable[str]) -> None:
        """Kafka did not take them: a retry must produce them."""
        with self._lock:
            for event_id in event_ids:
                self._pending.discard(event_id)
