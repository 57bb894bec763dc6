"""API keys: shown once, stored only as a hash, recognised by their visible id."""

from __future__ import annotations

import pytest

from pantau.subscriptions.keys import MalformedKeyError, generate_key, hash_key, key_id_of, key_matches


def test_a_new_key_carries_its_visible_id_and_only_its_hash_is_kept():
    new = generate_key()
    assert new.key.startswith(f"ppk_{new.key_id}_")
    assert key_id_of(new.key) == new.key_id
    assert new.key_hash == hash_key(new.key)
    assert new.key not in new.key_hash


def test_two_keys_never_repeat():
    keys = {generate_key().key for _ in range(200)}
    assert len(keys) == 200


def test_the_stored_hash_recognises_its_key_and_refuses_a_changed_one():
    new = generate_key()
    assert key_matches(new.key, new.key_hash)
    altered = new.key[:-1] + ("A" if new.key[-1] != "A" else "B")
    assert not key_matches(altered, new.key_hash)


@pytest.mark.parametrize("text", ["", "Bearer x", "ppk_123_abc", "sk_live_" + "a" * 40])
def test_a_string_not_shaped_like_a_key_is_refused_before_any_lookup(text):
    with pytest.raises(MalformedKeyError, match="ppk_<12 hex>"):
        key_id_of(text)
