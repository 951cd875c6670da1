"""The MD5 rule as EPay's and Epusdt's documentation state it, checked against signed texts
written out by hand: non-empty parameters but the signature's own, sorted by name, ``k=v``
joined with ``&``, the key appended directly, lowercase hex MD5."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from stablegate.compat.epay.signing import (
    EPAY_UNSIGNED,
    EPUSDT_UNSIGNED,
    md5_sign,
    md5_verify,
    signed_text,
)

KEY = "89unJUB8HZ54Hj7x4nUj56HN4nUzUJ8i"

EPAY_REQUEST = {
    "pid": "1001",
    "type": "alipay",
    "out_trade_no": "20160806151343349",
    "notify_url": "http://www.pay.com/notify_url.php",
    "return_url": "http://www.pay.com/return_url.php",
    "name": "VIP会员",
    "money": "1.00",
    "param": "",
    "sign": "ignored",
    "sign_type": "MD5",
}
EPAY_TEXT = (
    "money=1.00&name=VIP会员&notify_url=http://www.pay.com/notify_url.php"
    "&out_trade_no=20160806151343349&pid=1001&return_url=http://www.pay.com/return_url.php"
    "&type=alipay" + KEY
)


def test_an_epay_request_is_signed_without_sign_sign_type_and_empty_values() -> None:
    assert signed_text(EPAY_REQUEST, KEY, EPAY_UNSIGNED) == EPAY_TEXT
    expected = hashlib.md5(EPAY_TEXT.encode("utf-8")).hexdigest()
    assert md5_sign(EPAY_REQUEST, KEY, EPAY_UNSIGNED) == expected
    assert md5_verify(EPAY_REQUEST, KEY, expected, EPAY_UNSIGNED)
    assert md5_verify(EPAY_REQUEST, KEY, expected.upper(), EPAY_UNSIGNED)


def test_an_epusdt_request_signs_its_amount_in_the_shortest_form() -> None:
    request = {
        "order_id": "2024010112345",
        "amount": Decimal("10.00"),
        "notify_url": "https://shop.example/notify",
        "redirect_url": "https://shop.example/done",
        "signature": "ignored",
    }
    text = (
        "amount=10&notify_url=https://shop.example/notify&order_id=2024010112345"
        "&redirect_url=https://shop.example/done" + KEY
    )
    assert signed_text(request, KEY, EPUSDT_UNSIGNED) == text
    assert md5_sign(request, KEY, EPUSDT_UNSIGNED) == hashlib.md5(text.encode()).hexdigest()


def test_an_epusdt_callback_signs_numbers_and_its_status() -> None:
    callback = {
        "trade_id": "T1",
        "order_id": "A-1",
        "amount": Decimal("72"),
        "actual_amount": Decimal("10.5"),
        "token": "0xabc",
        "block_transaction_id": "0xdef",
        "status": 2,
    }
    text = (
        "actual_amount=10.5&amount=72&block_transaction_id=0xdef&order_id=A-1&status=2"
        "&token=0xabc&trade_id=T1" + KEY
    )
    assert signed_text(callback, KEY, EPUSDT_UNSIGNED) == text


def test_names_sort_by_bytes_and_zero_is_not_empty() -> None:
    params = {"b": "2", "B": "1", "a": 0, "_": "x", "c": None}
    assert signed_text(params, "K", EPAY_UNSIGNED) == "B=1&_=x&a=0&b=2K"


def test_a_changed_value_or_key_does_not_verify() -> None:
    good = md5_sign(EPAY_REQUEST, KEY, EPAY_UNSIGNED)
    assert not md5_verify({**EPAY_REQUEST, "money": "1.01"}, KEY, good, EPAY_UNSIGNED)
    assert not md5_verify(EPAY_REQUEST, KEY + "x", good, EPAY_UNSIGNED)
    assert not md5_verify(EPAY_REQUEST, KEY, good[:-1], EPAY_UNSIGNED)
    assert not md5_verify(EPAY_REQUEST, KEY, "é" * 32, EPAY_UNSIGNED)
