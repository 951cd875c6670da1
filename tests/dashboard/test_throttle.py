"""Log-in failures are limited per account and per client IP (and sign-ups per IP), on the
API's rate-limit counters: in the process, or in Redis shared by every API process."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from tests.dashboard.dashboard_support import Browser, MailSink, signed_up_and_in

from stablegate.auth.ratelimit import RedisRateLimitBackend
from stablegate.clock import FakeClock
from stablegate.dashboard.throttle import (
    ACCOUNT_FAILURES,
    IP_FAILURES,
    PERIOD_MS,
    SIGNUPS,
    FormThrottle,
)
from stablegate.errors import RateLimited

WRONG = "not the password at all"


async def test_an_account_is_locked_after_its_failures_even_for_the_right_password(
    app: FastAPI, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as owner:
        await signed_up_and_in(owner, mail, "Shop", "owner@shop.example")
    async with Browser(app, ip="198.51.100.1") as guesser:
        for _ in range(ACCOUNT_FAILURES):
            assert (await guesser.log_in("owner@shop.example", WRONG)).status_code == 400
        locked = await guesser.log_in("owner@shop.example")
        assert locked.status_code == 429
        assert "Too many attempts. Wait 180 seconds and try again." in locked.text
        assert locked.headers["retry-after"] == "180"
        assert guesser.session_cookie is None
    # Per account: the same account from another address is locked too ...
    async with Browser(app, ip="192.0.2.50") as elsewhere:
        assert (await elsewhere.log_in("OWNER@shop.example")).status_code == 429
    # ... and after one refill period one more attempt passes.
    clock.advance(PERIOD_MS / ACCOUNT_FAILURES / 1000)
    async with Browser(app, ip="192.0.2.50") as later:
        assert (await later.log_in("owner@shop.example")).status_code == 303


async def test_an_address_is_locked_after_its_failures_across_accounts(
    app: FastAPI, mail: MailSink
) -> None:
    async with Browser(app, ip="198.51.100.2") as owner:
        await signed_up_and_in(owner, mail, "Shop", "owner@shop.example")
    async with Browser(app, ip="198.51.100.3") as sprayer:
        for number in range(IP_FAILURES):
            answer = await sprayer.log_in(f"guess{number}@shop.example", WRONG)
            assert answer.status_code == 400
        assert (await sprayer.log_in("owner@shop.example")).status_code == 429
    async with Browser(app, ip="198.51.100.4") as owner:
        assert (await owner.log_in("owner@shop.example")).status_code == 303


async def test_sign_ups_are_limited_per_address(app: FastAPI) -> None:
    async with Browser(app, ip="198.51.100.5") as browser:
        for number in range(SIGNUPS):
            made = await browser.sign_up("Shop", f"s{number}@shop.example")
            assert made.status_code == 200
        refused = await browser.sign_up("Shop", "one-more@shop.example")
        assert refused.status_code == 429 and "Too many attempts" in refused.text


@pytest.fixture
async def redis_backends() -> AsyncIterator[tuple[FormThrottle, FormThrottle]]:
    client = Redis.from_url(os.environ["STABLEGATE_TEST_REDIS_URL"])
    try:
        await client.ping()
    except Exception as exc:  # pragma: no cover - the services are required in CI
        pytest.fail(f"Redis is unreachable: {exc!r}")
    prefix = f"sgtest:dash:{uuid.uuid4().hex}:"
    clock = FakeClock()
    # Two API processes: two backends on one Redis.
    yield (
        FormThrottle(RedisRateLimitBackend(client, prefix, clock)),
        FormThrottle(RedisRateLimitBackend(client, prefix, clock)),
    )
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_with_redis_the_failures_count_across_processes(
    redis_backends: tuple[FormThrottle, FormThrottle],
) -> None:
    one, other = redis_backends
    for number in range(ACCOUNT_FAILURES):
        process = one if number % 2 else other
        await process.check_login("owner@shop.example", "203.0.113.9")
        await process.note_failed_login("owner@shop.example", "203.0.113.9")
    for process in (one, other):
        with pytest.raises(RateLimited) as refused:
            await process.check_login("owner@shop.example", "198.51.100.77")
        assert refused.value.retry_after == 180
    await one.check_login("someone-else@shop.example", "198.51.100.77")
