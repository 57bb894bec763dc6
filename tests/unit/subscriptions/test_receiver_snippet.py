"""The verification snippet the README gives distributors works against what the dispatcher sends.
Keep `verify_pantau_signature` identical to the README's copy."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid

import pytest

from pantau.subscriptions.delivery import webhook_headers
from pantau.subscriptions.signing import subscription_secret


# --- README snippet (stdlib only) ---------------------------------------------------------------
def verify_pantau_signature(secret: str, header: str, body: bytes, tolerance_s: int = 300) -> None:
    """Raise ValueError unless `header` (X-Pantau-Signature) signs `body`, the raw request bytes."""
    fields = [part.strip().split("=", 1) for part in header.split(",")]
    timestamp = int(next(value for name, value in fields if name == "t"))
    if abs(time.time() - timestamp) > tolerance_s:
        raise ValueError("signature timestamp too old or in the future: possible replay")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, value) for name, value in fields if name == "v1"):
        raise ValueError("signature does not match: wrong secret or altered body")


# --- end of snippet -------------------------------------------------------------------------------


def signed(body: bytes, secret: str, at: int | None = None) -> str:
    subscription = uuid.uuid4()
    headers = webhook_headers(
        secret=secret,
        timestamp=at or int(time.time()),
        body=body,
        delivery=uuid.uuid4(),
        subscription=subscription,
        event_type="AlertOpened",
        event_id=str(uuid.uuid4()),
        attempt=1,
    )
    return headers["X-Pantau-Signature"]


SECRET = subscription_secret("master", uuid.UUID(int=1), 1)
BODY = b'{"event_type":"AlertOpened","payload":{"severity":"alert"}}'


def test_the_snippet_accepts_what_the_dispatcher_signs():
    verify_pantau_signature(SECRET, signed(BODY, SECRET), BODY)


def test_the_snippet_refuses_an_altered_body_a_wrong_secret_and_a_replay():
    header = signed(BODY, SECRET)
    with pytest.raises(ValueError, match="does not match"):
        verify_pantau_signature(SECRET, header, BODY.replace(b"alert", b"watch"))
    with pytest.raises(ValueError, match="does not match"):
        verify_pantau_signature("whsec_other", header, BODY)
    with pytest.raises(ValueError, match="possible replay"):
        verify_pantau_signature(SECRET, signed(BODY, SECRET, at=int(time.time()) - 3600), BODY)
