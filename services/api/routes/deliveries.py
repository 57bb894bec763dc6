"""The delivery log of the caller's subscriptions, and redelivery of a dead-lettered (or any
finished) delivery."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from pantau.subscriptions import store
from services.api.deps import CallerKey, Connection, rate_limited
from services.api.pagination import cursor_datetime, decode_cursor, encode_cursor, next_link
from services.api.schemas import DeliveryDetail, DeliveryOut, DeliveryStatus, Page, errors

router = APIRouter(
    prefix="/v1/deliveries",
    tags=["subscriptions"],
    dependencies=[Depends(rate_limited)],
    responses=errors(401, 422, 429, 503),
)


def _not_found(delivery_id: uuid.UUID) -> HTTPException:
    return HTTPException(404, f"no delivery {delivery_id} for this API key")


def _out(row: dict) -> DeliveryOut:
    fields = {name: row[name] for name in DeliveryOut.model_fields}
    if row["status"] != "pending":
        fields["next_attempt_at"] = None
    return DeliveryOut(**fields)


@router.get("", response_model=Page[DeliveryOut])
async def list_deliveries(
    request: Request,
    key: CallerKey,
    conn: Connection,
    subscription_id: uuid.UUID | None = None,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[DeliveryOut]:
    """Newest first. `status=dead_lettered` lists what needs a redelivery."""
    before = decode_cursor(cursor, 2)
    position = None
    if before:
        try:
            position = (cursor_datetime(before[0]), uuid.UUID(str(before[1])))
        except ValueError:
            raise HTTPException(422, "cursor is not valid: pass the `next` link unchanged") from None
    rows = await store.list_deliveries(
        conn, key.key_id, subscription_id=subscription_id, status=status, limit=limit + 1, before=position
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["delivery_id"]) if more else None
    return Page(items=[_out(r) for r in rows], next=next_link(request, next_cursor))


@router.get("/{delivery_id}", response_model=DeliveryDetail, responses=errors(404))
async def get_delivery(delivery_id: uuid.UUID, key: CallerKey, conn: Connection) -> DeliveryDetail:
    """One delivery with the event sent and every attempt (status code or error, duration)."""
    row = await store.get_delivery(conn, key.key_id, delivery_id)
    if row is None:
        raise _not_found(delivery_id)
    return DeliveryDetail(**_out(row).model_dump(), event=row["event"], attempt_log=row["attempt_log"])


@router.post(
    "/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryOut,
    responses=errors(404, 409),
)
async def redeliver(delivery_id: uuid.UUID, key: CallerKey, conn: Connection) -> DeliveryOut:
    """Queue the delivery again (same delivery id, so receivers can deduplicate), behind the
    subscription's other pending deliveries, with a fresh round of DISPATCHER_MAX_ATTEMPTS."""
    result = await store.redeliver(conn, key.key_id, delivery_id)
    if result is None:
        raise _not_found(delivery_id)
    if result == "pending":
        raise HTTPException(409, f"delivery {delivery_id} is still queued; the dispatcher is retrying it")
    return _out(result)
