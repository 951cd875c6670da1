"""Writes the chains file (``chains.toml``) tests hand to the gateway, the watcher or the CLI, and
the gateway's settings on the dev chain."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from stablegate.chain.evm.deploy import DeployedContracts
from stablegate.config import Settings

# A port nothing listens on: for tests that never reach a node.
UNREACHABLE_RPC = "http://127.0.0.1:1"
DEV_CHAIN_ID = 31337
# Decimals of the dev tokens deploy_dev_tokens() creates (tests/chain_fixtures.py).
DEV_DECIMALS = {"USDT": 6, "USDC": 6, "USDT18": 18}


def _toml(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # a TOML basic string for the plain text tests use


def write_chains_file(
    path: Path,
    rpc_urls: Sequence[str] = (UNREACHABLE_RPC,),
    *,
    chain_id: int = DEV_CHAIN_ID,
    tokens: Iterable[tuple[str, str, int]] = (),
    sweeper: str = "",
    **fields: str | int | bool,
) -> Path:
    """One ``[chains.<chain_id>]`` table: ``rpc_urls``, then ``fields`` (factory,
    implementation, name, confirmations...) in the order given, then ``tokens`` as
    (symbol, address, decimals); ``sweeper`` is the TOML body of its ``.sweeper`` table."""
    lines = [f"[chains.{chain_id}]", f"rpc_urls = [{', '.join(_toml(u) for u in rpc_urls)}]"]
    lines += [f"{key} = {_toml(value)}" for key, value in fields.items()]
    token_rows = [
        f"  {{ symbol = {_toml(symbol)}, address = {_toml(address)}, decimals = {decimals} }},"
        for symbol, address, decimals in tokens
    ]
    if token_rows:
        lines += ["tokens = [", *token_rows, "]"]
    if sweeper:
        lines += ["", f"[chains.{chain_id}.sweeper]", sweeper.strip()]
    path.write_text("\n".join(lines) + "\n")
    return path


def dev_tokens_of(dev_tokens: dict[str, str], *symbols: str) -> list[tuple[str, str, int]]:
    """(symbol, address, decimals) of the named dev tokens, for ``tokens=``."""
    return [(symbol, dev_tokens[symbol], DEV_DECIMALS[symbol]) for symbol in symbols]


def write_dev_chains_file(
    path: Path,
    rpc_url: str,
    contracts: DeployedContracts,
    dev_tokens: dict[str, str],
    symbols: Sequence[str] = ("USDT",),
) -> Path:
    """The dev chain with the gateway's deployed contracts and the dev USDT (or ``symbols``)."""
    return write_chains_file(
        path,
        [rpc_url],
        factory=contracts.factory,
        implementation=contracts.implementation,
        tokens=dev_tokens_of(dev_tokens, *symbols),
    )


def dev_chain_settings(
    folder: Path,
    rpc_url: str,
    contracts: DeployedContracts,
    dev_tokens: dict[str, str],
    symbols: Sequence[str] = ("USDT",),
    **overrides: Any,
) -> Settings:
    """A gateway on the dev chain (``write_dev_chains_file``, accepting the dev ``symbols``) with
    its data, SQLite database and chains file in ``folder``, a fresh secret key and no ``.env``;
    ``overrides`` are the test's own settings."""
    chains = write_dev_chains_file(folder / "chains.toml", rpc_url, contracts, dev_tokens, symbols)
    return Settings(
        data_dir=folder / "data",
        database_url=f"sqlite+aiosqlite:///{folder / 'gateway.db'}",
        chains_file=chains,
        secret_key=Fernet.generate_key().decode(),
        _env_file=None,  # type: ignore[call-arg]
        **overrides,
    )
