"""A delivery attempt that makes no progress is abandoned by the watchdog, logged with its
stack, and frees its slot: the worker goes on delivering."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs
from tests.support import MerchantKeys
from tests.webhooks.webhook_support import Hit, Receiver, create_orders, events_by_id

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock, SystemClock
from stablegate.webhooks.worker import WebhookWorker


@pytest.fixture
def receiver(clock: FakeClock) -> Iterator[Receiver]:
    with Receiver(clock) as server:
        yield server


async def test_a_stuck_attempt_is_abandoned_and_the_worker_goes_on(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys, receiver: Receiver
) -> None:
    released = threading.Event()

    async def respond(hit: Hit) -> int:
        if hit.path == "/stuck":
            await asyncio.to_thread(released.wait)  # holds the request open
        return 200

    receiver.respond = respond
    [[stuck]] = await create_orders(
        gateway, clock, merchant.merchant_id, 1, notify_url=receiver.url("stuck")
    )
    settings = gateway.settings.model_copy(
        update={"allow_private_webhooks": True, "step_timeout_s": 1.0}
    )
    worker = WebhookWorker(
        gateway.sessions,
        SystemClock(),
        settings,
        gateway.secret_box,
        gateway.signing_key,
        # No client timeout: only the watchdog can end the stuck attempt.
        http_client_factory=lambda: httpx.AsyncClient(timeout=None, trust_env=False),
        max_per_host=1,  # the stuck attempt holds the host's only slot until abandoned
        poll_interval=0.05,
    )
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(worker.run_forever(stop))

        def stalled() -> list[dict[str, Any]]:
            return [e for e in logs if e["event"] == "step_stalled"]

        try:
            deadline = time.monotonic() + 60
            while not stalled():
                assert time.monotonic() < deadline, "timed out waiting for the stall"
                await asyncio.sleep(0.05)
            # Created after the stall, for the same host: delivered through the freed slot.
            [[later]] = await create_orders(
                gateway, clock, merchant.merchant_id, 1, notify_url=receiver.url("ok")
            )
            while (await events_by_id(gateway))[later].status != "delivered":
                assert time.monotonic() < deadline, "timed out waiting for the later event"
                await asyncio.sleep(0.05)
        finally:
            released.set()
            stop.set()
            await asyncio.wait_for(task, 30)
    first = stalled()[0]
    assert first["worker"] == "webhooks" and first["step"] == "attempt"
    functions = [line.rsplit(" in ", 1)[1] for line in first["stack"] if " in " in line]
    assert functions[:2] == ["attempt", "_send"]
    assert "post_pinned" in functions
    # The abandoned attempt recorded nothing: its event waits for its lease to run out.
    assert (await events_by_id(gateway))[stuck].status == "pending"
