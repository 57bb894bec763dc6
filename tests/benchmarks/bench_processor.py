"""Processor throughput per worker and event-to-alert latency, on the test stack's real Kafka (started
here if it is not running), with real workers (`python -m services.processor` subprocesses).

    .venv/bin/python -m tests.benchmarks.bench_processor [--events 60000] [--seconds 25]   (or: make bench)

Prints, each next to its target (printed, not asserted):
- events/s one worker handles at full speed (exactly_once), input pre-loaded: the simulator's event mix
  (shipments, prices, harvests: every stage and repartition runs) and prices only (the hot path).
  End to end: until the repartition stages (disparity, aggregates) have handled every record the
  source stages forwarded, not just until the source topics are read (the intake rate is shown
  too). By wall clock, and per CPU second of the worker process (the broker shares this machine's
  cores, so the wall-clock figure swings with its load; the CPU figure much less); with the
  repartition items written per source event (each is encoded, decoded and held again) and the
  records that carried them (bundles: Kafka's per-record costs are paid per bundle);
- the same for a bare Faust agent loop over raw bytes in the same run (Faust's per-record path, which
  the processor's agents bypass: they get each fetched list of records at once; the ratio survives a
  busy machine better than the absolute figures);
- the Kafka I/O floor: plain aiokafka consuming the mix's events and writing one record of the same
  size back per event, in one transaction with the offsets per fetched batch, and nothing else. What it
  costs per event is spent before any decoding or detection, so it shows how much of the target's
  per-event budget (50 us at 20k events/s) is left for the processing;
- event-to-alert latency p50/p95/p99 at 1,000 events/s input: from the triggering event's send to a
  read_committed consumer receiving the alert.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka import KafkaConsumer, TopicPartition

from pantau.contracts import (
    ALERT_TOPIC,
    HARVEST_TOPIC,
    PRICE_TOPIC,
    SHIPMENT_TOPIC,
    WIB,
    PriceObserved,
    decode_event,
    encode_event,
    kafka_key,
    new_event,
    topic_spec,
)
from pantau.devstack import LocalInfra, port_is_open
from pantau.kafka import EventProducer, ensure_topics
from pantau.reference import load_reference
from pantau.settings import REPO_ROOT
from pantau.simulation import Simulation
from pantau.simulation.engine import GroundTruth
from services.processor.topics import TopicNames
from tests.conftest import TEST_DIR, _start, make_settings
from tests.integration.processor.workers import ProcessorEnv, _Topic

THROUGHPUT_TARGET = 20_000
BATCH_MAX_EVENTS = 5000  # per batch at full speed (the setting's default suits live rates)
LATENCY_P99_TARGET_S = 0.5
SOURCE_TOPICS = (PRICE_TOPIC, SHIPMENT_TOPIC, HARVEST_TOPIC)
START = datetime(2026, 3, 1, 8, tzinfo=WIB)


def simulator_events(count: int) -> list:
    simulation = Simulation(load_reference(), seed=11, start=START, scenarios=())
    events = []
    for item in simulation.run():
        if isinstance(item, GroundTruth):
            continue
        events.append(item)
        if len(events) >= count:
            return events
    return events


def price_events(count: int) -> list:
    commodities = ("beras", "cabai_merah", "bawang_merah", "gula_pasir", "daging_ayam", "telur_ayam")
    markets = [f"bench_m{i}" for i in range(max(1, count // (len(commodities) * 60)))]
    events = []
    for day in range(10_000):
        for commodity in commodities:
            for market in markets:
                payload = PriceObserved(commodity=commodity, quality_grade="medium", market_code=market,
                                        province_code="31", price_level="wholesale", unit="kg",
                                        price_idr_per_kg=10_000.0 + 37 * ((day * 7 + len(market)) % 11))  # fmt: skip
                events.append(new_event(payload, occurred_at=START + timedelta(days=day), source="bench"))
                if len(events) >= count:
                    return events
    return events


def progress(worker, topics, metric: str = "pantau_events_consumed_total") -> tuple[float, float]:
    """(events the worker has handled from `topics`, CPU seconds its process has used), from /metrics;
    or the sum of another per-topic counter `metric`."""
    total = cpu = 0.0
    for line in worker.metrics().splitlines():
        if line.startswith(metric + "{") and any(f'topic="{t}"' in line for t in topics):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith("process_cpu_seconds_total "):
            cpu = float(line.rsplit(" ", 1)[1])
    return total, cpu


def records_in(settings, topics: list[str]) -> int:
    """Records written to `topics` so far (sum of their partitions' end offsets)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


@dataclass(frozen=True)
class Throughput:
    intake_per_s: float  # source events handled per second (the stages reading the contract topics)
    events_per_s: float  # end to end: until the repartition stages have handled all they were sent
    events_per_cpu_s: float  # end to end, per CPU second of the worker process (steadier when shared)
    forwards_per_event: float  # repartition items the source stages wrote per source event
    bundles_per_event: float  # and the records (bundles) that carried them


def full_speed(env: ProcessorEnv, events: list, label: str) -> Throughput:
    """Pre-load `events`, start one worker, time it from its first consumed event until the last one
    and everything it forwarded to the repartition stages (disparity, aggregates) are handled."""
    env.produce(events)
    worker = env.worker(label, PROCESSOR_BATCH_MAX_EVENTS=str(BATCH_MAX_EVENTS),
                        LOG_LEVEL="WARNING").start()  # fmt: skip
    worker.wait_assigned(timeout_s=180)
    names = TopicNames.from_settings(env.settings.model_copy(update={"processor_app_id": env.app_id}))
    repartitions = [names.price_by_commodity, names.aggregates]
    first = intake_done = forwarded = bundles = None
    deadline = time.monotonic() + 900
    while True:
        now = time.monotonic()
        if intake_done is None:
            done, cpu = progress(worker, SOURCE_TOPICS)  # metrics name contract topics by contract name
            if first is None and done > 0:
                first = (now, done, cpu)
            if done >= len(events):
                intake_done = now
                # final: only source stages forward (counted when their batch commits, as consumed events)
                forwarded, _ = progress(worker, repartitions, "pantau_processor_forwarded_items_total")
                bundles = records_in(env.settings, repartitions)
        if intake_done is not None:
            handled, cpu = progress(worker, repartitions)
            if handled >= forwarded:
                break
        if now > deadline:
            raise SystemExit(f"{label}: not done in 15 min ({done:.0f} of {len(events)} events consumed); "
                             f"log:\n{worker.log_tail()}")  # fmt: skip
        time.sleep(0.5)  # a scrape takes the GIL: polling less often disturbs the worker less
    worker.stop()
    start_at, start_count, start_cpu = first
    counted = len(events) - start_count
    return Throughput(
        intake_per_s=counted / max(intake_done - start_at, 1e-9),
        events_per_s=counted / max(now - start_at, 1e-9),
        events_per_cpu_s=counted / max(cpu - start_cpu, 1e-9),
        forwards_per_event=forwarded / len(events),
        bundles_per_event=bundles / len(events),
    )


BARE_LOOP = """
import os, sys, time, faust
n = int(sys.argv[2]); seen = [0, None]
app = faust.App(sys.argv[3], broker="kafka://" + sys.argv[4], web_enabled=False, autodiscover=False,
                consumer_auto_offset_reset="earliest", broker_session_timeout=6, broker_heartbeat_interval=0.6,
                processing_guarantee="at_least_once", datadir=sys.argv[5])
topic = app.topic(sys.argv[1], key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
@app.agent(topic)
async def loop(stream):
    async for value in stream:
        if seen[1] is None:
            seen[1] = time.perf_counter()
        seen[0] += 1
        if seen[0] >= n:
            print(f"RATE {(n - 1) / (time.perf_counter() - seen[1]):.0f}", flush=True)
            os._exit(0)
faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False).execute_from_commandline()
"""


async def _echo_transactionally(settings, topics: list[str], sink: str, count: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this thread) to read `count` records of `topics` and write each back
    to `sink`, one transaction per fetched batch with its offsets, batched per partition as the
    committer sends. aiokafka runs in the calling thread, so the thread's CPU time is all of it."""
    group = f"{sink}-reader"
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=settings.kafka_bootstrap_servers, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                isolation_level="read_committed")  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, transactional_id=group)
    await consumer.start()
    await producer.start()
    try:
        partitions = len(await producer.partitions_for(sink))
        seen, started = 0, None
        while seen < count:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=BATCH_MAX_EVENTS)
            if not fetched:
                continue
            if started is None:
                started = (time.perf_counter(), time.thread_time())
            async with producer.transaction():
                acks = []
                for tp, records in fetched.items():
                    batch = producer.create_batch()
                    for record in records:
                        if batch.append(key=record.key, value=record.value, timestamp=None) is None:
                            acks.append(await producer.send_batch(batch, sink, partition=tp.partition % partitions))
                            batch = producer.create_batch()
                            batch.append(key=record.key, value=record.value, timestamp=None)
                    acks.append(await producer.send_batch(batch, sink, partition=tp.partition % partitions))
                    seen += len(records)
                await asyncio.gather(*acks)
                await producer.send_offsets_to_transaction(
                    {tp: records[-1].offset + 1 for tp, records in fetched.items()}, group
                )
        return time.perf_counter() - started[0], time.thread_time() - started[1]
    finally:
        await consumer.stop()
        await producer.stop()


def kafka_floor(env: ProcessorEnv, events: list) -> tuple[float, float]:
    """(events/s, events per CPU second) of plain aiokafka without processing: read the events and
    write one record per event back, exactly once per fetched batch. What every event costs before
    the processor's own work begins."""
    env.produce(events)
    topics = sorted({env.topic(event.payload.TOPIC) for event in events})
    sink = env.prefix + "floor-echo"
    ensure_topics(env.settings, [_Topic(sink, topic_spec(SHIPMENT_TOPIC).partitions)])
    wall, cpu = asyncio.run(_echo_transactionally(env.settings, topics, sink, len(events)))
    return len(events) / wall, len(events) / cpu


def bare_faust_loop(env: ProcessorEnv, events: list) -> float:
    """A bare Faust agent over raw bytes (no decoding, no state, no commits of ours)."""
    env.produce(events)
    datadir = Path(tempfile.mkdtemp(prefix="bench-bare-"))
    try:
        result = subprocess.run(
            [sys.executable, "-c", BARE_LOOP, env.topic(PRICE_TOPIC), str(len(events)), f"{env.app_id}-bare",
             env.settings.kafka_bootstrap_servers, str(datadir)],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    finally:
        shutil.rmtree(datadir, ignore_errors=True)
    for line in result.stdout.splitlines():
        if "RATE " in line:  # the worker may prefix terminal escapes
            return float(line.split("RATE ")[1])
    raise SystemExit(f"bare Faust loop did not finish: {result.stdout[-2000:]} {result.stderr[-2000:]}")


def latency(env: ProcessorEnv, rate: float, seconds: float) -> list[float]:
    """Seconds from sending an alert's triggering event to receiving the alert (read_committed)."""
    worker = env.worker("latency", LOG_LEVEL="WARNING").start()
    worker.wait_assigned(timeout_s=180)
    commodities = ("beras", "gula_pasir", "daging_ayam", "telur_ayam", "minyak_goreng")
    # groups of markets run through 30 calm days and a 2-day jump, one group after the other,
    # so that alerts come all through the run
    plan = []
    group = 0
    while len(plan) < rate * seconds:
        markets = [f"lat{group}m{i}" for i in range(8)]
        for day in range(32):
            for commodity in commodities:
                for market in markets:
                    plan.append((commodity, market, day, 1.0 if day < 30 else 1.3))
        group += 1
    plan = plan[: int(rate * seconds)]
    sent_at: dict[tuple[str, str], float] = {}
    received: list[float] = []
    stop = threading.Event()

    def consume() -> None:
        consumer = KafkaConsumer(
            env.topic(ALERT_TOPIC),
            bootstrap_servers=env.settings.kafka_bootstrap_servers,
            auto_offset_reset="earliest",
            group_id=None,
            isolation_level="read_committed",
        )
        try:
            while not stop.is_set():
                for records in consumer.poll(timeout_ms=100).values():
                    now = time.time()
                    for record in records:
                        alert = decode_event(record.value)
                        if alert.event_type != "AlertOpened":
                            continue
                        trigger = (alert.payload.subject, alert.occurred_at.date().isoformat())
                        if trigger in sent_at:
                            received.append(now - sent_at[trigger])
        finally:
            consumer.close()

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    base = {"beras": 13_000, "gula_pasir": 17_500, "daging_ayam": 36_000, "telur_ayam": 28_000, "minyak_goreng": 15_500}
    with EventProducer(env.settings, client_id="bench-latency", linger_ms=0) as producer:
        started = time.monotonic()
        for i, (commodity, market, day, factor) in enumerate(plan):
            due = started + i / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            at = START + timedelta(days=day)
            payload = PriceObserved(commodity=commodity, quality_grade="medium", market_code=market,
                                    province_code="31", price_level="wholesale", unit="kg",
                                    price_idr_per_kg=base[commodity] * factor)  # fmt: skip
            event = new_event(payload, occurred_at=at, source="bench", produced_at=datetime.now(WIB))
            sent_at[(f"price_spike:{commodity}:{market}", at.date().isoformat())] = time.time()
            producer.send(env.topic(PRICE_TOPIC), kafka_key(event), encode_event(event), event.event_type)
        producer.flush()
    time.sleep(5)
    stop.set()
    reader.join()
    worker.stop()
    return received


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000, help="events per full-speed run")
    parser.add_argument("--seconds", type=float, default=25.0, help="length of the 1k events/s latency run")
    args = parser.parse_args(argv or [])
    settings = make_settings(log_level="WARNING")
    infra = LocalInfra(settings, TEST_DIR)
    host, port = settings.kafka_address
    if not port_is_open(host, port):
        _start(infra.kafka(), infra.prepare_kafka, [TEST_DIR / "kafka"])
    logs = Path(tempfile.mkdtemp(prefix="bench-processor-"))
    try:
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (other work skews figures)")
        prices = price_events(args.events)
        mix = simulator_events(args.events)
        rates = {}
        for label, events in (("simulator mix", mix), ("prices only", prices)):
            rate = rates[label] = full_speed(ProcessorEnv.fresh(settings, logs), events, label.split()[0])
            print(f"{label + ',':<15} exactly_once, 1 worker, end to end: {rate.events_per_s:,.0f} events/s, "
                  f"{rate.events_per_cpu_s:,.0f} per worker CPU second   (target >= {THROUGHPUT_TARGET:,}; "
                  f"intake alone {rate.intake_per_s:,.0f} events/s; "
                  f"{rate.forwards_per_event:.2f} repartition items per event, "
                  f"in {rate.bundles_per_event:.3f} records)")
        bare = bare_faust_loop(ProcessorEnv.fresh(settings, logs), prices)
        ratios = ", ".join(f"{label} {rate.events_per_s / bare:.2f}x" for label, rate in rates.items())
        print(f"bare Faust agent loop over raw bytes:   {bare:,.0f} events/s   (Faust's per-record path; "
              f"end to end: {ratios} that)")
        floor, floor_cpu = kafka_floor(ProcessorEnv.fresh(settings, logs), mix)
        budget_us = 1e6 / THROUGHPUT_TARGET
        floor_us = 1e6 / floor_cpu
        above = ", ".join(f"{label} {1e6 / rate.events_per_cpu_s - floor_us:.0f} us" for label, rate in rates.items())
        print(f"Kafka I/O floor (aiokafka, no processing: each mix event read and one record of it written back, "
              f"one transaction per batch): {floor:,.0f} events/s, {floor_cpu:,.0f} per CPU second = "
              f"{floor_us:.0f} us of the {budget_us:.0f} us an event may take at the target; "
              f"the processor's CPU per event above it: {above}")
        delays = latency(ProcessorEnv.fresh(settings, logs), 1000.0, args.seconds)
        if not delays:
            print("event-to-alert latency: no alert received")
        else:
            print(
                f"event-to-alert latency at 1,000 events/s ({len(delays)} alerts): "
                f"p50 {percentile(delays, 0.5) * 1000:.0f} ms, p95 {percentile(delays, 0.95) * 1000:.0f} ms, "
                f"p99 {percentile(delays, 0.99) * 1000:.0f} ms   (target p99 <= {LATENCY_P99_TARGET_S * 1000:.0f} ms; "
                f"mean {statistics.mean(delays) * 1000:.0f} ms)"
            )
    finally:
        shutil.rmtree(logs, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
