"""The shared reading rules of every source: prices, times, JSON, base URLs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from structlog.testing import capture_logs

from stablegate.rates.quote import SourceError, SourceFault
from stablegate.rates.sources.answers import (
    base_url,
    book_quote,
    inverse,
    parse_json,
    read_price,
    read_time_ms,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7.2134", Decimal("7.2134")),
        ("0.99990000", Decimal("0.9999")),
        ("17487.21", Decimal("17487.21")),
        (Decimal("1.0002"), Decimal("1.0002")),
        (151, Decimal(151)),
    ],
)
def test_a_valid_price(value: object, expected: Decimal) -> None:
    assert read_price("test", value, "USDT/X") == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0", "zero or negative"),
        ("0.00000", "zero or negative"),
        (0, "zero or negative"),
        (Decimal("-1.2"), "zero or negative"),
        ("-1.2", "not a number"),  # a sign is not plain decimal text
        ("1e3", "not a number"),
        (" 1.0", "not a number"),
        ("1_000", "not a number"),
        ("", "not a number"),
        ("abc", "not a number"),
        (None, "not a number"),
        (True, "not a number"),
        (1.5, "not a number"),  # a float never gets in, even if a caller made one
        ([1], "not a number"),
        (Decimal("NaN"), "not finite"),
        (Decimal("Infinity"), "not finite"),
        ("0.0001", "out of bounds"),
        ("100000000", "out of bounds"),
    ],
)
def test_an_invalid_price_is_dropped_and_logged(value: object, reason: str) -> None:
    with capture_logs() as logs:
        assert read_price("test", value, "USDT/X") is None
    assert logs == [
        {
            "event": "rate_price_dropped",
            "log_level": "warning",
            "source": "test",
            "pair": "USDT/X",
            "reason": reason,
            "value": repr(value)[:40],
        }
    ]


def test_json_numbers_are_decimals() -> None:
    parsed = parse_json("test", b'{"a": 0.1, "b": 1e-2, "c": 7, "d": NaN, "e": -Infinity}')
    assert parsed == {
        "a": Decimal("0.1"),
        "b": Decimal("0.01"),
        "c": 7,
        "d": parsed["d"],
        "e": Decimal("-Infinity"),
    }
    assert isinstance(parsed["d"], Decimal) and parsed["d"].is_nan()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"\xff\xfe{",
        b'{"a": "' + b"[" * 2000,  # an unterminated string
        # Nested deeper than the C parser can take once py_ecc has raised the recursion limit
        # (it does, at import): refused before parsing, never a crash.
        b"[" * 200_000 + b"]" * 200_000,
        b'[{"a": ' * 50_000 + b"1" + b"}]" * 50_000,
    ],
)
def test_a_body_that_is_not_json_is_malformed(body: bytes) -> None:
    with pytest.raises(SourceError) as caught:
        parse_json("test", body)
    assert caught.value.fault == SourceFault.MALFORMED


def test_many_brackets_are_fine_when_shallow() -> None:
    many = b"[" + b",".join([b'{"a": "[[{{", "b": [1]}'] * 2000) + b"]"
    parsed = parse_json("test", many)
    assert len(parsed) == 2000
    assert parsed[0] == {"a": "[[{{", "b": [1]}


def test_a_time_is_never_later_than_its_arrival() -> None:
    assert read_time_ms("test", "1700000000000", unit_ms=1, received_ms=1_700_000_005_000) == (
        1_700_000_000_000
    )
    assert read_time_ms("test", 1_700_000_000, unit_ms=1000, received_ms=1_700_000_005_000) == (
        1_700_000_000_000
    )
    assert read_time_ms("test", "1700000009000", unit_ms=1, received_ms=1_700_000_005_000) == (
        1_700_000_005_000
    )


@pytest.mark.parametrize("value", ["", "-5", "1.5", "0", 0, -1, True, None, Decimal(5), "1" * 17])
def test_an_impossible_time_is_malformed(value: object) -> None:
    with pytest.raises(SourceError) as caught:
        read_time_ms("test", value, unit_ms=1, received_ms=1)
    assert caught.value.fault == SourceFault.MALFORMED


def test_the_inverse_has_twelve_significant_digits() -> None:
    assert inverse(Decimal("1.0850")) == Decimal("0.921658986175")
    assert inverse(Decimal("0.0291")) == Decimal("34.3642611684")
    assert inverse(Decimal("4")) == Decimal("0.25")


def test_a_book_quote_is_the_mean_of_bid_and_ask() -> None:
    quote = book_quote("test", "USDT", "USD", "0.9997", "0.9999", 5)
    assert quote is not None
    assert (quote.mid, quote.bid, quote.ask, quote.time_ms) == (
        Decimal("0.9998"),
        Decimal("0.9997"),
        Decimal("0.9999"),
        5,
    )
    assert book_quote("test", "USDT", "USD", "1.0001", "0.9999", 5) is None  # crossed


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.kraken.com", "https://api.kraken.com"),
        ("https://api.kraken.com/", "https://api.kraken.com"),
        ("http://127.0.0.1:8080/kraken/", "http://127.0.0.1:8080/kraken"),
    ],
)
def test_a_base_url(url: str, expected: str) -> None:
    assert base_url("kraken", url) == expected


@pytest.mark.parametrize(
    "url",
    ["", "api.kraken.com", "ftp://api.kraken.com", "https://", "https://a.b/?x=1", "http://[::1"],
)
def test_an_invalid_base_url_is_refused_at_start_up(url: str) -> None:
    with pytest.raises(ValueError, match="kraken"):
        base_url("kraken", url)
