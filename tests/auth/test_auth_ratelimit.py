"""Rate limits and the ban ladder: one suite, run on the in-process and the Redis backend."""

from __future__ import annotations

import asyncio
import random

import pytest
from redis.asyncio import Redis
from tests.service_urls import REDIS_URL

from stablegate.auth.ratelimit import (
    BanPolicy,
    Decision,
    MemoryRateLimitBackend,
    RateLimitBackend,
    RateLimiter,
    RedisRateLimitBackend,
)
from stablegate.clock import FakeClock
from stablegate.errors import RateLimited

IP = "198.51.100.7"
KEY = "key_1"
LADDER_S = [120, 600, 3600, 21600, 86400, 259200]
DAY = 86_400.0


@pytest.fixture
def backend(backend_redis: tuple[Redis, str] | None, clock: FakeClock) -> RateLimitBackend:
    if backend_redis is None:
        return MemoryRateLimitBackend(clock)
    redis, prefix = backend_redis
    return RedisRateLimitBackend(redis, prefix, clock)


@pytest.fixture
def limiter(backend: RateLimitBackend) -> RateLimiter:
    return RateLimiter(backend)


async def limited(limiter: RateLimiter, key: str = KEY, ip: str = IP) -> RateLimited:
    with pytest.raises(RateLimited) as info:
        await limiter.check_key(key, ip)
    return info.value


async def use_quota(limiter: RateLimiter, n: int = 100, key: str = KEY, ip: str = IP) -> None:
    for _ in range(n):
        await limiter.check_key(key, ip)


async def offend(limiter: RateLimiter, key: str = KEY, ip: str = IP) -> int:
    """Use the quota, get a 429, then send 10 more inside its Retry-After: the 10th is a 418.
    Returns the ban's Retry-After in seconds."""
    await use_quota(limiter, key=key, ip=ip)
    first = await limited(limiter, key, ip)
    assert (first.status, first.code) == (429, "rate_limited")
    for _ in range(9):
        assert (await limited(limiter, key, ip)).status == 429
    ban = await limited(limiter, key, ip)
    assert (ban.status, ban.code) == (418, "ip_banned")
    return ban.retry_after


async def test_quota_headers_and_the_101st_request(limiter: RateLimiter) -> None:
    for i in range(100):
        headers = await limiter.check_key(KEY, IP)
        assert headers["X-RateLimit-Limit"] == "100"
        assert headers["X-RateLimit-Remaining"] == str(99 - i)
    assert headers["X-RateLimit-Reset"] == "60"
    error = await limited(limiter)
    assert (error.status, error.code, error.retry_after) == (429, "rate_limited", 1)
    assert error.headers == {
        "Retry-After": "1",
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "60",
    }


async def test_smooth_refill(limiter: RateLimiter, clock: FakeClock) -> None:
    await use_quota(limiter)
    await limited(limiter)
    clock.advance(0.6)  # one emission interval (60 s / 100)
    assert (await limiter.check_key(KEY, IP))["X-RateLimit-Remaining"] == "0"
    clock.advance(0.3)
    await limited(limiter)
    clock.advance(30.0)
    assert (await limiter.check_key(KEY, IP))["X-RateLimit-Remaining"] == "49"


async def test_full_quota_after_a_minute(limiter: RateLimiter, clock: FakeClock) -> None:
    await use_quota(limiter)
    clock.advance(60.0)
    await use_quota(limiter)
    await limited(limiter)


async def test_configurable_limit(backend: RateLimitBackend) -> None:
    limiter = RateLimiter(backend, per_minute=5)
    for _ in range(5):
        await limiter.check_key(KEY, IP)
    error = await limited(limiter)
    assert error.retry_after == 12
    assert error.headers["X-RateLimit-Limit"] == "5"


async def test_ten_more_inside_retry_after_is_a_ban(limiter: RateLimiter, clock: FakeClock) -> None:
    assert await offend(limiter) == 120
    clock.advance(60.0)
    still = await limited(limiter)
    assert (still.status, still.code, still.retry_after) == (418, "ip_banned", 60)
    assert still.headers == {"Retry-After": "60"}
    clock.advance(59.999)
    assert (await limited(limiter)).retry_after == 1
    clock.advance(0.001)
    assert (await limiter.check_key(KEY, IP))["X-RateLimit-Remaining"] == "99"


async def test_nine_more_is_not_a_ban(limiter: RateLimiter, clock: FakeClock) -> None:
    await use_quota(limiter)
    for _ in range(10):  # the 429 and 9 more inside its Retry-After
        assert (await limited(limiter)).status == 429
    clock.advance(1.0)  # the Retry-After period is over: this one is not "inside" it
    await limiter.check_key(KEY, IP)
    # A new 429 opens a new period with a fresh count.
    for _ in range(10):
        assert (await limited(limiter)).status == 429
    assert (await limited(limiter)).status == 418


async def test_client_respecting_retry_after_is_never_banned(
    limiter: RateLimiter, clock: FakeClock
) -> None:
    allowed = limited_count = 0
    for _ in range(500):  # as fast as allowed, always waiting out Retry-After
        try:
            await limiter.check_key(KEY, IP)
            allowed += 1
        except RateLimited as error:
            assert error.status == 429
            limited_count += 1
            clock.advance(error.retry_after)
    assert allowed > 300 and limited_count > 50


async def test_ban_ladder(limiter: RateLimiter, clock: FakeClock) -> None:
    seen = []
    for _ in range(9):
        seen.append(await offend(limiter))
        clock.advance(seen[-1])
    assert seen == [*LADDER_S, 259200, 259200, 259200]


async def test_ladder_resets_after_seven_clean_days(limiter: RateLimiter, clock: FakeClock) -> None:
    for expected in LADDER_S:
        assert await offend(limiter) == expected
        clock.advance(expected)
    # The last offence was 72 h ago; 7 days after it, less a millisecond, the ladder holds ...
    clock.advance(7 * DAY - 259200 - 0.001)
    assert await offend(limiter) == 259200
    # ... and 7 full clean days after that offence it starts again from 2 min.
    clock.advance(7 * DAY)
    assert await offend(limiter) == 120
    clock.advance(120)
    assert await offend(limiter) == 600


async def test_ban_is_per_key_and_client(limiter: RateLimiter, clock: FakeClock) -> None:
    await offend(limiter, ip="2001:db8:1:2::1")
    # The same /64 is the same client.
    assert (await limited(limiter, ip="2001:db8:1:2:ffff::9")).status == 418
    # Another client of the same key shares the key's quota but is not banned.
    other = await limited(limiter, ip="2001:db8:1:3::1")
    assert other.status == 429
    # The banned client with another key is fine.
    await limiter.check_key("key_2", "2001:db8:1:2::1")
    clock.advance(60.0)
    await limiter.check_key(KEY, "2001:db8:1:3::1")
    assert (await limited(limiter, ip="2001:db8:1:2::1")).status == 418


async def test_ipv4_mapped_is_the_ipv4_client(limiter: RateLimiter) -> None:
    await offend(limiter, ip="198.51.100.9")
    assert (await limited(limiter, ip="::ffff:198.51.100.9")).status == 418


async def test_unsigned_reads_have_their_own_budget_and_ban_ladder(
    limiter: RateLimiter, clock: FakeClock
) -> None:
    # A holder of the key alone uses up the unsigned budget and gets banned for ignoring 429 ...
    for i in range(100):
        headers = await limiter.check_unsigned_read(KEY, IP)
        assert headers["X-RateLimit-Remaining"] == str(99 - i)
    statuses = []
    for _ in range(11):  # the 429 and 10 more inside its Retry-After
        with pytest.raises(RateLimited) as info:
            await limiter.check_unsigned_read(KEY, IP)
        statuses.append(info.value.status)
    assert statuses == [429] * 10 + [418]
    # ... while signed requests of the same key from the same client keep their whole quota.
    for i in range(100):
        assert (await limiter.check_key(KEY, IP))["X-RateLimit-Remaining"] == str(99 - i)
    assert (await limited(limiter)).status == 429
    with pytest.raises(RateLimited) as info:
        await limiter.check_unsigned_read(KEY, IP)
    assert info.value.code == "ip_banned"
    # The unsigned ban ends on its own ladder; signed strikes never reach it.
    clock.advance(120.0)
    await limiter.check_unsigned_read(KEY, IP)


async def test_unsigned_read_limit_is_configurable(backend: RateLimitBackend) -> None:
    limiter = RateLimiter(backend, per_minute=100, unsigned_per_minute=3)
    for _ in range(3):
        headers = await limiter.check_unsigned_read(KEY, IP)
    assert headers["X-RateLimit-Limit"] == "3"
    with pytest.raises(RateLimited) as info:
        await limiter.check_unsigned_read(KEY, IP)
    assert (info.value.status, info.value.retry_after) == (429, 20)
    assert (await limiter.check_key(KEY, IP))["X-RateLimit-Limit"] == "100"


async def failed(limiter: RateLimiter, ip: str) -> RateLimited:
    with pytest.raises(RateLimited) as info:
        await limiter.note_failed_auth(ip)
    return info.value


async def test_failed_auth_is_per_ip_and_spares_the_key(
    limiter: RateLimiter, clock: FakeClock
) -> None:
    attacker = "203.0.113.66"
    for _ in range(30):
        await limiter.note_failed_auth(attacker)
    error = await failed(limiter, attacker)
    assert (error.status, error.code, error.retry_after) == (429, "rate_limited", 2)
    # More failures are never a ban.
    for _ in range(50):
        assert (await failed(limiter, attacker)).status == 429
    # Other addresses and the merchant's quota are untouched.
    await limiter.note_failed_auth("203.0.113.67")
    assert (await limiter.check_key(KEY, attacker))["X-RateLimit-Remaining"] == "99"
    clock.advance(2.0)
    await limiter.note_failed_auth(attacker)
    await failed(limiter, attacker)


async def test_failed_auth_groups_ipv6_by_64(limiter: RateLimiter) -> None:
    for i in range(30):
        await limiter.note_failed_auth(f"2001:db8:9:9::{i + 1:x}")
    await failed(limiter, "2001:db8:9:9:abcd::1")
    await limiter.note_failed_auth("2001:db8:9:a::1")


async def test_public_limit_is_429_only(backend: RateLimitBackend, clock: FakeClock) -> None:
    limiter = RateLimiter(backend, public_per_minute=300)
    for _ in range(300):
        headers = await limiter.check_public(IP)
    assert headers["X-RateLimit-Limit"] == "300"
    for _ in range(100):
        with pytest.raises(RateLimited) as info:
            await limiter.check_public(IP)
        assert (info.value.status, info.value.code) == (429, "rate_limited")
        assert info.value.retry_after == 1
    await limiter.check_public("198.51.100.8")
    # Public traffic does not touch the key quota either.
    assert (await limiter.check_key(KEY, IP))["X-RateLimit-Remaining"] == "99"
    clock.advance(0.2)
    await limiter.check_public(IP)


async def test_concurrent_checks_are_atomic(limiter: RateLimiter) -> None:
    gate = asyncio.Semaphore(50)  # the Redis client's pool holds 100 connections

    async def one() -> bool:
        try:
            async with gate:
                await limiter.check_key(KEY, IP)
        except RateLimited:
            return False
        return True

    results = await asyncio.gather(*(one() for _ in range(150)))
    assert sum(results) == 100


def test_invalid_limits(clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        RateLimiter(MemoryRateLimitBackend(clock), per_minute=0)
    with pytest.raises(ValueError):
        RateLimiter(MemoryRateLimitBackend(clock), unsigned_per_minute=0)


# --- Redis only ------------------------------------------------------------------------------


@pytest.mark.redis
async def test_two_limiters_on_one_redis_share_the_count(
    redis_client: Redis, redis_prefix: str, clock: FakeClock
) -> None:
    second = Redis.from_url(REDIS_URL)
    try:
        # Two connections to one database, not two databases that each see half the requests.
        db = [(await client.client_info())["db"] for client in (redis_client, second)]
        assert db[0] == db[1]
        a = RateLimiter(RedisRateLimitBackend(redis_client, redis_prefix, clock))
        b = RateLimiter(RedisRateLimitBackend(second, redis_prefix, clock))
        for i in range(100):
            await (a if i % 2 else b).check_key(KEY, IP)
        for one in (a, b):
            with pytest.raises(RateLimited):
                await one.check_key(KEY, IP)
        # The strikes are shared too: 8 more on a and the 10th on b is the ban.
        for _ in range(8):
            await limited(a)
        assert (await limited(b)).status == 418
        assert (await limited(a)).status == 418
    finally:
        await second.aclose()


@pytest.mark.redis
async def test_redis_and_memory_decide_alike(redis_client: Redis, redis_prefix: str) -> None:
    """A random stream of checks, clock steps and limits gives identical decisions."""
    rng = random.Random(1234)
    clock = FakeClock()
    memory: RateLimitBackend = MemoryRateLimitBackend(clock)
    redis: RateLimitBackend = RedisRateLimitBackend(redis_client, redis_prefix, clock)
    policy = BanPolicy(threshold=3, ladder_ms=(5_000, 20_000, 60_000), reset_after_ms=300_000)
    outcomes: dict[str, int] = {"allowed": 0, "limited": 0, "banned": 0}
    for _ in range(2000):
        action = rng.random()
        limit = rng.choice([2, 7])
        bucket = f"b{limit}"
        pair = f"{bucket}:p{rng.randrange(2)}"
        decisions: list[Decision] = []
        for backend in (memory, redis):
            if action < 0.6:
                decisions.append(await backend.take_with_ban(bucket, pair, limit, 60_000, policy))
            else:
                decisions.append(
                    await backend.take(bucket + "x", limit, 60_000, consume=action < 0.8)
                )
        assert decisions[0] == decisions[1]
        d = decisions[0]
        outcomes["banned" if d.banned else "allowed" if d.allowed else "limited"] += 1
        clock.advance(rng.choice([0] * 4 + [0.001, 0.05, 0.5, 1.7, 2.2, 6, 30]) / 4)
    assert min(outcomes.values()) > 50, outcomes


@pytest.mark.redis
async def test_redis_and_memory_limiters_answer_alike(
    redis_client: Redis, redis_prefix: str
) -> None:
    """Every budget of the facade (signed, unsigned reads, failures, public) on both backends:
    the same random stream gives the same answers, headers and Retry-After included."""
    rng = random.Random(4321)
    clock = FakeClock()
    policy = BanPolicy(threshold=3, ladder_ms=(5_000, 20_000), reset_after_ms=120_000)
    limits = {"per_minute": 4, "unsigned_per_minute": 3, "failed_auth_per_minute": 2}
    limiters = [
        RateLimiter(
            MemoryRateLimitBackend(clock), ban_policy=policy, public_per_minute=5, **limits
        ),
        RateLimiter(
            RedisRateLimitBackend(redis_client, redis_prefix, clock),
            ban_policy=policy,
            public_per_minute=5,
            **limits,
        ),
    ]
    seen: set[object] = set()
    for _ in range(1500):
        kind = rng.choice(["signed", "unsigned", "failed", "public"])
        ip = rng.choice([IP, "2001:db8:1:2::1", "2001:db8:1:2::2"])
        answers = []
        for limiter in limiters:
            try:
                if kind == "signed":
                    answers.append(await limiter.check_key(KEY, ip))
                elif kind == "unsigned":
                    answers.append(await limiter.check_unsigned_read(KEY, ip))
                elif kind == "failed":
                    await limiter.note_failed_auth(ip)
                    answers.append({})
                else:
                    answers.append(await limiter.check_public(ip))
            except RateLimited as error:
                answers.append({"status": str(error.status), "code": error.code, **error.headers})
        assert answers[0] == answers[1], kind
        seen.add((kind, answers[0].get("status", "200")))
        clock.advance(rng.choice([0] * 6 + [0.001, 0.3, 1.1, 4.0, 9.0]) / 2)
    assert {("signed", "418"), ("unsigned", "418"), ("failed", "429"), ("public", "429")} <= seen


@pytest.mark.redis
async def test_redis_keys_expire(redis_client: Redis, redis_prefix: str, clock: FakeClock) -> None:
    limiter = RateLimiter(RedisRateLimitBackend(redis_client, redis_prefix, clock))
    await offend(limiter)
    keys = [k.decode() async for k in redis_client.scan_iter(match=f"{redis_prefix}*")]
    assert len(keys) == 2
    for key in keys:
        ttl = await redis_client.pttl(key)
        assert ttl > 0, key
        assert ttl <= 7 * 86_400_000 + 60_000  # offence history plus the expiry slack
