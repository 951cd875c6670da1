"""``stablegate chain deploy|status`` against a real dev chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from tests.chain_files import write_chains_file
from typer.testing import CliRunner

from stablegate.chain.anvil import ANVIL_DEFAULT_KEYS, AnvilNode
from stablegate.chain.evm import create2
from stablegate.cli import app

runner = CliRunner()


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
