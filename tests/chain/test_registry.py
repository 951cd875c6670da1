"""The chain registry's block explorers: EIP-3091 links where a chain has one, none on the dev
chain, operator overrides checked at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from stablegate.chain.registry import RegistryError, load_registry


def test_every_public_chain_has_an_explorer_and_the_dev_chain_none() -> None:
    registry = load_registry()
    for chain in registry:
        if chain.id == 31337:
            assert chain.explorer_url is None
            assert chain.tx_url("0xabc") is None and chain.address_url("0x1") is None
        else:
            assert chain.explorer_url is not None and chain.explorer_url.startswith("https://")
    ethereum = registry.get(1)
    assert ethereum is not None
    assert ethereum.tx_url("0xabc") == "https://etherscan.io/tx/0xabc"
    assert ethereum.address_url("0xdef") == "https://etherscan.io/address/0xdef"
    assert ethereum.tx_url(None) is None


def test_an_operator_sets_or_overrides_an_explorer(tmp_path: Path) -> None:
    path = tmp_path / "chains.toml"
    path.write_text(
        '[chains.31337]\nexplorer_url = "http://127.0.0.1:4000/"\n'
        '[chains.1]\nexplorer_url = "https://eth.blockscout.com"\n'
    )
    registry = load_registry(path)
    dev, ethereum = registry.get(31337), registry.get(1)
    assert dev is not None and dev.tx_url("0x1") == "http://127.0.0.1:4000/tx/0x1"
    assert ethereum is not None and ethereum.explorer_url == "https://eth.blockscout.com"


@pytest.mark.parametrize("url", ["ftp://x.example", "etherscan.io", "https://x.example/?q=1"])
def test_a_bad_explorer_url_stops_the_start(tmp_path: Path, url: str) -> None:
    path = tmp_path / "chains.toml"
    path.write_text(f'[chains.1]\nexplorer_url = "{url}"\n')
    with pytest.raises(RegistryError, match="explorer_url"):
        load_registry(path)
