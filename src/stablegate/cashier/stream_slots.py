"""How many live-status streams may be open at once: per client IP and per API process.

A stream holds a socket and a task for up to its lifetime, so the limit is on streams open now,
not on streams opened per minute (the per-IP request budget counts each stream once). Above
either cap the stream is refused with 429 ``too_many_streams``; the cashier page then polls.
IPs are counted by :func:`~stablegate.auth.client_ip.ban_subject` (IPv6 per /64), like the
rate limits.
"""

from __future__ import annotations

from fastapi import Request

from stablegate.auth.client_ip import ban_subject
from stablegate.errors import RateLimited

# A slot frees whenever a stream ends; the page polls meanwhile and does not retry the stream.
RETRY_AFTER_S = 30


class StreamSlot:
    """One open stream's place; :meth:`release` gives it back (once, however often called)."""

    def __init__(self, slots: StreamSlots, subject: str) -> None:
        self._slots = slots
        self._subject = subject
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots._give_back(self._subject)


class StreamSlots:
    def __init__(self, *, per_ip: int, per_process: int) -> None:
        self.per_ip = per_ip
        self.per_process = per_process
        self.open = 0
        self._by_subject: dict[str, int] = {}

    def open_for(self, ip: str) -> int:
        return self._by_subject.get(ban_subject(ip), 0)

    def acquire(self, ip: str) -> StreamSlot:
        """A slot for one stream from ``ip``, or :class:`RateLimited` ``too_many_streams``."""
        subject = ban_subject(ip)
        if self._by_subject.get(subject, 0) >= self.per_ip:
            raise RateLimited(
                "too many live streams from this address; poll the order instead",
                code="too_many_streams",
                retry_after=RETRY_AFTER_S,
            )
        if self.open >= self.per_process:
            raise RateLimited(
                "this server has too many live streams open; poll the order instead",
                code="too_many_streams",
                retry_after=RETRY_AFTER_S,
            )
        self.open += 1
        self._by_subject[subject] = self._by_subject.get(subject, 0) + 1
        return StreamSlot(self, subject)

    def _give_back(self, subject: str) -> None:
        self.open -= 1
        left = self._by_subject[subject] - 1
        if left:
            self._by_subject[subject] = left
        else:
            del self._by_subject[subject]


def app_stream_slots(request: Request) -> StreamSlots:
    """The slots of the app serving ``request`` (put in ``app.state`` by the app)."""
    slots: StreamSlots = request.app.state.stream_slots
    return slots
