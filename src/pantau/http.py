"""What the HTTP services (gateway, query API) share: request metrics as a plain ASGI middleware, so
a Server-Sent Events stream is not buffered. The route label is the route's template (bounded)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pantau.metrics import LATENCY_BUCKETS

HTTP_REQUESTS = Counter(
    "pantau_http_requests_total", "HTTP requests answered.", ["service", "route", "method", "status"]
)
HTTP_REQUEST_DURATION = Histogram(
    "pantau_http_request_duration_seconds",
    "Time to the end of the response (for a stream: its whole life).",
    ["service", "route", "method"],
    buckets=LATENCY_BUCKETS,
)


class HttpMetricsMiddleware:
    """Counts requests by route template and times them."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status, started = 500, time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            HTTP_REQUESTS.labels(self.service, template, method, str(status)).inc()
            HTTP_REQUEST_DURATION.labels(self.service, template, method).observe(time.perf_counter() - started)
