"""The chain, token and currency a compatibility credential's orders are paid and priced in."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import Chain, ChainRegistry, Token
from stablegate.errors import InvalidRequest
from stablegate.merchants.service import get_merchant
from stablegate.models import PayoutAddress
from stablegate.rates.currencies import STABLECOINS, is_fiat


async def payment_chain(
    session: AsyncSession, registry: ChainRegistry, merchant_id: str, chain_id: int | None
) -> int:
    """The chain asked for, else the merchant's one payout chain."""
    if chain_id is not None:
        return registry.require(chain_id).id
    chains = (
        await session.scalars(
            select(PayoutAddress.chain_id).where(PayoutAddress.merchant_id == merchant_id)
        )
    ).all()
    if len(chains) != 1:
        raise InvalidRequest(
            "the merchant is paid out on "
            + (f"{len(chains)} chains" if chains else "no chain")
            + ": name the chain the orders are paid on (--chain)",
            code="invalid_request",
        )
    return registry.require(chains[0]).id


async def credential_payment(
    session: AsyncSession,
    registry: ChainRegistry,
    *,
    merchant_id: str,
    chain_id: int | None,
    symbol: str,
    currency: str,
    priced: str,
) -> tuple[Chain, Token]:
    """The chain and token of a new credential of the merchant, checked: the merchant exists,
    the chain (by default its one payout chain) carries ``symbol``, a stablecoin that ``currency``
    (a fiat currency) converts to, and the merchant has a payout address on it. ``priced`` names
    what the credential creates ("orders", "invoices") in the currency error's message."""
    await get_merchant(session, merchant_id)
    chain = registry.require(await payment_chain(session, registry, merchant_id, chain_id))
    token = chain.token_by_symbol(symbol)
    if token is None:
        raise InvalidRequest(
            f"{symbol} is not supported on chain {chain.id}", code="unsupported_token"
        )
    if not is_fiat(currency) or token.symbol not in STABLECOINS:
        raise InvalidRequest(
            f"{priced} in {token.symbol} cannot be priced in {currency!r}",
            code="unsupported_currency",
        )
    if await session.get(PayoutAddress, (merchant_id, chain.id)) is None:
        raise InvalidRequest(
            f"the merchant has no payout address on chain {chain.id}",
            code="payout_address_missing",
        )
    return chain, token
