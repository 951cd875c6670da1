"""Reading the ``BlockATM-*`` authentication headers and the time rule.

Header names are matched case-insensitively. Values are kept exactly as sent because the signing
string contains them verbatim (the receive window line is the header value as sent, or empty).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from stablegate.errors import AuthError, InvalidRequest

API_KEY_HEADER = "BlockATM-API-Key"
REQUEST_TIME_HEADER = "BlockATM-Request-Time"
RECV_WINDOW_HEADERS = ("BlockATM-Rec_Window", "BlockATM-Rec-Window", "BlockATM-RECV_WINDOW")
SIGNATURE_V1_HEADER = "BlockATM-Signature-V1"
SIGNATURE_V2_HEADER = "BlockATM-Signature-V2"

DEFAULT_RECV_WINDOW_MS = 30_000
MAX_RECV_WINDOW_MS = 60_000
# How far ahead of the server's clock a request time may be.
MAX_FUTURE_SKEW_MS = 1_000

_API_KEY = re.compile(r"[!-~]{1,128}")  # visible ASCII, no spaces
_DIGITS = re.compile(r"[0-9]{1,16}")

_WANTED = {
    name.lower(): name
    for name in (
        API_KEY_HEADER,
        REQUEST_TIME_HEADER,
        *RECV_WINDOW_HEADERS,
        SIGNATURE_V1_HEADER,
        SIGNATURE_V2_HEADER,
    )
}


@dataclass(frozen=True)
class AuthHeaders:
    """The authentication headers as sent (``None`` when absent)."""

    api_key: str | None
    request_time: str | None
    recv_window: str | None
    signature_v1: str | None
    signature_v2: str | None


def _collect(headers: Mapping[str, str]) -> dict[str, str]:
    """Case-insensitive pick of our headers; a name sent twice with different values is a 400.

    Iterating ``items()`` sees repeated headers when the mapping keeps them (Starlette's
    ``Headers`` does), and differently-cased duplicates in a plain dict.
    """
    found: dict[str, str] = {}
    for name, value in headers.items():
        canonical = _WANTED.get(name.lower())
        if canonical is None:
            continue
        previous = found.get(canonical)
        if previous is not None and previous != value:
            raise InvalidRequest(
                f"header {canonical} is sent more than once", code="conflicting_header"
            )
        found[canonical] = value
    return found


def read_auth_headers(headers: Mapping[str, str]) -> AuthHeaders:
    """Pick the authentication headers; resolves the receive-window aliases.

    Raises :class:`InvalidRequest` ``conflicting_header`` for one header with two values and
    ``conflicting_recv_window`` when the window aliases disagree. Values are not validated here.
    """
    found = _collect(headers)
    windows = {found[name] for name in RECV_WINDOW_HEADERS if name in found}
    if len(windows) > 1:
        raise InvalidRequest(
            "the receive window headers have different values", code="conflicting_recv_window"
        )
    return AuthHeaders(
        api_key=found.get(API_KEY_HEADER),
        request_time=found.get(REQUEST_TIME_HEADER),
        recv_window=windows.pop() if windows else None,
        signature_v1=found.get(SIGNATURE_V1_HEADER),
        signature_v2=found.get(SIGNATURE_V2_HEADER),
    )


def is_well_formed_api_key(api_key: str) -> bool:
    return _API_KEY.fullmatch(api_key) is not None


def parse_request_time(raw: str | None) -> int:
    """Unix milliseconds from ``BlockATM-Request-Time``.

    Absent: 401 ``missing_request_time``; not plain ASCII digits: 400 ``invalid_request_time``.
    """
    if raw is None or raw == "":
        raise AuthError(
            f"signed requests need the {REQUEST_TIME_HEADER} header", code="missing_request_time"
        )
    if not _DIGITS.fullmatch(raw):
        raise InvalidRequest(
            f"{REQUEST_TIME_HEADER} must be Unix milliseconds (digits only)",
            code="invalid_request_time",
        )
    return int(raw)


def parse_recv_window(raw: str | None) -> int:
    """The receive window in ms: default 30000; a positive integer up to 60000, else 400
    ``invalid_recv_window``."""
    if raw is None:
        return DEFAULT_RECV_WINDOW_MS
    if not _DIGITS.fullmatch(raw) or not 0 < int(raw) <= MAX_RECV_WINDOW_MS:
        raise InvalidRequest(
            f"the receive window must be an integer from 1 to {MAX_RECV_WINDOW_MS} (ms)",
            code="invalid_recv_window",
        )
    return int(raw)


def check_request_time(request_time_ms: int, recv_window_ms: int, server_time_ms: int) -> None:
    """The time rule: ``requestTime <= serverTime + 1000`` and
    ``serverTime - requestTime <= recvWindow``; otherwise 401 ``request_expired``."""
    if request_time_ms > server_time_ms + MAX_FUTURE_SKEW_MS:
        raise AuthError(
            "the request time is ahead of the server clock; check the client's clock",
            code="request_expired",
        )
    if server_time_ms - request_time_ms > recv_window_ms:
        raise AuthError("the request time is outside the receive window", code="request_expired")
