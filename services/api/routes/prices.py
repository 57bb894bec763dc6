"""Prices: the latest per series, history in hour/day/week buckets, and the Jakarta/Lampung
disparity. Each price comes with the reference price that applies to it (HET or HAP of its grade,
price level and province) and how far above it the price is."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from psycopg.rows import dict_row
from pydantic import Field

from pantau.contracts import to_wib
from pantau.reference import load_reference
from services.api.deps import Connection, PublicRoute, rate_limited
from services.api.query import (
    Bucket,
    Cursor,
    From,
    Limit,
    MarketCode,
    MarketFilter,
    ProvinceFilter,
    RequiredCommodity,
    SortKey,
    To,
    bucket_params,
    bucket_sql,
    check_range,
    fetch_page,
    has_timescaledb,
)
from services.api.schemas import CommodityCode, Model, Page, Wib, errors
from services.api.tables import CSV_RESPONSE, Format, csv_response, wants_csv

router = APIRouter(
    prefix="/v1/prices",
    tags=["prices"],
    dependencies=[Depends(rate_limited)],
    route_class=PublicRoute,
    responses=errors(401, 422, 429, 503),
)

PriceLevel = Literal["producer", "wholesale", "retail"]


class ReferencePriceOut(Model):
    kind: Literal["het", "hap"]
    price_idr: float
    legal_basis: str


class LatestPrice(Model):
    commodity: str
    quality_grade: str
    market_code: str
    market_name: str
    province_code: str
    price_level: PriceLevel
    unit: str
    price_idr: float
    observed_at: Wib
    reference_price: ReferencePriceOut | None
    pct_above_reference: float | None = None


class PriceBucket(Model):
    bucket_start: Wib
    commodity: str
    quality_grade: str
    place: str = Field(description="market code, or the BPS province code when asked by province")
    price_level: PriceLevel
    unit: str
    avg_price_idr: float
    min_price_idr: float
    max_price_idr: float
    observations: int
    reference_price: ReferencePriceOut | None
    pct_above_reference: float | None = None


class DisparityBucket(Model):
    bucket_start: Wib
    commodity: str
    quality_grade: str
    price_level: PriceLevel
    numerator_market: str
    numerator_price_idr: float
    denominator_market: str
    denominator_price_idr: float
    ratio: float
    difference_idr: float
    difference_pct: float


def _reference(commodity: str, grade: str, province: str, level: str, on: date) -> ReferencePriceOut | None:
    item = load_reference().commodity(commodity)
    for price in item.reference_prices:
        if (
            price.quality_grade == grade
            and price.price_level == level
            and price.applies_to(province)
            and (price.effective_from is None or price.effective_from <= on)
        ):
            return ReferencePriceOut(kind=price.kind, price_idr=price.price_idr, legal_basis=price.legal_basis)
    return None


def _pct_above(price: float, reference: ReferencePriceOut | None) -> float | None:
    return None if reference is None else round((price / reference.price_idr - 1.0) * 100.0, 2)


def _day(moment: datetime) -> date:
    return to_wib(moment).date()


def _market_name(code: str) -> str:
    names = {m.code: m.name for m in load_reference().markets}
    return names.get(code, code)  # a market newer than this API's reference data keeps its code


@router.get("/latest", response_model=list[LatestPrice], responses=CSV_RESPONSE)
async def latest_prices(
    request: Request,
    conn: Connection,
    commodity: Annotated[CommodityCode | None, Query(description="commodity code, e.g. beras")] = None,
    market: MarketFilter = None,
    province: ProvinceFilter = None,
    price_level: PriceLevel | None = None,
    fmt: Format = None,
) -> list[LatestPrice] | Response:
    """The newest observation of every series (commodity, grade, market, price level) that matches,
    with its reference price and the % above it."""
    conditions, params = [], {}
    for column, value in (
        ("commodity", commodity),
        ("market_code", market),
        ("province_code", province),
        ("price_level", price_level),
    ):
        if value is not None:
            conditions.append(f"{column} = %({column})s")
            params[column] = value
    where = " AND ".join(conditions) or "TRUE"
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT DISTINCT ON (commodity, market_code, quality_grade, price_level)"
            " commodity, quality_grade, market_code, province_code, price_level, unit, price_idr,"
            " occurred_at AS observed_at"
            f" FROM price_observations WHERE {where}"
            " ORDER BY commodity, market_code, quality_grade, price_level, occurred_at DESC",
            params,
        )
        rows = await cur.fetchall()
    items = []
    for row in rows:
        reference = _reference(
            row["commodity"], row["quality_grade"], row["province_code"], row["price_level"], _day(row["observed_at"])
        )
        items.append(
            LatestPrice(
                **row,
                market_name=_market_name(row["market_code"]),
                reference_price=reference,
                pct_above_reference=_pct_above(row["price_idr"], reference),
            )
        )
    return csv_response(items, LatestPrice) if wants_csv(request, fmt) else items


@router.get("/history", response_model=Page[PriceBucket], responses=CSV_RESPONSE)
async def price_history(
    request: Request,
    conn: Connection,
    commodity: RequiredCommodity,
    market: MarketFilter = None,
    province: ProvinceFilter = None,
    quality_grade: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z][a-z0-9_]*$")] = None,
    price_level: PriceLevel | None = None,
    bucket: Bucket = "day",
    start: From = None,
    end: To = None,
    limit: Limit = 200,
    cursor: Cursor = None,
    fmt: Format = None,
) -> Page[PriceBucket] | Response:
    """Average, minimum and maximum price per bucket (WIB hours, days, or weeks from Monday), newest
    first, for one market (`market`, e.g. pibc, or prov_31 for the official PIHPS province average) or
    all of a province's markets together (`province`; without either: every market, one row each).
    Series of different grades or price levels never mix."""
    check_range(start, end)
    timescale = await has_timescaledb(request, conn)
    place = "province_code" if province and not market else "market_code"
    conditions = ["commodity = %(commodity)s"]
    params: dict = {"commodity": commodity, **bucket_params(bucket)}
    for column, value in (
        ("market_code", market),
        ("province_code", province),
        ("quality_grade", quality_grade),
        ("price_level", price_level),
    ):
        if value is not None:
            conditions.append(f"{column} = %({column})s")
            params[column] = value
    if province is not None:
        # The prov_<BPS> series are already averages (PIHPS); ask for them with market=prov_31.
        conditions.append("market_code <> ALL(%(province_averages)s)")
        params["province_averages"] = [m.code for m in load_reference().markets if m.kind == "province_average"]
    if start is not None:
        conditions.append("occurred_at >= %(start)s")
        params["start"] = start
    if end is not None:
        conditions.append("occurred_at < %(end)s")
        params["end"] = end
    inner = (
        f"SELECT {bucket_sql('occurred_at', timescale)} AS bucket_start, commodity, quality_grade,"
        f" {place} AS place, price_level, unit, avg(price_idr) AS avg_price_idr, min(price_idr) AS min_price_idr,"
        " max(price_idr) AS max_price_idr, count(*) AS observations,"
        " min(province_code) AS province_code"
        f" FROM price_observations WHERE {' AND '.join(conditions)}"
        f" GROUP BY 1, commodity, quality_grade, {place}, price_level, unit"
    )
    key = SortKey(
        ("bucket_start", "place", "quality_grade", "price_level", "unit"), ("time", "text", "text", "text", "text")
    )
    rows, next_url = await fetch_page(conn, request, inner, params, key, limit=limit, cursor=cursor)
    items = []
    for row in rows:
        province_code = row.pop("province_code")
        reference = _reference(
            row["commodity"], row["quality_grade"], province_code, row["price_level"], _day(row["bucket_start"])
        )
        items.append(
            PriceBucket(
                **row, reference_price=reference, pct_above_reference=_pct_above(row["avg_price_idr"], reference)
            )
        )
    if wants_csv(request, fmt):
        return csv_response(items, PriceBucket, next_url)
    return Page(items=items, next=next_url)


@router.get("/disparity", response_model=Page[DisparityBucket], responses=CSV_RESPONSE)
async def price_disparity(
    request: Request,
    conn: Connection,
    commodity: RequiredCommodity,
    numerator: Annotated[MarketCode, Query(description="consuming side (default: DKI Jakarta average)")] = "prov_31",
    denominator: Annotated[MarketCode, Query(description="producing side (default: Lampung average)")] = "prov_18",
    bucket: Bucket = "day",
    start: From = None,
    end: To = None,
    limit: Limit = 200,
    cursor: Cursor = None,
    fmt: Format = None,
) -> Page[DisparityBucket] | Response:
    """Jakarta against Lampung (or any two markets): the average price of each side per bucket and
    the ratio and difference, for buckets where both sides have prices of the same grade and level."""
    check_range(start, end)
    timescale = await has_timescaledb(request, conn)
    params: dict = {"commodity": commodity, "numerator": numerator, "denominator": denominator, **bucket_params(bucket)}
    time_filter = ""
    if start is not None:
        time_filter += " AND occurred_at >= %(start)s"
        params["start"] = start
    if end is not None:
        time_filter += " AND occurred_at < %(end)s"
        params["end"] = end
    inner = (
        "WITH sides AS ("
        f" SELECT {bucket_sql('occurred_at', timescale)} AS bucket_start, market_code, quality_grade, price_level,"
        " avg(price_idr) AS price"
        " FROM price_observations"
        f" WHERE commodity = %(commodity)s AND market_code IN (%(numerator)s, %(denominator)s){time_filter}"
        " GROUP BY 1, market_code, quality_grade, price_level)"
        " SELECT n.bucket_start, %(commodity)s::text AS commodity, n.quality_grade, n.price_level,"
        " n.market_code AS numerator_market, n.price AS numerator_price_idr,"
        " d.market_code AS denominator_market, d.price AS denominator_price_idr,"
        " n.price / d.price AS ratio, n.price - d.price AS difference_idr,"
        " (n.price / d.price - 1) * 100 AS difference_pct"
        " FROM sides n JOIN sides d USING (bucket_start, quality_grade, price_level)"
        " WHERE n.market_code = %(numerator)s AND d.market_code = %(denominator)s"
    )
    key = SortKey(("bucket_start", "quality_grade", "price_level"), ("time", "text", "text"))
    rows, next_url = await fetch_page(conn, request, inner, params, key, limit=limit, cursor=cursor)
    items = [DisparityBucket(**row) for row in rows]
    if wants_csv(request, fmt):
        return csv_response(items, DisparityBucket, next_url)
    return Page(items=items, next=next_url)
