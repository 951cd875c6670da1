"""Forwarder and ForwarderFactory on a real anvil node, with the dev tokens.

Every test runs on the session's node and reverts its changes (``clean_chain``).
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm import create2
from stablegate.chain.evm.contracts import (
    ContractArtifact,
    DecodedError,
    DecodedEvent,
    forwarder,
    forwarder_factory,
    standard_token,
    tether_token,
)
from stablegate.chain.evm.deploy import (
    DeployedContracts,
    DeployError,
    deploy_gateway_contracts,
)
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.rpc_errors import RpcError
from stablegate.chain.evm.wallet import (
    TransactionReceipt,
    eth_call,
    get_balance,
    get_code,
    send_transaction,
    to_int,
    transact,
    wait_receipt,
)

pytestmark = [
    pytest.mark.anvil,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.usefixtures("clean_chain"),
]

NATIVE = "0x0000000000000000000000000000000000000000"
FORWARDER = forwarder()
FACTORY = forwarder_factory()
# Base units of one millionth of a token (all dev tokens have 6 or 18 decimals).
MICRO_UNITS = {"USDT": 1, "USDC": 1, "USDT18": 10**12}


# -- helpers ------------------------------------------------------------------------------------


def account(label: str) -> LocalAccount:
    """A deterministic fresh account nobody else uses."""
    new: LocalAccount = Account.from_key(keccak(text=f"stablegate-test:{label}"))
    return new


async def funded(rpc: RpcClient, label: str) -> LocalAccount:
    new = account(label)
    await rpc.call("anvil_setBalance", [new.address, hex(10**20)])
    return new


def units(symbol: str, whole: float) -> int:
    return round(whole * 10**6) * MICRO_UNITS[symbol]


async def read(rpc: RpcClient, artifact: ContractArtifact, to: str, fn: str, *args: Any) -> Any:
    result = artifact.decode_result(fn, await eth_call(rpc, to, artifact.encode_call(fn, *args)))
    return result[0] if len(result) == 1 else result


async def send(
    rpc: RpcClient, sender: LocalAccount, artifact: ContractArtifact, to: str, fn: str, *args: Any
) -> TransactionReceipt:
    return await transact(rpc, sender, to, artifact.encode_call(fn, *args))


async def balance(rpc: RpcClient, token: str, holder: str) -> int:
    if token == NATIVE:
        return await get_balance(rpc, holder)
    value: int = await read(rpc, standard_token(), token, "balanceOf", holder)
    return value


async def pay(rpc: RpcClient, payer: LocalAccount, token: str, to: str, amount: int) -> None:
    if token == NATIVE:
        await transact(rpc, payer, to, value=amount)
    else:
        await send(rpc, payer, standard_token(), token, "transfer", to, amount)


def decode_revert(data: bytes | None) -> DecodedError:
    assert data is not None, "the node returned no revert data"
    for artifact in (FORWARDER, FACTORY, tether_token(), standard_token()):
        decoded = artifact.decode_error(data)
        if decoded is not None:
            return decoded
    raise AssertionError(f"unknown revert data {data.hex()}")


async def expect_revert(
    rpc: RpcClient, sender: LocalAccount, artifact: ContractArtifact, to: str, fn: str, *args: Any
) -> DecodedError:
    """The call reverts in eth_call and, mined as a transaction, fails; returns the reason."""
    data = artifact.encode_call(fn, *args)
    with pytest.raises(RpcError) as failure:
        await eth_call(rpc, to, data, sender=sender.address)
    tx_hash = await send_transaction(rpc, sender, to, data, gas=1_000_000)
    assert (await wait_receipt(rpc, tx_hash))["status"] == "0x0"
    return decode_revert(failure.value.revert_data)


def events(
    receipt: TransactionReceipt, artifact: ContractArtifact, name: str
) -> list[DecodedEvent]:
    found = []
    for log in receipt["logs"]:
        topics = [bytes.fromhex(t[2:]) for t in log["topics"]]
        event = artifact.decode_event(topics, bytes.fromhex(log["data"][2:]))
        if event is not None and event.name == name:
            found.append(event)
    return found


async def deploy_forwarder(
    rpc: RpcClient, sender: LocalAccount, factory: str, payout: str, order_id: str
) -> str:
    receipt = await send(
        rpc, sender, FACTORY, factory, "deploy", payout, create2.deposit_salt(order_id)
    )
    (event,) = events(receipt, FACTORY, "ForwarderDeployed")
    return to_checksum_address(event.args["forwarder"])


# -- deployment and addresses -------------------------------------------------------------------


async def test_gateway_contracts_are_deployed_through_the_create2_deployer(
    rpc: RpcClient, gateway_contracts: DeployedContracts, deployer_account: LocalAccount
) -> None:
    factory, implementation = create2.factory_address(), create2.implementation_address()
    assert gateway_contracts == DeployedContracts(factory, implementation)
    assert await read(rpc, FACTORY, factory, "implementation") == implementation.lower()
    assert await read(rpc, FORWARDER, implementation, "factory") == factory.lower()
    assert len(await get_code(rpc, factory)) > 100
    assert len(await get_code(rpc, implementation)) > 100

    nonce = await rpc.call("eth_getTransactionCount", [deployer_account.address, "latest"])
    assert await deploy_gateway_contracts(rpc, deployer_account) == gateway_contracts
    assert await rpc.call("eth_getTransactionCount", [deployer_account.address, "latest"]) == nonce


async def test_deploying_needs_the_create2_deployer(deployer_account: LocalAccount) -> None:
    async with (
        AnvilNode(extra_args=["--disable-default-create2-deployer"]) as node,
        RpcClient([node.url]) as rpc,
    ):
        with pytest.raises(DeployError, match="no CREATE2 deployer"):
            await deploy_gateway_contracts(rpc, deployer_account)


async def test_forwarder_address_is_the_one_computed_in_python(
    rpc: RpcClient, gateway_contracts: DeployedContracts, deployer_account: LocalAccount
) -> None:
    factory, implementation = gateway_contracts.factory, gateway_contracts.implementation
    runtime = bytes.fromhex("363d3d373d3d3d363d73") + bytes.fromhex(implementation[2:])
    runtime += bytes.fromhex("5af43d82803e903d91602b57fd5bf3")
    for order_id, payout in [
        ("ord_1", account("payout-a").address),
        ("ord_2", account("payout-a").address),
        ("ord_1", account("payout-b").address),
    ]:
        salt = create2.deposit_salt(order_id)
        expected = create2.forwarder_address(factory, implementation, payout, salt)
        assert expected == create2.deposit_address(order_id, payout)
        predicted = await read(rpc, FACTORY, factory, "predictAddress", payout, salt)
        assert to_checksum_address(predicted) == expected
        assert await get_code(rpc, expected) == b""
        assert await deploy_forwarder(rpc, deployer_account, factory, payout, order_id) == expected
        assert await get_code(rpc, expected) == runtime
        assert await read(rpc, FORWARDER, expected, "payout") == payout.lower()
        assert await read(rpc, FORWARDER, expected, "factory") == factory.lower()


# -- flushing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["USDT", "USDC", "USDT18"])
async def test_flush_moves_the_whole_balance_to_the_payout(
    rpc: RpcClient,
    gateway_contracts: DeployedContracts,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
    deployer_account: LocalAccount,
    symbol: str,
) -> None:
    token, payout = dev_tokens[symbol], account("payout").address
    if symbol == "USDT":  # the point of this case: a transfer() that returns nothing
        assert tether_token().entry("function", "transfer")["outputs"] == []
    deposit = create2.deposit_address("ord_flush", payout)
    # Customers pay before anything is deployed at the deposit address.
    await pay(rpc, customer_accounts[0], token, deposit, units(symbol, 100.5))
    await pay(rpc, customer_accounts[1], token, deposit, units(symbol, 20))
    await deploy_forwarder(rpc, deployer_account, gateway_contracts.factory, payout, "ord_flush")

    anyone = await funded(rpc, "anyone")
    receipt = await send(rpc, anyone, FORWARDER, deposit, "flush", token)

    (flushed,) = events(receipt, FORWARDER, "Flushed")
    assert flushed.args == {
        "token": token.lower(),
        "to": payout.lower(),
        "amount": units(symbol, 120.5),
    }
    assert await balance(rpc, token, payout) == units(symbol, 120.5)
    assert await balance(rpc, token, deposit) == 0
    assert await balance(rpc, token, anyone.address) == 0


async def test_flush_with_the_fee_on_transfer_on(
    rpc: RpcClient,
    gateway_contracts: DeployedContracts,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
    deployer_account: LocalAccount,
) -> None:
    usdt, payout = dev_tokens["USDT"], account("payout").address
    await send(rpc, deployer_account, tether_token(), usdt, "setParams", 100)  # 1%
    deposit = create2.deposit_address("ord_fee", payout)
    await pay(rpc, customer_accounts[0], usdt, deposit, 1_000_000_000)
    assert await balance(rpc, usdt, deposit) == 990_000_000

    receipt = await transact(
        rpc,
        await funded(rpc, "anyone"),
        gateway_contracts.factory,
        FACTORY.encode_call("deployAndFlushOne", payout, create2.deposit_salt("ord_fee"), usdt),
    )
    (flushed,) = events(receipt, FORWARDER, "Flushed")
    assert flushed.args["amount"] == 990_000_000  # what left the forwarder
    assert await balance(rpc, usdt, payout) == 980_100_000  # what arrived, less the fee
    assert await balance(rpc, usdt, deposit) == 0


async def test_flush_native(
    rpc: RpcClient,
    gateway_contracts: DeployedContracts,
    customer_accounts: list[LocalAccount],
    deployer_account: LocalAccount,
) -> None:
    payout = account("payout").address
    deposit = create2.deposit_address("ord_native", payout)
    await pay(rpc, customer_accounts[0], NATIVE, deposit, 10**18)
    await deploy_forwarder(rpc, deployer_account, gateway_contracts.factory, payout, "ord_native")
    # receive() only accepts: the coin stays in the forwarder until someone flushes.
    await pay(rpc, customer_accounts[1], NATIVE, deposit, 2 * 10**18)
    assert await get_balance(rpc, deposit) == 3 * 10**18
    assert await get_balance(rpc, payout) == 0

    receipt = await send(rpc, await funded(rpc, "anyone"), FORWARDER, deposit, "flushNative")
    (flushed,) = events(receipt, FORWARDER, "Flushed")
    assert flushed.args == {"token": NATIVE, "to": payout.lower(), "amount": 3 * 10**18}
    assert await get_balance(rpc, payout) == 3 * 10**18
    assert await get_balance(rpc, deposit) == 0


async def test_flush_of_nothing_reverts(
    rpc: RpcClient,
    gateway_contracts: DeployedContracts,
    dev_tokens: dict[str, str],
    deployer_account: LocalAccount,
) -> None:
    payout = account("payout").address
    deposit = await deploy_forwarder(
        rpc, deployer_account, gateway_contracts.factory, payout, "ord_empty"
    )
    anyone = await funded(rpc, "anyone")
    usdc = dev_tokens["USDC"]
    assert await expect_revert(rpc, anyone, FORWARDER, deposit, "flush", usdc) == DecodedError(
        "NothingToFlush", (usdc.lower(),)
    )
    assert await expect_revert(rpc, anyone, FORWARDER, deposit, "flushNative") == DecodedError(
        "NothingToFlush", (NATIVE,)
    )
    # An address without code is not a token, whatever it returns.
    stranger = account("no-code").address
    assert await expect_revert(rpc, anyone, FORWARDER, deposit, "flush", stranger) == DecodedError(
        "NotAToken", (stranger.lower(),)
    )


# -- who can do what ----------------------------------------------------------------------------


async def test_initialiser_cannot_be_called_on_a_clone_or_the_implementation(
    rpc: RpcClient,
    gateway_contracts: DeployedContracts,
    dev_tokens: dict[str, str],
    deployer_account: LocalAccount,
) -> None:
    factory, implementation = gateway_contracts.factory, gateway_contracts.implementation
    payout = account("payout").address
    clone = await deploy_forwarder(rpc, deployer_account, factory, payout, "ord_init")
    intruder = await funded(rpc, "intruder")
    for target in (clone, implementation):
        for sender in (intruder, deployer_account):
            reason = await expect_revert(rpc, sender, FORWARDER, target, "init", sender.address)
            assert reason.name == "NotFactory"
        # Even the factory itself (simulated as the sender) cannot initialise either again.
        with pytest.raises(RpcError) as failure:
            await eth_call(
                rpc, target, FORWARDER.encode_call("init", intruder.address), sender=factory
            )
        assert decode_revert(failure.value.revert_data).name == "AlreadyInitialised"
    assert await read(rpc, FORWARDER, implementation, "payout") == NATIVE
    assert await read(rpc, FORWARDER, clone, "payout") == payout.lower()
    # Funds sent to the implementation by mistake cannot be moved by anyone.
    for fn, args in [("flush", (dev_tokens["USDC"],)), ("flushNative", ())]:
        reason = await expect_revert(rpc, intruder, FORWARDER, implementation, fn, *args)
        assert reason.name == "NotInitialised"


async def test_no_call_by_anyone_else_moves_funds_anywhere_but_the_payout(
    rpc: RpcClient,
    gateway_contracts: DeployedContracts,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
    deployer_account: LocalAccount,
) -> None:
    factory, implementation = gateway_contracts.factory, gateway_contracts.implementation
    payout, order = account("payout").address, "ord_attack"
    salt = create2.deposit_salt(order)
    deposit = await deploy_forwarder(rpc, deployer_account, factory, payout, order)
    tokens = [dev_tokens["USDT"], dev_tokens["USDC"], dev_tokens["USDT18"], NATIVE]
    for token in tokens:
        await pay(rpc, customer_accounts[0], token, deposit, 5 * 10**6)
    called: dict[str, set[str]] = {"Forwarder": set(), "ForwarderFactory": set()}

    async def attempt(
        attacker: LocalAccount, artifact: ContractArtifact, to: str, fn: str, *args: Any
    ) -> str:
        called[artifact.name].add(fn)
        return (await expect_revert(rpc, attacker, artifact, to, fn, *args)).name

    attackers = [await funded(rpc, f"attacker-{i}") for i in range(3)]
    for attacker in attackers:
        destinations = [attacker.address, account("accomplice").address, NATIVE, factory, payout]
        for token in tokens:
            for to in destinations:
                assert (
                    await attempt(attacker, FORWARDER, deposit, "flushTo", token, to) == "NotPayout"
                )
                assert (
                    await attempt(attacker, FORWARDER, implementation, "flushTo", token, to)
                    == "NotInitialised"
                )
        for target in (deposit, implementation):
            assert (
                await attempt(attacker, FORWARDER, target, "init", attacker.address) == "NotFactory"
            )
        assert (
            await attempt(attacker, FACTORY, factory, "deploy", payout, salt) == "AlreadyDeployed"
        )

        # The same deposit salt with another payout is another address, holding nothing.
        own = await deploy_forwarder(rpc, attacker, factory, attacker.address, order)
        called["ForwarderFactory"].add("deploy")
        assert own != deposit
        for token in tokens:
            assert await balance(rpc, token, own) == 0
            reason = await attempt(
                attacker, FACTORY, factory, "deployAndFlushOne", attacker.address, salt, token
            )
            assert reason == "NothingToFlush"
        items = [(attacker.address, salt, token) for token in tokens]
        receipt = await send(rpc, attacker, FACTORY, factory, "deployAndFlush", items)
        called["ForwarderFactory"].add("deployAndFlush")
        assert len(events(receipt, FACTORY, "ItemFailed")) == len(tokens)
        assert events(receipt, FACTORY, "ItemFlushed") == []
        for token in tokens:
            assert await balance(rpc, token, deposit) == 5 * 10**6

    # What anyone can do: flush, and the funds go to the payout address.
    attacker = attackers[0]
    for token in tokens[:3]:
        await send(rpc, attacker, FORWARDER, deposit, "flush", token)
    await send(rpc, attacker, FORWARDER, deposit, "flushNative")
    for fn in ("flush", "flushNative"):
        called["Forwarder"].add(fn)
    for token in tokens:
        assert await balance(rpc, token, deposit) == 0
        assert await balance(rpc, token, payout) == 5 * 10**6
        assert await balance(rpc, token, account("accomplice").address) == 0
        for someone in attackers:  # they only paid gas
            assert await balance(rpc, token, someone.address) < (10**20 if token == NATIVE else 1)
    # Every state-changing function of both contracts was tried.
    for artifact in (FORWARDER, FACTORY):
        mutating = {
            e["name"]
            for e in artifact.abi
            if e["type"] == "function" and e["stateMutability"] not in ("view", "pure")
        }
        assert mutating == called[artifact.name], artifact.name


async def test_flush_to_is_the_payouts_rescue(
    rpc: RpcClient,
    gateway_contracts: DeployedContracts,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
    deployer_account: LocalAccount,
) -> None:
    usdt, owner = dev_tokens["USDT"], deployer_account
    payout = await funded(rpc, "payout")
    rescue = account("rescue").address
    deposit = await deploy_forwarder(
        rpc, deployer_account, gateway_contracts.factory, payout.address, "ord_rescue"
    )
    await pay(rpc, customer_accounts[0], usdt, deposit, 7_000_000)
    await pay(rpc, customer_accounts[0], NATIVE, deposit, 10**17)
    await send(rpc, owner, tether_token(), usdt, "addBlackList", payout.address)

    anyone = await funded(rpc, "anyone")
    reason = await expect_revert(rpc, anyone, FORWARDER, deposit, "flush", usdt)
    assert reason == DecodedError("Error", ("Blacklistable: account is blacklisted",))
    receipt = await send(rpc, payout, FORWARDER, deposit, "flushTo", usdt, rescue)
    (flushed,) = events(receipt, FORWARDER, "Flushed")
    assert flushed.args == {"token": usdt.lower(), "to": rescue.lower(), "amount": 7_000_000}
    assert await balance(rpc, usdt, rescue) == 7_000_000
    await send(rpc, payout, FORWARDER, deposit, "flushTo", NATIVE, rescue)
    assert await get_balance(rpc, rescue) == 10**17


# -- batches ------------------------------------------------------------------------------------


async def test_deploy_and_flush_isolates_each_item(
    rpc: RpcClient,
    gateway_contracts: DeployedContracts,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
    deployer_account: LocalAccount,
) -> None:
    factory, payout = gateway_contracts.factory, account("payout").address
    usdt, usdc, usdt18 = dev_tokens["USDT"], dev_tokens["USDC"], dev_tokens["USDT18"]
    customer = customer_accounts[0]
    plan = [  # (order, token, amount paid)
        ("ord_deployed", usdc, 1_000_000),  # 0: forwarder already deployed
        ("ord_paused", usdt, 2_000_000),  # 1: USDT paused by its owner
        ("ord_usdt18", usdt18, 3 * 10**18),  # 2
        ("ord_native", NATIVE, 4 * 10**15),  # 3
        ("ord_unpaid", usdc, 0),  # 4: nothing to flush
    ]
    deposits = [create2.deposit_address(order, payout) for order, _, _ in plan]
    for deposit, (_, token, amount) in zip(deposits, plan, strict=True):
        if amount:
            await pay(rpc, customer, token, deposit, amount)
    await deploy_forwarder(rpc, deployer_account, factory, payout, "ord_deployed")
    await send(rpc, deployer_account, tether_token(), usdt, "pause")

    relayer = await funded(rpc, "relayer")
    items = [(payout, create2.deposit_salt(order), token) for order, token, _ in plan]
    call = FACTORY.encode_call("deployAndFlush", items)
    simulated = FACTORY.decode_result("deployAndFlush", await eth_call(rpc, factory, call))
    assert list(simulated[0]) == [1_000_000, 0, 3 * 10**18, 4 * 10**15, 0]
    receipt = await transact(rpc, relayer, factory, call)

    flushed = {e.args["index"]: e.args for e in events(receipt, FACTORY, "ItemFlushed")}
    failed = {e.args["index"]: e.args for e in events(receipt, FACTORY, "ItemFailed")}
    assert sorted(flushed) == [0, 2, 3]
    assert sorted(failed) == [1, 4]
    for index, args in {**flushed, **failed}.items():
        assert to_checksum_address(args["forwarder"]) == deposits[index]
        assert to_checksum_address(args["token"]) == to_checksum_address(plan[index][1])
    assert decode_revert(failed[1]["reason"]) == DecodedError("Error", ("Pausable: paused",))
    assert decode_revert(failed[4]["reason"]) == DecodedError("NothingToFlush", (usdc.lower(),))
    for index in (0, 2, 3):
        assert flushed[index]["amount"] == plan[index][2]
        assert await balance(rpc, plan[index][1], payout) == plan[index][2]
        assert await balance(rpc, plan[index][1], deposits[index]) == 0
    assert len(events(receipt, FACTORY, "ForwarderDeployed")) == 2  # items 2 and 3 only
    assert await get_code(rpc, deposits[1]) == b""  # the failed item was rolled back entirely
    assert await balance(rpc, usdt, deposits[1]) == 2_000_000

    # Retry once the token is unpaused: the same item now goes through.
    await send(rpc, deployer_account, tether_token(), usdt, "unpause")
    receipt = await send(rpc, relayer, FACTORY, factory, "deployAndFlush", [items[1]])
    assert [e.args["amount"] for e in events(receipt, FACTORY, "ItemFlushed")] == [2_000_000]
    assert await balance(rpc, usdt, payout) == 2_000_000


async def test_deploy_and_flush_never_succeeds_with_items_starved_of_gas(
    rpc: RpcClient,
    gateway_contracts: DeployedContracts,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
) -> None:
    """Gas estimation must not settle on a limit at which items fail for lack of gas."""
    factory, payout = gateway_contracts.factory, account("payout").address
    items = []
    for i, symbol in enumerate(["USDT", "USDC", "USDT18"]):
        order = f"ord_gas_{i}"
        await pay(
            rpc,
            customer_accounts[0],
            dev_tokens[symbol],
            create2.deposit_address(order, payout),
            10**6,
        )
        items.append((payout, create2.deposit_salt(order), dev_tokens[symbol]))
    call = {"to": factory, "data": "0x" + FACTORY.encode_call("deployAndFlush", items).hex()}
    estimate = to_int(await rpc.call("eth_estimateGas", [call]))

    outcomes = set()
    for gas in [*range(estimate // 4, estimate, estimate // 40), estimate]:
        try:
            result = await rpc.call("eth_call", [{**call, "gas": hex(gas)}, "latest"])
        except RpcError as error:
            outcomes.add(
                "out of gas"
                if error.revert_data in (None, b"")
                else decode_revert(error.revert_data).name
            )
            continue
        (amounts,) = FACTORY.decode_result("deployAndFlush", bytes.fromhex(result[2:]))
        assert list(amounts) == [10**6] * 3, f"gas {gas}: {amounts}"
        outcomes.add("all flushed")
    assert "ItemOutOfGas" in outcomes
    assert "all flushed" in outcomes

    relayer = await funded(rpc, "relayer")
    tx_hash = await send_transaction(
        rpc, relayer, factory, FACTORY.encode_call("deployAndFlush", items), gas=estimate
    )
    receipt = await wait_receipt(rpc, tx_hash)
    assert len(events(receipt, FACTORY, "ItemFlushed")) == 3


# -- the RPC client itself ----------------------------------------------------------------------


async def test_rpc_errors_and_receipt_timeout(rpc: RpcClient) -> None:
    with pytest.raises(RpcError) as failure:
        await rpc.call("eth_noSuchMethod", [])
    assert failure.value.code == -32601
    with pytest.raises(TimeoutError):
        await wait_receipt(rpc, "0x" + "ab" * 32, timeout=0.1)
