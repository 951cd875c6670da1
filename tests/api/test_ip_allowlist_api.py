"""An API key's IP allowlist through the app (SQLite and PostgreSQL): the request address is
the one every limit uses (the TCP peer; ``X-Forwarded-For`` only from a trusted proxy), an
address outside the list is 403 ``ip_not_allowed`` before the replay cache or any order is
touched, and a change holds for the next request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from tests.support import MerchantKeys, Signer

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.db.engine import session_scope
from stablegate.merchants.api_keys import set_key_ip_allowlist
from stablegate.models import ApiKey, Order, ReplayKey

CREATE = "/api/v1/payment/createQrOrder"
QUERY = "/api/v1/payment/contractPayment"


@asynccontextmanager
async def _from(app: FastAPI, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(ip, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://pay.example.com") as c:
        yield c


async def _allow(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys, text: str
) -> None:
    async with session_scope(gateway.sessions) as session:
        key_id = await session.scalar(
            select(ApiKey.id).where(ApiKey.merchant_id == merchant.merchant_id)
        )
        assert key_id is not None
        await set_key_ip_allowlist(
            session,
            clock,
            merchant_id=merchant.merchant_id,
            key_id=key_id,
            text=text,
            actor="test",
        )


async def _count(gateway: GatewayContext, table: type[Order] | type[ReplayKey]) -> int:
    async with session_scope(gateway.sessions) as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


def _create(signer: Signer, order_no: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"chainId": "31337", "symbol": "USDT", "amount": "5", "orderNo": order_no}
    ).encode()
    return body, signer.headers("POST", CREATE, body)


async def test_an_allowlisted_key_works_inside_its_networks_and_nowhere_else(
    app: FastAPI,
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    signer: Signer,
) -> None:
    await _allow(gateway, clock, merchant, "203.0.113.0/24\n2001:db8:abcd::/48\n192.0.2.9")
    cases = [
        ("203.0.113.9", 200),
        ("::ffff:203.0.113.10", 200),  # an IPv4-mapped peer is its IPv4 address
        ("2001:db8:abcd:1::5", 200),
        ("192.0.2.9", 200),
        ("203.0.114.9", 403),
        ("2001:db8:abce::1", 403),
        ("192.0.2.10", 403),
        ("::1", 403),
    ]
    for n, (ip, status) in enumerate(cases):
        body, headers = _create(signer, f"ip-{n}")
        async with _from(app, ip) as client:
            created = await client.post(CREATE, content=body, headers=headers)
            read = await client.get(QUERY, headers={"BlockATM-API-Key": merchant.api_key})
        assert (created.status_code, read.status_code) == (status, status), (ip, created.text)
        if status == 403:
            assert created.json()["error"] == {
                "code": "ip_not_allowed",
                "message": "this API key may not be used from this address",
            }
    assert await _count(gateway, Order) == 4

    # Cleared: any address again, at once.
    await _allow(gateway, clock, merchant, "")
    body, headers = _create(signer, "anywhere")
    async with _from(app, "2001:db8:abce::1") as client:
        assert (await client.post(CREATE, content=body, headers=headers)).status_code == 200


async def test_the_refusal_comes_before_the_replay_claim_and_writes_nothing(
    app: FastAPI,
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    signer: Signer,
) -> None:
    await _allow(gateway, clock, merchant, "2001:db8::/32")
    body, headers = _create(signer, "once")
    replays_before = await _count(gateway, ReplayKey)
    async with _from(app, "198.51.100.1") as outside:
        for _ in range(3):
            refused = await outside.post(CREATE, content=body, headers=headers)
            assert refused.status_code == 403
    assert await _count(gateway, Order) == 0
    assert await _count(gateway, ReplayKey) == replays_before
    # The very same signed request from inside: accepted (its signing string was never
    # claimed), then refused as a replay like any other.
    async with _from(app, "2001:db8::7") as inside:
        created = await inside.post(CREATE, content=body, headers=headers)
        assert created.status_code == 200, created.text
        again = await inside.post(CREATE, content=body, headers=headers)
        assert again.json()["error"]["code"] == "replayed_request"
    assert await _count(gateway, Order) == 1


async def test_refusals_count_as_failed_authentication_of_the_address(
    app: FastAPI,
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
) -> None:
    await _allow(gateway, clock, merchant, "2001:db8::/32")
    limit = gateway.settings.failed_auth_per_minute
    async with _from(app, "198.51.100.1") as outside:
        codes = [
            (await outside.get(QUERY, headers={"BlockATM-API-Key": merchant.api_key})).status_code
            for _ in range(limit + 1)
        ]
    assert codes[:limit] == [403] * limit and codes[-1] == 429


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    proxies: list[str] = getattr(request, "param", [])
    return settings.model_copy(update={"trusted_proxies": proxies})


@pytest.mark.parametrize("settings", [[]], indirect=True)
async def test_forwarded_for_is_not_believed_from_an_untrusted_peer(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    await _allow(gateway, clock, merchant, "203.0.113.9")
    headers = {"BlockATM-API-Key": merchant.api_key, "X-Forwarded-For": "203.0.113.9"}
    async with _from(app, "198.51.100.1") as client:
        refused = await client.get(QUERY, headers=headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "ip_not_allowed"


@pytest.mark.parametrize("settings", [["127.0.0.1"]], indirect=True)
async def test_forwarded_for_from_a_trusted_proxy_names_the_client(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    await _allow(gateway, clock, merchant, "203.0.113.9")
    key = {"BlockATM-API-Key": merchant.api_key}
    async with _from(app, "127.0.0.1") as proxy:
        inside = await proxy.get(QUERY, headers={**key, "X-Forwarded-For": "203.0.113.9"})
        assert inside.status_code == 200, inside.text
        outside = await proxy.get(
            QUERY, headers={**key, "X-Forwarded-For": "203.0.113.9, 198.51.100.1"}
        )
        assert outside.status_code == 403
        assert (await proxy.get(QUERY, headers=key)).status_code == 403  # the proxy itself
