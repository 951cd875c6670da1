"""A raw-socket client for the cashier's event stream: one HTTP/1.1 GET per socket, so a test
can hold a thousand open cheaply and say which client address a proxy forwarded."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

WAIT_S = 120.0  # generous: two cores shared with other jobs


@dataclass
class RawStream:
    """One HTTP/1.1 GET of an event stream on its own socket."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""

    @classmethod
    async def open(cls, port: int, order_id: str, client: str | None = None) -> RawStream:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        forwarded = f"X-Forwarded-For: {client}\r\n" if client else ""
        writer.write(
            f"GET /api/v1/public/orders/{order_id}/events HTTP/1.1\r\n"
            f"Host: pay.example.com\r\nAccept: text/event-stream\r\n{forwarded}\r\n".encode()
        )
        stream = cls(reader, writer)
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)).decode()
        lines = head.split("\r\n")
        stream.status = int(lines[0].split(" ")[1])
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                stream.headers[name.strip().lower()] = value.strip()
        return stream

    async def _chunk(self) -> bytes:
        size = int((await self.reader.readline()).strip(), 16)
        data = await self.reader.readexactly(size + 2)
        return data[:-2]

    async def error(self) -> dict[str, Any]:
        if "content-length" in self.headers:
            body = await self.reader.readexactly(int(self.headers["content-length"]))
        else:
            body = b""
            while chunk := await self._chunk():
                body += chunk
        error: dict[str, Any] = json.loads(body)["error"]
        return error

    async def next_event(self) -> dict[str, Any]:
        """The next ``event: order`` of the stream (heartbeats and ``retry`` skipped)."""
        while True:
            while "\n\n" not in self.text:
                chunk = await asyncio.wait_for(self._chunk(), WAIT_S)
                assert chunk, "the stream ended"
                self.text += chunk.decode()
            block, self.text = self.text.split("\n\n", 1)
            lines = block.split("\n")
            if lines[0] == "event: order":
                parsed: dict[str, Any] = json.loads(lines[1].removeprefix("data: "))
                return parsed

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):  # the server may have closed it first
            await self.writer.wait_closed()
