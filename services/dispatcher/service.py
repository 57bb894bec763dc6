"""Two loops in one process:

- intake: consume pangan.alert.v1 (consumer group, offsets committed by hand); for each lifecycle
  event and each matching subscription write a delivery to the outbox, then commit the offset. A
  crash between the two re-reads the events, and the stable delivery id makes that harmless.
- delivery: POST each subscription's first pending delivery (head-of-line, so a receiver sees a
  subscription's events in order), signed; on failure retry with exponential backoff and jitter;
  after DISPATCHER_MAX_ATTEMPTS failures in a row mark it dead-lettered (visible in the delivery
  log, redeliverable through the API) and move on to the next.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
import orjson
import psycopg
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from pantau.contracts import (
    ALERT_TOPIC,
    DEADLETTER_TOPIC,
    EventDecodeError,
    decode_event,
    encode_event,
    event_to_dict,
    kafka_key,
    new_event,
)
from pantau.contracts import dead_letter_for as dead_letter_payload
from pantau.kafka import EventProducer
from pantau.metrics import CONSUMER_LAG, EVENTS_CONSUMED, EVENTS_DEADLETTERED, LAST_EVENT_TIMESTAMP
from pantau.reference import load_reference
from pantau.settings import Settings
from pantau.subscriptions import store
from pantau.subscriptions.backoff import retry_delay
from pantau.subscriptions.delivery import delivery_id, webhook_headers
from pantau.subscriptions.matching import matches
from pantau.subscriptions.places import alert_facts
from pantau.subscriptions.signing import subscription_secret
from services.dispatcher.metrics import (
    WEBHOOK_DEADLETTERED,
    WEBHOOK_DELIVERIES,
    WEBHOOK_DELIVERY_SECONDS,
    WEBHOOK_PENDING,
    WEBHOOK_QUEUED,
)

log = structlog.get_logger(__name__)

CONSUMER_GROUP = "pantau-dispatcher"
ALERT_EVENT_TYPES = ("AlertOpened", "AlertUpdated", "AlertResolved")
REQUEST_TIMEOUT_SECONDS = 10.0
DELIVERY_BATCH = 50  # subscriptions served per delivery round
IDLE_POLL_SECONDS = 0.5  # how often the delivery loop looks for due retries and redeliveries
ERROR_BODY_CHARS = 300


# The database going away (restart, network): wait and retry rather than exit.
DATABASE_DOWN = (psycopg.OperationalError, PoolTimeout)


def _short(exc: Exception) -> str:
    return f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"[:300]


class NotAnAlertEvent(ValueError):
    """A valid event of another type on the alert topic."""


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        pool: AsyncConnectionPool,
        *,
        topic: str = ALERT_TOPIC,
        deadletter_topic: str = DEADLETTER_TOPIC,
        group_id: str = CONSUMER_GROUP,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.topic = topic
        self.deadletter_topic = deadletter_topic
        self.group_id = group_id
        self.reference = load_reference()
        self._http = http or httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS, follow_redirects=False)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._deadletter_producer: EventProducer | None = None
        self.assigned = asyncio.Event()  # set once the consumer owns its partitions (tests wait on it)
        self.last_progress: dict[str, float] = {}  # loop name -> monotonic time of its last good round

    # --- lifecycle --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run both loops until stop(); an error in either stops both and is raised."""
        intake = asyncio.create_task(self._intake_loop(), name="intake")
        delivery = asyncio.create_task(self._delivery_loop(), name="delivery")
        try:
            done, _ = await asyncio.wait({intake, delivery}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            self._stopping.set()
            self._wake.set()
            for task in (intake, delivery):
                task.cancel()
            await asyncio.gather(intake, delivery, return_exceptions=True)
            await self._http.aclose()
            if self._deadletter_producer is not None:
                await asyncio.to_thread(self._deadletter_producer.close)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def healthy(self, max_silence_s: float = 60.0) -> dict:
        now = time.monotonic()
        loops = ("intake", "delivery")
        stale = [name for name in loops if now - self.last_progress.get(name, 0) > max_silence_s]
        return {"status": "ok" if not stale else "degraded", "stalled_loops": stale}

    # --- intake: topic -> outbox ------------------------------------------------------------------

    async def _intake_loop(self) -> None:
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=self.group_id,
            client_id="pantau-dispatcher",
            enable_auto_commit=False,
            # A new group starts at the beginning; subscriptions ignore alerts older than themselves.
            auto_offset_reset="earliest",
            isolation_level="read_committed",  # the processor writes alerts in Kafka transactions
        )
        await consumer.start()
        try:
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=500)
                if consumer.assignment():
                    self.assigned.set()
                self.last_progress["intake"] = time.monotonic()
                records = [record for partition_records in batches.values() for record in partition_records]
                if not records:
                    continue
                await self._intake_until_stored(records)
                try:
                    await consumer.commit()
                except CommitFailedError as exc:  # rebalanced: the new owner re-reads, ids deduplicate
                    log.warning("offset commit failed after a rebalance", error=str(exc))
                for tp in batches:
                    await self._export_lag(consumer, tp)
        finally:
            await consumer.stop()

    async def _intake_until_stored(self, records: Sequence[ConsumerRecord]) -> None:
        """Retry the batch while the database is away; its offsets wait with it, so nothing is lost."""
        failures = 0
        while True:
            try:
                await self.intake(records)
                return
            except DATABASE_DOWN as exc:
                failures += 1
                wait = retry_delay(failures, 1.0, 30.0)
                log.warning("database unavailable, intake waits", error=_short(exc), retry_in_s=round(wait, 1))
                await asyncio.sleep(wait)

    @staticmethod
    async def _export_lag(consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        # read_committed: the end a consumer can reach is the last stable offset, not the high watermark.
        end = consumer.last_stable_offset(tp)
        if end is None:
            return
        position = await consumer.position(tp)
        CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, end - position))

    async def intake(self, records: Sequence[ConsumerRecord]) -> int:
        """Write the deliveries for these records to the outbox (one transaction); returns how many
        were new. Records that are not valid alert events are dead-lettered, never block the rest."""
        events: list[dict] = []
        for record in records:
            EVENTS_CONSUMED.labels(record.topic).inc()
            LAST_EVENT_TIMESTAMP.labels(record.topic, str(record.partition)).set(record.timestamp / 1000)
            try:
                event = decode_event(record.value)
                if event.event_type not in ALERT_EVENT_TYPES:
                    raise NotAnAlertEvent(f"{event.event_type} does not belong on {self.topic}")
            except (EventDecodeError, NotAnAlertEvent) as exc:
                await self._dead_letter(record, exc)
                continue
            events.append(event_to_dict(event))
        if not events:
            return 0
        facts = [alert_facts(event, self.reference) for event in events]
        async with self.pool.connection() as conn, conn.transaction():
            subscriptions = await store.live_subscriptions(conn)
            told = await store.notified(conn, [f.alert_id for f in facts if f.event_type != "AlertOpened"])
            deliveries: list[store.NewDelivery] = []
            for event, alert in zip(events, facts, strict=True):
                for subscription in subscriptions:
                    already = (subscription.subscription_id, alert.alert_id) in told
                    wanted = matches(
                        subscription.filter, alert, subscribed_at=subscription.created_at, already_notified=already
                    )
                    if not wanted:
                        continue
                    told.add((subscription.subscription_id, alert.alert_id))
                    deliveries.append(
                        store.NewDelivery(
                            delivery_id=delivery_id(subscription.subscription_id, alert.event_id),
                            subscription_id=subscription.subscription_id,
                            alert_event_id=alert.event_id,
                            alert_id=alert.alert_id,
                            event_type=alert.event_type,
                            event=event,
                        )
                    )
            added = await store.enqueue(conn, deliveries)
        WEBHOOK_QUEUED.inc(added)
        if added:
            log.info("deliveries queued", events=len(events), deliveries=added)
            self._wake.set()
        return added

    async def _dead_letter(self, record: ConsumerRecord, error: Exception) -> None:
        payload = dead_letter_payload(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            error=error,
            consumer=self.group_id,
            failed_at=datetime.now(UTC),
        )
        event = new_event(payload, occurred_at=datetime.now(UTC), source="dispatcher")
        if self._deadletter_producer is None:
            self._deadletter_producer = await asyncio.to_thread(EventProducer, self.settings, "pantau-dispatcher")
        producer = self._deadletter_producer

        def send() -> None:
            producer.send(self.deadletter_topic, kafka_key(event), encode_event(event), event.event_type)
            producer.flush()

        await asyncio.to_thread(send)
        EVENTS_DEADLETTERED.labels(record.topic, payload.error_type).inc()
        log.warning(
            "record dead-lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error_type=payload.error_type,
            error=payload.error_message[:500],
        )

    # --- delivery: outbox -> webhooks -------------------------------------------------------------

    async def _delivery_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                delivered_any = await self.deliver_due()
                failures = 0
            except DATABASE_DOWN as exc:  # deliveries stay queued in the database; try again later
                failures += 1
                wait = retry_delay(failures, 1.0, 30.0)
                log.warning("database unavailable, deliveries wait", error=_short(exc), retry_in_s=round(wait, 1))
                await asyncio.sleep(wait)
                continue
            self.last_progress["delivery"] = time.monotonic()
            if delivered_any:
                continue  # the next deliveries of those subscriptions may be due now
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), IDLE_POLL_SECONDS)
            except TimeoutError:
                pass

    async def deliver_due(self) -> int:
        """One round: attempt every subscription's due head delivery; returns the attempts made."""
        async with self.pool.connection() as conn:
            async with conn.transaction():
                due = await store.claim_due(conn, DELIVERY_BATCH)
                # The rows stay locked while we POST, so a second dispatcher cannot send them too.
                results = await asyncio.gather(*(self._post(d) for d in due))
                for d, result in zip(due, results, strict=True):
                    retry_in = None
                    if not result.delivered and d.round_attempts + 1 < self.settings.dispatcher_max_attempts:
                        retry_in = retry_delay(
                            d.round_attempts + 1,
                            self.settings.dispatcher_backoff_initial_seconds,
                            self.settings.dispatcher_backoff_max_seconds,
                        )
                    status = await store.record_attempt(conn, d, result, retry_in_s=retry_in)
                    self._log_attempt(d, result, status, retry_in)
            WEBHOOK_PENDING.set(await store.pending_count(conn))
        return len(due)

    async def _post(self, due: store.DueDelivery) -> store.AttemptResult:
        body = orjson.dumps(due.event)
        master_key = self.settings.webhook_secret_key
        secret = subscription_secret(master_key, due.subscription_id, due.secret_version)
        headers = webhook_headers(
            secret=secret,
            timestamp=int(time.time()),
            body=body,
            delivery=due.delivery_id,
            subscription=due.subscription_id,
            event_type=due.event_type,
            event_id=str(due.alert_event_id),
            attempt=due.attempts + 1,
        )
        attempted_at = datetime.now(UTC)
        started = time.perf_counter()
        status_code, error, outcome = None, None, "delivered"
        try:
            response = await self._http.post(due.webhook_url, content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                outcome = "http_error"
                error = f"HTTP {status_code}: {response.text[:ERROR_BODY_CHARS]}"
        except httpx.TimeoutException as exc:
            outcome = "timeout"
            error = f"no answer within {REQUEST_TIMEOUT_SECONDS:.0f}s ({exc.__class__.__name__})"
        except httpx.HTTPError as exc:
            outcome, error = "connection_error", f"{exc.__class__.__name__}: {exc}"[:ERROR_BODY_CHARS]
        duration = time.perf_counter() - started
        WEBHOOK_DELIVERIES.labels(outcome).inc()
        WEBHOOK_DELIVERY_SECONDS.observe(duration)
        return store.AttemptResult(attempted_at, duration, status_code, error)

    def _log_attempt(
        self, due: store.DueDelivery, result: store.AttemptResult, status: str, retry_in: float | None
    ) -> None:
        fields = {
            "delivery_id": str(due.delivery_id),
            "subscription_id": str(due.subscription_id),
            "event_type": due.event_type,
            "attempt": due.attempts + 1,
        }
        if status == "delivered":
            log.info("webhook delivered", status_code=result.status_code, **fields)
        elif status == "pending":
            retry_in_s = round(retry_in or 0, 2)
            log.warning("webhook failed, will retry", error=result.error, retry_in_s=retry_in_s, **fields)
        else:
            WEBHOOK_DEADLETTERED.inc()
            log.error("webhook dead-lettered", error=result.error, **fields)
