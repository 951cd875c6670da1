"""Helpers of the fault tests: a chain driver that packs many transfers into one block, watcher
subprocesses (``stablegate watch``) with their JSON logs, the gateway database they share, and
the expected outcome of every order (final state and every event sequence a fault-free watcher
could have written).

Randomness comes from one seed, printed by each test and replayable with
``STABLEGATE_FAULT_SEED=<seed>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from tests import chain_files
from tests.conftest import empty_tables

from stablegate.chain.evm.contracts import standard_token, tether_token
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import transact
from stablegate.chain.registry import Chain, ChainRegistry, load_registry
from stablegate.clock import FakeClock
from stablegate.db.engine import make_engine, make_sessionmaker, read_scope, session_scope
from stablegate.merchants.service import create_merchant
from stablegate.migrations import upgrade
from stablegate.models import ChainState, Lease, Order, Payment, WebhookEvent
from stablegate.orders.context import OrderContext
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.service import create_order
from stablegate.payments.settlement import MerchantPolicy, settle
from stablegate.secret_box import SecretBox

CHAIN_ID = 31337
LEASE_NAME = f"watcher:{CHAIN_ID}"
PAYOUT = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
DECIMALS = {"USDT": 6, "USDC": 6, "USDT18": 18}
TX_GAS = 100_000
MAX_FEE = 50 * 10**9
TIP = 10**9


# -- the seed -----------------------------------------------------------------------------------


def fault_seed(test_name: str) -> int:
    """The run's seed: ``STABLEGATE_FAULT_SEED`` or a fresh one, printed so a failure replays."""
    raw = os.environ.get("STABLEGATE_FAULT_SEED")
    seed = int(raw) if raw else secrets.randbelow(2**31)
    print(f"\n[{test_name}] fault seed {seed} (replay: STABLEGATE_FAULT_SEED={seed})", flush=True)
    return seed


# -- chain ----------------------------------------------------------------------------------------


@dataclass
class SentTransfer:
    order_key: str
    token: str  # checksummed token address
    to: str
    units: int
    tx_hash: str
    sender: str
    after_barrier: bool  # sent only after the order was seen expired/completed in the database
    block: int = -1
    time_ms: int = 0


class ChainDriver:
    """Sends token transfers with automine off: a batch of signed transactions, then one
    ``anvil_mine``, so a batch lands in exactly one block. A background miner adds a block every
    ``interval`` seconds; both hold one lock, so a batch is never split over two blocks.

    Every block is one second after its parent (``anvil_setBlockTimestampInterval``), so chain
    time runs ahead of the wall clock and a 60 s expiry passes after 60 blocks.
    """

    def __init__(self, rpc: RpcClient, tokens: dict[str, str], senders: Sequence[LocalAccount]):
        self.rpc = rpc
        self.tokens = tokens  # symbol -> address
        self.senders = list(senders)
        self.lock = asyncio.Lock()
        self.nonces: dict[str, int] = {}
        self.sent: list[SentTransfer] = []
        self.blocks_mined = 0
        self._next_sender = 0
        self._miner: asyncio.Task[None] | None = None
        self._stop_miner = asyncio.Event()

    async def setup(self, deployer: LocalAccount, mint_to: Sequence[LocalAccount] = ()) -> None:
        """Mints tokens to extra senders (automine still on), then switches to batched mining."""
        for account in mint_to:
            for symbol, address in self.tokens.items():
                artifact = tether_token() if symbol == "USDT" else standard_token()
                call = artifact.encode_call("mint", account.address, 10**6 * 10 ** DECIMALS[symbol])
                await transact(self.rpc, deployer, address, call)
        await self.rpc.call("evm_setAutomine", [False])
        await self.rpc.call("anvil_setBlockTimestampInterval", [1])
        for account in self.senders:
            count = await self.rpc.call("eth_getTransactionCount", [account.address, "pending"])
            self.nonces[account.address] = int(count, 16)

    async def restore(self) -> None:
        await self.stop_miner()
        await self.rpc.call("anvil_removeBlockTimestampInterval", [])
        await self.rpc.call("evm_setAutomine", [True])

    async def head(self) -> int:
        return int(await self.rpc.call("eth_blockNumber", []), 16)

    async def chain_time_ms(self) -> int:
        block = await self.rpc.call("eth_getBlockByNumber", ["latest", False])
        return int(block["timestamp"], 16) * 1000

    async def mine(self, blocks: int = 1) -> None:
        async with self.lock:
            await self.rpc.call("anvil_mine", [hex(blocks)])
            self.blocks_mined += blocks

    def start_miner(self, interval: float = 0.05) -> None:
        self._stop_miner.clear()

        async def run() -> None:
            while not self._stop_miner.is_set():
                await self.mine()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_miner.wait(), interval)

        self._miner = asyncio.create_task(run())

    async def stop_miner(self) -> None:
        self._stop_miner.set()
        if self._miner is not None:
            await self._miner
            self._miner = None

    def _sign(self, sender: LocalAccount, token: str, to: str, units: int) -> str:
        nonce = self.nonces[sender.address]
        self.nonces[sender.address] = nonce + 1
        tx = {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": nonce,
            "gas": TX_GAS,
            "maxPriorityFeePerGas": TIP,
            "maxFeePerGas": MAX_FEE,
            "value": 0,
            "to": to_checksum_address(token),
            "data": tether_token().encode_call("transfer", to_checksum_address(to), units),
        }
        return "0x" + sender.sign_transaction(tx).raw_transaction.hex()

    async def send_block(
        self, transfers: Sequence[tuple[str, str, str, int]], *, after_barrier: bool = False
    ) -> list[SentTransfer]:
        """``transfers``: (order key, token symbol, deposit address, units), all in one new block;
        senders rotate over the accounts."""
        if not transfers:
            return []
        async with self.lock:
            raws: list[str] = []
            sent: list[SentTransfer] = []
            for key, symbol, to, units in transfers:
                sender = self.senders[self._next_sender % len(self.senders)]
                self._next_sender += 1
                raws.append(self._sign(sender, self.tokens[symbol], to, units))
                sent.append(
                    SentTransfer(
                        key, self.tokens[symbol], to, units, "", sender.address, after_barrier
                    )
                )
            hashes = await self.rpc.batch([("eth_sendRawTransaction", [raw]) for raw in raws])
            for item, tx_hash in zip(sent, hashes, strict=True):
                item.tx_hash = str(tx_hash).lower()
            await self.rpc.call("anvil_mine", ["0x1"])
            self.blocks_mined += 1
        self.sent.extend(sent)
        return sent

    async def resolve_blocks(self) -> dict[int, int]:
        """Fills in block and time of every sent transfer (each must have succeeded); returns the
        time of every block from the first transfer's block to the head."""
        receipts = await self.rpc.batch(
            [("eth_getTransactionReceipt", [s.tx_hash]) for s in self.sent]
        )
        for item, receipt in zip(self.sent, receipts, strict=True):
            assert receipt is not None, f"transfer {item.tx_hash} was never mined"
            assert receipt["status"] == "0x1", f"transfer {item.tx_hash} reverted"
            item.block = int(receipt["blockNumber"], 16)
        first = min(s.block for s in self.sent) if self.sent else await self.head()
        times = await block_times(self.rpc, first, await self.head())
        for item in self.sent:
            item.time_ms = times[item.block]
        return times


async def block_times(rpc: RpcClient, first: int, last: int) -> dict[int, int]:
    numbers = list(range(first, last + 1))
    raws = await rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
    return {n: int(raw["timestamp"], 16) * 1000 for n, raw in zip(numbers, raws, strict=True)}


def write_chains_file(
    path: Path, rpc_urls: Sequence[str], factory: str, implementation: str, tokens: dict[str, str]
) -> Path:
    return chain_files.write_chains_file(
        path,
        rpc_urls,
        chain_id=CHAIN_ID,
        name="Local dev chain",
        network="devchain",
        confirmations=2,
        block_time=1,
        testnet=True,
        factory=factory,
        implementation=implementation,
        tokens=[(symbol, address, DECIMALS[symbol]) for symbol, address in tokens.items()],
    )


# -- watcher subprocesses -------------------------------------------------------------------------


def stablegate_command() -> list[str]:
    binary = Path(sys.executable).with_name("stablegate")
    if binary.exists():
        return [str(binary)]
    return [sys.executable, "-m", "stablegate.cli"]


def watcher_env(
    database_url: str, chains_file: Path, data_dir: Path, *, lease_ttl_ms: int | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STABLEGATE_")}
    env.update(
        {
            "STABLEGATE_DATABASE_URL": database_url,
            "STABLEGATE_CHAINS_FILE": str(chains_file),
            "STABLEGATE_DATA_DIR": str(data_dir),
            "STABLEGATE_SECRET_KEY": Fernet.generate_key().decode(),
            "STABLEGATE_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
            # A stuck step is logged with its stack (step_stalled) well within a test's waits.
            "STABLEGATE_STEP_TIMEOUT_S": "20",
        }
    )
    if lease_ttl_ms is not None:
        env["STABLEGATE_WATCHER_LEASE_TTL_MS"] = str(lease_ttl_ms)
    return env


class WatcherProcess:
    """One ``stablegate watch --chain 31337`` process; its JSON log lines go to a file."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.env = env
        self.log_path = log_dir / f"{name}.jsonl"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> WatcherProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*stablegate_command(), "watch", "--chain", str(CHAIN_ID)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
            )
        self.started_at = time.monotonic()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def holds(self, lease: Lease | None) -> bool:
        return lease is not None and f":{self.pid}:" in lease.holder

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def kill(self) -> None:
        if self.alive:
            self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    async def terminate(self, within: float = 15) -> int:
        """SIGTERM (a clean stop), then SIGKILL if it hangs; the exit code. A process that
        hangs has its stacks dumped first, and the failure shows them.

        Waits without blocking the event loop: a test task may be inside a database
        transaction, and on SQLite a loop blocked here would keep its write lock, which the
        stopping watcher needs to roll back and hand its lease over (a deadlock)."""
        assert self.process is not None
        if self.alive:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
        if await self._exited(within):
            return self.process.returncode
        stacks = await self.dump_stacks()
        self.process.kill()
        self.process.wait(10)
        raise AssertionError(f"{self.name} did not stop on SIGTERM\n{stacks}")

    async def _exited(self, within: float) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + within
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def dump_stacks(self, tail: int = 150, within: float = 5) -> str:
        """Asks a live process for every thread's and asyncio task's stack (SIGUSR1, see
        ``stablegate.stacks``); returns, and prints, the tail of its log with them."""
        if not self.alive:
            return f"{self.name} is not running"
        before = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGUSR1)
        deadline = time.monotonic() + within
        # The threads come at once (from the signal handler), the tasks once the loop runs.
        while time.monotonic() < deadline:
            with self.log_path.open("rb") as log:
                log.seek(before)
                if b"asyncio tasks of process" in log.read():
                    break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.2)
        lines = self.log_path.read_text(errors="replace").splitlines()[-tail:]
        text = f"--- {self.name} (pid {self.pid}): last {len(lines)} log lines ---\n"
        text += "\n".join(lines)
        print(text, flush=True)
        return text

    def logs(self) -> list[dict[str, Any]]:
        """Parsed JSON log lines (anything else, such as a traceback, as {"raw": line})."""
        if not self.log_path.exists():
            return []
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = {"raw": line}
            lines.append(parsed if isinstance(parsed, dict) else {"raw": line})
        return lines

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.logs() if line.get("event") == name]


def log_time(line: dict[str, Any]) -> float:
    """A log line's timestamp as Unix seconds."""
    from datetime import datetime

    return datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00")).timestamp()


async def wait_for(
    condition: Callable[[], Any], within: float, what: str, interval: float = 0.1
) -> Any:
    """Polls ``condition`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)


# -- the gateway database -------------------------------------------------------------------------


class GatewayDb:
    """The database the watcher processes share; orders are created here, "now" in chain time.
    Its reads take no write lock (``read_scope``): polling must not queue the watchers."""

    def __init__(self, engine: AsyncEngine, chains_file: Path) -> None:
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = make_sessionmaker(engine)
        registry = load_registry(chains_file)
        chain = registry.get(CHAIN_ID)
        assert chain is not None
        self.chain: Chain = chain
        self.ctx = OrderContext(ChainRegistry({CHAIN_ID: chain}), "http://gw", 10**9)
        self.clock = FakeClock()
        self.merchant_id = ""

    @classmethod
    async def open(cls, url: str, chains_file: Path) -> GatewayDb:
        engine = make_engine(url)
        await upgrade(engine)
        if not url.startswith("sqlite"):
            await empty_tables(engine)
        db = cls(engine, chains_file)
        async with session_scope(db.sessions) as session:
            created = await create_merchant(
                session,
                SecretBox(Fernet.generate_key()),
                db.clock,
                name="Fault shop",
                payout_address=PAYOUT,
                chain_ids=[CHAIN_ID],
            )
        db.merchant_id = created.merchant_id
        return db

    async def close(self) -> None:
        await self.engine.dispose()

    async def create_orders(
        self, chain_time_ms: int, specs: Iterable[tuple[str, str, str, int]]
    ) -> list[Order]:
        """``specs``: (orderNo, symbol, amount as a decimal string, expireSeconds)."""
        self.clock.set_ms(chain_time_ms)
        created = []
        async with session_scope(self.sessions) as session:
            for order_no, symbol, amount, expire_seconds in specs:
                req = CreateOrderRequest.model_validate(
                    {
                        "chainId": CHAIN_ID,
                        "symbol": symbol,
                        "amount": amount,
                        "orderNo": order_no,
                        "expireSeconds": expire_seconds,
                    }
                )
                order, _ = await create_order(
                    session, self.clock, self.ctx, merchant_id=self.merchant_id, req=req
                )
                created.append(order)
        return created

    async def lease(self) -> Lease | None:
        async with read_scope(self.sessions) as session:
            return await session.get(Lease, LEASE_NAME)

    async def expire_lease(self, holder_pid: int | None = None) -> bool:
        """What an expired lease looks like (as after a clean release): expires_at_ms = 0.
        Only when ``holder_pid`` (if given) holds it. True if a row changed."""
        query = update(Lease).where(Lease.name == LEASE_NAME).values(expires_at_ms=0)
        if holder_pid is not None:
            query = query.where(Lease.holder.like(f"%:{holder_pid}:%"))
        async with session_scope(self.sessions) as session:
            result = await session.execute(query)
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def chain_state(self) -> ChainState | None:
        async with read_scope(self.sessions) as session:
            return await session.get(ChainState, CHAIN_ID)

    async def orders(self) -> dict[str, Order]:
        async with read_scope(self.sessions) as session:
            rows = (await session.scalars(select(Order))).all()
        return {row.order_no: row for row in rows}

    async def statuses(self, order_ids: Iterable[str]) -> dict[str, str]:
        wanted = list(order_ids)
        if not wanted:
            return {}
        async with read_scope(self.sessions) as session:
            rows = await session.execute(select(Order.id, Order.status).where(Order.id.in_(wanted)))
            return {order_id: status for order_id, status in rows.all()}

    async def payments(self) -> list[Payment]:
        async with read_scope(self.sessions) as session:
            return list((await session.scalars(select(Payment).order_by(Payment.id))).all())

    async def events(self) -> dict[str, list[WebhookEvent]]:
        async with read_scope(self.sessions) as session:
            rows = (
                await session.scalars(
                    select(WebhookEvent).order_by(WebhookEvent.order_id, WebhookEvent.sequence)
                )
            ).all()
        by_order: dict[str, list[WebhookEvent]] = {}
        for row in rows:
            by_order.setdefault(row.order_id, []).append(row)
        return by_order

    async def can_write_now(self) -> bool:
        """Whether no other connection holds a write lock (SQLite) or the lease row (PostgreSQL):
        a process frozen inside its transaction would block every other watcher."""
        probe = make_engine(self.engine.url.render_as_string(hide_password=False))
        try:
            async with probe.connect() as connection:
                if probe.dialect.name == "sqlite":
                    await connection.exec_driver_sql("PRAGMA busy_timeout=0")
                    await connection.exec_driver_sql("UPDATE leases SET name = name WHERE 0")
                else:
                    await connection.execute(text("SELECT 1 FROM leases FOR UPDATE NOWAIT"))
                await connection.rollback()
        except Exception:
            return False
        finally:
            await probe.dispose()
        return True


# -- orders: the plan, and what must come out of it -------------------------------------------------


@dataclass
class PlannedOrder:
    key: str  # the orderNo
    category: str
    symbol: str
    amount: str  # decimal string
    expire_seconds: int
    # (block offset within the wave, [(symbol, units)]) paid right away
    groups: list[tuple[int, list[tuple[str, int]]]] = field(default_factory=list)
    # paid only once the database shows this status ("expired" or "completed")
    after_status: str | None = None
    after_payments: list[tuple[str, int]] = field(default_factory=list)
    order_id: str = ""
    to_address: str = ""
    units: int = 0
    expire_time_ms: int = 0
    token_address: str = ""

    def payment_count(self) -> int:
        return sum(len(p) for _, p in self.groups) + len(self.after_payments)


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` as ``parts`` positive integers."""
    parts = max(1, min(parts, total))
    cuts: set[int] = set()
    while len(cuts) < parts - 1:
        cuts.add(rng.randrange(1, total))
    bounds = [0, *sorted(cuts), total]
    return [b - a for a, b in itertools.pairwise(bounds)]


def _groups(
    symbol: str, amounts: list[int], rng: random.Random, max_offset: int
) -> list[tuple[int, list[tuple[str, int]]]]:
    """Spreads payments over 1-3 blocks at increasing offsets."""
    count = min(len(amounts), rng.randint(1, 3))
    offsets = sorted(rng.sample(range(max_offset + 1), count))
    groups: list[tuple[int, list[tuple[str, int]]]] = [(o, []) for o in offsets]
    for index, units in enumerate(amounts):
        target = groups[index] if index < count else rng.choice(groups)
        target[1].append((symbol, units))
    return groups


CATEGORY_MIX = (
    # category, weight
    ("exact", 16),
    ("split", 24),
    ("overpaid", 12),
    ("wrong_token", 6),
    ("underpaid_open", 10),
    ("underpaid_expiring", 10),
    ("unpaid_expiring", 7),
    ("late", 9),
    ("topup", 6),
)
SHORT_EXPIRY = 60  # seconds = blocks: the driver mines one second per block
LONG_EXPIRY = 86_400


def plan_orders(
    rng: random.Random,
    count: int,
    *,
    prefix: str,
    max_payments: int = 6,
    categories: Sequence[tuple[str, int]] = CATEGORY_MIX,
) -> list[PlannedOrder]:
    names = [c for c, _ in categories]
    weights = [w for _, w in categories]
    plans = []
    for index in range(count):
        category = names[index] if index < len(names) else rng.choices(names, weights)[0]
        symbol = rng.choice(["USDT", "USDT", "USDC", "USDT18"])
        decimals = DECIMALS[symbol]
        whole = rng.randint(1, 900)
        cents = rng.randint(0, 99)
        amount = f"{whole}.{cents:02d}"
        units = int(Decimal(amount) * 10**decimals)
        plan = PlannedOrder(
            f"{prefix}-{index:03d}-{category}", category, symbol, amount, LONG_EXPIRY
        )
        plan.units = units
        many = rng.randint(2, max_payments)
        if category == "exact":
            plan.groups = [(rng.randint(0, 2), [(symbol, units)])]
        elif category == "split":
            plan.groups = _groups(symbol, _split(units, many, rng), rng, 4)
        elif category == "overpaid":
            extra = rng.randint(1, units // 5 + 1)
            plan.groups = _groups(symbol, _split(units + extra, many, rng), rng, 4)
        elif category == "wrong_token":
            other = "USDC" if symbol != "USDC" else "USDT"
            wrong = rng.randint(1, 10 ** DECIMALS[other] * 50)
            plan.groups = [(0, [(symbol, units)]), (rng.randint(0, 3), [(other, wrong)])]
        elif category == "underpaid_open":
            short = rng.randint(1, units // 2)
            plan.groups = _groups(symbol, _split(units - short, many - 1, rng), rng, 4)
        elif category == "underpaid_expiring":
            plan.expire_seconds = SHORT_EXPIRY
            short = rng.randint(1, units // 2)
            # all in one early block: well inside the 60 s window
            plan.groups = [(0, [(symbol, u) for u in _split(units - short, many - 1, rng)])]
        elif category == "unpaid_expiring":
            plan.expire_seconds = SHORT_EXPIRY
        elif category == "late":
            plan.expire_seconds = SHORT_EXPIRY
            plan.after_status = "expired"
            plan.after_payments = [(symbol, u) for u in _split(units, rng.randint(1, 3), rng)]
        elif category == "topup":
            plan.groups = _groups(symbol, _split(units, many - 1, rng), rng, 3)
            plan.after_status = "completed"
            plan.after_payments = [(symbol, rng.randint(1, units // 10 + 1))]
        plans.append(plan)
    return plans


def bind_orders(plans: Sequence[PlannedOrder], orders: Sequence[Order]) -> None:
    for plan, order in zip(plans, orders, strict=True):
        assert order.order_no == plan.key
        plan.order_id = order.id
        plan.to_address = order.to_address
        plan.expire_time_ms = order.expire_time_ms
        plan.token_address = order.token_address
        assert order.amount == plan.units


@dataclass(frozen=True)
class Expected:
    status: str
    exceptions: tuple[str, ...]
    paid: int
    sequences: frozenset[tuple[str, ...]]


def expected_outcome(
    plan: PlannedOrder, sent: Sequence[SentTransfer], times: dict[int, int]
) -> Expected:
    """The order's final state from the design (docs/DESIGN.md §3), computed from the amounts and
    the block times of what was sent; and every event sequence a watcher without faults could
    have written, whatever its timing."""
    credit = [s for s in sent if s.token.lower() == plan.token_address.lower()]
    on_time = sum(s.units for s in credit if s.time_ms <= plan.expire_time_ms)
    late = sum(s.units for s in credit if s.time_ms > plan.expire_time_ms)
    expiry_block = next((n for n in sorted(times) if times[n] > plan.expire_time_ms), None)
    exceptions: set[str] = set()
    if len(credit) < len(sent):
        exceptions.add("wrong_token")
    if on_time >= plan.units:
        status = "completed"
        if on_time + late > plan.units:
            exceptions.add("overpaid")
    elif expiry_block is not None:
        status = "expired"
        if on_time:
            exceptions.add("underpaid")
        if late:
            exceptions.add("paid_late")
    else:
        status = "pending"
        if on_time:
            exceptions.add("underpaid")
    sequences = possible_event_sequences(plan, sent, expiry_block)
    return Expected(status, tuple(sorted(exceptions)), on_time + late, sequences)


def possible_event_sequences(
    plan: PlannedOrder, sent: Sequence[SentTransfer], expiry_block: int | None
) -> frozenset[tuple[str, ...]]:
    """Every outbox sequence of a fault-free watcher, over every way its steps can cut the
    chain: the blocks that matter to this order (its payments' blocks and the first block past
    its expiry) are positions 0..n-1; a step moves the cursor ``c`` and the processed final
    height ``f`` (positions at or below them) forward, either scanning unfinal blocks (f' <= c)
    or backfilling final ones (c' = f'). Each step settles the order with the rules the watcher
    uses (payments/settlement.py), as the watcher does. A payment sent only after the database
    showed a status can only be scanned from a state where everything before it was final."""
    blocks = sorted(
        {s.block for s in sent} | ({expiry_block} if expiry_block is not None else set())
    )
    position = {block: index for index, block in enumerate(blocks)}
    n = len(blocks)
    expiry_at = position[expiry_block] if expiry_block is not None else None
    barriers = {position[s.block] for s in sent if s.after_barrier}
    pays = [(position[s.block], s) for s in sent]

    def run_step(
        c: int,
        f: int,
        c2: int,
        f2: int,
        order_state: tuple[str, tuple[str, ...]],
        pay_state: tuple[tuple[str | None, bool], ...],
    ) -> tuple[tuple[str, tuple[str, ...]], tuple[tuple[str | None, bool], ...], tuple[str, ...]]:
        order = Order(
            id="o",
            amount=plan.units,
            expire_time_ms=plan.expire_time_ms,
            status=order_state[0],
            exceptions=list(order_state[1]),
            paid_amount=0,
            pending_amount=0,
            tx_id=None,
        )
        rows: list[Payment] = []
        newly_seen: set[str] = set()  # kinds of the transfers this step records
        finalized = False
        new_state = []
        for (index, s), (before, credited) in zip(pays, pay_state, strict=True):
            status = before
            kind = "credit" if s.token.lower() == plan.token_address.lower() else "wrong_token"
            if before is None and index < c2:
                status = "final" if index < f2 else "seen"
                newly_seen.add(kind)
            elif before == "seen" and index < f2:
                status = "final"
                finalized = True
            if status is not None:
                rows.append(
                    Payment(
                        tx_hash=s.tx_hash,
                        kind=kind,
                        status=status,
                        amount=s.units,
                        block_number=s.block,
                        block_time_ms=s.time_ms,
                        log_index=0,
                        credited=credited,
                    )
                )
            new_state.append((status, credited))
        time_passed = expiry_at is not None and expiry_at < f2
        events: tuple[str, ...] = ()
        if newly_seen or finalized or (order.status == "pending" and time_passed):
            result = settle(
                order,
                rows,
                policy=MerchantPolicy(),
                final_time_ms=plan.expire_time_ms + 1 if time_passed else 0,
                newly_seen="credit" in newly_seen,
                now_ms=0,
                wrong_token_seen="wrong_token" in newly_seen,
            )
            events = tuple(result.events)
            credited_by_tx = {p.tx_hash: bool(p.credited) for p in rows}
            new_state = [
                (status, credited_by_tx.get(s.tx_hash, credited) if status else credited)
                for (_, s), (status, credited) in zip(pays, new_state, strict=True)
            ]
        return (order.status, tuple(order.exceptions or [])), tuple(new_state), events

    @cache
    def walk(
        c: int,
        f: int,
        order_state: tuple[str, tuple[str, ...]],
        pay_state: tuple[tuple[str | None, bool], ...],
    ) -> frozenset[tuple[str, ...]]:
        if c == n and f == n:
            return frozenset({()})
        moves = {(c2, f2) for c2 in range(c, n + 1) for f2 in range(f, c + 1)}
        moves |= {(c2, c2) for c2 in range(c, n + 1)}
        moves.discard((c, f))
        found: set[tuple[str, ...]] = set()
        for c2, f2 in moves:
            if any(c <= b < c2 and f < b for b in barriers):
                continue
            state, pays_after, events = run_step(c, f, c2, f2, order_state, pay_state)
            for rest in walk(c2, f2, state, pays_after):
                found.add(events + rest)
        return frozenset(found)

    start = tuple((None, False) for _ in pays)
    return frozenset(("order.created", *rest) for rest in walk(0, 0, ("pending", ()), start))


def check_orders(
    plans: Sequence[PlannedOrder],
    sent: Sequence[SentTransfer],
    times: dict[int, int],
    orders: dict[str, Order],
    payments: Sequence[Payment],
    events: dict[str, list[WebhookEvent]],
    balances: dict[tuple[str, str], int],
) -> list[str]:
    """Every difference between what the database holds and what must be there; [] if none."""
    problems: list[str] = []
    by_order: dict[str, list[SentTransfer]] = {}
    for s in sent:
        by_order.setdefault(s.order_key, []).append(s)
    # Payments: one row per (tx, log position), each transfer we sent exactly once, all final.
    identities = [(p.tx_hash.lower(), p.log_position) for p in payments]
    if len(identities) != len(set(identities)):
        problems.append("duplicate payment identities")
    rows_by_tx: dict[str, list[Payment]] = {}
    for p in payments:
        rows_by_tx.setdefault(p.tx_hash.lower(), []).append(p)
    ours = {s.tx_hash for s in sent}
    for tx in set(rows_by_tx) - ours:
        problems.append(f"payment row for a transfer we did not send: {tx}")
    order_ids = {plan.key: plan.order_id for plan in plans}
    for s in sent:
        rows = rows_by_tx.get(s.tx_hash, [])
        if len(rows) != 1:
            problems.append(f"{s.order_key}: transfer {s.tx_hash} has {len(rows)} payment rows")
            continue
        row = rows[0]
        want_kind = (
            "credit"
            if s.token.lower()
            == next(p for p in plans if p.key == s.order_key).token_address.lower()
            else "wrong_token"
        )
        got = (row.status, row.kind, row.amount, row.order_id, row.block_number, row.credited)
        want = ("final", want_kind, s.units, order_ids[s.order_key], s.block, want_kind == "credit")
        if got != want:
            problems.append(f"{s.order_key}: payment {s.tx_hash} is {got}, expected {want}")
    for plan in plans:
        mine = by_order.get(plan.key, [])
        if plan.after_status and not any(s.after_barrier for s in mine):
            problems.append(f"{plan.key}: never reached {plan.after_status!r} (not paid further)")
        expected = expected_outcome(plan, mine, times)
        order = orders.get(plan.key)
        if order is None:
            problems.append(f"{plan.key}: order missing")
            continue
        got_state = (order.status, tuple(sorted(order.exceptions or [])), order.paid_amount)
        want_state = (expected.status, expected.exceptions, expected.paid)
        if got_state != want_state or order.pending_amount != 0:
            problems.append(
                f"{plan.key}: order is {got_state} pending={order.pending_amount},"
                f" expected {want_state}"
            )
        sent_on_chain = {}
        for s in mine:
            sent_on_chain[s.token] = sent_on_chain.get(s.token, 0) + s.units
        for token, total in sent_on_chain.items():
            on_chain = balances.get((token, plan.to_address))
            if on_chain != total:
                problems.append(f"{plan.key}: balanceOf {token} is {on_chain}, we sent {total}")
        credited = sum(
            row.amount
            for s in mine
            for row in rows_by_tx.get(s.tx_hash, [])
            if row.kind == "credit" and row.status == "final"
        )
        if credited != expected.paid:
            problems.append(f"{plan.key}: credited {credited}, expected {expected.paid}")
        rows = events.get(plan.order_id, [])
        sequence = tuple(e.type for e in rows)
        numbers = [e.sequence for e in rows]
        if numbers != list(range(1, len(rows) + 1)):
            problems.append(f"{plan.key}: event sequence numbers {numbers}")
        if any(e.payload.get("sequence") != e.sequence for e in rows):
            problems.append(f"{plan.key}: payload sequence differs from the row's")
        if sequence.count("order.completed") != (1 if expected.status == "completed" else 0):
            problems.append(f"{plan.key}: events {sequence}")
        elif sequence not in expected.sequences:
            options = sorted(expected.sequences, key=len)[:6]
            problems.append(f"{plan.key}: events {sequence} not among {options}")
    return problems


async def balances_of(
    driver: ChainDriver, plans: Sequence[PlannedOrder], sent: Sequence[SentTransfer]
) -> dict[tuple[str, str], int]:
    wanted = sorted(
        {(s.token, next(p for p in plans if p.key == s.order_key).to_address) for s in sent}
    )
    calls = [
        (
            "eth_call",
            [
                {
                    "to": token,
                    "data": "0x"
                    + tether_token().encode_call("balanceOf", to_checksum_address(holder)).hex(),
                },
                "latest",
            ],
        )
        for token, holder in wanted
    ]
    results = await driver.rpc.batch(calls)
    return {key: int(value, 16) for key, value in zip(wanted, results, strict=True)}


class PaymentRun:
    """Creates planned orders in waves and pays them: each wave's immediate payments in a few
    blocks right after the orders; payments that wait for a status are sent by a follow-up loop
    once the database shows it."""

    def __init__(self, db: GatewayDb, driver: ChainDriver, rng: random.Random) -> None:
        self.db = db
        self.driver = driver
        self.rng = rng
        self.plans: list[PlannedOrder] = []
        self.waiting: list[PlannedOrder] = []
        self.done = asyncio.Event()

    async def wave(self, plans: list[PlannedOrder], gap: float = 0.05) -> None:
        now = await self.driver.chain_time_ms()
        orders = await self.db.create_orders(
            now, [(p.key, p.symbol, p.amount, p.expire_seconds) for p in plans]
        )
        bind_orders(plans, orders)
        self.plans.extend(plans)
        self.waiting.extend(p for p in plans if p.after_status)
        last = max((o for p in plans for o, _ in p.groups), default=-1)
        for offset in range(last + 1):
            batch = [
                (p.key, symbol, p.to_address, units)
                for p in plans
                for o, payments in p.groups
                if o == offset
                for symbol, units in payments
            ]
            self.rng.shuffle(batch)
            await self.driver.send_block(batch)
            await asyncio.sleep(gap)

    async def follow_up(self, stop: asyncio.Event) -> None:
        """Sends the waiting payments of orders whose status the database now shows."""
        while not (stop.is_set() and not self.waiting):
            if self.waiting:
                statuses = await self.db.statuses(p.order_id for p in self.waiting)
                ready = [p for p in self.waiting if statuses.get(p.order_id) == p.after_status]
                if ready:
                    batch = [
                        (p.key, symbol, p.to_address, units)
                        for p in ready
                        for symbol, units in p.after_payments
                    ]
                    await self.driver.send_block(batch, after_barrier=True)
                    self.waiting = [p for p in self.waiting if p not in ready]
            await asyncio.sleep(0.25)

    async def finish_follow_up(self, task: asyncio.Task[None], within: float) -> None:
        """Waits for the follow-up loop; past ``within`` it is cancelled and the orders still
        waiting are left for :func:`check_orders` to report."""
        done, _ = await asyncio.wait({task}, timeout=within)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.waiting = []
        else:
            task.result()

    async def settled(self) -> bool:
        """Whether every order shows the status and paid amount expected (a cheap poll)."""
        if self.waiting:
            return False
        orders = await self.db.orders()
        for plan in self.plans:
            order = orders[plan.key]
            if order.pending_amount:
                return False
            if plan.category in ("unpaid_expiring", "underpaid_expiring", "late"):
                if order.status != "expired":
                    return False
            elif plan.category == "underpaid_open":
                if "underpaid" not in (order.exceptions or []):
                    return False
            elif order.status != "completed":
                return False
            paid = sum(
                s.units
                for s in self.driver.sent
                if s.order_key == plan.key and s.token.lower() == plan.token_address.lower()
            )
            if order.paid_amount != paid:
                return False
        return True


# -- a harness for tests with several watcher processes --------------------------------------------


class FaultHarness:
    """One gateway database, the chain driver, order runs and watcher processes for one test;
    :meth:`close` kills whatever is still running and puts the node back in automine."""

    def __init__(
        self,
        tmp_path: Path,
        database_url: str,
        db: GatewayDb,
        driver: ChainDriver,
        rng: random.Random,
        seed: int,
        upstream_url: str,
        contracts: tuple[str, str],
    ) -> None:
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.db = db
        self.driver = driver
        self.rng = rng
        self.seed = seed
        self.upstream_url = upstream_url
        self.contracts = contracts
        self.run = PaymentRun(db, driver, rng)
        self.processes: list[WatcherProcess] = []
        self._waves = 0

    def chains_file(self, name: str, rpc_urls: Sequence[str] | None = None) -> Path:
        return write_chains_file(
            self.tmp_path / f"{name}.toml",
            rpc_urls or [self.upstream_url],
            *self.contracts,
            self.driver.tokens,
        )

    def env(
        self, chains_file: Path | None = None, lease_ttl_ms: int | None = None
    ) -> dict[str, str]:
        return watcher_env(
            self.database_url,
            chains_file or self.chains_file("chains"),
            self.tmp_path / "data",
            lease_ttl_ms=lease_ttl_ms,
        )

    def start(self, name: str, env: dict[str, str]) -> WatcherProcess:
        process = WatcherProcess(name, env, self.tmp_path).start()
        self.processes.append(process)
        return process

    async def wave(self, count: int, categories: Sequence[tuple[str, int]]) -> list[PlannedOrder]:
        self._waves += 1
        plans = plan_orders(
            self.rng, count, prefix=f"w{self._waves}", max_payments=3, categories=categories
        )
        await self.run.wave(plans)
        return plans

    async def holder(self) -> tuple[str, int] | None:
        lease = await self.db.lease()
        return None if lease is None else (lease.holder, lease.epoch)

    async def wait_holder(self, process: WatcherProcess, within: float = 30) -> float:
        """Waits until ``process`` holds the lease; the time that took (seconds)."""
        started = time.monotonic()

        async def held() -> bool:
            return process.holds(await self.db.lease())

        await wait_for(held, within, f"{process.name} to hold the lease", interval=0.05)
        return time.monotonic() - started

    async def verify(self, within: float = 60) -> dict[str, Any]:
        """Waits until every order settled, then checks everything (see :func:`check_orders`)."""
        try:
            await wait_for(self.run.settled, within, "every order to settle", interval=0.3)
            settled = True
        except AssertionError:
            settled = False  # say what is wrong rather than only that it took too long
        times = await self.driver.resolve_blocks()
        problems = check_orders(
            self.run.plans,
            self.driver.sent,
            times,
            await self.db.orders(),
            await self.db.payments(),
            await self.db.events(),
            await balances_of(self.driver, self.run.plans, self.driver.sent),
        )
        assert not problems, f"seed {self.seed}: {len(problems)} problems:\n" + "\n".join(
            problems[:40]
        )
        assert settled, f"seed {self.seed}: orders did not settle within {within}s"
        return {"orders": len(self.run.plans), "payments": len(self.driver.sent)}

    async def close(self) -> None:
        for process in self.processes:
            if process.alive:
                process.signal(signal.SIGCONT)
            process.kill()
        await self.driver.restore()
        await self.db.close()


async def open_harness(
    tmp_path: Path,
    database_url: str,
    *,
    upstream_url: str,
    rpc: RpcClient,
    contracts: tuple[str, str],
    tokens: dict[str, str],
    senders: Sequence[LocalAccount],
    seed_name: str,
) -> FaultHarness:
    seed = fault_seed(seed_name)
    chains_file = write_chains_file(tmp_path / "chains.toml", [upstream_url], *contracts, tokens)
    db = await GatewayDb.open(database_url, chains_file)
    driver = ChainDriver(rpc, tokens, senders)
    harness = FaultHarness(
        tmp_path, database_url, db, driver, random.Random(seed), seed, upstream_url, contracts
    )
    try:
        await driver.setup(senders[0], ())
    except BaseException:
        await db.close()
        raise
    return harness


QUICK_MIX = (("exact", 3), ("split", 4), ("overpaid", 2), ("underpaid_open", 2), ("wrong_token", 1))


class SplitBrainRpc(RpcClient):
    """An RPC client behind a load balancer over nodes that disagree: calls for which
    ``route(method, params)`` is true (while ``enabled``) are answered by a node on another fork.
    Deterministic, unlike FaultProxy's random ``fork_rate``, so one wrong answer can be aimed."""

    def __init__(
        self, url: str, fork_url: str, route: Callable[[str, Sequence[Any]], bool]
    ) -> None:
        super().__init__([url])
        self.fork = RpcClient([fork_url])
        self.route = route
        self.enabled = True
        self.forked_calls = 0

    async def call(self, method: str, params: Sequence[Any]) -> Any:
        if self.enabled and self.route(method, params):
            self.forked_calls += 1
            return await self.fork.call(method, params)
        return await super().call(method, params)

    async def aclose(self) -> None:
        await self.fork.aclose()
        await super().aclose()
