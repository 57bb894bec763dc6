"""Metrics every service shares (names are a contract with dashboards and alert rules), and the
small HTTP endpoint that serves /metrics and /healthz for services that have no web app."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

EVENTS_PRODUCED = Counter(
    "pantau_events_produced_total", "Events acknowledged by Kafka, by topic and event type.", ["topic", "event_type"]
)
PRODUCE_ERRORS = Counter(
    "pantau_produce_errors_total", "Events Kafka did not acknowledge, by topic and error class.", ["topic", "error"]
)
PRODUCE_LATENCY = Histogram(
    "pantau_produce_latency_seconds", "Send to broker acknowledgement.", ["topic"], buckets=LATENCY_BUCKETS
)
EVENTS_CONSUMED = Counter("pantau_events_consumed_total", "Events read from a topic.", ["topic"])
EVENTS_DEADLETTERED = Counter(
    "pantau_events_deadlettered_total",
    "Events sent to the dead-letter topic, by source topic and reason class.",
    ["topic", "reason"],
)
CONSUMER_LAG = Gauge(
    "pantau_consumer_lag_messages", "Messages behind the partition's end offset.", ["topic", "partition"]
)
LAST_EVENT_TIMESTAMP = Gauge(
    "pantau_last_event_timestamp_seconds", "Kafka timestamp of the last event handled.", ["topic", "partition"]
)
ALERTS_EMITTED = Counter(
    "pantau_alerts_emitted_total", "Alert lifecycle events emitted.", ["alert_type", "transition", "severity"]
)

HealthCheck = Callable[[], dict]


class _Handler(BaseHTTPRequestHandler):
    health: HealthCheck

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.startswith("/metrics"):
            self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
        elif self.path.startswith("/healthz"):
            status = self.health()
            code = 200 if status.get("status") == "ok" else 503
            self._send(code, json.dumps(status).encode(), "application/json")
        else:
            self._send(404, b'{"detail": "try /metrics or /healthz"}', "application/json")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # scrapes every few seconds would flood the log
        pass


def serve_metrics(host: str, port: int, health: HealthCheck, port_variable: str) -> ThreadingHTTPServer:
    """Serve /metrics and /healthz on a daemon thread; `health()` returns {"status": "ok"|..., ...}.

    `port_variable` names the setting that moves the port, for the error when it is taken."""
    handler = type("Handler", (_Handler,), {"health": staticmethod(health)})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise SystemExit(
            f"cannot listen on {host}:{port} for /metrics and /healthz: {exc.strerror}; "
            f"free the port or set {port_variable} to another one"
        ) from exc
    threading.Thread(target=server.serve_forever, name=f"metrics:{port}", daemon=True).start()
    return server
