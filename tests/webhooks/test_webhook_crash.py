"""`stablegate deliver` as a real process: SIGKILL mid-burst loses nothing; SIGTERM stops it."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support import MerchantKeys
from tests.webhooks.webhook_support import (
    Receiver,
    create_orders,
    drive,
    events_by_id,
    make_worker,
    set_merchant_url,
)

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock, SystemClock
from stablegate.config import Settings

DELIVER = "from stablegate.webhooks.commands import deliver_command; deliver_command()"


def deliver_env(settings: Settings) -> dict[str, str]:
    assert settings.secret_key is not None
    return {
        **os.environ,
        "STABLEGATE_DATA_DIR": str(settings.data_dir),
        "STABLEGATE_DATABASE_URL": settings.effective_database_url,
        "STABLEGATE_SECRET_KEY": settings.secret_key.get_secret_value(),
        "STABLEGATE_ALLOW_PRIVATE_WEBHOOKS": "true",
        "STABLEGATE_LOG_FORMAT": "json",
        "STABLEGATE_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(SystemClock()) as server:
        yield server


@pytest.fixture
def deliver_log(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "deliver.log"
    yield path
    if path.exists() and path.stat().st_size:
        sys.stderr.write(path.read_text()[-4000:])


async def start_deliver(settings: Settings, log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-c", DELIVER, env=deliver_env(settings), stdout=out, stderr=out
        )


async def wait_until(
    predicate: Callable[[], bool], seconds: float, proc: asyncio.subprocess.Process
) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert proc.returncode is None, "the deliver process exited"
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.mark.slow
async def test_sigkill_in_the_middle_of_a_burst_of_1000_events_loses_none(
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    settings: Settings,
    receiver: Receiver,
    deliver_log: Path,
) -> None:
    await set_merchant_url(gateway, merchant.merchant_id, receiver.url())
    orders = await create_orders(gateway, clock, merchant.merchant_id, 250, events_per_order=4)
    all_ids = set(itertools.chain(*orders))
    assert len(all_ids) == 1000
    receiver.delay = 0.002

    proc = await start_deliver(settings, deliver_log)
    try:
        await wait_until(lambda: len(receiver.snapshot()) >= 150, 120, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == -signal.SIGKILL

    events = await events_by_id(gateway)
    delivered_before = sum(e.status == "delivered" for e in events.values())
    assert 0 < delivered_before < 1000  # really mid-burst
    # What the dead worker had claimed: only these may have gone out without being recorded.
    claimed_at_kill = {
        e.id for e in events.values() if e.status == "pending" and e.lease_until_ms is not None
    }

    # A second worker, once the dead one's leases (120 s) have run out, finishes the burst.
    later = FakeClock(SystemClock().now_ms() + 121_000)
    async with make_worker(gateway, later) as worker:
        await drive(gateway, later, [worker], until_ms=later.now_ms())

    hits = receiver.snapshot()
    received = [h.event_id for h in hits]
    assert set(received) == all_ids  # none lost
    assert {e.status for e in (await events_by_id(gateway)).values()} == {"delivered"}
    # At least once: only what the dead worker had claimed may arrive twice, and only twice.
    counts = Counter(received)
    assert {i for i, n in counts.items() if n > 1} <= claimed_at_kill
    assert max(counts.values()) <= 2
    for ids in orders:  # each order's events still first arrived in order
        assert list(dict.fromkeys(i for i in received if i in ids)) == ids


async def test_sigterm_stops_the_deliver_process_cleanly(
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    settings: Settings,
    receiver: Receiver,
    deliver_log: Path,
) -> None:
    await set_merchant_url(gateway, merchant.merchant_id, receiver.url())
    orders = await create_orders(gateway, clock, merchant.merchant_id, 10, events_per_order=2)
    proc = await start_deliver(settings, deliver_log)
    try:
        await wait_until(lambda: len(receiver.snapshot()) >= 20, 120, proc)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert sorted(h.event_id for h in receiver.snapshot()) == sorted(itertools.chain(*orders))
    assert {e.status for e in (await events_by_id(gateway)).values()} == {"delivered"}
