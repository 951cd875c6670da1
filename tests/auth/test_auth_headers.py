"""Header reading: case, receive-window aliases and conflicts, time parsing, the time rule."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from stablegate.auth.headers import (
    check_request_time,
    parse_recv_window,
    parse_request_time,
    read_auth_headers,
)
from stablegate.errors import AuthError, GatewayError, InvalidRequest


def test_names_are_case_insensitive() -> None:
    h = read_auth_headers(
        {
            "blockatm-api-key": "ak_1",
            "BLOCKATM-REQUEST-TIME": "5",
            "BlockATM-Signature-v1": "a",
            "blockatm-signature-V2": "b",
            "Other": "x",
        }
    )
    assert (h.api_key, h.request_time, h.recv_window) == ("ak_1", "5", None)
    assert (h.signature_v1, h.signature_v2) == ("a", "b")


@pytest.mark.parametrize(
    "name",
    ["BlockATM-Rec_Window", "BlockATM-Rec-Window", "BlockATM-RECV_WINDOW", "blockatm-recv_window"],
)
def test_recv_window_aliases(name: str) -> None:
    assert read_auth_headers({name: "15000"}).recv_window == "15000"


def test_recv_window_aliases_with_the_same_value_are_fine() -> None:
    h = read_auth_headers({"BlockATM-Rec_Window": "15000", "BlockATM-Rec-Window": "15000"})
    assert h.recv_window == "15000"


def test_recv_window_aliases_with_different_values_conflict() -> None:
    with pytest.raises(InvalidRequest) as info:
        read_auth_headers({"BlockATM-Rec_Window": "15000", "BlockATM-RECV_WINDOW": "15001"})
    assert (info.value.status, info.value.code) == (400, "conflicting_recv_window")


def test_same_header_twice_with_different_values_conflicts() -> None:
    with pytest.raises(InvalidRequest) as info:
        read_auth_headers({"BlockATM-API-Key": "ak_1", "blockatm-api-key": "ak_2"})
    assert info.value.code == "conflicting_header"


def test_repeated_headers_in_a_multi_mapping_conflict() -> None:
    # Starlette's Headers: a Mapping whose items() keeps repeated headers.
    headers = Headers(raw=[(b"blockatm-api-key", b"ak_1"), (b"blockatm-api-key", b"ak_2")])
    with pytest.raises(InvalidRequest):
        read_auth_headers(headers)
    same = Headers(raw=[(b"blockatm-api-key", b"ak_1"), (b"BlockATM-API-Key", b"ak_1")])
    assert read_auth_headers(same).api_key == "ak_1"


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, 30000), ("1", 1), ("60000", 60000), ("030000", 30000)]
)
def test_recv_window_values(raw: str | None, expected: int) -> None:
    assert parse_recv_window(raw) == expected


@pytest.mark.parametrize("raw", ["0", "60001", "-1", "+5", "1.5", "", " 5", "１２", "²", "9" * 40])
def test_recv_window_invalid(raw: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_recv_window(raw)
    assert (info.value.status, info.value.code) == (400, "invalid_recv_window")


def test_request_time_missing_is_401() -> None:
    for raw in (None, ""):
        with pytest.raises(AuthError) as info:
            parse_request_time(raw)
        assert (info.value.status, info.value.code) == (401, "missing_request_time")


@pytest.mark.parametrize("raw", ["abc", "1.0", "-1", "1e12", " 1", "١٢٣", "1" * 17, "0x10"])
def test_request_time_invalid_is_400(raw: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_request_time(raw)
    assert (info.value.status, info.value.code) == (400, "invalid_request_time")


SERVER = 1_700_000_000_000


@pytest.mark.parametrize(
    ("request_time", "window", "ok"),
    [
        (SERVER - 30_000, 30_000, True),  # exactly the window old
        (SERVER - 30_001, 30_000, False),
        (SERVER - 60_000, 60_000, True),
        (SERVER - 60_001, 60_000, False),
        (SERVER - 1, 1, True),
        (SERVER - 2, 1, False),
        (SERVER + 1_000, 30_000, True),  # the allowed skew ahead
        (SERVER + 1_001, 30_000, False),
        (SERVER, 30_000, True),
    ],
)
def test_time_rule_edges(request_time: int, window: int, ok: bool) -> None:
    if ok:
        check_request_time(request_time, window, SERVER)
        return
    with pytest.raises(GatewayError) as info:
        check_request_time(request_time, window, SERVER)
    assert (info.value.status, info.value.code) == (401, "request_expired")
