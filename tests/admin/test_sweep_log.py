"""The console's sweep figures: the latest sweep transactions with their deposit counts, and per
chain the deposits waiting and those the sweeper gave up on."""

from __future__ import annotations

from tests.sweeper.conftest import SweepEnv, env, sweep_env

from stablegate.admin.sweep_log import recent_sweeps, sweep_backlog
from stablegate.api.context import GatewayContext
from stablegate.db.engine import read_scope, session_scope
from stablegate.models import SweepItem, SweepTx
from stablegate.models.sweep import SweepItemStatus, SweepTxStatus

__all__ = ["env", "sweep_env"]  # fixtures used below

ADDRESS = "0x" + "ab" * 20


def item(chain_id: int, status: SweepItemStatus, n: int, tx_id: int | None = None) -> SweepItem:
    return SweepItem(
        chain_id=chain_id,
        deposit_address=f"0x{n:040x}",
        payout_address=ADDRESS,
        deposit_salt="0x" + f"{n:064x}",
        token_address=ADDRESS,
        status=status,
        sweep_tx_id=tx_id,
        created_at_ms=n,
        updated_at_ms=n,
    )


def tx(chain_id: int, nonce: int, status: SweepTxStatus, fee: int | None) -> SweepTx:
    return SweepTx(
        chain_id=chain_id,
        sender=ADDRESS,
        nonce=nonce,
        tx_hash="0x" + f"{nonce:064x}",
        raw_tx="0x00",
        max_fee_per_gas=10**18 + 1,  # beyond 64 bits' reach of a float's precision
        max_priority_fee_per_gas=1,
        gas_limit=21_000,
        status=status,
        fee_paid=fee,
        created_at_ms=nonce,
        updated_at_ms=nonce,
    )


async def test_recent_sweeps_newest_first_with_their_deposits_and_the_backlog(
    gateway: GatewayContext,
) -> None:
    async with session_scope(gateway.sessions) as session:
        mined = tx(56, 1, SweepTxStatus.MINED, 123_456_789_012_345_678_901)
        sent = tx(56, 2, SweepTxStatus.BROADCAST, None)
        session.add_all([mined, sent])
        await session.flush()
        session.add_all(
            [
                item(56, SweepItemStatus.DONE, 1, mined.id),
                item(56, SweepItemStatus.DONE, 2, mined.id),
                item(56, SweepItemStatus.SENT, 3, sent.id),
                item(56, SweepItemStatus.PENDING, 4),
                item(56, SweepItemStatus.RETRY, 5),
                item(56, SweepItemStatus.STUCK, 6),
                item(137, SweepItemStatus.PENDING, 7),
            ]
        )
    async with read_scope(gateway.sessions) as session:
        recent = await recent_sweeps(session)
        backlog = await sweep_backlog(session)
    assert [(t.nonce, count) for t, count in recent] == [(2, 1), (1, 2)]
    assert recent[1][0].fee_paid == 123_456_789_012_345_678_901
    assert backlog == {56: {"waiting": 3, "stuck": 1}, 137: {"waiting": 1, "stuck": 0}}
    async with read_scope(gateway.sessions) as session:
        latest = await recent_sweeps(session, limit=1)
    assert [(t.nonce, count) for t, count in latest] == [(2, 1)]


async def test_credited_money_not_yet_swept_counts_as_waiting_until_the_sweep(
    sweep_env: SweepEnv,
) -> None:
    [order] = await sweep_env.final_orders([("USDT", 5_000_000)])
    chain_id = sweep_env.watch.chain.id
    async with read_scope(sweep_env.watch.sessions) as session:
        before = await sweep_backlog(session, [chain_id])
    assert before == {chain_id: {"waiting": 1, "stuck": 0}}
    await sweep_env.sweep(sweep_env.sweeper())
    async with read_scope(sweep_env.watch.sessions) as session:
        after = await sweep_backlog(session, [chain_id])
        [(sent, count)] = await recent_sweeps(session)
    assert after == {}
    assert (sent.chain_id, sent.status, count) == (chain_id, SweepTxStatus.MINED, 1)
    assert order.to_address is not None
