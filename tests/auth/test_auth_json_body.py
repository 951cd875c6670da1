"""Strict JSON bodies: objects only, UTF-8, no duplicates, no lone surrogates, bounded."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stablegate.auth.json_body import MAX_BODY_BYTES, MAX_DEPTH, parse_json_object
from stablegate.errors import GatewayError


def invalid(body: bytes, code: str = "invalid_body", status: int = 400) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        parse_json_object(body)
    assert (info.value.status, info.value.code) == (status, code), info.value.message
    return info.value


def test_plain_object() -> None:
    body = b'{"chainId":1,"symbol":"USDT","amount":"1.5","metadata":{"a":[1,2.5,null,true]}}'
    assert parse_json_object(body) == {
        "chainId": 1,
        "symbol": "USDT",
        "amount": "1.5",
        "metadata": {"a": [1, 2.5, None, True]},
    }


def test_valid_surrogate_pair_and_unicode() -> None:
    assert parse_json_object(b'{"e":"\\ud83d\\ude00","n":"\xc3\xa9"}') == {"e": "😀", "n": "é"}


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":1,"a":2}',
        b'{"a":1,"b":{"c":1,"c":1}}',
        b'{"x":[{"k":1},{"k":1,"k":2}]}',
        b'{"a":1,"\\u0061":2}',  # the same key, once escaped
    ],
)
def test_duplicate_keys(body: bytes) -> None:
    assert "duplicate" in invalid(body).message


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":"\\ud800"}',
        b'{"a":"\\udfff"}',
        b'{"a":"x\\ud83dy"}',
        b'{"\\ud800":1}',
        b'{"a":["\\ude00\\ud83d"]}',
    ],
)
def test_lone_surrogates(body: bytes) -> None:
    assert "surrogate" in invalid(body).message


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b" ",
        b"[]",
        b"[1]",
        b'"x"',
        b"1",
        b"null",
        b"{",
        b'{"a":1} x',
        b"{'a':1}",
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b'{"a":-Infinity}',
        b'{"a":1e999}',
        b'{"a":-1e999}',
        b'{"a":' + b"1" * 5000 + b"}",
        b"\xef\xbb\xbf{}",  # BOM
        b'{"a":"\xff"}',  # not UTF-8
        b'{"a":"\xed\xa0\x80"}',  # a surrogate encoded in UTF-8: not UTF-8
        b'{"a":"\x00"}',  # raw control character in a string
    ],
)
def test_invalid_bodies(body: bytes) -> None:
    invalid(body)


@pytest.mark.parametrize("body", [b'{"a":"x\\u0000"}', b'{"\\u0000":1}', b'{"a":["\\u0000"]}'])
def test_nul_is_refused(body: bytes) -> None:
    assert "NUL" in invalid(body).message


def test_nesting() -> None:
    ok = b'{"a":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH
    assert parse_json_object(ok)
    too_deep = b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1)
    invalid(too_deep)
    invalid(b'{"a":' + b"[" * 30_000 + b"]" * 30_000 + b"}")
    invalid(b'{"a":' + b"[" * 65_000)


def test_size_limit() -> None:
    filler = MAX_BODY_BYTES - len(b'{"a":""}')
    exact = b'{"a":"' + b"x" * filler + b'"}'
    assert len(exact) == MAX_BODY_BYTES
    assert parse_json_object(exact)
    invalid(exact[:-2] + b'x"}', "body_too_large", 413)
    with pytest.raises(GatewayError) as info:
        parse_json_object(b'{"a":1}', max_bytes=3)
    assert info.value.code == "body_too_large"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_else(body: bytes) -> None:
    try:
        result = parse_json_object(body)
    except GatewayError as exc:
        assert exc.status in (400, 413)
    else:
        assert isinstance(result, dict)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_round_trip_or_clear_error(value: dict[str, object]) -> None:
    body = json.dumps(value).encode()
    try:
        assert parse_json_object(body) == value
    except GatewayError as exc:
        # hypothesis text may contain lone surrogates or NUL, which must be refused
        assert exc.code == "invalid_body"
        assert "surrogate" in exc.message or "NUL" in exc.message
