"""The local dev chain: anvil with the gateway contracts and the dev tokens, and a chains file.

``stablegate devchain`` is :func:`run_devchain_forever`; tests call :func:`start_devchain`.

Finality: anvil answers the ``safe`` and ``finalized`` tags as the latest block minus one and
two epochs (``--slots-in-an-epoch`` blocks each, saturating at block 0). The dev chain runs with
one slot per epoch, so ``finalized`` trails ``latest`` by exactly :data:`FINALIZED_LAG` = 2 blocks
(checked on anvil 1.7.1; the default of 32 slots would hold it at block 0 for 64 blocks) and
the chains file's ``confirmations = 2`` says the same for count-based finality.

Blocks: ``stablegate devchain`` mines a block every :data:`DEFAULT_BLOCK_TIME` second, as its
chains file says (``block_time = 1``), so a payment becomes final two blocks (seconds) later
without any further transaction. Without ``block_time`` (the tests' chains, which mine on demand)
anvil mines one block per transaction, and ``finalized`` only moves when two more transactions
or ``anvil_mine`` calls follow a payment. With ``block_time``, the contracts and
tokens are still deployed on instant mining and interval mining is switched on afterwards when
``block_time`` is a whole number of seconds (anvil's ``evm_setIntervalMining`` takes whole
seconds); a fractional ``block_time`` is given to anvil at launch, so deploying then takes about
35 blocks of that time.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from eth_account import Account
from eth_account.signers.local import LocalAccount

from stablegate.chain.anvil import ANVIL_CHAIN_ID, ANVIL_DEFAULT_KEYS, AnvilNode
from stablegate.chain.evm.deploy import DEV_TOKENS, deploy_dev_tokens, deploy_gateway_contracts
from stablegate.chain.evm.rpc import RpcClient

SLOTS_PER_EPOCH = 1
FINALIZED_LAG = 2 * SLOTS_PER_EPOCH
CONFIRMATIONS = 2
# Seconds per block of the dev chain started by hand: blocks keep coming, so payments finalise.
DEFAULT_BLOCK_TIME = 1.0
CHAINS_FILE_NAME = "devchain-chains.toml"
# Whole tokens minted to each of anvil's ten default accounts, per dev token.
MINT_WHOLE_TOKENS = 1_000_000


@dataclass
class DevChain:
    """A running dev chain. ``stop()`` it (or ``async with``) when done."""

    rpc_url: str
    chain_id: int
    chains_file: Path
    factory: str
    implementation: str
    tokens: dict[str, str]  # symbol -> checksummed address
    node: AnvilNode = field(repr=False)

    def info(self) -> dict[str, Any]:
        """The ``stablegate devchain --json`` line (docs/DESIGN.md §12)."""
        return {
            "rpcUrl": self.rpc_url,
            "chainId": self.chain_id,
            "chainsFile": str(self.chains_file),
            "factory": self.factory,
            "tokens": dict(self.tokens),
        }

    def stop(self) -> None:
        self.node.stop()

    async def __aenter__(self) -> DevChain:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.stop)


async def start_devchain(
    data_dir: Path,
    *,
    port: int | None = None,
    block_time: float | None = None,
    host: str = "127.0.0.1",
) -> DevChain:
    """Starts anvil (chain 31337), deploys the factory and implementation through the CREATE2
    deployer and the dev tokens ``USDT``, ``USDC``, ``USDT18``, mints 1,000,000 of each to
    anvil's ten default accounts, and writes ``data_dir/devchain-chains.toml``."""
    if block_time is not None and block_time <= 0:
        raise ValueError("block_time must be positive")
    interval_later = block_time is not None and float(block_time).is_integer()
    node = AnvilNode(
        port=port,
        host=host,
        chain_id=ANVIL_CHAIN_ID,
        block_time=None if interval_later else block_time,
        extra_args=["--slots-in-an-epoch", str(SLOTS_PER_EPOCH)],
    )
    await asyncio.to_thread(node.start)
    try:
        deployer: LocalAccount = Account.from_key(ANVIL_DEFAULT_KEYS[0])
        holders = [Account.from_key(key).address for key in ANVIL_DEFAULT_KEYS]
        async with RpcClient([node.url]) as rpc:
            contracts = await deploy_gateway_contracts(rpc, deployer)
            tokens = await deploy_dev_tokens(rpc, deployer, holders, MINT_WHOLE_TOKENS)
            if interval_later:
                assert block_time is not None
                await rpc.call("evm_setIntervalMining", [int(block_time)])
        chains_file = data_dir / CHAINS_FILE_NAME
        text = chains_toml(
            node.url, contracts.factory, contracts.implementation, tokens, block_time
        )
        await asyncio.to_thread(_write, chains_file, text)
    except BaseException:
        await asyncio.to_thread(node.stop)
        raise
    return DevChain(
        rpc_url=node.url,
        chain_id=ANVIL_CHAIN_ID,
        chains_file=chains_file,
        factory=contracts.factory,
        implementation=contracts.implementation,
        tokens=tokens,
        node=node,
    )


def chains_toml(
    rpc_url: str,
    factory: str,
    implementation: str,
    tokens: dict[str, str],
    block_time: float | None = None,
) -> str:
    """The ``[chains.31337]`` section, in the format of the packaged ``chains.toml``."""
    lines = [
        "# Written by `stablegate devchain`; valid while that anvil node runs.",
        f"[chains.{ANVIL_CHAIN_ID}]",
        'name = "Local dev chain"',
        'network = "devchain"',
        "testnet = true",
        f"confirmations = {CONFIRMATIONS}",
        f"block_time = {block_time or 1:g}",
        f"rpc_urls = [{json.dumps(rpc_url)}]",
        f'factory = "{factory}"',
        f'implementation = "{implementation}"',
        "tokens = [",
        *(
            f'  {{ symbol = "{symbol}", address = "{address}", decimals = {decimals} }},'
            for symbol, address in tokens.items()
            for decimals in [DEV_TOKENS[symbol][1]]
        ),
        "]",
    ]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")


async def run_devchain_forever(
    data_dir: Path,
    *,
    port: int | None = None,
    block_time: float | None = DEFAULT_BLOCK_TIME,
    as_json: bool = True,
    out: TextIO | None = None,
) -> None:
    """Starts the dev chain (a block every ``block_time`` seconds), prints its
    :meth:`DevChain.info` (one JSON line, or readable lines without ``as_json``), and runs
    until SIGINT or SIGTERM, then stops anvil."""
    out = out or sys.stdout
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        async with await start_devchain(data_dir, port=port, block_time=block_time) as chain:
            info = chain.info()
            if as_json:
                out.write(json.dumps(info) + "\n")
            else:
                out.write(f"dev chain {info['chainId']} at {info['rpcUrl']}\n")
                out.write(f"chains file: {info['chainsFile']}\n")
                out.write(f"factory: {info['factory']}\n")
                for symbol, address in info["tokens"].items():
                    out.write(f"{symbol}: {address}\n")
                out.write(f"a block every {block_time:g} s" if block_time else "a block per tx")
                out.write(f", payments final {FINALIZED_LAG} blocks later\n")
                out.write("anvil's first ten default accounts hold the tokens; Ctrl-C stops\n")
            out.flush()
            await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
