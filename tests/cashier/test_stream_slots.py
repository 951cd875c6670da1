"""Stream slots: caps per client IP (IPv6 per /64) and per process, and slots given back once."""

from __future__ import annotations

import pytest

from stablegate.cashier.stream_slots import StreamSlots
from stablegate.errors import RateLimited


def test_per_ip_and_per_process_caps() -> None:
    slots = StreamSlots(per_ip=2, per_process=3)
    first = [slots.acquire("198.51.100.1") for _ in range(2)]
    with pytest.raises(RateLimited) as refused:
        slots.acquire("198.51.100.1")
    assert (refused.value.status, refused.value.code) == (429, "too_many_streams")
    assert "from this address" in refused.value.message
    assert refused.value.headers["Retry-After"] == "30"

    slots.acquire("198.51.100.2")
    with pytest.raises(RateLimited) as full:
        slots.acquire("198.51.100.3")
    assert full.value.code == "too_many_streams" and "this server" in full.value.message
    assert slots.open == 3

    # Released once, however often release() is called.
    first[0].release()
    first[0].release()
    assert slots.open == 2 and slots.open_for("198.51.100.1") == 1
    slots.acquire("198.51.100.3")
    assert slots.open == 3


def test_ipv6_clients_are_counted_per_64() -> None:
    slots = StreamSlots(per_ip=1, per_process=10)
    held = slots.acquire("2001:db8:1:2::1")
    with pytest.raises(RateLimited):
        slots.acquire("2001:db8:1:2:ffff::9")  # same /64
    slots.acquire("2001:db8:1:3::1")  # another /64
    held.release()
    assert slots.open_for("2001:db8:1:2::abc") == 0
