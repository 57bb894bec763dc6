"""Delivery ids and the webhook request's headers (documented in the README)."""

from __future__ import annotations

import uuid

from pantau.subscriptions.signing import SIGNATURE_HEADER, signature_header

DELIVERY_ID_HEADER = "X-Pantau-Delivery-Id"
EVENT_TYPE_HEADER = "X-Pantau-Event-Type"
EVENT_ID_HEADER = "X-Pantau-Event-Id"
SUBSCRIPTION_ID_HEADER = "X-Pantau-Subscription-Id"
ATTEMPT_HEADER = "X-Pantau-Attempt"
USER_AGENT = "pantau-dispatcher/1"


def delivery_id(subscription_id: uuid.UUID, alert_event_id: uuid.UUID | str) -> uuid.UUID:
    """Stable across retries, redeliveries and a re-read of the topic: receivers deduplicate on it."""
    return uuid.uuid5(subscription_id, str(alert_event_id))


def webhook_headers(
    *,
    secret: str,
    timestamp: int,
    body: bytes,
    delivery: uuid.UUID,
    subscription: uuid.UUID,
    event_type: str,
    event_id: str,
    attempt: int,
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature_header(secret, timestamp, body),
        DELIVERY_ID_HEADER: str(delivery),
        EVENT_TYPE_HEADER: event_type,
        EVENT_ID_HEADER: event_id,
        SUBSCRIPTION_ID_HEADER: str(subscription),
        ATTEMPT_HEADER: str(attempt),
    }
