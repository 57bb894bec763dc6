"""HTTP ingest for partners that cannot speak Kafka.

    POST /v1/events        one event (the contract's envelope, JSON)
    POST /v1/events:batch  {"events": [...]} up to MAX_BATCH events, all or nothing
    GET  /healthz          200 when Kafka is reachable, 503 otherwise
    GET  /metrics          Prometheus
    GET  /docs             OpenAPI

Each event is checked against the published JSON Schema (format checker on) and the contract
models, then produced to its topic with its key (acks=all); the answer is 202 with the event ids
once Kafka acknowledged them. Invalid input is 422 naming the field (and the item of a batch);
Kafka unavailable is 503, safe to retry. The partner is named by the X-Partner-Id header and
recorded as the event's source `gateway:<partner>`; produced_at is the time the gateway wrote it.

Idempotency: accepted event ids are remembered (bounded, RECENT_IDS most recent) and a resubmitted
event is answered 202 as a duplicate without producing it again. The memory does not survive a
restart; there the contract's rule applies: consumers deduplicate on event_id (the sink upserts on
it, the processor skips ids it has seen), so a retry after a restart is harmless downstream.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import Body, FastAPI, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from pantau.contracts import (
    EVENT_TYPES,
    AnyEvent,
    EventDecodeError,
    SchemaValidator,
    decode_event,
    encode_event,
    kafka_key,
    now_wib,
    schema_validator,
    topic_for,
)
from pantau.http import HttpMetricsMiddleware
from pantau.settings import Settings
from services.gateway.metrics import DUPLICATES, EVENTS_REJECTED
from services.gateway.sender import KafkaSender, RecentIds, Unavailable

MAX_BATCH = 500
RECENT_IDS = 200_000
# Partners send what happens in the supply chain; alerts and dead letters are the system's own.
ACCEPTED_TYPES = (
    "HarvestReported",
    "ShipmentDispatched",
    "ShipmentCheckpointPassed",
    "ShipmentArrived",
    "PriceObserved",
)
PARTNER_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"

EXAMPLE_EVENT = {
    "event_id": "1c3e5a7b-9d0f-4b2d-8e4f-6a8c0e2a4c6e",
    "event_type": "PriceObserved",
    "schema_version": "1.0",
    "occurred_at": "2026-03-04T08:00:00+07:00",
    "produced_at": "2026-03-04T08:00:00+07:00",
    "source": "partner",
    "correlation_id": None,
    "payload": {
        "commodity": "beras", "quality_grade": "medium", "market_code": "pibc", "province_code": "31",
        "price_level": "wholesale", "unit": "kg", "price_idr_per_kg": 12850, "price_idr_per_litre": None,
    },
}  # fmt: skip


class Accepted(BaseModel):
    accepted: int = Field(description="events produced to Kafka by this request")
    event_ids: list[str] = Field(description="every event id of the request, in order")
    duplicates: list[str] = Field(description="ids already accepted earlier: not produced again")


class Batch(BaseModel):
    events: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_BATCH)]


# Module level: FastAPI resolves the (postponed) annotations of the endpoints in this module's globals.
PartnerId = Annotated[
    str,
    Header(
        alias="X-Partner-Id", pattern=PARTNER_PATTERN, description="who sends; recorded as source gateway:<partner>"
    ),
]


class Problem(Exception):
    def __init__(self, status: int, detail: list[dict[str, Any]] | str) -> None:
        self.status, self.detail = status, detail


def create_app(
    settings: Settings,
    sender: KafkaSender | None = None,
    validator: SchemaValidator | None = None,
    topic_names: dict[str, str] | None = None,
) -> FastAPI:
    """The gateway app; `topic_names` maps contract topics to others (tests use fresh topics)."""
    sender = sender or KafkaSender(settings)
    topics = dict(topic_names or {})
    validator = validator or schema_validator()
    recent = RecentIds(RECENT_IDS)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        await run_in_threadpool(sender.close)

    app = FastAPI(
        title="Pantau Pangan ingest gateway",
        version="1.0",
        description=(
            "Send harvest, shipment and price events (contracts/schemas/*.v1.json) when you cannot use Kafka. "
            "Name yourself with the X-Partner-Id header. 202: produced (or already produced: duplicates); "
            "422: the field that is wrong; 503: Kafka unavailable, retry (resubmitting the same event_id is safe)."
        ),
        lifespan=lifespan,
    )
    app.add_middleware(HttpMetricsMiddleware, service="gateway")
    app.state.sender, app.state.recent = sender, recent

    @app.exception_handler(Problem)
    async def problem(_request: Request, exc: Problem) -> JSONResponse:
        headers = {"Retry-After": "5" if exc.status == 503 else "1"} if exc.status in (409, 503) else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)

    def check(raw: Any, where: list[Any], partner: str) -> AnyEvent:
        """The event as the contract's model, or Problem(422) naming the field."""
        if not isinstance(raw, dict):
            raise Problem(422, [{"loc": where, "msg": f"expected a JSON object (an event), got {type(raw).__name__}"}])
        event_type = raw.get("event_type")
        if event_type in EVENT_TYPES and event_type not in ACCEPTED_TYPES:
            EVENTS_REJECTED.labels("event_type").inc()
            message = f"{event_type} is not accepted here; send one of {', '.join(ACCEPTED_TYPES)}"
            raise Problem(422, [{"loc": [*where, "event_type"], "msg": message}])
        errors = validator.errors(raw)
        if not errors:
            try:
                event = decode_event(orjson.dumps(raw))
            except EventDecodeError as exc:
                errors = exc.errors
        if errors:
            EVENTS_REJECTED.labels("schema").inc()
            raise Problem(422, [_problem(line, where) for line in errors])
        return event.model_copy(update={"source": f"gateway:{partner}", "produced_at": now_wib()})

    async def produce(events: list[AnyEvent]) -> Accepted:
        ids = [e.event_id for e in events]
        new, duplicates, in_flight = recent.claim(ids)
        if in_flight:
            raise Problem(409, f"events {in_flight} are being produced by another request right now; retry")
        DUPLICATES.inc(len(duplicates))
        to_produce, records = set(new), []
        for e in events:
            if e.event_id in to_produce:  # the first of repeated ids in one batch; later ones are duplicates
                to_produce.discard(e.event_id)
                topic = topic_for(e)
                records.append((topics.get(topic, topic), kafka_key(e), encode_event(e), e.event_type))
        try:
            await run_in_threadpool(sender.send, records)
        except Unavailable as exc:
            recent.release(new)
            raise Problem(503, f"Kafka did not acknowledge the events ({exc}); nothing is lost by retrying") from exc
        recent.accept(new)
        return Accepted(accepted=len(records), event_ids=ids, duplicates=duplicates)

    @app.post("/v1/events", status_code=202, response_model=Accepted, responses={409: {}, 422: {}, 503: {}})
    async def post_event(
        x_partner_id: PartnerId,
        event: Annotated[dict[str, Any], Body(examples=[EXAMPLE_EVENT])],
    ) -> Accepted:
        """One event; 202 once Kafka acknowledged it (or it had been accepted before)."""
        return await produce([check(event, ["body"], x_partner_id)])

    @app.post("/v1/events:batch", status_code=202, response_model=Accepted, responses={409: {}, 422: {}, 503: {}})
    async def post_batch(
        x_partner_id: PartnerId,
        batch: Annotated[Batch, Body(examples=[{"events": [EXAMPLE_EVENT]}])],
    ) -> Accepted:
        """Up to 500 events, all or nothing: one invalid item refuses the batch, naming the item."""
        problems, events = [], []
        for index, raw in enumerate(batch.events):
            try:
                events.append(check(raw, ["body", "events", index], x_partner_id))
            except Problem as exc:
                problems.extend(exc.detail if isinstance(exc.detail, list) else [exc.detail])
        if problems:
            raise Problem(422, problems)
        return await produce(events)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        reachable = await run_in_threadpool(sender.kafka_reachable)
        body = {"status": "ok" if reachable else "kafka_unreachable", "kafka": settings.kafka_bootstrap_servers}
        return JSONResponse(body, status_code=200 if reachable else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def _problem(line: str, where: list[Any]) -> dict[str, Any]:
    """'payload.price_idr_per_kg: -5 is less than ...' -> {"loc": [..., "payload", "price_idr_per_kg"], "msg": ...}."""
    path, _, message = line.partition(": ")
    loc: list[Any] = list(where)
    if path and path != "<event>":
        for part in path.replace("]", "").replace("[", ".").split("."):
            if part:
                loc.append(int(part) if part.isdigit() else part)
    return {"loc": loc, "msg": message or line}
