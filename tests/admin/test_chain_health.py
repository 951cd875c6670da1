"""The console's live chain checks: every RPC URL probed on its own (a real anvil node, a dead
port, an endpoint of another chain, one answering garbage, one too slow), URLs shown without
their secrets, and the relayer's balance; none of them ever raises."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from eth_account.signers.local import LocalAccount
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from tests.chain_files import UNREACHABLE_RPC, write_chains_file
from tests.support import LiveServer

from stablegate.admin.chain_health import probe_rpc_urls, relayer_address, relayer_balances
from stablegate.chain.anvil import AnvilNode
from stablegate.chain.registry import ChainRegistry, load_registry
from stablegate.config import Settings


async def other_chain(request: Request) -> Response:
    body = await request.json()
    result = "0x1" if body["method"] == "eth_chainId" else "0x10"
    return JSONResponse({"jsonrpc": "2.0", "id": body["id"], "result": result})


async def garbage(_request: Request) -> Response:
    return PlainTextResponse("<html>gateway error page</html>")


async def slow(_request: Request) -> Response:
    await asyncio.sleep(2)
    return PlainTextResponse("late")


@pytest.fixture(scope="module")
def fakes() -> Iterator[str]:
    app = Starlette(
        routes=[
            Route("/other/{key}", other_chain, methods=["POST"]),
            Route("/garbage", garbage, methods=["POST"]),
            Route("/slow", slow, methods=["POST"]),
        ]
    )
    with LiveServer(app) as server:
        yield server.url


def registry_of(tmp_path: Path, urls: tuple[str, ...]) -> ChainRegistry:
    return load_registry(write_chains_file(tmp_path / "chains.toml", urls, name="Dev chain"))


async def test_each_url_is_probed_on_its_own_and_named_without_its_secret(
    tmp_path: Path, anvil: AnvilNode, fakes: str
) -> None:
    urls = (
        anvil.url,
        UNREACHABLE_RPC,
        f"{fakes}/other/s3cret-key",
        f"{fakes}/garbage",
        f"{fakes}/slow",
        "https://rpc.example:S3CRET-in-the-port/x",
    )
    probes = await probe_rpc_urls(registry_of(tmp_path, urls), timeout_s=0.5)
    assert [p.url_shown for p in probes] == [
        anvil.url,
        UNREACHABLE_RPC,
        f"{fakes}/…",
        f"{fakes}/…",
        f"{fakes}/…",
        "https://rpc.example/…",
    ]
    healthy, dead, other, broken, late, unusable = probes
    assert healthy.ok and healthy.error is None and healthy.chain_id == 31337
    assert isinstance(healthy.block, int) and healthy.latency_ms is not None
    assert (dead.ok, dead.error) == (False, "connection failed")
    assert (other.ok, other.error) == (False, "wrong chain id 1 (expected 31337)")
    assert other.block == 16  # it answered, just for another chain
    assert (broken.ok, broken.block) == (False, None) and broken.error == "no usable answer"
    assert (late.ok, late.error) == (False, "timeout")
    assert unusable.ok is False and unusable.error is not None
    assert all("s3cret" not in ((p.error or "") + p.url_shown).lower() for p in probes)


async def test_the_relayer_balance_is_read_per_chain(
    tmp_path: Path, anvil: AnvilNode, deployer_account: LocalAccount
) -> None:
    registry = registry_of(tmp_path, (anvil.url,))
    [balance] = await relayer_balances(registry, deployer_account.address)
    assert balance.error is None and balance.wei is not None and balance.wei > 0
    assert (balance.symbol, balance.decimals) == ("ETH", 18)
    assert await relayer_balances(registry, None) == []
    failing = registry_of(tmp_path, (UNREACHABLE_RPC,))
    [unknown] = await relayer_balances(failing, deployer_account.address, timeout_s=0.5)
    assert unknown.wei is None and unknown.error == "connection failed"


def test_the_relayer_address_comes_from_a_usable_key_only(
    tmp_path: Path, deployer_account: LocalAccount
) -> None:
    def settings(**fields: str) -> Settings:
        return Settings(
            data_dir=tmp_path,
            secret_key=Fernet.generate_key().decode(),
            _env_file=None,  # type: ignore[call-arg]
            **fields,  # type: ignore[arg-type]
        )

    assert relayer_address(settings()) is None
    assert relayer_address(settings(relayer_key="0xnot-a-key")) is None
    key = deployer_account.key.hex()
    assert relayer_address(settings(relayer_key=key)) == deployer_account.address
