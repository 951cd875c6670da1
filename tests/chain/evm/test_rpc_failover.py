"""RpcClient failover, lag avoidance, batches and error classes, against anvil behind fault
proxies (tests/rpc_fault_proxy.py). Async tests run on the session loop (asyncio auto mode)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from eth_account import Account
from eth_account.signers.local import LocalAccount
from tests.rpc_fault_proxy import FaultProxy

from stablegate.chain.anvil import ANVIL_DEFAULT_KEYS, AnvilNode
from stablegate.chain.evm import create2
from stablegate.chain.evm.rpc import RpcClient, redact_url
from stablegate.chain.evm.rpc_errors import RpcError, RpcRangeTooLarge, RpcUnavailable
from stablegate.chain.evm.wallet import to_int, wait_receipt
from stablegate.clock import FakeClock

SENDER: LocalAccount = Account.from_key(ANVIL_DEFAULT_KEYS[7])
ADDRESSES = [Account.from_key(key).address for key in ANVIL_DEFAULT_KEYS]
# 30% of requests fail one way or another.
FAULTS = {"error_rate": 0.20, "truncate_rate": 0.06, "timeout_rate": 0.04, "hang_seconds": 0.5}
FAST = {"timeout": 0.25, "cooldown": 0.2, "retry_delay": 0.01}


@pytest.fixture(scope="module")
def node() -> Iterator[AnvilNode]:
    with AnvilNode(extra_args=["--slots-in-an-epoch", "1"]) as anvil:
        yield anvil


@pytest_asyncio.fixture(loop_scope="session")
async def direct(node: AnvilNode) -> AsyncIterator[RpcClient]:
    async with RpcClient([node.url]) as client:
        await client.call("anvil_mine", ["0x20"])
        yield client


@pytest.fixture
def proxies(node: AnvilNode) -> Iterator[list[FaultProxy]]:
    started = [FaultProxy(node.url, seed=seed) for seed in (1, 2, 3)]
    for proxy in started:
        proxy.start()
    yield started
    for proxy in started:
        proxy.stop()


def reads(head: int) -> list[tuple[str, list[Any]]]:
    """200 reads of different kinds whose answers do not change while nothing is mined."""
    calls: list[tuple[str, list[Any]]] = []
    for i in range(40):
        calls.append(("eth_getBalance", [ADDRESSES[i % 10], "latest"]))
        calls.append(("eth_getBlockByNumber", [hex(i % (head + 1)), False]))
        calls.append(("eth_getCode", [create2.CREATE2_DEPLOYER, "latest"]))
        calls.append(("eth_getTransactionCount", [ADDRESSES[i % 10], "latest"]))
        calls.append(("eth_chainId", []))
    return calls


async def raw_transfer(direct: RpcClient, value: int) -> str:
    nonce = to_int(await direct.call("eth_getTransactionCount", [SENDER.address, "pending"]))
    block = await direct.call("eth_getBlockByNumber", ["latest", False])
    tx = {
        "type": 2,
        "chainId": 31337,
        "nonce": nonce,
        "gas": 21_000,
        "maxPriorityFeePerGas": 10**9,
        "maxFeePerGas": 2 * to_int(block["baseFeePerGas"]) + 10**9,
        "to": ADDRESSES[8],
        "value": value,
    }
    return "0x" + SENDER.sign_transaction(tx).raw_transaction.hex()


@pytest.mark.anvil
async def test_reads_survive_thirty_percent_faults(
    direct: RpcClient, proxies: list[FaultProxy]
) -> None:
    head = to_int(await direct.call("eth_blockNumber", []))
    calls = reads(head)
    expected = [await direct.call(method, params) for method, params in calls]
    for proxy in proxies:
        proxy.set_policy(**FAULTS)
    async with RpcClient([p.url for p in proxies], **FAST) as client:
        got: list[Any] = []
        for start in range(0, len(calls), 10):  # ten at a time, concurrently
            group = calls[start : start + 10]
            got += await asyncio.gather(*(client.call(m, p) for m, p in group))
        assert got == expected
        injected = sum(sum(p.injected.values()) for p in proxies)
        assert injected > 30
        assert client.calls_made == client.http_requests >= 200 + injected
        assert any(row["failures"] for row in client.status())


@pytest.mark.anvil
async def test_batches_survive_faults_and_split(
    direct: RpcClient, proxies: list[FaultProxy]
) -> None:
    head = to_int(await direct.call("eth_blockNumber", []))
    calls = reads(head) + reads(head)[:50]
    expected = [await direct.call(method, params) for method, params in calls]

    async with RpcClient([proxies[0].url], max_batch_calls=100) as client:
        proxies[0].set_policy(shuffle_batches=True)  # answers come back reversed
        assert await client.batch(calls) == expected
        assert (client.http_requests, client.calls_made) == (3, 250)
        assert await client.batch([]) == []

    async with RpcClient([proxies[0].url], max_request_bytes=2_000) as client:
        assert await client.batch(calls[:40]) == expected[:40]
        assert client.http_requests >= 3

    for proxy in proxies:
        proxy.set_policy(**FAULTS)
    async with RpcClient([p.url for p in proxies], max_batch_calls=25, **FAST) as client:
        for _ in range(3):
            assert await client.batch(calls) == expected
        assert sum(sum(p.injected.values()) for p in proxies) > 0


@pytest.mark.anvil
async def test_batch_item_errors(direct: RpcClient, node: AnvilNode) -> None:
    calls: list[tuple[str, list[Any]]] = [
        ("eth_chainId", []),
        ("eth_getBalance", ["not an address", "latest"]),
        ("eth_blockNumber", []),
    ]
    async with RpcClient([node.url]) as client:
        with pytest.raises(RpcError) as refused:
            await client.batch(calls)
        assert refused.value.code == -32602
        chain_id, error, number = await client.batch(calls, return_exceptions=True)
        assert chain_id == "0x7a69"
        assert isinstance(error, RpcError)
        assert not isinstance(error, RpcUnavailable)
        assert to_int(number) >= 32
        assert client.http_requests == 2


@pytest.mark.anvil
async def test_lagging_url_is_avoided(direct: RpcClient, proxies: list[FaultProxy]) -> None:
    behind, good, _ = proxies
    behind.set_policy(lag_blocks=20)
    head = to_int(await direct.call("eth_blockNumber", []))
    clock = FakeClock()
    async with RpcClient(
        [behind.url, good.url], max_lag_blocks=5, clock=clock, sleep=clock.sleep, **FAST
    ) as client:
        assert client.active_url == behind.url
        assert await client.head() == head
        assert [row["lagging"] for row in client.status()] == [True, False]
        assert [row["head"] for row in client.status()] == [head - 20, head]
        for _ in range(5):
            assert to_int(await client.call("eth_blockNumber", [])) == head
        assert behind.methods["eth_blockNumber"] == 1  # only head() asked it
        assert client.active_url == good.url

        # Better a lagging node than none.
        good.set_policy(error_rate=1.0)
        assert to_int(await client.call("eth_blockNumber", [])) == head - 20

        # Caught up: no longer set aside.
        good.set_policy(error_rate=0.0)
        behind.set_policy(lag_blocks=2)
        clock.advance(FAST["cooldown"])  # the failed URL's cooldown is over
        assert await client.head() == head
        assert [row["lagging"] for row in client.status()] == [False, False]


@pytest.mark.anvil
async def test_writes_are_sent_once(direct: RpcClient, proxies: list[FaultProxy]) -> None:
    failing, good, _ = proxies
    failing.set_policy(error_rate=1.0, only_methods={"eth_sendRawTransaction"})
    raw = await raw_transfer(direct, 1)
    async with RpcClient([failing.url, good.url], **FAST) as client:
        with pytest.raises(RpcUnavailable) as unavailable:
            await client.call("eth_sendRawTransaction", [raw])
        assert len(unavailable.value.failures) == 1
        assert failing.methods["eth_sendRawTransaction"] == 1
        assert good.methods["eth_sendRawTransaction"] == 0
        # The caller sends again: the failed URL is cooling down, so another one takes it.
        tx_hash = await client.call("eth_sendRawTransaction", [raw])
        assert good.methods["eth_sendRawTransaction"] == 1
        assert to_int((await wait_receipt(client, tx_hash))["status"]) == 1


@pytest.mark.anvil
async def test_a_write_that_timed_out_may_have_landed(
    direct: RpcClient, proxies: list[FaultProxy]
) -> None:
    hanging, good, _ = proxies
    hanging.set_policy(timeout_rate=1.0, hang_seconds=0.5, only_methods={"eth_sendRawTransaction"})
    raw = await raw_transfer(direct, 2)
    async with RpcClient([hanging.url, good.url], **FAST) as client:
        with pytest.raises(RpcUnavailable, match="timed out"):
            await client.call("eth_sendRawTransaction", [raw])
        assert good.methods["eth_sendRawTransaction"] == 0
        block = await direct.call("eth_getBlockByNumber", ["latest", True])
        assert any(
            tx["to"].lower() == ADDRESSES[8].lower() and tx["value"] == "0x2"
            for tx in block["transactions"]
        )


@pytest.mark.anvil
async def test_range_too_large_is_not_failed_over(
    direct: RpcClient, proxies: list[FaultProxy]
) -> None:
    limited, other, _ = proxies
    limited.set_policy(range_error_rate=1.0)
    logs_filter = {"fromBlock": "0x0", "toBlock": "0x10"}
    async with RpcClient([limited.url, other.url], **FAST) as client:
        with pytest.raises(RpcRangeTooLarge) as too_large:
            await client.call("eth_getLogs", [logs_filter])
        assert too_large.value.code == -32005
        assert other.methods["eth_getLogs"] == 0
        assert client.status()[0]["healthy"] and client.active_url == limited.url

        limited.set_policy(range_error_rate=0.0, max_logs_range=8)
        results = await client.batch(
            [("eth_getLogs", [logs_filter]), ("eth_getLogs", [{**logs_filter, "toBlock": "0x7"}])],
            return_exceptions=True,
        )
        assert isinstance(results[0], RpcRangeTooLarge)
        assert results[1] == []


@pytest.mark.anvil
async def test_refused_calls_are_not_failed_over(
    direct: RpcClient, proxies: list[FaultProxy]
) -> None:
    first, second, _ = proxies
    async with RpcClient([first.url, second.url], **FAST) as client:
        with pytest.raises(RpcError) as refused:
            await client.call("eth_getBalance", ["0x1234", "latest"])
        assert refused.value.code == -32602
        with pytest.raises(RpcError) as unknown:
            await client.call("eth_noSuchMethod", [])
        assert unknown.value.code == -32601
        assert second.requests == 0
        assert first.requests == 2
        assert client.status()[0]["failures"] == 0


@pytest.mark.anvil
async def test_nothing_reachable() -> None:
    urls = ["http://127.0.0.1:1", "http://127.0.0.1:2/v3/secret-key"]
    async with RpcClient(urls, **FAST) as client:
        with pytest.raises(RpcUnavailable) as down:
            await client.call("eth_chainId", [])
        assert len(down.value.failures) == 6  # three attempts per URL
        assert "secret-key" not in str(down.value)
        with pytest.raises(RpcUnavailable):
            await client.head()
        status = client.status()
        assert [row["url"] for row in status] == ["http://127.0.0.1:1", "http://127.0.0.1:2/…"]
        assert not any(row["healthy"] for row in status)
        assert all("ConnectError" in row["lastError"] for row in status)


async def test_failover_waits_read_the_injected_clock() -> None:
    # Production delays (no FAST): without the fake clock this would really wait 0.7 s.
    clock = FakeClock()
    urls = ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    async with RpcClient(urls, clock=clock, sleep=clock.sleep) as client:
        with pytest.raises(RpcUnavailable) as down:
            await client.call("eth_chainId", [])
        assert len(down.value.failures) == 6
        # Once both URLs are cooling, each round waits retry_delay * round, capped at 1 s.
        assert clock.sleeps == pytest.approx([0.1, 0.15, 0.2, 0.25])
        assert not any(row["healthy"] for row in client.status())
        clock.advance(client.cooldown)  # past the last failure's cooldown
        assert all(row["healthy"] for row in client.status())


def test_redact_url() -> None:
    assert redact_url("https://mainnet.infura.io/v3/0123abcd") == "https://mainnet.infura.io/…"
    # A key where the port goes is not shown (nor raised in an error), IPv6 keeps its brackets.
    assert redact_url("https://rpc.example:S3CRET/x") == "https://rpc.example/…"
    assert redact_url("http://[::1]:8545") == "http://[::1]:8545"
    assert redact_url("https://user:pass@rpc.example/") == "https://rpc.example"
    assert redact_url("https://rpc.example.org/?key=x") == "https://rpc.example.org/…"
    assert redact_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    assert redact_url("http://127.0.0.1:8545/") == "http://127.0.0.1:8545"
