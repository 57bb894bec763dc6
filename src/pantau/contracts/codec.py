"""Bytes <-> events. The decode path is the processor's hot path: one pass of pydantic-core's JSON
parser and validator over the discriminated union (measured faster than orjson.loads followed by
model validation: `make bench` (tests/benchmarks/bench_contracts.py)); orjson is used to write events and to salvage the
event id of a record that failed validation."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any, Final

import orjson
from pydantic import TypeAdapter, ValidationError

from pantau.contracts.models import (
    DATE_PATTERN,
    EVENT_TYPES,
    NAIVE_TIMESTAMP_MESSAGE,
    TIMESTAMP_PATTERN,
    UUID_PATTERN,
    AnyEvent,
    Event,
    EventDeadLettered,
)
from pantau.contracts.times import require_aware

EVENT_ADAPTER: Final[TypeAdapter[Any]] = TypeAdapter(Event)
_UUID = re.compile(UUID_PATTERN)


class EventDecodeError(ValueError):
    """A record that is not a valid event. `error_type` is one of invalid_json, unknown_event_type,
    schema_violation; `errors` are readable 'field.path: problem' lines; `event_id` and
    `event_type` are given when they could be read, for the dead letter."""

    def __init__(
        self, error_type: str, errors: list[str], event_id: str | None = None, event_type: str | None = None
    ) -> None:
        self.error_type = error_type
        self.errors = errors
        self.event_id = event_id
        self.event_type = event_type
        subject = f"{event_type or 'event'} {event_id}" if event_id else (event_type or "record")
        super().__init__(f"{subject}: " + "; ".join(errors))


def _location(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "<event>"


def _salvage(raw: bytes | str) -> tuple[str | None, str | None]:
    """event_id and event_type of a record that failed validation, when it is a JSON object."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(obj, dict):
        return None, None
    event_id, event_type = obj.get("event_id"), obj.get("event_type")
    return (event_id if isinstance(event_id, str) else None), (event_type if isinstance(event_type, str) else None)


def _decode_error(exc: ValidationError, raw: bytes | str) -> EventDecodeError:
    event_id, event_type = _salvage(raw)
    problems = exc.errors(include_url=False)
    kinds = {p["type"] for p in problems}
    if "json_invalid" in kinds:
        return EventDecodeError("invalid_json", [f"not valid JSON: {problems[0]['msg']}"])
    if kinds & {"union_tag_invalid", "union_tag_not_found"}:
        got = repr(event_type) if event_type is not None else "no event_type"
        return EventDecodeError(
            "unknown_event_type",
            [f"event_type: {got} is not one of {', '.join(EVENT_TYPES)}"],
            event_id,
            event_type,
        )
    lines = []
    for problem in problems:
        # The discriminated union puts the event type first in the location; the type is in the message.
        loc = problem["loc"][1:] if problem["loc"] and problem["loc"][0] in EVENT_TYPES else problem["loc"]
        shown, message = problem.get("input"), problem["msg"].removeprefix("Value error, ")
        pattern = (problem.get("ctx") or {}).get("pattern")
        if pattern == TIMESTAMP_PATTERN:
            message = f"{shown!r} {NAIVE_TIMESTAMP_MESSAGE}"
        elif pattern == DATE_PATTERN:
            message = f"{shown!r} is not a calendar date YYYY-MM-DD"
        elif problem["type"] not in ("missing", "value_error") and not isinstance(shown, dict | list):
            message += f" (got {shown!r})"
        lines.append(f"{_location(loc)}: {message}")
    return EventDecodeError("schema_violation", lines, event_id, event_type)


def decode_event(raw: bytes | str) -> AnyEvent:
    """Parse and validate one record value; raises EventDecodeError saying what is wrong."""
    try:
        return EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        raise _decode_error(exc, raw) from None


def encode_event(event: AnyEvent) -> bytes:
    """The record value: compact JSON, timestamps RFC 3339 with their offset."""
    return orjson.dumps(event.model_dump())


def event_to_dict(event: AnyEvent) -> dict[str, Any]:
    """JSON-compatible dict (what the schema validates)."""
    return orjson.loads(encode_event(event))


def dead_letter_for(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error: Exception,
    consumer: str,
    failed_at: datetime,
) -> EventDeadLettered:
    """The dead-letter payload for a record a consumer could not process: original bytes kept."""
    if isinstance(error, EventDecodeError):
        error_type, event_id = error.error_type, error.event_id
    else:
        error_type, event_id = "processing_error", None
    if event_id is not None and not _is_uuid(event_id):
        event_id = None
    message = str(error) or error.__class__.__name__
    if not isinstance(error, EventDecodeError):
        message = f"{error.__class__.__name__}: {message}"
    return EventDeadLettered(
        original_topic=topic,
        partition=partition,
        offset=offset,
        original_key_b64=base64.b64encode(key).decode("ascii") if key is not None else None,
        original_value_b64=base64.b64encode(value).decode("ascii") if value is not None else None,
        original_event_id=event_id,
        error_type=error_type,
        error_message=message[:10_000],
        consumer=consumer,
        failed_at=require_aware(failed_at, "failed_at"),
    )


def _is_uuid(value: str) -> bool:
    return _UUID.fullmatch(value) is not None
