"""The SDK's typed results: a payment keeps what it is (kind, token, late) and its amount in the
units of the token that arrived; an order carries the amount still due. Older gateways' JSON
still parses."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stablegate_client import Order, Payment, PaymentKind, PaymentStatus

USDT = "0x55d398326f99059fF775485246999027B3197955"
USDC = "0x8AC76a51cc950d9822D68b83fE1Ad97B32Cd580d"


def payment(**fields: Any) -> dict[str, Any]:
    return {
        "txId": "0x" + "ab" * 32,
        "logIndex": 3,
        "from": "0x0000000000000000000000000000000000000009",
        "tokenAddress": USDT,
        "amount": "10",
        "symbol": "USDT",
        "decimals": 18,
        "blockNumber": 7,
        "blockHash": "0x" + "cd" * 32,
        "blockTime": 1_767_225_600_000,
        "status": "final",
        "kind": "credit",
        "late": False,
        **fields,
    }


def order(**fields: Any) -> dict[str, Any]:
    return {
        "orderId": "ord_1",
        "orderNo": "A-1",
        "custNo": None,
        "status": "pending",
        "exceptions": [],
        "chainId": "56",
        "network": "bsc",
        "symbol": "USDT",
        "tokenAddress": USDT,
        "decimals": 18,
        "amount": "20",
        "paidAmount": "10",
        "pendingAmount": "2.5",
        "dueAmount": "7.5",
        "toAddress": "0x0000000000000000000000000000000000000001",
        "payoutAddress": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "factory": None,
        "depositSalt": None,
        "cashierUrl": "u",
        "paymentUri": "p",
        "qrCode": "q",
        "paymentQrCode": "pq",
        "expireTime": 2,
        "createTime": 1,
        "completeTime": None,
        "txId": None,
        "confirmations": 0,
        **fields,
    }


def test_a_wrong_token_payment_keeps_its_kind_token_and_units() -> None:
    parsed = Payment.from_json(
        payment(kind="wrong_token", tokenAddress=USDC, symbol="USDC", amount="10", late=True)
    )
    assert parsed.kind == PaymentKind.WRONG_TOKEN and parsed.kind == "wrong_token"
    assert parsed.token_address == USDC and parsed.late is True
    assert (parsed.amount, parsed.symbol, parsed.decimals) == (Decimal("10"), "USDC", 18)
    assert parsed.status == PaymentStatus.FINAL


def test_a_token_the_gateway_does_not_know_is_in_base_units() -> None:
    parsed = Payment.from_json(
        payment(kind="unsupported_token", symbol=None, decimals=None, amount="12345")
    )
    assert (parsed.amount, parsed.symbol, parsed.decimals) == (Decimal(12345), None, None)


def test_an_unknown_kind_from_a_newer_gateway_stays_a_string() -> None:
    assert Payment.from_json(payment(kind="airdrop")).kind == "airdrop"


def test_the_order_carries_due_amount_the_payment_qr_and_typed_payments() -> None:
    parsed = Order.from_json(order(payments=[payment(), payment(kind="below_min", amount="0")]))
    assert parsed.due_amount == Decimal("7.5") and parsed.payment_qr_code == "pq"
    assert parsed.payments is not None
    assert [p.kind for p in parsed.payments] == [PaymentKind.CREDIT, PaymentKind.BELOW_MIN]


def test_an_order_priced_in_fiat_carries_its_price_and_locked_rate() -> None:
    parsed = Order.from_json(
        order(
            amount="10",
            fiatAmount="72",
            currency="CNY",
            rate="7.2",
            rateSource="fixed",
            rateTime=1_767_225_000_000,
        )
    )
    assert parsed.amount == Decimal("10")
    assert (parsed.fiat_amount, parsed.currency) == (Decimal("72"), "CNY")
    assert (parsed.rate, parsed.rate_source) == (Decimal("7.2"), "fixed")
    assert parsed.rate_time_ms == 1_767_225_000_000
    plain = Order.from_json(order())  # an order in tokens has none of them
    assert (plain.fiat_amount, plain.currency, plain.rate) == (None, None, None)
    assert (plain.rate_source, plain.rate_time_ms) == (None, None)


def test_an_older_gateways_json_still_parses() -> None:
    old_payment = payment(amount="10")
    for field in ("symbol", "decimals", "kind", "late"):
        del old_payment[field]
    foreign = payment(tokenAddress=USDC, amount="10000")
    for field in ("symbol", "decimals"):
        del foreign[field]
    old = order(payments=[old_payment, foreign])
    for field in ("dueAmount", "paymentQrCode"):
        del old[field]
    parsed = Order.from_json(old)
    assert parsed.due_amount == Decimal("7.5")  # the same rule, from the amounts
    assert parsed.payment_qr_code is None
    assert parsed.payments is not None
    same, other = parsed.payments
    # In the order's token: that token's units, as those gateways sent them.
    assert (same.kind, same.late, same.symbol, same.decimals) == ("credit", False, "USDT", 18)
    # Any other token: base units, units unknown.
    assert (other.amount, other.symbol, other.decimals) == (Decimal(10000), None, None)
