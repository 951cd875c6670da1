"""The dev chain: anvil with the gateway contracts, the dev tokens and a chains file."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from eth_account import Account

from stablegate.chain.anvil import ANVIL_DEFAULT_KEYS
from stablegate.chain.devchain import (
    DEFAULT_BLOCK_TIME,
    FINALIZED_LAG,
    DevChain,
    start_devchain,
)
from stablegate.chain.evm import create2
from stablegate.chain.evm.contracts import standard_token
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import get_code, to_int, transact
from stablegate.chain.registry import load_registry
from stablegate.cli import DEVCHAIN_BLOCK_TIME

# Async tests run on the session loop (asyncio auto mode, session default loop scope).
pytestmark = pytest.mark.anvil

TOKEN = standard_token()  # the ERC-20 views are the same on the dev USDT
HOLDERS = [Account.from_key(key).address for key in ANVIL_DEFAULT_KEYS]
EXPECTED = {"USDT": ("Tether USD", 6), "USDC": ("USD Coin", 6), "USDT18": ("Tether USD", 18)}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def devchain(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevChain]:
    async with await start_devchain(tmp_path_factory.mktemp("devchain")) as chain:
        yield chain


@pytest_asyncio.fixture(loop_scope="session")
async def rpc(devchain: DevChain) -> AsyncIterator[RpcClient]:
    async with RpcClient([devchain.rpc_url]) as client:
        yield client


async def view(rpc: RpcClient, token: str, function: str, *args: object) -> object:
    call = {"to": token, "data": "0x" + TOKEN.encode_call(function, *args).hex()}
    raw = await rpc.call("eth_call", [call, "latest"])
    return TOKEN.decode_result(function, bytes.fromhex(raw[2:]))[0]


async def test_info_is_the_cli_line(devchain: DevChain) -> None:
    info = devchain.info()
    assert list(info) == ["rpcUrl", "chainId", "chainsFile", "factory", "tokens"]
    assert info["chainId"] == 31337
    assert info["factory"] == create2.factory_address()
    assert set(info["tokens"]) == {"USDT", "USDC", "USDT18"}
    assert json.loads(json.dumps(info)) == info


async def test_contracts_and_tokens(devchain: DevChain, rpc: RpcClient) -> None:
    assert await get_code(rpc, create2.factory_address())
    assert await get_code(rpc, create2.implementation_address())
    assert devchain.implementation == create2.implementation_address()
    for symbol, (name, decimals) in EXPECTED.items():
        token = devchain.tokens[symbol]
        assert await view(rpc, token, "symbol") == symbol
        assert await view(rpc, token, "decimals") == decimals
        assert str(await view(rpc, token, "name")).startswith(name)


async def test_first_ten_accounts_hold_a_million_of_each(
    devchain: DevChain, rpc: RpcClient
) -> None:
    calls = [
        (
            "eth_call",
            [
                {"to": token, "data": "0x" + TOKEN.encode_call("balanceOf", holder).hex()},
                "latest",
            ],
        )
        for token in devchain.tokens.values()
        for holder in HOLDERS
    ]
    balances = [to_int(raw) for raw in await rpc.batch(calls)]
    expected = [
        1_000_000 * 10 ** EXPECTED[symbol][1] for symbol in devchain.tokens for _ in HOLDERS
    ]
    assert balances == expected
    assert rpc.http_requests == 1


async def test_chains_file_loads(devchain: DevChain) -> None:
    chain = load_registry(devchain.chains_file).get(31337)
    assert chain is not None
    assert chain.rpc_urls == (devchain.rpc_url,)
    assert chain.factory == devchain.factory
    assert chain.implementation == devchain.implementation
    assert chain.confirmations == 2
    assert {t.symbol: (t.address, t.decimals) for t in chain.tokens} == {
        symbol: (address, EXPECTED[symbol][1]) for symbol, address in devchain.tokens.items()
    }


async def test_finalized_trails_latest_by_two(rpc: RpcClient) -> None:
    assert FINALIZED_LAG == 2
    for _ in range(3):
        await rpc.call("anvil_mine", ["0x3"])
        latest, safe, final = await rpc.batch(
            [("eth_getBlockByNumber", [tag, False]) for tag in ("latest", "safe", "finalized")]
        )
        assert to_int(safe["number"]) == to_int(latest["number"]) - 1
        assert to_int(final["number"]) == to_int(latest["number"]) - FINALIZED_LAG


async def test_interval_mining_after_a_fast_deploy(tmp_path: Path) -> None:
    async with (
        await start_devchain(tmp_path, block_time=1) as chain,
        RpcClient([chain.rpc_url]) as rpc,
    ):
        assert await rpc.call("anvil_getAutomine", []) is False
        first = to_int(await rpc.call("eth_blockNumber", []))
        assert first < 40  # one block per deployment transaction, not one per second
        for _ in range(50):
            if to_int(await rpc.call("eth_blockNumber", [])) > first:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the interval mined no block in 2.5 s")


def test_run_devchain_forever_prints_one_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    script = (
        "import asyncio, pathlib, sys\n"
        "from stablegate.chain.devchain import run_devchain_forever\n"
        "asyncio.run(run_devchain_forever(pathlib.Path(sys.argv[1])))\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": "src"},
    ) as process:
        try:
            assert process.stdout is not None and process.stderr is not None
            info = json.loads(process.stdout.readline())
            assert info["chainsFile"] == str(tmp_path / "devchain-chains.toml")
            request = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
            assert httpx.post(info["rpcUrl"], json=request).json()["result"] == "0x7a69"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0, process.stderr.read()
            assert process.stdout.read() == b"", "one line only"
            with pytest.raises(httpx.ConnectError):
                httpx.post(info["rpcUrl"], json=request)
        finally:
            process.kill()


async def test_fractional_block_time_is_given_at_launch(tmp_path: Path) -> None:
    async with (
        await start_devchain(tmp_path, block_time=0.1) as chain,
        RpcClient([chain.rpc_url]) as rpc,
    ):
        first = to_int(await rpc.call("eth_blockNumber", []))
        await asyncio.sleep(0.35)
        assert to_int(await rpc.call("eth_blockNumber", [])) >= first + 2


async def test_the_command_finalises_a_payment_without_further_transactions(
    tmp_path: Path,
) -> None:
    """Issue 9, item 7: `stablegate devchain` as started by hand mines a block every second, as
    its chains file says, so a lone transfer becomes final (2 blocks) with nothing else sent."""
    assert DEVCHAIN_BLOCK_TIME == DEFAULT_BLOCK_TIME == 1
    env = {**os.environ, "PYTHONPATH": "src", "STABLEGATE_DATA_DIR": str(tmp_path)}
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "stablegate.cli", "devchain", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert process.stdout is not None
        info = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        assert info["chainsFile"] == str(tmp_path / "devchain" / "devchain-chains.toml")
        chain = load_registry(Path(info["chainsFile"])).get(31337)
        assert chain is not None and (chain.block_time, chain.confirmations) == (1, 2)
        async with RpcClient([info["rpcUrl"]]) as rpc:
            assert await rpc.call("anvil_getAutomine", []) is False
            payer = Account.from_key(ANVIL_DEFAULT_KEYS[1])
            call = TOKEN.encode_call("transfer", HOLDERS[5], 1_000_000)
            receipt = await transact(rpc, payer, info["tokens"]["USDT"], call)
            mined = to_int(receipt["blockNumber"])
            for _ in range(100):
                final = await rpc.call("eth_getBlockByNumber", ["finalized", False])
                if to_int(final["number"]) >= mined:
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail(f"block {mined} not final after 10 s")
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0


def test_the_readable_lines_say_how_blocks_come(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": "src", "STABLEGATE_DATA_DIR": str(tmp_path)}
    with subprocess.Popen(
        [sys.executable, "-m", "stablegate.cli", "devchain"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline() for _ in range(7)]
            assert lines[0].startswith("dev chain 31337 at http://127.0.0.1:")
            assert "a block every 1 s, payments final 2 blocks later" in "".join(lines)
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
