"""The retry rules, with the far side of HTTP mocked (the real server: test_client_live.py).

429 waits at least Retry-After; 418 stops at once; 5xx and lost answers are retried only where
repeating is harmless; a connection that never opened is always retried.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from stablegate_client import (
    AsyncClient,
    AuthenticationError,
    Client,
    InvalidRequest,
    IpBanned,
    NetworkError,
    NotFound,
    OrderConflict,
    OrderHasPayments,
    RateLimited,
    ServerError,
    StablegateError,
)

PAGE: dict[str, Any] = {"items": [], "nextCursor": None}


def error(status: int, code: str, retry_after: int | None = None) -> httpx.Response:
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return httpx.Response(status, json={"error": {"code": code, "message": code}}, headers=headers)


class Script:
    """Answers requests from a list: a Response, or an exception to raise."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def client(script: Script, slept: list[float], **kwargs: object) -> Client:
    return Client(
        "http://gw.example",
        "ak_test",
        secret_key="s",
        http_client=httpx.Client(transport=httpx.MockTransport(script)),
        sleep=slept.append,
        **kwargs,  # type: ignore[arg-type]
    )


def test_429_is_retried_after_retry_after() -> None:
    script, slept = (
        Script(error(429, "rate_limited", 7), httpx.Response(200, json=PAGE)),
        list[float](),
    )
    assert client(script, slept).list_orders().items == ()
    assert len(script.requests) == 2
    assert len(slept) == 1 and 7 <= slept[0] < 8


def test_429_backoff_grows_and_gives_up_with_rate_limited() -> None:
    script = Script(*[error(429, "rate_limited", 1) for _ in range(4)])
    slept: list[float] = []
    with pytest.raises(RateLimited) as raised:
        client(script, slept, max_retries=3).list_orders()
    assert raised.value.retry_after == 1 and raised.value.status == 429
    assert len(script.requests) == 4 and len(slept) == 3 and all(s >= 1 for s in slept)


def test_a_retry_after_beyond_max_retry_wait_is_raised_at_once() -> None:
    script, slept = Script(error(429, "rate_limited", 600)), list[float]()
    with pytest.raises(RateLimited):
        client(script, slept, max_retry_wait=60).list_orders()
    assert slept == []


def test_418_is_never_retried() -> None:
    script, slept = Script(error(418, "ip_banned", 120)), list[float]()
    with pytest.raises(IpBanned) as raised:
        client(script, slept).create_order(1, "USDT", "1")
    assert raised.value.retry_after == 120 and raised.value.code == "ip_banned"
    assert len(script.requests) == 1 and slept == []
    assert isinstance(raised.value, RateLimited)


def test_5xx_is_retried_for_create_with_the_same_body_and_order_no() -> None:
    order_script = Script(error(503, "unavailable"), error(502, "bad_gateway"), error(400, "x"))
    slept: list[float] = []
    with pytest.raises(InvalidRequest):
        client(order_script, slept).create_order(1, "USDT", Decimal("1.50"), order_no="A-9")
    assert len({r.content for r in order_script.requests}) == 1
    assert b'"orderNo":"A-9"' in order_script.requests[0].content
    assert b'"amount":"1.50"' in order_script.requests[0].content
    assert len(slept) == 2 and 0 < slept[0] < slept[1] + 0.5


def test_5xx_is_not_retried_for_resend() -> None:
    script, slept = Script(error(500, "internal_error")), list[float]()
    with pytest.raises(ServerError):
        client(script, slept).resend_webhook(event_id="evt_1")
    assert len(script.requests) == 1


def test_a_lost_answer_is_retried_only_when_repeating_is_harmless() -> None:
    read_error = httpx.ReadError("connection reset")
    script, slept = Script(read_error, httpx.Response(200, json=PAGE)), list[float]()
    client(script, slept).list_orders()
    assert len(script.requests) == 2
    script = Script(httpx.ReadError("connection reset"))
    with pytest.raises(NetworkError) as raised:
        client(script, slept).resend_webhook(failed=True)
    assert raised.value.status is None and len(script.requests) == 1


def test_a_connection_that_never_opened_is_retried_even_for_resend() -> None:
    script = Script(httpx.ConnectError("refused"), httpx.Response(200, json={"count": 1}))
    assert client(script, []).resend_webhook(event_id="evt_1") == 1


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "invalid_amount", InvalidRequest),
        (413, "body_too_large", InvalidRequest),
        (401, "invalid_signature", AuthenticationError),
        (404, "not_found", NotFound),
        (409, "order_conflict", OrderConflict),
        (409, "order_has_payments", OrderHasPayments),
    ],
)
def test_errors_are_typed_and_not_retried(
    status: int, code: str, kind: type[StablegateError]
) -> None:
    script, slept = Script(error(status, code)), list[float]()
    with pytest.raises(kind) as raised:
        client(script, slept).get_order(order_id="ord_1")
    assert raised.value.code == code and raised.value.status == status
    assert len(script.requests) == 1


def test_a_non_json_error_still_has_a_code() -> None:
    script = Script(httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(ServerError) as raised:
        client(script, [], max_retries=0).list_orders()
    assert raised.value.code == "http_502"


@pytest.mark.parametrize("amount", [1.5, True, Decimal("NaN"), "1e", "inf"])
def test_floats_and_non_numbers_are_refused_before_sending(amount: object) -> None:
    script = Script()
    with pytest.raises((TypeError, ValueError)):
        client(script, []).create_order(1, "USDT", amount)  # type: ignore[arg-type]
    assert script.requests == []


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_order(),
        lambda c: c.get_order(order_id="a", order_no="b"),
        lambda c: c.cancel_order(),
        lambda c: c.resend_webhook(),
        lambda c: c.resend_webhook(event_id="e", failed=True),
    ],
)
def test_ambiguous_arguments_are_refused(call: Callable[[Client], object]) -> None:
    with pytest.raises(ValueError):
        call(client(Script(), []))


def test_request_times_increase_even_when_the_clock_stands_still() -> None:
    script = Script(*[httpx.Response(200, json=PAGE) for _ in range(3)])
    c = client(script, [], now_ms=lambda: 1_000)
    for _ in range(3):
        c.list_orders()
    times = [int(r.headers["BlockATM-Request-Time"]) for r in script.requests]
    assert times == [1_000, 1_001, 1_002]


async def test_the_async_client_follows_the_same_rules() -> None:
    script = Script(
        error(429, "rate_limited", 3),
        httpx.ConnectError("refused"),
        httpx.Response(200, json=PAGE),
        error(418, "ip_banned", 60),
    )
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async with AsyncClient(
        "http://gw.example",
        "ak_test",
        secret_key="s",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(script)),
        sleep=sleep,
    ) as c:
        assert (await c.list_orders()).next_cursor is None
        with pytest.raises(IpBanned):
            await c.list_orders()
    assert len(script.requests) == 4 and len(slept) == 2 and slept[0] >= 3


def test_a_replayed_request_is_signed_again_only_when_repeating_is_harmless() -> None:
    script = Script(error(401, "replayed_request"), httpx.Response(200, json=PAGE))
    client(script, []).list_orders()
    times = [r.headers["BlockATM-Request-Time"] for r in script.requests]
    assert len(times) == 2 and times[0] != times[1]
    script = Script(error(401, "replayed_request"))
    with pytest.raises(AuthenticationError):
        client(script, []).resend_webhook(event_id="evt_1")
    assert len(script.requests) == 1
