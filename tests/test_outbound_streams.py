"""httpx over the asyncio-stream backend against a raw local server: keep-alive, a connection the
server closed while idle, timeouts, refused connections, bodies larger than the write hold-back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from stablegate.outbound_streams import asyncio_transport
from stablegate.webhooks.worker import CLIENT_LIMITS, default_client


class RawServer:
    """HTTP/1.1 by hand: answers each request 204 (or holds it), counts connections and
    requests, and may close a connection after its first response without saying so."""

    def __init__(self, *, close_after_one: bool = False, hold: bool = False) -> None:
        self.close_after_one = close_after_one
        self.hold = hold
        self.connections = 0
        self.bodies: list[bytes] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                self.bodies.append(await reader.readexactly(length))
                if self.hold:
                    await asyncio.sleep(30)
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
                if self.close_after_one:
                    break  # no "Connection: close": the client learns it when it reuses it
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{self.port}/hook"
        finally:
            server.close()


def client(timeout: float = 10.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=asyncio_transport(CLIENT_LIMITS), timeout=timeout, trust_env=False
    )


async def test_requests_share_one_kept_alive_connection() -> None:
    server = RawServer()
    async with server.running() as url, default_client() as http:
        for n in range(5):
            response = await http.post(url, content=b'{"n":%d}' % n)
            assert response.status_code == 204
    assert server.connections == 1
    assert server.bodies == [b'{"n":%d}' % n for n in range(5)]


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    server = RawServer(close_after_one=True)
    async with server.running() as url, client() as http:
        for _ in range(3):
            assert (await http.post(url, content=b"{}")).status_code == 204
            await asyncio.sleep(0.05)  # the close reaches the idle connection
    assert server.connections == 3


async def test_a_body_larger_than_the_hold_back_arrives_whole() -> None:
    server = RawServer()
    body = bytes(range(256)) * 1024  # 256 KiB
    async with server.running() as url, client() as http:
        assert (await http.post(url, content=body)).status_code == 204
        assert (await http.post(url, content=b"small")).status_code == 204
    assert server.bodies == [body, b"small"]


async def test_no_response_in_time_is_a_read_timeout() -> None:
    server = RawServer(hold=True)
    async with server.running() as url, client(timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(url, content=b"{}")


async def test_a_refused_connection_is_a_connect_error() -> None:
    server = RawServer()
    async with server.running() as url:
        pass  # the port is free again
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.post(url, content=b"{}")


async def test_the_worker_client_keeps_no_cookie_a_receiver_sets() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(204, headers={"set-cookie": "session=abc; Path=/"})

    async with default_client() as http:
        http._transport = httpx.MockTransport(handler)
        for _ in range(2):
            await http.post("http://127.0.0.1:9/hook", content=b"{}")
    assert seen == [None, None]
    assert len(http.cookies.jar) == 0
