"""One chain's watcher: lease, read the chain, write one transaction per step.

Each step has three phases so no database transaction waits on the network:
1. read: the cursor, stored block hashes and the watched addresses (short transaction);
2. chain: head, finality, reorg check, headers and logs of the next range (no transaction);
3. write: payments, order transitions, outbox events and the new cursor in ONE transaction,
   fenced by the lease epoch and the expected cursor hash (0 rows: roll back, nothing lands).

The cursor never moves past a block that failed; after downtime the watcher catches up from
where it stopped in adaptive ranges. Its parts: the lease (``leases.py``), the cursor
(``cursor.py``), finality (``finality.py``), reorgs (``reorg.py``), the first start
(``startup.py``), scanning (``scan.py``) and the write phase (``record.py``).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.chain.evm.blocks import BlockHeader
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.rpc_errors import RpcError, RpcRangeTooLarge
from stablegate.chain.registry import Chain
from stablegate.clock import Clock
from stablegate.db.engine import read_scope, session_scope
from stablegate.leases import ChainLease, LeaseGrant, StepHalt, hold
from stablegate.models import ChainState
from stablegate.orders.context import OrderContext
from stablegate.watchdog import StepStalled, Watchdog
from stablegate.watcher import reorg, startup
from stablegate.watcher.cursor import ChainCursor, CursorSnapshot
from stablegate.watcher.finality import Finality
from stablegate.watcher.options import WatcherOptions
from stablegate.watcher.reconcile import ReconcileReport, reconcile
from stablegate.watcher.record import record_range
from stablegate.watcher.reports import StepOutcome, StepReport
from stablegate.watcher.scan import InconsistentAnswer, ScannedRange, scan_range
from stablegate.watcher.tokens import chain_mismatches
from stablegate.watcher.watched import WatchedAddresses

log = structlog.get_logger("stablegate.watcher")

# A stop request gives a running step this long to finish before it is cancelled.
STOP_GRACE_S = 8.0


class ChainWatcher:
    def __init__(
        self,
        chain: Chain,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        rpc: RpcClient,
        orders: OrderContext,
        *,
        options: WatcherOptions | None = None,
        holder: str | None = None,
    ) -> None:
        self.chain = chain
        self.sessions = sessions
        self.clock = clock
        self.rpc = rpc
        self.orders = orders
        self.options = options or WatcherOptions()
        self.lease = ChainLease(
            sessions,
            clock,
            worker="watcher",
            chain_id=chain.id,
            ttl_ms=self.options.lease_ttl_ms,
            holder=holder,
        )
        self.cursor = ChainCursor(chain.id, sessions, clock)
        self.finality = Finality(
            rpc,
            clock,
            chain_id=chain.id,
            confirmations=chain.confirmations,
            stall_alert_ms=self.options.stall_alert_ms,
        )
        self.watched = WatchedAddresses(chain.id, self.options.watch_days)
        self.range = self.options.max_range  # blocks per step below the final height

    # -- the loop ---------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event) -> None:
        log.info("watcher_started", chain_id=self.chain.id, holder=self.lease.holder)
        # Every step, the start-up check and each reconciliation run under the watchdog: a
        # call that never returns is abandoned (logged with its stack) instead of hanging the
        # worker, and a stop request outlasting STOP_GRACE_S cancels it. Each writes in one
        # transaction fenced by the lease epoch, so cancelling is safe.
        watchdog = Watchdog(
            "watcher",
            self.options.step_timeout,
            stop=stop,
            stop_grace=STOP_GRACE_S,
            chain_id=self.chain.id,
        )
        problems = await self._chain_mismatches(watchdog, stop)
        if problems is None:
            return  # stopped before the node answered
        if problems:
            for problem in problems:
                log.error(
                    "operator_alert",
                    alert="chains file does not match the chain",
                    chain_id=self.chain.id,
                    problem=problem,
                )
            log.error("watcher_refused", chain_id=self.chain.id, reason="fix the chains file")
            return
        last_reconcile = self.clock.monotonic()
        while not stop.is_set():
            try:
                report = await self._watched_step(watchdog)
            except asyncio.CancelledError:
                if stop.is_set():
                    break  # stopping: the step's transaction rolled back, nothing is half-written
                raise
            except Exception as exc:  # one bad step must never kill the loop
                log.exception("watcher_step_failed", chain_id=self.chain.id, error=str(exc))
                report = StepReport(StepOutcome.RETRY, detail=str(exc))
            if report.outcome == StepOutcome.ADVANCED and report.to_block != report.head:
                continue  # catching up: no pause
            interval = self.options.reconcile_interval_ms / 1000
            if (
                interval
                and report.outcome == StepOutcome.IDLE
                and self.clock.monotonic() - last_reconcile >= interval
            ):
                last_reconcile = self.clock.monotonic()
                try:
                    await watchdog.run(self.reconcile_now, "reconcile")
                except asyncio.CancelledError:
                    if stop.is_set():
                        break
                    raise
                except Exception as exc:  # a report, never a reason to stop watching
                    log.warning("reconcile_failed", chain_id=self.chain.id, error=str(exc))
            delay = self.options.poll_interval
            if report.outcome in (StepOutcome.RETRY, StepOutcome.STANDBY):
                delay = max(delay, 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
        await self.lease.release()
        log.info("watcher_stopped", chain_id=self.chain.id)

    async def _chain_mismatches(self, watchdog: Watchdog, stop: asyncio.Event) -> list[str] | None:
        """How the chains file's tokens differ from the chain, retried until a node answers;
        None when stopped first."""
        while not stop.is_set():
            try:
                return await watchdog.run(
                    lambda: chain_mismatches(self.rpc, self.chain), "token check"
                )
            except asyncio.CancelledError:
                if stop.is_set():
                    return None
                raise
            except (RpcError, OSError, StepStalled) as exc:
                log.warning("token_check_retry", chain_id=self.chain.id, error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=5)
        return None

    async def _watched_step(self, watchdog: Watchdog) -> StepReport:
        """A step under the watchdog: abandoned when it makes no progress within
        ``options.step_timeout``, then reported as a retry."""
        try:
            return await watchdog.run(self.step)
        except StepStalled as exc:
            return StepReport(StepOutcome.RETRY, detail=str(exc))

    async def step(self) -> StepReport:
        """One step under the lease ``watcher:<chain id>`` (standby while another holds it)."""
        return await self.lease.run_step(self._step, _halted)

    async def reconcile_now(self) -> ReconcileReport:
        """Compare deposit balances at the processed final block with the records."""
        async with session_scope(self.sessions) as session:
            state = await session.get(ChainState, self.chain.id)
            if state is None:
                raise RpcError(-1, "the watcher has not started on this chain yet")
            block = min(state.final_number, state.cursor_number)
            since = self.clock.now_ms() - self.options.watch_days * 86_400_000
            report = await reconcile(session, self.rpc, self.chain, block=block, since_ms=since)
        async with session_scope(self.sessions) as session:
            if self.lease.grant is not None:
                await hold(session, self.lease.grant)
            await session.execute(
                update(ChainState)
                .where(ChainState.chain_id == self.chain.id)
                .values(
                    reconcile_mismatches=len(report.mismatches),
                    reconciled_at_ms=self.clock.now_ms(),
                )
            )
        return report

    # -- one step ---------------------------------------------------------------------------

    async def _step(self, grant: LeaseGrant) -> StepReport:
        snap = await self.cursor.read()
        # Ask every URL for its head so the client stops reading from one that lags.
        await self.rpc.head()
        # Every answer of the step comes from one node, so they describe one chain.
        async with self.rpc.pinned():
            return await self._step_on_one_node(grant, snap)

    async def _step_on_one_node(self, grant: LeaseGrant, snap: CursorSnapshot) -> StepReport:
        await self.finality.decide()
        head, final_header, current = await self.finality.tip(snap)
        # Refresh the watched addresses only now: every block up to this head was mined after
        # the refresh started, so an order paid in one of them was committed before it.
        async with read_scope(self.sessions) as session:
            await self.watched.refresh(session, self.clock.now_ms())
        if final_header is not None and final_header.number > head.number:
            raise InconsistentAnswer("finalized block above the head")
        final_number = max(snap.final_number, final_header.number if final_header else 0)
        final_number = min(final_number, head.number)

        if not snap.exists:
            return await self._initialise(grant, head, final_header)

        if snap.cursor_number > head.number:
            # This node is behind what we already processed (a lagging node): wait.
            return StepReport(StepOutcome.RETRY, head=head.number, detail="node behind cursor")

        # Is our cursor still on the canonical chain?
        if snap.cursor_number > 0:
            if current is None:
                raise RpcError(-1, f"block {snap.cursor_number} unavailable")
            if current.hash != snap.cursor_hash and await reorg.diverges(
                self.rpc, snap.cursor_number, snap.cursor_hash
            ):
                return await self._reorg(grant, snap, head, final_number)

        # A finalized tag that contradicts a block we stored means we followed another fork.
        if final_header is not None:
            stored = snap.stored.get(final_header.number)
            if (
                stored is not None
                and stored != final_header.hash
                and await reorg.diverges(self.rpc, final_header.number, stored)
            ):
                return await self._reorg(grant, snap, head, final_number)

        first = snap.cursor_number + 1
        if first > head.number:
            return await self._write(grant, snap, head, final_number, final_header, None)
        below_final = first <= final_number
        if below_final:
            last = min(final_number, first + self.range - 1)
        else:
            last = min(head.number, first + self.options.unfinal_range - 1)
        try:
            scanned = await scan_range(
                self.rpc,
                self.chain,
                self.watched,
                cursor_hash=snap.cursor_hash,
                first=first,
                last=last,
                below_final=below_final,
                max_transfers=self.options.max_transfers,
            )
        except RpcRangeTooLarge:
            self.range = max(self.options.min_range, self.range // 2)
            log.warning("backfill_range_halved", chain_id=self.chain.id, range=self.range)
            raise
        report = await self._write(grant, snap, head, final_number, final_header, scanned)
        if below_final and scanned.last < last:
            # Cut short by the transfer limit: the next range starts as long as this one got,
            # so a dense backlog is not read again block after block.
            self.range = max(self.options.min_range, scanned.last - first + 1)
        elif below_final:
            self.range = min(self.options.max_range, self.range * 2)
        return report

    async def _write(
        self,
        grant: LeaseGrant,
        snap: CursorSnapshot,
        head: BlockHeader,
        final_number: int,
        final_header: BlockHeader | None,
        scanned: ScannedRange | None,
    ) -> StepReport:
        if scanned is None:
            cursor = BlockHeader(
                number=snap.cursor_number, hash=snap.cursor_hash, parent_hash="", time_ms=0
            )
        else:
            cursor = scanned.headers[scanned.last]
        headers = scanned.headers if scanned else {}
        processed_final = min(final_number, cursor.number)
        # The chain's clock for expiry: the time of the highest block both final and processed.
        final_time = await self.finality.time_of(processed_final, headers, final_header)
        if final_time is not None and final_time < snap.final_block_time_ms:
            final_time = None  # never move the expiry clock backwards (e.g. after a reorg)
        self.finality.check_stall(snap, final_number, head)
        async with session_scope(self.sessions) as session:
            await self.cursor.move(
                session,
                grant,
                snap,
                cursor=cursor,
                head=head,
                final_number=final_number,
                final_time_ms=final_time,
                finality_mode=self.finality.mode,
            )
            changed = await record_range(
                session,
                self.clock,
                self.chain,
                self.orders,
                watched=self.watched,
                scanned=scanned,
                stored=snap.stored,
                cursor_number=cursor.number,
                final_number=final_number,
                processed_final=processed_final,
                chain_time_ms=final_time if final_time is not None else snap.final_block_time_ms,
                head_number=head.number,
                keep_blocks=self.options.keep_blocks,
            )
        transfers = len(scanned.transfers) if scanned else 0
        if transfers or changed:
            log.info(
                "watcher_step",
                chain_id=self.chain.id,
                blocks=f"{scanned.first}-{scanned.last}" if scanned else "None-None",
                transfers=transfers,
                orders_changed=changed,
                final=final_number,
            )
        return StepReport(
            StepOutcome.ADVANCED if scanned else StepOutcome.IDLE,
            from_block=scanned.first if scanned else None,
            to_block=cursor.number,
            transfers=transfers,
            orders_changed=changed,
            head=head.number,
            final=final_number,
        )

    async def _initialise(
        self, grant: LeaseGrant, head: BlockHeader, final_header: BlockHeader | None
    ) -> StepReport:
        """First start on this chain: begin just before the oldest order still watched."""
        async with session_scope(self.sessions) as session:
            oldest = await self.watched.oldest_open_create_time(session, self.clock.now_ms())
        start = await startup.start_block(self.rpc, head, oldest)
        async with session_scope(self.sessions) as session:
            await self.cursor.start(
                session,
                grant,
                start=start,
                head=head,
                final_number=final_header.number if final_header else 0,
                finality_mode=self.finality.mode,
            )
        log.info("watcher_initialised", chain_id=self.chain.id, cursor=start.number)
        return StepReport(StepOutcome.ADVANCED, to_block=start.number, head=head.number)

    async def _reorg(
        self, grant: LeaseGrant, snap: CursorSnapshot, head: BlockHeader, final_number: int
    ) -> StepReport:
        """Walk back to the common ancestor, orphan what was above it, rewind the cursor."""
        ancestor = await reorg.common_ancestor(self.rpc, self.chain.id, snap)
        async with session_scope(self.sessions) as session:
            await self.cursor.move(
                session,
                grant,
                snap,
                cursor=ancestor,
                head=head,
                final_number=min(final_number, ancestor.number),
                final_time_ms=None,
                finality_mode=self.finality.mode,
            )
            orphaned, changed = await reorg.orphan_above(
                session,
                self.clock,
                self.orders,
                chain_id=self.chain.id,
                ancestor=ancestor.number,
                final_time_ms=snap.final_block_time_ms,
            )
        log.warning(
            "reorg",
            chain_id=self.chain.id,
            old_cursor=snap.cursor_number,
            ancestor=ancestor.number,
            orders=orphaned,
        )
        return StepReport(
            StepOutcome.REORG,
            to_block=ancestor.number,
            head=head.number,
            orders_changed=changed,
            detail=f"rewound from {snap.cursor_number} to {ancestor.number}",
        )


def _halted(why: StepHalt, detail: str) -> StepReport:
    outcome = {
        StepHalt.STANDBY: StepOutcome.STANDBY,
        StepHalt.FENCED: StepOutcome.FENCED,
        StepHalt.RETRY: StepOutcome.RETRY,
    }[why]
    return StepReport(outcome, detail=detail)
