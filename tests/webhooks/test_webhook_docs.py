"""The webhook verifier the README shows (step 4), run as written against real deliveries."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.docs_support import exec_block
from tests.support import PAYOUT, MerchantKeys
from tests.webhooks.webhook_support import (
    Hit,
    Receiver,
    create_orders,
    drive,
    make_worker,
    set_merchant_url,
)

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.merchants.service import create_merchant


def readme_verifier(clock: FakeClock) -> dict[str, Any]:
    """verify_v1 / verify_v2 from the README, reading the test clock as their time."""
    names = exec_block("README.md", "def verify_v1(")
    names["time"] = types.SimpleNamespace(time=lambda: clock.now_ms() / 1000)
    return names


@pytest.fixture
def receiver(clock: FakeClock) -> Iterator[Receiver]:
    with Receiver(clock) as server:
        yield server


async def test_the_readme_verifier_accepts_yours_and_rejects_another_merchants(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys, receiver: Receiver
) -> None:
    async with session_scope(gateway.sessions) as session:
        other = await create_merchant(
            session, gateway.secret_box, clock, name="A", payout_address=PAYOUT, chain_ids=[31337]
        )
    # Both merchants' webhooks reach this merchant's endpoint (the other one chose its URL).
    for merchant_id in (merchant.merchant_id, other.merchant_id):
        await set_merchant_url(gateway, merchant_id, receiver.url(merchant_id))
    await create_orders(gateway, clock, merchant.merchant_id, 1)
    await create_orders(gateway, clock, other.merchant_id, 1)
    async with make_worker(gateway, clock) as worker:
        await drive(gateway, clock, [worker], until_ms=clock.now_ms())
    hits: dict[str, Hit] = {h.path.strip("/"): h for h in receiver.snapshot()}
    mine, theirs = hits[merchant.merchant_id], hits[other.merchant_id]

    docs = readme_verifier(clock)
    verify_v1, verify_v2 = docs["verify_v1"], docs["verify_v2"]
    pem = gateway.signing_key.public_pem.encode()
    me = merchant.merchant_id

    def headers(hit: Hit, **changes: str) -> httpx.Headers:
        return httpx.Headers({**hit.headers, **changes})

    event = verify_v1(headers(mine), mine.body, pem, me)
    assert event is not None and event["merchantId"] == me
    assert verify_v2(headers(mine), mine.body, merchant.webhook_secret, me) == event
    # The other merchant's webhook is genuinely signed by the gateway ...
    assert verify_v1(headers(theirs), theirs.body, pem, other.merchant_id) is not None
    # ... and not mine.
    assert verify_v1(headers(theirs), theirs.body, pem, me) is None
    assert verify_v2(headers(theirs), theirs.body, merchant.webhook_secret, me) is None
    # Tampering, another key, a stale or missing time.
    relabelled = theirs.body.replace(other.merchant_id.encode(), me.encode())
    assert relabelled != theirs.body
    assert verify_v1(headers(theirs), relabelled, pem, me) is None
    assert (
        verify_v1(headers(mine, **{"BlockATM-Signature-V1": "bm9wZQ=="}), mine.body, pem, me)
        is None
    )
    assert verify_v1(headers(mine, **{"BlockATM-Signature-V1": "%%"}), mine.body, pem, me) is None
    assert verify_v2(headers(mine), mine.body, "whsec_wrong", me) is None
    clock.advance(301)
    assert verify_v1(headers(mine), mine.body, pem, me) is None
    assert verify_v2(headers(mine), mine.body, merchant.webhook_secret, me) is None
    without_time = httpx.Headers({k: v for k, v in mine.headers.items() if "time" not in k})
    assert verify_v2(without_time, mine.body, merchant.webhook_secret, me) is None
