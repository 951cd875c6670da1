"""An invoice offering several payment methods: made on its default one, not activated, listed
with no destination until the customer picks; the pick re-points the order (a fiat invoice
priced again at the rate of that moment) and every refusal changes nothing. SQLite and
PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from tests.chain_files import write_chains_file
from tests.compat.greenfield.greenfield_support import GreenfieldKeys, create_invoice
from tests.support import NOW_MS, TEST_USDT, TEST_USDT18

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.compat.greenfield.method_choice import choose_method, offered_methods
from stablegate.db.engine import session_scope
from stablegate.errors import GatewayError
from stablegate.models import AmountOffset, Merchant, Order, Payment
from stablegate.models.payment import PaymentKind, PaymentStatus
from stablegate.orders.service import deposit_address
from stablegate.rates import store
from stablegate.rates.store import GATEWAY_SCOPE

TWO = ["USDT-DEVCHAIN", "USDT18_DEVCHAIN"]  # as a client may write them
TEST_USDC = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"


@pytest.fixture
def chains_file(tmp_path: Path) -> Path:
    """The dev chain with a second priced stablecoin (USDC) beside USDT and USDT18."""
    tokens = [("USDT", TEST_USDT, 6), ("USDC", TEST_USDC, 6), ("USDT18", TEST_USDT18, 18)]
    return write_chains_file(tmp_path / "chains.toml", tokens=tokens)


async def invoice_of(
    client: httpx.AsyncClient, keys: GreenfieldKeys, **fields: Any
) -> dict[str, Any]:
    fields.setdefault("checkout", {"paymentMethods": TWO})
    response = await create_invoice(client, keys, **fields)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored(gateway: GatewayContext, order_id: str) -> Order:
    async with session_scope(gateway.sessions) as session:
        order = await session.get(Order, order_id)
        assert order is not None
        session.expunge(order)
        return order


async def choose(gateway: GatewayContext, order_id: str, method: str) -> Order:
    async with session_scope(gateway.sessions) as session:
        order = await choose_method(session, gateway.clock, gateway.orders, order_id, method)
        session.expunge(order)
        return order


async def payment_methods(
    client: httpx.AsyncClient, keys: GreenfieldKeys, invoice_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        keys.path(f"/invoices/{invoice_id}/payment-methods"), headers=keys.headers
    )
    assert response.status_code == 200, response.text
    methods: list[dict[str, Any]] = response.json()
    return methods


async def test_offered_methods_are_listed_not_activated_then_the_chosen_one_alone(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    invoice = await invoice_of(client, greenfield, amount="5", currency="USDT")
    order = await stored(gateway, invoice["id"])
    assert (order.symbol, order.amount, order.repoint_time_ms) == ("USDT", 5_000_000, None)
    fields = order.metadata_json["greenfield"]  # type: ignore[index]
    assert (fields["offeredMethods"], fields["activated"]) == (
        ["USDT-DEVCHAIN", "USDT18-DEVCHAIN"],
        False,
    )

    before = await payment_methods(client, greenfield, invoice["id"])
    assert [m["paymentMethodId"] for m in before] == ["USDT-DEVCHAIN", "USDT18-DEVCHAIN"]
    for method in before:
        assert method["activated"] is False
        assert (method["destination"], method["paymentLink"]) == ("", None)
        assert (method["amount"], method["due"], method["rate"]) == ("5", "5", "1")
        assert method["payments"] == []
    assert order.to_address.lower() not in str(before).lower()

    chosen = await choose(gateway, invoice["id"], "usdt18_devchain")
    chain = gateway.registry.require(31337)
    assert (chosen.symbol, chosen.decimals, chosen.amount) == ("USDT18", 18, 5 * 10**18)
    assert chosen.token_address == chain.token_by_symbol("USDT18").address  # type: ignore[union-attr]
    assert chosen.to_address == deposit_address(chain, order.payout_address, order.id)[0]
    assert chosen.repoint_time_ms == gateway.clock.now_ms()
    assert chosen.create_time_ms == order.create_time_ms
    assert chosen.metadata_json["greenfield"]["activated"] is True  # type: ignore[index]
    assert offered_methods(chosen, gateway.registry) == []

    [after] = await payment_methods(client, greenfield, invoice["id"])
    assert (after["paymentMethodId"], after["activated"]) == ("USDT18-DEVCHAIN", True)
    assert after["destination"] == chosen.to_address
    assert after["paymentLink"].startswith("ethereum:")
    assert (after["amount"], after["due"]) == ("5", "5")


async def test_a_single_method_invoice_is_activated_at_creation_as_before(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    invoice = await invoice_of(client, greenfield, checkout={"paymentMethods": ["USDT-DEVCHAIN"]})
    order = await stored(gateway, invoice["id"])
    assert "offeredMethods" not in order.metadata_json["greenfield"]  # type: ignore[index]
    assert offered_methods(order, gateway.registry) == []
    [method] = await payment_methods(client, greenfield, invoice["id"])
    assert method["activated"] is True and method["destination"] == order.to_address
    with pytest.raises(GatewayError) as refused:
        await choose(gateway, invoice["id"], "USDT18-DEVCHAIN")
    assert refused.value.code == "method_already_chosen"


async def test_choosing_the_same_method_again_is_nothing_and_another_is_409(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys, clock: FakeClock
) -> None:
    invoice = await invoice_of(client, greenfield, amount="5", currency="USDT")
    first = await choose(gateway, invoice["id"], "USDT18-DEVCHAIN")
    clock.advance(1)
    again = await choose(gateway, invoice["id"], "USDT18_DEVCHAIN")
    assert (again.updated_at_ms, again.repoint_time_ms) == (
        first.updated_at_ms,
        first.repoint_time_ms,
    )
    with pytest.raises(GatewayError) as refused:
        await choose(gateway, invoice["id"], "USDT-DEVCHAIN")
    assert (refused.value.code, refused.value.status) == ("method_already_chosen", 409)
    assert (await stored(gateway, invoice["id"])).symbol == "USDT18"


async def set_rate(gateway: GatewayContext, clock: FakeClock, symbol: str, rate: str) -> None:
    clock.advance(1)
    async with session_scope(gateway.sessions) as session:
        await store.set_rule(
            session,
            clock,
            scope=GATEWAY_SCOPE,
            symbol=symbol,
            currency="EUR",
            changes={"adjust": rate},
            actor="ops",
        )


async def test_a_fiat_invoice_is_priced_again_at_the_pick_with_the_rate_of_that_moment(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys, clock: FakeClock
) -> None:
    # 10.50 EUR, USDT at 0.9 EUR; USDT18 has no fiat price, so it is not offered.
    methods = ["USDT-DEVCHAIN", "USDC-DEVCHAIN", "USDT18-DEVCHAIN"]
    invoice = await invoice_of(client, greenfield, checkout={"paymentMethods": methods})
    before = await payment_methods(client, greenfield, invoice["id"])
    assert [(m["paymentMethodId"], m["amount"], m["rate"], m["activated"]) for m in before] == [
        ("USDT-DEVCHAIN", "0", "0", False),
        ("USDC-DEVCHAIN", "0", "0", False),
    ]
    # No USDC rate yet: refused, nothing changed.
    with pytest.raises(GatewayError) as refused:
        await choose(gateway, invoice["id"], "USDC-DEVCHAIN")
    assert (refused.value.code, refused.value.status) == ("rate_unavailable", 503)
    assert (await stored(gateway, invoice["id"])).symbol == "USDT"

    await set_rate(gateway, clock, "USDC", "0.75")
    chosen = await choose(gateway, invoice["id"], "USDC-DEVCHAIN")
    assert (chosen.symbol, chosen.amount) == ("USDC", 14_000_000)  # 10.50 / 0.75
    assert (chosen.fiat_amount, chosen.fiat_currency, chosen.rate) == ("10.5", "EUR", "0.75")
    assert chosen.rate_time_ms is not None and chosen.rate_time_ms > NOW_MS
    [after] = await payment_methods(client, greenfield, invoice["id"])
    assert (after["rate"], after["amount"], after["activated"]) == ("0.75", "14", True)


@pytest.mark.parametrize("case", ["expired", "invalid", "pending_amount", "payment_row"])
async def test_a_choice_is_refused_once_the_invoice_is_closed_or_anything_arrived(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    greenfield: GreenfieldKeys,
    clock: FakeClock,
    case: str,
) -> None:
    invoice = await invoice_of(client, greenfield, amount="5", currency="USDT")
    order = await stored(gateway, invoice["id"])
    expected = {
        "expired": "order_expired",
        "invalid": "order_not_pending",
        "pending_amount": "order_has_payments",
        "payment_row": "order_has_payments",
    }[case]
    if case == "expired":
        clock.advance(15 * 60)  # the watcher has not expired it yet: the clock decides
    elif case == "invalid":
        marked = await client.post(
            greenfield.path(f"/invoices/{order.id}/status"),
            json={"status": "Invalid"},
            headers=greenfield.headers,
        )
        assert marked.status_code == 200, marked.text
    elif case == "pending_amount":
        async with session_scope(gateway.sessions) as session:
            await session.execute(
                update(Order).where(Order.id == order.id).values(pending_amount=1)
            )
    else:
        async with session_scope(gateway.sessions) as session:
            session.add(
                Payment(
                    chain_id=31337, tx_hash="0x" + "ab" * 32, log_position=0, log_index=0,
                    block_number=10, block_hash="0x" + "cd" * 32, block_time_ms=NOW_MS,
                    token_address=order.token_address, from_address="0x" + "11" * 20,
                    to_address=order.to_address, amount=1, order_id=order.id,
                    status=PaymentStatus.SEEN, kind=PaymentKind.BELOW_MIN, late=False,
                    credited=False, created_at_ms=NOW_MS, updated_at_ms=NOW_MS,
                )
            )  # fmt: skip
    with pytest.raises(GatewayError) as refused:
        await choose(gateway, order.id, "USDT18-DEVCHAIN")
    assert (refused.value.code, refused.value.status) == (expected, 409)
    after = await stored(gateway, order.id)
    assert (after.symbol, after.amount, after.to_address) == ("USDT", 5_000_000, order.to_address)
    assert after.repoint_time_ms is None


async def test_a_method_not_offered_and_an_order_of_the_signed_api_are_refused(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    invoice = await invoice_of(client, greenfield, amount="5", currency="USDT")
    with pytest.raises(GatewayError) as refused:
        await choose(gateway, invoice["id"], "USDC-DEVCHAIN")
    assert (refused.value.code, refused.value.status) == ("method_not_offered", 400)
    with pytest.raises(GatewayError) as missing:
        await choose(gateway, "no-such-order", "USDT-DEVCHAIN")
    assert missing.value.status == 404


async def test_a_unique_amount_merchants_pick_reserves_an_amount_of_the_new_token(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    greenfield: GreenfieldKeys,
) -> None:
    async with session_scope(gateway.sessions) as session:
        await session.execute(
            update(Merchant)
            .where(Merchant.id == greenfield.merchant_id)
            .values(deposit_strategy="unique_amount")
        )
    invoice = await invoice_of(client, greenfield, amount="5", currency="USDT")
    order = await stored(gateway, invoice["id"])
    assert order.to_address == order.payout_address and order.amount > 5_000_000
    chosen = await choose(gateway, order.id, "USDT18-DEVCHAIN")
    assert (chosen.to_address, chosen.factory, chosen.deposit_salt) == (
        order.payout_address,
        None,
        None,
    )
    unit = 10**12  # a millionth of an 18-decimal token
    assert 5 * 10**18 < chosen.amount <= 5 * 10**18 + 9999 * unit
    assert (chosen.amount - 5 * 10**18) % unit == 0
    async with session_scope(gateway.sessions) as session:
        reserved = await session.scalar(
            select(AmountOffset).where(
                AmountOffset.order_id == order.id,
                AmountOffset.token_address == chosen.token_address,
            )
        )
        assert reserved is not None and reserved.amount == chosen.amount
