"""Metrics replay: drives the real metric objects of one service with realistic values and serves them on
/metrics, so a real Prometheus can scrape the series the pipeline dashboard and the alert rules read.

It is not a stand-in service: it consumes and stores nothing. It imports the shared metrics
(pantau.metrics) and every service metrics module that exists (services/<name>/metrics.py); metrics
of the brief's contract that no module defines yet (today the processor's) are created here from
pantau.dashboards.DOCUMENTED_METRICS, with the documented names and labels.

    python -m tests.integration.dashboards.metrics_replay --service processor --port 19412
"""

from __future__ import annotations

import argparse
import importlib
import random
import signal
import threading
import time
from collections.abc import Callable

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

import pantau.http  # noqa: F401 (registers the HTTP metrics)
import pantau.metrics
from pantau.dashboards import DOCUMENTED_METRICS
from pantau.settings import REPO_ROOT

SERVICES_WITH_REPLAY = ("simulator", "processor", "sink")
SOURCE_TOPICS = ("pangan.harvest.v1", "pangan.shipment.v1", "pangan.price.v1")
ALL_TOPICS = (*SOURCE_TOPICS, "pangan.alert.v1", "pangan.deadletter.v1")
PARTITIONS = {"pangan.harvest.v1": 3, "pangan.shipment.v1": 6, "pangan.price.v1": 6, "pangan.alert.v1": 3,
              "pangan.deadletter.v1": 1}
MARKETS = ("pibc", "pikj", "prov_18", "prov_31", "pasar_smep")


def import_service_metrics() -> list[str]:
    """Import every services/<name>/metrics.py so their collectors are registered; returns the modules."""
    modules = []
    for path in sorted((REPO_ROOT / "services").glob("*/metrics.py")):
        name = f"services.{path.parent.name}.metrics"
        importlib.import_module(name)
        modules.append(name)
    return modules


def metric(name: str) -> Counter | Gauge | Histogram:
    """The registered collector of a documented metric, created from the contract if no module has it."""
    collector = REGISTRY._names_to_collectors.get(name)  # noqa: SLF001 (the registry has no public lookup)
    if collector is not None:
        return collector
    kind, labels = DOCUMENTED_METRICS[name]
    documentation = f"{name} (created by the metrics replay: no service module defines it yet)"
    if kind == "counter":
        return Counter(name, documentation, labels)
    if kind == "gauge":
        return Gauge(name, documentation, labels)
    return Histogram(name, documentation, labels, buckets=pantau.metrics.LATENCY_BUCKETS)


def simulator_step(rng: random.Random, dt: float) -> None:
    for topic, event_type, per_second in (("pangan.price.v1", "PriceObserved", 20),
                                          ("pangan.shipment.v1", "ShipmentCheckpointPassed", 30),
                                          ("pangan.harvest.v1", "HarvestReported", 2)):
        metric("pantau_events_produced_total").labels(topic=topic, event_type=event_type).inc(per_second * dt)
        metric("pantau_produce_latency_seconds").labels(topic=topic).observe(rng.uniform(0.002, 0.04))


def _consumer_step(rng: random.Random, dt: float, topics: tuple[str, ...], lag_scale: int) -> None:
    now = time.time()
    for topic in topics:
        metric("pantau_events_consumed_total").labels(topic=topic).inc(rng.uniform(5, 30) * dt)
        for partition in range(PARTITIONS[topic]):
            metric("pantau_consumer_lag_messages").labels(topic=topic, partition=str(partition)).set(
                rng.randint(0, lag_scale))
            metric("pantau_last_event_timestamp_seconds").labels(topic=topic, partition=str(partition)).set(
                now - rng.uniform(0, 2))


def processor_step(rng: random.Random, dt: float) -> None:
    _consumer_step(rng, dt, SOURCE_TOPICS, lag_scale=200)
    for topic in SOURCE_TOPICS:
        metric("pantau_processor_processing_seconds").labels(topic=topic).observe(rng.uniform(0.0005, 0.02))
        if rng.random() < 0.05:
            metric("pantau_processor_late_events_total").labels(topic=topic).inc()
        if rng.random() < 0.05:
            metric("pantau_processor_duplicates_total").labels(topic=topic).inc()
    if rng.random() < 0.2:
        metric("pantau_events_deadlettered_total").labels(topic="pangan.price.v1", reason="schema_violation").inc()
    for alert_type, severity in (("price_spike", "alert"), ("supply_gap", "watch")):
        metric("pantau_event_to_alert_latency_seconds").labels(alert_type=alert_type).observe(rng.uniform(0.02, 0.3))
        metric("pantau_alerts_emitted_total").labels(alert_type=alert_type, transition="opened",
                                                     severity=severity).inc()
        metric("pantau_events_produced_total").labels(topic="pangan.alert.v1", event_type="AlertOpened").inc()
    for market in MARKETS:
        metric("pantau_price_last_observed_timestamp_seconds").labels(market=market).set(
            time.time() - rng.uniform(0, 3600))


def sink_step(rng: random.Random, dt: float) -> None:
    _consumer_step(rng, dt, ALL_TOPICS, lag_scale=1000)
    for table in ("price_observations", "harvests", "shipment_events", "alert_events", "dead_letters"):
        metric("pantau_sink_rows_written_total").labels(table=table).inc(rng.uniform(1, 40) * dt)
    metric("pantau_sink_batch_duration_seconds").observe(rng.uniform(0.01, 0.3))
    metric("pantau_sink_batch_rows").observe(rng.randint(1, 500))
    if rng.random() < 0.05:
        metric("pantau_sink_write_errors_total").labels(table="batch", error="OperationalError").inc()
    metric("pantau_sink_database_up").set(1)


STEPS: dict[str, Callable[[random.Random, float], None]] = {
    "simulator": simulator_step, "processor": processor_step, "sink": sink_step,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", choices=SERVICES_WITH_REPLAY, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    import_service_metrics()
    server = pantau.metrics.serve_metrics(
        "127.0.0.1", args.port, lambda: {"status": "ok", "metrics_replay": args.service}, "--port")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    rng = random.Random(args.seed)
    step = STEPS[args.service]
    interval = 0.2
    while not stop.wait(interval):
        step(rng, interval)
    server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
