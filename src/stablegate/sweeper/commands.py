"""``stablegate sweep [--chain ID] [--once]`` and the sweepers inside ``stablegate run``."""

from __future__ import annotations

import asyncio

import structlog
import typer
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.registry import Chain, ChainRegistry, RegistryError, load_registry
from stablegate.clock import Clock, SystemClock
from stablegate.config import Settings
from stablegate.console import fail, output, print_json, stop_on_signals
from stablegate.db.engine import make_engine, make_sessionmaker
from stablegate.logs import configure_logging
from stablegate.migrations import upgrade
from stablegate.sweeper.batch import Verdict
from stablegate.sweeper.options import SweepConfigError, SweepOptions, load_options
from stablegate.sweeper.reports import SweepOutcome, SweepReport
from stablegate.sweeper.worker import ChainSweeper

log = structlog.get_logger("stablegate.sweeper")


class SweeperSetupError(RuntimeError):
    """No relayer key, or no chain to sweep: raised before anything runs."""


def relayer_account(settings: Settings) -> LocalAccount:
    if settings.relayer_key is None:
        raise SweeperSetupError(
            "STABLEGATE_RELAYER_KEY is not set: the sweeper needs a key holding only gas"
        )
    try:
        account: LocalAccount = Account.from_key(settings.relayer_key.get_secret_value())
    except (ValueError, TypeError) as exc:
        raise SweeperSetupError("STABLEGATE_RELAYER_KEY is not a valid private key") from exc
    return account


def chains_to_sweep(registry: ChainRegistry, chain_ids: list[int] | None) -> list[Chain]:
    chains = registry.with_rpc()
    if chain_ids:
        missing = set(chain_ids) - {chain.id for chain in chains}
        if missing:
            raise SweeperSetupError(f"no RPC configured for chain(s) {sorted(missing)}")
        chains = [chain for chain in chains if chain.id in chain_ids]
    if not chains:
        raise SweeperSetupError("no chain with an RPC URL to sweep")
    return chains


async def run_sweepers(
    settings: Settings,
    registry: ChainRegistry,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    stop: asyncio.Event,
    *,
    chain_ids: list[int] | None = None,
    once: bool = False,
    options: dict[int, SweepOptions] | None = None,
) -> dict[int, list[SweepReport]]:
    """One sweeper per chain until ``stop`` is set (or, with ``once``, until each is idle).

    Returns the reports of ``once`` runs per chain id (empty lists when run forever).
    """
    relayer = relayer_account(settings)
    chains = chains_to_sweep(registry, chain_ids)
    chosen = {
        chain.id: (options or {}).get(chain.id) or load_options(chain, settings.chains_file)
        for chain in chains
    }
    clients = [RpcClient(list(chain.rpc_urls)) for chain in chains]
    results: dict[int, list[SweepReport]] = {chain.id: [] for chain in chains}
    try:
        async with asyncio.TaskGroup() as group:
            for chain, rpc in zip(chains, clients, strict=True):
                sweeper = ChainSweeper(
                    chain=chain,
                    sessions=sessions,
                    clock=clock,
                    rpc=rpc,
                    relayer=relayer,
                    options=chosen[chain.id],
                    step_timeout=settings.step_timeout_s,
                )
                if once:
                    group.create_task(_once(sweeper, results[chain.id]))
                else:
                    group.create_task(sweeper.run_forever(stop))
    finally:
        for rpc in clients:
            await rpc.aclose()
    return results


async def _once(sweeper: ChainSweeper, into: list[SweepReport]) -> None:
    into.extend(await sweeper.run_until_idle())


def sweep_command(chain: int | None = None, once: bool = False, as_json: bool = False) -> None:
    """Entry point for ``stablegate sweep [--chain ID] [--once] [--json]``: sweeps every chain
    with an RPC URL (or only ``chain``) forever, or until nothing is due with ``once`` (then
    prints a summary per chain, one JSON line each with ``as_json``). Exit code 2 on a setup
    error (no relayer key, chain without RPC, malformed sweeper settings)."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    try:
        registry = load_registry(settings.chains_file)
        results = asyncio.run(_main(settings, registry, [chain] if chain else None, once))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except (SweeperSetupError, SweepConfigError, RegistryError) as exc:
        raise fail(str(exc)) from None
    if once:
        for chain_id, reports in results.items():
            _print_summary(chain_id, reports, as_json)


def _print_summary(chain_id: int, reports: list[SweepReport], as_json: bool) -> None:
    last = reports[-1].outcome if reports else SweepOutcome.IDLE
    settled = [item for report in reports for item in report.settled]
    summary = {
        "chainId": chain_id,
        "settled": len(settled),
        "flushed": sum(1 for item in settled if item.amount),
        "retry": sum(1 for item in settled if item.verdict is Verdict.RETRY),
        "stuck": sum(1 for item in settled if item.verdict is Verdict.STUCK),
        "transactions": sum(1 for report in reports if report.outcome is SweepOutcome.SENT),
        "lastStep": last.value,
    }
    if as_json:
        print_json(summary)
        return
    output.print(
        f"chain {chain_id}: {summary['settled']} item(s) settled, {summary['flushed']} flushed, "
        f"{summary['retry']} to retry, {summary['stuck']} stuck, "
        f"{summary['transactions']} transaction(s), last step {last.value}"
    )


async def _main(
    settings: Settings, registry: ChainRegistry, chain_ids: list[int] | None, once: bool
) -> dict[int, list[SweepReport]]:
    relayer_account(settings)  # fail before touching the database
    chains_to_sweep(registry, chain_ids)
    engine = make_engine(settings.effective_database_url)
    stop = stop_on_signals()
    try:
        if settings.is_embedded:
            await upgrade(engine)
        return await run_sweepers(
            settings,
            registry,
            make_sessionmaker(engine),
            SystemClock(),
            stop,
            chain_ids=chain_ids,
            once=once,
        )
    finally:
        await engine.dispose()
