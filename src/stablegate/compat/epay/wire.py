"""Reading foreign requests and writing foreign answers: parameters from a query, a form or a
JSON object as the plugins send them, and JSON with exact decimal numbers (amounts are never
floats inside the gateway, and Epusdt's amounts are JSON numbers)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import Response

from stablegate.auth.json_body import parse_json_object
from stablegate.errors import InvalidRequest
from stablegate.rates.pricing import decimal_text
from stablegate.web.context import WebContext, get_context
from stablegate.web.security import read_body, request_ip

Params = dict[str, str | int | Decimal]

MAX_PARAMS = 64


def exact_json(value: Any) -> str:
    """Compact JSON in which a Decimal is a number written in its shortest form."""
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, Mapping):
        items = (
            f"{json.dumps(str(k), ensure_ascii=False)}:{exact_json(v)}" for k, v in value.items()
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(exact_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def json_answer(value: Mapping[str, Any], status: int = 200) -> Response:
    return Response(
        exact_json(value).encode("utf-8"),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def query_params(raw: str) -> dict[str, str]:
    """``a=1&b=2`` as a dict; a name given twice is refused (which value was signed?)."""
    found: dict[str, str] = {}
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the parameters are not valid UTF-8") from None
    for name, value in pairs:
        if name in found:
            raise InvalidRequest(f"parameter {name[:32]} is given twice")
        if "\x00" in name or "\x00" in value:
            raise InvalidRequest("parameters must not contain NUL characters")
        found[name] = value
    if len(found) > MAX_PARAMS:
        raise InvalidRequest(f"more than {MAX_PARAMS} parameters")
    return found


async def request_params(request: Request) -> Params:
    """The query's parameters, then the body's (a form or a JSON object): a name in both is
    refused. JSON numbers keep their exact value (a float's shortest text, as a PHP or Go client
    signs it); JSON values other than strings and numbers are refused."""
    params: Params = dict(query_params(request.scope.get("query_string", b"").decode("latin-1")))
    body = await read_body(request)
    if not body:
        return params
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    found: Params
    if media == "application/json" or (not media and body.lstrip()[:1] == b"{"):
        found = {}
        for name, value in parse_json_object(body).items():
            found[name] = _json_value(name, value)
    else:
        try:
            found = dict(query_params(body.decode("utf-8")))
        except UnicodeDecodeError:
            raise InvalidRequest("the parameters are not valid UTF-8") from None
    for name, value in found.items():
        if name in params:
            raise InvalidRequest(f"parameter {name[:32]} is given twice")
        params[name] = value
    if len(params) > MAX_PARAMS:
        raise InvalidRequest(f"more than {MAX_PARAMS} parameters")
    return params


def _json_value(name: str, value: object) -> str | int | Decimal:
    if isinstance(value, bool) or value is None:
        if value is None:
            return ""
        raise InvalidRequest(f"{name[:32]} must be a string or a number")
    if isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    raise InvalidRequest(f"{name[:32]} must be a string or a number")


async def limited(request: Request) -> tuple[WebContext, str]:
    """The context and the client's address, after the per-IP budget of public requests (the
    plugins' calls carry no key the signed API's limits could count)."""
    ctx = get_context(request)
    ip = request_ip(request, ctx)
    await ctx.limiter.check_public(ip)
    return ctx, ip


async def failed_auth(ctx: WebContext, ip: str, code: str) -> None:
    """Count a refused signature or pid against the address, as the signed API does (over the
    budget this raises ``rate_limited``, which is then the answer)."""
    ctx.metrics.auth_failures.labels(code).inc()
    await ctx.limiter.note_failed_auth(ip)


def text_param(params: Params, name: str, *, required: bool = True) -> str | None:
    """A parameter as text; numbers are written in their shortest form."""
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise InvalidRequest(f"{name} is required")
        return None
    if isinstance(value, Decimal):
        return decimal_text(value)
    return str(value)
