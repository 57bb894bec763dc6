"""What the read endpoints share: validated filters (an unknown code is a 422 naming it), the time
range, time buckets (time_bucket on TimescaleDB, date_trunc on plain PostgreSQL; both in WIB, weeks
from Monday) and keyset pages over a query's sort key."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import HTTPException, Query, Request
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

from pantau.reference import UnknownCodeError, load_reference
from pantau.subscriptions.places import province_codes
from services.api.pagination import cursor_datetime, decode_cursor, encode_cursor, next_link
from services.api.schemas import CommodityCode, PlaceCode, listed


def _known_market(code: str) -> str:
    try:
        load_reference().market(code)
    except UnknownCodeError:
        raise ValueError(f"unknown market {code!r}; see /v1/reference/markets") from None
    return code


def _known_destination(code: str) -> str:
    _known_market(code)
    if not load_reference().market(code).supply_destination:
        destinations = [m.code for m in load_reference().supply_destinations]
        raise ValueError(f"market {code!r} is no supply destination; one of {destinations}")
    return code


def _known_province(code: str) -> str:
    try:
        load_reference().province_market(code)
    except UnknownCodeError:
        raise ValueError(f"unknown BPS province code {code!r} (e.g. 18 Lampung, 31 DKI Jakarta)") from None
    return code


def _market_codes() -> list[str]:
    return [m.code for m in load_reference().markets]


def _destination_codes() -> list[str]:
    return [m.code for m in load_reference().supply_destinations]


def _province_codes() -> list[str]:
    return sorted(province_codes(load_reference()))


MarketCode = Annotated[str, Field(json_schema_extra=listed(_market_codes)), AfterValidator(_known_market)]
DestinationCode = Annotated[
    str, Field(json_schema_extra=listed(_destination_codes)), AfterValidator(_known_destination)
]
ProvinceCode = Annotated[str, Field(json_schema_extra=listed(_province_codes)), AfterValidator(_known_province)]

CommodityFilter = Annotated[CommodityCode | None, Query(description="commodity code, e.g. beras")]
RequiredCommodity = Annotated[CommodityCode, Query(description="commodity code, e.g. beras")]
MarketFilter = Annotated[MarketCode | None, Query(description="market code, e.g. pibc or prov_31")]
ProvinceFilter = Annotated[ProvinceCode | None, Query(description="BPS province code: 18 Lampung, 31 DKI Jakarta")]
DestinationFilter = Annotated[DestinationCode | None, Query(description="supply destination, e.g. pibc, pikj")]
PlaceFilter = Annotated[
    PlaceCode | None,
    Query(description="market, checkpoint, regency or BPS province code (a province includes its places)"),
]
_ISO_WITH_OFFSET = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})")


def _iso_with_offset(value: object) -> object:
    # pydantic alone would also take a bare number (Unix seconds) or a time without its offset.
    if not isinstance(value, str) or not _ISO_WITH_OFFSET.fullmatch(value):
        raise ValueError(f"{value!r} is not an ISO 8601 time with its offset, e.g. 2026-03-04T08:00:00+07:00")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_with_offset)]
From = Annotated[Instant | None, Query(alias="from", description="ISO 8601 with offset, inclusive")]
To = Annotated[Instant | None, Query(alias="to", description="ISO 8601 with offset, exclusive")]
Limit = Annotated[int, Query(ge=1, le=1000, description="items per page")]
Cursor = Annotated[str | None, Query(max_length=500, description="from the previous page's `next`")]
Bucket = Literal["hour", "day", "week"]


def check_range(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and start >= end:
        raise HTTPException(422, f"`from` ({start.isoformat()}) must be before `to` ({end.isoformat()})")


async def has_timescaledb(request: Request, conn: AsyncConnection) -> bool:
    """Looked up once per app (the extension does not come and go under a running API)."""
    state = request.app.state
    if getattr(state, "timescaledb", None) is None:
        cur = await conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
        state.timescaledb = (await cur.fetchone())[0]
    return state.timescaledb


def bucket_sql(column: str, timescaledb: bool) -> str:
    """SQL of the bucket start for `column`; takes the parameters %(bucket_width)s and %(bucket_unit)s."""
    if timescaledb:
        return f"time_bucket(%(bucket_width)s::interval, {column}, 'Asia/Jakarta')"
    return f"date_trunc(%(bucket_unit)s, {column}, 'Asia/Jakarta')"


def bucket_params(bucket: Bucket) -> dict[str, str]:
    return {"bucket_width": f"1 {bucket}", "bucket_unit": bucket}


@dataclass(frozen=True)
class SortKey:
    """The columns a page is ordered by (all descending or all ascending, none NULL) and their kinds."""

    columns: tuple[str, ...]
    kinds: tuple[Literal["time", "text", "number"], ...]
    descending: bool = True

    def after(self, cursor: str | None) -> tuple[str, dict[str, Any]]:
        """SQL condition (on the query's output columns) for the rows after the cursor."""
        values = decode_cursor(cursor, len(self.columns))
        if values is None:
            return "TRUE", {}
        params: dict[str, Any] = {}
        for i, (value, kind) in enumerate(zip(values, self.kinds, strict=True)):
            if kind == "time":
                value = cursor_datetime(value)
            elif kind == "number" and not isinstance(value, int | float):
                raise HTTPException(422, "cursor is not valid: pass the `next` link of the previous page unchanged")
            params[f"cursor_{i}"] = value
        op = "<" if self.descending else ">"
        placeholders = ", ".join(f"%(cursor_{i})s" for i in range(len(self.columns)))
        return f"({', '.join(self.columns)}) {op} ({placeholders})", params

    @property
    def order_by(self) -> str:
        direction = " DESC" if self.descending else ""
        return ", ".join(f"{c}{direction}" for c in self.columns)

    def cursor_of(self, row: dict) -> str:
        return encode_cursor(*(row[c] for c in self.columns))


async def fetch_page(
    conn: AsyncConnection,
    request: Request,
    inner_sql: str,
    params: dict[str, Any],
    key: SortKey,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict], str | None]:
    """Rows of `inner_sql` after the cursor, ordered by the key, and the next page's URL."""
    condition, cursor_params = key.after(cursor)
    sql = f"SELECT * FROM ({inner_sql}) AS page WHERE {condition} ORDER BY {key.order_by} LIMIT %(page_limit)s"
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, {**params, **cursor_params, "page_limit": limit + 1})
        rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, next_link(request, key.cursor_of(rows[-1]) if more else None)


def in_list(values: Sequence[str]) -> list[str]:
    return sorted(set(values))
