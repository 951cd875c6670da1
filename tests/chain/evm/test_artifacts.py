"""The committed contract artifacts are what the committed sources compile to."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from stablegate.chain.evm.contracts import load_artifact

REPO = Path(__file__).resolve().parents[3]
NAMES = ("Forwarder", "ForwarderFactory", "StandardToken", "TetherToken")


def test_artifacts_are_current() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot recompile the contracts to compare")
    result = subprocess.run(
        [node, "scripts/compile_contracts.mjs", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", NAMES)
def test_artifact_shape(name: str) -> None:
    path = resources.files("stablegate.chain.evm").joinpath("artifacts", f"{name}.json")
    text = path.read_text()
    raw = json.loads(text)
    assert set(raw) == {
        "contractName",
        "abi",
        "bytecode",
        "deployedBytecode",
        "compiler",
        "evmVersion",
    }
    assert (raw["contractName"], raw["compiler"], raw["evmVersion"]) == (name, "0.8.37", "shanghai")
    assert text == json.dumps(raw, indent=2, sort_keys=True) + "\n"
    artifact = load_artifact(name)
    assert artifact.bytecode and artifact.deployed_bytecode
    # bytecodeHash "none": the CBOR metadata holds only the compiler version, no content hash.
    assert b"ipfs" not in artifact.deployed_bytecode
    assert b"bzzr" not in artifact.deployed_bytecode
