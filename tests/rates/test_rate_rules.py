"""Rules: BEpusdt's adjustment forms, validation, and the settings <- gateway <- merchant overlay."""

from __future__ import annotations

from decimal import Decimal

import pytest

from stablegate.config import Settings
from stablegate.errors import InvalidRequest
from stablegate.models import RateRule
from stablegate.rates.rules import (
    AdjustKind,
    Method,
    check_sources,
    effective_rule,
    parse_adjust,
    parse_percent,
    parse_step,
)


@pytest.mark.parametrize(
    ("text", "kind", "value", "applied_to_7"),
    [
        ("7.4", AdjustKind.FIXED, "7.4", "7.4"),
        ("~0.98", AdjustKind.MULTIPLY, "0.98", "6.86"),
        ("+0.3", AdjustKind.ADD, "0.3", "7.3"),
        ("-0.3", AdjustKind.ADD, "-0.3", "6.7"),
    ],
)
def test_the_adjustment_forms(text: str, kind: AdjustKind, value: str, applied_to_7: str) -> None:
    adjust = parse_adjust(text)
    assert adjust.kind == kind
    assert adjust.value == Decimal(value)
    assert adjust.apply(Decimal(7)) == Decimal(applied_to_7)
    assert adjust.text == text


@pytest.mark.parametrize(
    "text", ["", "abc", "0", "~0", "~-1", "*2", "7.4.1", "1e3", "NaN", "Infinity", "+", "~", " "]
)
def test_anything_else_is_an_invalid_rule(text: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_adjust(text)
    assert caught.value.code == "invalid_rate_rule"


def test_percent_step_and_sources_are_checked() -> None:
    assert parse_percent("1.5", "spreadPct", high=Decimal(50)) == Decimal("1.5")
    for bad in ("-1", "50", "1e2", "NaN", "abc"):
        with pytest.raises(InvalidRequest):
            parse_percent(bad, "spreadPct", high=Decimal(50))
    with pytest.raises(InvalidRequest):
        parse_percent("0", "bandPct", high=Decimal(50), allow_zero=False)
    assert parse_step("0.01") == Decimal("0.01")
    for bad in ("0", "2", "-0.01", "x"):
        with pytest.raises(InvalidRequest):
            parse_step(bad)
    assert check_sources(["okx", "kraken"]) == ("okx", "kraken")
    for bad in (["okx", "okx"], ["ecb"], ["nope"]):
        with pytest.raises(InvalidRequest):
            check_sources(bad)


def _row(scope: str, **fields: object) -> RateRule:
    row = RateRule(scope=scope, symbol="USDT", currency="CNY", updated_by="t")
    row.updated_at_ms = int(fields.pop("at", 1))  # type: ignore[call-overload]
    for name in ("sources", "method", "spread_pct", "adjust", "max_age_s", "band_pct", "step"):
        setattr(row, name, fields.get(name))
    return row


def test_a_null_field_inherits_field_by_field() -> None:
    settings = Settings(rate_sources=["kraken", "okx"], rate_spread_pct=Decimal("0.5"))
    plain = effective_rule(settings, "USDT", "CNY")
    assert plain.sources == ("kraken", "okx")
    assert plain.method == Method.MEDIAN
    assert plain.spread_pct == Decimal("0.5")
    assert plain.adjust is None and plain.step is None and plain.changed_at_ms is None

    gateway = _row("", sources=["coinbase"], spread_pct="1", at=10)
    merchant = _row("m1", adjust="~0.98", step="0.01", at=20)
    rule = effective_rule(settings, "USDT", "CNY", gateway, merchant)
    assert rule.sources == ("coinbase",)  # the gateway's
    assert rule.spread_pct == Decimal(1)  # the gateway's
    assert rule.adjust is not None and rule.adjust.text == "~0.98"  # the merchant's
    assert rule.step == Decimal("0.01")
    assert rule.max_age_s == settings.rate_max_age_s  # the settings'
    assert rule.changed_at_ms == 20

    overriding = effective_rule(settings, "USDT", "CNY", gateway, _row("m1", spread_pct="0"))
    assert overriding.spread_pct == 0  # a merchant may set a field back to zero
