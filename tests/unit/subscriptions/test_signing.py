"""Webhook signatures: a receiver holding the secret accepts our bodies and detects any change."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pantau.subscriptions.signing import SignatureError, signature_header, subscription_secret, verify

SECRET = subscription_secret("master", uuid.UUID(int=7), 1)
NOW = 1_780_000_000


@given(body=st.binary(max_size=2000))
def test_a_signed_body_verifies(body):
    header = signature_header(SECRET, NOW, body)
    assert verify(SECRET, header, body, now=NOW + 5) == NOW


@given(body=st.binary(min_size=1, max_size=500), position=st.integers(min_value=0), flip=st.integers(1, 255))
def test_any_tampered_byte_fails_verification(body, position, flip):
    header = signature_header(SECRET, NOW, body)
    index = position % len(body)
    tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    with pytest.raises(SignatureError, match="does not match the body"):
        verify(SECRET, header, tampered, now=NOW)


def test_another_subscriptions_secret_fails_verification():
    other = subscription_secret("master", uuid.UUID(int=8), 1)
    header = signature_header(other, NOW, b"{}")
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, header, b"{}", now=NOW)


def test_a_changed_timestamp_fails_verification():
    header = signature_header(SECRET, NOW, b"{}").replace(f"t={NOW}", f"t={NOW + 1}")
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, header, b"{}", now=NOW)


def test_an_old_signature_is_refused_as_a_replay():
    header = signature_header(SECRET, NOW, b"{}")
    with pytest.raises(SignatureError, match="more than 300s from now"):
        verify(SECRET, header, b"{}", now=NOW + 301)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("v1=abc", "integer t="),
        ("t=1", "no v1="),
        ("t=1,garbage", "name=value"),
    ],
)
def test_a_malformed_header_is_refused_with_the_reason(header, reason):
    with pytest.raises(SignatureError, match=reason):
        verify(SECRET, header, b"{}", now=1)


def test_rotating_a_subscriptions_secret_changes_it_and_the_master_key_is_not_revealed():
    subscription = uuid.uuid4()
    first = subscription_secret("master", subscription, 1)
    second = subscription_secret("master", subscription, 2)
    assert first != second
    assert first.startswith("whsec_") and "master" not in first
    assert subscription_secret("master", subscription, 1) == first  # derived, so nothing is stored
