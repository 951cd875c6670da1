"""Watcher figures on a local anvil chain, in one run, for SQLite and optionally PostgreSQL.

1. Backfill: N orders, M payments (and unrelated "noise" transfers) spread over many blocks;
   a fresh watcher catches up from block 0. Blocks/s, payments/s, RPC calls per block.
2. Watched-set size: 10, 1,000, 5,000 and 100,000 watched deposit addresses (orders inserted
   in bulk), the same blocks each time, once in backfill ranges (2,000 blocks a step) and once
   one block a step (``max_range=1``, the per-block cost of following the head). Compared with
   a naive poller measured in the same run: ``balanceOf`` of every watched address for every
   token, per block (``eth_call`` in JSON-RPC batches of 100; one round at 100,000 addresses).
3. Final to completed: the watcher runs live (``run_forever``) while blocks are mined every
   ``--block-interval`` seconds; K orders are paid; for each, the wall time its order was seen
   ``completed`` in the database minus the wall time the block holding its payment was first
   seen under the node's ``finalized`` tag (both polled every ``--probe-interval`` s).

The chain is built once and shared by the backends (phase 3 runs between an evm_snapshot and
an evm_revert). anvil runs as ``stablegate devchain`` starts it (one slot per epoch, so
``finalized`` = latest - 2; the same contracts, tokens and mints) plus ``--hardfork cancun
--prune-history``: anvil 1.7.1 rebuilds the state trie for every mined block, and by default also
fills the EIP-2935 history contract and keeps every historical state, so a block costs more the
higher the chain and the more token holders (fixed upstream in foundry PR #15715). With the two
flags 20,000 empty blocks take ~2 s on a fresh chain; building this one still takes ~20-40 s,
as the token holders add up. The watcher reads no historical state.

Usage::

    .venv/bin/python bench/watcher.py                                  # SQLite, ~2 minutes
    .venv/bin/python bench/watcher.py --backends sqlite,postgres \\
        --postgres-url postgresql://postgres@127.0.0.1:5432/postgres

For ``postgres`` the server must let the user CREATE DATABASE: each database is created fresh
and dropped afterwards. anvil, the benchmark and the database share the machine's cores, so
figures are comparable within a run, not across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import random
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from stablegate.chain.anvil import ANVIL_CHAIN_ID, ANVIL_DEFAULT_KEYS, AnvilNode, find_anvil
from stablegate.chain.devchain import MINT_WHOLE_TOKENS, SLOTS_PER_EPOCH
from stablegate.chain.evm import create2
from stablegate.chain.evm.blocks import fetch_header
from stablegate.chain.evm.contracts import tether_token
from stablegate.chain.evm.deploy import DEV_TOKENS, deploy_dev_tokens, deploy_gateway_contracts
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.registry import Chain, ChainRegistry, Token
from stablegate.clock import SystemClock
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.logs import configure_logging
from stablegate.merchants.service import create_merchant
from stablegate.migrations import upgrade
from stablegate.models import ChainBlock, ChainState, Order, Payment
from stablegate.models.chain_state import FinalityMode
from stablegate.orders.context import OrderContext
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.service import create_order, new_order_id
from stablegate.secret_box import SecretBox
from stablegate.watcher.loop import ChainWatcher
from stablegate.watcher.options import WatcherOptions
from stablegate.watcher.reports import StepOutcome
from stablegate.watcher.scan import ADDRESS_CHUNK, LARGE_SET

ANVIL_ARGS = [
    "--slots-in-an-epoch",
    str(SLOTS_PER_EPOCH),
    "--hardfork",
    "cancun",
    "--prune-history",
]
PAYOUT = "0x4B20993Bc481177ec7E8f571ceCaE8A9e22C02db"  # the merchant's; nothing is swept here
SENDERS = [Account.from_key(key) for key in ANVIL_DEFAULT_KEYS[1:]]  # hold the dev tokens
BALANCE_OF = "0x70a08231"
GAS = 120_000
MAX_FEE = 20 * 10**9
TIP = 10**9
BACKFILL_RANGE = WatcherOptions().max_range
TAIL_BLOCKS = 4  # above the watched-set window, so all of it is below the finalized tag
DAY_MS = 86_400_000
ORDERS = Order.metadata.tables["orders"]  # Core inserts: keys are column names


# -- the chain ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedOrder:
    id: str
    symbol: str
    amount: int
    to_address: str
    salt: str | None = None


@dataclass
class Layout:
    """Where things are on the built chain."""

    head: int = 0
    payment_blocks: int = 0
    payments: int = 0
    noise: int = 0
    window_first: int = 0  # the watched-set window: every block has transfers
    window_last: int = 0
    window_probe_payments: int = 0
    build_seconds: float = 0.0
    chain_ahead_seconds: float = 0.0  # anvil_mine advances block time by 1 s a block


class Sender:
    """Signs token transfers locally with sequential nonces, round robin over accounts."""

    def __init__(self, rpc: RpcClient, accounts: Sequence[LocalAccount]) -> None:
        self.rpc = rpc
        self.accounts = list(accounts)
        self.nonces: dict[str, int] = {}
        self.turn = 0
        self.token_call = tether_token()

    async def start(self) -> None:
        counts = await self.rpc.batch(
            [("eth_getTransactionCount", [a.address, "pending"]) for a in self.accounts]
        )
        self.nonces = {a.address: int(c, 16) for a, c in zip(self.accounts, counts, strict=True)}

    def sign(self, token: str, to: str, amount: int) -> str:
        account = self.accounts[self.turn % len(self.accounts)]
        self.turn += 1
        nonce = self.nonces[account.address]
        self.nonces[account.address] = nonce + 1
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": ANVIL_CHAIN_ID,
            "nonce": nonce,
            "gas": GAS,
            "maxFeePerGas": MAX_FEE,
            "maxPriorityFeePerGas": TIP,
            "to": token,
            "value": 0,
            "data": self.token_call.encode_call("transfer", to, amount),
        }
        return "0x" + account.sign_transaction(tx).raw_transaction.hex()

    async def send(self, raws: Sequence[str]) -> list[str]:
        if not raws:
            return []
        return [
            str(h) for h in await self.rpc.batch([("eth_sendRawTransaction", [r]) for r in raws])
        ]


def plan_orders(count: int, rng: random.Random, symbols: Sequence[str]) -> list[PlannedOrder]:
    """Forwarder orders with their real CREATE2 deposit addresses (as create_order makes them)."""
    factory, implementation = create2.factory_address(), create2.implementation_address()
    orders = []
    for index in range(count):
        order_id = new_order_id()
        salt = create2.deposit_salt(order_id)
        address = create2.forwarder_address(factory, implementation, PAYOUT, salt)
        amount = rng.randint(1, 200) * 10**6 + rng.randint(0, 99) * 10**4
        orders.append(
            PlannedOrder(
                order_id, symbols[index % len(symbols)], amount, address, "0x" + salt.hex()
            )
        )
    return orders


def random_address(rng: random.Random) -> str:
    return "0x" + rng.randbytes(20).hex()


async def build_chain(
    rpc: RpcClient,
    sender: Sender,
    tokens: dict[str, str],
    args: argparse.Namespace,
    paid: Sequence[PlannedOrder],
    probes: Sequence[PlannedOrder],
    rng: random.Random,
) -> Layout:
    """Payment blocks spread over ``--blocks`` blocks, then the watched-set window, then a tail.

    Automine is off: each payment block is a batch of raw transactions and one evm_mine; the
    empty blocks between are one anvil_mine each.
    """
    started = time.perf_counter()
    layout = Layout()
    await rpc.call("evm_setAutomine", [False])
    batches = [paid[i : i + args.per_block] for i in range(0, len(paid), args.per_block)]
    gap = max(1, args.blocks // max(1, len(batches)))
    hashes: list[str] = []
    for batch in batches:
        raws = [sender.sign(tokens[o.symbol], o.to_address, o.amount) for o in batch]
        for _ in range(args.noise):
            raws.append(sender.sign(tokens["USDT"], random_address(rng), rng.randint(1, 10**6)))
            layout.noise += 1
        hashes += await sender.send(raws)
        await rpc.call("evm_mine", [])
        if gap > 1:
            await rpc.call("anvil_mine", [hex(gap - 1), "0x1"])
        layout.payment_blocks += 1
        layout.payments += len(batch)
    # The window: every block carries noise; probe payments land in evenly spaced blocks.
    every = max(1, args.window // max(1, len(probes)))
    probe_at = {i * every: probe for i, probe in enumerate(probes) if i * every < args.window}
    for offset in range(args.window):
        raws = [
            sender.sign(tokens["USDT"], random_address(rng), rng.randint(1, 10**6))
            for _ in range(args.window_noise)
        ]
        layout.noise += args.window_noise
        if offset in probe_at:
            probe = probe_at[offset]
            raws.append(sender.sign(tokens[probe.symbol], probe.to_address, probe.amount))
            layout.window_probe_payments += 1
        hashes += await sender.send(raws)
        await rpc.call("evm_mine", [])
        number = int(await rpc.call("eth_blockNumber", []), 16)
        if offset == 0:
            layout.window_first = number
        layout.window_last = number
    await rpc.call("anvil_mine", [hex(TAIL_BLOCKS), "0x1"])
    receipts = await rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
    failed = [r for r in receipts if not r or r["status"] != "0x1"]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(receipts)} transfers failed or are missing")
    latest = await fetch_header(rpc, "latest")
    assert latest is not None
    layout.head = latest.number
    layout.chain_ahead_seconds = latest.time_ms / 1000 - time.time()
    layout.build_seconds = time.perf_counter() - started
    return layout


# -- databases ------------------------------------------------------------------------------


def _with_database(url: str, name: str, scheme: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((scheme, parts.netloc, "/" + name, parts.query, ""))


async def _pg_admin(admin_url: str, sql: str) -> str:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(
        _with_database(admin_url, urlsplit(admin_url).path[1:], "postgresql")
    )
    try:
        if sql.upper().startswith("SELECT"):
            return str(await connection.fetchval(sql))
        await connection.execute(sql)
        return ""
    finally:
        await connection.close()


@dataclass
class Database:
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    merchant_id: str


@asynccontextmanager
async def fresh_database(
    backend: str, args: argparse.Namespace, tmp: Path
) -> AsyncIterator[Database]:
    """A new, migrated database with one merchant; dropped (PostgreSQL) or deleted afterwards."""
    name = f"stablegate_bench_{secrets.token_hex(4)}"
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / (name + '.db')}"
    else:
        await _pg_admin(args.postgres_url, f'CREATE DATABASE "{name}"')
        url = _with_database(args.postgres_url, name, "postgresql+asyncpg")
    engine = make_engine(url)
    try:
        await upgrade(engine)
        sessions = make_sessionmaker(engine)
        async with session_scope(sessions) as session:
            created = await create_merchant(
                session,
                SecretBox(Fernet.generate_key()),
                SystemClock(),
                name="Bench shop",
                payout_address=PAYOUT,
                chain_ids=[ANVIL_CHAIN_ID],
            )
        yield Database(url, engine, sessions, created.merchant_id)
    finally:
        await engine.dispose()
        if backend == "postgres":
            await _pg_admin(args.postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            for suffix in ("", "-wal", "-shm"):
                (tmp / f"{name}.db{suffix}").unlink(missing_ok=True)


def order_row(
    merchant_id: str,
    chain: Chain,
    order: PlannedOrder,
    *,
    status: str,
    created_ms: int,
    expire_ms: int,
) -> dict[str, Any]:
    token = chain.token_by_symbol(order.symbol)
    assert token is not None
    return {
        "id": order.id,
        "merchant_id": merchant_id,
        "order_no": order.id,
        "cust_no": None,
        "request_fingerprint": "0" * 64,
        "chain_id": chain.id,
        "symbol": token.symbol,
        "token_address": token.address,
        "decimals": token.decimals,
        "amount": order.amount,
        "paid_amount": 0,
        "pending_amount": 0,
        "status": status,
        "exceptions": [],
        "deposit_strategy": "forwarder",
        "to_address": order.to_address,
        "payout_address": PAYOUT,
        "factory": chain.factory if order.salt else None,
        "deposit_salt": order.salt,
        "notify_url": None,
        "redirect_url": None,
        "description": None,
        "metadata": None,
        "tx_id": None,
        "confirmations": 0,
        "event_sequence": 0,
        "expire_time_ms": expire_ms,
        "create_time_ms": created_ms,
        "complete_time_ms": None,
        "updated_at_ms": created_ms,
    }


async def insert_orders(db: Database, rows: Sequence[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for start in range(0, len(rows), 5000):
        async with session_scope(db.sessions) as session:
            await session.execute(insert(ORDERS), list(rows[start : start + 5000]))
    return time.perf_counter() - started


# -- what else runs --------------------------------------------------------------------------


def _machine_busy_s() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _process_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Busy CPU during a phase, in % of one core: this process, anvil, and everything else
    (other jobs on the machine; with PostgreSQL, its backends are counted there too)."""

    def __init__(self, anvil_pid: int) -> None:
        self.anvil_pid = anvil_pid
        self.marks = (0.0, 0.0, 0.0, 0.0)

    def __enter__(self) -> CpuMeter:
        self.marks = (
            time.monotonic(),
            _machine_busy_s(),
            time.process_time(),
            _process_cpu_s(self.anvil_pid),
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        wall, busy, own, anvil = self.marks
        seconds = max(1e-9, time.monotonic() - wall)
        own_pct = 100 * (time.process_time() - own) / seconds
        anvil_pct = 100 * (_process_cpu_s(self.anvil_pid) - anvil) / seconds
        busy_pct = 100 * (_machine_busy_s() - busy) / seconds
        self.figures = {
            "benchPct": round(own_pct),
            "anvilPct": round(anvil_pct),
            "otherPct": round(max(0.0, busy_pct - own_pct - anvil_pct)),
        }


def wait_for_quiet(limit_pct: float, max_wait_s: float) -> float:
    """Waits until other jobs use less than ``limit_pct`` of a core (or gives up)."""
    deadline = time.monotonic() + max_wait_s
    while True:
        before = _machine_busy_s()
        time.sleep(1.0)
        load = 100 * (_machine_busy_s() - before)
        if load <= limit_pct or time.monotonic() >= deadline:
            break
    if load > limit_pct:
        print(f"  !! the machine is busy ({load:.0f}% of a core) before this phase", flush=True)
    return load


class SqlTimer:
    """Time spent in the driver per statement (on SQLite, includes waiting for the lock)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.sync_engine
        self.total = 0.0
        self.by_statement: dict[str, float] = {}

    def _before(self, conn: Any, _c: Any, _s: str, _p: Any, _ctx: Any, _many: bool) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn: Any, _c: Any, statement: str, _p: Any, _ctx: Any, _many: bool) -> None:
        took = time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())
        self.total += took
        key = " ".join(statement.split())[:60]
        self.by_statement[key] = self.by_statement.get(key, 0.0) + took

    def __enter__(self) -> SqlTimer:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc_info: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)

    def seconds(self, prefix: str = "") -> float:
        return sum(v for k, v in self.by_statement.items() if k.startswith(prefix))


# -- measurements ---------------------------------------------------------------------------


@dataclass
class Bench:
    """What every measurement shares: the node, the chain as configured, the built layout."""

    args: argparse.Namespace
    url: str
    anvil_pid: int
    rpc: RpcClient  # the benchmark's own calls, never counted for the watcher
    chain: Chain
    ctx: OrderContext
    tokens: dict[str, str]
    sender: Sender
    layout: Layout = field(default_factory=Layout)

    def meter(self) -> CpuMeter:
        return CpuMeter(self.anvil_pid)

    def watcher(
        self, db: Database, *, holder: str | None = None, **options: Any
    ) -> tuple[ChainWatcher, RpcClient]:
        """A watcher with its own RPC client, so its calls are counted apart."""
        rpc = RpcClient([self.url], timeout=60)
        watcher = ChainWatcher(
            self.chain,
            db.sessions,
            SystemClock(),
            rpc,
            self.ctx,
            options=WatcherOptions(reconcile_interval_ms=0, **options),
            holder=holder,
        )
        return watcher, rpc


async def step_until(watcher: ChainWatcher, *, cursor: int | None = None) -> int:
    """Steps until IDLE (or until the cursor reaches ``cursor``); returns the steps taken."""
    steps = 0
    while True:
        report = await watcher.step()
        steps += 1
        if report.outcome not in (StepOutcome.ADVANCED, StepOutcome.IDLE):
            raise RuntimeError(f"watcher step: {report}")
        if report.outcome == StepOutcome.IDLE or (cursor is not None and report.to_block == cursor):
            return steps


async def measure_backfill(
    bench: Bench, db: Database
) -> tuple[dict[str, Any], ChainWatcher, RpcClient]:
    """A fresh watcher: its first step places the cursor, the next ones catch up to the head."""
    watcher, rpc = bench.watcher(db, poll_interval=bench.args.poll_interval)
    first = await watcher.step()  # the block before the oldest watched order: block 0 here
    assert first.outcome == StepOutcome.ADVANCED and first.to_block is not None
    init_calls = rpc.calls_made
    calls, requests = rpc.calls_made, rpc.http_requests
    with bench.meter() as cpu, SqlTimer(db.engine) as sql:
        started = time.perf_counter()
        steps = await step_until(watcher)
        seconds = time.perf_counter() - started
    async with session_scope(db.sessions) as session:
        state = await session.get(ChainState, bench.chain.id)
        payments = await session.scalar(select(func.count()).select_from(Payment)) or 0
        completed = await session.scalar(
            select(func.count()).select_from(Order).where(Order.status == "completed")
        )
    assert state is not None
    blocks = state.cursor_number - first.to_block
    figures = {
        "blocks": blocks,
        "fromBlock": first.to_block + 1,
        "toBlock": state.cursor_number,
        "payments": payments,
        "ordersCompleted": completed,
        "steps": steps,
        "seconds": round(seconds, 3),
        "blocksPerSecond": round(blocks / seconds, 1),
        "paymentsPerSecond": round(payments / seconds, 1),
        "msPerPayment": round(seconds * 1000 / max(1, payments), 2),
        "sqlSeconds": round(sql.total, 3),
        "rpcCalls": rpc.calls_made - calls,
        "httpRequests": rpc.http_requests - requests,
        "rpcCallsPerBlock": round((rpc.calls_made - calls) / blocks, 4),
        "rpcCallsPerPayment": round((rpc.calls_made - calls) / max(1, payments), 2),
        "initRpcCalls": init_calls,
        "cpu": cpu.figures,
    }
    return figures, watcher, rpc


async def place_cursor(db: Database, rpc: RpcClient, number: int) -> None:
    """The chain state a watcher stopped at ``number`` leaves (as ChainWatcher._initialise)."""
    header = await fetch_header(rpc, number)
    assert header is not None
    now = SystemClock().now_ms()
    async with session_scope(db.sessions) as session:
        session.add(
            ChainState(
                chain_id=ANVIL_CHAIN_ID,
                epoch=0,
                cursor_number=number,
                cursor_hash=header.hash,
                final_number=number,
                final_hash=None,
                final_block_time_ms=header.time_ms,
                head_number=number,
                head_seen_at_ms=now,
                finality_mode="tag",
                final_advanced_at_ms=now,
                reconcile_mismatches=0,
                reconciled_at_ms=0,
                updated_at_ms=now,
            )
        )
        session.add(
            ChainBlock(
                chain_id=ANVIL_CHAIN_ID,
                number=number,
                hash=header.hash,
                parent_hash=header.parent_hash,
                time_ms=header.time_ms,
            )
        )


async def warm(watcher: ChainWatcher, db: Database) -> float:
    """Loads the watched set and the finality mode, as the first step of a process would."""
    started = time.perf_counter()
    async with session_scope(db.sessions) as session:
        await watcher.watched.refresh(session, watcher.clock.now_ms())
    watcher.finality.mode = FinalityMode.TAG
    return time.perf_counter() - started


REFRESH_QUERY = "SELECT orders.id, orders.to_address"  # WatchedAddresses.refresh


async def measure_watched(bench: Bench, db: Database, size: int) -> dict[str, Any]:
    """Backfill ranges up to the window, then the window one block a step; same blocks always."""
    layout = bench.layout
    result: dict[str, Any] = {"watched": size}
    start = (layout.window_first - 1) % BACKFILL_RANGE
    await place_cursor(db, bench.rpc, start)
    holder = f"bench-{secrets.token_hex(4)}"
    watcher, rpc = bench.watcher(db, holder=holder)
    result["watchedLoadSeconds"] = round(await warm(watcher, db), 3)
    assert len(watcher.watched) == size, (len(watcher.watched), size)
    blocks = layout.window_first - 1 - start  # whole backfill ranges; none below 2000 blocks
    result["backfill"] = {"blocks": 0, "rpcCallsPer1000Blocks": "-", "msPerStep": "-"}
    if blocks:
        calls, requests, started = rpc.calls_made, rpc.http_requests, time.perf_counter()
        steps = await step_until(watcher, cursor=layout.window_first - 1)
        seconds = time.perf_counter() - started
        result["backfill"] = {
            "blocks": blocks,
            "steps": steps,
            "rpcCalls": rpc.calls_made - calls,
            "rpcCallsPer1000Blocks": round((rpc.calls_made - calls) * 1000 / blocks, 2),
            "httpRequests": rpc.http_requests - requests,
            "msPerStep": round(seconds * 1000 / steps, 1),
        }
    await rpc.aclose()
    # The same holder renews the lease; one block a step, as when following the head.
    watcher, rpc = bench.watcher(db, holder=holder, max_range=1)
    await warm(watcher, db)
    listed = time.perf_counter()
    watcher.watched.addresses()  # what each step hands to fetch_transfers
    listed = time.perf_counter() - listed
    calls, requests = rpc.calls_made, rpc.http_requests
    with bench.meter() as cpu, SqlTimer(db.engine) as sql:
        started = time.perf_counter()
        steps = await step_until(watcher, cursor=layout.window_last)
        seconds = time.perf_counter() - started
    blocks = layout.window_last - layout.window_first + 1
    async with session_scope(db.sessions) as session:
        found = await session.scalar(select(func.count()).select_from(Payment))
    result["perBlock"] = {
        "blocks": blocks,
        "steps": steps,
        "paymentsFound": found,
        "rpcCalls": rpc.calls_made - calls,
        "rpcCallsPerBlock": round((rpc.calls_made - calls) / blocks, 3),
        "httpRequestsPerBlock": round((rpc.http_requests - requests) / blocks, 3),
        "secondsPerBlock": round(seconds / blocks, 5),
        "sqlMsPerBlock": round(sql.total * 1000 / blocks, 2),
        "refreshQueryMsPerBlock": round(sql.seconds(REFRESH_QUERY) * 1000 / blocks, 2),
        "addressListMs": round(listed * 1000, 2),
        "cpu": cpu.figures,
    }
    await rpc.aclose()
    return result


async def measure_baseline(bench: Bench, addresses: Sequence[str], rounds: int) -> dict[str, Any]:
    """The naive poller: balanceOf(address) of every token, every block, batched 100 a request."""
    rpc = RpcClient([bench.url], timeout=120)
    calls = [
        ("eth_call", [{"to": token, "data": BALANCE_OF + "0" * 24 + address[2:]}, "latest"])
        for address in addresses
        for token in bench.tokens.values()
    ]
    with bench.meter() as cpu:
        started = time.perf_counter()
        for _ in range(rounds):
            await rpc.batch(calls)
        seconds = time.perf_counter() - started
    await rpc.aclose()
    return {
        "watched": len(addresses),
        "blocksMeasured": rounds,
        "rpcCallsPerBlock": rpc.calls_made // rounds,
        "httpRequestsPerBlock": rpc.http_requests // rounds,
        "secondsPerBlock": round(seconds / rounds, 4),
        "cpu": cpu.figures,
    }


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 1),
        "p90": round(percentile(values, 0.90), 1),
        "p99": round(percentile(values, 0.99), 1),
        "max": round(max(values), 1),
        "min": round(min(values), 1),
    }


async def measure_live(
    bench: Bench, db: Database, watcher: ChainWatcher, watcher_rpc: RpcClient
) -> dict[str, Any]:
    """run_forever while blocks are mined; K orders paid; final (polled) to completed (polled)."""
    args = bench.args
    rpc = RpcClient([bench.url], timeout=30)
    clock = SystemClock()
    orders: list[Order] = []
    for _ in range(args.live_orders):
        req = CreateOrderRequest.model_validate(
            {"chainId": bench.chain.id, "symbol": "USDT", "amount": "12.34", "expireSeconds": 86400}
        )
        async with session_scope(db.sessions) as session:
            order, _ = await create_order(
                session, clock, bench.ctx, merchant_id=db.merchant_id, req=req
            )
        orders.append(order)
    # Reads outside the watcher's BEGIN IMMEDIATE (SQLite): they must not take the write lock.
    reader = create_async_engine(db.url)
    stop = asyncio.Event()
    all_completed = asyncio.Event()
    final_at: dict[int, float] = {}
    mined_at: dict[int, float] = {}
    completed_at: dict[str, float] = {}
    sent_at: dict[str, float] = {}
    tx_of: dict[str, str] = {}

    async def mine() -> None:
        deadline = time.monotonic()
        while not stop.is_set():
            deadline += args.block_interval
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            await rpc.call("evm_mine", [])
            mined_at[int(await rpc.call("eth_blockNumber", []), 16)] = time.time()

    async def track_finality() -> None:
        last = None
        while not stop.is_set():
            header = await fetch_header(rpc, "finalized")
            now = time.time()
            assert header is not None
            if last is None:
                last = header.number
            for number in range(last + 1, header.number + 1):
                final_at[number] = now
            last = max(last, header.number)
            await asyncio.sleep(args.probe_interval)

    async def track_orders() -> None:
        ids = [o.id for o in orders]
        while not stop.is_set():
            async with reader.connect() as connection:
                rows = await connection.execute(
                    select(Order.id).where(Order.id.in_(ids), Order.status == "completed")
                )
                now = time.time()
                for (order_id,) in rows.all():
                    completed_at.setdefault(order_id, now)
            if len(completed_at) == len(ids):
                all_completed.set()
            await asyncio.sleep(args.probe_interval)

    calls, blocks_before = watcher_rpc.calls_made, int(await rpc.call("eth_blockNumber", []), 16)
    tasks = [
        asyncio.create_task(watcher.run_forever(stop)),
        asyncio.create_task(mine()),
        asyncio.create_task(track_finality()),
        asyncio.create_task(track_orders()),
    ]
    token = bench.tokens["USDT"]
    try:
        with bench.meter() as cpu:
            await asyncio.sleep(1.0)  # the watcher reaches the head and follows it
            for order in orders:
                raw = bench.sender.sign(token, order.to_address, order.amount)
                sent_at[order.id] = time.time()
                tx_of[order.id] = (await bench.sender.send([raw]))[0]
                await asyncio.sleep(args.pay_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_completed.wait(), timeout=60)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await reader.dispose()
    blocks = int(await rpc.call("eth_blockNumber", []), 16) - blocks_before
    live_calls = watcher_rpc.calls_made - calls
    if len(completed_at) < len(orders):
        raise RuntimeError(f"only {len(completed_at)} of {len(orders)} orders completed")
    receipts = await rpc.batch([("eth_getTransactionReceipt", [tx_of[o.id]]) for o in orders])
    async with session_scope(db.sessions) as session:
        rows = await session.execute(
            select(Order.id, Order.complete_time_ms).where(Order.id.in_(tx_of))
        )
        complete_ms = {order_id: ms for order_id, ms in rows.all()}
    visible, settled, to_final, sent_to_completed = [], [], [], []
    for order, receipt in zip(orders, receipts, strict=True):
        block = int(receipt["blockNumber"], 16)
        visible.append((completed_at[order.id] - final_at[block]) * 1000)
        settled.append((complete_ms[order.id] or 0) - final_at[block] * 1000)
        if block in mined_at:
            to_final.append((final_at[block] - mined_at[block]) * 1000)
        sent_to_completed.append((completed_at[order.id] - sent_at[order.id]) * 1000)
    await rpc.aclose()
    return {
        "orders": len(orders),
        "blockIntervalSeconds": args.block_interval,
        "pollIntervalSeconds": args.poll_interval,
        "probeIntervalSeconds": args.probe_interval,
        "finalToCompletedVisibleMs": summary_ms(visible),
        "finalToSettledMs": summary_ms(settled),
        "minedToFinalMs": summary_ms(to_final),
        "sentToCompletedMs": summary_ms(sent_to_completed),
        "finalToCompletedSamplesMs": sorted(round(v) for v in visible),
        "blocksMined": blocks,
        "watcherRpcCallsPerBlock": round(live_calls / max(1, blocks), 2),
        "cpu": cpu.figures,
    }


# -- running --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    anvil = subprocess.run([find_anvil(), "--version"], capture_output=True, text=True, check=False)
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "anvil": anvil.stdout.splitlines()[0] if anvil.stdout else "?",
    }


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        print("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if index == 0:
            print("  " + "  ".join("-" * w for w in widths))


async def start_bench(args: argparse.Namespace, node: AnvilNode) -> Bench:
    """Deploys what ``stablegate devchain`` deploys and describes the chain to the watcher."""
    rpc = RpcClient([node.url], timeout=120)
    deployer: LocalAccount = Account.from_key(ANVIL_DEFAULT_KEYS[0])
    holders = [Account.from_key(key).address for key in ANVIL_DEFAULT_KEYS]
    contracts = await deploy_gateway_contracts(rpc, deployer)
    tokens = await deploy_dev_tokens(rpc, deployer, holders, MINT_WHOLE_TOKENS)
    chain = Chain(
        id=ANVIL_CHAIN_ID,
        name="Local dev chain",
        network="devchain",
        confirmations=2,
        block_time=1,
        testnet=True,
        rpc_urls=(node.url,),
        factory=contracts.factory,
        implementation=contracts.implementation,
        tokens=tuple(Token(s, a, DEV_TOKENS[s][1]) for s, a in tokens.items()),
    )
    ctx = OrderContext(
        registry=ChainRegistry({chain.id: chain}), public_url="http://gw", max_order_amount=10**9
    )
    sender = Sender(rpc, SENDERS)
    await sender.start()
    pid = node._process.pid if node._process else 0  # for CPU accounting only
    return Bench(args, node.url, pid, rpc, chain, ctx, tokens, sender)


async def run_backend(
    bench: Bench,
    backend: str,
    tmp: Path,
    backfill_orders: Sequence[PlannedOrder],
    probes: Sequence[PlannedOrder],
    filler: Sequence[PlannedOrder],
    created_ms: int,
) -> dict[str, Any]:
    args, chain = bench.args, bench.chain
    out: dict[str, Any] = {}
    if backend == "postgres":
        out["server"] = (await _pg_admin(args.postgres_url, "SELECT version()"))[:40]
    out["quietBefore"] = round(
        await asyncio.to_thread(wait_for_quiet, args.quiet_below, args.quiet_wait)
    )

    def pending(merchant_id: str, order: PlannedOrder) -> dict[str, Any]:
        expire_ms = created_ms + 7 * DAY_MS
        return order_row(
            merchant_id, chain, order, status="pending", created_ms=created_ms, expire_ms=expire_ms
        )

    async with fresh_database(backend, args, tmp) as db:
        await insert_orders(db, [pending(db.merchant_id, o) for o in backfill_orders])
        print(f"[{backend}] backfill ...", flush=True)
        out["backfill"], watcher, watcher_rpc = await measure_backfill(bench, db)
        out["backfill"]["orders"] = len(backfill_orders)
        print(f"  {out['backfill']}", flush=True)
        print(f"[{backend}] live: final to completed ...", flush=True)
        snapshot = await bench.rpc.call("evm_snapshot", [])
        out["live"] = await measure_live(bench, db, watcher, watcher_rpc)
        if not await bench.rpc.call("evm_revert", [snapshot]):
            raise RuntimeError("evm_revert failed")
        await bench.sender.start()  # the reverted payments gave their nonces back
        await watcher_rpc.aclose()
        print(f"  {out['live']}", flush=True)
    out["watched"] = []
    for size in sorted({int(s) for s in args.watched.split(",")}):
        print(f"[{backend}] watched set {size} ...", flush=True)
        async with fresh_database(backend, args, tmp) as db:
            rows = [pending(db.merchant_id, o) for o in probes[:size]]
            # Older orders, spread over the watch window, long expired: still watched.
            now, span = SystemClock().now_ms(), 88 * DAY_MS
            for index, o in enumerate(filler[: size - len(rows)]):
                created = now - DAY_MS - span + span * index // size
                rows.append(
                    order_row(
                        db.merchant_id,
                        chain,
                        o,
                        status="expired",
                        created_ms=created,
                        expire_ms=created + 900_000,
                    )
                )
            insert_seconds = await insert_orders(db, rows)
            if backend == "postgres":  # as autovacuum would after a bulk load
                async with db.engine.begin() as connection:
                    await connection.execute(text("ANALYZE orders"))
            figures = await measure_watched(bench, db, size)
            figures["insertSeconds"] = round(insert_seconds, 2)
            out["watched"].append(figures)
            print(f"  {figures}", flush=True)
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    configure_logging(level="WARNING")  # the watcher logs every payment at INFO
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    sizes = sorted({int(s) for s in args.watched.split(",")})
    rng = random.Random(args.seed)
    results: dict[str, Any] = {
        "bench": "watcher",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "scan": {"addressChunk": ADDRESS_CHUNK, "largeSet": LARGE_SET, "maxRange": BACKFILL_RANGE},
    }
    tmp = Path(tempfile.mkdtemp(prefix="stablegate-bench-watcher-"))
    node = AnvilNode(chain_id=ANVIL_CHAIN_ID, extra_args=ANVIL_ARGS)
    await asyncio.to_thread(node.start)
    try:
        bench = await start_bench(args, node)
        created_ms = SystemClock().now_ms() - 60_000
        backfill_orders = plan_orders(args.orders, rng, ["USDT", "USDC"])
        probes = plan_orders(args.probes, rng, ["USDT", "USDC"])
        print(f"building the chain: {args.blocks} blocks, {args.payments} payments ...", flush=True)
        bench.layout = layout = await build_chain(
            bench.rpc,
            bench.sender,
            bench.tokens,
            args,
            backfill_orders[: args.payments],
            probes,
            rng,
        )
        results["chain"] = {
            k: round(v, 2) if isinstance(v, float) else v for k, v in vars(layout).items()
        }
        print(
            f"  head {layout.head}, {layout.payments} payments in {layout.payment_blocks} blocks, "
            f"{layout.noise} noise transfers, window {layout.window_first}-{layout.window_last}, "
            f"built in {layout.build_seconds:.1f}s",
            flush=True,
        )
        # Watched sets: the probes (paid in the window) plus filler, nested, the same for all.
        filler = [
            PlannedOrder(new_order_id(), "USDT", 10**6, random_address(rng))
            for _ in range(max(sizes) - len(probes))
        ]
        print("naive balance polling baseline ...", flush=True)
        results["quietBeforeBaseline"] = round(
            await asyncio.to_thread(wait_for_quiet, args.quiet_below, args.quiet_wait)
        )
        baseline = []
        for size in sizes:
            addresses = [o.to_address for o in [*probes, *filler][:size]]
            rounds = args.baseline_blocks if size * len(bench.tokens) <= 30_000 else 1
            baseline.append(await measure_baseline(bench, addresses, rounds))
            print(f"  {size}: {baseline[-1]}", flush=True)
        results["baseline"] = baseline
        results["backends"] = {}
        for backend in backends:
            results["backends"][backend] = await run_backend(
                bench, backend, tmp, backfill_orders, probes, filler, created_ms
            )
        await bench.rpc.aclose()
    finally:
        await asyncio.to_thread(node.stop)
        shutil.rmtree(tmp, ignore_errors=True)
    return results


BACKFILL_COLUMNS = [
    ("orders", "orders"),
    ("payments", "payments"),
    ("blocks", "blocks"),
    ("s", "seconds"),
    ("blocks/s", "blocksPerSecond"),
    ("payments/s", "paymentsPerSecond"),
    ("ms/payment", "msPerPayment"),
    ("SQL s", "sqlSeconds"),
    ("calls/block", "rpcCallsPerBlock"),
    ("calls/payment", "rpcCallsPerPayment"),
    ("steps", "steps"),
    ("other CPU", "cpu.otherPct"),
]
WATCHED_COLUMNS = [
    ("watched", "watched"),
    ("calls/blk", "perBlock.rpcCallsPerBlock"),
    ("http/blk", "perBlock.httpRequestsPerBlock"),
    ("s/blk", "perBlock.secondsPerBlock"),
    ("SQL ms/blk", "perBlock.sqlMsPerBlock"),
    ("refresh query ms/blk", "perBlock.refreshQueryMsPerBlock"),
    ("address list ms", "perBlock.addressListMs"),
    ("other CPU", "perBlock.cpu.otherPct"),
    ("bf calls/1k blk", "backfill.rpcCallsPer1000Blocks"),
    ("bf ms/step", "backfill.msPerStep"),
    ("set load s", "watchedLoadSeconds"),
]


def pick(figures: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        figures = figures[key]
    return figures


def report(results: dict[str, Any]) -> None:
    m, c = results["machine"], results["chain"]
    print(f"\nmachine: {m['cpus']} CPUs shared by anvil, the benchmark and the database")
    print(f"  {m['platform']}, python {m['python']}, sqlite {m['sqlite']}, {m['anvil']}")
    print(
        f"chain: {c['head']} blocks, {c['payments']} payments in {c['payment_blocks']} blocks, "
        f"{c['noise']} unwatched transfers; 'other CPU' = other jobs on the machine "
        "(and PostgreSQL), % of one core"
    )
    rows = [
        [backend, *(pick(out["backfill"], path) for _, path in BACKFILL_COLUMNS)]
        for backend, out in results["backends"].items()
    ]
    print_table(
        "1. Backfill from block 0 (fresh watcher, ranges of up to 2000 final blocks)",
        ["backend", *(title for title, _ in BACKFILL_COLUMNS)],
        rows,
    )
    rows = [
        [backend, *(pick(w, path) for _, path in WATCHED_COLUMNS)]
        for backend, out in results["backends"].items()
        for w in out["watched"]
    ]
    print_table(
        "2a. Watcher vs watched-set size, the same blocks: one block a step (as at the head), "
        "then backfill ranges (bf)",
        ["backend", *(title for title, _ in WATCHED_COLUMNS)],
        rows,
    )
    rows = []
    for base in results["baseline"]:
        row = [base["watched"], base["rpcCallsPerBlock"], base["httpRequestsPerBlock"]]
        row.append(base["secondsPerBlock"])
        for out in results["backends"].values():
            per = next(w["perBlock"] for w in out["watched"] if w["watched"] == base["watched"])
            row.append(round(base["rpcCallsPerBlock"] / per["rpcCallsPerBlock"]))
            row.append(round(base["secondsPerBlock"] / per["secondsPerBlock"], 1))
        rows.append(row)
    header = ["watched", "naive calls/blk", "naive http/blk", "naive s/blk"]
    for backend in results["backends"]:
        header += [f"calls ratio ({backend})", f"time ratio ({backend})"]
    print_table(
        "2b. Naive balance polling (balanceOf x 3 tokens per address per block, batches of 100)"
        " vs the watcher one block a step",
        header,
        rows,
    )
    rows = []
    for backend, out in results["backends"].items():
        live = out["live"]
        for label, key in (
            ("final -> completed, seen in the DB", "finalToCompletedVisibleMs"),
            ("final -> completeTime set", "finalToSettledMs"),
            ("mined -> final", "minedToFinalMs"),
            ("payment sent -> completed", "sentToCompletedMs"),
        ):
            s = live[key]
            rows.append([backend, label, s["p50"], s["p90"], s["p99"], s["max"]])
    print_table(
        "3. Live (ms): "
        + "; ".join(
            f"{b}: {o['live']['orders']} orders, {o['live']['watcherRpcCallsPerBlock']} watcher "
            f"calls/block, other CPU {o['live']['cpu']['otherPct']}%"
            for b, o in results["backends"].items()
        ),
        ["backend", "", "p50", "p90", "p99", "max"],
        rows,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite", help="sqlite,postgres")
    parser.add_argument(
        "--postgres-url",
        "--database-url",
        dest="postgres_url",
        default=os.environ.get(
            "STABLEGATE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a server where this user may CREATE DATABASE (fresh ones are created and dropped)",
    )
    parser.add_argument("--blocks", type=int, default=20_000, help="blocks holding the payments")
    parser.add_argument("--orders", type=int, default=1000, help="orders watched in backfill")
    parser.add_argument("--payments", type=int, default=800, help="of those, orders paid")
    parser.add_argument("--per-block", type=int, default=8, help="payments per payment block")
    parser.add_argument(
        "--noise", type=int, default=2, help="unwatched transfers per payment block"
    )
    parser.add_argument("--watched", default="10,1000,5000,100000", help="watched-set sizes")
    parser.add_argument("--probes", type=int, default=10, help="watched orders paid in the window")
    parser.add_argument("--window", type=int, default=100, help="blocks measured one a step")
    parser.add_argument("--window-noise", type=int, default=3, help="unwatched transfers a block")
    parser.add_argument(
        "--baseline-blocks", type=int, default=3, help="naive rounds up to 30k calls"
    )
    parser.add_argument("--live-orders", type=int, default=100)
    parser.add_argument("--block-interval", type=float, default=0.2, help="live: seconds a block")
    parser.add_argument("--poll-interval", type=float, default=0.1, help="live: watcher poll")
    parser.add_argument("--pay-interval", type=float, default=0.1, help="live: seconds a payment")
    parser.add_argument("--probe-interval", type=float, default=0.02, help="live: bench polling")
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=30,
        help="wait until other jobs use less (%% of a core)",
    )
    parser.add_argument("--quiet-wait", type=float, default=30, help="seconds to wait, at most")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json-out", type=Path, help="also write the JSON figures here")
    args = parser.parse_args()
    if args.payments > args.orders:
        parser.error("--payments must not exceed --orders")
    started = time.perf_counter()
    results = asyncio.run(run(args))
    results["wallSeconds"] = round(time.perf_counter() - started, 1)
    report(results)
    line = json.dumps(results, separators=(",", ":"))
    if args.json_out:
        args.json_out.write_text(line + "\n")
    print(f"\ntotal {results['wallSeconds']}s")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
