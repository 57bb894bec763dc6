"""`create_app(settings)`: the one place the API is wired. Nothing is created at import time; the
connection pool, the rate limiter and the live alert consumer live in the app's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from pantau.contracts import ALERT_TOPIC
from pantau.http import HttpMetricsMiddleware
from pantau.settings import Settings
from pantau.subscriptions.ratelimit import RateLimiter
from services.api.deps import known_query_parameters
from services.api.routes import admin, alerts, deliveries, prices, reference, subscriptions, supply
from services.api.stream import AlertHub
from services.api.stream import router as stream_router

log = structlog.get_logger(__name__)

POOL_MAX_SIZE = 10
POOL_TIMEOUT_SECONDS = 10.0
STATEMENT_TIMEOUT_MS = 15_000  # no query of this API should take longer; a runaway one is cut

DESCRIPTION = """
Prices, supply and alerts of the Lampung → Jakarta food corridor, and alert delivery to distributors.

* Reads (prices, supply, alerts, reference data) are open; an API key raises nothing but the rate limit's scope.
* Subscriptions, the delivery log and the live stream need a distributor's API key:
  `Authorization: Bearer ppk_...` (issued by an administrator: `python -m services.api create-key --name "PT ..."`).
* Every time is ISO 8601 with its offset, in WIB (+07:00). Query times must carry an offset.
* Tables answer CSV with `?format=csv` or `Accept: text/csv`. Lists are paged: follow `next`.
* Too many requests: 429 with `Retry-After` (API_RATE_LIMIT_PER_MINUTE per key, or per address without one).
"""


def create_app(settings: Settings, *, alert_topic: str = ALERT_TOPIC) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(
            settings.database_url,
            min_size=1,
            max_size=POOL_MAX_SIZE,
            timeout=POOL_TIMEOUT_SECONDS,
            # Autocommit: each statement of a request commits before the answer is sent; the few
            # multi-statement writes open their own transaction.
            kwargs={"autocommit": True, "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"},
            open=False,
        )
        await pool.open()  # connects in the background: the API starts even while the database is down
        hub = AlertHub(settings, pool, alert_topic)
        app.state.pool = pool
        app.state.alert_hub = hub
        hub.start()
        try:
            yield
        finally:
            await hub.stop()
            await pool.close()

    app = FastAPI(
        title="Pantau Pangan API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(known_query_parameters)],
    )
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter(settings.api_rate_limit_per_minute)
    app.add_middleware(HttpMetricsMiddleware, service="api")

    # The stream before /v1/alerts/{alert_id}, which would otherwise claim its path.
    app.include_router(stream_router)
    for module in (prices, supply, alerts, reference, subscriptions, deliveries, admin):
        app.include_router(module.router)

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(psycopg.OperationalError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.error("database unavailable", path=request.url.path, error=str(exc).strip()[:300])
        return JSONResponse(
            {"detail": "the database is not answering; retry shortly"}, status_code=503, headers={"Retry-After": "5"}
        )

    @app.exception_handler(psycopg.DataError)
    async def value_the_database_refuses(request: Request, exc: psycopg.DataError) -> JSONResponse:
        # Inputs are validated before they reach SQL; this answers what slips through (e.g. a NUL
        # inside a cursor) as the client's mistake rather than a 500.
        return JSONResponse({"detail": f"a value in the request cannot be stored or compared: {exc}"}, 422)

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> JSONResponse:
        database = "ok"
        try:
            async with request.app.state.pool.connection(timeout=3) as conn:
                await conn.execute("SELECT 1")
        except (PoolTimeout, psycopg.Error) as exc:
            database = f"down: {exc.__class__.__name__}"
        body = {
            "status": "ok" if database == "ok" else "down",
            "database": database,
            "alert_stream": request.app.state.alert_hub.state,
        }
        return JSONResponse(body, status_code=200 if database == "ok" else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
