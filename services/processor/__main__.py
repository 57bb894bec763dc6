"""`python -m services.processor`: the Faust worker that detects price spikes, price disparities,
supply gaps, route disruptions and unshipped harvests, and emits alerts to pangan.alert.v1.

Settings: KAFKA_BOOTSTRAP_SERVERS, PROCESSING_GUARANTEE (exactly_once | at_least_once),
PROCESSOR_LATE_TOLERANCE_HOURS, PROCESSOR_PORT (/metrics, /healthz), PROCESSOR_APP_ID (consumer group),
PROCESSOR_TOPIC_PREFIX (tests only), PROCESSOR_BATCH_MAX_EVENTS,
PROCESSOR_SESSION_TIMEOUT_SECONDS, PROCESSOR_TICK_SECONDS, PROCESSOR_TICK_EVENT_MINUTES.
Stops cleanly on SIGTERM/SIGINT; exits non-zero when Kafka refuses a commit (a restart recovers).
"""

from __future__ import annotations

import gc
import sys

import faust

from pantau.kafka import BrokerUnavailable, ensure_topics, wait_for_topics
from pantau.logging import configure_logging
from pantau.metrics import serve_metrics
from pantau.settings import Settings
from services.processor.app import create_app
from services.processor.topics import TopicNames

GC_YOUNG_THRESHOLD = 100_000  # allocations between young collections (Python's default: 700)


def main() -> int:
    settings = Settings()
    log = configure_logging(settings, "processor")
    names = TopicNames.from_settings(settings)
    try:
        wait_for_topics(settings, [names.price, names.shipment, names.harvest, names.alert, names.deadletter])
    except BrokerUnavailable as exc:
        log.error("kafka unavailable", error=str(exc))
        return 1
    processor = create_app(settings)
    ensure_topics(settings, processor.internal_topics())
    server = serve_metrics(settings.service_host, settings.processor_port, processor.health.check, "PROCESSOR_PORT")
    log.info(
        "processor starting", app_id=settings.processor_app_id, guarantee=settings.processing_guarantee,
        port=settings.processor_port, topics=[names.price, names.shipment, names.harvest],
    )  # fmt: skip
    worker = faust.Worker(
        processor.app,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,  # keep pantau.logging's structlog handlers
    )
    # Faust's spinner writes cursor escapes ("\x1b[?25l", "\x1b[?25h") even when stdout is not a terminal,
    # into the log under supervisord (faust-streaming 0.11: Spinner.begin ignores isatty).
    worker.spinner = None
    # The cyclic GC took about a tenth of a catch-up's CPU: young collections every 700 allocations
    # scanned the table states again and again. What exists now (modules, reference data, Faust)
    # never needs scanning, and young collections can wait for more allocations: a batch allocates
    # hundreds of thousands of objects (a repartition bundle's items), and at 10,000 its held items
    # were promoted and scanned again by older collections, about 9 % of the mix's CPU; at 100,000
    # about 5 %, in pauses of some 40 ms (make bench).
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
    try:
        worker.execute_from_commandline()  # handles SIGTERM/SIGINT; raises SystemExit
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
