"""Resend and the delivery log, through the signed merchant API and through the CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
import typer
from sqlalchemy import select
from tests.support import PAYOUT, MerchantKeys, Signer
from tests.webhooks.webhook_support import (
    create_orders,
    drive,
    events_by_id,
    make_worker,
    set_merchant_url,
)
from typer.testing import CliRunner

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.merchants.service import create_merchant
from stablegate.models import AuditEntry, Merchant
from stablegate.secret_box import load_secret_box
from stablegate.webhooks.commands import rotate_webhook_secret_command, webhooks_app

RESEND = "/api/v1/webhook/resend"
LOG = "/api/v1/webhook/deliveries"
H = 3_600_000


def mock_receiver(status: Callable[[str], int]) -> Callable[[], httpx.AsyncClient]:
    """A client factory whose transport answers ``status(eventId)`` with a short body."""

    def handler(request: httpx.Request) -> httpx.Response:
        code = status(request.headers["webhook-id"])
        return httpx.Response(code, content=f"got it ({code})".encode())

    return lambda: httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def deliver_all(
    gateway: GatewayContext, clock: FakeClock, status: Callable[[str], int], hours: int = 73
) -> None:
    async with make_worker(gateway, clock, http_client_factory=mock_receiver(status)) as worker:
        await drive(gateway, clock, [worker], until_ms=clock.now_ms() + hours * H)


async def signed_post(client: httpx.AsyncClient, signer: Signer, payload: Any) -> httpx.Response:
    body = json.dumps(payload).encode()
    return await client.post(RESEND, content=body, headers=signer.headers("POST", RESEND, body))


async def signed_get(client: httpx.AsyncClient, signer: Signer, query: str = "") -> httpx.Response:
    url = f"{LOG}?{query}" if query else LOG
    return await client.get(url, headers=signer.headers("GET", LOG, query=query))


async def other_merchant(gateway: GatewayContext, clock: FakeClock) -> str:
    async with session_scope(gateway.sessions) as session:
        created = await create_merchant(
            session,
            gateway.secret_box,
            clock,
            name="Other Shop",
            payout_address=PAYOUT,
            chain_ids=[31337],
            notify_url="http://93.184.216.34/other",
        )
    return created.merchant_id


async def test_resend_one_event_by_api(
    gateway: GatewayContext,
    client: httpx.AsyncClient,
    clock: FakeClock,
    merchant: MerchantKeys,
    signer: Signer,
) -> None:
    await set_merchant_url(gateway, merchant.merchant_id, "http://93.184.216.34/hook")
    [[event_id]] = await create_orders(gateway, clock, merchant.merchant_id, 1)
    await deliver_all(gateway, clock, lambda _e: 200)
    assert (await events_by_id(gateway))[event_id].status == "delivered"

    response = await signed_post(client, signer, {"eventId": event_id})
    assert response.status_code == 200, response.text
    assert response.json() == {"count": 1}
    assert response.headers["X-RateLimit-Limit"] == "100"
    event = (await events_by_id(gateway))[event_id]
    assert (event.status, event.attempts, event.next_attempt_at_ms) == (
        "pending",
        0,
        clock.now_ms(),
    )
    await deliver_all(gateway, clock, lambda _e: 200)
    assert (await events_by_id(gateway))[event_id].status == "delivered"
    log = (await signed_get(client, signer)).json()["items"]
    assert [(d["attempt"], d["outcome"]) for d in log] == [(1, "success"), (1, "success")]
    async with session_scope(gateway.sessions) as session:
        audit = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "webhook.resend"))
        ).one()
    assert audit.subject == merchant.merchant_id and audit.details["eventId"] == event_id
    assert audit.actor.startswith("api:key_")


async def test_resend_all_failed_events_of_the_merchant_only(
    gateway: GatewayContext,
    client: httpx.AsyncClient,
    clock: FakeClock,
    merchant: MerchantKeys,
    signer: Signer,
) -> None:
    await set_merchant_url(gateway, merchant.merchant_id, "http://93.184.216.34/hook")
    mine = [i for [i] in await create_orders(gateway, clock, merchant.merchant_id, 3)]
    others = await other_merchant(gateway, clock)
    [[theirs]] = await create_orders(gateway, clock, others, 1)
    failing = {mine[0], mine[1], theirs}
    await deliver_all(gateway, clock, lambda e: 503 if e in failing else 200)
    events = await events_by_id(gateway)
    assert [events[i].status for i in [*mine, theirs]] == [
        "failed",
        "failed",
        "delivered",
        "failed",
    ]

    response = await signed_post(client, signer, {"failed": True})
    assert response.status_code == 200 and response.json() == {"count": 2}
    events = await events_by_id(gateway)
    assert [events[i].status for i in [*mine, theirs]] == [
        "pending",
        "pending",
        "delivered",
        "failed",  # another merchant's event is untouched
    ]
    # ... and cannot be resent by id either.
    response = await signed_post(client, signer, {"eventId": theirs})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    await deliver_all(gateway, clock, lambda _e: 200)
    events = await events_by_id(gateway)
    assert [events[i].status for i in mine] == ["delivered"] * 3


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({}, 400, "invalid_request"),
        ({"failed": False}, 400, "invalid_request"),
        ({"eventId": "evt_x", "failed": True}, 400, "invalid_request"),
        ({"eventId": 5}, 400, "invalid_request"),
        ({"eventId": ""}, 400, "invalid_request"),
        ({"failed": "yes"}, 400, "invalid_request"),
        ({"eventId": "evt_unknown"}, 404, "not_found"),
        ([1, 2], 400, "invalid_body"),
    ],
)
async def test_resend_refuses_bad_requests(
    client: httpx.AsyncClient, signer: Signer, payload: Any, status: int, code: str
) -> None:
    response = await signed_post(client, signer, payload)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_resend_needs_a_signature(client: httpx.AsyncClient, merchant: MerchantKeys) -> None:
    response = await client.post(
        RESEND, json={"failed": True}, headers={"BlockATM-API-Key": merchant.api_key}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "signature_required"


async def test_the_delivery_log_always_needs_a_signature(
    client: httpx.AsyncClient, merchant: MerchantKeys, signer: Signer
) -> None:
    response = await client.get(LOG, headers={"BlockATM-API-Key": merchant.api_key})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "signature_required"
    assert (await signed_get(client, signer)).status_code == 200


async def test_the_delivery_log_filters_and_pages(
    gateway: GatewayContext,
    client: httpx.AsyncClient,
    clock: FakeClock,
    merchant: MerchantKeys,
    signer: Signer,
) -> None:
    await set_merchant_url(gateway, merchant.merchant_id, "http://93.184.216.34/hook")
    orders = await create_orders(gateway, clock, merchant.merchant_id, 2, events_per_order=2)
    others = await other_merchant(gateway, clock)
    await create_orders(gateway, clock, others, 1)
    tries: dict[str, int] = {}

    def twice_then_ok(event_id: str) -> int:  # every event fails twice, then gets through
        tries[event_id] = tries.get(event_id, 0) + 1
        return 500 if tries[event_id] <= 2 else 204

    await deliver_all(gateway, clock, twice_then_ok)

    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = "limit=5" + (f"&cursor={cursor}" if cursor else "")
        response = await signed_get(client, signer, query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body)
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert [len(p["items"]) for p in pages] == [5, 5, 2]  # 4 events x 3 attempts, no others
    items = [d for p in pages for d in p["items"]]
    assert [d["attemptTime"] for d in items] == sorted(
        (d["attemptTime"] for d in items), reverse=True
    )
    ids = {d["deliveryId"] for d in items}
    assert len(ids) == 12
    first = items[-1]
    assert first["eventId"] == orders[0][0] or first["eventId"] == orders[1][0]
    assert (first["attempt"], first["outcome"], first["responseStatus"]) == (1, "failure", 500)
    assert first["responseBody"] == "got it (500)"
    assert first["url"] == "http://93.184.216.34/hook"
    assert first["type"] == "order.created" and first["sequence"] == 1
    assert first["eventStatus"] == "delivered"
    assert isinstance(first["latencyMs"], int) and first["error"] is None

    order_id = (await events_by_id(gateway))[orders[0][0]].order_id
    by_order = (await signed_get(client, signer, f"orderId={order_id}")).json()["items"]
    assert {d["eventId"] for d in by_order} == set(orders[0]) and len(by_order) == 6
    by_event = (await signed_get(client, signer, f"eventId={orders[1][1]}")).json()["items"]
    assert [(d["attempt"], d["outcome"]) for d in by_event] == [
        (3, "success"),
        (2, "failure"),
        (1, "failure"),
    ]
    bad = await signed_get(client, signer, "cursor=not-a-cursor")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"
    too_many = await signed_get(client, signer, "limit=101")
    assert too_many.status_code == 400


# --- CLI -----------------------------------------------------------------------------------

runner = CliRunner()
cli = typer.Typer()
cli.add_typer(webhooks_app, name="webhooks")
merchant_cli = typer.Typer()
merchant_cli.command("rotate-webhook-secret")(rotate_webhook_secret_command)
cli.add_typer(merchant_cli, name="merchant")


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    assert settings.secret_key is not None and settings.chains_file is not None
    monkeypatch.setenv("STABLEGATE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("STABLEGATE_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("STABLEGATE_SECRET_KEY", settings.secret_key.get_secret_value())
    monkeypatch.setenv("STABLEGATE_CHAINS_FILE", str(settings.chains_file))
    return settings


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
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_cli_lists_events_and_the_delivery_log(
    cli_env: Settings, outcomes: dict[str, str], merchant: MerchantKeys
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
    table = runner.invoke(cli, ["webhooks", "list", "--merchant-id", merchant.merchant_id])
    assert table.exit_code == 0 and "eventId" in table.stdout and "failed" in table.stdout
    bad = runner.invoke(cli, ["webhooks", "list", "--status", "lost"])
    assert bad.exit_code == 2 and "invalid_status" in bad.output


def test_cli_resends_one_event_or_all_failed_ones(
    cli_env: Settings, outcomes: dict[str, str], merchant: MerchantKeys
) -> None:
    assert invoke_json("webhooks", "resend", "--event-id", outcomes["delivered"]) == {"count": 1}
    assert invoke_json("webhooks", "resend", "--failed", "--merchant-id", merchant.merchant_id) == {
        "count": 2
    }
    listed = invoke_json("webhooks", "list", "--merchant-id", merchant.merchant_id)
    assert {e["status"] for e in listed} == {"pending"}
    assert all(e["attempts"] == 0 and e["nextAttemptTime"] for e in listed)

    for args in ([], ["--failed"], ["--event-id", "evt_x", "--failed", "--merchant-id", "m"]):
        result = runner.invoke(cli, ["webhooks", "resend", *args])
        assert result.exit_code == 2
    unknown = runner.invoke(cli, ["webhooks", "resend", "--event-id", "evt_unknown"])
    assert unknown.exit_code == 2 and "not_found" in unknown.output


def test_cli_rotates_the_webhook_secret(cli_env: Settings, merchant: MerchantKeys) -> None:
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

    unknown = runner.invoke(cli, ["merchant", "rotate-webhook-secret", "--merchant-id", "mch_no"])
    assert unknown.exit_code == 2 and "not_found" in unknown.output
