"""Webhook signatures, Stripe-style: the dispatcher sends

    X-Pantau-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">

keyed with the subscription's secret. A receiver recomputes the HMAC over the exact bytes it got
and refuses old timestamps (replays). Each subscription's secret is derived from WEBHOOK_SECRET_KEY
and the subscription id (and a version bumped on rotation), so the database holds no signing secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid

SIGNATURE_HEADER = "X-Pantau-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """The signature header is missing, malformed, stale or does not match the body."""


def subscription_secret(master_key: str, subscription_id: uuid.UUID, version: int) -> str:
    digest = hmac.new(master_key.encode(), f"{subscription_id}:{version}".encode(), hashlib.sha256)
    return "whsec_" + digest.hexdigest()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check a signature header against the raw body; returns its timestamp or raises SignatureError."""
    if not header:
        raise SignatureError(f"{SIGNATURE_HEADER} header is missing")
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError(f"{SIGNATURE_HEADER} part {part!r} is not name=value")
        fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        raise SignatureError(f"{SIGNATURE_HEADER} has no integer t=<unix seconds>") from None
    candidates = fields.get("v1", [])
    if not candidates:
        raise SignatureError(f"{SIGNATURE_HEADER} has no v1=<hex> signature")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError(f"signature timestamp {timestamp} is more than {tolerance_s}s from now")
    expected = signature(secret, timestamp, body)
    # Several v1 values may be sent while a secret is rotated; one match is enough.
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("signature does not match the body (wrong secret or the body was altered)")
    return timestamp
