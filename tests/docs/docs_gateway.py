"""A live gateway for the docs tests, started the way the README tells an operator to.

``stablegate run`` in a subprocess on its own data dir (SQLite, generated keys), with BNB Smart
Chain (56, the chain the guides use) served by a local anvil node that runs with chain id 56 and
holds the gateway's contracts and the dev tokens in place of the real ones. The ``stablegate``
commands the docs show run with the same environment, so they act on this gateway.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from pathlib import Path

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from tests.clients.live_gateway import run_in_fresh_loop
from tests.docs_support import tool_env

from stablegate.chain.anvil import ANVIL_DEFAULT_KEYS, AnvilNode
from stablegate.chain.evm.contracts import tether_token
from stablegate.chain.evm.deploy import deploy_dev_tokens, deploy_gateway_contracts
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import eth_call, transact

GUIDE_CHAIN_ID = 56
# anvil's default accounts: 0 deploys, 3 pays orders, 2 pays gas for flushes (1 is the
# merchants' payout address, tests.support.PAYOUT).
CUSTOMER_KEY = ANVIL_DEFAULT_KEYS[3]
GAS_KEY = ANVIL_DEFAULT_KEYS[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DocsGateway:
    """``with DocsGateway(tmp) as gateway:`` a running gateway at ``gateway.url``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.node = AnvilNode(chain_id=GUIDE_CHAIN_ID, extra_args=["--slots-in-an-epoch", "1"])
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tokens: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}

    @property
    def rpc_url(self) -> str:
        return self.node.url

    def __enter__(self) -> DocsGateway:
        self.node.start()
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        deployer: LocalAccount = Account.from_key(ANVIL_DEFAULT_KEYS[0])
        holders = [Account.from_key(CUSTOMER_KEY).address]

        async def deploy() -> tuple[str, str, dict[str, str]]:
            async with RpcClient([self.node.url]) as rpc:
                contracts = await deploy_gateway_contracts(rpc, deployer)
                tokens = await deploy_dev_tokens(rpc, deployer, holders)
            return contracts.factory, contracts.implementation, tokens

        factory, implementation, self.tokens = run_in_fresh_loop(deploy)
        # The dev tokens stand in for the chain's USDT, USDC and DAI.
        rows = [("USDT", "USDT", 6), ("USDC", "USDC", 6), ("DAI", "USDT18", 18)]
        tokens = ",\n".join(
            f'  {{ symbol = "{symbol}", address = "{self.tokens[dev]}", decimals = {decimals} }}'
            for symbol, dev, decimals in rows
        )
        chains = self.directory / "chains.toml"
        chains.write_text(
            f"[chains.{GUIDE_CHAIN_ID}]\n"
            f'rpc_urls = ["{self.node.url}"]\nconfirmations = 2\nblock_time = 1\n'
            f'factory = "{factory}"\nimplementation = "{implementation}"\n'
            f"tokens = [\n{tokens}\n]\n",
            "utf-8",
        )
        self.env = tool_env(
            {
                "STABLEGATE_DATA_DIR": str(self.directory / "gateway"),
                "STABLEGATE_CHAINS_FILE": str(chains),
                "STABLEGATE_PUBLIC_URL": self.url,
                # The shop's webhook receiver in these tests listens on 127.0.0.1.
                "STABLEGATE_ALLOW_PRIVATE_WEBHOOKS": "true",
                "STABLEGATE_LOG_LEVEL": "WARNING",
            }
        )
        self.log = (self.directory / "gateway.log").open("wb")
        self.process = subprocess.Popen(
            ["stablegate", "run", "--port", str(self.port)],
            cwd=self.directory,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start:\n{self.log_text()}")
            time.sleep(0.1)

    def log_text(self) -> str:
        path = self.directory / "gateway.log"
        return path.read_text("utf-8", "replace") if path.exists() else ""

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process is not None:
            self.log.close()
        self.node.stop()

    def pay(self, to_address: str, base_units: int, symbol: str = "USDT") -> None:
        """The customer sends ``base_units`` of the dev token to ``to_address``."""
        customer: LocalAccount = Account.from_key(CUSTOMER_KEY)
        call = tether_token().encode_call("transfer", to_address, base_units)

        async def send() -> None:
            async with RpcClient([self.node.url]) as rpc:
                await transact(rpc, customer, self.tokens[symbol], call)

        run_in_fresh_loop(send)

    def balance(self, address: str, symbol: str = "USDT") -> int:
        call = tether_token().encode_call("balanceOf", address)

        async def read() -> int:
            async with RpcClient([self.node.url]) as rpc:
                return int.from_bytes(await eth_call(rpc, self.tokens[symbol], call), "big")

        return run_in_fresh_loop(read)


def cli_json(output: str) -> dict[str, object]:
    """The JSON object a ``--json`` command printed (its last line)."""
    data = json.loads(output.strip().splitlines()[-1])
    assert isinstance(data, dict), output
    return data
