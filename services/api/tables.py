"""CSV for endpoints that answer a table: `?format=csv` or `Accept: text/csv`. Nested fields
become dotted columns (reference_price.price_idr), lists a JSON cell; times stay ISO 8601 WIB.
A paged table carries its next page in a `Link: <...>; rel="next"` header."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import orjson
from fastapi import Query, Request, Response
from pydantic import BaseModel

Format = Annotated[
    Literal["json", "csv"] | None,
    Query(alias="format", description="`csv` answers a CSV table (same as `Accept: text/csv`)"),
]
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "JSON, or CSV on request"}
}


def wants_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(inner, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list):
        out[prefix] = orjson.dumps(value).decode()
    else:
        out[prefix] = "" if value is None else value


def csv_response(rows: Sequence[BaseModel], model: type[BaseModel], next_url: str | None = None) -> Response:
    flat = []
    for row in rows:
        cells: dict[str, Any] = {}
        _flatten(row.model_dump(mode="json", by_alias=True), "", cells)
        flat.append(cells)
    columns: list[str] = list(dict.fromkeys(c for cells in flat for c in cells)) or [
        field.alias or name for name, field in model.model_fields.items()
    ]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
