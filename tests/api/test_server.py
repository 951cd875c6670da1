"""The gateway's HTTP server (stablegate.api.server) over real sockets.

Each test starts the embedded server (``serve_api``, the code ``stablegate run`` and the demo
use; ``serve`` builds the same config) on a loopback port with short limits, and talks to it
with raw sockets. Nothing is timed: a test waits, with a generous bound, for the server to
answer or close the connection.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from stablegate.api.app import create_app
from stablegate.config import Settings
from stablegate.embedded import serve_api

BOUND = 30  # seconds: only a server that never acts would take this long


def _settings(tmp_path: Path, chains_file: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "chains_file": chains_file,
        "secret_key": Fernet.generate_key().decode(),
        "keep_alive_timeout": 1,
        "header_timeout": 1,
        "body_timeout": 1,
    }
    return Settings(**(values | overrides), _env_file=None)  # type: ignore[call-arg]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[int]:
    port = _free_port()
    stop = asyncio.Event()
    _ctx, task = await serve_api(settings, "127.0.0.1", port, stop)
    try:
        yield port
    finally:
        stop.set()
        await asyncio.wait_for(task, BOUND)


@asynccontextmanager
async def connection(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with suppress(ConnectionError):
            await writer.wait_closed()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status_line = await asyncio.wait_for(reader.readline(), BOUND)
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    headers: dict[str, str] = {}
    while True:
        line = await asyncio.wait_for(reader.readline(), BOUND)
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), BOUND)
    return int(status_line.split()[1]), headers, body


async def get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, extra: str = ""
) -> tuple[int, dict[str, str], bytes]:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
    await writer.drain()
    return await read_response(reader)


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server still sends, once it has closed the connection (EOF)."""
    try:
        return await asyncio.wait_for(reader.read(), BOUND)
    except ConnectionResetError:
        return b""


async def test_forwarded_for_from_loopback_is_not_believed_without_trusted_proxies(
    tmp_path: Path, chains_file: Path
) -> None:
    settings = _settings(tmp_path, chains_file, public_per_minute=3)
    async with running(settings) as port, connection(port) as (reader, writer):
        # Three public requests claiming to come from 198.51.100.9 ...
        for _ in range(3):
            status, _headers, _body = await get(
                reader, writer, "/api/v1/public/signing-key", "X-Forwarded-For: 198.51.100.9\r\n"
            )
            assert status == 200
        # ... were counted against the peer, 127.0.0.1, whose budget is now spent.
        status, headers, body = await get(reader, writer, "/api/v1/public/signing-key")
        assert status == 429, body
        assert b"rate_limited" in body
        assert "retry-after" in headers


async def test_idle_keep_alive_connection_is_closed(tmp_path: Path, chains_file: Path) -> None:
    async with running(_settings(tmp_path, chains_file)) as port, connection(port) as (r, w):
        status, headers, _body = await get(r, w, "/healthz")
        assert status == 200
        assert headers.get("connection") != "close"
        assert await closed_by_server(r) == b""


async def test_connection_that_sends_nothing_is_closed(tmp_path: Path, chains_file: Path) -> None:
    async with running(_settings(tmp_path, chains_file)) as port, connection(port) as (r, _w):
        leftover = await closed_by_server(r)
        assert leftover.startswith(b"HTTP/1.1 408 "), leftover
        assert b"request_timeout" in leftover


async def test_half_sent_headers_are_cut_off(tmp_path: Path, chains_file: Path) -> None:
    async with running(_settings(tmp_path, chains_file)) as port, connection(port) as (r, w):
        w.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        await w.drain()
        leftover = await closed_by_server(r)
        assert leftover.startswith(b"HTTP/1.1 408 "), leftover


async def test_headers_trickled_byte_by_byte_are_cut_off(tmp_path: Path, chains_file: Path) -> None:
    """Slowloris: each byte arrives well within any idle timeout, the headers never end."""
    async with running(_settings(tmp_path, chains_file)) as port, connection(port) as (r, w):
        w.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        trickle = b"X-Slow: " + b"a" * 10_000
        closed = asyncio.create_task(closed_by_server(r))
        for byte in trickle:
            if closed.done():
                break
            try:
                w.write(bytes([byte]))
                await w.drain()
            except ConnectionError:
                break
            await asyncio.wait([closed], timeout=0.1)
        leftover = await closed
        assert closed.done()
        assert leftover.startswith(b"HTTP/1.1 408 ") or leftover == b"", leftover


async def test_stalled_body_is_cut_off(tmp_path: Path, chains_file: Path) -> None:
    async with running(_settings(tmp_path, chains_file)) as port, connection(port) as (r, w):
        w.write(
            b"POST /api/v1/payment/createQrOrder HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"amount":'
        )
        await w.drain()
        leftover = await closed_by_server(r)
        assert leftover.startswith(b"HTTP/1.1 408 "), leftover
        assert b"request_timeout" in leftover


async def test_unread_body_trickled_after_the_answer_is_cut_off(
    tmp_path: Path, chains_file: Path
) -> None:
    """A route that answers without reading the body: the rest must still arrive in time."""
    async with running(_settings(tmp_path, chains_file)) as port, connection(port) as (r, w):
        w.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n")
        await w.drain()
        status, _headers, _body = await read_response(r)
        assert status == 200
        closed = asyncio.create_task(closed_by_server(r))
        for _ in range(100_000):
            if closed.done():
                break
            try:
                w.write(b"x")
                await w.drain()
            except ConnectionError:
                break
            await asyncio.wait([closed], timeout=0.1)
        await closed
        assert closed.done()


async def test_connections_above_the_cap_get_503(tmp_path: Path, chains_file: Path) -> None:
    settings = _settings(
        tmp_path, chains_file, max_connections=2, keep_alive_timeout=60, header_timeout=60
    )
    async with (
        running(settings) as port,
        connection(port) as (r1, w1),
        connection(port) as (r2, w2),
    ):
        # Two kept-alive connections, surely registered by the server: it answered on both.
        assert (await get(r1, w1, "/healthz"))[0] == 200
        assert (await get(r2, w2, "/healthz"))[0] == 200
        async with connection(port) as (r3, w3):
            status, headers, body = await get(r3, w3, "/healthz")
            assert status == 503
            assert b"server_busy" in body
            assert headers["retry-after"] == "1"
            assert await closed_by_server(r3) == b""
        # The connections within the cap are still served.
        assert (await get(r1, w1, "/healthz"))[0] == 200


@pytest.mark.parametrize("name", ["keep_alive_timeout", "header_timeout", "body_timeout"])
def test_timeouts_must_be_positive(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings(**{name: 0}, _env_file=None)  # type: ignore[call-arg]


async def test_app_bounds_the_body_read_under_any_server(tmp_path: Path, chains_file: Path) -> None:
    """The app's own deadline, for servers without ours: a body that never comes is a 408."""
    app = create_app(_settings(tmp_path, chains_file), migrate=True)
    sent: list[dict[str, Any]] = []
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await never.wait()  # the client never sends its body
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/payment/createQrOrder",
        "raw_path": b"/api/v1/payment/createQrOrder",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(app(scope, receive, send), BOUND)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert start["status"] == 408, body
    assert b"request_timeout" in body
