"""The dispatcher's metrics (names are a contract with dashboards and alert rules)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from pantau.metrics import LATENCY_BUCKETS

# outcome: delivered | http_error | timeout | connection_error
WEBHOOK_DELIVERIES = Counter("pantau_webhook_deliveries_total", "Webhook delivery attempts, by outcome.", ["outcome"])
WEBHOOK_DELIVERY_SECONDS = Histogram(
    "pantau_webhook_delivery_seconds",
    "Duration of one webhook POST, until the answer or the error.",
    buckets=LATENCY_BUCKETS,
)
WEBHOOK_PENDING = Gauge(
    "pantau_webhook_pending_deliveries", "Deliveries queued and not yet delivered nor dead-lettered."
)
WEBHOOK_DEADLETTERED = Counter(
    "pantau_webhook_deadlettered_total", "Deliveries given up after DISPATCHER_MAX_ATTEMPTS failures."
)
WEBHOOK_QUEUED = Counter(
    "pantau_dispatcher_deliveries_queued_total",
    "Deliveries written to the outbox (one per matching subscription).",
)
