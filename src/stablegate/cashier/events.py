"""Server-sent events for the cashier: the public order view, sent whenever it changes.

Each connection polls the database about once a second with a short session of its own (no
session or transaction stays open between polls), sends ``event: order`` when the view differs
from the last one sent (``serverTime`` aside), a comment line as a heartbeat after 15 s of
silence so proxies keep the connection, and ends after sending a terminal status or when the
connection has lived for its maximum lifetime (the browser's EventSource then reconnects).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from stablegate.orders.state import OrderStatus

TERMINAL_STATUSES = frozenset({OrderStatus.COMPLETED, OrderStatus.EXPIRED, OrderStatus.CANCELLED})
# Sent first: how long the browser waits before reconnecting after the stream ends (ms).
RETRY_MS = 3000


@dataclass(frozen=True)
class StreamTiming:
    poll_interval: float = 1.0
    heartbeat_interval: float = 15.0
    max_lifetime: float = 600.0


DEFAULT_TIMING = StreamTiming()

# Loads the current public view, or None when the order is gone.
ViewLoader = Callable[[], Awaitable[dict[str, Any] | None]]
# True once the client has gone away.
DisconnectCheck = Callable[[], Awaitable[bool]]


def format_event(view: dict[str, Any]) -> str:
    data = json.dumps(view, separators=(",", ":"), ensure_ascii=False)
    return f"event: order\ndata: {data}\n\n"


def _comparable(view: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in view.items() if key != "serverTime"}


async def order_event_stream(
    load_view: ViewLoader,
    *,
    timing: StreamTiming | None = None,
    disconnected: DisconnectCheck | None = None,
) -> AsyncIterator[str]:
    """The text of an ``text/event-stream`` for one order, chunk by chunk."""
    timing = timing or DEFAULT_TIMING
    started = time.monotonic()
    last_sent_at = started
    last_view: dict[str, Any] | None = None
    yield f"retry: {RETRY_MS}\n\n"
    while True:
        view = await load_view()
        if view is None:
            return
        now = time.monotonic()
        if last_view is None or _comparable(view) != _comparable(last_view):
            last_view = view
            last_sent_at = now
            yield format_event(view)
            if view["status"] in TERMINAL_STATUSES:
                return
        elif now - last_sent_at >= timing.heartbeat_interval:
            last_sent_at = now
            yield ": heartbeat\n\n"
        if now - started >= timing.max_lifetime:
            return
        await asyncio.sleep(timing.poll_interval)
        if disconnected is not None and await disconnected():
            return
