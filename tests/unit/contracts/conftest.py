"""Shared fixtures for the contract tests: the example files and the schema validator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pantau.contracts import SchemaValidator
from pantau.settings import REPO_ROOT

CONTRACTS = REPO_ROOT / "contracts"
EXAMPLES = CONTRACTS / "examples"
SCHEMAS = CONTRACTS / "schemas"


def example_files(kind: str) -> list[Path]:
    return sorted(EXAMPLES.glob(f"*/{kind}/*.json"))


def example_id(path: Path) -> str:
    return f"{path.parent.parent.name}/{path.stem}"


def directory_schema_name(path: Path) -> str:
    """contracts/examples/price_observed/valid/x.json -> PriceObserved (the schema's title)."""
    schema = json.loads((SCHEMAS / f"{path.parent.parent.name}.v1.json").read_text())
    return schema["title"]


@pytest.fixture(scope="session")
def validator() -> SchemaValidator:
    return SchemaValidator()
