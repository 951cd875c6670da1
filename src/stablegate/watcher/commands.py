"""``stablegate watch`` and ``stablegate chain status|deploy``, mounted by :mod:`stablegate.cli`.

``chain deploy`` lives here, not in ``chain/``, because the chain package sits below the CLI
plumbing (:mod:`stablegate.console`); it deploys the contracts the watchers then check.
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import load_registry
from stablegate.clock import SystemClock
from stablegate.config import Settings
from stablegate.console import (
    JsonFlag,
    error_console,
    fail,
    output,
    print_json,
    print_record,
    print_rows,
    stop_on_signals,
    with_session,
)
from stablegate.db.engine import make_engine, make_sessionmaker
from stablegate.logs import configure_logging
from stablegate.migrations import upgrade

chain_app = typer.Typer(help="Chains: watcher status, contract deployment.")


def watch_command(
    chain: Annotated[
        list[int] | None, typer.Option(help="Chain id to watch (repeatable; default all).")
    ] = None,
) -> None:
    """Watch the chains: credit payments once final, follow reorgs, expire orders."""
    from stablegate.watcher.runner import run_watchers

    settings = Settings()
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


@chain_app.command("deploy")
def deploy_contracts(
    chain: Annotated[int, typer.Option(help="Chain id (needs an RPC URL in the chains file).")],
    key_env: Annotated[
        str, typer.Option(help="Environment variable holding the deployer's private key.")
    ] = "STABLEGATE_RELAYER_KEY",
    as_json: JsonFlag = False,
) -> None:
    """Deploy the ForwarderFactory and Forwarder implementation through the deterministic
    CREATE2 deployer (same addresses on every chain; nothing is sent if already there)."""
    from eth_account import Account

    from stablegate.chain.evm.deploy import DeployError, deploy_gateway_contracts
    from stablegate.chain.evm.rpc import RpcClient
    from stablegate.chain.evm.rpc_errors import RpcError

    settings = Settings()
    target = load_registry(settings.chains_file).get(chain)
    if target is None or not target.rpc_urls:
        raise fail(f"chain {chain} has no RPC URL in the chains file")
    key = os.environ.get(key_env)
    if not key:
        raise fail(f"set {key_env} to the deployer's private key")

    async def main() -> dict[str, Any]:
        async with RpcClient(list(target.rpc_urls)) as rpc:
            with output.status(f"deploying on chain {chain}..."):
                deployed = await deploy_gateway_contracts(rpc, Account.from_key(key))
        return {
            "chainId": chain,
            "factory": deployed.factory,
            "implementation": deployed.implementation,
        }

    try:
        print_record(asyncio.run(main()), as_json)
    except (DeployError, RpcError) as exc:
        raise fail(str(exc)) from None


@chain_app.command("status")
def chain_status(as_json: JsonFlag = False) -> None:
    """Head, final height, cursor, lag, finality mode, lease holder and reconciliation per chain."""
    from stablegate.watcher.status import chain_statuses

    async def work(session: AsyncSession, settings: Settings) -> list[dict[str, Any]]:
        return await chain_statuses(session, load_registry(settings.chains_file))

    rows = with_session(work)
    if as_json:
        print_json(rows)
        return
    if not rows:
        error_console.print(
            "no chain has an RPC URL yet: set rpc_urls in the chains file (STABLEGATE_CHAINS_FILE)"
        )
        return
    columns = ["chain", "name", "head", "final", "cursor", "lag", "finality", "watcher"]
    columns += ["mismatches", "reconciledAt"]
    print_rows([_status_for_people(row) for row in rows], columns, as_json=False)


def _status_for_people(row: dict[str, Any]) -> dict[str, Any]:
    """A chain no watcher has reached yet says so, rather than None in every column."""
    started = row["head"] is not None
    return {
        "chain": row["chainId"],
        "name": row["name"],
        "head": row["head"] if started else "not started",
        "final": row["final"],
        "cursor": row["cursor"],
        "lag": row["lag"],
        "finality": row["finalityMode"],
        "watcher": row["watcher"],
        "mismatches": row["reconcileMismatches"],
        "reconciledAt": row["reconciledAt"],
    }
