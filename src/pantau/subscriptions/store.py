"""PostgreSQL adapter for the subscription tables (migration 0100): API keys, subscriptions, the
delivery outbox and its attempt log. The API and the dispatcher both go through here, so each
statement exists once. Every statement is parameterised; every tenant read filters on key_id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from pantau.subscriptions.keys import MalformedKeyError, NewKey, generate_key, key_id_of, key_matches
from pantau.subscriptions.matching import SubscriptionFilter


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class Subscription:
    subscription_id: uuid.UUID
    key_id: str
    description: str | None
    webhook_url: str
    filter: SubscriptionFilter
    secret_version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NewDelivery:
    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    alert_event_id: str
    alert_id: str
    event_type: str
    event: dict


@dataclass(frozen=True)
class DueDelivery:
    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    webhook_url: str
    secret_version: int
    event_type: str
    alert_event_id: uuid.UUID
    event: dict
    attempts: int
    round_attempts: int


_SUBSCRIPTION_COLUMNS = (
    "s.subscription_id, s.key_id, s.description, s.webhook_url, s.alert_types, s.commodities, s.places,"
    " s.min_severity, s.secret_version, s.created_at, s.updated_at"
)


def _subscription(row: dict) -> Subscription:
    return Subscription(
        subscription_id=row["subscription_id"],
        key_id=row["key_id"],
        description=row["description"],
        webhook_url=row["webhook_url"],
        filter=SubscriptionFilter(
            alert_types=frozenset(row["alert_types"]),
            commodities=frozenset(row["commodities"]),
            places=frozenset(row["places"]),
            min_severity=row["min_severity"],
        ),
        secret_version=row["secret_version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


# --- API keys -------------------------------------------------------------------------------------


async def create_key(conn: AsyncConnection, name: str) -> tuple[NewKey, ApiKey]:
    new = generate_key()
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "INSERT INTO api_keys (key_id, name, key_hash) VALUES (%s, %s, %s)"
            " RETURNING key_id, name, created_at, revoked_at",
            (new.key_id, name, new.key_hash),
        )
        row = await cur.fetchone()
    return new, ApiKey(**row)


async def authenticate(conn: AsyncConnection, presented: str) -> ApiKey | None:
    """The live key the caller presented, or None (unknown, wrong, malformed or revoked)."""
    try:
        key_id = key_id_of(presented)
    except MalformedKeyError:
        return None
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT key_id, name, key_hash, created_at, revoked_at FROM api_keys WHERE key_id = %s", (key_id,)
        )
        row = await cur.fetchone()
    if row is None or row["revoked_at"] is not None or not key_matches(presented, row.pop("key_hash")):
        return None
    return ApiKey(**row)


async def list_keys(conn: AsyncConnection) -> list[ApiKey]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT key_id, name, created_at, revoked_at FROM api_keys ORDER BY created_at, key_id")
        return [ApiKey(**row) for row in await cur.fetchall()]


async def revoke_key(conn: AsyncConnection, key_id: str) -> ApiKey | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = %s"
            " RETURNING key_id, name, created_at, revoked_at",
            (key_id,),
        )
        row = await cur.fetchone()
    return ApiKey(**row) if row else None


# --- subscriptions --------------------------------------------------------------------------------


async def create_subscription(
    conn: AsyncConnection,
    key_id: str,
    *,
    webhook_url: str,
    subscription_filter: SubscriptionFilter,
    description: str | None,
) -> Subscription:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "INSERT INTO subscriptions AS s (subscription_id, key_id, description, webhook_url, alert_types,"
            " commodities, places, min_severity) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            f" RETURNING {_SUBSCRIPTION_COLUMNS}",
            (
                uuid.uuid4(),
                key_id,
                description,
                webhook_url,
                sorted(subscription_filter.alert_types),
                sorted(subscription_filter.commodities),
                sorted(subscription_filter.places),
                subscription_filter.min_severity,
            ),
        )
        return _subscription(await cur.fetchone())


async def list_subscriptions(
    conn: AsyncConnection, key_id: str, *, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> list[Subscription]:
    """A key's subscriptions, oldest first, `limit` after the keyset cursor `after`."""
    condition, params = "", []
    if after:
        condition, params = " AND (s.created_at, s.subscription_id) > (%s, %s)", list(after)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions s WHERE s.key_id = %s{condition}"
            " ORDER BY s.created_at, s.subscription_id LIMIT %s",
            (key_id, *params, limit),
        )
        return [_subscription(row) for row in await cur.fetchall()]


async def get_subscription(conn: AsyncConnection, key_id: str, subscription_id: uuid.UUID) -> Subscription | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions s WHERE s.key_id = %s AND s.subscription_id = %s",
            (key_id, subscription_id),
        )
        row = await cur.fetchone()
    return _subscription(row) if row else None


async def update_subscription(
    conn: AsyncConnection, key_id: str, subscription_id: uuid.UUID, changes: dict[str, Any]
) -> Subscription | None:
    """Apply `changes` (column -> value; only the filter columns, webhook_url and description)."""
    allowed = {"description", "webhook_url", "alert_types", "commodities", "places", "min_severity"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)}")
    if not changes:
        return await get_subscription(conn, key_id, subscription_id)
    # Column names come from the fixed set above, values are parameters.
    assignments = ", ".join(f"{column} = %s" for column in changes)
    values = [sorted(v) if isinstance(v, set | frozenset) else v for v in changes.values()]
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"UPDATE subscriptions AS s SET {assignments}, updated_at = now()"
            f" WHERE s.key_id = %s AND s.subscription_id = %s RETURNING {_SUBSCRIPTION_COLUMNS}",
            (*values, key_id, subscription_id),
        )
        row = await cur.fetchone()
    return _subscription(row) if row else None


async def rotate_secret(conn: AsyncConnection, key_id: str, subscription_id: uuid.UUID) -> Subscription | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "UPDATE subscriptions AS s SET secret_version = secret_version + 1, updated_at = now()"
            f" WHERE s.key_id = %s AND s.subscription_id = %s RETURNING {_SUBSCRIPTION_COLUMNS}",
            (key_id, subscription_id),
        )
        row = await cur.fetchone()
    return _subscription(row) if row else None


async def delete_subscription(conn: AsyncConnection, key_id: str, subscription_id: uuid.UUID) -> bool:
    cur = await conn.execute(
        "DELETE FROM subscriptions WHERE key_id = %s AND subscription_id = %s", (key_id, subscription_id)
    )
    return cur.rowcount == 1


async def live_subscriptions(conn: AsyncConnection, key_ids: Sequence[str] | None = None) -> list[Subscription]:
    """Subscriptions of keys not revoked (all of them, or those of `key_ids`), for matching."""
    condition, params = "", ()
    if key_ids is not None:
        condition, params = " AND s.key_id = ANY(%s)", (list(key_ids),)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions s JOIN api_keys k USING (key_id)"
            f" WHERE k.revoked_at IS NULL{condition} ORDER BY s.created_at",
            params,
        )
        return [_subscription(row) for row in await cur.fetchall()]


# --- the delivery outbox --------------------------------------------------------------------------


async def notified(conn: AsyncConnection, alert_ids: Iterable[str]) -> set[tuple[uuid.UUID, str]]:
    """(subscription_id, alert_id) pairs that already have a delivery: later events of those alerts
    go to those subscriptions whatever their severity."""
    ids = sorted(set(alert_ids))
    if not ids:
        return set()
    cur = await conn.execute(
        "SELECT DISTINCT subscription_id, alert_id::text FROM webhook_deliveries WHERE alert_id = ANY(%s::uuid[])",
        (ids,),
    )
    return {(row[0], row[1]) for row in await cur.fetchall()}


async def enqueue(conn: AsyncConnection, deliveries: Sequence[NewDelivery]) -> int:
    """Queue deliveries in the given order; returns how many were new (a re-read adds nothing)."""
    added = 0
    async with conn.cursor() as cur:
        for d in deliveries:  # row by row so queue positions follow the events' order
            await cur.execute(
                "INSERT INTO webhook_deliveries (delivery_id, subscription_id, alert_event_id, alert_id,"
                " event_type, event) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (delivery_id) DO NOTHING",
                (d.delivery_id, d.subscription_id, d.alert_event_id, d.alert_id, d.event_type, Jsonb(d.event)),
            )
            added += cur.rowcount
    return added


async def claim_due(conn: AsyncConnection, limit: int) -> list[DueDelivery]:
    """Each subscription's first pending delivery, when its retry time has come, locked until the
    caller's transaction ends (other dispatchers skip it; the next one waits behind it)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT d.delivery_id, d.subscription_id, s.webhook_url, s.secret_version, d.event_type,"
            " d.alert_event_id, d.event, d.attempts, d.round_attempts"
            " FROM webhook_deliveries d JOIN subscriptions s USING (subscription_id)"
            " WHERE d.status = 'pending' AND d.next_attempt_at <= now()"
            " AND d.queue_position = (SELECT min(h.queue_position) FROM webhook_deliveries h"
            "   WHERE h.subscription_id = d.subscription_id AND h.status = 'pending')"
            " ORDER BY d.next_attempt_at LIMIT %s FOR UPDATE OF d SKIP LOCKED",
            (limit,),
        )
        return [DueDelivery(**row) for row in await cur.fetchall()]


@dataclass(frozen=True)
class AttemptResult:
    attempted_at: datetime
    duration_s: float
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def record_attempt(
    conn: AsyncConnection, due: DueDelivery, result: AttemptResult, *, retry_in_s: float | None
) -> str:
    """Log the attempt and move the delivery on: 'delivered', 'pending' (retry in `retry_in_s`) or
    'dead_lettered' (retry_in_s None after a failure). Returns the new status."""
    attempt = due.attempts + 1
    await conn.execute(
        "INSERT INTO webhook_delivery_attempts (delivery_id, attempt, attempted_at, duration_seconds,"
        " status_code, error) VALUES (%s, %s, %s, %s, %s, %s)",
        (due.delivery_id, attempt, result.attempted_at, result.duration_s, result.status_code, result.error),
    )
    if result.delivered:
        status = "delivered"
    elif retry_in_s is None:
        status = "dead_lettered"
    else:
        status = "pending"
    await conn.execute(
        "UPDATE webhook_deliveries SET status = %(status)s, attempts = %(attempt)s,"
        " round_attempts = round_attempts + 1, last_attempt_at = %(at)s, last_status_code = %(code)s,"
        " last_error = %(error)s,"
        " next_attempt_at = CASE WHEN %(status)s = 'pending' THEN now() + make_interval(secs => %(retry)s)"
        "   ELSE next_attempt_at END,"
        " delivered_at = CASE WHEN %(status)s = 'delivered' THEN now() END,"
        " dead_lettered_at = CASE WHEN %(status)s = 'dead_lettered' THEN now() END"
        " WHERE delivery_id = %(id)s",
        {
            "status": status,
            "attempt": attempt,
            "at": result.attempted_at,
            "code": result.status_code,
            "error": result.error,
            "retry": retry_in_s or 0.0,
            "id": due.delivery_id,
        },
    )
    return status


async def pending_count(conn: AsyncConnection) -> int:
    cur = await conn.execute("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")
    return (await cur.fetchone())[0]


# --- the delivery log (a key sees only its own) ---------------------------------------------------

_DELIVERY_COLUMNS = (
    "d.delivery_id, d.subscription_id, d.alert_event_id, d.alert_id, d.event_type, d.status, d.attempts,"
    " d.next_attempt_at, d.last_attempt_at, d.last_status_code, d.last_error, d.created_at,"
    " d.delivered_at, d.dead_lettered_at"
)


async def list_deliveries(
    conn: AsyncConnection,
    key_id: str,
    *,
    subscription_id: uuid.UUID | None,
    status: str | None,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None,
) -> list[dict]:
    """A key's deliveries, newest first, `limit` after the keyset cursor `before`."""
    conditions, params = ["s.key_id = %s"], [key_id]
    if subscription_id is not None:
        conditions.append("d.subscription_id = %s")
        params.append(subscription_id)
    if status is not None:
        conditions.append("d.status = %s")
        params.append(status)
    if before is not None:
        conditions.append("(d.created_at, d.delivery_id) < (%s, %s)")
        params.extend(before)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d"
            " JOIN subscriptions s USING (subscription_id)"
            f" WHERE {' AND '.join(conditions)} ORDER BY d.created_at DESC, d.delivery_id DESC LIMIT %s",
            (*params, limit),
        )
        return await cur.fetchall()


async def get_delivery(conn: AsyncConnection, key_id: str, delivery_id: uuid.UUID) -> dict | None:
    """One of the key's deliveries with the event sent and every attempt."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_DELIVERY_COLUMNS}, d.event FROM webhook_deliveries d JOIN subscriptions s"
            " USING (subscription_id) WHERE s.key_id = %s AND d.delivery_id = %s",
            (key_id, delivery_id),
        )
        delivery = await cur.fetchone()
        if delivery is None:
            return None
        await cur.execute(
            "SELECT attempt, attempted_at, duration_seconds, status_code, error"
            " FROM webhook_delivery_attempts WHERE delivery_id = %s ORDER BY attempt",
            (delivery_id,),
        )
        delivery["attempt_log"] = await cur.fetchall()
    return delivery


async def redeliver(conn: AsyncConnection, key_id: str, delivery_id: uuid.UUID) -> dict | None | str:
    """Queue one of the key's deliveries again, at the tail of its subscription's queue, with a fresh
    round of attempts. None: not the key's; 'pending': it is still queued (nothing to do)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "UPDATE webhook_deliveries d SET status = 'pending', round_attempts = 0, next_attempt_at = now(),"
            " queue_position = nextval('webhook_delivery_queue_position'), delivered_at = NULL,"
            " dead_lettered_at = NULL FROM subscriptions s"
            " WHERE s.subscription_id = d.subscription_id AND s.key_id = %s AND d.delivery_id = %s"
            f" AND d.status <> 'pending' RETURNING {_DELIVERY_COLUMNS}",
            (key_id, delivery_id),
        )
        row = await cur.fetchone()
    if row is not None:
        return row
    existing = await get_delivery(conn, key_id, delivery_id)
    return None if existing is None else "pending"
