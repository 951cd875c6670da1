"""``stablegate orders show|list|mark-completed`` on an order of the test merchant."""

from __future__ import annotations

import json

import pytest_asyncio
from tests.cli_env import cli_env, runner  # noqa: F401  (fixture)
from tests.support import MerchantKeys

from stablegate.api.context import GatewayContext
from stablegate.cli import app
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.db.engine import session_scope
from stablegate.models import Order
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.service import create_order


@pytest_asyncio.fixture
async def order(gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys) -> Order:
    request = CreateOrderRequest.model_validate(
        {"chainId": 31337, "symbol": "USDT", "amount": "1.5", "orderNo": "A-1"}
    )
    async with session_scope(gateway.sessions) as session:
        created, _ = await create_order(
            session, clock, gateway.orders, merchant_id=merchant.merchant_id, req=request
        )
    return created


def test_show_list_and_mark_completed(
    cli_env: Settings,  # noqa: F811
    order: Order,
    merchant: MerchantKeys,
) -> None:
    merchant_option = ["--merchant-id", merchant.merchant_id]

    shown = runner.invoke(app, ["orders", "show", *merchant_option, "--order-no", "A-1", "--json"])
    assert shown.exit_code == 0, shown.output
    view = json.loads(shown.stdout)
    assert (view["orderId"], view["status"], view["amount"]) == (order.id, "pending", "1.5")
    table = runner.invoke(app, ["orders", "show", *merchant_option, "--order-id", order.id])
    assert table.exit_code == 0 and order.id in table.stdout and "pending" in table.stdout

    listed = runner.invoke(app, ["orders", "list", *merchant_option, "--json"])
    assert listed.exit_code == 0 and [v["orderId"] for v in json.loads(listed.stdout)] == [order.id]
    rows = runner.invoke(app, ["orders", "list", *merchant_option])
    assert rows.exit_code == 0, rows.output
    assert "orderNo" in rows.stdout and "A-1" in rows.stdout and "31337" in rows.stdout

    complete = ["orders", "mark-completed", "--order-id", order.id, "--actor", "ops"]
    done = runner.invoke(app, [*complete, "--reason", "paid by bank transfer", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["status"] == "completed"
    again = runner.invoke(app, [*complete, "--reason", "again"])
    assert again.exit_code == 2 and "order_not_completable" in again.output
    unknown = runner.invoke(app, ["orders", "show", *merchant_option, "--order-id", "nope"])
    assert unknown.exit_code == 2 and "not_found" in unknown.output
