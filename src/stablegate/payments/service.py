"""Record, finalise and orphan transfers, then settle the orders they belong to.

Called by the watcher inside its one transaction per step; never commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.evm.transfers import TransferLog
from stablegate.chain.registry import Chain
from stablegate.clock import Clock
from stablegate.models import Merchant, Order, Payment
from stablegate.models.merchant import DepositStrategy, LatePaymentPolicy
from stablegate.models.order import OrderStatus
from stablegate.models.payment import PaymentKind, PaymentStatus
from stablegate.orders import queries
from stablegate.orders.context import OrderContext
from stablegate.orders.view import order_view
from stablegate.payments.settlement import MerchantPolicy, settle
from stablegate.webhooks.outbox import add_event

log = structlog.get_logger("stablegate.payments")


@dataclass(frozen=True)
class ObservedTransfer:
    transfer: TransferLog
    log_position: int  # index of the log within its transaction's receipt
    block_time_ms: int
    order_id: str | None


def classify(chain: Chain, transfer: TransferLog, order: Order | None) -> PaymentKind | None:
    """The payment's kind; None for a transfer out of a deposit to anywhere but its payout
    address (not recorded: reconciliation then reports the money as unaccounted for)."""
    token = chain.token_by_address(transfer.token)
    if order is None:
        return PaymentKind.UNATTRIBUTED
    if order.chain_id != chain.id:
        # This chain's watcher still knows the deposit the order had before it was moved.
        return PaymentKind.WRONG_CHAIN
    if is_outflow(transfer, order):
        # A flush, whoever sent it (the sweeper, the merchant's own `stablegate-client flush`):
        # never a payment, only subtracted by reconciliation.
        return (
            PaymentKind.FLUSH
            if transfer.recipient.lower() == order.payout_address.lower()
            else None
        )
    if token is None:
        return PaymentKind.UNSUPPORTED_TOKEN
    if token.address.lower() != order.token_address.lower():
        return PaymentKind.WRONG_TOKEN
    if transfer.amount < token.min_credit or transfer.amount == 0:
        return PaymentKind.BELOW_MIN
    return PaymentKind.CREDIT


def is_outflow(transfer: TransferLog, order: Order) -> bool:
    """Out of the order's deposit contract (a unique_amount order has none: its address is the
    merchant's payout wallet)."""
    return (
        order.deposit_strategy != DepositStrategy.UNIQUE_AMOUNT
        and transfer.sender.lower() == order.to_address.lower()
        and transfer.recipient.lower() != order.to_address.lower()
    )


async def record_transfers(
    session: AsyncSession,
    clock: Clock,
    chain: Chain,
    observed: Iterable[ObservedTransfer],
    *,
    final_height: int,
) -> dict[str, set[str]]:
    """Upsert transfers by identity; a re-included transfer revives its row. Returns, per
    order with a newly seen (or revived) payment, the kinds of those payments."""
    touched: dict[str, set[str]] = {}
    now = clock.now_ms()
    for item in observed:
        t = item.transfer
        status = PaymentStatus.FINAL if t.block_number <= final_height else PaymentStatus.SEEN
        row = await session.scalar(
            select(Payment).where(
                Payment.chain_id == chain.id,
                Payment.tx_hash == t.tx_hash,
                Payment.log_position == item.log_position,
            )
        )
        order = await session.get(Order, item.order_id) if item.order_id else None
        kind = classify(chain, t, order)
        if kind is None:
            continue
        if row is None:
            row = Payment(
                chain_id=chain.id,
                tx_hash=t.tx_hash,
                log_position=item.log_position,
                log_index=t.log_index,
                block_number=t.block_number,
                block_hash=t.block_hash,
                block_time_ms=item.block_time_ms,
                token_address=t.token,
                from_address=t.sender,
                to_address=t.recipient,
                amount=t.amount,
                order_id=item.order_id,
                status=status,
                kind=kind,
                late=order is not None and item.block_time_ms > order.expire_time_ms,
                credited=False,
                created_at_ms=now,
                updated_at_ms=now,
            )
            session.add(row)
            log.info(
                "payment_recorded",
                chain_id=chain.id,
                tx_hash=t.tx_hash,
                order_id=item.order_id,
                kind=row.kind,
                status=status,
            )
        elif row.status == PaymentStatus.ORPHANED or row.block_hash != t.block_hash:
            # Re-included after a reorg: same identity, new block. Amount and parties may
            # only differ if the re-executed transaction did something else; record as is.
            row.block_number = t.block_number
            row.block_hash = t.block_hash
            row.block_time_ms = item.block_time_ms
            row.log_index = t.log_index
            row.amount = t.amount
            row.status = status
            row.late = order is not None and item.block_time_ms > order.expire_time_ms
            row.kind = kind
            row.updated_at_ms = now
            log.info("payment_revived", chain_id=chain.id, tx_hash=t.tx_hash)
        else:
            continue  # already known in this very block: nothing changes
        if item.order_id is not None and kind != PaymentKind.FLUSH:
            touched.setdefault(item.order_id, set()).add(kind)
    await session.flush()
    return touched


async def orphan_above(
    session: AsyncSession, clock: Clock, chain_id: int, ancestor: int
) -> set[str]:
    """Payments in blocks above the common ancestor left the canonical chain."""
    rows = (
        await session.scalars(
            select(Payment).where(
                Payment.chain_id == chain_id,
                Payment.block_number > ancestor,
                Payment.status != PaymentStatus.ORPHANED,
            )
        )
    ).all()
    for row in rows:
        row.status = PaymentStatus.ORPHANED
        row.updated_at_ms = clock.now_ms()
        log.warning(
            "payment_orphaned", chain_id=chain_id, tx_hash=row.tx_hash, order_id=row.order_id
        )
    await session.flush()
    return {row.order_id for row in rows if row.order_id}


async def finalize_up_to(
    session: AsyncSession, clock: Clock, chain_id: int, height: int, canonical: dict[int, str]
) -> set[str]:
    """Seen payments at or below ``height`` whose block hash is canonical become final."""
    rows = (
        await session.scalars(
            select(Payment).where(
                Payment.chain_id == chain_id,
                Payment.status == PaymentStatus.SEEN,
                Payment.block_number <= height,
            )
        )
    ).all()
    touched: set[str] = set()
    for row in rows:
        expected = canonical.get(row.block_number)
        if expected is None or expected != row.block_hash:
            # Not provably canonical: leave it seen; the reorg walk will orphan or confirm it.
            continue
        row.status = PaymentStatus.FINAL
        row.updated_at_ms = clock.now_ms()
        if row.order_id:
            touched.add(row.order_id)
    await session.flush()
    return touched


async def settle_orders(
    session: AsyncSession,
    clock: Clock,
    ctx: OrderContext,
    order_ids: Iterable[str],
    *,
    final_time_ms: int,
    newly_seen: Mapping[str, AbstractSet[str]],
) -> int:
    """Lock each order, apply its payments through the state table, write its events.
    ``newly_seen``: order id -> kinds of its newly recorded payments (record_transfers)."""
    changed = 0
    for order_id in sorted(set(order_ids)):
        order = await queries.locked_order(session, order_id)
        if order is None:
            continue
        merchant = await session.get(Merchant, order.merchant_id)
        policy = MerchantPolicy(
            late_payment=merchant.late_payment if merchant else LatePaymentPolicy.RECORD,
            underpay_tolerance_ppm=merchant.underpay_tolerance_ppm if merchant else 0,
        )
        payments = list(
            (await session.scalars(select(Payment).where(Payment.order_id == order_id))).all()
        )
        _uncredit_moved(order, payments)
        result = settle(
            order,
            payments,
            policy=policy,
            final_time_ms=final_time_ms,
            newly_seen=PaymentKind.CREDIT in newly_seen.get(order_id, ()),
            now_ms=clock.now_ms(),
            wrong_token_seen=PaymentKind.WRONG_TOKEN in newly_seen.get(order_id, ()),
        )
        for alert in result.alerts:
            log.error("operator_alert", alert=alert, order_id=order_id)
        if result.events:
            order.updated_at_ms = clock.now_ms()
            view = order_view(order, ctx.registry, ctx.public_url)
            for event_type in result.events:
                await add_event(session, clock, order, event_type, view)
            changed += 1
            log.info("order_settled", order_id=order_id, status=order.status, events=result.events)
    await session.flush()
    return changed


def _uncredit_moved(order: Order, payments: list[Payment]) -> None:
    """A credit classified against the order as it was before the customer's pick moved it
    (recorded in this step from an unlocked read, while the pick committed) is not a payment of
    the order as it is now: kept apart like any other chain's or token's transfer."""
    for payment in payments:
        if payment.kind != PaymentKind.CREDIT:
            continue
        if payment.chain_id != order.chain_id:
            payment.kind = PaymentKind.WRONG_CHAIN
        elif payment.token_address.lower() != order.token_address.lower():
            payment.kind = PaymentKind.WRONG_TOKEN
        else:
            continue
        log.warning("payment_uncredited_after_move", order_id=order.id, tx_hash=payment.tx_hash)


async def expiry_candidates(session: AsyncSession, chain_id: int, final_time_ms: int) -> list[str]:
    """Pending orders whose expireTime the chain's final time has passed."""
    rows = await session.scalars(
        select(Order.id).where(
            Order.chain_id == chain_id,
            Order.status == OrderStatus.PENDING,
            Order.expire_time_ms < final_time_ms,
        )
    )
    return list(rows.all())


async def update_confirmations(session: AsyncSession, chain_id: int, head: int) -> None:
    """Confirmations of orders still waiting: head minus the block of their newest payment."""
    rows = (
        await session.execute(
            select(Payment.order_id, Payment.block_number).where(
                Payment.chain_id == chain_id,
                Payment.status == PaymentStatus.SEEN,
                Payment.kind == PaymentKind.CREDIT,
            )
        )
    ).all()
    newest: dict[str, int] = {}
    for order_id, block in rows:
        if order_id:
            newest[order_id] = max(newest.get(order_id, 0), block)
    for order_id, block in newest.items():
        await session.execute(
            update(Order).where(Order.id == order_id).values(confirmations=max(head - block + 1, 0))
        )
