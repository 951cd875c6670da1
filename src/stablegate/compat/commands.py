"""``stablegate merchant create-key``: a new credential of one kind for a merchant, mounted on
the merchant group by :mod:`stablegate.cli` (the compatibility kinds belong to this package,
which sits above merchants)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import load_registry
from stablegate.clock import SystemClock
from stablegate.compat.epay.credentials import (
    DEFAULT_CURRENCY,
    DEFAULT_SYMBOL,
    issue_epay_credential,
)
from stablegate.compat.greenfield.credentials import DEFAULT_CURRENCY as GREENFIELD_CURRENCY
from stablegate.compat.greenfield.credentials import issue_greenfield_credential
from stablegate.config import Settings
from stablegate.console import JsonFlag, error_console, print_record, with_session
from stablegate.merchants.api_keys import create_api_key
from stablegate.merchants.service import get_merchant
from stablegate.secret_box import load_secret_box


class KeyKind(StrEnum):
    SIGNED = "signed"
    EPAY = "epay"
    GREENFIELD = "greenfield"


def create_key_command(
    merchant_id: Annotated[str, typer.Option(help="Merchant id (mch_...).")],
    kind: Annotated[
        KeyKind,
        typer.Option(
            help="signed: the signed API's ak_/sk_ pair; epay: a pid and MD5 key for EPay and "
            "Epusdt plugins (accepted by /epay/ and /epusdt/ only); greenfield: a BTCPay "
            "Greenfield API key for BTCPay plugins (accepted by the Greenfield endpoints only)."
        ),
    ] = KeyKind.SIGNED,
    chain: Annotated[
        int | None,
        typer.Option(
            help="epay, greenfield: the chain its orders are paid on when the request names "
            "none (default: the merchant's only payout chain)."
        ),
    ] = None,
    symbol: Annotated[
        str, typer.Option(help="epay, greenfield: the token paid (by default).")
    ] = DEFAULT_SYMBOL,
    currency: Annotated[
        str | None,
        typer.Option(
            help="epay: the fiat currency of the amounts (default CNY); greenfield: the "
            "store's default currency (default USD)."
        ),
    ] = None,
    label: Annotated[str, typer.Option(help="A name for the key, shown as text.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create a credential for a merchant; prints its secret ONCE."""

    async def work(session: AsyncSession, settings: Settings) -> dict[str, Any]:
        box = load_secret_box(settings)
        if kind == KeyKind.SIGNED:
            await get_merchant(session, merchant_id)
            api_key, secret_key = await create_api_key(
                session, box, SystemClock(), merchant_id=merchant_id, label=label, actor="cli"
            )
            return {
                "merchantId": merchant_id,
                "kind": kind.value,
                "apiKey": api_key,
                "secretKey": secret_key,
            }
        if kind == KeyKind.GREENFIELD:
            issued = await issue_greenfield_credential(
                session,
                box,
                SystemClock(),
                load_registry(settings.chains_file),
                merchant_id=merchant_id,
                chain_id=chain,
                symbol=symbol,
                currency=(currency or GREENFIELD_CURRENCY).upper(),
                label=label,
            )
            made = issued.credential
            return {
                "merchantId": merchant_id,
                "kind": kind.value,
                "keyId": made.key_id,
                "apiKey": issued.key,
                "storeId": made.store_id,
                "permissions": list(made.permissions),
                "chainId": made.chain_id,
                "symbol": made.symbol,
                "currency": made.currency,
            }
        credential = await issue_epay_credential(
            session,
            box,
            SystemClock(),
            load_registry(settings.chains_file),
            merchant_id=merchant_id,
            chain_id=chain,
            symbol=symbol,
            currency=(currency or DEFAULT_CURRENCY).upper(),
            label=label,
        )
        return {
            "merchantId": merchant_id,
            "kind": kind.value,
            "pid": credential.pid,
            "key": credential.key,
            "chainId": credential.chain_id,
            "symbol": credential.symbol,
            "currency": credential.currency,
        }

    print_record(with_session(work), as_json)
    if not as_json:
        error_console.print("Store the secret now: it is not shown again.")
