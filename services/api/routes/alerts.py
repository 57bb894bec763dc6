"""Alerts as the sink keeps them: alert_state (one row per alert, its latest event) for the list,
alert_events for one alert's full history with the evidence of every step."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from psycopg.rows import dict_row
from pydantic import Field

from pantau.reference import load_reference
from pantau.subscriptions.places import places_within
from services.api.deps import Connection, PublicRoute, rate_limited
from services.api.query import CommodityFilter, Cursor, From, Limit, PlaceFilter, SortKey, To, check_range, fetch_page
from services.api.schemas import AlertType, Model, Page, Severity, Wib, errors
from services.api.tables import CSV_RESPONSE, Format, csv_response, wants_csv

router = APIRouter(
    prefix="/v1/alerts",
    tags=["alerts"],
    dependencies=[Depends(rate_limited)],
    route_class=PublicRoute,
    responses=errors(401, 422, 429, 503),
)


class PlaceOut(Model):
    kind: str
    code: str
    name: str


class TextOut(Model):
    id: str = Field(description="Bahasa Indonesia")
    en: str = Field(description="English")


class AlertOut(Model):
    alert_id: uuid.UUID
    alert_type: str
    subject: str
    status: Literal["open", "resolved"]
    severity: Severity
    previous_severity: Severity | None
    sequence: int
    commodity: str | None
    place: PlaceOut
    affected_volume_kg: float | None
    title: TextOut
    action_text: TextOut
    opened_at: Wib
    last_event_at: Wib
    last_event_type: str
    resolved_at: Wib | None


class AlertEventOut(Model):
    event_id: uuid.UUID
    event_type: str
    sequence: int
    severity: Severity
    previous_severity: Severity | None
    occurred_at: Wib
    produced_at: Wib
    affected_volume_kg: float | None
    title: TextOut
    action_text: TextOut
    evidence: dict[str, Any] = Field(description="signals (value, threshold, baseline, window) and details")


class AlertDetail(AlertOut):
    evidence: dict[str, Any] = Field(description="evidence of the latest event")
    history: list[AlertEventOut] = Field(description="every lifecycle event, oldest first")


_STATE_COLUMNS = (
    "alert_id, alert_type, subject, status, severity, previous_severity, sequence, commodity, place_kind, place_code,"
    " place_name, affected_volume_kg, title_id, title_en, action_text_id, action_text_en, opened_at, last_event_at,"
    " last_event_type, resolved_at"
)


def _texts(row: dict) -> dict:
    return {
        "title": TextOut(id=row.pop("title_id"), en=row.pop("title_en")),
        "action_text": TextOut(id=row.pop("action_text_id"), en=row.pop("action_text_en")),
    }


def _alert(row: dict) -> dict:
    place = PlaceOut(kind=row.pop("place_kind"), code=row.pop("place_code"), name=row.pop("place_name"))
    texts = _texts(row)
    return {**row, "place": place, **texts}


@router.get("", response_model=Page[AlertOut], responses=CSV_RESPONSE)
async def list_alerts(
    request: Request,
    conn: Connection,
    status: Literal["open", "resolved"] | None = None,
    alert_type: Annotated[list[AlertType] | None, Query(description="repeat for several")] = None,
    severity: Annotated[list[Severity] | None, Query(description="current severity; repeat for several")] = None,
    commodity: CommodityFilter = None,
    place: PlaceFilter = None,
    start: From = None,
    end: To = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    fmt: Format = None,
) -> Page[AlertOut] | Response:
    """Alerts, the most recently opened first. `from`/`to` select the alerts active in that range
    (opened before `to`, and open or resolved after `from`)."""
    check_range(start, end)
    conditions, params = [], {}
    if status is not None:
        conditions.append("status = %(status)s")
        params["status"] = status
    if alert_type:
        conditions.append("alert_type = ANY(%(alert_types)s)")
        params["alert_types"] = sorted(set(alert_type))
    if severity:
        conditions.append("severity = ANY(%(severities)s)")
        params["severities"] = sorted(set(severity))
    if commodity is not None:
        conditions.append("commodity = %(commodity)s")
        params["commodity"] = commodity
    if place is not None:
        conditions.append("place_code = ANY(%(places)s)")
        params["places"] = sorted(places_within(load_reference(), place))
    if end is not None:
        conditions.append("opened_at < %(end)s")
        params["end"] = end
    if start is not None:
        conditions.append("(resolved_at IS NULL OR resolved_at >= %(start)s)")
        params["start"] = start
    inner = f"SELECT {_STATE_COLUMNS} FROM alert_state WHERE {' AND '.join(conditions) or 'TRUE'}"
    key = SortKey(("opened_at", "alert_id"), ("time", "text"))
    rows, next_url = await fetch_page(conn, request, inner, params, key, limit=limit, cursor=cursor)
    items = [AlertOut(**_alert(row)) for row in rows]
    if wants_csv(request, fmt):
        return csv_response(items, AlertOut, next_url)
    return Page(items=items, next=next_url)


@router.get("/{alert_id}", response_model=AlertDetail, responses=errors(404))
async def get_alert(alert_id: uuid.UUID, conn: Connection) -> AlertDetail:
    """One alert: its current state and every lifecycle event with its evidence."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_STATE_COLUMNS}, evidence FROM alert_state WHERE alert_id = %s", (alert_id,))
        state = await cur.fetchone()
        if state is None:
            raise HTTPException(404, f"no alert {alert_id}")
        await cur.execute(
            "SELECT event_id, event_type, sequence, severity, previous_severity, occurred_at, produced_at,"
            " affected_volume_kg, title_id, title_en, action_text_id, action_text_en, evidence"
            " FROM alert_events WHERE alert_id = %s ORDER BY sequence, occurred_at",
            (alert_id,),
        )
        history = []
        for row in await cur.fetchall():
            texts = _texts(row)
            history.append(AlertEventOut(**row, **texts))
    return AlertDetail(**_alert(state), history=history)
