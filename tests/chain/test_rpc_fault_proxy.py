"""The fault-injecting JSON-RPC proxy (tests/rpc_fault_proxy.py) against a real anvil node."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from eth_account import Account
from eth_account.signers.local import LocalAccount
from tests.rpc_fault_proxy import FaultProxy, start_diverged_fork

from stablegate.chain.anvil import ANVIL_DEFAULT_KEYS, AnvilNode
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import send_transaction, wait_receipt

pytestmark = [pytest.mark.anvil, pytest.mark.asyncio(loop_scope="session")]

SENDER: LocalAccount = Account.from_key(ANVIL_DEFAULT_KEYS[5])
RECIPIENT = Account.from_key(ANVIL_DEFAULT_KEYS[6]).address


@pytest.fixture(scope="module")
def node() -> Iterator[AnvilNode]:
    """A node of its own: these tests mine blocks and fork it."""
    with AnvilNode(extra_args=["--slots-in-an-epoch", "1"]) as anvil:
        yield anvil


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


async def rpc(http: httpx.AsyncClient, url: str, method: str, params: list[Any]) -> Any:
    request = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
    answer = (await http.post(url, json=request)).json()
    assert answer["id"] == 7
    return answer


async def mine(http: httpx.AsyncClient, url: str, blocks: int) -> int:
    await rpc(http, url, "anvil_mine", [hex(blocks)])
    return int((await rpc(http, url, "eth_blockNumber", []))["result"], 16)


async def test_forwards_single_calls_and_batches(node: AnvilNode, http: httpx.AsyncClient) -> None:
    with FaultProxy(node.url) as proxy:
        assert (await rpc(http, proxy.url, "eth_chainId", []))["result"] == "0x7a69"
        batch = [
            {"jsonrpc": "2.0", "id": 0, "method": "eth_chainId", "params": []},
            {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["0x0", False]},
            {"jsonrpc": "2.0", "id": 2, "method": "eth_getBlockByNumber", "params": ["0x0", False]},
        ]
        answer = (await http.post(proxy.url, json=batch)).json()
        assert [a["id"] for a in answer] == [0, 1, 2]
        assert answer[0]["result"] == "0x7a69"
        assert answer[1]["result"]["number"] == "0x0"
        assert proxy.methods == {"eth_chainId": 2, "eth_getBlockByNumber": 2}
        assert proxy.requests == 2
        assert not proxy.injected

        proxy.set_policy(shuffle_batches=True)
        answer = (await http.post(proxy.url, json=batch)).json()
        assert [a["id"] for a in answer] == [2, 1, 0]


async def test_errors_are_seeded_and_counted(node: AnvilNode, http: httpx.AsyncClient) -> None:
    outcomes: list[list[str]] = []
    for _ in range(2):
        seen: list[str] = []
        with FaultProxy(node.url, seed=42, error_rate=0.5) as proxy:
            for _ in range(40):
                response = await http.post(
                    proxy.url,
                    json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                )
                if response.status_code != 200:
                    seen.append(f"http_{response.status_code}")
                elif "error" in response.json():
                    assert response.json()["error"]["code"] == -32603
                    seen.append("rpc_internal")
                else:
                    seen.append("ok")
            assert sum(proxy.injected.values()) == 40 - seen.count("ok")
            assert proxy.injected["http_500"] == seen.count("http_500")
            assert proxy.injected["http_429"] == seen.count("http_429")
        outcomes.append(seen)
    assert outcomes[0] == outcomes[1], "the same seed gives the same faults"
    assert {"ok", "http_500", "http_429", "rpc_internal"} <= set(outcomes[0])


async def test_only_listed_methods_get_faults(node: AnvilNode, http: httpx.AsyncClient) -> None:
    with FaultProxy(node.url, error_rate=1.0, only_methods={"eth_gasPrice"}) as proxy:
        assert "result" in await rpc(http, proxy.url, "eth_chainId", [])
        response = await http.post(
            proxy.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_gasPrice", "params": []}
        )
        assert response.status_code != 200 or "error" in response.json()


async def test_timeout_forwards_then_never_answers(node: AnvilNode) -> None:
    """A write that times out may still have landed: the proxy forwards before hanging."""
    async with RpcClient([node.url]) as direct:
        before = int(await direct.call("eth_blockNumber", []), 16)
        with FaultProxy(node.url, timeout_rate=1.0, hang_seconds=5.0) as proxy:
            async with httpx.AsyncClient(timeout=0.5) as http:
                with pytest.raises(httpx.ReadTimeout):
                    await http.post(
                        proxy.url,
                        json={"jsonrpc": "2.0", "id": 1, "method": "evm_mine", "params": []},
                    )
            # On a loaded machine the client may give up before the proxy forwarded: wait
            # for the proxy's side instead of assuming an order of events.
            for _ in range(100):
                if proxy.injected["timeout"] == 1:
                    break
                await asyncio.sleep(0.05)
            assert proxy.injected["timeout"] == 1
        assert int(await direct.call("eth_blockNumber", []), 16) == before + 1


async def test_truncated_answers(node: AnvilNode, http: httpx.AsyncClient) -> None:
    with FaultProxy(node.url, seed=3, truncate_rate=1.0) as proxy:
        broken = 0
        for _ in range(10):
            try:
                response = await http.post(
                    proxy.url,
                    json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                )
                response.json()
            except (httpx.RemoteProtocolError, ValueError):
                broken += 1
        assert broken == 10 == proxy.injected["truncate"]


async def test_get_logs_range_errors(node: AnvilNode, http: httpx.AsyncClient) -> None:
    await mine(http, node.url, 20)
    wide = [{"fromBlock": "0x0", "toBlock": hex(15)}]
    narrow = [{"fromBlock": "0x0", "toBlock": hex(4)}]
    with FaultProxy(node.url, max_logs_range=10) as proxy:
        assert (await rpc(http, proxy.url, "eth_getLogs", wide))["error"]["code"] == -32005
        assert (await rpc(http, proxy.url, "eth_getLogs", narrow))["result"] == []
        proxy.set_policy(max_logs_range=None, range_error_rate=1.0)
        answer = await rpc(http, proxy.url, "eth_getLogs", narrow)
        assert answer["error"] == {
            "code": -32005,
            "message": "query returned more than 10000 results",
        }
        assert proxy.injected == {"range_limit": 1, "range_error": 1}


async def test_lagging_node(node: AnvilNode, http: httpx.AsyncClient) -> None:
    head = await mine(http, node.url, 12)
    with FaultProxy(node.url, lag_blocks=7) as proxy:
        assert int((await rpc(http, proxy.url, "eth_blockNumber", []))["result"], 16) == head - 7
        latest = await rpc(http, proxy.url, "eth_getBlockByNumber", ["latest", False])
        assert int(latest["result"]["number"], 16) == head - 7
        # anvil's finalized is head - 2 with one slot per epoch; the lagging node's, 7 less.
        final = await rpc(http, proxy.url, "eth_getBlockByNumber", ["finalized", False])
        assert int(final["result"]["number"], 16) == head - 2 - 7
        above = await rpc(http, proxy.url, "eth_getBlockByNumber", [hex(head - 3), False])
        assert above["result"] is None
        balance = await rpc(http, proxy.url, "eth_getBalance", [RECIPIENT, "latest"])
        assert balance["result"].startswith("0x")
        proxy.set_policy(lag_blocks=None)
        assert int((await rpc(http, proxy.url, "eth_blockNumber", []))["result"], 16) == head


async def test_answers_from_a_diverged_fork(node: AnvilNode, http: httpx.AsyncClient) -> None:
    fork_block = await mine(http, node.url, 1)
    fork = start_diverged_fork(node, fork_block)
    try:
        # Different transactions on each side make the next blocks differ.
        async with RpcClient([node.url]) as a, RpcClient([fork.url]) as b:
            await wait_receipt(a, await send_transaction(a, SENDER, RECIPIENT, value=1))
            await wait_receipt(b, await send_transaction(b, SENDER, RECIPIENT, value=2))
        with FaultProxy(node.url, fork_url=fork.url, fork_rate=1.0) as proxy:

            async def block_hash(url: str, number: int) -> str:
                answer = await rpc(http, url, "eth_getBlockByNumber", [hex(number), False])
                return str(answer["result"]["hash"])

            shared = await block_hash(node.url, fork_block)
            assert await block_hash(proxy.url, fork_block) == shared
            assert await block_hash(proxy.url, fork_block + 1) == await block_hash(
                fork.url, fork_block + 1
            )
            assert await block_hash(proxy.url, fork_block + 1) != await block_hash(
                node.url, fork_block + 1
            )
            assert proxy.injected["fork"] == 3

            proxy.set_policy(fork_rate=0.5)
            hashes = {await block_hash(proxy.url, fork_block + 1) for _ in range(20)}
            assert len(hashes) == 2, "half the answers come from each side"

            # With no dice at all, every third request still comes from the fork.
            ours, theirs = (
                await block_hash(node.url, fork_block + 1),
                await block_hash(fork.url, fork_block + 1),
            )
            proxy.set_policy(fork_rate=0.0, fork_every=3)
            before = proxy.injected["fork"]
            sides = [await block_hash(proxy.url, fork_block + 1) for _ in range(9)]
            assert sides.count(theirs) == 3 and sides.count(ours) == 6
            assert proxy.injected["fork"] - before == 3
    finally:
        fork.stop()
