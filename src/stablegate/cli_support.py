"""What every `stablegate` command module shares: one unit of work against the configured
database, the --json flag and the signals of long-running commands. Kept apart from cli.py so
sub-command modules can use it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.config import Settings
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.errors import GatewayError
from stablegate.migrations import upgrade
from stablegate.secret_box import SecretKeyMissing
from stablegate.stacks import install_stack_dump

T = TypeVar("T")

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
err_console = Console(stderr=True)


def with_session(func: Callable[[AsyncSession, Settings], Awaitable[T]]) -> T:
    """Run one unit of work against the configured database (migrated first when embedded);
    a business error becomes exit code 2 with its code and message."""
    settings = Settings()

    async def main() -> T:
        engine = make_engine(settings.effective_database_url)
        try:
            if settings.is_embedded:
                await upgrade(engine)
            async with session_scope(make_sessionmaker(engine)) as session:
                return await func(session, settings)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except GatewayError as exc:
        err_console.print(f"[red]error[/red] {exc.code}: {exc.message}")
        raise typer.Exit(2) from None
    except SecretKeyMissing as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None


def stop_on_signals() -> asyncio.Event:
    """For a long-running command, inside its loop: an event set by SIGINT/SIGTERM, so loops
    finish their step and exit cleanly; SIGUSR1 dumps every thread's and task's stack."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not available off the main thread or on Windows: Ctrl-C then just interrupts.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    install_stack_dump()
    return stop
