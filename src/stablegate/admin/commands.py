"""``stablegate admin ...``: the console's operator accounts, made and managed only here.

- ``create --email E``: a new operator; the password is asked twice (or read from stdin with
  ``--password-stdin``, for scripts) and never printed or logged.
- ``list``; ``disable --email E`` / ``enable --email E`` (a disabled operator's sessions stop
  at once); ``set-password --email E`` (every session of the account ends);
  ``reset-second-factor --email E`` for an operator who lost both the app and the recovery codes.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.admin import accounts
from stablegate.admin.sessions import end_operator_sessions
from stablegate.clock import SystemClock
from stablegate.config import Settings
from stablegate.console import JsonFlag, error_console, fail, print_record, print_rows, with_session
from stablegate.dashboard import second_factor
from stablegate.dashboard.errors import AccountError
from stablegate.dashboard.passwords import checked_password, hash_password
from stablegate.models import AuditEntry

admin_app = typer.Typer(help="Operator accounts of the console at /admin/.")

EmailOption = Annotated[str, typer.Option(help="The operator's email address (the log-in).")]
PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        checked = checked_password(password)
    except AccountError as exc:
        raise fail(f"{exc.code}: {exc.message}") from None
    return checked


def _hashed(from_stdin: bool) -> str:
    # Argon2 before the database work, as the pages do.
    return asyncio.run(hash_password(_read_password(from_stdin)))


def _shown(operator: Any) -> dict[str, Any]:
    return {
        "operatorId": operator.id,
        "email": operator.email,
        "createTime": operator.created_at_ms,
        "lastLoginTime": operator.last_login_at_ms,
        "twoFactor": second_factor.is_enabled(operator),
        "status": "disabled" if operator.disabled_at_ms is not None else "active",
    }


@admin_app.command("create")
def create(
    email: EmailOption, password_stdin: PasswordStdin = False, as_json: JsonFlag = False
) -> None:
    """A new operator account for the console (audited)."""
    password_hash = _hashed(password_stdin)

    async def work(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        return _shown(await accounts.create_operator(session, SystemClock(), email, password_hash))

    print_record(with_session(work), as_json)
    if not as_json:
        error_console.print("Log in at <public URL>/admin/login.")


@admin_app.command("list")
def list_operators(as_json: JsonFlag = False) -> None:
    """Every operator account."""

    async def work(session: AsyncSession, _settings: Settings) -> list[dict[str, Any]]:
        return [_shown(operator) for operator in await accounts.list_operators(session)]

    columns = ["operatorId", "email", "status", "twoFactor", "createTime", "lastLoginTime"]
    print_rows(with_session(work), columns, as_json)


def _set_disabled(email: str, disabled: bool, as_json: bool) -> None:
    async def work(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        operator = await accounts.set_disabled(session, SystemClock(), email, disabled=disabled)
        return _shown(operator)

    print_record(with_session(work), as_json)


@admin_app.command("disable")
def disable(email: EmailOption, as_json: JsonFlag = False) -> None:
    """Stop an operator: every session ends at its next request, log-ins are refused."""
    _set_disabled(email, True, as_json)


@admin_app.command("enable")
def enable(email: EmailOption, as_json: JsonFlag = False) -> None:
    """Let a disabled operator log in again."""
    _set_disabled(email, False, as_json)


@admin_app.command("set-password")
def set_password(
    email: EmailOption, password_stdin: PasswordStdin = False, as_json: JsonFlag = False
) -> None:
    """A new password for an operator; every session of the account ends (audited)."""
    password_hash = _hashed(password_stdin)

    async def work(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        clock = SystemClock()
        operator = await accounts.set_password(session, clock, email, password_hash)
        await end_operator_sessions(session, clock, operator.id)
        return _shown(operator)

    print_record(with_session(work), as_json)


@admin_app.command("reset-second-factor")
def reset_second_factor(email: EmailOption, as_json: JsonFlag = False) -> None:
    """Turn off an operator's two-factor authentication (who lost the app and every recovery
    code); every session of the account ends (audited)."""

    async def work(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        clock = SystemClock()
        operator = await accounts.operator_by_email(session, email)
        await second_factor.disable(session, operator)
        await end_operator_sessions(session, clock, operator.id)
        session.add(
            AuditEntry(
                at_ms=clock.now_ms(),
                actor="cli",
                action="operator.second_factor_reset",
                subject=operator.id,
                details={"email": operator.email},
            )
        )
        return _shown(operator)

    print_record(with_session(work), as_json)
