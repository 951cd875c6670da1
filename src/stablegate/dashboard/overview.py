"""The Overview page's figures: money received per token and chain (today, 7 and 30 days, and
per day for the chart), open and exceptional orders; and the chart itself, as SVG geometry.

Received money is the sum of credited payments (``payments.credited``: final, of the order's
token, at least its ``min_credit``, not orphaned; what counted towards ``paidAmount``), by the
UTC day of their block time, in integer base units. One statement, grouped in SQL and bounded
by the 30-day window, joined to the merchant's orders (payments name no merchant): PostgreSQL
sums the NUMERIC amounts itself; SQLite stores base units as text (its numbers would be floats
past 2^63), so there each group's amounts come back as one ``group_concat`` list that Python
adds up exactly. Never a float.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import BigInteger, ColumnElement, Text, case, cast, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import ChainRegistry
from stablegate.models import Order, Payment
from stablegate.models.order import OrderException, OrderStatus
from stablegate.models.payment import PaymentKind
from stablegate.money import format_amount

DAY_MS = 86_400_000
WINDOW_DAYS = 30
WEEK_DAYS = 7

# The chart's geometry, in SVG user units (the viewBox): one slot per day.
CHART_WIDTH = 600
SLOT = CHART_WIDTH // WINDOW_DAYS
BAR_WIDTH = 14
PLOT_TOP = 8
PLOT_BOTTOM = 128  # the baseline
CHART_HEIGHT = PLOT_BOTTOM + 2  # the dates are HTML under the chart (SVG text would scale)


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    day_ms: int  # the UTC midnight starting the day
    amount: str  # formatted


@dataclass(frozen=True)
class TokenVolume:
    """One token on one chain: base units received per UTC day, oldest first."""

    chain_id: int
    chain_name: str
    symbol: str
    decimals: int
    daily: tuple[int, ...]

    @property
    def today(self) -> int:
        return self.daily[-1]

    @property
    def week(self) -> int:
        return sum(self.daily[-WEEK_DAYS:])

    @property
    def month(self) -> int:
        return sum(self.daily)

    def shown(self, units: int) -> str:
        return format_amount(units, self.decimals)

    @property
    def peak(self) -> int:
        return max(self.daily)

    def bars(self, first_day_ms: int) -> list[Bar]:
        """One bar per day, its height in proportion to the busiest day (integer arithmetic;
        a day with anything at all is at least one unit tall)."""
        span = PLOT_BOTTOM - PLOT_TOP
        peak = self.peak
        bars = []
        for index, units in enumerate(self.daily):
            height = 0 if peak == 0 else max(1 if units else 0, units * span // peak)
            bars.append(
                Bar(
                    x=index * SLOT + (SLOT - BAR_WIDTH) // 2,
                    y=PLOT_BOTTOM - height,
                    width=BAR_WIDTH,
                    height=height,
                    day_ms=first_day_ms + index * DAY_MS,
                    amount=self.shown(units),
                )
            )
        return bars


@dataclass(frozen=True)
class Overview:
    first_day_ms: int  # UTC midnight of the window's first day (29 days before today)
    volumes: list[TokenVolume]
    pending: int  # orders waiting for payment
    confirming: int  # paid, waiting for finality
    exceptional: int  # orders with at least one exception
    by_exception: dict[str, int]  # orders with each exception (the ones with any), enum order
    geometry: dict[str, int] = field(
        default_factory=lambda: {
            "width": CHART_WIDTH,
            "height": CHART_HEIGHT,
            "baseline": PLOT_BOTTOM,
            "slot": SLOT,
        }
    )

    @property
    def days(self) -> list[int]:
        return [self.first_day_ms + i * DAY_MS for i in range(WINDOW_DAYS)]


def window_start_ms(now_ms: int) -> int:
    return (now_ms // DAY_MS - (WINDOW_DAYS - 1)) * DAY_MS


async def daily_received(
    session: AsyncSession, *, merchant_id: str, now_ms: int
) -> dict[tuple[int, str, int], list[int]]:
    """Base units of credited payments per (chain id, symbol, decimals), per UTC day of the
    30-day window ending today (oldest first)."""
    first_day = now_ms // DAY_MS - (WINDOW_DAYS - 1)
    start, end = first_day * DAY_MS, (first_day + WINDOW_DAYS) * DAY_MS
    # Integer division on both backends (SQLAlchemy's ``/`` and ``//`` would add a CAST or a
    # FLOOR), by a literal: a bound divisor would make the SELECT and GROUP BY terms differ on
    # PostgreSQL (two parameters), which it refuses.
    day = Payment.block_time_ms.op("/", return_type=BigInteger)(literal_column(str(DAY_MS)))
    sqlite = session.get_bind().dialect.name == "sqlite"
    total = func.group_concat(Payment.amount) if sqlite else func.sum(Payment.amount)
    statement = (
        select(day, Order.chain_id, Order.symbol, Order.decimals, total)
        .join(Order, Order.id == Payment.order_id)
        .where(
            Order.merchant_id == merchant_id,
            Payment.credited.is_(True),
            Payment.kind == PaymentKind.CREDIT,
            Payment.block_time_ms >= start,
            Payment.block_time_ms < end,
        )
        .group_by(day, Order.chain_id, Order.symbol, Order.decimals)
    )
    found: dict[tuple[int, str, int], list[int]] = {}
    for day_number, chain_id, symbol, decimals, amount in (await session.execute(statement)).all():
        units = sum(int(part) for part in str(amount).split(",")) if sqlite else int(amount)
        daily = found.setdefault((int(chain_id), symbol, int(decimals)), [0] * WINDOW_DAYS)
        daily[int(day_number) - first_day] += units
    return found


async def order_counts(
    session: AsyncSession, *, merchant_id: str
) -> tuple[int, int, int, dict[str, int]]:
    """(pending, confirming, with any exception, per exception) orders of the merchant, in one
    statement. ``exceptions`` is a JSON list of enum values written by json.dumps: ``[]`` when
    there is none, and each value in quotes in its text (the orders list filters the same way)."""
    text = cast(Order.exceptions, Text)

    def count(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    kinds = list(OrderException)
    row = (
        await session.execute(
            select(
                count(Order.status == OrderStatus.PENDING),
                count(Order.status == OrderStatus.CONFIRMING),
                count(text.not_in(["[]", "null"])),
                *(count(text.like(f'%"{kind.value}"%')) for kind in kinds),
            ).where(Order.merchant_id == merchant_id)
        )
    ).one()
    pending, confirming, exceptional, *per_kind = (int(value) for value in row)
    return (
        pending,
        confirming,
        exceptional,
        {kind.value: n for kind, n in zip(kinds, per_kind, strict=True) if n},
    )


async def merchant_overview(
    session: AsyncSession, registry: ChainRegistry, *, merchant_id: str, now_ms: int
) -> Overview:
    received = await daily_received(session, merchant_id=merchant_id, now_ms=now_ms)
    volumes = []
    for (chain_id, symbol, decimals), daily in received.items():
        chain = registry.get(chain_id)
        volumes.append(
            TokenVolume(
                chain_id, chain.name if chain else str(chain_id), symbol, decimals, tuple(daily)
            )
        )
    volumes.sort(key=lambda v: (v.symbol, v.chain_name, v.chain_id))
    pending, confirming, exceptional, by_exception = await order_counts(
        session, merchant_id=merchant_id
    )
    return Overview(
        window_start_ms(now_ms), volumes, pending, confirming, exceptional, by_exception
    )
