"""How a response model goes on the wire, wherever it is sent from (an endpoint's answer, a
webhook event's ``data``, the CLI's JSON)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def wire_json(model: BaseModel) -> dict[str, Any]:
    """The JSON object of ``model``: wire (alias) names, and only the fields that were given,
    as the endpoints send it (``response_model_exclude_unset``): an order's ``payments`` and
    ``qrCodeDataUrl`` appear only where an endpoint adds them."""
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)
