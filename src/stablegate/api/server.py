"""The HTTP server around the app: uvicorn with the gateway's connection limits.

- Proxy headers are off: the app's ``client_ip`` (``STABLEGATE_TRUSTED_PROXIES``) is the only
  judge of a client's address. uvicorn's default would believe ``X-Forwarded-For`` from any
  loopback peer, so a local TLS forwarder would let clients choose their IP.
- Idle keep-alive connections are closed after ``keep_alive_timeout`` seconds.
- A request's headers must be complete ``header_timeout`` seconds after the connection opened
  (or after the first byte of the next request on a kept-alive one), and its body
  ``body_timeout`` seconds after the headers; else 408 and the connection is closed. uvicorn has
  neither bound, so a client sending one byte at a time would hold a connection for good.
- Above ``max_connections`` open connections, a request is answered 503 ``server_busy`` (in the
  gateway's error shape, with ``Retry-After``) and its connection closed.

Every server that runs the gateway's app is built here (``serve``, ``run``, the demo).
"""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any, Literal

import uvicorn
from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from stablegate.config import Settings

Waiting = Literal["headers", "body"]


def _timeout_response() -> bytes:
    body = json.dumps(
        {"error": {"code": "request_timeout", "message": "the request was not received in time"}}
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode()
    return head + body


TIMEOUT_RESPONSE = _timeout_response()
_BUSY_BODY = json.dumps(
    {"error": {"code": "server_busy", "message": "too many open connections; retry shortly"}}
).encode()


async def _busy(_scope: Scope, _receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    """The answer above the connection cap; closing the connection frees its place."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_BUSY_BODY)).encode()),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _BUSY_BODY, "more_body": False})


class GatewayServerConfig(uvicorn.Config):
    """uvicorn's Config plus the two deadlines uvicorn does not have and the connection cap."""

    def __init__(
        self,
        app: Any,
        *,
        header_timeout: float,
        body_timeout: float,
        max_connections: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.max_connections = max_connections


class TimedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline, a body deadline and the cap."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        if not isinstance(config, GatewayServerConfig):
            raise TypeError("TimedHttpProtocol needs a GatewayServerConfig")
        self._header_timeout = config.header_timeout
        self._body_timeout = config.body_timeout
        self._max_connections = config.max_connections
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting: Waiting = "headers"

    def _arm(self, waiting: Waiting) -> None:
        self._disarm()
        self._waiting = waiting
        seconds = self._header_timeout if waiting == "headers" else self._body_timeout
        self._deadline = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _in_flight(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._in_flight():
            # The app sees a disconnect (its body read ends) and its late answer goes nowhere.
            started = cycle.response_started
            cycle.disconnected = True
            cycle.message_event.set()
            answer = not started
        else:
            # No request in flight: a stalled request's headers, or a body nobody reads.
            answer = self._waiting == "headers"
        if answer:
            self.transport.write(TIMEOUT_RESPONSE)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a complete request is closed too.
        self._arm("headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Bytes after an answered request (even ones the parser skips) start the next deadline;
        # uvicorn has just cancelled its keep-alive timer.
        if self._deadline is None and not self._in_flight() and not self.transport.is_closing():
            self._arm("headers")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            self._arm("headers")

    def on_headers_complete(self) -> None:
        self._arm("body")
        # Instead of uvicorn's limit_concurrency, whose 503 is plain text: the same count (this
        # connection included), answered in the gateway's error shape.
        if len(self.connections) > self._max_connections:
            app, self.app = self.app, _busy
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        else:
            super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()


def settle_heap() -> None:
    """Call once the app is built, before serving. What the process loaded to serve (modules,
    the app, its routes and models: about 200 000 objects) lives as long as the process; frozen,
    the garbage collector's full passes no longer walk it, which took tens of milliseconds in the
    middle of whichever request triggered one (bench/api.py's p99)."""
    gc.collect()
    gc.freeze()


def server_config(app: Any, settings: Settings, host: str, port: int) -> GatewayServerConfig:
    return GatewayServerConfig(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        http=TimedHttpProtocol,
        proxy_headers=False,
        timeout_keep_alive=settings.keep_alive_timeout,
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_connections=settings.max_connections,
    )
