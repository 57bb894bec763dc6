"""HTTP metrics (names shared with the gateway: pantau_http_*), as a plain ASGI middleware so the
Server-Sent Events stream is not buffered. The route label is the route's template (bounded)."""

from __future__ import annotations

import time

from prometheus_client import REGISTRY, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pantau.metrics import LATENCY_BUCKETS


def _shared(name: str, build):
    # The gateway registers the same two metrics; in one process (tests) the second module takes
    # the first one's. Goes when they move to pantau.metrics (reported to the lead).
    existing = REGISTRY._names_to_collectors.get(name)  # noqa: SLF001
    return existing if existing is not None else build()


HTTP_REQUESTS = _shared(
    "pantau_http_requests",
    lambda: Counter("pantau_http_requests_total", "HTTP requests answered.", ["service", "route", "method", "status"]),
)
HTTP_REQUEST_DURATION = _shared(
    "pantau_http_request_duration_seconds",
    lambda: Histogram(
        "pantau_http_request_duration_seconds",
        "Time to the end of the response (for a stream: its whole life).",
        ["service", "route", "method"],
        buckets=LATENCY_BUCKETS,
    ),
)


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            HTTP_REQUESTS.labels(self.service, template, method, str(status)).inc()
            HTTP_REQUEST_DURATION.labels(self.service, template, method).observe(time.perf_counter() - started)
