"""Server-sent events for the cashier: the public order view, sent whenever it changes.

A stream sends its order's view at once, then ``event: order`` whenever the process's shared
poll (:mod:`stablegate.cashier.live`) finds the view changed (``serverTime`` aside); the stream
itself never queries the database. It sends a comment line as a heartbeat after 15 s of silence
so proxies keep the connection, and ends after sending a terminal status, when the order is
gone, or when the connection has lived for its maximum lifetime (the browser's EventSource then
reconnects).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from stablegate.cashier.live import Subscription
from stablegate.orders.state import TERMINAL_STATUSES

# Sent first: how long the browser waits before reconnecting after the stream ends (ms).
RETRY_MS = 3000


@dataclass(frozen=True)
class StreamTiming:
    heartbeat_interval: float = 15.0
    max_lifetime: float = 600.0


DEFAULT_TIMING = StreamTiming()
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


class EventStreamResponse(StreamingResponse):
    """A ``text/event-stream`` response that calls ``on_close`` however it ends: sent in full,
    failed, or cancelled when the client disconnects (even before the first chunk)."""

    def __init__(self, content: AsyncIterator[str], *, on_close: Callable[[], None]) -> None:
        super().__init__(content, media_type="text/event-stream", headers=HEADERS)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


def format_event(view: dict[str, Any]) -> str:
    data = json.dumps(view, separators=(",", ":"), ensure_ascii=False)
    return f"event: order\ndata: {data}\n\n"


async def order_event_stream(
    changes: Subscription, *, timing: StreamTiming | None = None
) -> AsyncIterator[str]:
    """The text of an ``text/event-stream`` for one order, chunk by chunk. ``changes`` must
    have been offered the current view, which is sent first."""
    timing = timing or DEFAULT_TIMING
    started = time.monotonic()
    last_sent_at = started
    yield f"retry: {RETRY_MS}\n\n"
    while True:
        now = time.monotonic()
        wait = min(last_sent_at + timing.heartbeat_interval, started + timing.max_lifetime) - now
        changed, view = await changes.next_change(max(wait, 0.0))
        now = time.monotonic()
        if changed:
            if view is None:
                return
            last_sent_at = now
            yield format_event(view)
            if view["status"] in TERMINAL_STATUSES:
                return
        elif now - last_sent_at >= timing.heartbeat_interval:
            last_sent_at = now
            yield ": heartbeat\n\n"
        if now - started >= timing.max_lifetime:
            return
