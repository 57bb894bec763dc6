"""The local Kafka broker's cluster id: its storage tool must be able to read it as an argument."""

from __future__ import annotations

import uuid

from pantau import devstack


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch):
    dashed = uuid.UUID(bytes=b"\xf8" + bytes(15))  # base64 "-AAAA...": the tool took it for an option
    plain = uuid.UUID(bytes=bytes(range(16)))
    drawn = iter([dashed, plain])
    monkeypatch.setattr(devstack.uuid, "uuid4", lambda: next(drawn))
    assert devstack.kafka_cluster_id() == "AAECAwQFBgcICQoLDA0ODw"


def test_cluster_ids_are_22_url_safe_base64_characters():
    ids = {devstack.kafka_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert set("".join(ids)) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
