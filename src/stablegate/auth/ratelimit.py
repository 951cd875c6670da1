"""Rate limits (docs/DESIGN.md §2): per verified API key, per IP for failed authentication, per IP
for public endpoints; with a ban ladder for clients that keep hammering after a 429.

The limiter is GCRA (a smooth token bucket: ``limit`` requests of burst, refilling one every
``period / limit``). Time is kept in integer microseconds so that the in-process backend and the
Redis Lua script compute exactly the same decisions from the same clock readings.

Per API key, signed requests (counted only once the signature verified), ``per_minute``:

- over it: 429 ``rate_limited`` with ``Retry-After`` and ``X-RateLimit-Limit/Remaining/Reset``
  (``Reset``: seconds until the full quota is back);
- a client, i.e. (API key, :func:`~stablegate.auth.client_ip.ban_subject` of its IP), that sends
  ``threshold`` (10) or more further requests inside the ``Retry-After`` period of the 429 it got
  is banned: 418 ``ip_banned`` with ``Retry-After``, for 2 min, 10 min, 1 h, 6 h, 24 h, then 72 h
  for every further offence. The ladder starts again when an offence comes 7 days or more after
  the previous one.

Reads made with the API key alone (no signature) have a budget of their own per key,
``unsigned_per_minute``, with its own ban ladder per (API key, IP): whoever holds only the key
(it is not a secret once it sits in a config file or a log) can use that up, never the quota or
the standing of signed requests.

Failed authentication and public endpoints are limited per IP (IPv6 per /64) with 429 only; the
failed-authentication bucket is separate from every merchant's quota. Only failures are limited:
the bucket is consulted after a request failed to authenticate, so a correctly signed request
passes even from an address (a shared NAT, a load balancer) whose failures used up its budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis

from stablegate.auth.client_ip import ban_subject
from stablegate.clock import Clock
from stablegate.errors import RateLimited

MINUTE_MS = 60_000
DAY_MS = 86_400_000


@dataclass(frozen=True)
class BanPolicy:
    threshold: int = 10
    ladder_ms: tuple[int, ...] = (
        2 * 60_000,
        10 * 60_000,
        3_600_000,
        6 * 3_600_000,
        DAY_MS,
        3 * DAY_MS,
    )
    reset_after_ms: int = 7 * DAY_MS


@dataclass(frozen=True)
class Decision:
    allowed: bool
    banned: bool
    limit: int
    remaining: int
    reset_ms: int  # until the bucket is full again
    retry_after_ms: int  # until a request would pass (0 when allowed); ban time left when banned


class RateLimitBackend(Protocol):
    async def take(
        self, bucket: str, limit: int, period_ms: int, *, consume: bool = True
    ) -> Decision:
        """One GCRA step on ``bucket``; ``consume=False`` only asks whether one would pass."""
        ...

    async def take_with_ban(
        self, bucket: str, pair: str, limit: int, period_ms: int, policy: BanPolicy
    ) -> Decision:
        """Ban check, GCRA step on ``bucket`` and strike/ban bookkeeping for ``pair``,
        atomically."""
        ...


def _interval_us(limit: int, period_ms: int) -> int:
    if limit < 1 or period_ms < 1:
        raise ValueError("limit and period must be positive")
    return max(1, round(period_ms * 1000 / limit))


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# ---------------------------------------------------------------------------------------------
# In-process backend


@dataclass
class _Pair:
    strike_until: int = 0
    strikes: int = 0
    banned_until: int = 0
    offences: int = 0
    last_offence: int | None = None

    def expires_at(self, policy: BanPolicy) -> int:
        keep = max(self.strike_until, self.banned_until)
        if self.last_offence is not None:
            keep = max(keep, self.last_offence + policy.reset_after_ms)
        return keep


class MemoryRateLimitBackend:
    """For a single API process. Atomic because no step awaits. Bounded: expired state is swept
    as it grows; past ``max_entries`` the oldest state is dropped (failing open)."""

    def __init__(self, clock: Clock, *, max_entries: int = 200_000) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._buckets: dict[str, tuple[int, int]] = {}  # bucket -> (tat_us, expires_ms)
        self._pairs: dict[str, tuple[_Pair, int]] = {}  # pair -> (state, expires_ms)

    def _sweep(self, now: int) -> None:
        for store in (self._buckets, self._pairs):
            if len(store) < self._max_entries:
                continue
            expired = [key for key, value in store.items() if value[1] <= now]
            for key in expired:
                del store[key]
            while len(store) >= self._max_entries:
                del store[next(iter(store))]

    def _gcra(
        self, bucket: str, limit: int, period_ms: int, now: int, consume: bool
    ) -> tuple[Decision, int]:
        """The decision and, when rejected, the Retry-After in whole ms (rounded up to s)."""
        interval = _interval_us(limit, period_ms)
        tolerance = interval * limit
        now_us = now * 1000
        stored = self._buckets.get(bucket)
        tat = max(stored[0] if stored is not None and stored[1] > now else now_us, now_us)
        new_tat = tat + interval
        if new_tat - now_us > tolerance:
            retry_us = new_tat - now_us - tolerance
            retry_ms = _ceil_div(retry_us, 1000)
            decision = Decision(
                allowed=False,
                banned=False,
                limit=limit,
                remaining=0,
                reset_ms=_ceil_div(tat - now_us, 1000),
                retry_after_ms=retry_ms,
            )
            return decision, _ceil_div(retry_us, 1_000_000) * 1000
        if consume:
            if bucket not in self._buckets:
                self._sweep(now)
            expires = now + _ceil_div(new_tat - now_us, 1000)
            self._buckets[bucket] = (new_tat, expires)
        decision = Decision(
            allowed=True,
            banned=False,
            limit=limit,
            remaining=(tolerance - (new_tat - now_us)) // interval,
            reset_ms=_ceil_div(new_tat - now_us, 1000),
            retry_after_ms=0,
        )
        return decision, 0

    async def take(
        self, bucket: str, limit: int, period_ms: int, *, consume: bool = True
    ) -> Decision:
        return self._gcra(bucket, limit, period_ms, self._clock.now_ms(), consume)[0]

    async def take_with_ban(
        self, bucket: str, pair: str, limit: int, period_ms: int, policy: BanPolicy
    ) -> Decision:
        now = self._clock.now_ms()
        held = self._pairs.get(pair)
        state = held[0] if held is not None and held[1] > now else _Pair()
        if state.banned_until > now:
            return _banned(limit, state.banned_until - now)
        if state.strike_until > now:
            state.strikes += 1
            if state.strikes >= policy.threshold:
                if (
                    state.last_offence is not None
                    and now - state.last_offence >= policy.reset_after_ms
                ):
                    state.offences = 0
                state.offences += 1
                duration = policy.ladder_ms[min(state.offences, len(policy.ladder_ms)) - 1]
                state.banned_until = now + duration
                state.last_offence = now
                state.strikes = 0
                state.strike_until = 0
                self._keep_pair(pair, state, policy, now)
                return _banned(limit, duration)
        decision, retry_period = self._gcra(bucket, limit, period_ms, now, True)
        if not decision.allowed and state.strike_until <= now:
            state.strike_until = now + retry_period
            state.strikes = 0
        self._keep_pair(pair, state, policy, now)
        return decision

    def _keep_pair(self, pair: str, state: _Pair, policy: BanPolicy, now: int) -> None:
        expires = state.expires_at(policy)
        if expires <= now:
            self._pairs.pop(pair, None)
            return
        if pair not in self._pairs:
            self._sweep(now)
        self._pairs[pair] = (state, expires)


def _banned(limit: int, left_ms: int) -> Decision:
    return Decision(
        allowed=False, banned=True, limit=limit, remaining=0, reset_ms=0, retry_after_ms=left_ms
    )


# ---------------------------------------------------------------------------------------------
# Redis backend: each check is one Lua script, so many API processes share exact counts.
# Every stored time is compared explicitly with ``now``, so a key that outlives its use changes
# no decision; Redis expiry (on Redis's own clock) only reclaims memory. Keys are kept
# SLACK_MS longer than needed so that clock skew between API processes and Redis, or a test's
# fake clock, never loses live state.

# KEYS[1] bucket (TAT in microseconds). ARGV: now_ms, interval_us, limit, consume (0/1).
# Returns {allowed, remaining, reset_ms, retry_after_ms}.
_GCRA_LUA = """
local SLACK_MS = 60000
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local consume = tonumber(ARGV[4])
local tolerance = interval * limit
local now_us = now * 1000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now_us then tat = now_us end
local new_tat = tat + interval
if new_tat - now_us > tolerance then
  return {0, 0, math.ceil((tat - now_us) / 1000), math.ceil((new_tat - now_us - tolerance) / 1000)}
end
if consume == 1 then
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX',
    math.ceil((new_tat - now_us) / 1000) + SLACK_MS)
end
return {1, math.floor((tolerance - (new_tat - now_us)) / interval),
  math.ceil((new_tat - now_us) / 1000), 0}
"""

# KEYS[1] bucket, KEYS[2] pair hash (su strike_until, sc strikes, bu banned_until, oc offences,
# lo last_offence). ARGV: now_ms, interval_us, limit, threshold, reset_after_ms, ladder...
# Returns {allowed, banned, remaining, reset_ms, retry_after_ms}.
_BAN_LUA = """
local SLACK_MS = 60000
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local threshold = tonumber(ARGV[4])
local reset_after = tonumber(ARGV[5])
local ladder_len = #ARGV - 5
local st = redis.call('HMGET', KEYS[2], 'su', 'sc', 'bu', 'oc', 'lo')
local su = tonumber(st[1]) or 0
local sc = tonumber(st[2]) or 0
local bu = tonumber(st[3]) or 0
local oc = tonumber(st[4]) or 0
local lo = tonumber(st[5])

local function keep()
  local until_ms = math.max(su, bu)
  if lo then until_ms = math.max(until_ms, lo + reset_after) end
  if until_ms <= now then
    redis.call('DEL', KEYS[2])
    return
  end
  redis.call('HSET', KEYS[2], 'su', string.format('%d', su), 'sc', string.format('%d', sc),
    'bu', string.format('%d', bu), 'oc', string.format('%d', oc))
  if lo then redis.call('HSET', KEYS[2], 'lo', string.format('%d', lo)) end
  redis.call('PEXPIRE', KEYS[2], until_ms - now + SLACK_MS)
end

if bu > now then
  return {0, 1, 0, 0, bu - now}
end
if su > now then
  sc = sc + 1
  if sc >= threshold then
    if lo and now - lo >= reset_after then oc = 0 end
    oc = oc + 1
    local duration = tonumber(ARGV[5 + math.min(oc, ladder_len)])
    bu = now + duration
    lo = now
    sc = 0
    su = 0
    keep()
    return {0, 1, 0, 0, duration}
  end
end

local tolerance = interval * limit
local now_us = now * 1000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now_us then tat = now_us end
local new_tat = tat + interval
if new_tat - now_us > tolerance then
  local retry_us = new_tat - now_us - tolerance
  if su <= now then
    su = now + math.ceil(retry_us / 1000000) * 1000
    sc = 0
  end
  keep()
  return {0, 0, 0, math.ceil((tat - now_us) / 1000), math.ceil(retry_us / 1000)}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX',
  math.ceil((new_tat - now_us) / 1000) + SLACK_MS)
keep()
return {1, 0, math.floor((tolerance - (new_tat - now_us)) / interval),
  math.ceil((new_tat - now_us) / 1000), 0}
"""


class RedisRateLimitBackend:
    """Shared by every API process using the same Redis and ``prefix``; one script per check,
    with the time passed in from ``clock`` (so all processes must keep their clocks in sync)."""

    def __init__(self, redis: Redis, prefix: str, clock: Clock) -> None:
        self._redis = redis
        self._prefix = prefix
        self._clock = clock
        self._gcra = redis.register_script(_GCRA_LUA)
        self._ban = redis.register_script(_BAN_LUA)

    async def take(
        self, bucket: str, limit: int, period_ms: int, *, consume: bool = True
    ) -> Decision:
        result: Any = await self._gcra(
            keys=[f"{self._prefix}rl:{bucket}"],
            args=[self._clock.now_ms(), _interval_us(limit, period_ms), limit, int(consume)],
        )
        allowed, remaining, reset_ms, retry_ms = (int(x) for x in result)
        return Decision(
            allowed=bool(allowed),
            banned=False,
            limit=limit,
            remaining=remaining,
            reset_ms=reset_ms,
            retry_after_ms=retry_ms,
        )

    async def take_with_ban(
        self, bucket: str, pair: str, limit: int, period_ms: int, policy: BanPolicy
    ) -> Decision:
        result: Any = await self._ban(
            keys=[f"{self._prefix}rl:{bucket}", f"{self._prefix}ban:{pair}"],
            args=[
                self._clock.now_ms(),
                _interval_us(limit, period_ms),
                limit,
                policy.threshold,
                policy.reset_after_ms,
                *policy.ladder_ms,
            ],
        )
        allowed, banned, remaining, reset_ms, retry_ms = (int(x) for x in result)
        return Decision(
            allowed=bool(allowed),
            banned=bool(banned),
            limit=limit,
            remaining=remaining,
            reset_ms=reset_ms,
            retry_after_ms=retry_ms,
        )


# ---------------------------------------------------------------------------------------------
# Facade


def _seconds(ms: int) -> int:
    return max(1, _ceil_div(ms, 1000))


def _headers(decision: Decision) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(_ceil_div(decision.reset_ms, 1000)),
    }


def _raise_limited(decision: Decision, what: str) -> None:
    raise RateLimited(
        f"too many {what}; retry after the Retry-After period",
        retry_after=_seconds(decision.retry_after_ms),
        headers=_headers(decision),
    )


class RateLimiter:
    """The limits the API applies. Typical use::

        try:
            result = await authenticate(...)
        except AuthError:
            await limiter.note_failed_auth(ip)  # 429 instead once the address is over budget
            raise
        if result.signed:
            headers = await limiter.check_key(result.credentials.api_key_id, ip)
        else:
            headers = await limiter.check_unsigned_read(result.credentials.api_key_id, ip)

    and ``await limiter.check_public(ip)`` on public endpoints. ``ip`` is the client address from
    :func:`~stablegate.auth.client_ip.client_ip`.
    """

    def __init__(
        self,
        backend: RateLimitBackend,
        *,
        per_minute: int = 100,
        unsigned_per_minute: int = 100,
        failed_auth_per_minute: int = 30,
        public_per_minute: int = 300,
        ban_policy: BanPolicy | None = None,
    ) -> None:
        for value in (per_minute, unsigned_per_minute, failed_auth_per_minute, public_per_minute):
            if value < 1:
                raise ValueError("rate limits must be positive")
        self._backend = backend
        self.per_minute = per_minute
        self.unsigned_per_minute = unsigned_per_minute
        self.failed_auth_per_minute = failed_auth_per_minute
        self.public_per_minute = public_per_minute
        self.ban_policy = ban_policy or BanPolicy()

    @property
    def backend(self) -> RateLimitBackend:
        """The shared counters (in this process, or Redis for all), for limits of other
        domains such as the dashboard's log-in throttle."""
        return self._backend

    async def check_key(self, api_key_id: str, ip: str) -> dict[str, str]:
        """Count one signed request of a verified key; return the ``X-RateLimit-*`` headers, or
        raise 429 ``rate_limited`` / 418 ``ip_banned``."""
        # The braces are a Redis Cluster hash tag: both keys of the script in one slot.
        return await self._take_key(
            f"key:{{{api_key_id}}}", ip, self.per_minute, "requests for this API key"
        )

    async def check_unsigned_read(self, api_key_id: str, ip: str) -> dict[str, str]:
        """Like :meth:`check_key` for a read made with the key alone, on its own budget and ban
        ladder, so that it never uses up or bans signed traffic."""
        return await self._take_key(
            f"unsigned:{{{api_key_id}}}",
            ip,
            self.unsigned_per_minute,
            "unsigned reads for this API key (signed requests have their own quota)",
        )

    async def _take_key(self, bucket: str, ip: str, limit: int, what: str) -> dict[str, str]:
        decision = await self._backend.take_with_ban(
            bucket, f"{bucket}:{ban_subject(ip)}", limit, MINUTE_MS, self.ban_policy
        )
        if decision.banned:
            raise RateLimited(
                "this client is banned for ignoring Retry-After; wait for the Retry-After period",
                retry_after=_seconds(decision.retry_after_ms),
                code="ip_banned",
                status=418,
            )
        if not decision.allowed:
            _raise_limited(decision, what)
        return _headers(decision)

    async def note_failed_auth(self, ip: str) -> None:
        """Count one failed authentication from this IP; over the budget, raise 429 (the caller
        then answers 429 instead of its 401). Call it only for a request that failed: requests
        that authenticate never look at this bucket, so other people's failures from the same
        address cannot lock a merchant out."""
        decision = await self._backend.take(
            f"authfail:{ban_subject(ip)}", self.failed_auth_per_minute, MINUTE_MS
        )
        if not decision.allowed:
            _raise_limited(decision, "failed authentication attempts from this address")

    async def check_public(self, ip: str) -> dict[str, str]:
        """Count one public-endpoint request from this IP; 429 over the limit, never a ban."""
        decision = await self._backend.take(
            f"public:{ban_subject(ip)}", self.public_per_minute, MINUTE_MS
        )
        if not decision.allowed:
            _raise_limited(decision, "requests from this address")
        return _headers(decision)
