"""The ``stablegate`` command. Every command reads the same Settings (STABLEGATE_* env).

This module assembles the command: each group lives in its package's ``commands.py``
(``merchant``, ``orders``, ``webhooks``, ``rates``, ``chain`` and ``watch`` in the watcher,
``sweep``, ``deliver``); what is left here starts the gateway itself or sets it up. The shared
plumbing (--json, errors, sessions, signals) is :mod:`stablegate.console`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import structlog
import typer
from cryptography.fernet import Fernet
from pydantic import ValidationError

from stablegate.admin.commands import admin_app
from stablegate.compat.callbacks import callback_formats
from stablegate.compat.commands import create_key_command
from stablegate.config import Settings
from stablegate.console import JsonFlag, error_console, fail, output, stop_on_signals
from stablegate.dashboard.commands import dashboard_app
from stablegate.db.engine import make_engine
from stablegate.logs import configure_logging
from stablegate.merchants.commands import merchant_app
from stablegate.migrations import upgrade
from stablegate.models.order import OrderStatus
from stablegate.orders.commands import orders_app
from stablegate.rates.commands import rates_app
from stablegate.secret_box import SecretKeyMissing
from stablegate.watcher.commands import chain_app, watch_command
from stablegate.webhooks.commands import (
    deliver_command,
    rotate_webhook_secret_command,
    webhooks_app,
)

log = structlog.get_logger("stablegate.cli")
app = typer.Typer(help="stablegate: self-hosted, non-custodial stablecoin payment gateway.")


@app.command("deliver")
def deliver() -> None:
    """Run the webhook delivery worker until stopped (SIGINT or SIGTERM)."""
    deliver_command(callback_formats())


@app.callback()
def _configure() -> None:
    """Logs to stderr for every command, so stdout stays machine-readable. Settings that
    cannot work together stop every command here, before anything starts."""
    try:
        settings = Settings()
    except ValidationError as exc:
        reasons = "; ".join(
            str(error["msg"]).removeprefix("Value error, ") for error in exc.errors()
        )
        raise fail(f"invalid settings: {reasons}") from None
    configure_logging(settings.log_format, settings.log_level)


# stablegate.chain.devchain.DEFAULT_BLOCK_TIME, not imported: it loads eth_account, half a
# second for every other command.
DEVCHAIN_BLOCK_TIME = 1.0
HostOption = Annotated[str, typer.Option(help="Interface to bind.")]
PortOption = Annotated[int, typer.Option(help="Port to bind.")]


@app.command()
def migrate() -> None:
    """Apply database migrations (PostgreSQL or SQLite)."""
    settings = Settings()

    async def main() -> None:
        engine = make_engine(settings.effective_database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(main())
    output.print("database is at the latest migration")


WorkersOption = Annotated[
    int,
    typer.Option(
        "--workers",
        min=1,
        help="API processes sharing the port (several need Redis for shared rate limits and"
        " bans; see README 'Processes').",
    ),
]


def _check_workers(settings: Settings, workers: int) -> None:
    """Refuse settings several API processes cannot share (exit code 2); warn about limits
    each process would count on its own."""
    from stablegate.api.processes import limits_per_process, multi_process_problem

    problem = multi_process_problem(settings, workers)
    if problem is not None:
        raise fail(problem)
    if limits_per_process(settings, workers):
        log.warning(
            "rate_limits_per_process",
            processes=workers,
            reason="STABLEGATE_REDIS_URL is not set: each API process counts rate limits and"
            f" bans on its own, so a client may get up to {workers} times each budget",
        )


def _run_processes(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a command with several API processes; their start-up errors become exit codes."""
    from stablegate.api.processes import ApiProcessFailed

    try:
        asyncio.run(main())
    except (SecretKeyMissing, OSError) as exc:
        raise fail(str(exc)) from None
    except ApiProcessFailed as exc:
        error_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(1) from None


@app.command()
def serve(
    host: HostOption = "127.0.0.1", port: PortOption = 8000, workers: WorkersOption = 1
) -> None:
    """Run the merchant API, public endpoints and cashier."""
    settings = Settings()
    if workers == 1:
        import uvicorn

        from stablegate.api.app import create_app
        from stablegate.api.server import server_config, settle_heap

        configure_logging(settings.log_format, settings.log_level)
        config = server_config(create_app(settings), settings, host, port)
        settle_heap()
        uvicorn.Server(config).run()
        return
    from stablegate.api.processes import serve_processes

    configure_logging(settings.log_format, settings.log_level, pid=True)
    _check_workers(settings, workers)

    async def main() -> None:
        await serve_processes(settings, host, port, workers, stop_on_signals())

    _run_processes(main)


@app.command()
def run(
    host: HostOption = "127.0.0.1", port: PortOption = 8000, workers: WorkersOption = 1
) -> None:
    """API, watchers, webhook delivery and sweeper in one process (the embedded default);
    with --workers N the API runs in N processes beside this one."""
    from stablegate.embedded import run_embedded
    from stablegate.rates.sources import build_sources

    settings = Settings()
    configure_logging(settings.log_format, settings.log_level, pid=workers > 1)
    _check_workers(settings, workers)

    async def main() -> None:
        await run_embedded(
            settings,
            host,
            port,
            stop_on_signals(),
            rate_sources=build_sources(settings),
            api_processes=workers,
        )

    if workers == 1:
        asyncio.run(main())
    else:
        _run_processes(main)


@app.command()
def devchain(
    port: Annotated[int | None, typer.Option(help="anvil port (default: a free one).")] = None,
    block_time: Annotated[
        float,
        typer.Option(
            help="Seconds per block. Blocks keep coming without transactions, so a payment"
            " becomes final (2 blocks later) on its own.",
            min=0.001,
        ),
    ] = DEVCHAIN_BLOCK_TIME,
    as_json: JsonFlag = False,
) -> None:
    """Start a local dev chain with the gateway contracts and the dev tokens; runs until stopped.

    Writes the chains file to point STABLEGATE_CHAINS_FILE at (data dir/devchain)."""
    from stablegate.chain.devchain import run_devchain_forever

    settings = Settings()
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

    settings = Settings()
    configure_logging(settings.log_format, "WARNING")
    result = asyncio.run(run_demo(settings, port=port, exit_when_done=exit_when_done))
    if result.status != OrderStatus.COMPLETED:
        raise typer.Exit(1)


@app.command("secret-key")
def secret_key() -> None:
    """Print a new value for STABLEGATE_SECRET_KEY."""
    typer.echo(Fernet.generate_key().decode())


app.command("watch")(watch_command)


@app.command()
def sweep(
    chain: Annotated[int | None, typer.Option(help="Only this chain id.")] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Sweep what is due, wait for it to be mined, stop.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Flush deposit contracts holding final funds to their payout addresses."""
    # Imported here: the sweeper loads eth_account, half a second for every other command.
    from stablegate.sweeper.commands import sweep_command

    sweep_command(chain, once, as_json)


# rotate-webhook-secret belongs to the webhooks package, which sits above merchants.
merchant_app.command("rotate-webhook-secret")(rotate_webhook_secret_command)
# create-key makes compatibility credentials too, which belong to compat (above merchants).
merchant_app.command("create-key")(create_key_command)
app.add_typer(merchant_app, name="merchant")
app.add_typer(orders_app, name="orders")
app.add_typer(chain_app, name="chain")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(dashboard_app, name="dashboard")
app.add_typer(admin_app, name="admin")
app.add_typer(rates_app, name="rates")


if __name__ == "__main__":
    app()
