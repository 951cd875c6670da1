"""``stablegate merchant ...``: merchants, API keys, public keys and payout addresses, mounted
by :mod:`stablegate.cli` (which also mounts the webhooks' ``rotate-webhook-secret`` here)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import load_registry
from stablegate.clock import SystemClock
from stablegate.config import Settings
from stablegate.console import JsonFlag, error_console, print_record, print_rows, with_session
from stablegate.merchants import payout_addresses, service
from stablegate.merchants.payout_check import PayoutCodeCheck
from stablegate.models.merchant import MerchantStatus
from stablegate.secret_box import load_secret_box

merchant_app = typer.Typer(help="Merchants, API keys, public keys and payout addresses.")

MerchantOption = Annotated[str, typer.Option(help="Merchant id (mch_...).")]
ForceFlag = Annotated[
    bool, typer.Option("--force", help="Use the payout address despite the code warning.")
]


def _print_forced(warning: str | None) -> None:
    if warning is not None:
        error_console.print(f"[yellow]warning[/yellow] {warning} (--force given)")


@merchant_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Merchant display name.")],
    payout_address: Annotated[str, typer.Option(help="Where deposit contracts pay out.")],
    chain: Annotated[
        list[int] | None, typer.Option(help="Chain id for the payout address (repeatable).")
    ] = None,
    notify_url: Annotated[str | None, typer.Option(help="Default webhook URL.")] = None,
    force: ForceFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a merchant; prints the API key, secret and webhook secret ONCE."""

    async def work(session: AsyncSession, settings: Settings) -> service.NewMerchant:
        registry = load_registry(settings.chains_file)
        chain_ids = chain or [known.id for known in registry]
        payout_addresses.check_known_chains(registry, chain_ids)
        return await service.create_merchant(
            session,
            load_secret_box(settings),
            SystemClock(),
            name=name,
            payout_address=payout_address,
            chain_ids=chain_ids,
            notify_url=notify_url,
            payout_code=PayoutCodeCheck.through(registry, force=force),
        )

    created = with_session(work)
    _print_forced(created.payout_warning)
    print_record(
        {
            "merchantId": created.merchant_id,
            "apiKey": created.api_key,
            "secretKey": created.secret_key,
            "webhookSecret": created.webhook_secret,
        },
        as_json,
    )
    if not as_json:
        error_console.print("Store these now: the secrets are not shown again.")


@merchant_app.command("list")
def list_merchants(as_json: JsonFlag = False) -> None:
    """Every merchant: id, name, status, the chains it is paid out on, when it was created."""

    async def work(session: AsyncSession, _settings: Settings) -> list[service.MerchantSummary]:
        return await service.list_merchants(session)

    rows = [
        {
            "merchantId": merchant.merchant_id,
            "name": merchant.name,
            "status": merchant.status,
            "chains": merchant.chain_ids,
            "createTime": merchant.created_at_ms,
        }
        for merchant in with_session(work)
    ]
    print_rows(rows, ["merchantId", "name", "status", "chains", "createTime"], as_json)


@merchant_app.command("approve")
def approve(merchant_id: MerchantOption, as_json: JsonFlag = False) -> None:
    """Let a merchant that signed up on the dashboard under the approval policy log in
    (audited). Pending merchants are those `merchant list` shows as pending."""

    async def work(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        merchant = await service.approve_merchant(session, SystemClock(), merchant_id=merchant_id)
        return {"merchantId": merchant.id, "name": merchant.name, "status": merchant.status}

    print_record(with_session(work), as_json)


@merchant_app.command("disable")
def disable(
    merchant_id: MerchantOption,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Stop a merchant at once: its API keys are refused and its dashboard users logged out on
    their next request (audited). Its orders and payments are kept; `merchant enable` undoes
    it."""
    _set_status(merchant_id, MerchantStatus.DISABLED, reason, as_json)


@merchant_app.command("enable")
def enable(merchant_id: MerchantOption, as_json: JsonFlag = False) -> None:
    """Make a disabled (or pending) merchant active again (audited)."""
    _set_status(merchant_id, MerchantStatus.ACTIVE, None, as_json)


def _set_status(
    merchant_id: str, status: MerchantStatus, reason: str | None, as_json: bool
) -> None:
    async def work(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        merchant = await service.set_merchant_status(
            session,
            SystemClock(),
            merchant_id=merchant_id,
            status=status,
            actor="cli",
            reason=reason,
        )
        return {"merchantId": merchant.id, "name": merchant.name, "status": merchant.status}

    print_record(with_session(work), as_json)


@merchant_app.command("set-policy")
def set_policy(
    merchant_id: MerchantOption,
    late_payment: Annotated[
        str | None, typer.Option(help="record | complete: what a full late payment does.")
    ] = None,
    underpay_tolerance: Annotated[
        str | None, typer.Option(help="Accepted shortfall as a fraction, e.g. 0.005 for 0.5 %.")
    ] = None,
    deposit_strategy: Annotated[
        str | None, typer.Option(help="forwarder | unique_amount (new orders only).")
    ] = None,
    notify_url: Annotated[str | None, typer.Option(help="Default webhook URL.")] = None,
    display_name: Annotated[
        str | None, typer.Option(help="Name the cashier shows the customer ('' clears it).")
    ] = None,
    logo_url: Annotated[
        str | None, typer.Option(help="https URL of the logo the cashier shows ('' clears it).")
    ] = None,
    support_contact: Annotated[
        str | None,
        typer.Option(help="Email, URL or text the cashier offers for help ('' clears it)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a merchant's payment policy and cashier branding (audited)."""

    async def work(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        return await service.set_policy(
            session,
            SystemClock(),
            merchant_id=merchant_id,
            late_payment=late_payment,
            underpay_tolerance=underpay_tolerance,
            deposit_strategy=deposit_strategy,
            notify_url=notify_url,
            display_name=display_name,
            logo_url=logo_url,
            support_contact=support_contact,
        )

    print_record(with_session(work), as_json)


@merchant_app.command("set-key-policy")
def set_key_policy(
    api_key: Annotated[str, typer.Option(help="The API key.")],
    v2: Annotated[
        bool | None, typer.Option("--v2/--no-v2", help="Accept HMAC (V2) next to a public key.")
    ] = None,
    signed_reads: Annotated[
        bool | None,
        typer.Option(
            "--signed-reads/--unsigned-reads",
            help=(
                "Require signatures on reads, or allow the key alone"
                " (default: required once a public key is registered)."
            ),
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Which signatures an API key accepts (audited)."""

    async def work(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        return await service.set_key_policy(
            session, SystemClock(), api_key=api_key, v2_enabled=v2, signed_reads=signed_reads
        )

    print_record(with_session(work), as_json)


@merchant_app.command("add-public-key")
def add_public_key(
    api_key: Annotated[str, typer.Option(help="The API key to attach the public key to.")],
    pem: Annotated[Path, typer.Option(help="PEM file with the P-256 public key.", exists=True)],
    as_json: JsonFlag = False,
) -> None:
    """Register an ECDSA P-256 public key; the key then accepts V1 signatures only, on reads too."""

    async def work(session: AsyncSession, _settings: Settings) -> str:
        return await service.add_public_key(
            session, SystemClock(), api_key=api_key, pem=pem.read_bytes()
        )

    fingerprint = with_session(work)
    print_record({"fingerprint": fingerprint, "signatures": "V1 only"}, as_json)


@merchant_app.command("set-payout")
def set_payout(
    merchant_id: MerchantOption,
    chain: Annotated[int, typer.Option(help="Chain id.")],
    address: Annotated[str, typer.Option(help="New payout address.")],
    force: ForceFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Change the payout address of one chain (new orders only; audited)."""

    async def work(session: AsyncSession, settings: Settings) -> payout_addresses.PayoutAddressSet:
        registry = load_registry(settings.chains_file)
        payout_addresses.check_known_chains(registry, [chain])
        return await payout_addresses.set_payout_address(
            session,
            SystemClock(),
            merchant_id=merchant_id,
            chain_id=chain,
            address=address,
            payout_code=PayoutCodeCheck.through(registry, force=force),
        )

    payout = with_session(work)
    _print_forced(payout.warning)
    print_record(
        {"merchantId": merchant_id, "chainId": chain, "payoutAddress": payout.address}, as_json
    )
