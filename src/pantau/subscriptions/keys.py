"""API keys: `ppk_<key id>_<secret>`. The key id is visible (logs, the admin list, the delivery
log); the whole key is shown once at creation and only its SHA-256 is stored. The secret carries
256 random bits, so a plain hash (no slow KDF) is enough: there is nothing to brute-force."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "ppk"
_KEY = re.compile(r"^ppk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class MalformedKeyError(ValueError):
    """The string is not shaped like a Pantau API key (it cannot be valid, no lookup needed)."""


@dataclass(frozen=True)
class NewKey:
    key_id: str
    key: str  # shown once to the distributor, never stored
    key_hash: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> NewKey:
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return NewKey(key_id=key_id, key=key, key_hash=hash_key(key))


def key_id_of(key: str) -> str:
    """The visible id part of a presented key; MalformedKeyError when it is not a Pantau key."""
    match = _KEY.match(key)
    if not match:
        raise MalformedKeyError("API key must look like ppk_<12 hex>_<43 characters>, as issued")
    return match[1]


def key_matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)
