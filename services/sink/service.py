"""The sink's consumer loop: poll a batch, decode, write it in one database transaction, dead-letter
what cannot be stored, and only then commit the Kafka offsets. A crash at any point loses nothing
(the uncommitted batch is read again) and duplicates nothing (every write is keyed by event id).

While the database is down the sink pauses its partitions and keeps polling (so it stays in the
consumer group and keeps serving /metrics), retrying the same batch with exponential backoff;
lag grows in pantau_consumer_lag_messages and /healthz turns unhealthy after 30 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import psycopg
import structlog
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from pantau.contracts.codec import EventDecodeError, dead_letter_for, decode_event, encode_event
from pantau.contracts.models import AnyEvent, new_event, stable_event_id
from pantau.contracts.topics import ALERT_TOPIC, DEADLETTER_TOPIC, HARVEST_TOPIC, PRICE_TOPIC, SHIPMENT_TOPIC
from pantau.db import DatabaseUnavailable, connect
from pantau.kafka import BrokerUnavailable, EventProducer
from pantau.metrics import CONSUMER_LAG, EVENTS_CONSUMED, EVENTS_DEADLETTERED, LAST_EVENT_TIMESTAMP
from pantau.settings import Settings
from pantau.storage.retention import RetentionMode, apply_retention, database_retention_mode, ensure_retention_policies
from pantau.storage.rows import row_for
from pantau.storage.writer import BatchWriter, Pending, WriteResult
from services.sink.metrics import BATCH_DURATION, BATCH_ROWS, DATABASE_UP, ROWS_WRITTEN, WRITE_ERRORS

log = structlog.get_logger(__name__)

TOPICS = (PRICE_TOPIC, HARVEST_TOPIC, SHIPMENT_TOPIC, ALERT_TOPIC, DEADLETTER_TOPIC)
CONSUMER_NAME = "sink"
UNHEALTHY_AFTER_S = 30.0  # database unreachable or loop stalled this long -> /healthz 503
LAG_REPORT_INTERVAL_S = 5.0
LIVENESS_CHECK_INTERVAL_S = 5.0
RETENTION_INTERVAL_S = 3600.0
DATABASE_ERRORS = (psycopg.OperationalError, DatabaseUnavailable)
T = TypeVar("T")


class DatabaseRejected(Exception):
    """The database refused the row built from a valid event (the message says why)."""


class Sink:
    def __init__(self, settings: Settings, group_id: str) -> None:
        self.settings = settings
        self.group_id = group_id
        self._stopping = threading.Event()
        self._last_loop = time.monotonic()
        self._db_down_since: float | None = None
        self._conn: psycopg.Connection | None = None
        self._writer: BatchWriter | None = None
        self._retention_mode: RetentionMode | None = None
        self._next_retention = 0.0
        self._next_lag_report = 0.0
        self._next_liveness_check = 0.0
        self._unstored: dict[TopicPartition, int] = {}  # first offset of the batch in hand, per partition
        self._lag_reported: set[TopicPartition] = set()
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=group_id,
            client_id="pantau-sink",
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # a new group starts from the oldest event: nothing is skipped
            isolation_level="read_committed",  # the processor writes alerts and dead letters in transactions
            max_poll_records=settings.sink_batch_max_rows,
            max_partition_fetch_bytes=8 * 1024 * 1024,  # whole batches per fetch, not 1 MiB slices
        )
        self.producer = EventProducer(settings, client_id="pantau-sink")

    # --- lifecycle ------------------------------------------------------------------------------
    def _wait_for_topics(self, warn_every_s: float = 30.0) -> None:
        """Join the group only once this client's metadata lists every topic's partitions: a group leader
        that assigns before then leaves the group with no partitions for good (kafka-python #2377; seen
        once as a sink storing nothing after a fresh `make run`, topics created seconds before)."""
        warned_at = time.monotonic()
        while not self.stopping:
            try:
                missing = [topic for topic in TOPICS if not self.consumer.partitions_for_topic(topic)]
            except KafkaError as exc:
                # kafka-python's consumer does not recover from this: its next lookup waits for ever,
                # even once the broker is back. A restart (make run's supervisor, compose) gets a new one.
                raise BrokerUnavailable(
                    f"Kafka at KAFKA_BOOTSTRAP_SERVERS={self.settings.kafka_bootstrap_servers} went away while "
                    f"the sink was joining ({_first_line(exc)}); stopping so that a restart starts a new client"
                ) from exc
            if not missing:
                return
            if time.monotonic() - warned_at >= warn_every_s:
                log.warning("waiting for topics to exist (the stack's bootstrap creates them)", missing=missing)
                warned_at = time.monotonic()
            self._stopping.wait(0.5)

    def stop(self) -> None:
        """Finish the batch in hand, commit it, and leave the loop (signal handlers call this)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> None:
        try:
            self._with_database(self._database_writer)  # wait for the database before taking partitions
            self._wait_for_topics()
            self.consumer.subscribe(list(TOPICS))
            log.info("sink consuming", topics=TOPICS, group=self.group_id)
            while not self.stopping:
                self._last_loop = time.monotonic()
                records = self._collect_batch()
                if records:
                    self._handle(records)
                self._housekeeping(idle=not records)
        except DATABASE_ERRORS as exc:
            if not self.stopping:
                raise
            log.warning("stopped while the database was down; the unstored batch will be read again",
                        error=_first_line(exc))
        finally:
            self.close()

    def close(self) -> None:
        try:
            self.consumer.close(autocommit=False)
        finally:
            try:
                self.producer.close()
            finally:
                self._drop_connection()
        log.info("sink stopped")

    def health(self) -> dict:
        now = time.monotonic()
        problems = []
        if self._db_down_since is not None and now - self._db_down_since > UNHEALTHY_AFTER_S:
            problems.append(f"database unreachable for {now - self._db_down_since:.0f}s (DATABASE_URL)")
        if now - self._last_loop > UNHEALTHY_AFTER_S:
            problems.append(f"consumer loop stalled for {now - self._last_loop:.0f}s")
        return {
            "status": "unhealthy" if problems else "ok",
            "problems": problems,
            "database_up": self._db_down_since is None,
        }

    # --- one batch ------------------------------------------------------------------------------
    def _collect_batch(self) -> list[ConsumerRecord]:
        """Records until SINK_BATCH_MAX_ROWS or SINK_BATCH_MAX_SECONDS after the first one."""
        batch: list[ConsumerRecord] = []
        max_rows = self.settings.sink_batch_max_rows
        deadline: float | None = None
        while not self.stopping and len(batch) < max_rows:
            wait_s = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            polled = self.consumer.poll(timeout_ms=int(wait_s * 1000), max_records=max_rows - len(batch))
            for records in polled.values():
                batch.extend(records)
            if not batch:
                break  # idle: let the loop report lag and run retention
            if deadline is None:
                deadline = time.monotonic() + self.settings.sink_batch_max_seconds
            elif time.monotonic() >= deadline:
                break
        return batch

    def _handle(self, records: Sequence[ConsumerRecord]) -> None:
        started = time.perf_counter()
        self._unstored = {}
        for record in reversed(records):
            self._unstored[TopicPartition(record.topic, record.partition)] = record.offset
        items: list[Pending] = []
        failed: list[tuple[ConsumerRecord, Exception]] = []
        consumed: dict[str, int] = {}
        for record in records:
            consumed[record.topic] = consumed.get(record.topic, 0) + 1
            try:
                if record.value is None:
                    raise EventDecodeError("invalid_json", ["record has no value (a tombstone is not an event)"])
                event = decode_event(record.value)
                table, row = row_for(event)
            except (EventDecodeError, ValueError) as exc:
                failed.append((record, exc))
                continue
            items.append(Pending(table, row, record))
        for topic, count in consumed.items():
            EVENTS_CONSUMED.labels(topic).inc(count)
        result = self._write(items)
        for rejected in result.rejected:
            WRITE_ERRORS.labels(rejected.item.table.name, rejected.error_class).inc()
            failed.append((rejected.item.origin, DatabaseRejected(rejected.reason)))
        if failed:
            self._dead_letter(failed)
        for table, count in result.written.items():
            ROWS_WRITTEN.labels(table).inc(count)
        self._commit(records)
        BATCH_ROWS.observe(len(records))
        BATCH_DURATION.observe(time.perf_counter() - started)
        log.debug(
            "batch stored", records=len(records), written=result.written, dead_lettered=len(failed),
            transactions=result.transactions,
        )

    def _write(self, items: Sequence[Pending]) -> WriteResult:
        if not items:
            return WriteResult()
        return self._with_database(lambda: self._database_writer().write(items))

    def _with_database(self, work: Callable[[], T]) -> T:
        """Run `work`, waiting out database outages (partitions paused, exponential backoff) until it
        succeeds or the sink stops. Safe to repeat: every write is idempotent."""
        for attempt in Retrying(
            retry=retry_if_exception_type(DATABASE_ERRORS),
            wait=wait_exponential(multiplier=0.5, max=15),
            sleep=self._idle,
            stop=lambda _state: self.stopping,
            before_sleep=self._database_failed,
            reraise=True,
        ):
            with attempt:
                result = work()
        self._database_back()
        return result

    def _dead_letter(self, failed: Iterable[tuple[ConsumerRecord, Exception]]) -> None:
        """Dead letters go to pangan.deadletter.v1, except for records of that topic itself (that would
        loop): those are written straight to the dead_letters table."""
        to_table: list[Pending] = []
        for record, error in failed:
            event = self._dead_letter_event(record, error)
            reason = event.payload.error_type
            EVENTS_DEADLETTERED.labels(record.topic, reason).inc()
            log.warning(
                "record dead-lettered", topic=record.topic, partition=record.partition, offset=record.offset,
                reason=reason, error=event.payload.error_message[:500],
            )
            if record.topic == DEADLETTER_TOPIC:
                to_table.append(Pending(*row_for(event), record))
            else:
                self.producer.send(DEADLETTER_TOPIC, event.payload.kafka_key(), encode_event(event), event.event_type)
        # Acknowledged before the offsets are committed, or the sink stops (DeliveryFailed) and the
        # batch is read again.
        self.producer.flush()
        if to_table:
            for rejected in self._write(to_table).rejected:
                WRITE_ERRORS.labels(rejected.item.table.name, rejected.error_class).inc()
                record = rejected.item.origin
                log.error(
                    "dead letter refused by the database; it stays only in Kafka",
                    topic=record.topic, partition=record.partition, offset=record.offset, error=rejected.reason,
                )

    def _dead_letter_event(self, record: ConsumerRecord, error: Exception) -> AnyEvent:
        # Event id and time come from the record, so a batch read again after a crash produces the
        # same dead letter (stored once) rather than a new one.
        record_time = (
            datetime.fromtimestamp(record.timestamp / 1000, UTC) if record.timestamp >= 0 else datetime.now(UTC)
        )
        payload = dead_letter_for(
            topic=record.topic, partition=record.partition, offset=record.offset, key=record.key,
            value=record.value, error=error, consumer=CONSUMER_NAME, failed_at=datetime.now(UTC),
        )
        if isinstance(error, DatabaseRejected):
            payload = payload.model_copy(
                update={"error_type": "database_rejected", "error_message": str(error)[:10_000],
                        "original_event_id": _event_id(record)}
            )
        return new_event(
            payload,
            occurred_at=record_time,
            source=CONSUMER_NAME,
            event_id=stable_event_id("dead_letter", CONSUMER_NAME, record.topic, record.partition, record.offset,
                                     record_time),
        )

    def _commit(self, records: Sequence[ConsumerRecord]) -> None:
        offsets: dict[TopicPartition, int] = {}
        newest: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
            newest[tp] = max(newest.get(tp, -1), record.timestamp)
        self._unstored.clear()  # stored: whatever happens to the commit, the lag is past them
        try:
            self.consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()})
        except CommitFailedError as exc:
            # The group rebalanced meanwhile: the new owner reads these records again, and writing
            # them again changes nothing.
            log.warning("offset commit refused after a rebalance; records will be read again", error=str(exc))
            return
        for tp, timestamp_ms in newest.items():
            if timestamp_ms >= 0:
                LAST_EVENT_TIMESTAMP.labels(tp.topic, str(tp.partition)).set(timestamp_ms / 1000)

    # --- database -------------------------------------------------------------------------------
    def _database_writer(self) -> BatchWriter:
        if self._writer is None:
            # One attempt here: the retry loop around it waits while still polling Kafka.
            self._conn = connect(
                self.settings, timeout_s=0, keepalives=1, keepalives_idle=10, keepalives_interval=5,
                keepalives_count=3,
            )
            self._writer = BatchWriter(self._conn)
            with self._conn.transaction():
                self._retention_mode = database_retention_mode(self._conn)
            if self._retention_mode is RetentionMode.POLICY:
                ensure_retention_policies(self._conn, self.settings.retention_days)
            DATABASE_UP.set(1)
            log.info(
                "database connected", keeps_rollups=self._writer.keeps_rollups, retention=str(self._retention_mode)
            )
        return self._writer

    def _database_failed(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        WRITE_ERRORS.labels("batch", type(error).__name__).inc()
        DATABASE_UP.set(0)
        if self._db_down_since is None:
            self._db_down_since = time.monotonic()
            log.error("database unavailable; consumption paused", error=_first_line(error))
        self._drop_connection()
        self.consumer.pause(*self.consumer.assignment())

    def _database_back(self) -> None:
        DATABASE_UP.set(1)
        if self._db_down_since is not None:
            log.info("database back; consumption resumed", down_seconds=round(time.monotonic() - self._db_down_since))
            self._db_down_since = None
            self.consumer.resume(*self.consumer.paused())

    def _drop_connection(self) -> None:
        conn, self._conn, self._writer = self._conn, None, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass

    def _idle(self, seconds: float) -> None:
        """Sleep between database retries while staying in the consumer group: poll with every
        partition paused; a record that still arrives (a partition newly assigned by a rebalance)
        is sought back so it is read again once the batch in hand is stored."""
        if not self.consumer.subscription():
            self._last_loop = time.monotonic()
            self._stopping.wait(seconds)  # not consuming yet (waiting for the database at start)
            return
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            self._last_loop = time.monotonic()
            self.consumer.pause(*self.consumer.assignment())
            polled = self.consumer.poll(timeout_ms=int(min(1.0, max(0.0, deadline - time.monotonic())) * 1000))
            for tp, records in polled.items():
                self.consumer.seek(tp, min(r.offset for r in records))
            self._report_lag()

    # --- periodic work --------------------------------------------------------------------------
    def _housekeeping(self, idle: bool) -> None:
        self._report_lag()
        now = time.monotonic()
        if idle and now >= self._next_liveness_check:
            # No batch to notice an outage with: check, so database_up and /healthz stay true.
            self._next_liveness_check = now + LIVENESS_CHECK_INTERVAL_S
            self._with_database(lambda: self._database_writer().ping())
        if now < self._next_retention or self._conn is None:
            return
        self._next_retention = now + RETENTION_INTERVAL_S
        try:
            apply_retention(self._conn, self.settings.retention_days, self._retention_mode or RetentionMode.DELETE)
        except psycopg.Error as exc:
            # Retried at the next interval; a connection problem also shows on the next write.
            log.error("retention failed", error=_first_line(exc))
            self._drop_connection()

    def _report_lag(self) -> None:
        now = time.monotonic()
        if now < self._next_lag_report:
            return
        self._next_lag_report = now + LAG_REPORT_INTERVAL_S
        assignment = list(self.consumer.assignment())
        for gone in self._lag_reported - set(assignment):  # revoked by a rebalance: another sink reports it
            CONSUMER_LAG.remove(gone.topic, str(gone.partition))
        self._lag_reported = set(assignment)
        if not assignment:
            return
        try:
            # Done: up to the batch in hand (a database outage), else the position, which unlike the last
            # stored offset + 1 steps over transaction markers (no lag of 1 forever).
            ends = self.consumer.end_offsets(assignment, timeout_ms=2000)
            for tp in assignment:
                done = self._unstored.get(tp)
                if done is None:
                    done = self.consumer.position(tp, timeout_ms=2000)
                if done is not None and tp in ends:
                    CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, ends[tp] - done))
        except KafkaError as exc:
            log.warning("consumer lag not measured", error=str(exc))


def _event_id(record: ConsumerRecord) -> str | None:
    try:
        return decode_event(record.value).event_id
    except EventDecodeError:
        return None


def _first_line(error: BaseException | None) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0] if error else ""
