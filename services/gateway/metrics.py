"""Gateway-specific metrics; the HTTP request metrics are pantau.http's."""

from __future__ import annotations

from prometheus_client import Counter

EVENTS_REJECTED = Counter("pantau_gateway_events_rejected_total", "Events refused with 422, by reason.", ["reason"])
DUPLICATES = Counter("pantau_gateway_duplicates_total", "Events resubmitted with an event_id already accepted.")
