"""`python -m services.sink`: wait for the topics and the schema, serve /metrics and /healthz on
SINK_PORT, consume until SIGTERM/SIGINT (the batch in hand is stored and committed first)."""

from __future__ import annotations

import signal
import sys
from typing import Any

from pantau.db import wait_for_schema
from pantau.kafka import BrokerUnavailable, wait_for_topics
from pantau.logging import configure_logging
from pantau.metrics import serve_metrics
from pantau.settings import Settings
from services.sink.service import TOPICS, Sink


def main() -> int:
    settings = Settings()
    log = configure_logging(settings, service="sink")
    try:
        return _serve(settings, log)
    except BrokerUnavailable as exc:  # absent at the start, or gone while the sink joined its group
        log.error("kafka unavailable", error=str(exc))
        return 1


def _serve(settings: Settings, log: Any) -> int:
    wait_for_topics(settings, TOPICS)
    wait_for_schema(settings)
    sink = Sink(settings, group_id=settings.sink_consumer_group)
    server = serve_metrics(settings.service_host, settings.sink_port, sink.health, "SINK_PORT")

    def on_signal(signum: int, _frame: object) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        sink.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        sink.run()
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
