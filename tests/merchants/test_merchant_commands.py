"""``stablegate merchant ...``: merchants, keys, policies and payout addresses from the CLI,
on the settings from the environment."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from tests.cli_env import cli_env, runner  # noqa: F401  (fixture)
from tests.support import PAYOUT
from tests.webhooks.test_webhook_urls import BAD_URLS

from stablegate.chain.registry import ChainRegistry
from stablegate.cli import app
from stablegate.config import Settings
from stablegate.console import iso_time
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.merchants import payout_check
from stablegate.merchants.payout_check import CodePresence
from stablegate.models import Merchant, PayoutAddress


def test_merchant_create_prints_the_secrets_once_as_json(cli_env: Settings) -> None:  # noqa: F811
    result = runner.invoke(
        app,
        [
            "merchant",
            "create",
            "--name",
            "Shop",
            "--payout-address",
            PAYOUT.lower(),
            "--chain",
            "31337",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(created) == {"merchantId", "apiKey", "secretKey", "webhookSecret"}
    assert created["apiKey"].startswith("ak_") and created["merchantId"].startswith("mch_")

    shown = runner.invoke(app, ["orders", "list", "--merchant-id", created["merchantId"], "--json"])
    assert shown.exit_code == 0 and json.loads(shown.stdout) == []


def test_bad_payout_address_is_a_clear_error(cli_env: Settings) -> None:  # noqa: F811
    result = runner.invoke(
        app, ["merchant", "create", "--name", "Shop", "--payout-address", "0x1234"]
    )
    assert result.exit_code == 2
    assert "invalid_address" in result.output


def test_add_public_key_and_set_payout(cli_env: Settings, tmp_path: Path) -> None:  # noqa: F811
    created = json.loads(
        runner.invoke(
            app, ["merchant", "create", "--name", "S", "--payout-address", PAYOUT, "--json"]
        ).stdout
    )
    pem = tmp_path / "pub.pem"
    pem.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    result = runner.invoke(
        app,
        ["merchant", "add-public-key", "--api-key", created["apiKey"], "--pem", str(pem), "--json"],
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["fingerprint"]) == 64

    wrong_curve = tmp_path / "k1.pem"
    wrong_curve.write_bytes(
        ec.generate_private_key(ec.SECP256K1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    refused = runner.invoke(
        app,
        ["merchant", "add-public-key", "--api-key", created["apiKey"], "--pem", str(wrong_curve)],
    )
    assert refused.exit_code == 2 and "invalid_public_key" in refused.output

    unknown = runner.invoke(
        app, ["merchant", "add-public-key", "--api-key", "ak_nope", "--pem", str(pem)]
    )
    assert unknown.exit_code == 2 and "not_found" in unknown.output

    new_payout = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    moved = runner.invoke(
        app,
        [
            "merchant",
            "set-payout",
            "--merchant-id",
            created["merchantId"],
            "--chain",
            "31337",
            "--address",
            new_payout.lower(),
            "--json",
        ],
    )
    assert moved.exit_code == 0, moved.output
    assert json.loads(moved.stdout)["payoutAddress"] == new_payout


def test_set_policy_and_key_policy(cli_env: Settings) -> None:  # noqa: F811
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


def _stored(database_url: str, name: str) -> tuple[list[str | None], list[str]]:
    """The notify URLs of the merchants called ``name``, and their payout addresses."""

    async def read() -> tuple[list[str | None], list[str]]:
        engine = make_engine(database_url)
        try:
            async with session_scope(make_sessionmaker(engine)) as session:
                merchants = select(Merchant.id).where(Merchant.name == name)
                urls = await session.scalars(
                    select(Merchant.notify_url).where(Merchant.name == name)
                )
                payouts = await session.scalars(
                    select(PayoutAddress.address)
                    .where(PayoutAddress.merchant_id.in_(merchants))
                    .order_by(PayoutAddress.chain_id)
                )
                return list(urls.all()), list(payouts.all())
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _notify_urls(database_url: str, name: str) -> list[str | None]:
    return _stored(database_url, name)[0]


@pytest.mark.parametrize(("url", "reason"), BAD_URLS[:4] + BAD_URLS[10:16])
def test_a_default_notify_url_the_webhook_guard_refuses_is_never_stored(
    cli_env: Settings,  # noqa: F811
    url: str,
    reason: str,
) -> None:
    name = f"Shop {uuid.uuid4()}"  # PostgreSQL keeps other tests' merchants
    create = ["merchant", "create", "--name", name, "--payout-address", PAYOUT, "--chain", "31337"]
    bad = runner.invoke(app, [*create, "--notify-url", url])
    said = " ".join(bad.output.split())  # the console wraps long lines
    assert bad.exit_code == 2 and "invalid_notify_url" in said and reason in said
    assert _notify_urls(cli_env.effective_database_url, name) == []

    good = "https://shop.example.com/hook"
    created = runner.invoke(app, [*create, "--notify-url", good, "--json"])
    assert created.exit_code == 0, created.output
    merchant_id = json.loads(created.stdout)["merchantId"]
    set_policy = ["merchant", "set-policy", "--merchant-id", merchant_id]
    refused = runner.invoke(app, [*set_policy, "--late-payment", "complete", "--notify-url", url])
    assert refused.exit_code == 2 and "invalid_notify_url" in refused.output
    assert _notify_urls(cli_env.effective_database_url, name) == [good]
    changed = runner.invoke(app, [*set_policy, "--notify-url", "https://b\u00fccher.example/h"])
    assert changed.exit_code == 0, changed.output
    assert _notify_urls(cli_env.effective_database_url, name) == ["https://b\u00fccher.example/h"]


def test_a_payout_address_with_code_on_some_chains_needs_force(
    cli_env: Settings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command builds the check from the chains file; here the chains answer that the
    address is a contract on 31337 and has no code on 56."""
    asked: list[tuple[list[int], str]] = []

    async def mixed(_registry: ChainRegistry, chain_ids: list[int], address: str) -> CodePresence:
        asked.append((sorted(chain_ids), address))
        return {chain_id: chain_id == 31337 for chain_id in chain_ids}

    monkeypatch.setattr(payout_check, "code_presence", mixed)
    name = f"Safe {uuid.uuid4()}"
    create = ["merchant", "create", "--name", name, "--payout-address", PAYOUT.lower()]
    refused = runner.invoke(app, [*create, "--chain", "31337", "--chain", "56"])
    said = " ".join(refused.output.split())
    assert refused.exit_code == 2 and "payout_code_mismatch" in said
    assert "is a contract on chain(s) [31337] but has no code on chain(s) [56]" in said
    assert "repeat with --force" in said
    assert _stored(cli_env.effective_database_url, name) == ([], [])
    assert asked == [([56, 31337], PAYOUT)]

    forced = runner.invoke(app, [*create, "--chain", "31337", "--chain", "56", "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    assert "(--force given)" in " ".join(forced.stderr.split())
    merchant_id = json.loads(forced.stdout)["merchantId"]
    assert _stored(cli_env.effective_database_url, name) == ([None], [PAYOUT, PAYOUT])

    # Moving chain 56 alone to another address: only 56 is asked, so nothing to compare.
    other = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    set_payout = ["merchant", "set-payout", "--merchant-id", merchant_id, "--json"]
    moved = runner.invoke(app, [*set_payout, "--chain", "56", "--address", other])
    assert moved.exit_code == 0, moved.output
    # Adding a chain to an address already used on 31337 compares both.
    refused_again = runner.invoke(app, [*set_payout, "--chain", "56", "--address", PAYOUT])
    assert refused_again.exit_code == 2 and "payout_code_mismatch" in refused_again.output
    assert asked[-1] == ([56, 31337], PAYOUT)
    assert _stored(cli_env.effective_database_url, name)[1] == [other, PAYOUT]


def test_merchant_list_at_80_columns_and_as_json(
    cli_env: Settings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 9, item 11: the ids `orders list` needs are listed, whole, at 80 columns."""
    name = f"Listed Shop {uuid.uuid4()}"  # PostgreSQL keeps other tests' merchants
    create = ["merchant", "create", "--name", name, "--payout-address", PAYOUT, "--json"]
    created = json.loads(runner.invoke(app, [*create, "--chain", "31337", "--chain", "56"]).stdout)
    listed = runner.invoke(app, ["merchant", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    [mine] = [m for m in json.loads(listed.stdout) if m["merchantId"] == created["merchantId"]]
    assert mine["name"] == name and mine["chains"] == [56, 31337]
    assert set(mine) == {"merchantId", "name", "status", "chains", "createTime"}
    assert mine["status"] == "active"
    assert isinstance(mine["createTime"], int)

    monkeypatch.setenv("COLUMNS", "80")
    shown = runner.invoke(app, ["merchant", "list"])
    assert shown.exit_code == 0, shown.output
    assert "\u2026" not in shown.stdout
    assert created["merchantId"] in shown.stdout and name in shown.stdout
    assert iso_time(mine["createTime"]) in shown.stdout and "56, 31337" in shown.stdout


def test_create_prints_whole_secrets_at_80_columns(
    cli_env: Settings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = runner.invoke(
        app, ["merchant", "create", "--name", "Wide", "--payout-address", PAYOUT]
    )
    assert result.exit_code == 0, result.output
    fields = dict(line.split(maxsplit=1) for line in result.stdout.splitlines())
    assert set(fields) == {"merchantId", "apiKey", "secretKey", "webhookSecret"}
    assert fields["secretKey"].startswith("sk_") and len(fields["secretKey"]) > 40
    assert "\u2026" not in result.stdout


def test_a_chain_outside_the_registry_is_refused(cli_env: Settings) -> None:  # noqa: F811
    name = f"Chainless {uuid.uuid4()}"
    create = ["merchant", "create", "--name", name, "--payout-address", PAYOUT]
    refused = runner.invoke(app, [*create, "--chain", "31337", "--chain", "999999"])
    said = " ".join(refused.output.split())
    assert refused.exit_code == 2 and "unknown_chain" in said and "[999999]" in said
    assert "31337" in said  # the chains it does know
    assert _stored(cli_env.effective_database_url, name) == ([], [])

    merchant_id = json.loads(runner.invoke(app, [*create, "--json"]).stdout)["merchantId"]
    moved = runner.invoke(
        app,
        [
            "merchant",
            "set-payout",
            "--merchant-id",
            merchant_id,
            "--chain",
            "999999",
            "--address",
            PAYOUT,
        ],
    )
    assert moved.exit_code == 2 and "unknown_chain" in moved.output


def test_a_merchant_id_that_does_not_exist_is_an_error(cli_env: Settings) -> None:  # noqa: F811
    """Every command taking --merchant-id (the orders' and webhooks' are in their tests)."""
    for command in (
        ["merchant", "set-policy", "--merchant-id", "mch_nope", "--late-payment", "complete"],
        [
            "merchant",
            "set-payout",
            "--merchant-id",
            "mch_nope",
            "--address",
            PAYOUT,
            "--chain",
            "1",
        ],
        ["merchant", "rotate-webhook-secret", "--merchant-id", "mch_nope"],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert "merchant mch_nope not found" in result.stderr, command
        assert result.stdout == "", command
    unknown_key = runner.invoke(app, ["merchant", "set-key-policy", "--api-key", "ak_nope", "--v2"])
    assert unknown_key.exit_code == 2 and "not_found" in unknown_key.stderr
