"""JSON Schema validation of events against contracts/schemas/ (the published contract), with the
format checker on so that `uuid` and `date-time` are really checked. Slower than decode_event; for
HTTP input (gateway), tests and tools, not the processor's hot path."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from pantau.settings import REPO_ROOT

SCHEMAS_DIR = REPO_ROOT / "contracts" / "schemas"
SHARED_SCHEMAS = ("envelope.v1.json", "common.v1.json")


class SchemaValidationError(ValueError):
    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


def _path(parts: Any) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "<event>"


class SchemaValidator:
    """Validates event dicts with Draft202012Validator(schema, format_checker=FormatChecker())."""

    def __init__(self, schemas_dir: Path = SCHEMAS_DIR) -> None:
        documents = {}
        for path in sorted(Path(schemas_dir).glob("*.json")):
            try:
                documents[path.name] = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: not valid JSON: {exc}") from exc
        for name, document in documents.items():
            Draft202012Validator.check_schema(document)
            if "$id" not in document:
                raise ValueError(f"{schemas_dir}/{name}: schema has no $id")
        registry = Registry().with_resources(
            (document["$id"], Resource.from_contents(document)) for document in documents.values()
        )
        self.schemas: dict[str, dict] = {
            document["title"]: document for name, document in documents.items() if name not in SHARED_SCHEMAS
        }
        self._validators = {
            event_type: Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())
            for event_type, schema in self.schemas.items()
        }

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(self._validators)

    def errors(self, event: Any, event_type: str | None = None) -> list[str]:
        """Readable 'field.path: problem' lines; empty when the event is valid. The schema is the
        one of `event_type`, or of the event's own event_type field."""
        if event_type is None:
            if not isinstance(event, Mapping):
                return [f"<event>: expected a JSON object, got {type(event).__name__}"]
            event_type = event.get("event_type")
        validator = self._validators.get(event_type) if isinstance(event_type, str) else None
        if validator is None:
            return [f"event_type: {event_type!r} is not one of {', '.join(self._validators)}"]
        lines = [f"{_path(e.absolute_path)}: {e.message}" for e in validator.iter_errors(event)]
        return sorted(dict.fromkeys(lines))

    def is_valid(self, event: Any, event_type: str | None = None) -> bool:
        """Same verdict as `errors() == []`, faster: stops at the first problem."""
        if event_type is None:
            event_type = event.get("event_type") if isinstance(event, Mapping) else None
        validator = self._validators.get(event_type) if isinstance(event_type, str) else None
        return validator is not None and validator.is_valid(event)

    def validate(self, event: Any, event_type: str | None = None) -> None:
        errors = self.errors(event, event_type)
        if errors:
            raise SchemaValidationError(errors)


@lru_cache(maxsize=1)
def schema_validator() -> SchemaValidator:
    """The validator of the repository's schemas (built once)."""
    return SchemaValidator()
