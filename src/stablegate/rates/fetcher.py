"""The background rate fetcher: one per gateway, under the lease ``rates``.

Every ``RATE_REFRESH_S`` the lease holder asks every source at once (one HTTP client, each
source bounded by ``RATE_FETCH_TIMEOUT_S``) and stores every quote it got in one transaction
fenced by the lease. A failing source is logged when it starts failing and when it recovers,
never on every repeat, and never stops the others: pricing keeps reading what was stored.
After storing, each stablecoin's market USD price is checked against its peg; leaving or
regaining it is an ``operator_alert`` (``stablecoin_off_peg``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.clock import Clock
from stablegate.config import Settings
from stablegate.leases import Fenced, LeaseGrant, acquire_or_renew, fenced, release
from stablegate.rates import store
from stablegate.rates.currencies import STABLECOINS
from stablegate.rates.engine import QuoteBook, peg_deviation_pct
from stablegate.rates.quote import Quote, SourceError, SourceFault
from stablegate.rates.sources import RateSource
from stablegate.watchdog import StepStalled, Watchdog

log = structlog.get_logger("stablegate.rates")

LEASE_NAME = "rates"
ClientFactory = Callable[[float], httpx.AsyncClient]


def default_client(timeout_s: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), follow_redirects=False)


@dataclass
class FetchReport:
    """One round: how many quotes were stored, which sources failed and why."""

    standby: bool = False  # another process holds the lease: nothing fetched
    quotes: int = 0
    history_rows: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # source -> "fault: message"
    fenced: bool = False  # lost the lease mid-round: nothing stored


class RateFetcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: Settings,
        sources: Sequence[RateSource],
        *,
        client_factory: ClientFactory = default_client,
        holder: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.settings = settings
        self.sources = list(sources)
        self._client_factory = client_factory
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        refresh, timeout = settings.rate_refresh_s, settings.rate_fetch_timeout_s
        # Long enough to outlive a round (every source's bound) plus two missed periods.
        self.ttl_ms = int((3 * refresh + timeout) * 1000)
        self.grant: LeaseGrant | None = None
        self._failing: dict[str, str] = {}  # source -> its fault, while it keeps failing
        self._off_peg: set[str] = set()

    async def fetch_once(self, client: httpx.AsyncClient | None = None) -> FetchReport:
        """One round under the lease (standby when another process holds it)."""
        grant = await acquire_or_renew(
            self.sessions, self.clock, name=LEASE_NAME, holder=self.holder, ttl_ms=self.ttl_ms
        )
        self.grant = grant
        if grant is None:
            return FetchReport(standby=True)
        if client is not None:
            return await self._round(grant, client)
        async with self._client_factory(self.settings.rate_fetch_timeout_s) as own:
            return await self._round(grant, own)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Fetch every ``RATE_REFRESH_S`` until ``stop``; a failed round is logged and the
        next one comes on time. The lease is handed over at a clean stop."""
        names = [source.name for source in self.sources]
        log.info("rate_fetcher_started", holder=self.holder, sources=names)
        watchdog = Watchdog("rates", self.settings.step_timeout_s, stop=stop)
        standby = False
        async with self._client_factory(self.settings.rate_fetch_timeout_s) as client:
            try:
                while not stop.is_set():
                    try:
                        report = await watchdog.run(lambda: self.fetch_once(client), "fetch")
                        if report.standby != standby:
                            standby = report.standby
                            log.info("rate_fetcher_standby" if standby else "rate_fetcher_active")
                    except StepStalled:
                        pass  # logged by the watchdog; the lease runs out if we stay stuck
                    except Exception as exc:  # the database may be away for a while
                        log.warning("rate_fetch_failed", error=f"{type(exc).__name__}: {exc}")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.settings.rate_refresh_s)
            finally:
                await self.release()
                log.info("rate_fetcher_stopped", holder=self.holder)

    async def release(self) -> None:
        """Hand the lease over now (a clean stop) instead of letting it run out."""
        grant, self.grant = self.grant, None
        if grant is None:
            return
        try:
            await asyncio.wait_for(release(self.sessions, grant), 5.0)
        except Exception as exc:  # it then simply expires
            log.warning("lease_release_failed", lease=LEASE_NAME, error=repr(exc))

    async def _round(self, grant: LeaseGrant, client: httpx.AsyncClient) -> FetchReport:
        results = await asyncio.gather(*(self._ask(source, client) for source in self.sources))
        report = FetchReport()
        quotes: list[Quote] = []
        for source, result in zip(self.sources, results, strict=True):
            if isinstance(result, SourceError):
                report.failed[source.name] = f"{result.fault}: {result.message}"
                self._note_failure(source.name, result)
            else:
                quotes += [quote for quote in result if quote.mid > 0]
                self._note_success(source.name)
        now = self.clock.now_ms()
        keep_ms = self.settings.rate_history_days * 86_400_000
        try:
            async with fenced(self.sessions, grant) as session:
                report.history_rows = await store.save_quotes(session, quotes, now)
                await store.prune_history(session, now - keep_ms)
                book = QuoteBook(await store.latest_quotes(session))
        except Fenced as exc:
            log.warning("rates_fenced", detail=str(exc))
            report.fenced = True
            return report
        report.quotes = len(quotes)
        self._check_pegs(book, now)
        return report

    async def _ask(
        self, source: RateSource, client: httpx.AsyncClient
    ) -> list[Quote] | SourceError:
        """The source's quotes, or the error it failed with (never raised: one source's
        failure, or a bug in its adapter, must not stop the others)."""
        timeout = self.settings.rate_fetch_timeout_s
        try:
            async with asyncio.timeout(timeout):
                return await source.fetch(client)
        except SourceError as exc:
            return exc
        except TimeoutError:
            return SourceError(source.name, SourceFault.TIMEOUT, f"no answer within {timeout:g} s")
        except httpx.HTTPStatusError as exc:
            return SourceError(source.name, SourceFault.HTTP_STATUS, str(exc))
        except httpx.HTTPError as exc:  # connection refused, reset, TLS: no answer
            return SourceError(source.name, SourceFault.TIMEOUT, f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            log.exception("rate_source_crashed", source=source.name)
            return SourceError(source.name, SourceFault.MALFORMED, f"{type(exc).__name__}: {exc}")

    def _note_failure(self, name: str, error: SourceError) -> None:
        if self._failing.get(name) != error.fault:
            log.warning(
                "rate_source_failed", source=name, fault=str(error.fault), error=error.message
            )
        self._failing[name] = error.fault

    def _note_success(self, name: str) -> None:
        if self._failing.pop(name, None) is not None:
            log.info("rate_source_recovered", source=name)

    def _check_pegs(self, book: QuoteBook, now_ms: int) -> None:
        limit = self.settings.rate_peg_alert_pct
        for symbol in STABLECOINS:
            deviation = peg_deviation_pct(
                book, symbol, self.settings.rate_sources, now_ms, self.settings.rate_max_age_s
            )
            if deviation is None:
                continue  # no fresh USD price: nothing to judge (pricing refuses on its own)
            off = abs(deviation) > limit
            if off == (symbol in self._off_peg):
                continue
            usd_price = Decimal(1) + deviation / 100
            fields = {
                "alert": "stablecoin_off_peg",
                "symbol": symbol,
                "usd_price": format(usd_price.normalize(), "f"),
                "deviation_pct": format(deviation.quantize(Decimal("0.0001")), "f"),
                "limit_pct": format(limit.normalize(), "f"),
            }
            if off:
                self._off_peg.add(symbol)
                log.error("operator_alert", **fields)
            else:
                self._off_peg.discard(symbol)
                log.warning("operator_alert_cleared", **fields)
