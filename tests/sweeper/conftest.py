"""A sweeper on the session's anvil node, over orders paid and credited by the real watcher.

Reuses the watcher's ``env`` (WatchEnv: SQLite and PostgreSQL, a merchant, pay(), finalize(),
sync()); adds a fresh relayer key that holds only gas.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest_asyncio
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from sqlalchemy import select
from tests.watcher.conftest import DECIMALS, WatchEnv, env  # noqa: F401 (env: the fixture)

from stablegate.chain.evm.contracts import forwarder_factory, standard_token, tether_token
from stablegate.chain.evm.transfers import address_topic
from stablegate.chain.evm.wallet import eth_call, get_balance, transact
from stablegate.db.engine import session_scope
from stablegate.models import Order, SweepItem, SweepTx
from stablegate.money import format_amount
from stablegate.sweeper.options import GWEI, SweepOptions
from stablegate.sweeper.reports import SweepOutcome, SweepReport
from stablegate.sweeper.worker import ChainSweeper

NATIVE = "0x0000000000000000000000000000000000000000"
UNITS = {"USDT": 10**6, "USDC": 10**6, "USDT18": 10**18}


@dataclass
class SweepEnv:
    watch: WatchEnv
    relayer: LocalAccount
    owner: LocalAccount  # deploys the dev tokens: pauses and blacklists USDT

    def sweeper(self, holder: str | None = None, **changes: Any) -> ChainSweeper:
        options: dict[str, Any] = {
            "max_fee_per_gas": 100 * GWEI,
            "discover_interval_ms": 0,
            "poll_interval": 0.05,
            "bump_after_ms": 60_000,
            "retry_base_ms": 60_000,
        }
        options.update(changes)
        w = self.watch
        return ChainSweeper(
            w.chain,
            w.sessions,
            w.clock,
            w.rpc,
            self.relayer,
            options=SweepOptions(**options),
            holder=holder,
        )

    async def final_orders(self, plan: list[tuple[str, int]]) -> list[Order]:
        """Orders paid in full (symbol, base units), credited FINAL by the real watcher."""
        orders: list[Order] = []
        for symbol, units in plan:
            amount = format_amount(units, DECIMALS[symbol])
            order = await self.watch.order(amount, symbol=symbol)
            await self.watch.pay(order, units, customer=len(orders) % 2)
            orders.append(order)
        await self.watch.sync()
        await self.watch.finalize()
        await self.watch.sync()
        return [await self.watch.reload(o.id) for o in orders]

    async def sweep(self, sweeper: ChainSweeper, max_steps: int = 40) -> list[SweepReport]:
        """Steps until nothing is due or in flight (anvil mines each transaction at once)."""
        reports = []
        for _ in range(max_steps):
            report = await sweeper.step()
            reports.append(report)
            assert report.outcome not in (
                SweepOutcome.RETRY,
                SweepOutcome.FENCED,
                SweepOutcome.STANDBY,
            ), report
            if report.outcome in (SweepOutcome.IDLE, SweepOutcome.BLOCKED) and not report.settled:
                return reports
        raise AssertionError(f"sweeper did not settle: {reports[-3:]}")

    async def balance(self, symbol: str, holder: str) -> int:
        if symbol == "native":
            return await get_balance(self.watch.rpc, holder)
        token = self.watch.tokens[symbol]
        data = standard_token().encode_call("balanceOf", holder)
        (value,) = standard_token().decode_result(
            "balanceOf", await eth_call(self.watch.rpc, token, data)
        )
        return int(value)

    async def usdt(self, function: str, *args: Any) -> None:
        await transact(
            self.watch.rpc,
            self.owner,
            self.watch.tokens["USDT"],
            tether_token().encode_call(function, *args),
        )

    async def items(self) -> list[SweepItem]:
        async with session_scope(self.watch.sessions) as session:
            return list((await session.scalars(select(SweepItem).order_by(SweepItem.id))).all())

    async def txs(self) -> list[SweepTx]:
        async with session_scope(self.watch.sessions) as session:
            return list((await session.scalars(select(SweepTx).order_by(SweepTx.id))).all())

    async def flush_events(self, deposit: str, name: str = "ItemFlushed") -> list[dict[str, Any]]:
        """Every ``name`` event the factory emitted for ``deposit``, on chain."""
        factory = forwarder_factory()
        logs = await self.watch.rpc.call(
            "eth_getLogs",
            [
                {
                    "address": self.watch.chain.factory,
                    "fromBlock": "0x0",
                    "toBlock": "latest",
                    "topics": [
                        "0x" + factory.event_topic(name).hex(),
                        None,
                        address_topic(deposit),
                    ],
                }
            ],
        )
        events = []
        for log in logs:
            topics = [bytes.fromhex(t[2:]) for t in log["topics"]]
            decoded = factory.decode_event(topics, bytes.fromhex(log["data"][2:]))
            assert decoded is not None
            events.append({**decoded.args, "tx": log["transactionHash"]})
        return events


def fresh_account(label: str) -> LocalAccount:
    account: LocalAccount = Account.from_key(keccak(text=f"stablegate-sweeper-test:{label}"))
    return account


@pytest_asyncio.fixture
async def sweep_env(env: WatchEnv, deployer_account: LocalAccount) -> AsyncIterator[SweepEnv]:  # noqa: F811
    relayer = fresh_account("relayer")
    await env.rpc.call("anvil_setBalance", [relayer.address, hex(10**18)])
    yield SweepEnv(env, relayer, deployer_account)
