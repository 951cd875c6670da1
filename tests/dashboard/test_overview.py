"""The Overview's figures (stablegate/dashboard/overview.py): credited payments summed exactly
per token and chain, by UTC day of their block time, across day boundaries; only the merchant's
own, only credited ones; open and exceptional orders; the chart's bars."""

from __future__ import annotations

from sqlalchemy import update
from tests.dashboard.hooks_support import new_order, pay
from tests.support import NOW_MS, PAYOUT, MerchantKeys

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.dashboard.overview import (
    DAY_MS,
    PLOT_BOTTOM,
    PLOT_TOP,
    WINDOW_DAYS,
    merchant_overview,
)
from stablegate.db.engine import session_scope
from stablegate.merchants.service import create_merchant
from stablegate.models import Order
from stablegate.models.order import OrderStatus
from stablegate.models.payment import PaymentKind, PaymentStatus

TODAY = NOW_MS  # 2026-01-01T00:00:00Z, a UTC midnight
USDT = 10**6
BIG = 10**24  # a million USDT18: past 2^63 base units, where a float or SQLite's SUM fails


async def test_received_is_summed_exactly_per_token_and_utc_day(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    mine = merchant.merchant_id
    async with session_scope(gateway.sessions) as session:
        other = await create_merchant(
            session,
            gateway.secret_box,
            clock,
            name="Other Shop",
            payout_address=PAYOUT,
            chain_ids=[31337],
        )
    usdt = await new_order(gateway, clock, mine)
    usdt18 = await new_order(gateway, clock, mine, symbol="USDT18")
    theirs = await new_order(gateway, clock, other.merchant_id)
    clock.advance(10 * 3600)  # 2026-01-01 10:00 UTC

    await pay(gateway, usdt, 3 * USDT // 2, at_ms=TODAY)  # today's first millisecond
    await pay(gateway, usdt, 2 * USDT, at_ms=TODAY - 1)  # yesterday's last
    await pay(gateway, usdt, 3 * USDT, at_ms=TODAY - 6 * DAY_MS)  # the 7 days' first
    await pay(gateway, usdt, 4 * USDT, at_ms=TODAY - 6 * DAY_MS - 1)  # before the 7 days
    await pay(gateway, usdt, 5 * USDT, at_ms=TODAY - 29 * DAY_MS)  # the 30 days' first
    await pay(gateway, usdt, 6 * USDT, at_ms=TODAY - 29 * DAY_MS - 1)  # before them
    await pay(gateway, usdt, 7 * USDT, at_ms=TODAY + DAY_MS)  # a block time after today
    # Not credited: seen but not final, orphaned, dust, another token: none counts.
    await pay(gateway, usdt, 100 * USDT, at_ms=TODAY, credited=False, status=PaymentStatus.SEEN)
    await pay(gateway, usdt, 100 * USDT, at_ms=TODAY, credited=False, status=PaymentStatus.ORPHANED)
    await pay(gateway, usdt, 1, at_ms=TODAY, credited=False, kind=PaymentKind.BELOW_MIN)
    await pay(gateway, usdt, 100 * USDT, at_ms=TODAY, credited=False, kind=PaymentKind.WRONG_TOKEN)
    await pay(gateway, theirs, 100 * USDT, at_ms=TODAY)  # another merchant's
    await pay(gateway, usdt18, BIG + 1, at_ms=TODAY + 3600_000)
    await pay(gateway, usdt18, BIG, at_ms=TODAY + 2 * 3600_000)

    async with session_scope(gateway.sessions) as session:
        overview = await merchant_overview(
            session, gateway.registry, merchant_id=mine, now_ms=clock.now_ms()
        )
    assert overview.first_day_ms == TODAY - 29 * DAY_MS
    by_symbol = {volume.symbol: volume for volume in overview.volumes}
    assert list(by_symbol) == ["USDT", "USDT18"]
    usdt_volume = by_symbol["USDT"]
    assert usdt_volume.chain_id == 31337 and usdt_volume.decimals == 6
    assert len(usdt_volume.daily) == WINDOW_DAYS
    assert (usdt_volume.today, usdt_volume.week, usdt_volume.month) == (
        3 * USDT // 2,
        13 * USDT // 2,
        31 * USDT // 2,
    )
    assert usdt_volume.daily[0] == 5 * USDT and usdt_volume.daily[-2] == 2 * USDT
    assert usdt_volume.shown(usdt_volume.month) == "15.5"
    big = by_symbol["USDT18"]
    assert big.today == big.month == 2 * BIG + 1
    assert big.shown(big.today) == "2000000.000000000000000001"

    async with session_scope(gateway.sessions) as session:
        theirs_overview = await merchant_overview(
            session, gateway.registry, merchant_id=other.merchant_id, now_ms=clock.now_ms()
        )
    [their_volume] = theirs_overview.volumes
    assert their_volume.month == 100 * USDT


async def test_open_and_exceptional_orders_are_counted_for_the_merchant_only(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    mine = merchant.merchant_id
    orders = [await new_order(gateway, clock, mine) for _ in range(5)]
    changes = [
        {"status": OrderStatus.CONFIRMING},
        {"status": OrderStatus.PENDING, "exceptions": ["wrong_token"]},
        {"status": OrderStatus.COMPLETED, "exceptions": ["overpaid", "paid_late"]},
        {"status": OrderStatus.EXPIRED},
    ]
    async with session_scope(gateway.sessions) as session:
        for order, values in zip(orders[1:], changes, strict=True):
            await session.execute(update(Order).where(Order.id == order.id).values(**values))
        overview = await merchant_overview(
            session, gateway.registry, merchant_id=mine, now_ms=clock.now_ms()
        )
        nobody = await merchant_overview(
            session, gateway.registry, merchant_id="mch_nobody", now_ms=clock.now_ms()
        )
    assert (overview.pending, overview.confirming, overview.exceptional) == (2, 1, 2)
    assert overview.by_exception == {"overpaid": 1, "paid_late": 1, "wrong_token": 1}
    assert overview.volumes == []
    assert (nobody.pending, nobody.confirming, nobody.exceptional) == (0, 0, 0)
    assert nobody.by_exception == {}


async def test_bars_are_in_proportion_to_the_busiest_day(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    order = await new_order(gateway, clock, merchant.merchant_id)
    await pay(gateway, order, 1000 * USDT, at_ms=TODAY)
    await pay(gateway, order, 500 * USDT, at_ms=TODAY - DAY_MS)
    await pay(gateway, order, 1, at_ms=TODAY - 2 * DAY_MS)  # tiny, still visible
    async with session_scope(gateway.sessions) as session:
        overview = await merchant_overview(
            session, gateway.registry, merchant_id=merchant.merchant_id, now_ms=clock.now_ms()
        )
    [volume] = overview.volumes
    bars = volume.bars(overview.first_day_ms)
    span = PLOT_BOTTOM - PLOT_TOP
    assert len(bars) == WINDOW_DAYS
    assert [bar.height for bar in bars[-3:]] == [1, span // 2, span]
    assert all(bar.height == 0 for bar in bars[:-3])
    assert all(bar.y + bar.height == PLOT_BOTTOM for bar in bars)
    assert bars[-1].day_ms == TODAY and bars[-1].amount == "1000"
    assert [bar.x for bar in bars] == sorted({bar.x for bar in bars})  # left to right, apart
