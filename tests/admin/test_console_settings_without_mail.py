"""The console's settings on a gateway without SMTP: ``open`` cannot be chosen (its accounts
could never confirm their address), and the links the dashboard could not mail are listed for
the operator to hand out."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import select
from tests.admin.console_support import Console, make_operator
from tests.dashboard.dashboard_support import Browser

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.db.engine import session_scope
from stablegate.models.gateway_setting import GatewaySetting

SETTINGS = "/admin/settings"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, chains_file: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        chains_file=chains_file,
        secret_key=Fernet.generate_key().decode(),
        public_url="https://pay.example.com",
        signup_policy="approval",
        _env_file=None,  # type: ignore[call-arg]
    )


async def test_open_is_refused_and_the_waiting_links_are_listed(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock
) -> None:
    await make_operator(gateway, clock)
    async with Console(app) as console, Browser(app) as shop:
        await console.signed_in()
        page = await console.get(SETTINGS)
        assert 'value="open" disabled' in page.text
        assert 'id="links-empty"' in page.text
        refused = await console.post(f"{SETTINGS}/policy", {"policy": "open"}, token_from=SETTINGS)
        assert refused.status_code == 400
        assert "Open sign-up needs STABLEGATE_SMTP_URL" in refused.text
        async with session_scope(gateway.sessions) as session:
            assert await session.scalar(select(GatewaySetting)) is None

        await shop.sign_up("Tea House", "tea@house.example")
        listed = await console.get(SETTINGS)
        assert "tea@house.example" in listed.text
        assert "https://pay.example.com/dashboard/verify?token=" in listed.text


async def test_an_open_policy_stored_before_smtp_was_removed_reads_as_the_environments(
    app: FastAPI, gateway: GatewayContext
) -> None:
    async with session_scope(gateway.sessions) as session:
        session.add(
            GatewaySetting(name="signup_policy", value="open", updated_at_ms=0, updated_by="t")
        )
    async with Browser(app) as shop:
        page = await shop.get("/dashboard/signup")
        assert "operator approves new accounts before they can log in" in page.text
