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
from stablegate.config import Settings

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


def test_chain_status_before_any_watcher_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9, item 11: a fresh data dir says "not started" and "-", never None."""
    chains = write_chains_file(tmp_path / "chains.toml", ["http://127.0.0.1:9"])
    monkeypatch.setenv("STABLEGATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STABLEGATE_CHAINS_FILE", str(chains))
    monkeypatch.setenv("STABLEGATE_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("COLUMNS", "80")
    status = runner.invoke(app, ["chain", "status"])
    assert status.exit_code == 0, status.output
    assert "None" not in status.stdout and "not started" in status.stdout
    fields = dict(line.split(maxsplit=1) for line in status.stdout.splitlines() if line)
    assert fields["chain"] == "31337" and fields["head"] == "not started"
    assert fields["final"] == fields["lag"] == fields["reconciledAt"] == "-"
    assert fields["watcher"] == "none"
    as_json = runner.invoke(app, ["chain", "status", "--json"])
    assert as_json.exit_code == 0, as_json.output
    [row] = json.loads(as_json.stdout)
    assert row["chainId"] == 31337 and row["head"] is None  # the JSON keeps its shape


def test_chain_status_without_any_chain_to_watch_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STABLEGATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("STABLEGATE_CHAINS_FILE", raising=False)
    monkeypatch.setenv("STABLEGATE_SECRET_KEY", Fernet.generate_key().decode())
    status = runner.invoke(app, ["chain", "status"])
    assert status.exit_code == 0, status.output
    assert status.stdout == "" and "no chain has an RPC URL yet" in status.stderr
    assert Settings().chains_file is None
