"""Keyset pagination: an opaque cursor holds the sort key of the last item of a page; the page's
`next` is the same request with that cursor (None on the last page)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import orjson
from fastapi import HTTPException, Request


def encode_cursor(*values: Any) -> str:
    plain = [
        v.isoformat() if isinstance(v, datetime) else str(v) if not isinstance(v, int | float) else v for v in values
    ]
    return base64.urlsafe_b64encode(orjson.dumps(plain)).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    """The values in a cursor, or None without one; 422 when the cursor was not made by us."""
    if cursor is None:
        return None
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != arity:
        raise HTTPException(422, "cursor is not valid: pass the `next` link of the previous page unchanged")
    return values


def cursor_datetime(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise HTTPException(422, "cursor is not valid: pass the `next` link of the previous page unchanged")
    return parsed


def next_link(request: Request, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    return str(request.url.include_query_params(cursor=cursor))
