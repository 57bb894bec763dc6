"""Supply to Jakarta's destinations: arrivals against the daily requirement, shipments on the way by
stage, delayed shipments, and days of cover. Requirements come from the reference data
(markets.v1.json supply); shipments from shipment_events and the sink's shipment_state."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from psycopg.rows import dict_row
from pydantic import Field

from pantau.reference import UnknownCodeError, load_reference
from services.api.deps import Connection, PublicRoute, rate_limited
from services.api.query import (
    Bucket,
    CommodityFilter,
    Cursor,
    DestinationFilter,
    From,
    Limit,
    SortKey,
    To,
    bucket_params,
    bucket_sql,
    check_range,
    fetch_page,
    has_timescaledb,
)
from services.api.schemas import Model, Page, Wib, errors
from services.api.tables import CSV_RESPONSE, Format, csv_response, wants_csv

router = APIRouter(
    prefix="/v1/supply",
    tags=["supply"],
    dependencies=[Depends(rate_limited)],
    route_class=PublicRoute,
    responses=errors(401, 422, 429, 503),
)

BUCKET_DAYS = {"hour": 1 / 24, "day": 1.0, "week": 7.0}
# Where a shipment is: its stage, and past which checkpoint (the route's order).
Stage = Literal["dispatched", "in_transit"]


def daily_requirement_kg(commodity: str, destination: str) -> float | None:
    try:
        return load_reference().market(destination).supply_for(commodity).daily_requirement_kg
    except UnknownCodeError:
        return None


class ArrivalsBucket(Model):
    bucket_start: Wib
    commodity: str
    destination: str
    shipments: int
    arrived_kg: float
    requirement_kg: float | None = Field(description="daily requirement x the bucket's length; null when unknown")
    pct_of_requirement: float | None


class InTransitGroup(Model):
    commodity: str
    destination: str
    stage: Stage
    last_checkpoint: str | None = Field(description="the last checkpoint passed; null before Bakauheni")
    shipments: int
    quantity_kg: float
    delayed_shipments: int


class DelayedShipment(Model):
    shipment_id: str
    commodity: str
    quantity_kg: float
    origin_regency_code: str
    destination: str
    stage: Literal["dispatched", "in_transit", "arrived"]
    last_checkpoint: str | None
    vehicle_plate: str | None
    dispatched_at: Wib | None
    planned_eta: Wib | None
    eta: Wib | None = Field(description="latest estimate, or the arrival time once arrived")
    delay_minutes: float
    last_event_at: Wib


class DaysOfCover(Model):
    commodity: str
    destination: str
    as_of: Wib | None = Field(description="event time the figures are for (the newest shipment event seen)")
    in_transit_kg: float
    arrived_last_24h_kg: float
    daily_requirement_kg: float | None
    days_of_cover: float | None = Field(
        description="(in transit + arrived in the 24 h before as_of) / daily requirement; null without a requirement"
    )


@router.get("/arrivals", response_model=Page[ArrivalsBucket], responses=CSV_RESPONSE)
async def arrivals(
    request: Request,
    conn: Connection,
    commodity: CommodityFilter = None,
    destination: DestinationFilter = None,
    bucket: Bucket = "day",
    start: From = None,
    end: To = None,
    limit: Limit = 200,
    cursor: Cursor = None,
    fmt: Format = None,
) -> Page[ArrivalsBucket] | Response:
    """Quantity arrived per bucket (WIB) at each destination, against its requirement for that long."""
    check_range(start, end)
    timescale = await has_timescaledb(request, conn)
    conditions = ["event_type = 'ShipmentArrived'"]
    params: dict = bucket_params(bucket)
    for column, value in (("commodity", commodity), ("destination_code", destination)):
        if value is not None:
            conditions.append(f"{column} = %({column})s")
            params[column] = value
    if start is not None:
        conditions.append("occurred_at >= %(start)s")
        params["start"] = start
    if end is not None:
        conditions.append("occurred_at < %(end)s")
        params["end"] = end
    inner = (
        f"SELECT {bucket_sql('occurred_at', timescale)} AS bucket_start, commodity,"
        " destination_code AS destination, count(*) AS shipments, sum(quantity_kg) AS arrived_kg"
        f" FROM shipment_events WHERE {' AND '.join(conditions)} GROUP BY 1, commodity, destination_code"
    )
    key = SortKey(("bucket_start", "destination", "commodity"), ("time", "text", "text"))
    rows, next_url = await fetch_page(conn, request, inner, params, key, limit=limit, cursor=cursor)
    items = []
    for row in rows:
        daily = daily_requirement_kg(row["commodity"], row["destination"])
        requirement = daily * BUCKET_DAYS[bucket] if daily else None
        pct = round(row["arrived_kg"] / requirement * 100.0, 2) if requirement else None
        items.append(ArrivalsBucket(**row, requirement_kg=requirement, pct_of_requirement=pct))
    if wants_csv(request, fmt):
        return csv_response(items, ArrivalsBucket, next_url)
    return Page(items=items, next=next_url)


def _filters(commodity: str | None, destination: str | None) -> tuple[list[str], dict]:
    conditions, params = [], {}
    for column, value in (("commodity", commodity), ("destination_code", destination)):
        if value is not None:
            conditions.append(f"{column} = %({column})s")
            params[column] = value
    return conditions, params


@router.get("/in-transit", response_model=list[InTransitGroup], responses=CSV_RESPONSE)
async def in_transit(
    request: Request,
    conn: Connection,
    commodity: CommodityFilter = None,
    destination: DestinationFilter = None,
    fmt: Format = None,
) -> list[InTransitGroup] | Response:
    """Shipments not yet arrived, by commodity, destination and stage on the route (dispatched, or
    past a checkpoint: bakauheni_port, ferry_crossing, merak_port), with how many are delayed."""
    conditions, params = _filters(commodity, destination)
    conditions.append("stage <> 'arrived'")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT commodity, destination_code AS destination, stage, last_checkpoint_code AS last_checkpoint,"
            " count(*) AS shipments, sum(quantity_kg) AS quantity_kg,"
            " count(*) FILTER (WHERE delayed) AS delayed_shipments"
            f" FROM shipment_state WHERE {' AND '.join(conditions)}"
            " GROUP BY commodity, destination_code, stage, last_checkpoint_code, last_checkpoint_sequence"
            " ORDER BY commodity, destination_code, stage, last_checkpoint_sequence NULLS FIRST",
            params,
        )
        items = [InTransitGroup(**row) for row in await cur.fetchall()]
    return csv_response(items, InTransitGroup) if wants_csv(request, fmt) else items


@router.get("/delayed", response_model=Page[DelayedShipment], responses=CSV_RESPONSE)
async def delayed(
    request: Request,
    conn: Connection,
    commodity: CommodityFilter = None,
    destination: DestinationFilter = None,
    include_arrived: Annotated[bool, Query(description="also shipments that arrived late")] = False,
    limit: Limit = 200,
    cursor: Cursor = None,
    fmt: Format = None,
) -> Page[DelayedShipment] | Response:
    """Shipments more than an hour behind their planned arrival (latest estimate, or arrival, minus the
    plan), the most delayed first."""
    conditions, params = _filters(commodity, destination)
    conditions.append("delayed")
    if not include_arrived:
        conditions.append("stage <> 'arrived'")
    inner = (
        "SELECT shipment_id::text AS shipment_id, commodity, quantity_kg, origin_regency_code,"
        " destination_code AS destination, stage, last_checkpoint_code AS last_checkpoint, vehicle_plate,"
        " dispatched_at, planned_eta, coalesce(arrived_at, eta) AS eta, delay_minutes, last_event_at"
        f" FROM shipment_state WHERE {' AND '.join(conditions)}"
    )
    key = SortKey(("delay_minutes", "shipment_id"), ("number", "text"))
    rows, next_url = await fetch_page(conn, request, inner, params, key, limit=limit, cursor=cursor)
    items = [DelayedShipment(**row) for row in rows]
    if wants_csv(request, fmt):
        return csv_response(items, DelayedShipment, next_url)
    return Page(items=items, next=next_url)


@router.get("/days-of-cover", response_model=list[DaysOfCover], responses=CSV_RESPONSE)
async def days_of_cover(
    request: Request,
    conn: Connection,
    commodity: CommodityFilter = None,
    destination: DestinationFilter = None,
    fmt: Format = None,
) -> list[DaysOfCover] | Response:
    """Days of each destination's requirement that are on the way or just arrived, per commodity it
    needs: (load still in transit + arrivals in the 24 h before `as_of`) / daily requirement, the
    figure of the Grafana supply dashboard. `as_of` is the newest shipment event of that pair (event
    time), so a replay or a simulation is judged by its own clock."""
    pairs = [
        (supply.commodity, market.code, supply.daily_requirement_kg)
        for market in load_reference().supply_destinations
        for supply in market.supply
        if (commodity is None or supply.commodity == commodity) and (destination is None or market.code == destination)
    ]
    if not pairs:
        return csv_response([], DaysOfCover) if wants_csv(request, fmt) else []
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "WITH pairs (commodity, destination_code) AS (SELECT * FROM unnest(%(commodities)s::text[],"
            " %(destinations)s::text[])),"
            " latest AS (SELECT p.commodity, p.destination_code, max(s.last_event_at) AS as_of FROM pairs p"
            "   LEFT JOIN shipment_state s USING (commodity, destination_code) GROUP BY 1, 2)"
            " SELECT l.commodity, l.destination_code, l.as_of,"
            " coalesce(sum(s.quantity_kg) FILTER (WHERE s.stage <> 'arrived'), 0) AS in_transit_kg,"
            " coalesce(sum(s.quantity_kg) FILTER (WHERE s.stage = 'arrived'"
            "   AND s.arrived_at > l.as_of - INTERVAL '1 day' AND s.arrived_at <= l.as_of), 0) AS arrived_last_24h_kg"
            " FROM latest l LEFT JOIN shipment_state s USING (commodity, destination_code)"
            " GROUP BY l.commodity, l.destination_code, l.as_of ORDER BY l.destination_code, l.commodity",
            {"commodities": [p[0] for p in pairs], "destinations": [p[1] for p in pairs]},
        )
        rows = await cur.fetchall()
    requirement = {(c, d): r for c, d, r in pairs}
    items = []
    for row in rows:
        daily = requirement[(row["commodity"], row["destination_code"])]
        supply_kg = row["in_transit_kg"] + row["arrived_last_24h_kg"]
        items.append(
            DaysOfCover(
                commodity=row["commodity"],
                destination=row["destination_code"],
                as_of=row["as_of"],
                in_transit_kg=row["in_transit_kg"],
                arrived_last_24h_kg=row["arrived_last_24h_kg"],
                daily_requirement_kg=daily,
                days_of_cover=round(supply_kg / daily, 3) if daily else None,
            )
        )
    return csv_response(items, DaysOfCover) if wants_csv(request, fmt) else items
