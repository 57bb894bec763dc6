"""A distributor's own webhook subscriptions. Another key's subscription is answered 404, the same
as one that does not exist, so ids of other tenants cannot be probed."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status

from pantau.subscriptions import store
from pantau.subscriptions.matching import SubscriptionFilter
from pantau.subscriptions.signing import subscription_secret
from services.api.deps import CallerKey, Connection, rate_limited
from services.api.pagination import cursor_datetime, decode_cursor, encode_cursor, next_link
from services.api.schemas import (
    Page,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPatch,
    SubscriptionWithSecret,
    errors,
)

router = APIRouter(
    prefix="/v1/subscriptions",
    tags=["subscriptions"],
    dependencies=[Depends(rate_limited)],
    responses=errors(400, 401, 422, 429, 503),
)


def _out(subscription: store.Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        subscription_id=subscription.subscription_id,
        description=subscription.description,
        webhook_url=subscription.webhook_url,
        alert_types=sorted(subscription.filter.alert_types),
        commodities=sorted(subscription.filter.commodities),
        places=sorted(subscription.filter.places),
        min_severity=subscription.filter.min_severity,
        created_at=subscription.created_at,
        updated_at=subscription.updated_at,
    )


def _with_secret(request: Request, subscription: store.Subscription) -> SubscriptionWithSecret:
    master_key = request.app.state.settings.webhook_secret_key
    secret = subscription_secret(master_key, subscription.subscription_id, subscription.secret_version)
    return SubscriptionWithSecret(**_out(subscription).model_dump(), signing_secret=secret)


def _not_found(subscription_id: uuid.UUID) -> HTTPException:
    return HTTPException(404, f"no subscription {subscription_id} for this API key")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SubscriptionWithSecret)
async def create_subscription(
    body: SubscriptionIn, request: Request, response: Response, key: CallerKey, conn: Connection
) -> SubscriptionWithSecret:
    """Subscribe a webhook to the alerts that match the filters (empty filters: everything).

    Receives every alert lifecycle event produced from now on that matches, and every later event
    of an alert it was told about. The signing secret is in this answer (and on rotation) only."""
    subscription = await store.create_subscription(
        conn,
        key.key_id,
        webhook_url=str(body.webhook_url),
        description=body.description,
        subscription_filter=SubscriptionFilter(
            alert_types=frozenset(body.alert_types),
            commodities=frozenset(body.commodities),
            places=frozenset(body.places),
            min_severity=body.min_severity,
        ),
    )
    response.headers["Location"] = f"/v1/subscriptions/{subscription.subscription_id}"
    return _with_secret(request, subscription)


@router.get("", response_model=Page[SubscriptionOut])
async def list_subscriptions(
    request: Request,
    key: CallerKey,
    conn: Connection,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[SubscriptionOut]:
    after = decode_cursor(cursor, 2)
    position = (cursor_datetime(after[0]), _uuid_from_cursor(after[1])) if after else None
    rows = await store.list_subscriptions(conn, key.key_id, limit=limit + 1, after=position)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].subscription_id) if more else None
    return Page(items=[_out(r) for r in rows], next=next_link(request, next_cursor))


def _uuid_from_cursor(value: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise HTTPException(422, "cursor is not valid: pass the `next` link of the previous page unchanged") from None


@router.get("/{subscription_id}", response_model=SubscriptionOut, responses=errors(404))
async def get_subscription(subscription_id: uuid.UUID, key: CallerKey, conn: Connection) -> SubscriptionOut:
    subscription = await store.get_subscription(conn, key.key_id, subscription_id)
    if subscription is None:
        raise _not_found(subscription_id)
    return _out(subscription)


@router.patch("/{subscription_id}", response_model=SubscriptionOut, responses=errors(404))
async def update_subscription(
    subscription_id: uuid.UUID, body: SubscriptionPatch, key: CallerKey, conn: Connection
) -> SubscriptionOut:
    """Change the webhook URL, description or filters; fields left out stay as they are."""
    changes = body.model_dump(exclude_unset=True)
    if "webhook_url" in changes:
        changes["webhook_url"] = str(body.webhook_url)
    for field in ("alert_types", "commodities", "places"):
        if field in changes:
            changes[field] = sorted(set(changes[field]))
    subscription = await store.update_subscription(conn, key.key_id, subscription_id, changes)
    if subscription is None:
        raise _not_found(subscription_id)
    return _out(subscription)


@router.post("/{subscription_id}/rotate-secret", response_model=SubscriptionWithSecret, responses=errors(404))
async def rotate_secret(
    subscription_id: uuid.UUID, request: Request, key: CallerKey, conn: Connection
) -> SubscriptionWithSecret:
    """Replace the signing secret; deliveries from now on are signed with the new one."""
    subscription = await store.rotate_secret(conn, key.key_id, subscription_id)
    if subscription is None:
        raise _not_found(subscription_id)
    return _with_secret(request, subscription)


@router.delete("/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
async def delete_subscription(subscription_id: uuid.UUID, key: CallerKey, conn: Connection) -> Response:
    """Stop deliveries to this webhook; its queued deliveries and delivery log go with it."""
    if not await store.delete_subscription(conn, key.key_id, subscription_id):
        raise _not_found(subscription_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
