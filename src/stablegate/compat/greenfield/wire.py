"""Greenfield's JSON on the wire: every success is HTTP 200 (the PHP client throws on 201 and
204), decimals are strings, times Unix seconds; a refusal is ``{code, message}`` (401, 403,
404, 400, 429, 503) or, for invalid fields, 422 with ``[{path, message}]``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from stablegate.auth.json_body import parse_json_object
from stablegate.errors import GatewayError
from stablegate.web.security import read_body


class InvalidFields(GatewayError):
    """422: fields of the request that are not acceptable, each with its JSON path."""

    status = 422
    code = "validation_error"

    def __init__(self, fields: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in fields))
        self.fields = list(fields)


def invalid(path: str, message: str) -> InvalidFields:
    return InvalidFields([(path, message)])


def answer(value: Any, status: int = 200) -> Response:
    body = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Response(
        body.encode("utf-8"),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def refusal(exc: GatewayError) -> Response:
    """The Greenfield shape of a gateway error."""
    if isinstance(exc, InvalidFields):
        response = answer([{"path": p, "message": m} for p, m in exc.fields], exc.status)
    else:
        response = answer({"code": exc.code, "message": exc.message}, exc.status)
    response.headers.update(exc.headers)
    return response


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is an empty object)."""
    body = await read_body(request)
    if not body.strip():
        return {}
    return parse_json_object(body)


def seconds(ms: int | None) -> int | None:
    return None if ms is None else ms // 1000
