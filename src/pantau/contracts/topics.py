"""The topics of the contract, read from contracts/asyncapi.yaml (the single source).

The name constants exist so that code can say PRICE_TOPIC instead of a string; a unit test keeps
them equal to the AsyncAPI document. `topic_specs()` gives what `pantau topics` needs to create
them: partitions, retention and cleanup policy from the channels' Kafka bindings."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from pantau.settings import REPO_ROOT

ASYNCAPI_PATH = REPO_ROOT / "contracts" / "asyncapi.yaml"

HARVEST_TOPIC = "pangan.harvest.v1"
SHIPMENT_TOPIC = "pangan.shipment.v1"
PRICE_TOPIC = "pangan.price.v1"
ALERT_TOPIC = "pangan.alert.v1"
DEADLETTER_TOPIC = "pangan.deadletter.v1"
TOPICS = (HARVEST_TOPIC, SHIPMENT_TOPIC, PRICE_TOPIC, ALERT_TOPIC, DEADLETTER_TOPIC)


class ContractError(ValueError):
    """The AsyncAPI document lacks something the code needs; the message names the place."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replicas: int  # production intent; creation uses KAFKA_REPLICATION_FACTOR
    retention_ms: int
    cleanup_policy: str
    key_description: str
    event_types: tuple[str, ...]
    producers: tuple[str, ...]
    consumers: tuple[str, ...]

    @property
    def config(self) -> dict[str, str]:
        """Kafka topic configuration for topic creation."""
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup_policy}


def _get(node: Any, path: str | list[str], where: str) -> Any:
    """node[a][b] for path "a.b" (or ["a.b"] for a key holding a dot), naming what is missing."""
    for part in path.split(".") if isinstance(path, str) else path:
        if not isinstance(node, dict) or part not in node:
            raise ContractError(f"{where}: missing {path!r}")
        node = node[part]
    return node


def _resolve(document: dict, ref: str, where: str) -> Any:
    if not ref.startswith("#/"):
        raise ContractError(f"{where}: only local $refs are followed here, got {ref!r}")
    node: Any = document
    for part in ref[2:].split("/"):
        if not isinstance(node, dict) or part not in node:
            raise ContractError(f"{where}: $ref {ref!r} does not resolve")
        node = node[part]
    return node


def _deref(document: dict, node: Any, where: str) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = _resolve(document, node["$ref"], where)
    return node


@lru_cache(maxsize=4)
def topic_specs(asyncapi_path: Path = ASYNCAPI_PATH) -> tuple[TopicSpec, ...]:
    """Every channel of the AsyncAPI document as a TopicSpec, in document order."""
    path = Path(asyncapi_path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"{path}: cannot read the AsyncAPI document: {exc}") from exc
    channels = _get(document, "channels", str(path))
    operations = document.get("operations", {})
    specs = []
    for channel_id, channel in channels.items():
        where = f"{path}: channels.{channel_id}"
        binding = _get(channel, "bindings.kafka", where)
        topic_config = _get(binding, "topicConfiguration", where)
        address = _get(channel, "address", where)
        if binding.get("topic", address) != address:
            raise ContractError(f"{where}: kafka binding topic {binding.get('topic')!r} differs from {address!r}")
        messages = [_deref(document, m, where) for m in _get(channel, "messages", where).values()]
        keys = {_deref(document, _get(m, "bindings.kafka.key", where), where).get("description") for m in messages}
        if len(keys) != 1 or None in keys:
            raise ContractError(f"{where}: messages need one shared Kafka key with a description, got {keys}")
        cleanup = topic_config.get("cleanup.policy", ["delete"])
        producers, consumers = [], []
        for operation in operations.values():
            if operation.get("channel", {}).get("$ref") == f"#/channels/{channel_id}":
                services = [t["name"] for t in operation.get("tags", [])]
                (producers if operation.get("action") == "send" else consumers).extend(services)
        specs.append(
            TopicSpec(
                name=address,
                partitions=int(_get(binding, "partitions", where)),
                replicas=int(binding.get("replicas", 1)),
                retention_ms=int(_get(topic_config, ["retention.ms"], where)),
                cleanup_policy=",".join(cleanup) if isinstance(cleanup, list) else str(cleanup),
                key_description=keys.pop(),
                event_types=tuple(_get(m, "name", where) for m in messages),
                producers=tuple(dict.fromkeys(producers)),
                consumers=tuple(dict.fromkeys(consumers)),
            )
        )
    return tuple(specs)


def topic_spec(name: str) -> TopicSpec:
    for spec in topic_specs():
        if spec.name == name:
            return spec
    raise KeyError(f"topic {name!r} is not in {ASYNCAPI_PATH}")
