"""The client IP the app uses for its limits: the TCP peer, or ``X-Forwarded-For`` (every header
line, in order) only when the peer is a trusted proxy.

Requests come through httpx's ASGI transport with the peer set in the ASGI scope, as a server
without proxy-header rewriting (uvicorn ``proxy_headers=False``) passes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from tests.support import Signer

from stablegate.config import Settings

CHAINS = "/api/v1/public/chains"
QUERY = "/api/v1/payment/contractPayment"
PUBLIC_LIMIT = 5
TRUSTED = pytest.mark.parametrize("settings", [["127.0.0.1"]], indirect=True)
NO_PROXY = pytest.mark.parametrize("settings", [[]], indirect=True)


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    proxies: list[str] = request.param
    return settings.model_copy(
        update={"trusted_proxies": proxies, "public_per_minute": PUBLIC_LIMIT}
    )


@pytest_asyncio.fixture
async def loopback(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose TCP peer is 127.0.0.1, like a local TLS terminator or forwarder."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://pay.example.com") as c:
        yield c


def xff(*lines: str) -> list[tuple[str, str]]:
    """Headers with one ``X-Forwarded-For`` line per argument (httpx keeps repeated names)."""
    return [("X-Forwarded-For", line) for line in lines]


@TRUSTED
async def test_a_line_the_client_sent_before_the_proxys_line_is_not_its_address(
    loopback: httpx.AsyncClient,
) -> None:
    # The proxy appends its own line with the real client; the client made up the first one.
    codes = [
        (await loopback.get(CHAINS, headers=xff(f"6.6.6.{n}", "198.51.100.7"))).status_code
        for n in range(PUBLIC_LIMIT + 3)
    ]
    assert codes == [200] * PUBLIC_LIMIT + [429] * 3
    # Another client behind the same proxy has its own budget.
    assert (await loopback.get(CHAINS, headers=xff("198.51.100.8"))).status_code == 200
    # Lines and commas are one list: the rightmost untrusted hop is the client either way.
    one_line = await loopback.get(CHAINS, headers=xff("6.6.6.6, 198.51.100.7"))
    assert one_line.status_code == 429


@TRUSTED
async def test_failed_signatures_cannot_pick_a_fresh_address(
    loopback: httpx.AsyncClient, signer: Signer
) -> None:
    bad = signer.headers("GET", QUERY, query="orderNo=x")
    bad["BlockATM-Signature-V2"] = "0" * 64
    codes = []
    for n in range(35):
        headers = [*bad.items(), *xff(f"6.6.{n}.6", "198.51.100.7")]
        codes.append((await loopback.get(f"{QUERY}?orderNo=x", headers=headers)).status_code)
    assert codes[:30] == [401] * 30
    assert set(codes[30:]) == {429}


@NO_PROXY
async def test_without_trusted_proxies_the_header_is_ignored(
    loopback: httpx.AsyncClient, app: FastAPI
) -> None:
    codes = [
        (await loopback.get(CHAINS, headers=xff(f"6.6.6.{n}", f"7.7.7.{n}"))).status_code
        for n in range(PUBLIC_LIMIT + 2)
    ]
    assert codes == [200] * PUBLIC_LIMIT + [429] * 2
    # The budget was the loopback peer's: another peer is unaffected.
    transport = httpx.ASGITransport(app=app, client=("203.0.113.20", 1))
    async with httpx.AsyncClient(transport=transport, base_url="https://pay.example.com") as other:
        assert (await other.get(CHAINS, headers=xff("6.6.6.0"))).status_code == 200
