"""The SDK against a real running gateway (uvicorn in a thread, real app, SQLite)."""

from __future__ import annotations

import threading
from decimal import Decimal

import httpx
import pytest
from stablegate_client import (
    AsyncClient,
    AuthenticationError,
    Client,
    InvalidRequest,
    IpBanned,
    NotFound,
    OrderConflict,
    OrderStatus,
    RateLimited,
)
from tests.clients.live_gateway import Gateway, StartGateway
from tests.support import TEST_USDT


def sdk(gateway: Gateway, **kwargs: object) -> Client:
    options: dict[str, object] = {
        "secret_key": gateway.keys.secret_key,
        "now_ms": gateway.clock.now_ms,
        "sleep": gateway.sleep,
    }
    options.update(kwargs)
    return Client(gateway.url, gateway.keys.api_key, **options)  # type: ignore[arg-type]


@pytest.fixture
def live(start_gateway: StartGateway) -> Gateway:
    return start_gateway()


def test_create_query_list_cancel(live: Gateway) -> None:
    with sdk(live) as client:
        order = client.create_order(
            31337,
            "USDT",
            Decimal("12.34"),
            cust_no="cust-7",
            redirect_url="https://shop.example.com/thanks",
            expire_seconds=600,
            description="two mugs",
            metadata={"cart": [1, 2], "note": "é"},
        )
        assert order.status == OrderStatus.PENDING
        assert order.amount == Decimal("12.34") and isinstance(order.paid_amount, Decimal)
        assert order.order_no.startswith("sg-")  # generated, so retries are safe
        assert order.chain_id == 31337 and order.token_address == TEST_USDT
        assert order.payout_address == live.payout
        assert order.factory and order.deposit_salt and order.to_address.startswith("0x")
        assert order.expire_time_ms - order.create_time_ms == 600_000
        assert order.metadata == {"cart": [1, 2], "note": "é"}
        assert order.cashier_url.endswith(order.order_id)
        assert order.qr_code_data_url is None

        by_id = client.get_order(order_id=order.order_id)
        by_no = client.get_order(order_no=order.order_no)
        assert by_id == by_no and by_id.payments == ()
        assert by_id.order_id == order.order_id and by_id.amount == order.amount

        page = client.list_orders(status="pending", limit=10)
        assert [o.order_id for o in page.items] == [order.order_id]

        cancelled = client.cancel_order(order_no=order.order_no)
        assert cancelled.status == OrderStatus.CANCELLED
        assert client.cancel_order(order_id=order.order_id).status == "cancelled"  # harmless
        assert client.list_orders(status="pending").items == ()


def test_creating_again_with_the_same_order_no_is_idempotent(live: Gateway) -> None:
    with sdk(live) as client:
        first = client.create_order(31337, "USDT", "5", order_no="shop-1")
        again = client.create_order(31337, "USDT", "5", order_no="shop-1")
        assert again.order_id == first.order_id
        with pytest.raises(OrderConflict) as raised:
            client.create_order(31337, "USDT", "6", order_no="shop-1")
        assert raised.value.status == 409 and raised.value.code == "order_conflict"


class DropFirstAnswer(httpx.BaseTransport):
    """Delivers the first request to the gateway, then loses its answer (a reset connection)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.calls = 0
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            response.read()
            raise httpx.ReadError("connection reset after the gateway answered")
        return response

    def close(self) -> None:
        self.inner.close()


def test_a_retried_create_whose_answer_was_lost_makes_one_order(live: Gateway) -> None:
    transport = DropFirstAnswer()
    with (
        httpx.Client(transport=transport) as http,
        sdk(live, http_client=http) as client,
    ):
        order = client.create_order(31337, "USDT", "9.99")
        assert transport.calls == 2
        assert [o.order_id for o in client.list_orders().items] == [order.order_id]


def test_v1_signing_with_a_registered_public_key(live: Gateway) -> None:
    private_pem = live.register_public_key()
    with sdk(live, secret_key=None, private_key_pem=private_pem) as client:
        order = client.create_order(31337, "USDT", "1", inline_qr=True)
        assert order.qr_code_data_url is not None
        assert order.qr_code_data_url.startswith("data:image/png;base64,")
        assert client.get_order(order_id=order.order_id).order_id == order.order_id
    # From now on the key refuses V2.
    with sdk(live) as client, pytest.raises(AuthenticationError) as raised:
        client.create_order(31337, "USDT", "1")
    assert raised.value.code == "signature_v1_required"


def test_errors_from_the_gateway_are_typed(live: Gateway) -> None:
    with sdk(live) as client:
        with pytest.raises(NotFound):
            client.get_order(order_id="ord_missing")
        with pytest.raises(InvalidRequest) as raised:
            client.create_order(31337, "USDT", "1.1234567")  # USDT has 6 decimals
        assert raised.value.code == "invalid_amount"
        with pytest.raises(InvalidRequest):
            client.create_order(31337, "NOPE", "1")
    with sdk(live, secret_key="wrong") as client, pytest.raises(AuthenticationError) as auth:
        client.list_orders()
    assert auth.value.code == "invalid_signature"


def test_iterating_all_orders_follows_cursors(live: Gateway) -> None:
    with sdk(live) as client:
        created = {client.create_order(31337, "USDT", str(n + 1)).order_id for n in range(5)}
        assert {o.order_id for o in client.iter_orders(page_size=2)} == created


def test_chains_and_the_signing_key_are_public(live: Gateway) -> None:
    with Client(live.url, "ak_unused") as client:
        chains = {c.chain_id: c for c in client.chains()}
        key = client.signing_key()
    assert "USDT" in {t.symbol for t in chains[31337].tokens}
    assert key.key_id.startswith("gk_") and "BEGIN PUBLIC KEY" in key.public_key_pem


def test_429_is_retried_after_retry_after_on_the_gateways_clock(
    start_gateway: StartGateway,
) -> None:
    gateway = start_gateway(rate_limit_per_minute=5)
    statuses: list[int] = []
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        gateway.sleep(seconds)

    hooks = {"response": [lambda r: statuses.append(r.status_code)]}
    with (
        httpx.Client(event_hooks=hooks) as http,
        sdk(gateway, http_client=http, sleep=sleep) as client,
    ):
        for _ in range(6):
            client.list_orders()
    limited = statuses.index(429)
    assert statuses[:limited] == [200] * 5 and statuses[limited + 1 :] == [200]
    assert len(slept) == 1 and 0 < slept[0] <= 13  # 5/min: one request per 12 s, plus jitter


def test_418_is_raised_and_not_retried(start_gateway: StartGateway) -> None:
    gateway = start_gateway(rate_limit_per_minute=5)
    statuses: list[int] = []
    hooks = {"response": [lambda r: statuses.append(r.status_code)]}
    # A sleep that does not let the gateway's time pass: every retry lands inside Retry-After,
    # as with many processes sharing one key, until the gateway bans the key from this IP.
    with (
        httpx.Client(event_hooks=hooks) as http,
        sdk(gateway, http_client=http, sleep=lambda _s: None, max_retries=50) as client,
    ):
        for _ in range(5):
            client.list_orders()
        with pytest.raises(IpBanned) as raised:
            client.list_orders()
        assert statuses[-1] == 418 and statuses.count(418) == 1
        assert set(statuses[5:-1]) == {429}
        assert raised.value.retry_after > 0 and raised.value.code == "ip_banned"
        with pytest.raises(RateLimited):  # still banned; IpBanned is a RateLimited
            client.list_orders()
        assert statuses[-2:] == [418, 418]


async def test_the_async_client_against_the_gateway(live: Gateway) -> None:
    async def sleep(seconds: float) -> None:
        live.sleep(seconds)

    async with AsyncClient(
        live.url,
        live.keys.api_key,
        secret_key=live.keys.secret_key,
        now_ms=live.clock.now_ms,
        sleep=sleep,
    ) as client:
        order = await client.create_order("31337", "USDT", 3, order_no="async-1")
        assert (await client.create_order(31337, "USDT", 3, order_no="async-1")) == order
        assert (await client.get_order(order_no="async-1")).order_id == order.order_id
        assert [o.order_id async for o in client.iter_orders()] == [order.order_id]
        assert (await client.list_orders(limit=1)).items[0].order_id == order.order_id
        assert (await client.cancel_order(order_id=order.order_id)).status == "cancelled"
        with pytest.raises(NotFound):
            await client.cancel_order(order_no="async-missing")
        assert 31337 in {c.chain_id for c in await client.chains()}
        assert (await client.signing_key()).algorithm == "ECDSA-P256-SHA256"
