"""The approval and invite sign-up policies, and the operator's side of each: ``merchant
approve``, ``dashboard invite`` and ``dashboard links`` (for a gateway without SMTP)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import select
from tests.cli_env import cli_env, runner  # noqa: F401  (fixture)
from tests.dashboard.dashboard_support import Browser, MailSink
from typer.testing import Result

from stablegate.api.context import GatewayContext
from stablegate.cli import app as cli
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.dashboard.invites import DAY_MS, create_invite
from stablegate.db.engine import session_scope
from stablegate.merchants.service import approve_merchant
from stablegate.models import DashboardUser, Merchant


def test_open_sign_up_without_smtp_stops_start_up_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(
        ValidationError, match="STABLEGATE_SIGNUP_POLICY=open needs STABLEGATE_SMTP_URL"
    ):
        Settings(signup_policy="open", _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="smtp://, smtp\\+starttls:// or smtps://"):
        Settings(smtp_url="http://mail.example", _env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("STABLEGATE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STABLEGATE_SIGNUP_POLICY", "open")
    monkeypatch.delenv("STABLEGATE_SMTP_URL", raising=False)
    result = runner.invoke(cli, ["serve"])
    assert result.exit_code == 2
    assert (
        "invalid settings: STABLEGATE_SIGNUP_POLICY=open needs STABLEGATE_SMTP_URL" in result.output
    )
    assert "approval or invite" in result.output


class TestApproval:
    @pytest.fixture
    def signup_policy(self) -> str:
        return "approval"

    async def test_a_pending_merchant_logs_in_once_approved_and_verified(
        self, app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
    ) -> None:
        async with Browser(app) as browser:
            answer = await browser.sign_up("Tea House", "tea@house.example")
            assert "will review your account" in answer.text
            await browser.verify(mail.link_for("tea@house.example"))
            pending = await browser.log_in("tea@house.example")
            assert pending.status_code == 400
            assert "has not approved your account yet" in pending.text
            async with session_scope(gateway.sessions) as session:
                user = await session.scalar(select(DashboardUser))
                assert user is not None
                merchant = await session.get(Merchant, user.merchant_id)
                assert merchant is not None and merchant.status == "pending"
                await approve_merchant(session, clock, merchant_id=user.merchant_id)
            assert (await browser.log_in("tea@house.example")).status_code == 303


class TestInvite:
    @pytest.fixture
    def signup_policy(self) -> str:
        return "invite"

    async def test_sign_up_needs_a_valid_unused_code(
        self, app: FastAPI, gateway: GatewayContext, clock: FakeClock
    ) -> None:
        async with session_scope(gateway.sessions) as session:
            code, _ = await create_invite(session, clock, days=2, note="for the tea house")
            old, _ = await create_invite(session, clock, days=1, note=None)
        async with Browser(app) as browser:
            form = await browser.get("/dashboard/signup")
            assert 'name="invite_code"' in form.text
            missing = await browser.sign_up("Shop", "a@shop.example")
            assert missing.status_code == 400 and "Enter the invite code" in missing.text
            wrong = await browser.sign_up("Shop", "a@shop.example", invite_code="inv_guess")
            assert wrong.status_code == 400 and "This invite code is not valid" in wrong.text
            clock.advance(DAY_MS / 1000)
            expired = await browser.sign_up("Shop", "a@shop.example", invite_code=old)
            assert expired.status_code == 400 and "This invite code is not valid" in expired.text
            made = await browser.sign_up("Shop", "a@shop.example", invite_code=code)
            assert made.status_code == 200, made.text
            reused = await browser.sign_up("Shop", "b@shop.example", invite_code=code)
            assert reused.status_code == 400 and "This invite code is not valid" in reused.text
        async with session_scope(gateway.sessions) as session:
            emails = (await session.scalars(select(DashboardUser.email))).all()
        assert emails == ["a@shop.example"]


async def run_cli(*args: str) -> Result:
    """The command in a thread: it runs its own event loop."""
    return await asyncio.to_thread(runner.invoke, cli, list(args))


@pytest.fixture
def no_smtp_settings(tmp_path: Path, database_url: str, chains_file: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        chains_file=chains_file,
        secret_key=Fernet.generate_key().decode(),
        public_url="https://pay.example.com",
        signup_policy="approval",
        _env_file=None,  # type: ignore[call-arg]
    )


async def test_without_smtp_the_operator_lists_the_links_and_approves(
    no_smtp_settings: Settings,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    migrated_sqlite: Path,
) -> None:
    from tests.conftest import copy_migrated_sqlite, empty_tables

    from stablegate.api.app import create_app
    from stablegate.migrations import upgrade

    settings = no_smtp_settings
    clock.set_ms(int(time.time() * 1000))  # the CLI reads the system clock
    copied = copy_migrated_sqlite(migrated_sqlite, settings.effective_database_url)
    gateway_app = create_app(settings, clock=clock, migrate=False)
    engine = gateway_app.state.gateway.engine
    if not settings.is_embedded:
        await empty_tables(engine)
    elif not copied:
        await upgrade(engine)
    for key, value in {
        "STABLEGATE_DATA_DIR": str(settings.data_dir),
        "STABLEGATE_DATABASE_URL": settings.effective_database_url,
        "STABLEGATE_CHAINS_FILE": str(settings.chains_file),
        "STABLEGATE_SECRET_KEY": settings.secret_key.get_secret_value()
        if settings.secret_key
        else "",
        "STABLEGATE_PUBLIC_URL": settings.public_url,
    }.items():
        monkeypatch.setenv(key, value)
    try:
        async with Browser(gateway_app) as browser:
            answer = await browser.sign_up("Tea House", "tea@house.example")
            assert "operator will send you a link to confirm your address" in answer.text
            assert "will review your account" in answer.text

            listed = await run_cli("dashboard", "links", "--json")
            assert listed.exit_code == 0, listed.output
            [link] = json.loads(listed.stdout)
            assert link["email"] == "tea@house.example" and link["purpose"] == "verify_email"
            assert link["url"].startswith("https://pay.example.com/dashboard/verify?token=lnk_")

            merchants = json.loads((await run_cli("merchant", "list", "--json")).stdout)
            [pending] = [m for m in merchants if m["merchantId"] == link["merchantId"]]
            assert pending["status"] == "pending"
            approved = await run_cli(
                "merchant", "approve", "--merchant-id", link["merchantId"], "--json"
            )
            assert approved.exit_code == 0, approved.output
            assert json.loads(approved.stdout)["status"] == "active"
            assert (await browser.log_in("tea@house.example")).status_code == 400  # unverified

            assert (await browser.verify(link["url"])).status_code == 200
            assert json.loads((await run_cli("dashboard", "links", "--json")).stdout) == []
            assert (await browser.log_in("tea@house.example")).status_code == 303

            # A password reset link waits in the same list.
            asked = await browser.post("/dashboard/forgot", {"email": "tea@house.example"})
            assert "operator can give you a link to reset its password" in asked.text
            [reset] = json.loads((await run_cli("dashboard", "links", "--json")).stdout)
            assert reset["email"] == "tea@house.example" and reset["purpose"] == "reset_password"
            assert reset["url"].startswith("https://pay.example.com/dashboard/reset?token=lnk_")
            page = await browser.get(reset["url"].split("pay.example.com", 1)[1])
            assert page.status_code == 200 and "Choose a new password" in page.text
        unknown = await run_cli("merchant", "approve", "--merchant-id", "mch_nope")
        assert unknown.exit_code == 2 and "not_found" in unknown.output
    finally:
        await engine.dispose()


def test_the_invite_command_prints_a_code_once(cli_env: Settings) -> None:  # noqa: F811
    made = runner.invoke(cli, ["dashboard", "invite", "--days", "3", "--note", "tea", "--json"])
    assert made.exit_code == 0, made.output
    record = json.loads(made.stdout)
    assert record["code"].startswith("inv_") and record["inviteId"].startswith("ivt_")
    refused = runner.invoke(cli, ["dashboard", "invite", "--days", "0"])
    assert refused.exit_code == 2 and "invalid_invite" in refused.output
