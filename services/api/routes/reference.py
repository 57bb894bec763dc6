"""Reference data: the codes every other endpoint takes (contracts/reference/*.v1.json)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from pantau.reference import Checkpoint, Commodity, Market, Regency, Route, load_reference
from services.api.deps import PublicRoute, rate_limited
from services.api.schemas import Model, errors
from services.api.tables import CSV_RESPONSE, Format, csv_response, wants_csv

router = APIRouter(
    prefix="/v1/reference",
    tags=["reference"],
    dependencies=[Depends(rate_limited)],
    route_class=PublicRoute,
    responses=errors(401, 422, 429),
)


class CheckpointsOut(Model):
    checkpoints: list[Checkpoint]
    routes: list[Route]


@router.get("/commodities", response_model=list[Commodity], responses=CSV_RESPONSE)
async def commodities(request: Request, fmt: Format = None) -> list[Commodity] | Response:
    """Commodities with their units, quality grades and reference prices (HET/HAP)."""
    rows = list(load_reference().commodities)
    return csv_response(rows, Commodity) if wants_csv(request, fmt) else rows


@router.get("/markets", response_model=list[Market], responses=CSV_RESPONSE)
async def markets(request: Request, fmt: Format = None) -> list[Market] | Response:
    """Markets, supply destinations (with daily requirements) and province averages (prov_<BPS code>)."""
    rows = list(load_reference().markets)
    return csv_response(rows, Market) if wants_csv(request, fmt) else rows


@router.get("/regencies", response_model=list[Regency], responses=CSV_RESPONSE)
async def regencies(request: Request, fmt: Format = None) -> list[Regency] | Response:
    """Lampung's regencies and cities: main commodities and the road to Bakauheni."""
    rows = list(load_reference().regencies)
    return csv_response(rows, Regency) if wants_csv(request, fmt) else rows


@router.get("/checkpoints", response_model=CheckpointsOut)
async def checkpoints() -> CheckpointsOut:
    """Route checkpoints (Bakauheni, the ferry, Merak) and the routes through them."""
    ref = load_reference()
    return CheckpointsOut(checkpoints=list(ref.checkpoints), routes=list(ref.routes))
