"""Gateway metrics. The HTTP ones (pantau_http_*) have the same names as the query API's: they are
taken from the registry when the API's module registered them first in the same process (tests)."""

from __future__ import annotations

import time

from prometheus_client import REGISTRY, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pantau.metrics import LATENCY_BUCKETS


def _shared(name: str, build):
    # prometheus_client has no public lookup; the private map is stable across its releases.
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
EVENTS_REJECTED = Counter("pantau_gateway_events_rejected_total", "Events refused with 422, by reason.", ["reason"])
DUPLICATES = Counter("pantau_gateway_duplicates_total", "Events resubmitted with an event_id already accepted.")


class HttpMetricsMiddleware:
    """Counts requests by route template (bounded) and times them."""

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
