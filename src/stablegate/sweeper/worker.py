"""One chain's sweeper: a loop over durable state, one active process per chain.

Each step, under the lease ``sweeper:<chain id>``:
1. follow the transaction in flight, if any (``inflight.py``): settle it once one of its hashes
   mined, else re-broadcast it and, after ``bump_after_ms``, re-sign the same nonce with higher
   fees; nothing new is signed while it is unresolved;
2. find deposits holding final credited funds above the minimum (balances read on chain);
3. sign one ``deployAndFlush`` batch, store it (nonce, raw transaction, fees), THEN broadcast.

No database transaction waits on the network, and every write checks the lease epoch first, so a
paused old sweeper can store nothing. A sweeper killed at any point resumes from the stored
transaction: a flush is never lost or repeated.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from eth_account.signers.local import LocalAccount
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.chain.evm import create2
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.rpc_errors import RpcError, RpcUnavailable
from stablegate.chain.evm.wallet import chain_id, to_int
from stablegate.chain.registry import Chain
from stablegate.clock import Clock
from stablegate.db.engine import session_scope
from stablegate.leases import ChainLease, LeaseGrant, StepHalt, fenced
from stablegate.money import format_amount
from stablegate.sweeper import service, transactions
from stablegate.sweeper.batch import (
    FlushItem,
    Verdict,
    encode_batch,
    out_of_gas_index,
    sign_batch,
    verified_items,
)
from stablegate.sweeper.discovery import worth_sweeping
from stablegate.sweeper.fees import initial_fees, market_fees, worst_case_cost
from stablegate.sweeper.inflight import InFlight
from stablegate.sweeper.options import SweepOptions, default_options
from stablegate.sweeper.reports import SweepOutcome, SweepReport
from stablegate.watchdog import StepStalled, Watchdog

log = structlog.get_logger("stablegate.sweeper")

_MOVING = (SweepOutcome.SENT, SweepOutcome.WAITING, SweepOutcome.BUMPED)


class ChainSweeper:
    def __init__(
        self,
        chain: Chain,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        rpc: RpcClient,
        relayer: LocalAccount,
        *,
        options: SweepOptions | None = None,
        holder: str | None = None,
        step_timeout: float = 120.0,
    ) -> None:
        self.chain = chain
        self.sessions = sessions
        self.clock = clock
        self.rpc = rpc
        self.relayer = relayer
        self.sender = str(relayer.address)
        self.options = options or default_options(chain)
        self.lease = ChainLease(
            sessions,
            clock,
            worker="sweeper",
            chain_id=chain.id,
            ttl_ms=self.options.lease_ttl_ms,
            holder=holder,
        )
        self.factory, self.implementation = create2.deposit_contracts(
            chain.factory, chain.implementation
        )
        self.in_flight = InFlight(chain, sessions, clock, rpc, relayer, self.options, self.factory)
        self.step_timeout = step_timeout  # a step taking longer is abandoned (watchdog)
        self._chain_checked = False
        self._last_discovery_ms: int | None = None

    # -- the loop ---------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event) -> None:
        log.info("sweeper_started", chain_id=self.chain.id, relayer=self.sender)
        # Abandoning a step is as safe as a SIGKILL, which the sweeper is built to survive.
        watchdog = Watchdog("sweeper", self.step_timeout, stop=stop, chain_id=self.chain.id)
        while not stop.is_set():
            try:
                report = await watchdog.run(self.step)
            except asyncio.CancelledError:
                if stop.is_set():
                    break  # stopping: an unfinished step resumes from the stored state
                raise
            except StepStalled as exc:
                report = SweepReport(SweepOutcome.RETRY, detail=str(exc))
            except Exception as exc:  # one bad step must never kill the loop
                log.exception("sweeper_step_failed", chain_id=self.chain.id, error=str(exc))
                report = SweepReport(SweepOutcome.RETRY, detail=str(exc))
            delay = self.options.poll_interval
            if report.outcome in _MOVING:
                delay = min(delay, max(self.chain.block_time / 2, 0.2))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
        await self.lease.release()
        log.info("sweeper_stopped", chain_id=self.chain.id)

    async def run_until_idle(self, max_steps: int = 1000) -> list[SweepReport]:
        """``stablegate sweep --once``: send what is due and follow it until mined."""
        reports: list[SweepReport] = []
        retries = 0
        for _ in range(max_steps):
            report = await self.step()
            reports.append(report)
            if report.outcome in _MOVING:
                await asyncio.sleep(max(self.chain.block_time / 4, 0.05))
                continue
            if report.outcome is SweepOutcome.RETRY and retries < 3:
                retries += 1
                await asyncio.sleep(1.0)
                continue
            if report.settled and report.outcome is SweepOutcome.IDLE:
                continue  # a batch just settled: look for more before stopping
            break
        await self.lease.release()
        return reports

    async def step(self) -> SweepReport:
        """One step under the lease ``sweeper:<chain id>`` (standby while another holds it)."""
        return await self.lease.run_step(self._step, _halted)

    async def _step(self, grant: LeaseGrant) -> SweepReport:
        if not self._chain_checked:
            # Signing for the wrong chain id would make every stored transaction invalid.
            node_chain = await chain_id(self.rpc)
            if node_chain != self.chain.id:
                raise RuntimeError(f"RPC serves chain {node_chain}, expected {self.chain.id}")
            self._chain_checked = True
        settled: list[service.ItemResult] = []
        async with session_scope(self.sessions) as session:
            in_flight = await transactions.unresolved_txs(session, self.chain.id)
        for tx in in_flight:
            report = await self.in_flight.follow(grant, tx)
            if report.outcome is not SweepOutcome.IDLE:
                return report  # never sign anew while a nonce of ours is unresolved
            settled.extend(report.settled)
        await self.discover(grant)
        report = await self.send_batch(grant)
        report.settled = settled + report.settled
        return report

    # -- finding work -----------------------------------------------------------------------

    async def discover(self, grant: LeaseGrant) -> int:
        """Open items for deposits holding final credited funds above the minimum."""
        now = self.clock.now_ms()
        last = self._last_discovery_ms
        if last is not None and 0 <= now - last < self.options.discover_interval_ms:
            return 0
        async with session_scope(self.sessions) as session:
            candidates = await service.sweep_candidates(session, self.chain.id)
        found = await worth_sweeping(self.rpc, self.chain, self.options, candidates)
        self._last_discovery_ms = now
        if not found:
            return 0
        async with fenced(self.sessions, grant) as session:
            return await service.open_items(session, self.clock, self.chain.id, found)

    # -- a new batch ------------------------------------------------------------------------

    async def send_batch(self, grant: LeaseGrant) -> SweepReport:
        """Sign, store and broadcast one batch of the items due now."""
        async with session_scope(self.sessions) as session:
            rows = await service.due_items(
                session, self.chain.id, self.clock.now_ms(), self.options.max_items
            )
        if not rows:
            return SweepReport(SweepOutcome.IDLE)
        item_ids = {
            (row.deposit_address.lower(), row.token_address.lower()): row.id for row in rows
        }
        items, mismatched = verified_items(
            self.factory,
            self.implementation,
            [
                FlushItem(
                    payout_address=row.payout_address,
                    deposit_salt=bytes.fromhex(row.deposit_salt.removeprefix("0x")),
                    token_address=row.token_address,
                    deposit_address=row.deposit_address,
                )
                for row in rows
            ],
        )
        if mismatched:
            # The stored payout does not derive the deposit address: never sign for it.
            async with fenced(self.sessions, grant) as session:
                await service.fail_items(
                    session,
                    self.clock,
                    self.options,
                    [item_ids[i.key] for i in mismatched],
                    Verdict.STUCK,
                    "payout and salt do not derive the deposit address",
                )
        if not items:
            return SweepReport(SweepOutcome.IDLE)

        fees = initial_fees(await market_fees(self.rpc), self.options.max_fee_per_gas)
        if fees is None:
            log.warning(
                "sweep_gas_above_cap", chain_id=self.chain.id, cap=self.options.max_fee_per_gas
            )
            return SweepReport(SweepOutcome.BLOCKED, items=len(items), detail="gas above cap")
        data = encode_batch(items)
        call = {"from": self.sender, "to": self.factory, "data": "0x" + data.hex()}
        try:
            estimate = to_int(await self.rpc.call("eth_estimateGas", [call]))
        except RpcError as exc:
            if isinstance(exc, RpcUnavailable):
                raise  # no node answered: try the whole step again
            return await self._refused(grant, [item_ids[i.key] for i in items], exc)
        gas_limit = estimate * (100 + self.options.gas_margin_percent) // 100
        worst = worst_case_cost(gas_limit, fees)
        if not await transactions.affordable(
            self.sessions, self.clock, self.options, self.chain.id, self.sender, worst
        ):
            return SweepReport(SweepOutcome.BLOCKED, items=len(items), detail="budget exhausted")
        balance = to_int(await self.rpc.call("eth_getBalance", [self.sender, "latest"]))
        if balance < worst:
            log.error(
                "operator_alert",
                alert="relayer balance too low for a sweep transaction",
                chain_id=self.chain.id,
                relayer=self.sender,
                balance=format_amount(balance, 18),
                needed=format_amount(worst, 18),
            )
            return SweepReport(SweepOutcome.BLOCKED, items=len(items), detail="relayer underfunded")

        pending = to_int(await self.rpc.call("eth_getTransactionCount", [self.sender, "pending"]))
        async with session_scope(self.sessions) as session:
            stored = await transactions.highest_nonce(session, self.chain.id, self.sender)
        nonce = max(pending, stored + 1 if stored is not None else 0)
        signed = sign_batch(self.relayer, self.chain.id, self.factory, nonce, gas_limit, fees, data)
        async with fenced(self.sessions, grant) as session:
            # Stored before it is broadcast: a crash from here on resumes with this transaction.
            tx = await transactions.record_signed(
                session,
                self.clock,
                self.chain.id,
                self.sender,
                signed,
                [item_ids[i.key] for i in items],
            )
        log.info(
            "sweep_sent",
            chain_id=self.chain.id,
            tx_hash=signed.tx_hash,
            nonce=nonce,
            items=len(items),
            gas_limit=gas_limit,
            max_fee_per_gas=fees.max_fee_per_gas,
        )
        await self.in_flight.broadcast(grant, tx)
        return SweepReport(SweepOutcome.SENT, tx_hash=signed.tx_hash, items=len(items))

    async def _refused(self, grant: LeaseGrant, ids: list[int], exc: RpcError) -> SweepReport:
        """Gas estimation reverted. An item alone exhausting the gas is dropped (stuck); anything
        else is unexpected (the batch isolates item failures), so every item waits a while."""
        index = out_of_gas_index(exc.revert_data)
        if index is not None and index < len(ids):
            ids, verdict, reason = [ids[index]], Verdict.STUCK, "item runs out of gas"
        else:
            verdict, reason = Verdict.RETRY, f"gas estimation reverted: {exc}"
        log.warning("sweep_estimate_reverted", chain_id=self.chain.id, items=len(ids), error=reason)
        async with fenced(self.sessions, grant) as session:
            await service.fail_items(session, self.clock, self.options, ids, verdict, reason)
        return SweepReport(SweepOutcome.IDLE, detail=reason)


def _halted(why: StepHalt, detail: str) -> SweepReport:
    outcome = {
        StepHalt.STANDBY: SweepOutcome.STANDBY,
        StepHalt.FENCED: SweepOutcome.FENCED,
        StepHalt.RETRY: SweepOutcome.RETRY,
    }[why]
    return SweepReport(outcome, detail=detail)
