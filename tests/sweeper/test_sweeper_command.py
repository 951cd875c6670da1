"""``stablegate sweep --chain ID --once``: the function the CLI mounts, with real settings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import typer
from tests.chain_files import write_chains_file
from tests.sweeper.conftest import SweepEnv

from stablegate.sweeper.commands import sweep_command

pytestmark = [
    pytest.mark.anvil,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    pytest.mark.usefixtures("restore_logging"),
]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The command configures structlog for the process; give the other tests theirs back."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def configure(
    monkeypatch: pytest.MonkeyPatch, sweep_env: SweepEnv, database_url: str, tmp_path: Path
) -> None:
    watch = sweep_env.watch
    assert watch.chain.factory and watch.chain.implementation
    chains = write_chains_file(
        tmp_path / "chains.toml",
        watch.chain.rpc_urls[:1],
        factory=watch.chain.factory,
        implementation=watch.chain.implementation,
        tokens=[(t.symbol, t.address, t.decimals) for t in watch.chain.tokens],
        sweeper='max_items = 2\nmin_sweep = { USDC = "0.5" }',
    )
    monkeypatch.setenv("STABLEGATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STABLEGATE_DATABASE_URL", database_url)
    monkeypatch.setenv("STABLEGATE_CHAINS_FILE", str(chains))
    monkeypatch.setenv("STABLEGATE_RELAYER_KEY", "0x" + bytes(sweep_env.relayer.key).hex())


async def test_sweep_once_sweeps_what_is_due_and_stops(
    sweep_env: SweepEnv,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    orders = await sweep_env.final_orders(
        [("USDC", 600_000), ("USDT", 2_000_000), ("USDT18", 10**18)]
    )
    configure(monkeypatch, sweep_env, database_url, tmp_path)
    await asyncio.to_thread(sweep_command, 31337, True)
    assert "chain 31337: 3 item(s) settled, 3 flushed" in capsys.readouterr().out
    assert [tx.status for tx in await sweep_env.txs()] == ["mined", "mined"]  # 2 per batch
    for order in orders:
        assert await sweep_env.balance(order.symbol, order.to_address) == 0
    await asyncio.to_thread(sweep_command, None, True, True)  # nothing left: a quiet pass
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary == {
        "chainId": 31337,
        "settled": 0,
        "flushed": 0,
        "retry": 0,
        "stuck": 0,
        "transactions": 0,
        "lastStep": "idle",
    }


async def test_sweep_refuses_to_start_without_a_relayer_key(
    sweep_env: SweepEnv, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, sweep_env, database_url, tmp_path)
    monkeypatch.delenv("STABLEGATE_RELAYER_KEY")
    with pytest.raises(typer.Exit) as exited:
        await asyncio.to_thread(sweep_command, 31337, True)
    assert exited.value.exit_code == 2
    monkeypatch.setenv("STABLEGATE_RELAYER_KEY", "0x" + bytes(sweep_env.relayer.key).hex())
    with pytest.raises(typer.Exit):
        await asyncio.to_thread(sweep_command, 56, True)  # no RPC for BSC here
