"""The outermost layer (api/request_log.py): request id, common headers, the answer to a bug and
to a NUL in the URL, and one log line per request with what the route bound to the context."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs
from tests.support import Signer

CREATE = "/api/v1/payment/createQrOrder"


@pytest.fixture
def failing_route(app: FastAPI) -> str:
    async def boom() -> None:
        raise RuntimeError("a bug in a route")

    app.add_api_route("/test-only/boom", boom)
    return "/test-only/boom"


async def test_a_bug_is_answered_with_the_error_shape(
    client: httpx.AsyncClient, failing_route: str
) -> None:
    with capture_logs() as logs:
        answer = await client.get(failing_route, headers={"X-Request-Id": "req-bug-1"})
    assert answer.status_code == 500
    assert answer.json() == {
        "error": {"code": "internal_error", "message": "internal error; the operator has been told"}
    }
    assert answer.headers["x-request-id"] == "req-bug-1"
    assert answer.headers["x-content-type-options"] == "nosniff"
    events = [entry["event"] for entry in logs]
    assert "unhandled_error" in events
    request = next(entry for entry in logs if entry["event"] == "request")
    assert (request["status"], request["route"]) == (500, failing_route)


async def test_the_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-Id": "x" * 100})
    assert given.headers["x-request-id"] == "x" * 64
    made = await client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 16
    assert made.headers["x-request-id"] != (await client.get("/healthz")).headers["x-request-id"]


@pytest.mark.parametrize("target", ["/api/v1/public/orders/a%00b", "/healthz?x=%00"])
async def test_a_nul_in_the_url_is_a_clear_error(client: httpx.AsyncClient, target: str) -> None:
    answer = await client.get(target)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_request"
    assert "x-request-id" in answer.headers


async def test_the_log_line_names_the_merchant_and_errors_carry_the_rate_headers(
    client: httpx.AsyncClient, signer: Signer
) -> None:
    body = json.dumps({"chainId": "31337", "symbol": "USDT", "amount": "-1"}).encode()
    with capture_logs(processors=[merge_contextvars]) as logs:
        refused = await client.post(
            CREATE, content=body, headers=signer.headers("POST", CREATE, body)
        )
    assert refused.status_code == 400
    # Authenticated, then refused: the key's limit headers are on the error answer too.
    assert refused.headers["x-ratelimit-limit"] == "100"
    request = next(entry for entry in logs if entry["event"] == "request")
    assert request["merchant_id"] == signer.keys.merchant_id
    assert request["status"] == 400
