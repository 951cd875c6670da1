"""Rate limits through the real app: per verified key, bans per (key, IP), failed auth per IP.

The limiter itself is tested in tests/auth/; here the wiring: which requests count, which
headers come back, and that two app instances sharing Redis share one count.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio
import redis.asyncio as aioredis
from fastapi import FastAPI
from tests.conftest import REDIS_URL, unavailable
from tests.support import Signer

from stablegate.api.app import create_app
from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.db.engine import session_scope
from stablegate.merchants.service import set_key_policy
from stablegate.migrations import upgrade

QUERY = "/api/v1/payment/contractPayment"
CREATE = "/api/v1/payment/createQrOrder"


async def query(client: httpx.AsyncClient, signer: Signer, n: int) -> httpx.Response:
    # A signed read with a unique query, so the replay cache never interferes.
    q = f"orderNo=rl-{n}"
    return await client.get(f"{QUERY}?{q}", headers=signer.headers("GET", QUERY, query=q))


async def test_101st_request_is_429_then_418_and_the_ban_holds(
    client: httpx.AsyncClient, signer: Signer, clock: FakeClock
) -> None:
    for n in range(100):
        response = await query(client, signer, n)
        assert response.status_code == 404, response.text  # authenticated; order just not there
    assert response.headers["X-RateLimit-Limit"] == "100"
    limited = await query(client, signer, 100)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    retry_after = int(limited.headers["Retry-After"])
    assert 0 < retry_after <= 60
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    statuses = [(await query(client, signer, 200 + n)).status_code for n in range(10)]
    assert statuses[-1] == 418 and set(statuses) <= {429, 418}
    banned = await query(client, signer, 300)
    assert banned.status_code == 418
    assert banned.json()["error"]["code"] == "ip_banned"
    assert int(banned.headers["Retry-After"]) > 0
    clock.advance(119)
    assert (await query(client, signer, 301)).status_code == 418
    clock.advance(2)  # first offence: 2 minutes
    assert (await query(client, signer, 302)).status_code == 404


async def test_failed_authentication_does_not_use_the_merchants_quota(
    client: httpx.AsyncClient, signer: Signer, clock: FakeClock
) -> None:
    bad = signer.headers("GET", QUERY, query="orderNo=x")
    bad["BlockATM-Signature-V2"] = "0" * 64
    codes = [(await client.get(f"{QUERY}?orderNo=x", headers=bad)).status_code for _ in range(40)]
    assert codes[0] == 401 and codes[-1] == 429  # per-IP limit on failures, never a ban
    assert 418 not in codes
    # The merchant, from another IP, still has the whole quota.
    app = client._transport.app  # type: ignore[attr-defined]
    other = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("198.51.100.9", 1234)),
        base_url="https://pay.example.com",
    )
    async with other:
        ok = [(await query(other, signer, n)).status_code for n in range(100)]
    assert set(ok) == {404}


async def test_failures_from_an_address_never_refuse_its_signed_requests(
    client: httpx.AsyncClient, signer: Signer
) -> None:
    # Junk with the merchant's own API key, from the merchant's own address (a shared NAT, or
    # every client behind a load balancer) ...
    bad = signer.headers("GET", QUERY, query="orderNo=x")
    bad["BlockATM-Signature-V2"] = "0" * 64
    codes = [(await client.get(f"{QUERY}?orderNo=x", headers=bad)).status_code for _ in range(60)]
    assert codes[:30] == [401] * 30
    assert set(codes[30:]) == {429}
    # ... neither refuses nor bans the merchant's correctly signed requests from there: the
    # whole quota is left, and the failures were never counted against the (key, IP) pair.
    first = await query(client, signer, 0)
    assert first.status_code == 404, first.text
    assert first.headers["X-RateLimit-Remaining"] == "99"
    rest = [(await query(client, signer, n)).status_code for n in range(1, 100)]
    assert set(rest) == {404}
    # The failures are still the ones refused.
    assert (await client.get(f"{QUERY}?orderNo=x", headers=bad)).status_code == 429


async def test_reads_with_the_key_alone_never_starve_signed_requests(
    client: httpx.AsyncClient, signer: Signer
) -> None:
    key_only = {"BlockATM-API-Key": signer.keys.api_key}
    codes = [
        (await client.get(f"{QUERY}?orderNo=k-{n}", headers=key_only)).status_code
        for n in range(111)
    ]
    assert codes[:100] == [404] * 100  # read with the key alone; the order is just not there
    assert codes[-1] == 418 and set(codes[100:]) <= {429, 418}
    # The merchant's own signed createQrOrder from the same address still has its whole quota.
    body = json.dumps(
        {"chainId": "31337", "symbol": "USDT", "amount": "1", "orderNo": "after-reads"}
    ).encode()
    created = await client.post(CREATE, content=body, headers=signer.headers("POST", CREATE, body))
    assert created.status_code == 200, created.text
    assert created.headers["X-RateLimit-Remaining"] == "99"
    assert (await query(client, signer, 0)).status_code == 404
    # The key-only client stays banned.
    banned = await client.get(f"{QUERY}?orderNo=k", headers=key_only)
    assert banned.json()["error"]["code"] == "ip_banned"


async def test_a_key_with_a_public_key_refuses_unsigned_reads_unless_allowed(
    client: httpx.AsyncClient, signer: Signer, gateway: GatewayContext
) -> None:
    key_only = {"BlockATM-API-Key": signer.keys.api_key}
    assert (await client.get(f"{QUERY}?orderNo=x", headers=key_only)).status_code == 404
    await signer.register_public_key(gateway)
    refused = await client.get(f"{QUERY}?orderNo=x", headers=key_only)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "signature_required"
    q = "orderNo=x"
    signed = await client.get(
        f"{QUERY}?{q}", headers=signer.headers("GET", QUERY, query=q, v1=True, v2=False)
    )
    assert signed.status_code == 404
    # The operator can still allow them explicitly.
    async with session_scope(gateway.sessions) as session:
        policy = await set_key_policy(
            session, signer.clock, api_key=signer.keys.api_key, v2_enabled=None, signed_reads=False
        )
    assert policy["signedReads"] is False and policy["signedReadsDefault"] is False
    assert (await client.get(f"{QUERY}?orderNo=x", headers=key_only)).status_code == 404


async def test_public_endpoints_are_limited_per_ip_with_429_only(
    client: httpx.AsyncClient, gateway: GatewayContext
) -> None:
    limit = gateway.settings.public_per_minute
    codes = [(await client.get("/api/v1/public/chains")).status_code for _ in range(limit + 20)]
    assert codes[:limit] == [200] * limit
    assert set(codes[limit:]) == {429}


@pytest_asyncio.fixture
async def redis_url() -> AsyncIterator[str]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError) as exc:
        unavailable("Redis", str(exc))
    finally:
        await client.aclose()
    yield REDIS_URL


async def test_two_app_instances_sharing_redis_share_the_count(
    tmp_path: Path,
    database_url: str,
    chains_file: Path,
    clock: FakeClock,
    redis_url: str,
    signer: Signer,
    app: FastAPI,
) -> None:
    # Both instances use the database the `signer`'s merchant lives in, and one Redis.
    base: GatewayContext = app.state.gateway
    apps = []
    for name in ("a", "b"):
        config = Settings(
            data_dir=tmp_path / name,
            database_url=database_url,
            chains_file=chains_file,
            secret_key=base.settings.secret_key,
            redis_url=redis_url,
            _env_file=None,  # type: ignore[call-arg]
        )
        instance = create_app(config, clock=clock, migrate=False)
        await upgrade(instance.state.gateway.engine)
        apps.append(instance)
    # Fresh keys in Redis for this test: the merchant's API key id is random per test.
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=a, client=("203.0.113.50", 1)),
            base_url="https://pay.example.com",
        )
        for a in apps
    ]
    try:
        codes = [(await query(clients[n % 2], signer, n)).status_code for n in range(101)]
        assert codes[:100] == [404] * 100
        assert codes[100] == 429
    finally:
        for c in clients:
            await c.aclose()
        for a in apps:
            await a.state.gateway.engine.dispose()
            await a.state.gateway.redis.aclose()
