"""One pair's rate from the stored quotes and its rule: pure, no I/O (docs/DESIGN.md §3).

A source's price for (token, currency) is its direct quote, or its token/USD quote times the ECB
cross USD→currency. Stale and insane prices are dropped; the rest are combined (median or
first), refused when they disagree beyond the band, then adjusted and lowered by the spread.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, localcontext

from stablegate.errors import RateUnavailable
from stablegate.rates.quote import Quote
from stablegate.rates.rules import REFERENCE_SOURCE, AdjustKind, Method, PairRule

_PRECISION = 60
# A rate is kept to this many significant digits, rounded down (fewer fiat per token: never
# fewer tokens for the merchant), so the rate an order stores is exactly the one it was priced
# at, and fits its column.
RATE_DIGITS = 12
ONE = Decimal(1)
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Limits:
    """The gateway-wide bounds (settings), the same for every rule."""

    fiat_max_age_s: int
    sanity_pct: Decimal


@dataclass(frozen=True)
class SourcePrice:
    """What one source says the pair costs (fiat per token), and the time of its oldest input."""

    source: str
    rate: Decimal
    time_ms: int
    bid: Decimal | None = None
    ask: Decimal | None = None


@dataclass(frozen=True)
class PairRate:
    symbol: str
    currency: str
    rate: Decimal  # fiat per token, after the rule's adjustment and spread
    bid: Decimal | None  # the used sources' median bid/ask (market, before adjustments)
    ask: Decimal | None
    sources: tuple[SourcePrice, ...]  # the prices combined; empty for a fixed rate
    time_ms: int  # the oldest input used (a fixed rate: when the rule was set)
    label: str  # how: "median(coinbase,kraken,okx) spread 1%", "fixed", ...


def significant(value: Decimal, digits: int = RATE_DIGITS) -> Decimal:
    """``value`` cut to ``digits`` significant digits (rounded down)."""
    with localcontext() as context:
        context.prec = digits
        context.rounding = ROUND_DOWN
        return +value


def median(values: Sequence[Decimal]) -> Decimal:
    """The middle value; of an even count, the mean of the middle two (exact Decimal)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    with localcontext() as context:
        context.prec = _PRECISION
        return (ordered[middle - 1] + ordered[middle]) / 2


class QuoteBook:
    """The stored quotes, looked up by (source, base, quote)."""

    def __init__(self, quotes: Iterable[Quote]) -> None:
        self._quotes = {(q.source, q.base, q.quote): q for q in quotes}

    def __len__(self) -> int:
        return len(self._quotes)

    def get(self, source: str, base: str, quote: str) -> Quote | None:
        return self._quotes.get((source, base, quote))

    def quotes(self) -> list[Quote]:
        return list(self._quotes.values())

    def fresh(
        self, source: str, base: str, quote: str, now_ms: int, max_age_s: int
    ) -> Quote | None:
        found = self.get(source, base, quote)
        if found is None or found.mid <= 0 or now_ms - found.time_ms > max_age_s * 1000:
            return None
        return found

    def usd_cross(self, currency: str, now_ms: int, limits: Limits) -> tuple[Decimal, int] | None:
        """Units of ``currency`` per USD from the ECB's EUR-based rates, with their time."""
        if currency == "USD":
            return ONE, now_ms
        eur_usd = self.fresh(REFERENCE_SOURCE, "EUR", "USD", now_ms, limits.fiat_max_age_s)
        if eur_usd is None:
            return None
        with localcontext() as context:
            context.prec = _PRECISION
            if currency == "EUR":
                return ONE / eur_usd.mid, eur_usd.time_ms
            eur_x = self.fresh(REFERENCE_SOURCE, "EUR", currency, now_ms, limits.fiat_max_age_s)
            if eur_x is None:
                return None
            return eur_x.mid / eur_usd.mid, min(eur_x.time_ms, eur_usd.time_ms)


def source_price(
    book: QuoteBook, source: str, rule: PairRule, now_ms: int, limits: Limits
) -> SourcePrice | None:
    """The source's fresh price of the pair, direct or through the ECB cross; None if it has
    none, or if the price implies a USD value further from 1 than the sanity bound."""
    cross = book.usd_cross(rule.currency, now_ms, limits)
    direct = book.fresh(source, rule.symbol, rule.currency, now_ms, rule.max_age_s)
    with localcontext() as context:
        context.prec = _PRECISION
        if direct is not None:
            found = SourcePrice(source, direct.mid, direct.time_ms, direct.bid, direct.ask)
        else:
            in_usd = book.fresh(source, rule.symbol, "USD", now_ms, rule.max_age_s)
            if in_usd is None or cross is None:
                return None
            factor, cross_time = cross
            found = SourcePrice(
                source,
                in_usd.mid * factor,
                min(in_usd.time_ms, cross_time),
                in_usd.bid * factor if in_usd.bid is not None else None,
                in_usd.ask * factor if in_usd.ask is not None else None,
            )
        # Without a fresh cross a direct quote cannot be checked against USD; the band between
        # sources still guards it.
        if cross is not None:
            implied_usd = found.rate / cross[0]
            if abs(implied_usd - ONE) * HUNDRED > limits.sanity_pct:
                return None
    return found


def price_pair(book: QuoteBook, rule: PairRule, now_ms: int, limits: Limits) -> PairRate:
    """The pair's rate under ``rule``; :class:`RateUnavailable` (503) when there is none to
    trust. Never a guess: no source, stale, insane or disagreeing prices all refuse."""
    pair = f"{rule.symbol}/{rule.currency}"
    if rule.adjust is not None and rule.adjust.kind == AdjustKind.FIXED:
        return _finish(rule, rule.adjust.value, (), None, None, rule.changed_at_ms or 0, "fixed")
    if not rule.sources:
        raise RateUnavailable(f"no rate source is configured for {pair}")
    prices = [
        price
        for name in rule.sources
        if (price := source_price(book, name, rule, now_ms, limits)) is not None
    ]
    if not prices:
        raise RateUnavailable(
            f"no fresh rate for {pair}: every source ({', '.join(rule.sources)}) is stale, "
            "down or out of bounds; try again later"
        )
    if rule.method == Method.FIRST:
        used = prices[:1]
        rate = used[0].rate
    else:
        used = prices
        rate = median([p.rate for p in used])
        low, high = min(p.rate for p in used), max(p.rate for p in used)
        with localcontext() as context:
            context.prec = _PRECISION
            spread_between = (high - low) / rate * HUNDRED
        if spread_between > rule.band_pct:
            raise RateUnavailable(
                f"rate sources disagree on {pair} by {spread_between:.4f}% (more than "
                f"{rule.band_pct}%): {', '.join(f'{p.source} {p.rate:.6f}' for p in used)}"
            )
    bids = [p.bid for p in used if p.bid is not None]
    asks = [p.ask for p in used if p.ask is not None]
    label = f"{rule.method}({','.join(p.source for p in used)})"
    return _finish(
        rule,
        rate,
        tuple(used),
        median(bids) if bids else None,
        median(asks) if asks else None,
        min(p.time_ms for p in used),
        label,
    )


def _finish(
    rule: PairRule,
    market: Decimal,
    used: tuple[SourcePrice, ...],
    bid: Decimal | None,
    ask: Decimal | None,
    time_ms: int,
    label: str,
) -> PairRate:
    with localcontext() as context:
        context.prec = _PRECISION
        rate = market
        if rule.adjust is not None and rule.adjust.kind != AdjustKind.FIXED:
            rate = rule.adjust.apply(rate)
            label += f" {rule.adjust.text}"
        if rule.spread_pct:
            rate = rate * (ONE - rule.spread_pct / HUNDRED)
            label += f" spread {format(rule.spread_pct.normalize(), 'f')}%"
    if rate <= 0:
        raise RateUnavailable(
            f"the rule for {rule.symbol}/{rule.currency} makes the rate {rate}, not positive"
        )
    rate = significant(rate)
    return PairRate(rule.symbol, rule.currency, rate, bid, ask, used, time_ms, label)


def peg_deviation_pct(
    book: QuoteBook, symbol: str, sources: Sequence[str], now_ms: int, max_age_s: int
) -> Decimal | None:
    """How far (percent, signed) the median market USD price of ``symbol`` is from 1."""
    prices = [
        quote.mid
        for name in sources
        if (quote := book.fresh(name, symbol, "USD", now_ms, max_age_s)) is not None
    ]
    if not prices:
        return None
    with localcontext() as context:
        context.prec = _PRECISION
        return (median(prices) - ONE) * HUNDRED
