"""The processor's own metrics (the shared ones live in pantau.metrics). Names are a contract with the
dashboards and alert rules; label values are bounded (topics, alert types, markets of the reference)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from pantau.metrics import LATENCY_BUCKETS

PROCESSING_SECONDS = Histogram(
    "pantau_processor_processing_seconds",
    "Time to process one batch of events from a topic and commit its outputs.",
    ["topic"],
    buckets=LATENCY_BUCKETS,
)
EVENT_TO_ALERT_LATENCY = Histogram(
    "pantau_event_to_alert_latency_seconds",
    "Triggering event's produced_at to the alert committed to the alert topic.",
    ["alert_type"],
    buckets=LATENCY_BUCKETS,
)
PRICE_LAST_OBSERVED = Gauge(
    "pantau_price_last_observed_timestamp_seconds",
    "Event time of the newest price observed per market.",
    ["market"],
)
LATE_EVENTS = Counter(
    "pantau_processor_late_events_total",
    "Events older than PROCESSOR_LATE_TOLERANCE_HOURS behind their key's newest event (dead-lettered as too_late).",
    ["topic"],
)
DUPLICATES = Counter(
    "pantau_processor_duplicates_total",
    "Events whose event_id was already processed for their key (skipped).",
    ["topic"],
)
HELD_EVENTS = Gauge(
    "pantau_processor_held_events",
    "Repartitioned events waiting until the worker is safely past their event time (time-driven detectors).",
    ["topic"],
)
FORWARDED_ITEMS = Counter(
    "pantau_processor_forwarded_items_total",
    "Items forwarded to a repartition topic, one per key an event concerns (written in bundles, one record per "
    "partition and batch).",
    ["topic"],
)
