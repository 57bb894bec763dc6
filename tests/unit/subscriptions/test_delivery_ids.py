"""Delivery ids are stable, so a receiver can deduplicate at-least-once deliveries."""

from __future__ import annotations

import uuid

from pantau.subscriptions.delivery import delivery_id, webhook_headers
from pantau.subscriptions.signing import verify


def test_the_same_alert_event_to_the_same_subscription_always_has_the_same_delivery_id():
    subscription, event = uuid.uuid4(), uuid.uuid4()
    assert delivery_id(subscription, event) == delivery_id(subscription, str(event))
    assert delivery_id(subscription, event) != delivery_id(uuid.uuid4(), event)
    assert delivery_id(subscription, event) != delivery_id(subscription, uuid.uuid4())


def test_the_webhook_headers_carry_a_signature_a_receiver_can_verify():
    subscription, body = uuid.uuid4(), b'{"event_type":"AlertOpened"}'
    headers = webhook_headers(
        secret="s",
        timestamp=100,
        body=body,
        delivery=delivery_id(subscription, "e"),
        subscription=subscription,
        event_type="AlertOpened",
        event_id="e",
        attempt=3,
    )
    assert verify("s", headers["X-Pantau-Signature"], body, now=100) == 100
    assert headers["X-Pantau-Delivery-Id"] == str(delivery_id(subscription, "e"))
    assert headers["X-Pantau-Event-Type"] == "AlertOpened"
    assert headers["X-Pantau-Attempt"] == "3"
