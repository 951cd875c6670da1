"""The engine, checked to the last decimal with Decimal: crosses, median, band, staleness,
sanity bounds, adjustments and spread. Every refusal is RateUnavailable, never a price."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal, localcontext

import pytest

from stablegate.config import Settings
from stablegate.errors import RateUnavailable
from stablegate.rates.engine import (
    Limits,
    QuoteBook,
    median,
    peg_deviation_pct,
    price_pair,
    significant,
)
from stablegate.rates.quote import Quote
from stablegate.rates.rules import Method, PairRule, effective_rule, parse_adjust

NOW = 1_800_000_000_000
LIMITS = Limits(fiat_max_age_s=4 * 86400, sanity_pct=Decimal(10))
D = Decimal


def q(source: str, base: str, quote: str, mid: str, *, age_s: int = 5, bid: str | None = None,
      ask: str | None = None) -> Quote:  # fmt: skip
    return Quote(
        source, base, quote, D(mid), D(bid) if bid else None, D(ask) if ask else None,
        NOW - age_s * 1000,
    )  # fmt: skip


ECB = [
    q("ecb", "EUR", "USD", "1.0800", age_s=20 * 3600),
    q("ecb", "EUR", "CNY", "7.8300", age_s=20 * 3600),
    q("ecb", "EUR", "JPY", "162.50", age_s=20 * 3600),
]


def rule(currency: str = "CNY", **changes: object) -> PairRule:
    base = effective_rule(Settings(rate_sources=["kraken", "okx", "coinbase"]), "USDT", currency)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_median_of_three_sources_through_the_ecb_cross_with_a_spread() -> None:
    book = QuoteBook(
        [
            *ECB,
            q("kraken", "USDT", "USD", "0.9998", bid="0.9997", ask="0.9999"),
            q("okx", "USDT", "USD", "1.0003", age_s=30),
            q("coinbase", "USDT", "CNY", "7.2550", age_s=60),  # a direct quote
        ]
    )
    got = price_pair(book, rule(spread_pct=D(1)), NOW, LIMITS)
    with localcontext() as context:
        context.prec = 60
        cross = D("7.8300") / D("1.0800")  # CNY per USD
        kraken, okx, coinbase = D("0.9998") * cross, D("1.0003") * cross, D("7.2550")
        middle = sorted([kraken, okx, coinbase])[1]
        expected = middle * (1 - D(1) / 100)
    assert middle == okx  # 7.24855 < 7.25217 < 7.2550
    assert got.rate == expected
    assert got.label == "median(kraken,okx,coinbase) spread 1%"
    assert [s.source for s in got.sources] == ["kraken", "okx", "coinbase"]
    assert got.time_ms == NOW - 20 * 3600 * 1000  # the oldest input: the ECB file
    assert got.bid is not None and got.bid == D("0.9997") * cross  # only kraken gave a bid


def test_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    assert median([D(1), D(4), D(2), D(3)]) == D("2.5")
    book = QuoteBook(
        [*ECB, q("kraken", "USDT", "USD", "0.9990"), q("okx", "USDT", "USD", "1.0010")]
    )
    got = price_pair(book, rule("USD"), NOW, LIMITS)
    assert got.rate == D("1.0000")  # a market price: USD is never a wired 1
    assert got.label == "median(kraken,okx)"


def test_eur_crosses_through_the_inverse_of_eur_usd() -> None:
    book = QuoteBook([*ECB, q("kraken", "USDT", "USD", "1.0000")])
    # 1 / 1.08 = 0.925925925925…, kept to 12 significant digits, rounded down
    assert price_pair(book, rule("EUR"), NOW, LIMITS).rate == D("0.925925925925")


def test_a_rate_keeps_12_significant_digits_rounded_down() -> None:
    assert significant(D("7.20779576859045504994")) == D("7.20779576859")
    assert significant(D("0.00012345678901299")) == D("0.000123456789012")
    assert significant(D("7.2")) == D("7.2")


def test_first_takes_the_first_source_in_the_rules_order_that_has_a_price() -> None:
    book = QuoteBook(
        [*ECB, q("okx", "USDT", "USD", "1.0001"), q("coinbase", "USDT", "USD", "0.9500")]
    )
    got = price_pair(book, rule("USD", method=Method.FIRST), NOW, LIMITS)
    assert got.rate == D("1.0001") and got.label == "first(okx)"  # kraken has none


def test_stale_quotes_are_ignored_and_all_stale_refuses() -> None:
    book = QuoteBook(
        [*ECB, q("kraken", "USDT", "USD", "1.0", age_s=301), q("okx", "USDT", "USD", "0.999")]
    )
    assert price_pair(book, rule("USD"), NOW, LIMITS).label == "median(okx)"
    stale = QuoteBook([*ECB, q("kraken", "USDT", "USD", "1.0", age_s=301)])
    with pytest.raises(RateUnavailable, match="stale"):
        price_pair(stale, rule("USD"), NOW, LIMITS)


def test_a_stale_ecb_file_stops_crosses_but_not_direct_quotes() -> None:
    old_ecb = [replace(quote, time_ms=NOW - 5 * 86400 * 1000) for quote in ECB]
    book = QuoteBook([*old_ecb, q("kraken", "USDT", "USD", "1.0")])
    with pytest.raises(RateUnavailable):
        price_pair(book, rule("CNY"), NOW, LIMITS)
    direct = QuoteBook([*old_ecb, q("coinbase", "USDT", "CNY", "7.25")])
    assert price_pair(direct, rule("CNY"), NOW, LIMITS).rate == D("7.25")


def test_sources_disagreeing_beyond_the_band_refuse() -> None:
    book = QuoteBook([*ECB, q("kraken", "USDT", "USD", "1.000"), q("okx", "USDT", "USD", "1.025")])
    with pytest.raises(RateUnavailable, match="disagree"):
        price_pair(book, rule("USD", band_pct=D(2)), NOW, LIMITS)
    # (1.025 - 1.000) / 1.0125 = 2.469 %: inside a 2.5 % band
    assert price_pair(book, rule("USD", band_pct=D("2.5")), NOW, LIMITS).rate == D("1.0125")


@pytest.mark.parametrize("mid", ["0.85", "1.2", "0.000001", "1000"])
def test_a_price_outside_the_sanity_bounds_is_dropped(mid: str) -> None:
    book = QuoteBook([*ECB, q("kraken", "USDT", "USD", mid), q("okx", "USDT", "USD", "1.0")])
    got = price_pair(book, rule("USD"), NOW, LIMITS)
    assert got.label == "median(okx)" and got.rate == D("1.0")
    alone = QuoteBook([*ECB, q("kraken", "USDT", "CNY", str(D(mid) * D("7.25")))])
    with pytest.raises(RateUnavailable):
        price_pair(alone, rule("CNY"), NOW, LIMITS)


def test_zero_and_negative_stored_prices_are_never_used() -> None:
    book = QuoteBook([*ECB, q("kraken", "USDT", "USD", "0"), q("okx", "USDT", "USD", "-1")])
    with pytest.raises(RateUnavailable):
        price_pair(book, rule("USD"), NOW, LIMITS)


def test_a_fixed_rate_needs_no_source_and_keeps_its_time() -> None:
    fixed = rule(adjust=parse_adjust("7.2"), sources=(), changed_at_ms=NOW - 999)
    got = price_pair(QuoteBook([]), fixed, NOW, LIMITS)
    assert got.rate == D("7.2") and got.label == "fixed" and got.sources == ()
    assert got.time_ms == NOW - 999
    spread = price_pair(QuoteBook([]), replace(fixed, spread_pct=D(2)), NOW, LIMITS)
    assert spread.rate == D("7.056") and spread.label == "fixed spread 2%"


def test_multiplier_and_addend_apply_before_the_spread() -> None:
    book = QuoteBook([*ECB, q("coinbase", "USDT", "CNY", "7.25")])
    times = price_pair(book, rule(adjust=parse_adjust("~0.98"), spread_pct=D(1)), NOW, LIMITS)
    assert times.rate == D("7.25") * D("0.98") * D("0.99")
    assert times.label == "median(coinbase) ~0.98 spread 1%"
    plus = price_pair(book, rule(adjust=parse_adjust("+0.3")), NOW, LIMITS)
    assert plus.rate == D("7.55") and plus.label == "median(coinbase) +0.3"
    with pytest.raises(RateUnavailable, match="not positive"):
        price_pair(book, rule(adjust=parse_adjust("-8")), NOW, LIMITS)


def test_no_sources_configured_refuses() -> None:
    with pytest.raises(RateUnavailable, match="no rate source"):
        price_pair(QuoteBook(ECB), rule(sources=()), NOW, LIMITS)


def test_peg_deviation_is_the_median_usd_price_off_one() -> None:
    book = QuoteBook(
        [
            q("kraken", "USDC", "USD", "0.97"),
            q("okx", "USDC", "USD", "0.96"),
            q("coinbase", "USDC", "USD", "0.98", age_s=999),
        ]
    )
    assert peg_deviation_pct(book, "USDC", ["kraken", "okx", "coinbase"], NOW, 300) == D("-3.5")
    assert peg_deviation_pct(book, "DAI", ["kraken"], NOW, 300) is None
