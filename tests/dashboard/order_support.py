"""The Orders pages' test parts: a signed-in merchant that can take orders, orders made by the
real orders service (or inserted in bulk for the large exports), and payments recorded, finalised
and settled by the real payments service, as the watcher calls it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tests.chain_files import UNREACHABLE_RPC, write_chains_file
from tests.dashboard.dashboard_support import Browser, MailSink, signed_up_and_in
from tests.support import PAYOUT, TEST_USDT, TEST_USDT18

from stablegate.chain.evm.transfers import TransferLog
from stablegate.chain.registry import ChainRegistry
from stablegate.clock import Clock
from stablegate.db.engine import session_scope
from stablegate.models import ChainState, DashboardUser, Order, PayoutAddress
from stablegate.models.merchant import DepositStrategy
from stablegate.models.order import OrderStatus
from stablegate.orders.context import OrderContext
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.service import create_order
from stablegate.payments.service import (
    ObservedTransfer,
    finalize_up_to,
    record_transfers,
    settle_orders,
)

BSC = 56  # a packaged chain with a block explorer (bscscan.com); the dev chain has none
BSC_USDT = "0x55d398326f99059fF775485246999027B3197955"
PAYER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def write_order_chains(path: Path) -> Path:
    """The dev chain (no explorer) with its test tokens, and BNB Smart Chain made reachable
    (an RPC URL nothing answers: orders can be made, nothing is asked of it)."""
    tokens = [("USDT", TEST_USDT, 6), ("USDT18", TEST_USDT18, 18)]
    write_chains_file(path, tokens=tokens)
    with path.open("a") as file:
        file.write(f'\n[chains.{BSC}]\nrpc_urls = ["{UNREACHABLE_RPC}"]\n')
    return path


async def merchant_of(sessions: async_sessionmaker[AsyncSession], email: str) -> str:
    async with session_scope(sessions) as session:
        merchant_id = await session.scalar(
            select(DashboardUser.merchant_id).where(DashboardUser.email == email)
        )
    assert merchant_id is not None
    return merchant_id


async def pay_out_to(
    sessions: async_sessionmaker[AsyncSession], merchant_id: str, now_ms: int
) -> None:
    """The operator's step a dashboard sign-up lacks: a payout address on both chains."""
    async with session_scope(sessions) as session:
        for chain_id in (31337, BSC):
            session.add(
                PayoutAddress(
                    merchant_id=merchant_id, chain_id=chain_id, address=PAYOUT, updated_at_ms=now_ms
                )
            )


async def shop_signed_in(
    browser: Browser,
    mail: MailSink,
    sessions: async_sessionmaker[AsyncSession],
    now_ms: int,
    name: str = "Shop",
    email: str = "owner@shop.example",
) -> str:
    """Sign up, log in, get a payout address: the merchant's id."""
    await signed_up_and_in(browser, mail, name, email)
    merchant_id = await merchant_of(sessions, email)
    await pay_out_to(sessions, merchant_id, now_ms)
    return merchant_id


async def new_order(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    ctx: OrderContext,
    merchant_id: str,
    **fields: Any,
) -> Order:
    """An order made by the orders service (fields in the API's spelling)."""
    body = {"chainId": 31337, "symbol": "USDT", "amount": "20", **fields}
    async with session_scope(sessions) as session:
        order, created = await create_order(
            session,
            clock,
            ctx,
            merchant_id=merchant_id,
            req=CreateOrderRequest.model_validate(body),
        )
    assert created
    return order


async def bulk_orders(
    sessions: async_sessionmaker[AsyncSession],
    merchant_id: str,
    count: int,
    *,
    start_ms: int,
    tag: str = "bulk",
    spacing_ms: int = 1,
    order_no: str = "{tag}-{i}",
) -> list[str]:
    """``count`` pending orders inserted as rows (the service would take minutes for
    thousands), ``spacing_ms`` apart from ``start_ms``; their ids, oldest first."""
    rows = [
        {
            "id": f"{tag}{i:06d}{merchant_id[-8:]}",
            "merchant_id": merchant_id,
            "order_no": order_no.format(tag=tag, i=i),
            "request_fingerprint": "0" * 64,
            "chain_id": 31337,
            "symbol": "USDT",
            "token_address": TEST_USDT,
            "decimals": 6,
            "amount": 1_000_000 + i,
            "paid_amount": 0,
            "pending_amount": 0,
            "status": OrderStatus.PENDING,
            "exceptions": [],
            "deposit_strategy": DepositStrategy.FORWARDER,
            "to_address": f"0x{i:040x}",
            "payout_address": PAYOUT,
            "confirmations": 0,
            "event_sequence": 0,
            "expire_time_ms": start_ms + i * spacing_ms + 3_600_000,
            "create_time_ms": start_ms + i * spacing_ms,
            "updated_at_ms": start_ms + i * spacing_ms,
        }
        for i in range(count)
    ]
    async with session_scope(sessions) as session:
        for first in range(0, count, 500):
            await session.execute(insert(Order), rows[first : first + 500])
    return [row["id"] for row in rows]


class PaymentChain:
    """Transfers to orders through record_transfers, finalize_up_to and settle_orders, on
    made-up blocks of one chain (as tests/cashier/test_public_api.py's ``Chain``)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        registry: ChainRegistry,
        ctx: OrderContext,
        clock: Clock,
        chain_id: int = 31337,
    ) -> None:
        chain = registry.get(chain_id)
        assert chain is not None
        self.sessions, self.chain, self.ctx, self.clock = sessions, chain, ctx, clock
        self.block = 100

    async def pay(
        self, order_id: str, amount: int, *, token: str = TEST_USDT, final: bool = True
    ) -> str:
        self.block += 1
        tx_hash = f"0x{self.block:064x}"
        block_hash = f"0x{self.block + 10**6:064x}"
        at = self.clock.now_ms()
        async with session_scope(self.sessions) as session:
            order = await session.get(Order, order_id)
            assert order is not None
            transfer = TransferLog(
                token=token,
                sender=PAYER,
                recipient=order.to_address,
                amount=amount,
                tx_hash=tx_hash,
                log_index=0,
                block_number=self.block,
                block_hash=block_hash,
            )
            seen = await record_transfers(
                session,
                self.clock,
                self.chain,
                [ObservedTransfer(transfer, 0, at, order_id)],
                final_height=self.block - 1,
            )
            touched = {order_id}
            if final:
                touched |= await finalize_up_to(
                    session, self.clock, self.chain.id, self.block, {self.block: block_hash}
                )
            await settle_orders(
                session, self.clock, self.ctx, touched, final_time_ms=at, newly_seen=seen
            )
            head = await session.get(ChainState, self.chain.id)
            if head is None:
                head = ChainState(chain_id=self.chain.id, cursor_number=0, cursor_hash="0x0")
                session.add(head)
            head.head_number = self.block
        return tx_hash
