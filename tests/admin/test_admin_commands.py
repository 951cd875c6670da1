"""``stablegate admin ...``: operators are made, listed, disabled, given a new password and
their second factor reset on the command line; the console takes what the command made. And
``stablegate merchant disable|enable``."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from uuid import uuid4

from fastapi import FastAPI
from sqlalchemy import select
from tests.admin.console_support import Console
from tests.cli_env import cli_env, runner  # noqa: F401  (fixture)
from tests.dashboard.dashboard_support import PASSWORD
from tests.support import MerchantKeys

from stablegate.api.context import GatewayContext
from stablegate.cli import app as cli
from stablegate.config import Settings
from stablegate.db.engine import session_scope
from stablegate.models import AuditEntry, Merchant
from stablegate.models.merchant import MerchantStatus

EMAIL = "Root@Gateway.Example"


def admin(*args: str, stdin: str | None = None) -> Any:
    result = runner.invoke(cli, ["admin", *args, "--json"], input=stdin)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


async def test_an_operator_made_on_the_command_line_logs_in_to_the_console(
    app: FastAPI,
    cli_env: Settings,  # noqa: F811
) -> None:
    made = await asyncio.to_thread(
        admin, "create", "--email", EMAIL, "--password-stdin", stdin=f"{PASSWORD}\n"
    )
    assert isinstance(made, dict)
    assert made["email"] == EMAIL.lower() and made["status"] == "active"
    assert made["twoFactor"] is False
    async with Console(app) as console:
        await console.signed_in(EMAIL.lower())
        listed = await asyncio.to_thread(admin, "list")
        assert isinstance(listed, list) and [row["email"] for row in listed] == [EMAIL.lower()]
        assert listed[0]["lastLoginTime"] is not None

        # A new password ends every session; the old one stops working.
        new_password = "another long enough passphrase"
        await asyncio.to_thread(
            admin, "set-password", "--email", EMAIL, "--password-stdin", stdin=new_password + "\n"
        )
        assert (await console.get("/admin/merchants")).status_code == 303
        assert (await console.log_in(EMAIL, PASSWORD)).status_code == 400
        assert (await console.log_in(EMAIL, new_password)).status_code == 303

        disabled = await asyncio.to_thread(admin, "disable", "--email", EMAIL)
        assert isinstance(disabled, dict) and disabled["status"] == "disabled"
        assert (await console.get("/admin/merchants")).status_code == 303
        assert (await console.log_in(EMAIL, new_password)).status_code == 400
        await asyncio.to_thread(admin, "enable", "--email", EMAIL)
        assert (await console.log_in(EMAIL, new_password)).status_code == 303


def test_bad_input_is_a_clear_error(cli_env: Settings) -> None:  # noqa: F811
    email = f"{uuid4().hex}@Gateway.Example"  # the database may be shared by the test run
    short = runner.invoke(
        cli, ["admin", "create", "--email", email, "--password-stdin"], input="short\n"
    )
    assert short.exit_code != 0 and "password_too_short" in short.output
    bad = runner.invoke(
        cli, ["admin", "create", "--email", "not-an-email", "--password-stdin"], input=PASSWORD
    )
    assert bad.exit_code == 2 and "invalid_email" in bad.output
    admin("create", "--email", email, "--password-stdin", stdin=PASSWORD)
    twice = runner.invoke(
        cli, ["admin", "create", "--email", email.upper(), "--password-stdin"], input=PASSWORD
    )
    assert twice.exit_code == 2 and "email_taken" in twice.output
    unknown = runner.invoke(cli, ["admin", "disable", "--email", "who@gateway.example"])
    assert unknown.exit_code == 2 and "not_found" in unknown.output


def test_a_lost_second_factor_is_reset_and_audited(cli_env: Settings) -> None:  # noqa: F811
    email = f"{uuid4().hex}@gateway.example"
    admin("create", "--email", email, "--password-stdin", stdin=PASSWORD)
    reset = admin("reset-second-factor", "--email", email)
    assert isinstance(reset, dict) and reset["twoFactor"] is False


async def test_merchant_disable_and_enable_on_the_command_line(
    cli_env: Settings,  # noqa: F811
    gateway: GatewayContext,
    merchant: MerchantKeys,
) -> None:
    result = await asyncio.to_thread(
        runner.invoke,
        cli,
        [
            "merchant",
            "disable",
            "--merchant-id",
            merchant.merchant_id,
            "--reason",
            "unpaid",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "disabled"
    async with session_scope(gateway.sessions) as session:
        held = await session.get(Merchant, merchant.merchant_id)
        assert held is not None and held.status == MerchantStatus.DISABLED
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "merchant.disabled")
        )
        assert entry is not None and entry.details == {"from": "active", "reason": "unpaid"}
    enabled = await asyncio.to_thread(
        runner.invoke, cli, ["merchant", "enable", "--merchant-id", merchant.merchant_id, "--json"]
    )
    assert enabled.exit_code == 0 and json.loads(enabled.stdout)["status"] == "active"
