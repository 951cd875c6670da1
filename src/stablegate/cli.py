"""The ``stablegate`` command. Every command reads the same Settings (STABLEGATE_* env)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.fernet import Fernet
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import ChainRegistry, load_registry
from stablegate.cli_support import JsonFlag, err_console, stop_on_signals, with_session
from stablegate.clock import SystemClock
from stablegate.config import Settings
from stablegate.db.engine import make_engine, make_sessionmaker
from stablegate.db.migrate import upgrade
from stablegate.errors import GatewayError
from stablegate.logs import configure_logging
from stablegate.merchants import service as merchants
from stablegate.merchants.secrets import load_secret_box
from stablegate.models.order import OrderStatus
from stablegate.orders import service as orders
from stablegate.orders.view import order_view
from stablegate.webhooks.commands import (
    deliver_command,
    rotate_webhook_secret_command,
    webhooks_app,
)

app = typer.Typer(help="stablegate: self-hosted, non-custodial stablecoin payment gateway.")
merchant_app = typer.Typer(help="Merchants, API keys, public keys and payout addresses.")
orders_app = typer.Typer(help="Inspect orders.")
app.add_typer(merchant_app, name="merchant")
chain_app = typer.Typer(help="Chains: watcher status, contract deployment.")
app.add_typer(orders_app, name="orders")
app.add_typer(chain_app, name="chain")
app.add_typer(webhooks_app, name="webhooks")
merchant_app.command("rotate-webhook-secret")(rotate_webhook_secret_command)
app.command("deliver")(deliver_command)

console = Console()


@app.callback()
def _configure() -> None:
    """Logs to stderr for every command, so stdout stays machine-readable."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)


ForceFlag = Annotated[
    bool, typer.Option("--force", help="Use the payout address despite the code warning.")
]


def _settings() -> Settings:
    return Settings()


def _emit(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data, separators=(",", ":")))
        return
    table = Table(show_header=False)
    for key, value in data.items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)


@app.command()
def migrate() -> None:
    """Apply database migrations (PostgreSQL or SQLite)."""
    settings = _settings()

    async def main() -> None:
        engine = make_engine(settings.effective_database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(main())
    console.print("database is at the latest migration")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
) -> None:
    """Run the merchant API, public endpoints and cashier."""
    import uvicorn

    from stablegate.api.app import create_app
    from stablegate.api.server import server_config

    settings = _settings()
    configure_logging(settings.log_format, settings.log_level)
    uvicorn.Server(server_config(create_app(settings), settings, host, port)).run()


@app.command()
def run(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
) -> None:
    """API, watchers, webhook delivery and sweeper in one process (the embedded default)."""
    from stablegate.embedded import run_embedded

    settings = _settings()
    configure_logging(settings.log_format, settings.log_level)

    async def main() -> None:
        await run_embedded(settings, host, port, stop_on_signals())

    asyncio.run(main())


@app.command()
def devchain(
    port: Annotated[int | None, typer.Option(help="anvil port (default: a free one).")] = None,
    block_time: Annotated[
        float | None, typer.Option(help="Seconds per block (default: one block per tx).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start a local dev chain with the gateway contracts and the dev tokens; runs until stopped."""
    from stablegate.chain.devchain import run_devchain_forever

    settings = _settings()
    asyncio.run(
        run_devchain_forever(
            (settings.data_dir / "devchain").resolve(),
            port=port,
            block_time=block_time,
            as_json=as_json,
        )
    )


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port of the gateway.")] = 8000,
    exit_when_done: Annotated[
        bool, typer.Option("--exit-when-done", help="Exit after the demo payment is swept.")
    ] = False,
) -> None:
    """Dev chain + gateway + one order paid, completed and swept end to end."""
    from stablegate.demo import run_demo

    settings = _settings()
    configure_logging(settings.log_format, "WARNING")
    result = asyncio.run(run_demo(settings, port=port, exit_when_done=exit_when_done))
    if result.status != OrderStatus.COMPLETED:
        raise typer.Exit(1)


@app.command("secret-key")
def secret_key() -> None:
    """Print a new value for STABLEGATE_SECRET_KEY."""
    typer.echo(Fernet.generate_key().decode())


@merchant_app.command("create")
def merchant_create(
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

    async def work(session: AsyncSession, settings: Settings) -> merchants.NewMerchant:
        registry = load_registry(settings.chains_file)
        chain_ids = chain or [c.id for c in registry]
        await _check_payout_code(registry, chain_ids, payout_address, force)
        return await merchants.create_merchant(
            session,
            load_secret_box(settings),
            SystemClock(),
            name=name,
            payout_address=payout_address,
            chain_ids=chain_ids,
            notify_url=notify_url,
        )

    created = with_session(work)
    _emit(
        {
            "merchantId": created.merchant_id,
            "apiKey": created.api_key,
            "secretKey": created.secret_key,
            "webhookSecret": created.webhook_secret,
        },
        as_json,
    )
    if not as_json:
        err_console.print("Store these now: the secrets are not shown again.")


async def _check_payout_code(
    registry: ChainRegistry, chain_ids: list[int], address: str, force: bool
) -> None:
    from stablegate.merchants.payout_check import code_presence, mixed_code_warning

    warning = mixed_code_warning(await code_presence(registry, chain_ids, address))
    if warning is None:
        return
    if not force:
        raise GatewayError(
            f"{warning}; check it, then repeat with --force", code="payout_code_mismatch"
        )
    err_console.print(f"[yellow]warning[/yellow] {warning} (--force given)")


@merchant_app.command("set-policy")
def merchant_set_policy(
    merchant_id: Annotated[str, typer.Option(help="Merchant id (mch_...).")],
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
    as_json: JsonFlag = False,
) -> None:
    """Change a merchant's payment policy (audited)."""

    async def work(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        return await merchants.set_policy(
            session,
            SystemClock(),
            merchant_id=merchant_id,
            late_payment=late_payment,
            underpay_tolerance=underpay_tolerance,
            deposit_strategy=deposit_strategy,
            notify_url=notify_url,
        )

    _emit(with_session(work), as_json)


@merchant_app.command("set-key-policy")
def merchant_set_key_policy(
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
        return await merchants.set_key_policy(
            session, SystemClock(), api_key=api_key, v2_enabled=v2, signed_reads=signed_reads
        )

    _emit(with_session(work), as_json)


@merchant_app.command("add-public-key")
def merchant_add_public_key(
    api_key: Annotated[str, typer.Option(help="The API key to attach the public key to.")],
    pem: Annotated[Path, typer.Option(help="PEM file with the P-256 public key.", exists=True)],
    as_json: JsonFlag = False,
) -> None:
    """Register an ECDSA P-256 public key; the key then accepts V1 signatures only, on reads too."""

    async def work(session: AsyncSession, _settings: Settings) -> str:
        return await merchants.add_public_key(
            session, SystemClock(), api_key=api_key, pem=pem.read_bytes()
        )

    fingerprint = with_session(work)
    _emit({"fingerprint": fingerprint, "signatures": "V1 only"}, as_json)


@merchant_app.command("set-payout")
def merchant_set_payout(
    merchant_id: Annotated[str, typer.Option(help="Merchant id (mch_...).")],
    chain: Annotated[int, typer.Option(help="Chain id.")],
    address: Annotated[str, typer.Option(help="New payout address.")],
    force: ForceFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Change the payout address of one chain (new orders only; audited)."""

    async def work(session: AsyncSession, settings: Settings) -> str:
        registry = load_registry(settings.chains_file)
        others = await merchants.payout_chains(session, merchant_id, address)
        await _check_payout_code(registry, sorted({chain, *others}), address, force)
        return await merchants.set_payout_address(
            session, SystemClock(), merchant_id=merchant_id, chain_id=chain, address=address
        )

    address_set = with_session(work)
    _emit({"merchantId": merchant_id, "chainId": chain, "payoutAddress": address_set}, as_json)


@orders_app.command("show")
def orders_show(
    merchant_id: Annotated[str, typer.Option(help="Merchant id.")],
    order_id: Annotated[str | None, typer.Option(help="Order id.")] = None,
    order_no: Annotated[str | None, typer.Option(help="Merchant order number.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show one order."""

    async def work(session: AsyncSession, settings: Settings) -> dict[str, Any]:
        order = await orders.get_order(session, merchant_id, order_id=order_id, order_no=order_no)
        return order_view(order, load_registry(settings.chains_file), settings.public_url)

    _emit(with_session(work), as_json)


@orders_app.command("list")
def orders_list(
    merchant_id: Annotated[str, typer.Option(help="Merchant id.")],
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List a merchant's newest orders."""

    async def work(session: AsyncSession, settings: Settings) -> list[dict[str, Any]]:
        rows, _ = await orders.list_orders(
            session, merchant_id, status=status, since_ms=None, limit=limit, cursor=None
        )
        registry = load_registry(settings.chains_file)
        return [order_view(o, registry, settings.public_url) for o in rows]

    views = with_session(work)
    if as_json:
        typer.echo(json.dumps(views, separators=(",", ":")))
        return
    table = Table("orderId", "orderNo", "status", "amount", "symbol", "chain")
    for v in views:
        table.add_row(
            v["orderId"], v["orderNo"], v["status"], v["amount"], v["symbol"], v["chainId"]
        )
    console.print(table)


@orders_app.command("mark-completed")
def orders_mark_completed(
    order_id: Annotated[str, typer.Option(help="Order id.")],
    actor: Annotated[str, typer.Option(help="Who is doing this (kept in the audit log).")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")],
    as_json: JsonFlag = False,
) -> None:
    """Complete a pending or expired order by hand (adds the `manual` exception; audited)."""

    async def work(session: AsyncSession, settings: Settings) -> dict[str, Any]:
        registry = load_registry(settings.chains_file)
        ctx = orders.OrderContext(registry, settings.public_url, settings.max_order_amount)
        order = await orders.mark_completed(
            session, SystemClock(), ctx, order_id=order_id, actor=actor, reason=reason
        )
        return order_view(order, registry, settings.public_url)

    _emit(with_session(work), as_json)


@app.command()
def watch(
    chain: Annotated[
        list[int] | None, typer.Option(help="Chain id to watch (repeatable; default all).")
    ] = None,
) -> None:
    """Watch the chains: credit payments once final, follow reorgs, expire orders."""
    from stablegate.watcher.runner import run_watchers

    settings = _settings()
    configure_logging(settings.log_format, settings.log_level)

    async def main() -> None:
        engine = make_engine(settings.effective_database_url)
        try:
            if settings.is_embedded:
                await upgrade(engine)
            stop = stop_on_signals()
            await run_watchers(
                settings,
                load_registry(settings.chains_file),
                make_sessionmaker(engine),
                SystemClock(),
                stop,
                chain_ids=chain or None,
            )
        finally:
            await engine.dispose()

    asyncio.run(main())


@app.command()
def sweep(
    chain: Annotated[int | None, typer.Option(help="Only this chain id.")] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Sweep what is due, wait for it to be mined, stop.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Flush deposit contracts holding final funds to their payout addresses."""
    from stablegate.sweeper.commands import sweep_command

    sweep_command(chain, once, as_json)


@chain_app.command("deploy")
def chain_deploy(
    chain: Annotated[int, typer.Option(help="Chain id (needs an RPC URL in the chains file).")],
    key_env: Annotated[
        str, typer.Option(help="Environment variable holding the deployer's private key.")
    ] = "STABLEGATE_RELAYER_KEY",
    as_json: JsonFlag = False,
) -> None:
    """Deploy the ForwarderFactory and Forwarder implementation through the deterministic
    CREATE2 deployer (same addresses on every chain; nothing is sent if already there)."""
    import os

    from eth_account import Account

    from stablegate.chain.evm.deploy import DeployError, deploy_gateway_contracts
    from stablegate.chain.evm.rpc import RpcClient
    from stablegate.chain.evm.rpc_errors import RpcError

    settings = _settings()
    target = load_registry(settings.chains_file).get(chain)
    if target is None or not target.rpc_urls:
        err_console.print(f"[red]error[/red] chain {chain} has no RPC URL in the chains file")
        raise typer.Exit(2)
    key = os.environ.get(key_env)
    if not key:
        err_console.print(f"[red]error[/red] set {key_env} to the deployer's private key")
        raise typer.Exit(2)

    async def main() -> dict[str, Any]:
        async with RpcClient(list(target.rpc_urls)) as rpc:
            with console.status(f"deploying on chain {chain}..."):
                deployed = await deploy_gateway_contracts(rpc, Account.from_key(key))
        return {
            "chainId": chain,
            "factory": deployed.factory,
            "implementation": deployed.implementation,
        }

    try:
        _emit(asyncio.run(main()), as_json)
    except (DeployError, RpcError) as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None


@chain_app.command("status")
def chain_status(as_json: JsonFlag = False) -> None:
    """Head, final height, cursor, lag, finality mode, lease holder and reconciliation per chain."""
    from stablegate.watcher.status import chain_statuses

    async def work(session: AsyncSession, settings: Settings) -> list[dict[str, Any]]:
        return await chain_statuses(session, load_registry(settings.chains_file))

    rows = with_session(work)
    if as_json:
        typer.echo(json.dumps(rows, separators=(",", ":")))
        return
    table = Table("chain", "head", "final", "cursor", "lag", "finality", "watcher", "mismatches")
    for row in rows:
        table.add_row(
            str(row["chainId"]),
            str(row["head"]),
            str(row["final"]),
            str(row["cursor"]),
            str(row["lag"]),
            str(row["finalityMode"]),
            str(row["watcher"]),
            str(row["reconcileMismatches"]),
        )
    console.print(table)


if __name__ == "__main__":
    app()
