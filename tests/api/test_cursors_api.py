"""Crafted pagination cursors: 400 ``invalid_cursor``, never a 500, on SQLite and PostgreSQL.

The order list (contractPayment without orderId/orderNo) and the webhook delivery log take a
cursor that the client hands back; a forged one must not reach the driver out of bounds.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import httpx
import pytest
from tests.support import Signer

ORDERS = "/api/v1/payment/contractPayment"
DELIVERIES = "/api/v1/webhook/deliveries"


def token(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


ORDER_CURSORS = [
    token([2**63, "abc"]),  # one past BIGINT
    token([2**64 + 5, "abc"]),
    token([10**100, "abc"]),
    token([-1, "abc"]),
    token([True, "abc"]),
    token([1.5, "abc"]),
    token(["1", "abc"]),
    token([1, 2]),
    token([1, ""]),
    token([1, "a\u0000b"]),  # NUL: PostgreSQL text cannot hold it
    token([1, "\ud800"]),  # a lone surrogate: not encodable as UTF-8
    token([1, "x" * 41]),
    token([1, "abc", 3]),
    token([1]),
    token({"t": 1, "id": "abc"}),
    token(None),
    token(1),
    "NaN",
    "%%%",
    "a",  # 1 mod 4 characters: never base64
    "@@@@",
    "////",
    base64.urlsafe_b64encode(b"\xff\xfe[1,").decode(),
]
DELIVERY_CURSORS = [
    token([2**31]),  # one past INTEGER
    token([2**63]),
    token([2**64]),
    token([10**100]),
    token([0]),
    token([-5]),
    token([False]),
    token([1.0]),
    token(["7"]),
    token([1, 2]),
    token([]),
    token([[1]]),
    token("1"),
    "%%%",
    "a",
    "////",
]


def signed_get(signer: Signer, path: str, cursor: str) -> tuple[str, dict[str, str]]:
    query = f"cursor={quote(cursor, safe='')}"
    return f"{path}?{query}", signer.headers("GET", path, query=query)


@pytest.mark.parametrize("cursor", ORDER_CURSORS)
async def test_order_list_refuses_crafted_cursors(
    client: httpx.AsyncClient, signer: Signer, cursor: str
) -> None:
    url, headers = signed_get(signer, ORDERS, cursor)
    response = await client.get(url, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize("cursor", DELIVERY_CURSORS)
async def test_delivery_log_refuses_crafted_cursors(
    client: httpx.AsyncClient, signer: Signer, cursor: str
) -> None:
    url, headers = signed_get(signer, DELIVERIES, cursor)
    response = await client.get(url, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        (ORDERS, token([2**63 - 1, "zzzzzzzzzzzzzzzzzzzzzz"])),
        (ORDERS, token([0, "A"])),
        (DELIVERIES, token([2**31 - 1])),
        (DELIVERIES, token([1])),
    ],
)
async def test_cursors_at_the_bounds_are_served(
    client: httpx.AsyncClient, signer: Signer, path: str, cursor: str
) -> None:
    url, headers = signed_get(signer, path, cursor)
    response = await client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []
