"""The string a merchant signs (docs/DESIGN.md §2): seven lines joined by ``\\n``, UTF-8.

::

    <BlockATM-API-Key>
    <BlockATM-Request-Time>
    <receive window header value as sent, or empty>
    <HTTP method, upper case>
    <path as sent, without query>
    <raw query string as sent, without '?', or empty>
    <lowercase hex SHA-256 of the raw body bytes>

No field may contain a line break, otherwise two different requests could share one string.
"""

from __future__ import annotations

import hashlib

from stablegate.errors import InvalidRequest


def body_sha256_hex(body: bytes) -> str:
    """Lowercase hex SHA-256 of the raw body (of ``b""`` when there is no body)."""
    return hashlib.sha256(body).hexdigest()


def signing_string(
    api_key: str,
    request_time: str,
    recv_window_raw: str | None,
    method: str,
    path: str,
    query: str,
    body: bytes,
) -> bytes:
    """The exact bytes V1 and V2 sign.

    ``request_time`` and ``recv_window_raw`` are the header values as sent (``None`` for an absent
    window gives an empty line); ``path`` and ``query`` are as sent, decoded as UTF-8, the query
    without its ``?``. Raises :class:`InvalidRequest` (``invalid_signing_input``) when a field
    contains a line break or cannot be encoded as UTF-8.
    """
    fields = (
        api_key,
        request_time,
        recv_window_raw or "",
        method.upper(),
        path,
        query,
    )
    for field in fields:
        if "\n" in field or "\r" in field:
            raise InvalidRequest(
                "a signed field contains a line break", code="invalid_signing_input"
            )
    text = "\n".join((*fields, body_sha256_hex(body)))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(
            "a signed field is not valid UTF-8", code="invalid_signing_input"
        ) from None
