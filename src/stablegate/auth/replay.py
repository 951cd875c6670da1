"""Replay cache: a signing string is accepted once.

The key is derived from (apiKey, SHA-256 of the signing string), not from the signature, so
re-encoding a V1 signature (base64/hex/raw) or flipping ECDSA's ``s`` to ``n - s`` does not get
a request accepted twice. Entries live :data:`REPLAY_TTL_MS`: the longest span in which the time
rule accepts one request time (receive window 60 s plus 1 s of allowed clock skew ahead).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from stablegate.clock import Clock
from stablegate.errors import AuthError, GatewayError

REPLAY_TTL_MS = 61_000


def replayed_request() -> AuthError:
    return AuthError(
        "this request was already accepted; sign each request with a fresh request time",
        code="replayed_request",
    )


class ReplayStore(Protocol):
    async def claim(self, key: str, ttl_ms: int) -> bool:
        """Atomically record ``key``: True the first time within ``ttl_ms``, False on a replay."""
        ...


def replay_key(api_key: str, signing_string: bytes) -> str:
    """Hex SHA-256 of ``apiKey || NUL || SHA-256(signing string)``; no secret goes in."""
    digest = hashlib.sha256(signing_string).digest()
    return hashlib.sha256(api_key.encode("utf-8") + b"\x00" + digest).hexdigest()


@dataclass(frozen=True)
class ReplayClaim:
    """A claim to make later, in the statement that writes the request's effects."""

    key: str
    expires_at_ms: int
    now_ms: int  # an entry that expired by then is taken over


class DeferredClaim:
    """Takes note of the claim instead of making it: the caller makes it later in the statement
    that writes the request's effects (:mod:`stablegate.orders.signed_insert`), and answers a
    replay there. Used once, for one request."""

    def __init__(self) -> None:
        self.key: str | None = None
        self.ttl_ms = 0

    async def claim(self, key: str, ttl_ms: int) -> bool:
        if self.key is not None:
            raise RuntimeError("a deferred claim is for one request")
        self.key, self.ttl_ms = key, ttl_ms
        return True


class ReplayCacheFull(GatewayError):
    """The in-process cache is at capacity with live entries; fail closed rather than forget."""

    status = 503
    code = "replay_cache_full"


class MemoryReplayStore:
    """In-process store for a single API process. Bounded: expired entries are evicted as new
    ones arrive; when ``max_entries`` live entries exist, claims fail closed with 503."""

    def __init__(self, clock: Clock, *, max_entries: int = 1_000_000) -> None:
        self._clock = clock
        self._max_entries = max_entries
        # key -> expiry (monotonic seconds). Entries are appended in claim order; with one TTL
        # that is also expiry order, so expired entries are always at the front.
        self._entries: OrderedDict[str, float] = OrderedDict()

    @property
    def size(self) -> int:
        """Entries held, live or not yet evicted."""
        return len(self._entries)

    def _evict_expired(self, now: float) -> None:
        entries = self._entries
        while entries:
            first_key, expires = next(iter(entries.items()))
            if expires >= now:
                break
            del entries[first_key]

    async def claim(self, key: str, ttl_ms: int) -> bool:
        now = self._clock.monotonic()
        self._evict_expired(now)
        expires = self._entries.get(key)
        if expires is not None:
            if expires >= now:
                return False
            del self._entries[key]  # expired, but behind a longer-lived entry
        if len(self._entries) >= self._max_entries:
            raise ReplayCacheFull("the replay cache is full; retry shortly")
        self._entries[key] = now + ttl_ms / 1000
        return True


class RedisReplayStore:
    """Shared store for several API processes: one ``SET key 1 NX PX ttl``."""

    def __init__(self, redis: Redis, prefix: str = "stablegate:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def claim(self, key: str, ttl_ms: int) -> bool:
        created = await self._redis.set(f"{self._prefix}replay:{key}", b"1", nx=True, px=ttl_ms)
        return bool(created)
