"""``stablegate orders show|list|mark-completed`` on an order of the test merchant."""

from __future__ import annotations

import json

import pytest
import pytest_asyncio
from tests.cli_env import cli_env, runner  # noqa: F401  (fixture)
from tests.support import TEST_USDT18, MerchantKeys

from stablegate.api.context import GatewayContext
from stablegate.cli import app
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.console import iso_time
from stablegate.db.engine import session_scope
from stablegate.models import Order, Payment
from stablegate.models.payment import PaymentKind, PaymentStatus
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


WRONG_TX = "0x" + "ab" * 32
STRANGER_TOKEN = "0x" + "42" * 20


@pytest_asyncio.fixture
async def wrong_token_paid(gateway: GatewayContext, clock: FakeClock, order: Order) -> Order:
    """10 USDT18 (a token of the registry, not the order's USDT) and 7 base units of a token
    outside the registry sent to the order's deposit address."""
    async with session_scope(gateway.sessions) as session:
        for position, (token, amount, kind) in enumerate(
            [
                (TEST_USDT18, 10 * 10**18, PaymentKind.WRONG_TOKEN),
                (STRANGER_TOKEN, 7, PaymentKind.UNSUPPORTED_TOKEN),
            ]
        ):
            session.add(
                Payment(
                    chain_id=31337,
                    tx_hash=WRONG_TX,
                    log_position=position,
                    log_index=position,
                    block_number=12,
                    block_hash="0x" + "cd" * 32,
                    block_time_ms=clock.now_ms(),
                    token_address=token,
                    from_address="0x" + "11" * 20,
                    to_address=order.to_address,
                    amount=amount,
                    order_id=order.id,
                    status=PaymentStatus.FINAL,
                    kind=kind,
                    late=False,
                    credited=False,
                    created_at_ms=clock.now_ms(),
                    updated_at_ms=clock.now_ms(),
                )
            )
    return order


def test_show_at_80_columns_names_each_payment_by_kind(
    cli_env: Settings,  # noqa: F811
    wrong_token_paid: Order,
    merchant: MerchantKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 9, items 2 and 11: a wrong-token payment reads as one, not as "paid 0"; ids,
    hashes and addresses whole; times in ISO 8601 UTC."""
    monkeypatch.setenv("COLUMNS", "80")
    order = wrong_token_paid
    shown = runner.invoke(
        app, ["orders", "show", "--merchant-id", merchant.merchant_id, "--order-id", order.id]
    )
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert "\u2026" not in out and "None" not in out
    lines = out.splitlines()
    assert any(line.split() == ["orderId", order.id] for line in lines)
    assert any(line.split() == ["toAddress", order.to_address] for line in lines)
    assert any(line.split() == ["createTime", iso_time(order.create_time_ms)] for line in lines)
    assert iso_time(order.create_time_ms).endswith("Z")
    assert "payment 1 of 2" in out and "payment 2 of 2" in out
    assert out.count(WRONG_TX) == 2
    assert "wrong_token: not the order's USDT; not counted, to be returned" in out
    assert any(line.split() == ["amount", "10", "USDT18"] for line in lines)
    assert f"7 base units of token {STRANGER_TOKEN}" in out
    assert "unsupported_token" in out
    # --json is the order view as before, without the payments.
    as_json = runner.invoke(
        app,
        ["orders", "show", "--merchant-id", merchant.merchant_id, "--order-id", order.id, "--json"],
    )
    assert as_json.exit_code == 0, as_json.output
    view = json.loads(as_json.stdout)
    assert view["orderId"] == order.id and "payments" not in view
    assert view["createTime"] == order.create_time_ms


def test_list_is_whole_at_80_columns_and_a_table_when_it_fits(
    cli_env: Settings,  # noqa: F811
    order: Order,
    merchant: MerchantKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    command = ["orders", "list", "--merchant-id", merchant.merchant_id]
    monkeypatch.setenv("COLUMNS", "80")
    narrow = runner.invoke(app, command)
    assert narrow.exit_code == 0, narrow.output
    assert "\u2026" not in narrow.stdout and order.id in narrow.stdout
    assert all(len(line) <= 80 for line in narrow.stdout.splitlines())
    assert f"createTime  {iso_time(order.create_time_ms)}" in narrow.stdout
    monkeypatch.setenv("COLUMNS", "250")
    wide = runner.invoke(app, command)
    assert wide.exit_code == 0, wide.output
    [row] = [line for line in wide.stdout.splitlines() if order.id in line]
    assert "A-1" in row and "pending" in row and iso_time(order.create_time_ms) in row


def test_a_merchant_id_that_does_not_exist_is_an_error(
    cli_env: Settings,  # noqa: F811
    order: Order,
) -> None:
    for command in (
        ["orders", "list", "--merchant-id", "mch_nope"],
        ["orders", "list", "--merchant-id", "mch_nope", "--json"],
        ["orders", "show", "--merchant-id", "mch_nope", "--order-id", order.id],
        ["webhooks", "list", "--merchant-id", "mch_nope"],
        ["webhooks", "deliveries", "--merchant-id", "mch_nope"],
        ["webhooks", "resend", "--failed", "--merchant-id", "mch_nope"],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert "merchant mch_nope not found" in result.stderr, command
        assert result.stdout == "", command
