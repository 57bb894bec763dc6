"""Live alerts over Server-Sent Events, GET /v1/alerts/stream.

The API process reads pangan.alert.v1 itself with one group-less consumer that starts at the end
of the topic (a live view, not a replay; missed alerts are in GET /v1/alerts and the delivery log).
Reading the topic, rather than polling the alert table, shows an alert the moment the processor
commits it, independent of the sink, and costs one consumer per API process whatever the number
of open streams. Each alert is matched against the subscriptions of the keys with an open stream
(one query per alert: alerts are rare), with the same rules as the webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
import structlog
from aiokafka import AIOKafkaConsumer
from fastapi import APIRouter, Depends, Request
from psycopg_pool import AsyncConnectionPool
from sse_starlette import EventSourceResponse, ServerSentEvent

from pantau.contracts import EventDecodeError, decode_event, event_to_dict
from pantau.reference import load_reference
from pantau.settings import Settings
from pantau.subscriptions import store
from pantau.subscriptions.matching import matches
from pantau.subscriptions.places import alert_facts
from services.api.deps import CallerKey, rate_limited
from services.api.schemas import errors

log = structlog.get_logger(__name__)

ALERT_EVENT_TYPES = ("AlertOpened", "AlertUpdated", "AlertResolved")
QUEUE_LIMIT = 1000  # a client this far behind is disconnected (it reconnects and catches up by the API)
PING_SECONDS = 15


@dataclass(eq=False)
class Listener:
    key_id: str
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    told: set[str] = field(default_factory=set)  # alert ids already sent: their later events follow
    overflowed: bool = False


class AlertHub:
    def __init__(self, settings: Settings, pool: AsyncConnectionPool, topic: str) -> None:
        self.settings = settings
        self.pool = pool
        self.topic = topic
        self.reference = load_reference()
        self.listeners: set[Listener] = set()
        self.ready = asyncio.Event()  # positioned at the end of every partition
        self.state = "starting"
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="alert-hub")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def listen(self, key_id: str) -> Listener:
        listener = Listener(key_id)
        self.listeners.add(listener)
        return listener

    def forget(self, listener: Listener) -> None:
        self.listeners.discard(listener)

    async def _run_forever(self) -> None:
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker went away: the query API keeps serving, we retry
                self.state = "down"
                self.ready.clear()
                log.warning("alert stream consumer failed, retrying", error=f"{exc.__class__.__name__}: {exc}")
                await asyncio.sleep(2.0)

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            self.topic,  # without a group: every partition, assigned on start
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=None,
            client_id="pantau-api-stream",
            enable_auto_commit=False,
            auto_offset_reset="latest",
            isolation_level="read_committed",  # the processor writes alerts in Kafka transactions
        )
        await consumer.start()
        try:
            assignment = sorted(consumer.assignment())
            if not assignment:
                raise RuntimeError(f"topic {self.topic} does not exist; run `pantau bootstrap`")
            await consumer.seek_to_end(*assignment)
            for tp in assignment:
                await consumer.position(tp)
            self.state = "ok"
            self.ready.set()
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=200)
                for records in batches.values():
                    for record in records:
                        await self._publish(record.value)
        finally:
            await consumer.stop()

    async def _publish(self, value: bytes) -> None:
        try:
            event = decode_event(value)
        except EventDecodeError:
            return  # the dispatcher dead-letters bad records; the stream only shows valid alerts
        if event.event_type not in ALERT_EVENT_TYPES or not self.listeners:
            return
        wire = event_to_dict(event)
        alert = alert_facts(wire, self.reference)
        listeners = list(self.listeners)
        async with self.pool.connection() as conn:
            subscriptions = await store.live_subscriptions(conn, sorted({li.key_id for li in listeners}))
        by_key: dict[str, list[store.Subscription]] = {}
        for subscription in subscriptions:
            by_key.setdefault(subscription.key_id, []).append(subscription)
        for listener in listeners:
            already = alert.alert_id in listener.told
            if any(
                matches(s.filter, alert, subscribed_at=s.created_at, already_notified=already)
                for s in by_key.get(listener.key_id, [])
            ):
                listener.told.add(alert.alert_id)
                try:
                    listener.queue.put_nowait(wire)
                except asyncio.QueueFull:
                    listener.overflowed = True


router = APIRouter(tags=["alerts"])


@router.get(
    "/v1/alerts/stream",
    dependencies=[Depends(rate_limited)],
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}, **errors(401, 429, 503)},
)
async def alert_stream(request: Request, key: CallerKey) -> EventSourceResponse:
    """Server-Sent Events of the alert lifecycle events matching the key's subscriptions, live.

    Each message: `event:` the event type, `id:` the event id, `data:` the alert event as on
    pangan.alert.v1 (the same JSON the webhooks receive). A comment ping every 15 s keeps proxies
    from closing the connection. Try: `curl -N -H "Authorization: Bearer ppk_..." .../v1/alerts/stream`"""
    hub: AlertHub = request.app.state.alert_hub
    listener = hub.listen(key.key_id)

    async def messages() -> AsyncIterator[ServerSentEvent]:
        try:
            while not listener.overflowed:
                try:
                    event = await asyncio.wait_for(listener.queue.get(), timeout=1.0)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    continue
                yield ServerSentEvent(
                    data=orjson.dumps(event).decode(), event=event["event_type"], id=event["event_id"]
                )
        finally:
            hub.forget(listener)

    return EventSourceResponse(messages(), ping=PING_SECONDS)
