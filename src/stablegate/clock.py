"""The one clock every time-dependent rule reads (expiry, retries, bans, leases, replay windows).

Production uses :class:`SystemClock`; tests pass a :class:`FakeClock` and move it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock Unix time in milliseconds."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes backwards."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock tests move by hand; both readings advance together."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._ms = start_ms
        self._mono = 1000.0
        self.sleeps: list[float] = []  # what sleep() was asked to wait, in order

    def now_ms(self) -> int:
        return self._ms

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._ms += round(seconds * 1000)
        self._mono += seconds

    async def sleep(self, seconds: float) -> None:
        """Stands in for ``asyncio.sleep``: moves the clock instead of waiting (and yields)."""
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)

    def set_ms(self, ms: int) -> None:
        self._mono += (ms - self._ms) / 1000
        self._ms = ms
