"""Reconciliation (docs/DESIGN.md §6): what deposit contracts hold on chain, at the
final block, against what the chain data the watcher recorded says they hold: final inflows
minus final flushes to the order's payout address, whoever sent them (the sweeper, or the
merchant collecting with `stablegate-client flush`).

A difference is reported, never "fixed": it means money is unaccounted for: an inflow the
watcher did not see (a token outside the registry's scan, native coin, an order older than
``watch_days``) or money that left a deposit for anywhere but its payout address. Orders of the
``unique_amount`` strategy have no deposit contract (their address is the merchant's own
wallet) and are not reconciled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.evm.contracts import standard_token
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.registry import Chain
from stablegate.models import Order, Payment, SweepItem
from stablegate.models.merchant import DepositStrategy
from stablegate.models.payment import PaymentKind, PaymentStatus

log = structlog.get_logger("stablegate.reconcile")

NATIVE = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class Mismatch:
    deposit_address: str
    token: str
    on_chain: int
    expected: int


@dataclass
class ReconcileReport:
    block: int
    checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)


async def expected_balances(
    session: AsyncSession, chain: Chain, since_ms: int
) -> dict[tuple[str, str], int]:
    """(deposit, token) -> final inflows minus final flushes, for deposits of watched orders.

    Every registry token is checked at every watched deposit (an unseen inflow shows up as a
    difference), plus any other token a recorded transfer brought there.
    """
    deposits = {
        address.lower()
        for address in (
            await session.scalars(
                select(Order.to_address).where(
                    Order.chain_id == chain.id,
                    Order.create_time_ms >= since_ms,
                    Order.deposit_strategy != DepositStrategy.UNIQUE_AMOUNT,
                )
            )
        ).all()
    }
    expected: dict[tuple[str, str], int] = {
        (deposit, token.address.lower()): 0 for deposit in deposits for token in chain.tokens
    }
    transfers = await session.execute(
        select(
            Payment.from_address,
            Payment.to_address,
            Payment.token_address,
            Payment.amount,
            Payment.kind,
        ).where(Payment.chain_id == chain.id, Payment.status == PaymentStatus.FINAL)
    )
    flushed: dict[tuple[str, str], int] = {}
    for sender, recipient, token, amount, kind in transfers.all():
        if kind == PaymentKind.FLUSH:
            key = (sender.lower(), token.lower())
            flushed[key] = flushed.get(key, 0) + amount
        elif recipient.lower() in deposits:
            key = (recipient.lower(), token.lower())
            expected[key] = expected.get(key, 0) + amount
    # Flushes the sweeper made before the watcher recorded flush rows (an upgraded gateway)
    # are known only from its sweep items. Per deposit and token the larger of the two counts:
    # the sweeper's later flushes appear in both.
    swept = await session.execute(
        select(SweepItem.deposit_address, SweepItem.token_address, SweepItem.swept_amount).where(
            SweepItem.chain_id == chain.id, SweepItem.swept_amount > 0
        )
    )
    for deposit, token, amount in swept.all():
        key = (deposit.lower(), token.lower())
        flushed[key] = max(flushed.get(key, 0), amount)
    for key, amount in flushed.items():
        if key[0] in deposits:
            expected[key] = expected.get(key, 0) - amount
    return expected


async def balances_at(
    rpc: RpcClient, pairs: list[tuple[str, str]], block: int
) -> dict[tuple[str, str], int]:
    """Token balances at one block, many per JSON-RPC batch."""
    erc20 = standard_token()
    calls = [
        (
            "eth_call",
            [{"to": token, "data": "0x" + erc20.encode_call("balanceOf", owner).hex()}, hex(block)],
        )
        for owner, token in pairs
    ]
    results = await rpc.batch(calls)
    return {
        pair: int(str(raw), 16) if raw and raw != "0x" else 0
        for pair, raw in zip(pairs, results, strict=True)
    }


async def reconcile(
    session: AsyncSession, rpc: RpcClient, chain: Chain, *, block: int, since_ms: int
) -> ReconcileReport:
    expected = await expected_balances(session, chain, since_ms)
    report = ReconcileReport(block=block)
    pairs = sorted(expected)
    for start in range(0, len(pairs), 500):
        chunk = pairs[start : start + 500]
        actual = await balances_at(rpc, chunk, block)
        for pair in chunk:
            report.checked += 1
            if actual[pair] != expected[pair]:
                report.mismatches.append(Mismatch(pair[0], pair[1], actual[pair], expected[pair]))
    for m in report.mismatches:
        log.warning(
            "reconcile_mismatch",
            chain_id=chain.id,
            deposit=m.deposit_address,
            token=m.token,
            on_chain=str(m.on_chain),
            expected=str(m.expected),
        )
    log.info(
        "reconciled",
        chain_id=chain.id,
        block=block,
        checked=report.checked,
        mismatches=len(report.mismatches),
    )
    return report
