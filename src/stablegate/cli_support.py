"""What every `stablegate` command module shares: one unit of work against the configured
database, and the --json flag. Kept apart from cli.py so sub-command modules can use it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.config import Settings
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.db.migrate import upgrade
from stablegate.errors import GatewayError
from stablegate.merchants.secrets import SecretKeyMissing

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
