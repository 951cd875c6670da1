"""The sweep transaction in flight: broadcast it (again), bump its fee, settle it once mined.

A stored transaction is resolved only when its nonce is consumed: by one of its hashes (any fee
level may be the one that mines), or by a transaction we did not sign. Until then the sweeper
signs nothing new, so a nonce is never used twice for different work.
"""

from __future__ import annotations

import structlog
from eth_account.signers.local import LocalAccount
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.rpc_errors import RpcError
from stablegate.chain.evm.wallet import TransactionReceipt, to_int
from stablegate.chain.registry import Chain
from stablegate.clock import Clock
from stablegate.leases import LeaseGrant, fenced
from stablegate.models import SweepTx
from stablegate.models.sweep import SweepTxStatus
from stablegate.money import format_amount
from stablegate.sweeper import transactions
from stablegate.sweeper.batch import (
    NATIVE,
    Verdict,
    calldata_of,
    fee_paid,
    item_outcomes,
    sign_batch,
)
from stablegate.sweeper.fees import Fees, bumped_fees, market_fees, worst_case_cost
from stablegate.sweeper.options import SweepOptions
from stablegate.sweeper.reports import SweepOutcome, SweepReport
from stablegate.sweeper.state import TxTrigger

log = structlog.get_logger("stablegate.sweeper")

# sendRawTransaction answers meaning the node has (or had) this transaction already.
_KNOWN_TX_HINTS = ("already known", "already imported", "known transaction", "nonce too low")


class InFlight:
    def __init__(
        self,
        chain: Chain,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        rpc: RpcClient,
        relayer: LocalAccount,
        options: SweepOptions,
        factory: str,
    ) -> None:
        self.chain = chain
        self.sessions = sessions
        self.clock = clock
        self.rpc = rpc
        self.relayer = relayer
        self.sender = str(relayer.address)
        self.options = options
        self.factory = factory
        # In memory on purpose: after a restart the checks start over, which only waits longer.
        self._foreign_nonce_seen: dict[int, int] = {}

    async def follow(self, grant: LeaseGrant, tx: SweepTx) -> SweepReport:
        """IDLE once the transaction is resolved (``settled`` says how), else WAITING/BUMPED."""
        hashes = [*transactions.replaced_hashes(tx), tx.tx_hash]
        # Nonce first: if it was consumed before the receipts are read, the receipt is there.
        used = to_int(await self.rpc.call("eth_getTransactionCount", [tx.sender, "latest"]))
        receipts = await self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        mined: TransactionReceipt | None = next((receipt for receipt in receipts if receipt), None)
        if mined is not None:
            return await self._settle(grant, tx, mined)
        if used > tx.nonce:
            return await self._nonce_used_elsewhere(grant, tx)
        # Only the key that signed it can replace it (the relayer key may have been rotated).
        due = self.clock.now_ms() - tx.updated_at_ms >= self.options.bump_after_ms
        if due and tx.sender == self.sender:
            bumped = await self._bump(grant, tx)
            if bumped is not None:
                await self.broadcast(grant, bumped)
                return SweepReport(SweepOutcome.BUMPED, tx_hash=bumped.tx_hash)
        await self.broadcast(grant, tx)
        return SweepReport(SweepOutcome.WAITING, tx_hash=tx.tx_hash)

    async def broadcast(self, grant: LeaseGrant, tx: SweepTx) -> None:
        """Send the stored raw transaction; sending it again is harmless."""
        try:
            await self.rpc.call("eth_sendRawTransaction", [tx.raw_tx])
        except RpcError as exc:
            if not any(hint in exc.message.lower() for hint in _KNOWN_TX_HINTS):
                log.warning(
                    "sweep_broadcast_failed",
                    chain_id=self.chain.id,
                    tx_hash=tx.tx_hash,
                    error=str(exc),
                )
                return
        if tx.status == SweepTxStatus.SIGNED:
            async with fenced(self.sessions, grant) as session:
                await transactions.mark_broadcast(session, tx.id, tx.tx_hash)

    async def _nonce_used_elsewhere(self, grant: LeaseGrant, tx: SweepTx) -> SweepReport:
        # A lagging node may show the nonce used before it serves the receipt: ask again
        # a few times before concluding that a transaction we did not sign took it.
        seen = self._foreign_nonce_seen.get(tx.id, 0) + 1
        self._foreign_nonce_seen[tx.id] = seen
        if seen < self.options.foreign_nonce_checks:
            return SweepReport(
                SweepOutcome.WAITING, tx_hash=tx.tx_hash, detail="nonce used, no receipt"
            )
        log.error(
            "operator_alert",
            alert="relayer nonce used by a transaction the sweeper did not sign",
            chain_id=self.chain.id,
            nonce=tx.nonce,
            tx_hash=tx.tx_hash,
        )
        async with fenced(self.sessions, grant) as session:
            await transactions.release_items(
                session,
                self.clock,
                tx.id,
                TxTrigger.NONCE_TAKEN,
                "nonce used by another transaction",
            )
        self._foreign_nonce_seen.pop(tx.id, None)
        return SweepReport(SweepOutcome.IDLE, detail="nonce used elsewhere")

    async def _settle(
        self, grant: LeaseGrant, tx: SweepTx, receipt: TransactionReceipt
    ) -> SweepReport:
        succeeded = to_int(receipt["status"]) == 1
        outcomes = item_outcomes(receipt, self.factory) if succeeded else []
        fee = fee_paid(receipt)
        async with fenced(self.sessions, grant) as session:
            results = await transactions.settle_mined(
                session,
                self.clock,
                self.options,
                tx.id,
                mined_hash=receipt["transactionHash"],
                succeeded=succeeded,
                block_number=to_int(receipt["blockNumber"]),
                gas_used=to_int(receipt["gasUsed"]),
                fee=fee,
                outcomes=outcomes,
            )
        self._foreign_nonce_seen.pop(tx.id, None)
        swept: dict[str, int] = {}
        for result in results:
            if result.amount:
                swept[result.token_address] = swept.get(result.token_address, 0) + result.amount
        log.info(
            "sweep_batch",
            chain_id=self.chain.id,
            tx_hash=receipt["transactionHash"],
            nonce=tx.nonce,
            status=SweepTxStatus.MINED if succeeded else "reverted",
            items=len(results),
            done=sum(result.verdict is Verdict.DONE for result in results),
            retry=sum(result.verdict is Verdict.RETRY for result in results),
            stuck=sum(result.verdict is Verdict.STUCK for result in results),
            swept={
                self._symbol(token): self._amount(token, units) for token, units in swept.items()
            },
            gas_used=to_int(receipt["gasUsed"]),
            fee_paid=format_amount(fee, 18),
        )
        return SweepReport(
            SweepOutcome.IDLE,
            tx_hash=receipt["transactionHash"],
            items=len(results),
            settled=results,
        )

    async def _bump(self, grant: LeaseGrant, tx: SweepTx) -> SweepTx | None:
        """Re-sign the same nonce and calldata with higher fees, within the cap and budget."""
        old = Fees(tx.max_fee_per_gas, tx.max_priority_fee_per_gas)
        fees = bumped_fees(old, await market_fees(self.rpc), self.options.max_fee_per_gas)
        if fees is None:
            log.warning("sweep_fee_at_cap", chain_id=self.chain.id, tx_hash=tx.tx_hash)
            return None
        extra = worst_case_cost(tx.gas_limit, fees) - worst_case_cost(tx.gas_limit, old)
        if not await transactions.affordable(
            self.sessions, self.clock, self.options, self.chain.id, self.sender, extra
        ):
            return None
        signed = sign_batch(
            self.relayer,
            self.chain.id,
            self.factory,
            tx.nonce,
            tx.gas_limit,
            fees,
            calldata_of(tx.raw_tx),
        )
        async with fenced(self.sessions, grant) as session:
            bumped = await transactions.record_bump(session, self.clock, tx.id, signed)
        log.info(
            "sweep_fee_bumped",
            chain_id=self.chain.id,
            nonce=tx.nonce,
            tx_hash=bumped.tx_hash,
            replaces=transactions.replaced_hashes(bumped)[-1],
            max_fee_per_gas=fees.max_fee_per_gas,
            priority_fee=fees.max_priority_fee_per_gas,
        )
        return bumped

    def _symbol(self, token_address: str) -> str:
        if token_address == NATIVE:
            return "native"
        token = self.chain.token_by_address(token_address)
        return token.symbol if token else token_address

    def _amount(self, token_address: str, amount: int) -> str:
        token = self.chain.token_by_address(token_address)
        return format_amount(amount, token.decimals if token else 18)
