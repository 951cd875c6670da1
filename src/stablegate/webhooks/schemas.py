"""Wire shapes of the webhook endpoints (also the OpenAPI schema): the one list of a delivery's
fields, built by :func:`stablegate.webhooks.service.delivery_out`."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr


class ResendRequest(BaseModel):
    """Exactly one of: ``eventId`` (one event), ``failed: true`` (every failed event)."""

    model_config = ConfigDict(extra="forbid")

    event_id: Annotated[StrictStr | None, Field(alias="eventId", min_length=1, max_length=64)] = (
        None
    )
    failed: StrictBool = False


class ResendResult(BaseModel):
    count: int


class Delivery(BaseModel):
    delivery_id: str = Field(alias="deliveryId")
    event_id: str = Field(alias="eventId")
    order_id: str = Field(alias="orderId")
    type: str
    sequence: int
    event_status: str = Field(alias="eventStatus")
    attempt: int
    url: str
    outcome: str
    response_status: int | None = Field(alias="responseStatus")
    response_body: str | None = Field(alias="responseBody")
    error: str | None
    latency_ms: int = Field(alias="latencyMs")
    attempt_time: int = Field(alias="attemptTime")


class DeliveryPage(BaseModel):
    items: list[Delivery]
    next_cursor: str | None = Field(alias="nextCursor")
