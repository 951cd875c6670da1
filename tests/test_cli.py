"""The stablegate command: merchants and keys from the CLI, on the settings from the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tests.chain_files import write_chains_file
from tests.support import PAYOUT
from typer.testing import CliRunner

from stablegate.chain.anvil import ANVIL_DEFAULT_KEYS, AnvilNode
from stablegate.chain.evm import create2
from stablegate.cli import app

runner = CliRunner()


@pytest.fixture
def cli_env(
    tmp_path: Path, database_url: str, chains_file: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    env = {
        "STABLEGATE_DATA_DIR": str(tmp_path / "data"),
        "STABLEGATE_DATABASE_URL": database_url,
        "STABLEGATE_CHAINS_FILE": str(chains_file),
        "STABLEGATE_SECRET_KEY": Fernet.generate_key().decode(),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    return env


def test_merchant_create_prints_the_secrets_once_as_json(cli_env: dict[str, str]) -> None:
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


def test_bad_payout_address_is_a_clear_error(cli_env: dict[str, str]) -> None:
    result = runner.invoke(
        app, ["merchant", "create", "--name", "Shop", "--payout-address", "0x1234"]
    )
    assert result.exit_code == 2
    assert "invalid_address" in result.output


def test_add_public_key_and_set_payout(cli_env: dict[str, str], tmp_path: Path) -> None:
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


def test_secret_key_prints_a_fernet_key() -> None:
    result = runner.invoke(app, ["secret-key"])
    assert result.exit_code == 0
    Fernet(result.stdout.strip().encode())


@pytest.mark.anvil
def test_chain_deploy_and_status(
    tmp_path: Path, anvil: AnvilNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    chains = write_chains_file(tmp_path / "chains.toml", [anvil.url])
    monkeypatch.setenv("STABLEGATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STABLEGATE_CHAINS_FILE", str(chains))
    monkeypatch.setenv("STABLEGATE_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("DEPLOYER_KEY", ANVIL_DEFAULT_KEYS[0])
    result = runner.invoke(
        app, ["chain", "deploy", "--chain", "31337", "--key-env", "DEPLOYER_KEY", "--json"]
    )
    assert result.exit_code == 0, result.output
    deployed = json.loads(result.stdout.strip().splitlines()[-1])
    assert deployed["factory"] == create2.factory_address()
    missing = runner.invoke(app, ["chain", "deploy", "--chain", "1"])
    assert missing.exit_code == 2
    status = runner.invoke(app, ["chain", "status", "--json"])
    assert status.exit_code == 0, status.output
    [row] = json.loads(status.stdout)
    assert row["chainId"] == 31337 and row["watcher"] == "none"
