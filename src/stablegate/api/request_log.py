"""The outermost layer of every HTTP request: request id, log line, metrics, common headers.

A plain ASGI middleware, not Starlette's ``@app.middleware("http")``: that one runs the app in a
second task with memory streams between the two, which cost as much CPU as a whole ``/healthz``
answer (bench/api.py, docs/BENCHMARKS.md). Here the app runs in the request's own task, so
what the route binds to the log context (the merchant) is on the request's log line too.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import MutableMapping
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stablegate.web import errors
from stablegate.web.context import Metrics

log = structlog.get_logger("stablegate.api")

_NOSNIFF = (b"x-content-type-options", b"nosniff")


class RequestLog:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        # Status and time to the first byte, taken when the answer starts (a live stream's log
        # line still comes when it ends).
        answered: dict[str, Any] = {}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered["status"] = message["status"]
                answered["elapsed"] = time.perf_counter() - started
                message["headers"] = _with_common_headers(message, scope, request_id)
            await send(message)

        raw_target = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
        try:
            if b"%00" in raw_target or b"\x00" in raw_target:
                # NUL cannot be stored in PostgreSQL text; no legitimate id or filter holds it.
                await errors.error_response(
                    400, "invalid_request", "the URL must not contain NUL characters"
                )(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        except Exception as exc:  # a bug must still answer with our error shape
            log.exception("unhandled_error", error_type=type(exc).__name__)
            if "status" in answered:
                raise  # the answer started: nothing more can be said on this connection
            await errors.error_response(
                500, "internal_error", "internal error; the operator has been told"
            )(scope, receive, send_with_headers)
        finally:
            self._record(scope, answered, started)

    def _record(self, scope: Scope, answered: dict[str, Any], started: float) -> None:
        status = answered.get("status", 500)
        elapsed = answered.get("elapsed", time.perf_counter() - started)
        route_name = getattr(scope.get("route"), "path", "unmatched")
        self.metrics.requests.labels(route_name, str(status)).inc()
        self.metrics.latency.labels(route_name).observe(elapsed)
        log.info(
            "request",
            method=scope.get("method"),
            route=route_name,
            status=status,
            ms=round(elapsed * 1000, 2),
        )


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            given: str = bytes(value[:64]).decode("latin-1")
            if given:
                return given
            break
    return secrets.token_hex(8)


def _with_common_headers(
    message: MutableMapping[str, Any], scope: Scope, request_id: str
) -> list[tuple[bytes, bytes]]:
    """The answer's headers plus the request id, the key's rate headers (on error answers too:
    :func:`stablegate.web.security.merchant_request` leaves them in the request state) and
    ``nosniff``, each only where the route did not set it already."""
    headers = [
        (name, value) for name, value in message.get("headers", ()) if name != b"x-request-id"
    ]
    present = {name.lower() for name, _ in headers}
    headers.append((b"x-request-id", request_id.encode("latin-1")))
    rate_headers = scope.get("state", {}).get("rate_headers", {})
    for name, value in rate_headers.items():
        key = name.lower().encode("latin-1")
        if key not in present:
            headers.append((key, value.encode("latin-1")))
    if _NOSNIFF[0] not in present:
        headers.append(_NOSNIFF)
    return headers
