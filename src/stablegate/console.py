"""The command line's shared plumbing, used by ``cli.py`` and every package's ``commands.py``:
the --json flag, how a record or rows are printed, the error console, one unit of work against
the configured database, and the signals of long-running commands."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text
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


def iso_time(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC, e.g. ``2026-11-27T08:00:00Z`` (milliseconds shown
    only when there are any)."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    text = moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")
    return text.replace("+00:00", "Z")


def is_time_field(key: str) -> bool:
    """The wire's times are epoch milliseconds in fields named ``...Time``, ``...At`` or
    ``...Until`` (``expireTime``, ``reconciledAt``, ``previousValidUntil``)."""
    return key.endswith(("Time", "At", "Until"))


def shown(key: str, value: Any) -> str:
    """A field for people: times in ISO 8601 UTC, lists joined, nothing as ``-``."""
    if value is None or (isinstance(value, list | dict) and not value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and is_time_field(key):
        return iso_time(value)
    if isinstance(value, list) and not any(isinstance(item, list | dict) for item in value):
        return ", ".join(str(item) for item in value)
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def print_record(data: dict[str, Any], as_json: bool) -> None:
    """One object: a JSON line, or its fields as ``key  value`` lines (no table: a value such
    as a tx hash stays whole on its line at any width, and piped output greps cleanly)."""
    if as_json:
        print_json(data)
        return
    print_fields([(key, shown(key, value)) for key, value in data.items()])


def print_fields(fields: list[tuple[str, str]]) -> None:
    width = max((len(key) for key, _ in fields), default=0)
    for key, value in fields:
        typer.echo(f"{key.ljust(width)}  {value}")


def print_rows(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    """A list: one JSON array of every field, or ``columns`` for people: a table when every
    value fits whole in the terminal's width (80 when piped), else one ``key  value`` block
    per row. Values are never cut."""
    if as_json:
        print_json(rows)
        return
    cells = [[shown(column, row.get(column)) for column in columns] for row in rows]
    if not cells:
        error_console.print("(none)")
        return
    widths = [max(len(column), *(len(row[i]) for row in cells)) for i, column in enumerate(columns)]
    # A box table spends one character per border and one of padding either side per column.
    # COLUMNS, else the terminal's width, else (piped) 80; read per call, not once per process.
    room = shutil.get_terminal_size().columns
    if sum(widths) + 3 * len(columns) + 1 <= room:
        table = Table(box=box.SQUARE)
        for column, width in zip(columns, widths, strict=True):
            table.add_column(column, min_width=width, no_wrap=True, overflow="fold")
        for row in cells:
            table.add_row(*(Text(cell) for cell in row))
        # A console of this width: ``output``'s own was fixed when the process started.
        Console(width=room).print(table)
        return
    for index, row in enumerate(cells):
        if index:
            typer.echo("")
        print_fields(list(zip(columns, row, strict=True)))


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
