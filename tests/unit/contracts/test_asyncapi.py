"""The AsyncAPI document: valid for the official parser, references exactly our schema files, and
agrees with the topic constants and partition counts the code uses."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pantau.contracts import (
    ALERT_TOPIC,
    DEADLETTER_TOPIC,
    EVENT_TOPICS,
    HARVEST_TOPIC,
    PRICE_TOPIC,
    SHIPMENT_TOPIC,
    TOPICS,
    ContractError,
    decode_event,
    kafka_key,
    topic_specs,
)

from .conftest import CONTRACTS, EXAMPLES, SCHEMAS

ASYNCAPI = CONTRACTS / "asyncapi.yaml"
VALIDATE = CONTRACTS / "tools" / "validate.mjs"
DAYS_MS = 24 * 3600 * 1000


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


@pytest.fixture(scope="module")
def document() -> dict:
    return yaml.safe_load(ASYNCAPI.read_text())


def test_asyncapi_references_exactly_the_schema_files(document):
    referenced = {r.split("#")[0] for r in _refs(document) if not r.startswith("#")}
    files = {f"./schemas/{p.name}" for p in SCHEMAS.glob("*.json")}
    assert referenced == files


def test_every_ref_inside_the_schema_files_resolves():
    documents = {p.name: json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}
    for name, schema in documents.items():
        for ref in _refs(schema):
            target_file, _, pointer = ref.partition("#")
            target = documents[target_file] if target_file else schema
            assert target_file in ("", *documents), f"{name}: $ref {ref} names a missing file"
            for part in filter(None, pointer.split("/")):
                assert part in target, f"{name}: $ref {ref} does not resolve"
                target = target[part]


def _run_validator(path: Path | None = None) -> subprocess.CompletedProcess:
    node = shutil.which("node")
    assert node, "node is not installed: Node.js 20 is needed to validate contracts/asyncapi.yaml (make setup)"
    assert (CONTRACTS / "tools" / "node_modules" / "@asyncapi" / "parser").is_dir(), (
        "contracts/tools/node_modules is missing: run `npm ci --prefix contracts/tools`"
    )
    command = [node, str(VALIDATE)] + ([str(path)] if path else [])
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=CONTRACTS.parent)


def test_official_asyncapi_parser_accepts_the_document():
    result = _run_validator()
    assert result.returncode == 0, f"validate.mjs failed:\n{result.stdout}\n{result.stderr}"
    assert "valid AsyncAPI 3.0.0 (5 channels" in result.stdout


def test_validator_fails_on_an_operation_sending_a_message_of_another_channel(tmp_path):
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    broken = ASYNCAPI.read_text().replace(
        "      - $ref: '#/channels/price/messages/PriceObserved'\n    tags: [{name: importer}]",
        "      - $ref: '#/channels/harvest/messages/HarvestReported'\n    tags: [{name: importer}]",
    )
    assert broken != ASYNCAPI.read_text()
    (tmp_path / "asyncapi.yaml").write_text(broken)
    result = _run_validator(tmp_path / "asyncapi.yaml")
    assert result.returncode == 1
    assert "importerSendsPrices" in result.stdout
    assert "does not belong to the specified channel" in result.stdout


def test_validator_fails_on_a_broken_schema_file(tmp_path):
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    shutil.copy(ASYNCAPI, tmp_path / "asyncapi.yaml")
    price = tmp_path / "schemas" / "price_observed.v1.json"
    price.write_text(price.read_text().replace('"unit": {"enum": ["kg", "litre"]}', '"unit": {"type": "strng"}'))
    result = _run_validator(tmp_path / "asyncapi.yaml")
    assert result.returncode == 1
    assert "price_observed.v1.json" in result.stdout


def test_topic_constants_equal_the_asyncapi_channels(document):
    addresses = [channel["address"] for channel in document["channels"].values()]
    assert list(TOPICS) == addresses
    assert [spec.name for spec in topic_specs()] == addresses
    assert (HARVEST_TOPIC, SHIPMENT_TOPIC, PRICE_TOPIC, ALERT_TOPIC, DEADLETTER_TOPIC) == (
        "pangan.harvest.v1",
        "pangan.shipment.v1",
        "pangan.price.v1",
        "pangan.alert.v1",
        "pangan.deadletter.v1",
    )


def test_partitions_retention_and_cleanup_are_as_designed():
    specs = {spec.name: spec for spec in topic_specs()}
    assert {name: spec.partitions for name, spec in specs.items()} == {
        HARVEST_TOPIC: 3,
        SHIPMENT_TOPIC: 6,
        PRICE_TOPIC: 6,
        ALERT_TOPIC: 3,
        DEADLETTER_TOPIC: 1,
    }
    assert {name: spec.retention_ms // DAYS_MS for name, spec in specs.items()} == {
        HARVEST_TOPIC: 400,
        SHIPMENT_TOPIC: 400,
        PRICE_TOPIC: 400,
        ALERT_TOPIC: 400,
        DEADLETTER_TOPIC: 30,
    }
    assert {spec.cleanup_policy for spec in specs.values()} == {"delete"}
    assert specs[PRICE_TOPIC].config == {"retention.ms": str(400 * DAYS_MS), "cleanup.policy": "delete"}


def test_each_event_type_lives_on_the_topic_the_models_say():
    from_document = {event_type: spec.name for spec in topic_specs() for event_type in spec.event_types}
    assert from_document == EVENT_TOPICS


def test_producers_and_consumers_are_as_designed():
    specs = {spec.name: spec for spec in topic_specs()}
    assert set(specs[PRICE_TOPIC].producers) == {"simulator", "importer", "gateway"}
    assert set(specs[HARVEST_TOPIC].producers) == set(specs[SHIPMENT_TOPIC].producers) == {"simulator", "gateway"}
    for topic in (HARVEST_TOPIC, SHIPMENT_TOPIC, PRICE_TOPIC):
        assert set(specs[topic].consumers) == {"processor", "sink"}
    assert specs[ALERT_TOPIC].producers == specs[DEADLETTER_TOPIC].producers == ("processor",)
    assert set(specs[ALERT_TOPIC].consumers) == {"sink", "dispatcher"}
    assert specs[DEADLETTER_TOPIC].consumers == ("sink",)


def test_evolution_rule_is_written_in_the_document(document):
    description = document["info"]["description"]
    assert "Additive changes keep the version" in description
    assert "makes a new topic" in description


@pytest.mark.parametrize(
    "path", sorted(EXAMPLES.glob("*/valid/*.json")), ids=lambda p: p.parent.parent.name + "/" + p.stem
)
def test_kafka_key_of_each_example_matches_its_topics_key_schema(path, document):
    event = decode_event(path.read_bytes())
    message = document["components"]["messages"][event.event_type]
    key_schema = message["bindings"]["kafka"]["key"]
    while "$ref" in key_schema:
        key_schema = document["components"]["schemas"][key_schema["$ref"].rsplit("/", 1)[1]]
    key = kafka_key(event)
    if "pattern" in key_schema:
        assert re.fullmatch(key_schema["pattern"].strip("^$"), key), (key, key_schema["pattern"])
    else:
        assert key == event.payload.shipment_id


def test_missing_kafka_binding_is_named(tmp_path):
    document = yaml.safe_load(ASYNCAPI.read_text())
    del document["channels"]["price"]["bindings"]["kafka"]["partitions"]
    broken = tmp_path / "asyncapi.yaml"
    broken.write_text(yaml.safe_dump(document))
    with pytest.raises(ContractError, match=r"channels\.price: missing 'partitions'"):
        topic_specs(broken)
