"""Real parts for the API and dispatcher tests: the API served by uvicorn on a free port, the
dispatcher on its own event loop, a webhook receiver that can be stopped and restarted on its
port, and alert events produced to a fresh topic through the real broker."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
import uvicorn
from psycopg_pool import AsyncConnectionPool
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from pantau.contracts import (
    AlertOpened,
    AlertResolved,
    AlertUpdated,
    Evidence,
    LocalizedText,
    Place,
    Signal,
    alert_id_for,
    encode_event,
    kafka_key,
    new_event,
    now_wib,
)
from pantau.kafka import EventProducer, ensure_topics
from pantau.settings import Settings
from services.api.app import create_app
from services.dispatcher.service import Dispatcher

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(check: Callable[[], T], timeout_s: float = 30.0, every_s: float = 0.1) -> T:
    """Retry `check` (which asserts) until it passes or the time is up; returns its value."""
    for attempt in Retrying(
        retry=retry_if_exception_type(AssertionError),
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(every_s),
        reraise=True,
    ):
        with attempt:
            return check()
    raise AssertionError("unreachable")


# --- the alert topic ----------------------------------------------------------------------------


@dataclass
class Topic:
    name: str
    partitions: int = 3
    config: dict[str, str] = field(default_factory=lambda: {"retention.ms": "86400000"})


def create_topic(settings: Settings, name: str) -> str:
    ensure_topics(settings, [Topic(name)])
    return name


@dataclass
class AlertStory:
    """The lifecycle of one alert; each call returns the next event."""

    alert_type: str = "price_spike"
    commodity: str | None = "beras"
    place: tuple[str, str, str] = ("market", "pibc", "Pasar Induk Beras Cipinang")
    opened_at: datetime = field(default_factory=lambda: now_wib() - timedelta(minutes=1))
    sequence: int = 0
    severity: str = "normal"

    @property
    def subject(self) -> str:
        return f"{self.alert_type}:{self.commodity or 'all'}:{self.place[1]}"

    @property
    def alert_id(self) -> str:
        return alert_id_for(self.subject, self.opened_at)

    def _payload(self, model: type, severity: str) -> Any:
        self.sequence += 1
        previous = None if self.sequence == 1 else self.severity
        self.severity = severity
        kind, code, name = self.place
        return model(
            alert_id=self.alert_id,
            alert_type=self.alert_type,
            subject=self.subject,
            sequence=self.sequence,
            severity=severity,
            previous_severity=previous,
            commodity=self.commodity,
            place=Place(kind=kind, code=code, name=name),
            affected_volume_kg=None,
            evidence=Evidence(
                signals=[
                    Signal(
                        name="change_7d_pct", value=5.0, threshold=3.2, baseline=12350.0, window="7d", severity=severity
                    )
                ],
                details={"price_idr_per_kg": 12850},
            ),
            title=LocalizedText(id="Harga naik", en="Price up"),
            action_text=LocalizedText(id="Periksa stok", en="Check stock"),
            opened_at=self.opened_at,
        )

    def opened(self, severity: str = "alert") -> Any:
        return self._event(AlertOpened, severity, self.opened_at)

    def updated(self, severity: str, at: datetime | None = None) -> Any:
        return self._event(AlertUpdated, severity, at)

    def resolved(self, at: datetime | None = None) -> Any:
        return self._event(AlertResolved, "normal", at)

    def _event(self, model: type, severity: str, at: datetime | None) -> Any:
        # Produced now (subscriptions only get events produced after they exist); occurred at `at`.
        return new_event(self._payload(model, severity), occurred_at=at or now_wib(), source="processor")


def produce(settings: Settings, topic: str, events: list[Any], raw: list[bytes] = ()) -> None:
    with EventProducer(settings, client_id="test-processor") as producer:
        for event in events:
            producer.send(topic, kafka_key(event), encode_event(event), event.event_type)
        for value in raw:
            producer.send(topic, "garbage", value, "Unknown")
        producer.flush()


# --- a webhook receiver -------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict:
        return json.loads(self.body)


class WebhookReceiver:
    """An HTTP server on a fixed port that records every POST; `answer` sets the status it returns.
    stop() closes the port (connection refused), start() opens it again."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[Received] = []
        self.answer = 200
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/pantau"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.answer
                if status < 300:
                    with receiver._lock:
                        receiver.received.append(Received(dict(self.headers.items()), body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[dict]:
        with self._lock:
            return [r.event for r in self.received]


# --- services on background threads ---------------------------------------------------------------


class LoopThread:
    """An asyncio loop on its own thread, for running a service beside a synchronous test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


class DispatcherRunner:
    """The dispatcher (both loops) on a LoopThread, with its own pool, consumer group and topic."""

    def __init__(self, settings: Settings, topic: str, deadletter_topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self.deadletter_topic = deadletter_topic
        self.thread = LoopThread()
        self.dispatcher: Dispatcher | None = None
        self._done: Any = None

    def start(self) -> DispatcherRunner:
        async def begin() -> None:
            self.pool = AsyncConnectionPool(
                self.settings.database_url, min_size=1, max_size=4, kwargs={"autocommit": True}, open=False
            )
            await self.pool.open(wait=True)
            self.dispatcher = Dispatcher(
                self.settings,
                self.pool,
                topic=self.topic,
                deadletter_topic=self.deadletter_topic,
                group_id=f"test-dispatcher-{uuid.uuid4().hex[:8]}",
            )

        self.thread.run(begin())
        self._done = asyncio.run_coroutine_threadsafe(self.dispatcher.run(), self.thread.loop)
        self.thread.run(asyncio.wait_for(self.dispatcher.assigned.wait(), 60))
        return self

    def stop(self) -> None:
        if self.dispatcher is None:
            return
        self.thread.loop.call_soon_threadsafe(self.dispatcher.stop)
        self._done.result(30)
        self.thread.run(self.pool.close())
        self.thread.close()
        self.dispatcher = None


class ApiServer:
    """create_app(settings) served by uvicorn on a free port, as `python -m services.api` does."""

    def __init__(self, settings: Settings, alert_topic: str) -> None:
        self.app = create_app(settings, alert_topic=alert_topic)
        self.port = free_port()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on", timeout_graceful_shutdown=2
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiServer:
        self._thread.start()

        def up() -> None:
            assert self.server.started, "uvicorn has not started yet"

        eventually(up, timeout_s=30)
        return self

    def wait_for_stream(self) -> None:
        def ready() -> None:
            assert self.app.state.alert_hub.ready.is_set(), "the alert stream consumer is not positioned yet"

        eventually(ready, timeout_s=60)

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(15)


class StreamReader:
    """Reads a Server-Sent Events stream on a thread; `events` are its (event, id, data) messages."""

    def __init__(self, url: str, key: str) -> None:
        self.events: list[dict] = []
        self.status: int | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self._url, self._key = url, key
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> StreamReader:
        self._thread.start()

        def connected() -> None:
            assert self.status is not None, "the stream has not answered yet"

        eventually(connected)
        return self

    def _read(self) -> None:
        message: dict = {}
        try:
            with self._client.stream("GET", self._url, headers={"Authorization": f"Bearer {self._key}"}) as response:
                self.status = response.status_code
                for line in response.iter_lines():
                    if not line:
                        if "data" in message:
                            self.events.append(message)
                        message = {}
                    elif not line.startswith(":"):
                        name, _, value = line.partition(":")
                        message[name] = value.strip()
        except httpx.HTTPError:
            pass  # closed by stop()

    def stop(self) -> None:
        self._client.close()
