"""``stablegate webhooks list|deliveries|resend`` and ``stablegate merchant
rotate-webhook-secret``, against the events of the test merchant."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest_asyncio
from tests.cli_env import cli_env, runner  # noqa: F401  (fixture)
from tests.support import MerchantKeys
from tests.webhooks.webhook_support import create_orders, deliver_all, set_merchant_url

from stablegate.api.context import GatewayContext
from stablegate.cli import app
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.models import Merchant
from stablegate.secret_box import load_secret_box


@pytest_asyncio.fixture
async def outcomes(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> dict[str, str]:
    """Three events of the test merchant: one delivered, two failed for good."""
    await set_merchant_url(gateway, merchant.merchant_id, "http://93.184.216.34/hook")
    ids = [i for [i] in await create_orders(gateway, clock, merchant.merchant_id, 3)]
    await deliver_all(gateway, clock, lambda e: 200 if e == ids[0] else 500)
    return {"delivered": ids[0], "failed": ids[1], "failed_too": ids[2]}


def invoke_json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_cli_lists_events_and_the_delivery_log(
    cli_env: Settings,  # noqa: F811
    outcomes: dict[str, str],
    merchant: MerchantKeys,
) -> None:
    listed = invoke_json("webhooks", "list", "--merchant-id", merchant.merchant_id)
    assert {e["eventId"]: e["status"] for e in listed} == {
        outcomes["delivered"]: "delivered",
        outcomes["failed"]: "failed",
        outcomes["failed_too"]: "failed",
    }
    failed = invoke_json("webhooks", "list", "--status", "failed")
    assert {e["eventId"] for e in failed} == {outcomes["failed"], outcomes["failed_too"]}
    log = invoke_json("webhooks", "deliveries", "--event-id", outcomes["failed"], "--limit", "1000")
    assert len(log) >= 24 and {d["outcome"] for d in log} == {"failure"}
    assert [d["attempt"] for d in log] == list(range(len(log), 0, -1))
    table = runner.invoke(app, ["webhooks", "list", "--merchant-id", merchant.merchant_id])
    assert table.exit_code == 0 and "eventId" in table.stdout and "failed" in table.stdout
    bad = runner.invoke(app, ["webhooks", "list", "--status", "lost"])
    assert bad.exit_code == 2 and "invalid_status" in bad.output


def test_cli_resends_one_event_or_all_failed_ones(
    cli_env: Settings,  # noqa: F811
    outcomes: dict[str, str],
    merchant: MerchantKeys,
) -> None:
    assert invoke_json("webhooks", "resend", "--event-id", outcomes["delivered"]) == {"count": 1}
    assert invoke_json("webhooks", "resend", "--failed", "--merchant-id", merchant.merchant_id) == {
        "count": 2
    }
    listed = invoke_json("webhooks", "list", "--merchant-id", merchant.merchant_id)
    assert {e["status"] for e in listed} == {"pending"}
    assert all(e["attempts"] == 0 and e["nextAttemptTime"] for e in listed)

    for args in ([], ["--failed"], ["--event-id", "evt_x", "--failed", "--merchant-id", "m"]):
        result = runner.invoke(app, ["webhooks", "resend", *args])
        assert result.exit_code == 2
    unknown = runner.invoke(app, ["webhooks", "resend", "--event-id", "evt_unknown"])
    assert unknown.exit_code == 2 and "not_found" in unknown.output


def test_cli_rotates_the_webhook_secret(
    cli_env: Settings,  # noqa: F811
    merchant: MerchantKeys,
) -> None:
    rotated = invoke_json(
        "merchant", "rotate-webhook-secret", "--merchant-id", merchant.merchant_id
    )
    assert rotated["merchantId"] == merchant.merchant_id
    assert rotated["webhookSecret"].startswith("whsec_")
    assert rotated["webhookSecret"] != merchant.webhook_secret

    async def stored() -> Merchant:
        engine = make_engine(cli_env.effective_database_url)
        try:
            async with session_scope(make_sessionmaker(engine)) as session:
                row = await session.get(Merchant, merchant.merchant_id)
                assert row is not None
                return row
        finally:
            await engine.dispose()

    row = asyncio.run(stored())
    box = load_secret_box(cli_env)
    assert box.open(row.webhook_secret_enc) == rotated["webhookSecret"]
    assert row.webhook_secret_prev_enc is not None
    assert box.open(row.webhook_secret_prev_enc) == merchant.webhook_secret
    assert row.webhook_secret_prev_until_ms == rotated["previousValidUntil"]

    unknown = runner.invoke(app, ["merchant", "rotate-webhook-secret", "--merchant-id", "mch_no"])
    assert unknown.exit_code == 2 and "not_found" in unknown.output
