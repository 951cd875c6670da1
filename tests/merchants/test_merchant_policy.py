"""Merchant policies and key policies from the CLI, and the payout code check."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.support import PAYOUT
from tests.test_cli import cli_env  # noqa: F401  (fixture)
from tests.webhooks.test_webhook_urls import BAD_URLS
from typer.testing import CliRunner

from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm.deploy import DeployedContracts
from stablegate.chain.registry import Chain, ChainRegistry
from stablegate.cli import app
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.merchants.payout_check import code_presence, mixed_code_warning
from stablegate.models import Merchant

runner = CliRunner()


def test_set_policy_and_key_policy(cli_env: dict[str, str]) -> None:  # noqa: F811
    created = json.loads(
        runner.invoke(
            app,
            [
                "merchant",
                "create",
                "--name",
                "S",
                "--payout-address",
                PAYOUT,
                "--chain",
                "31337",
                "--json",
            ],
        ).stdout
    )
    result = runner.invoke(
        app,
        [
            "merchant",
            "set-policy",
            "--merchant-id",
            created["merchantId"],
            "--late-payment",
            "complete",
            "--underpay-tolerance",
            "0.005",
            "--deposit-strategy",
            "unique_amount",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "merchantId": created["merchantId"],
        "latePayment": "complete",
        "underpayTolerancePpm": 5000,
        "depositStrategy": "unique_amount",
    }
    bad = runner.invoke(
        app,
        [
            "merchant",
            "set-policy",
            "--merchant-id",
            created["merchantId"],
            "--underpay-tolerance",
            "0.5",
        ],
    )
    assert bad.exit_code == 2 and "invalid_policy" in bad.output
    keys = runner.invoke(
        app,
        [
            "merchant",
            "set-key-policy",
            "--api-key",
            created["apiKey"],
            "--v2",
            "--signed-reads",
            "--json",
        ],
    )
    assert keys.exit_code == 0, keys.output
    assert (
        json.loads(keys.stdout)["v2Enabled"] is True
        and json.loads(keys.stdout)["signedReads"] is True
    )


def test_mixed_code_warning() -> None:
    assert mixed_code_warning({1: True, 56: False}) is not None
    assert mixed_code_warning({1: True, 56: True}) is None
    assert mixed_code_warning({1: False, 56: None}) is None


@pytest.mark.anvil
async def test_code_presence_reads_the_chain(
    anvil: AnvilNode, gateway_contracts: DeployedContracts, tmp_path: Path
) -> None:
    registry = ChainRegistry(
        {
            31337: Chain(
                id=31337,
                name="dev",
                network="dev",
                confirmations=2,
                block_time=1,
                rpc_urls=(anvil.url,),
            ),
            56: Chain(id=56, name="bsc", network="bsc", confirmations=15, block_time=3),
        }
    )
    presence = await code_presence(registry, [31337, 56], gateway_contracts.factory)
    assert presence == {31337: True, 56: None}
    assert (await code_presence(registry, [31337], PAYOUT)) == {31337: False}


def _notify_urls(database_url: str, name: str) -> list[str | None]:
    async def read() -> list[str | None]:
        engine = make_engine(database_url)
        try:
            async with session_scope(make_sessionmaker(engine)) as session:
                query = select(Merchant.notify_url).where(Merchant.name == name)
                return list((await session.scalars(query)).all())
        finally:
            await engine.dispose()

    return asyncio.run(read())


@pytest.mark.parametrize(("url", "reason"), BAD_URLS[:4] + BAD_URLS[10:16])
def test_a_default_notify_url_the_webhook_guard_refuses_is_never_stored(
    cli_env: dict[str, str],  # noqa: F811
    url: str,
    reason: str,
) -> None:
    name = f"Shop {uuid.uuid4()}"  # PostgreSQL keeps other tests' merchants
    create = ["merchant", "create", "--name", name, "--payout-address", PAYOUT, "--chain", "31337"]
    bad = runner.invoke(app, [*create, "--notify-url", url])
    said = " ".join(bad.output.split())  # the console wraps long lines
    assert bad.exit_code == 2 and "invalid_notify_url" in said and reason in said
    assert _notify_urls(cli_env["STABLEGATE_DATABASE_URL"], name) == []

    good = "https://shop.example.com/hook"
    created = runner.invoke(app, [*create, "--notify-url", good, "--json"])
    assert created.exit_code == 0, created.output
    merchant_id = json.loads(created.stdout)["merchantId"]
    set_policy = ["merchant", "set-policy", "--merchant-id", merchant_id]
    refused = runner.invoke(app, [*set_policy, "--late-payment", "complete", "--notify-url", url])
    assert refused.exit_code == 2 and "invalid_notify_url" in refused.output
    assert _notify_urls(cli_env["STABLEGATE_DATABASE_URL"], name) == [good]
    changed = runner.invoke(app, [*set_policy, "--notify-url", "https://b\u00fccher.example/h"])
    assert changed.exit_code == 0, changed.output
    assert _notify_urls(cli_env["STABLEGATE_DATABASE_URL"], name) == [
        "https://b\u00fccher.example/h"
    ]
