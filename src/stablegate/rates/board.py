"""The public rate board: the gateway's rates as ``GET /api/v1/public/rates`` serves them.

Each answer (the whole list, or one pair's rate or refusal) is kept for ``ttl_s`` seconds in
this process, so a flood of requests computes it once per period; the period is also the
``max-age`` the endpoint tells HTTP caches. Only pairs :func:`~stablegate.rates.pairs.
require_pair` accepts are ever looked up, so the cache holds at most one entry per priced pair.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.chain.registry import ChainRegistry
from stablegate.clock import Clock
from stablegate.db.engine import read_scope
from stablegate.errors import RateUnavailable
from stablegate.rates.pairs import priced_symbols
from stablegate.rates.schemas import RateList, RateOut
from stablegate.rates.service import Rates
from stablegate.rates.view import rate_out

# Short: a rate is fetched every minute or so, and a refused pair should recover quickly.
PUBLIC_TTL_S = 5

_Key = tuple[str, str] | None  # a pair, or None for the whole list


class RateBoard:
    def __init__(
        self,
        rates: Rates,
        sessions: async_sessionmaker[AsyncSession],
        registry: ChainRegistry,
        clock: Clock,
        ttl_s: int = PUBLIC_TTL_S,
    ) -> None:
        self.rates, self.sessions, self.registry, self.clock = rates, sessions, registry, clock
        self.ttl_s = ttl_s
        # key -> (expires at, on the monotonic clock; the answer, or a refusal's message)
        self._answers: dict[_Key, tuple[float, RateList | RateOut | str]] = {}
        self._lock = asyncio.Lock()

    async def all_rates(self) -> RateList:
        """Every priced pair that has a usable rate under the gateway's rules."""
        answer = await self._answer(None, self._compute_all)
        assert isinstance(answer, RateList)
        return answer

    async def pair(self, symbol: str, currency: str) -> RateOut:
        """One pair under the gateway's rules (``symbol`` and ``currency`` already checked);
        503 ``rate_unavailable`` when it has no rate."""
        answer = await self._answer(
            (symbol, currency), lambda: self._compute_pair(symbol, currency)
        )
        assert isinstance(answer, RateOut)
        return answer

    async def _answer(
        self, key: _Key, compute: Callable[[], Awaitable[RateList | RateOut]]
    ) -> RateList | RateOut:
        found = self._fresh(key)
        if found is None:
            # One computation at a time: requests arriving together wait for the first one's
            # answer instead of computing it again.
            async with self._lock:
                found = self._fresh(key)
                if found is None:
                    try:
                        found = await compute()
                    except RateUnavailable as exc:
                        found = exc.message
                    self._answers[key] = (self.clock.monotonic() + self.ttl_s, found)
        if isinstance(found, str):
            # A new exception each time: re-raising one stored instance would grow its traceback.
            raise RateUnavailable(found)
        return found

    def _fresh(self, key: _Key) -> RateList | RateOut | str | None:
        entry = self._answers.get(key)
        if entry is None or entry[0] <= self.clock.monotonic():
            return None
        return entry[1]

    async def _compute_all(self) -> RateList:
        async with read_scope(self.sessions) as session:
            pairs = await self.rates.public_rates(session, priced_symbols(self.registry))
        return RateList(rates=[rate_out(p) for p in pairs])

    async def _compute_pair(self, symbol: str, currency: str) -> RateOut:
        async with read_scope(self.sessions) as session:
            return rate_out(await self.rates.pair_rate(session, None, symbol, currency))
