"""Request dependencies: the connection pool, who is calling, and the per-caller rate limit."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import AsyncConnection

from pantau.subscriptions import store
from pantau.subscriptions.ratelimit import RateLimiter

api_key_scheme = HTTPBearer(
    scheme_name="ApiKey",
    description="A distributor's API key (ppk_...), issued by an administrator: `Authorization: Bearer ppk_...`",
    auto_error=False,
)
admin_scheme = HTTPBearer(
    scheme_name="AdminToken", description="ADMIN_TOKEN: `Authorization: Bearer <token>`", auto_error=False
)


async def connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """A pooled connection for the request (autocommit: a write is committed before the answer)."""
    async with request.app.state.pool.connection() as conn:
        yield conn


Connection = Annotated[AsyncConnection, Depends(connection)]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def _limit(request: Request, caller: str) -> None:
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.acquire(caller)
    if wait > 0:
        raise HTTPException(
            429,
            f"rate limit of {int(limiter.capacity)} requests per minute exceeded; retry after the Retry-After seconds",
            headers={"Retry-After": RateLimiter.retry_after_header(wait)},
        )


async def _caller_key(request: Request, credentials: HTTPAuthorizationCredentials | None) -> store.ApiKey | None:
    if credentials is None:
        return None
    cached = getattr(request.state, "api_key", None)
    if cached is not None:
        return cached
    async with request.app.state.pool.connection() as conn:
        key = await store.authenticate(conn, credentials.credentials)
    if key is None:
        raise _unauthorized("API key is not valid (unknown, revoked or mistyped)")
    request.state.api_key = key
    return key


async def rate_limited(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(api_key_scheme)]
) -> None:
    """Every public route: a caller with a key is limited per key, one without per client address."""
    key = await _caller_key(request, credentials)
    client = request.client.host if request.client else "unknown"
    _limit(request, f"key:{key.key_id}" if key else f"ip:{client}")


async def require_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(api_key_scheme)]
) -> store.ApiKey:
    key = await _caller_key(request, credentials)
    if key is None:
        raise _unauthorized("this route needs an API key: `Authorization: Bearer ppk_...`")
    return key


CallerKey = Annotated[store.ApiKey, Depends(require_key)]


async def require_admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_scheme)]
) -> None:
    token = request.app.state.settings.admin_token
    if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
        raise _unauthorized("this route needs the ADMIN_TOKEN: `Authorization: Bearer <token>`")
    _limit(request, "admin")


class PublicRoute(APIRoute):
    """A read that anyone may call: a key only moves the rate limit from the address to the key.
    Its OpenAPI security lists `{}` beside ApiKey, which says the key is optional."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        extra = dict(kwargs.get("openapi_extra") or {})  # type: ignore[call-overload]
        extra["security"] = [*extra.get("security", []), {}]
        kwargs["openapi_extra"] = extra
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def _query_names(dependant: object) -> set[str]:
    names = {field.alias for field in getattr(dependant, "query_params", [])}
    for inner in getattr(dependant, "dependencies", []):
        names |= _query_names(inner)
    return names


async def known_query_parameters(request: Request) -> None:
    """A misspelt filter (`comodity=beras`) would otherwise be ignored and answer everything."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed = _query_names(dependant)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise HTTPException(422, f"unknown query parameter(s) {unknown}; this route takes {sorted(allowed)}")
