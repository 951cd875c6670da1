"""A store's payment methods: one per token on each chain the merchant is paid out on, named
``<SYMBOL>-<NETWORK>`` in capitals (``USDT-BSC``, ``USDC-POLYGON``), as BTCPay names its own
(``BTC-CHAIN``). Clients may write ``_`` for ``-`` (the WooCommerce plugin does, in
``checkout.paymentMethods``); either form names the same method and is echoed as it was sent."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import ChainRegistry
from stablegate.models import PayoutAddress


@dataclass(frozen=True)
class PaymentMethod:
    id: str
    chain_id: int
    symbol: str


def method_id(symbol: str, network: str) -> str:
    return f"{symbol}-{network}".upper()


def canonical(sent: str) -> str:
    """The ``-`` form of a payment method id as a client wrote it."""
    return sent.strip().upper().replace("_", "-")


async def store_payment_methods(
    session: AsyncSession, registry: ChainRegistry, merchant_id: str
) -> list[PaymentMethod]:
    """The merchant's methods, by chain id then the registry's token order."""
    chain_ids = (
        await session.scalars(
            select(PayoutAddress.chain_id)
            .where(PayoutAddress.merchant_id == merchant_id)
            .order_by(PayoutAddress.chain_id)
        )
    ).all()
    methods: list[PaymentMethod] = []
    for chain_id in chain_ids:
        chain = registry.get(chain_id)
        if chain is None:
            continue  # a chain since removed from the chains file
        methods += [
            PaymentMethod(method_id(token.symbol, chain.network), chain.id, token.symbol)
            for token in chain.tokens
        ]
    return methods


def find_method(methods: list[PaymentMethod], sent: str) -> PaymentMethod | None:
    wanted = canonical(sent)
    return next((m for m in methods if m.id == wanted), None)


def method_of(registry: ChainRegistry, chain_id: int, symbol: str) -> str:
    """The id of an order's method (its chain may have left the chains file since)."""
    chain = registry.get(chain_id)
    return method_id(symbol, chain.network if chain is not None else str(chain_id))
