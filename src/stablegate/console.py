"""The command line's shared plumbing, used by ``cli.py`` and every package's ``commands.py``:
the --json flag, how a record or rows are printed, the error console, one unit of work against
the configured database, and the signals of long-running commands."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.config import Settings
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.errors import GatewayError
from stablegate.migrations import upgrade
from stablegate.secret_box import SecretKeyMissing
from stablegate.stacks import install_stack_dump

Result = TypeVar("Result")

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
# Tables and notes for people go to stdout, errors and warnings to stderr; with --json, stdout
# carries only the JSON.
output = Console()
error_console = Console(stderr=True)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, separators=(",", ":")))


def print_record(data: dict[str, Any], as_json: bool) -> None:
    """One object: a JSON line, or a two-column table of its fields."""
    if as_json:
        print_json(data)
        return
    table = Table(show_header=False)
    for key, value in data.items():
        table.add_row(key, "" if value is None else str(value))
    output.print(table)


def print_rows(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    """A list: one JSON array of every field, or a table of ``columns``."""
    if as_json:
        print_json(rows)
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if row.get(column) is None else str(row[column]) for column in columns))
    output.print(table)


def fail(message: str) -> typer.Exit:
    """Print an error the operator can act on; the caller raises the returned exit (code 2)."""
    error_console.print(f"[red]error[/red] {message}")
    return typer.Exit(2)


def with_session(work: Callable[[AsyncSession, Settings], Awaitable[Result]]) -> Result:
    """Run one unit of work against the configured database (migrated first when embedded);
    a business error becomes exit code 2 with its code and message."""
    settings = Settings()

    async def main() -> Result:
        engine = make_engine(settings.effective_database_url)
        try:
            if settings.is_embedded:
                await upgrade(engine)
            async with session_scope(make_sessionmaker(engine)) as session:
                return await work(session, settings)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except GatewayError as exc:
        raise fail(f"{exc.code}: {exc.message}") from None
    except SecretKeyMissing as exc:
        raise fail(str(exc)) from None


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
