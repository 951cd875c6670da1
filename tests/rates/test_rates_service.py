"""Stored quotes and rules, and pricing from them, on SQLite and PostgreSQL: the latest quote
per key, the history, audited rule changes, and a restart with every source down."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select
from tests.support import MerchantKeys

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.errors import InvalidRequest, RateUnavailable
from stablegate.models import AuditEntry, RateHistory
from stablegate.models.rate import GATEWAY_SCOPE
from stablegate.rates import store
from stablegate.rates.quote import Quote
from stablegate.rates.service import Rates

D = Decimal


def quotes(now_ms: int, usdt_usd: str = "1.0002") -> list[Quote]:
    return [
        Quote("ecb", "EUR", "USD", D("1.08"), None, None, now_ms - 3_600_000),
        Quote("ecb", "EUR", "CNY", D("7.83"), None, None, now_ms - 3_600_000),
        Quote("kraken", "USDT", "USD", D(usdt_usd), D("1.0001"), D("1.0003"), now_ms),
        Quote("okx", "USDT", "USD", D("0.9999"), None, None, now_ms),
        Quote("coinbase", "USDT", "CNY", D("7.2500"), None, None, now_ms),
    ]


async def test_quotes_are_stored_latest_per_key_with_a_history(
    gateway: GatewayContext, clock: FakeClock
) -> None:
    now = clock.now_ms()
    async with session_scope(gateway.sessions) as session:
        assert await store.save_quotes(session, quotes(now), now) == 5
    clock.advance(60)
    async with session_scope(gateway.sessions) as session:
        # kraken moved, the rest did not: one history row, and every latest row updated
        later = clock.now_ms()
        assert await store.save_quotes(session, quotes(later, "1.0004"), later) == 1
    async with session_scope(gateway.sessions) as session:
        latest = {(q.source, q.base, q.quote): q for q in await store.latest_quotes(session)}
        assert latest["kraken", "USDT", "USD"].mid == D("1.0004")
        assert latest["kraken", "USDT", "USD"].bid == D("1.0001")
        assert latest["okx", "USDT", "USD"].time_ms == later
        kraken = await store.history(session, "USDT", "USD", 0, later)
        assert [(h.source, h.mid) for h in kraken if h.source == "kraken"] == [
            ("kraken", "1.0002"),
            ("kraken", "1.0004"),
        ]
        # an answer older than what is stored never replaces it
        old = [Quote("okx", "USDT", "USD", D("0.5"), None, None, now - 1)]
        assert await store.save_quotes(session, old, later) == 0
    async with session_scope(gateway.sessions) as session:
        okx = [q for q in await store.latest_quotes(session) if q.source == "okx"]
        assert okx[0].mid == D("0.9999")
        assert await store.prune_history(session, later) == 5  # the first fetch's rows
        assert len((await session.scalars(select(RateHistory))).all()) == 1


async def test_rule_changes_are_audited_and_an_emptied_rule_is_removed(
    gateway: GatewayContext, clock: FakeClock
) -> None:
    async with session_scope(gateway.sessions) as session:
        row = await store.set_rule(
            session, clock, scope=GATEWAY_SCOPE, symbol="USDT", currency="CNY",
            changes={"adjust": "7.2", "spread_pct": "1"}, actor="ops",
        )  # fmt: skip
        assert row is not None and row.adjust == "7.2" and row.spread_pct == "1"
    async with session_scope(gateway.sessions) as session:
        row = await store.set_rule(
            session, clock, scope=GATEWAY_SCOPE, symbol="USDT", currency="CNY",
            changes={"adjust": None}, actor="ops",
        )  # fmt: skip
        assert row is not None and row.adjust is None and row.spread_pct == "1"
        assert await store.set_rule(
            session, clock, scope=GATEWAY_SCOPE, symbol="USDT", currency="CNY",
            changes={"spread_pct": None}, actor="ops",
        ) is None  # fmt: skip
        assert await store.rules_of(session, GATEWAY_SCOPE) == []
        assert not await store.delete_rule(
            session, clock, scope=GATEWAY_SCOPE, symbol="USDT", currency="CNY", actor="ops"
        )
        audit = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
        assert [a.action for a in audit] == ["rates.set_rule"] * 3
        assert audit[0].subject == "gateway:USDT/CNY"
        assert audit[0].details == {
            "before": None,
            "after": {
                "sources": None, "method": None, "spread_pct": "1", "adjust": "7.2",
                "max_age_s": None, "band_pct": None, "step": None,
            },
        }  # fmt: skip
    with pytest.raises(ValueError, match="not rule fields"):
        async with session_scope(gateway.sessions) as session:
            await store.set_rule(
                session, clock, scope="", symbol="USDT", currency="CNY",
                changes={"rate": "1"}, actor="ops",
            )  # fmt: skip


async def test_72_cny_at_a_fixed_7_2_is_10_usdt_and_a_merchant_rule_overrides(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    async with session_scope(gateway.sessions) as session:
        await store.set_rule(
            session, clock, scope=GATEWAY_SCOPE, symbol="USDT", currency="CNY",
            changes={"adjust": "7.2"}, actor="ops",
        )  # fmt: skip
        price = await gateway.rates.price_order(
            session, merchant.merchant_id, "USDT", 6, "CNY", D("72")
        )
        assert (price.units, price.rate, price.rate_source) == (10_000_000, D("7.2"), "fixed")
        assert price.rate_time_ms == clock.now_ms()
        await store.set_rule(
            session, clock, scope=merchant.merchant_id, symbol="USDT", currency="CNY",
            changes={"adjust": "7.5", "step": "0.01"}, actor="merchant",
        )  # fmt: skip
        mine = await gateway.rates.price_order(
            session, merchant.merchant_id, "USDT", 6, "CNY", D("100")
        )
        # 100 / 7.5 = 13.333…, rounded up to the step: 13.34 USDT
        assert (mine.units, mine.rate) == (13_340_000, D("7.5"))
        gateways = await gateway.rates.pair_rate(session, None, "USDT", "CNY")
        assert gateways.rate == D("7.2")  # the merchant's rule is its own


async def test_unsupported_pairs_are_400(gateway: GatewayContext) -> None:
    async with session_scope(gateway.sessions) as session:
        for symbol, currency in (("USDT", "XXX"), ("USDT", "usd"), ("WETH", "USD")):
            with pytest.raises(InvalidRequest) as caught:
                await gateway.rates.pair_rate(session, None, symbol, currency)
            assert caught.value.code == "unsupported_currency"


async def test_a_restart_with_every_source_down_prices_from_storage_until_too_old(
    gateway: GatewayContext, clock: FakeClock
) -> None:
    now = clock.now_ms()
    async with session_scope(gateway.sessions) as session:
        await store.save_quotes(session, quotes(now), now)
    # A new process: nothing in memory, no fetcher (every source is down), the same database.
    restarted = Rates(gateway.sessions, clock, gateway.settings, cache_seconds=0)
    clock.advance(200)
    async with session_scope(gateway.sessions) as session:
        rate = await restarted.pair_rate(session, None, "USDT", "USD")
        assert rate.rate == D("1.00005")  # median of kraken 1.0002 and okx 0.9999
        assert rate.time_ms == now
    clock.advance(101)  # now 301 s old: past the 300 s maximum age
    async with session_scope(gateway.sessions) as session:
        with pytest.raises(RateUnavailable, match="stale"):
            await restarted.pair_rate(session, None, "USDT", "USD")


async def test_public_rates_list_every_pair_with_a_rate(
    gateway: GatewayContext, clock: FakeClock
) -> None:
    now = clock.now_ms()
    async with session_scope(gateway.sessions) as session:
        await store.save_quotes(session, quotes(now), now)
        found = {(r.symbol, r.currency) for r in await gateway.rates.public_rates(session)}
    # USDT has USD prices, the ECB crosses to EUR and CNY; no USDC or DAI quote is stored.
    assert found == {("USDT", "USD"), ("USDT", "EUR"), ("USDT", "CNY")}
