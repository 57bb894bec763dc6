"""Request and response bodies. Every time in a response is ISO 8601 in WIB (+07:00)."""

from __future__ import annotations

import uuid
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
from pantau.subscriptions.places import is_known_place

AlertType = Literal["price_spike", "price_disparity", "supply_gap", "route_disruption", "harvest_unshipped"]
Severity = Literal["normal", "watch", "alert", "crisis"]
RaisedSeverity = Literal["watch", "alert", "crisis"]

Wib = Annotated[
    datetime,
    PlainSerializer(lambda value: to_wib(value).isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "example": "2026-03-04T08:00:00+07:00"}),
]


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


CommodityCode = Annotated[str, Field(max_length=64), AfterValidator(_known_commodity)]
PlaceCode = Annotated[str, Field(max_length=64), AfterValidator(_known_place)]


# --- API keys --------------------------------------------------------------------------------------


class KeyIn(Model):
    name: str = Field(min_length=1, max_length=200, examples=["PT Sumber Pangan Jaya"])

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
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
    description: str | None = Field(None, max_length=200)
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
    webhook_url: WebhookUrl | None = None
    description: str | None = Field(None, max_length=200)
    alert_types: list[AlertType] | None = Field(None, max_length=5)
    commodities: list[CommodityCode] | None = Field(None, max_length=50)
    places: list[PlaceCode] | None = Field(None, max_length=50)
    min_severity: RaisedSeverity | None = None


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
