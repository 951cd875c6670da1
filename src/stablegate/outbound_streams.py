# ruff: noqa: ASYNC109  (the timeout parameters are httpcore's interface)
"""httpcore's network I/O on plain asyncio streams, for the webhook worker's HTTP clients.

httpx's default backend goes through anyio: every read and write opens a cancel scope (a
deadline, a task lookup, a lock) and every check of an idle keep-alive connection rebuilds the
socket's attribute table (a ``getpeername`` system call each time). Under the webhook worker's
load that cost more CPU than the rest of a delivery's HTTP handling together. This backend does
the same work with ``asyncio.open_connection`` / ``StreamWriter.start_tls`` and
``asyncio.timeout``, raising httpcore's own exceptions, so httpx sees no difference: TLS,
SNI, certificate checks, timeouts and the connection pool are unchanged.

A request's writes are held back and sent together when its response is read: one system call
per request instead of two (its head and its body), the way a corked socket would.

An idle connection counts as "readable" (so the pool drops it instead of reusing it) once the
server has closed it, or sent bytes nobody asked for: the asyncio transport reads eagerly, so
that shows in the stream's state rather than in the socket's buffer.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
from httpcore._backends.base import SOCKET_OPTION

_COALESCE_BYTES = 64 * 1024  # writes held back for the next read, at most


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._unsent: list[bytes] = []
        self._unsent_bytes = 0

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                if self._unsent:
                    await self._flush()
                return await self._reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("read timed out") from None
        except OSError as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # A request's head and body go out in one send when the reply is read (httpcore
        # always reads after writing a request), not in two; a large body goes at once.
        if not buffer:
            return
        self._unsent.append(buffer)
        self._unsent_bytes += len(buffer)
        if self._unsent_bytes < _COALESCE_BYTES:
            return
        try:
            async with asyncio.timeout(timeout):
                await self._flush()
        except TimeoutError:
            raise httpcore.WriteTimeout("write timed out") from None
        except OSError as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def _flush(self) -> None:
        unsent, self._unsent, self._unsent_bytes = self._unsent, [], 0
        self._writer.write(b"".join(unsent))
        await self._writer.drain()  # returns at once unless the send buffer is full

    async def aclose(self) -> None:
        # No wait for the peer: a receiver that never answers the TLS close must not hold us.
        self._writer.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            self._writer.transport.abort()
            raise httpcore.ConnectTimeout("TLS handshake timed out") from None
        except (OSError, ssl.SSLError) as exc:  # ssl.SSLError is an OSError; said for clarity
            self._writer.transport.abort()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        if info == "is_readable":
            return (
                self._reader.at_eof()
                or self._reader.exception() is not None
                or self._writer.transport.is_closing()
                or len(getattr(self._reader, "_buffer", b"")) > 0
            )
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=None if local_address is None else (local_address, 0)
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection to {host}:{port} in time") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(path)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection to {path} in time") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def asyncio_transport(
    limits: httpx.Limits, *, verify: ssl.SSLContext | bool = True
) -> httpx.AsyncHTTPTransport:
    """httpx's transport (HTTP/1.1, no proxy, certificates checked unless ``verify`` says
    otherwise) over :class:`AsyncioBackend`. httpx takes no network backend, so the pool it
    built is replaced by one with the same settings and this backend."""
    transport = httpx.AsyncHTTPTransport(verify=verify, limits=limits, trust_env=False)
    ssl_context = transport._pool._ssl_context
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        network_backend=AsyncioBackend(),
    )
    return transport
