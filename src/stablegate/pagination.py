"""Keyset-pagination cursors: an opaque token (base64url of a JSON array) that clients hand back.

A cursor comes from the client, so it is checked like any input before it reaches a query: the
exact shape (base64url alphabet, a JSON array of the expected length) and every value within the
bounds of the column it is compared with. Anything else is 400 ``invalid_cursor``; an integer
past a column's range would otherwise fail in the driver (``OverflowError`` on SQLite, an
out-of-range error on PostgreSQL) as a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Annotated

from fastapi import Query

from stablegate.errors import InvalidRequest

MAX_CURSOR_LENGTH = 200
INT32_MAX = 2**31 - 1  # INTEGER columns (PostgreSQL int4)
INT64_MAX = 2**63 - 1  # BIGINT columns
_TOKEN = re.compile(r"[A-Za-z0-9_-]*")
_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")  # the ids the gateway makes (String(40) columns)

# The query parameter. ``format: cursor`` tells generated clients and the fuzzer what it is.
CursorParam = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_LENGTH,
        description="nextCursor of the previous page, as returned; opaque",
        json_schema_extra={
            "anyOf": [
                {"type": "string", "maxLength": MAX_CURSOR_LENGTH, "format": "cursor"},
                {"type": "null"},
            ]
        },
    ),
]


def invalid_cursor() -> InvalidRequest:
    return InvalidRequest("cursor is not valid", code="invalid_cursor")


def encode_cursor(values: list[int | str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[object]:
    """The cursor's values, not yet checked one by one; 400 unless a JSON array of ``length``."""
    if not _TOKEN.fullmatch(cursor) or len(cursor) % 4 == 1:
        raise invalid_cursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError) as exc:
        raise invalid_cursor() from exc
    if not isinstance(values, list) or len(values) != length:
        raise invalid_cursor()
    return values


def cursor_int(value: object, *, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise invalid_cursor()
    return value


def cursor_id(value: object) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise invalid_cursor()
    return value
