"""Request and response bodies. Every time in a response is ISO 8601 in WIB (+07:00)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)

from pantau.contracts import to_wib
from pantau.reference import UnknownCodeError, load_reference
from pantau.subscriptions.places import is_known_place, province_codes

AlertType = Literal["price_spike", "price_disparity", "supply_gap", "route_disruption", "harvest_unshipped"]
Severity = Literal["normal", "watch", "alert", "crisis"]
RaisedSeverity = Literal["watch", "alert", "crisis"]

Wib = Annotated[
    datetime,
    PlainSerializer(lambda value: to_wib(value).isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "example": "2026-03-04T08:00:00+07:00"}),
]


# PostgreSQL text cannot hold NUL; refuse it at the door with a 422 instead of failing in the database.
NO_NUL = r"^[^\x00]*$"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


T = TypeVar("T")


class Page(Model, Generic[T]):
    items: list[T]
    next: str | None = Field(description="URL of the next page; null on the last page")


class ErrorBody(Model):
    detail: Any


# --- reference data --------------------------------------------------------------------------------


def _known_commodity(code: str) -> str:
    try:
        load_reference().commodity(code)
    except UnknownCodeError:
        raise ValueError(f"unknown commodity {code!r}; see /v1/reference/commodities") from None
    return code


def _known_place(code: str) -> str:
    if not is_known_place(load_reference(), code):
        raise ValueError(
            f"unknown place {code!r}: give a market, checkpoint, regency or BPS province code "
            "(see /v1/reference/markets, /checkpoints, /regencies)"
        )
    return code


def commodity_codes() -> list[str]:
    return [c.code for c in load_reference().commodities]


def place_codes() -> list[str]:
    ref = load_reference()
    codes = [m.code for m in ref.markets] + [c.code for c in ref.checkpoints] + [r.code for r in ref.regencies]
    return codes + sorted(province_codes(ref))


def listed(codes: Callable[[], list[str]]) -> Callable[[dict[str, Any]], None]:
    """JSON-schema hook: the valid codes as an enum, read from the reference data when the OpenAPI
    document is built (not at import)."""

    def add_enum(schema: dict[str, Any]) -> None:
        schema["enum"] = codes()

    return add_enum


CommodityCode = Annotated[
    str, Field(max_length=64, json_schema_extra=listed(commodity_codes)), AfterValidator(_known_commodity)
]
PlaceCode = Annotated[str, Field(max_length=64, json_schema_extra=listed(place_codes)), AfterValidator(_known_place)]


# --- API keys --------------------------------------------------------------------------------------


class KeyIn(Model):
    # Something besides whitespace, and no NUL; the pattern says it, so the schema says it too.
    name: str = Field(
        min_length=1, max_length=200, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$", examples=["PT Sumber Pangan Jaya"]
    )

    @field_validator("name")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        return value.strip()


class KeyOut(Model):
    key_id: str
    name: str
    created_at: Wib
    revoked_at: Wib | None


class KeyCreated(KeyOut):
    api_key: str = Field(description="shown once: store it now, only its hash is kept")


# --- subscriptions ---------------------------------------------------------------------------------

WebhookUrl = Annotated[HttpUrl, Field(description="http or https URL that receives the signed POSTs")]


class SubscriptionIn(Model):
    webhook_url: WebhookUrl
    description: str | None = Field(None, max_length=200, pattern=NO_NUL)
    alert_types: list[AlertType] = Field(default_factory=list, max_length=5, description="empty: every type")
    commodities: list[CommodityCode] = Field(default_factory=list, max_length=50, description="empty: all")
    places: list[PlaceCode] = Field(
        default_factory=list,
        max_length=50,
        description="market, checkpoint, regency or BPS province codes; a province includes its markets. "
        "Empty: everywhere",
    )
    min_severity: RaisedSeverity = "watch"


class SubscriptionPatch(Model):
    """Fields left out stay as they are; only `description` can be cleared with null."""

    webhook_url: WebhookUrl = Field(None)  # type: ignore[assignment]  # absent: unchanged
    description: str | None = Field(None, max_length=200, pattern=NO_NUL)
    alert_types: list[AlertType] = Field(None, max_length=5)  # type: ignore[assignment]
    commodities: list[CommodityCode] = Field(None, max_length=50)  # type: ignore[assignment]
    places: list[PlaceCode] = Field(None, max_length=50)  # type: ignore[assignment]
    min_severity: RaisedSeverity = Field(None)  # type: ignore[assignment]


class SubscriptionOut(Model):
    subscription_id: uuid.UUID
    description: str | None
    webhook_url: str
    alert_types: list[str]
    commodities: list[str]
    places: list[str]
    min_severity: str
    created_at: Wib
    updated_at: Wib


class SubscriptionWithSecret(SubscriptionOut):
    signing_secret: str = Field(
        description="HMAC-SHA256 key of the X-Pantau-Signature header; shown on creation and rotation"
    )


# --- deliveries ------------------------------------------------------------------------------------

DeliveryStatus = Literal["pending", "delivered", "dead_lettered"]


class DeliveryOut(Model):
    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    alert_event_id: uuid.UUID
    alert_id: uuid.UUID
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: Wib | None = Field(description="when pending: the next attempt")
    last_attempt_at: Wib | None
    last_status_code: int | None
    last_error: str | None
    created_at: Wib
    delivered_at: Wib | None
    dead_lettered_at: Wib | None


class AttemptOut(Model):
    attempt: int
    attempted_at: Wib
    duration_seconds: float
    status_code: int | None
    error: str | None


class DeliveryDetail(DeliveryOut):
    event: dict[str, Any] = Field(description="the alert event as sent (the body of the POST)")
    attempt_log: list[AttemptOut]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route gives, all {"detail": ...}."""
    meaning = {
        400: "the body could not be read as JSON",
        401: "no API key, or not a valid one (WWW-Authenticate: Bearer)",
        404: "not found, or not this key's",
        409: "conflicts with the current state",
        422: "a parameter or the body is not valid; `detail` says which and why",
        429: "rate limit exceeded; retry after the Retry-After header's seconds",
        503: "the database is not answering; retry after the Retry-After header's seconds",
    }
    return {code: {"model": ErrorBody, "description": meaning[code]} for code in codes}
