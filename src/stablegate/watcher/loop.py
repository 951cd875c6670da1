"""One chain's watcher: lease, read the chain, write one transaction per step.

Each step has three phases so no database transaction waits on the network:
1. read: the cursor, stored block hashes and the watched addresses (short transaction);
2. chain: head, finality, reorg check, headers and logs of the next range (no transaction);
3. write: payments, order transitions, outbox events and the new cursor in ONE transaction,
   fenced by the lease epoch and the expected cursor hash (0 rows: roll back, nothing lands).

The cursor never moves past a block that failed; after downtime the watcher catches up from
where it stopped in adaptive ranges.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from dataclasses import dataclass, field
from enum import StrEnum

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.chain.evm.blocks import BlockHeader, fetch_header, fetch_headers, parse_header
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.rpc_errors import RpcError, RpcRangeTooLarge, RpcUnavailable
from stablegate.chain.evm.transfers import TransferLog
from stablegate.chain.registry import Chain
from stablegate.clock import Clock
from stablegate.db.engine import read_scope, session_scope
from stablegate.models import ChainBlock, ChainState
from stablegate.models.chain_state import FinalityMode
from stablegate.orders import unique_amount
from stablegate.orders.service import OrderContext
from stablegate.payments import service as payments
from stablegate.watchdog import StepStalled, Watchdog
from stablegate.watcher.lease import Fenced, LeaseGrant, acquire_or_renew, hold, release
from stablegate.watcher.reconcile import ReconcileReport, reconcile
from stablegate.watcher.scan import InconsistentAnswer, fetch_range, log_positions
from stablegate.watcher.tokens import chain_mismatches
from stablegate.watcher.watched import WatchedAddresses

log = structlog.get_logger("stablegate.watcher")


class StepOutcome(StrEnum):
    STANDBY = "standby"  # another process holds the lease
    IDLE = "idle"  # at the head
    ADVANCED = "advanced"
    REORG = "reorg"
    RETRY = "retry"  # an RPC failure or inconsistent answer; nothing written
    FENCED = "fenced"  # lost the lease or the cursor moved underneath: rolled back


@dataclass
class WatcherOptions:
    lease_ttl_ms: int = 15_000
    max_range: int = 2000  # blocks per step while backfilling final blocks
    min_range: int = 1
    unfinal_range: int = 64  # blocks per step above the final height (all headers fetched)
    watch_days: int = 90
    keep_blocks: int = 256  # hashes kept below the final height, for walk-back
    # The finalized tag not advancing for this long while the head does raises an alert.
    stall_alert_ms: int = 10 * 60_000
    poll_interval: float = 1.0
    # How often deposit balances are reconciled against the records (0: never).
    reconcile_interval_ms: int = 10 * 60_000
    # A step (RPC reads and one write transaction) taking longer is abandoned and retried.
    step_timeout: float = 120.0


@dataclass
class StepReport:
    outcome: StepOutcome
    from_block: int | None = None
    to_block: int | None = None
    transfers: int = 0
    orders_changed: int = 0
    head: int | None = None
    final: int | None = None
    detail: str = ""


@dataclass
class _Snapshot:
    exists: bool
    cursor_number: int
    cursor_hash: str
    final_number: int
    final_hash: str | None
    final_advanced_at_ms: int
    final_block_time_ms: int
    stored: dict[int, str] = field(default_factory=dict)


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
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.lease_name = f"watcher:{chain.id}"
        self.watched = WatchedAddresses(chain.id, self.options.watch_days)
        self.range = self.options.max_range
        self.finality_mode: FinalityMode | None = None
        self.grant: LeaseGrant | None = None
        self.stalled = False

    # -- the loop ---------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event) -> None:
        log.info("watcher_started", chain_id=self.chain.id, holder=self.holder)
        while not stop.is_set():
            try:
                problems = await chain_mismatches(self.rpc, self.chain)
                break
            except (RpcError, OSError) as exc:
                log.warning("token_check_retry", chain_id=self.chain.id, error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=5)
        else:
            return
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
                report = await self._step_or_stop(stop)
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
                    await self.reconcile_now()
                except Exception as exc:  # a report, never a reason to stop watching
                    log.warning("reconcile_failed", chain_id=self.chain.id, error=str(exc))
            delay = self.options.poll_interval
            if report.outcome in (StepOutcome.RETRY, StepOutcome.STANDBY):
                delay = max(delay, 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
        if self.grant is not None:
            # Hand the chain over at once instead of after the lease runs out; bounded, so a
            # locked database cannot hold up the stop (the lease then simply expires).
            handover = Watchdog("watcher", 5.0, cancel_grace=1.0, chain_id=self.chain.id)
            grant = self.grant
            for attempt in range(3):
                try:
                    await handover.run(lambda: release(self.sessions, grant), "release")
                    break
                except StepStalled:
                    break
                except Exception as exc:  # the lease then simply expires
                    log.warning("lease_release_failed", chain_id=self.chain.id, error=repr(exc))
                    await asyncio.sleep(0.2 * (attempt + 1))
        log.info("watcher_stopped", chain_id=self.chain.id)

    async def _step_or_stop(self, stop: asyncio.Event, grace: float = 8.0) -> StepReport:
        """A step under the watchdog: abandoned (logged with its stack) when it makes no
        progress within ``options.step_timeout``, or when a stop request outlasts ``grace``
        seconds (a slow node must not hold a shutdown). Each step writes in one transaction
        fenced by the lease epoch, so cancelling it is safe."""
        watchdog = Watchdog(
            "watcher",
            self.options.step_timeout,
            stop=stop,
            stop_grace=grace,
            chain_id=self.chain.id,
        )
        try:
            return await watchdog.run(self.step)
        except StepStalled as exc:
            return StepReport(StepOutcome.RETRY, detail=str(exc))

    async def step(self) -> StepReport:
        self.grant = await acquire_or_renew(
            self.sessions,
            self.clock,
            name=self.lease_name,
            holder=self.holder,
            ttl_ms=self.options.lease_ttl_ms,
        )
        if self.grant is None:
            return StepReport(StepOutcome.STANDBY)
        try:
            return await self._step(self.grant)
        except Fenced as exc:
            log.warning("watcher_fenced", chain_id=self.chain.id, detail=str(exc))
            return StepReport(StepOutcome.FENCED, detail=str(exc))
        except (RpcError, OSError, TimeoutError) as exc:
            log.warning("watcher_rpc_retry", chain_id=self.chain.id, error=str(exc))
            return StepReport(StepOutcome.RETRY, detail=str(exc))

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
            if self.grant is not None:
                await hold(session, self.grant)
            await session.execute(
                update(ChainState)
                .where(ChainState.chain_id == self.chain.id)
                .values(
                    reconcile_mismatches=len(report.mismatches),
                    reconciled_at_ms=self.clock.now_ms(),
                )
            )
        return report

    # -- phases -----------------------------------------------------------------------------

    async def _read(self) -> _Snapshot:
        async with read_scope(self.sessions) as session:
            state = await session.get(ChainState, self.chain.id)
            if state is None:
                return _Snapshot(False, -1, "", 0, None, 0, 0)
            rows = await session.execute(
                select(ChainBlock.number, ChainBlock.hash).where(
                    ChainBlock.chain_id == self.chain.id
                )
            )
            return _Snapshot(
                True,
                state.cursor_number,
                state.cursor_hash,
                state.final_number,
                state.final_hash,
                state.final_advanced_at_ms,
                state.final_block_time_ms,
                {number: block_hash for number, block_hash in rows.all()},
            )

    async def _final_header(self, head: BlockHeader) -> BlockHeader | None:
        """The node's finalized block, or head minus confirmations on chains without the tag."""
        if self.finality_mode is None:
            try:
                tagged = await fetch_header(self.rpc, "finalized")
            except RpcError:
                tagged = None
            self.finality_mode = FinalityMode.TAG if tagged is not None else FinalityMode.COUNT
            log.info("finality_mode", chain_id=self.chain.id, mode=self.finality_mode)
            if tagged is not None:
                return tagged
        if self.finality_mode == FinalityMode.TAG:
            # Never fall back to counting when the tag fails: stop completing instead.
            return await fetch_header(self.rpc, "finalized")
        number = head.number - self.chain.confirmations
        return await fetch_header(self.rpc, number) if number >= 0 else None

    async def _step(self, grant: LeaseGrant) -> StepReport:
        snap = await self._read()
        # Ask every URL for its head so the client stops reading from one that lags.
        await self.rpc.head()
        # Every answer of the step comes from one node, so they describe one chain.
        async with self.rpc.pinned():
            return await self._step_on_one_node(grant, snap)

    async def _diverges(self, number: int, ours: str) -> bool:
        """Does the chain really disagree with our stored hash at ``number``? One node saying
        so is not enough when others are there to ask: a node on another fork is set aside."""
        params = [hex(number), False]
        try:
            answers = [await self.rpc.call_elsewhere("eth_getBlockByNumber", params)]
        except RpcUnavailable:
            # No other node has an opinion: ask ours twice more (behind a load balancer
            # another node may answer), and act only on real answers.
            answers = [await self.rpc.call("eth_getBlockByNumber", params) for _ in range(2)]
            answers = [raw for raw in answers if raw]
            if not answers:
                raise InconsistentAnswer(f"no node confirms what block {number} is") from None
        if any(raw and str(raw.get("hash", "")).lower() == ours for raw in answers):
            self.rpc.demote_pinned(f"block {number} differs from the other nodes'")
            raise InconsistentAnswer(f"one node alone disagrees about block {number}")
        return True

    async def _tip(
        self, snap: _Snapshot
    ) -> tuple[BlockHeader, BlockHeader | None, BlockHeader | None]:
        """Head, finalized block and our cursor's block, answered by one node in one request."""
        if self.finality_mode != FinalityMode.TAG:
            head = await fetch_header(self.rpc, "latest")
            if head is None:
                raise RpcError(-1, "node returned no latest block")
            final = await self._final_header(head)
            current = await fetch_header(self.rpc, snap.cursor_number) if snap.exists else None
            return head, final, current
        calls: list[tuple[str, list[object]]] = [
            ("eth_getBlockByNumber", ["latest", False]),
            ("eth_getBlockByNumber", ["finalized", False]),
        ]
        if snap.exists:
            calls.append(("eth_getBlockByNumber", [hex(snap.cursor_number), False]))
        answers = await self.rpc.batch_one_request(calls)
        if not answers[0]:
            raise RpcError(-1, "node returned no latest block")
        head = parse_header(answers[0])
        final = parse_header(answers[1]) if answers[1] else None
        current = parse_header(answers[2]) if snap.exists and answers[2] else None
        return head, final, current

    async def _step_on_one_node(self, grant: LeaseGrant, snap: _Snapshot) -> StepReport:
        if self.finality_mode is None:
            probe = await fetch_header(self.rpc, "latest")
            if probe is None:
                raise RpcError(-1, "node returned no latest block")
            await self._final_header(probe)  # decides tag or count, once
        head, final_header, current = await self._tip(snap)
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
            if current.hash != snap.cursor_hash and await self._diverges(
                snap.cursor_number, snap.cursor_hash
            ):
                return await self._reorg(grant, snap, head, final_number)

        # A finalized tag that contradicts a block we stored means we followed another fork.
        if final_header is not None:
            stored = snap.stored.get(final_header.number)
            if (
                stored is not None
                and stored != final_header.hash
                and await self._diverges(final_header.number, stored)
            ):
                return await self._reorg(grant, snap, head, final_number)

        first = snap.cursor_number + 1
        if first > head.number:
            return await self._write(grant, snap, head, final_number, final_header, None, [], {})
        if first <= final_number:
            last = min(final_number, first + self.range - 1)
            mode = "final"
        else:
            last = min(head.number, first + self.options.unfinal_range - 1)
            mode = "unfinal"
        try:
            transfers, headers = await fetch_range(
                self.rpc,
                first,
                last,
                list(range(first, last + 1)) if mode == "unfinal" else [],
                self.watched.addresses(),
                [t.address for t in self.chain.tokens],
                lookup=self.watched.lookup(),
                sources=self.watched.deposits(),
            )
        except RpcRangeTooLarge:
            self.range = max(self.options.min_range, self.range // 2)
            log.warning("backfill_range_halved", chain_id=self.chain.id, range=self.range)
            raise
        if mode == "final":
            # Blocks holding logs: their hashes must be the logs' (checked below).
            missing = sorted({t.block_number for t in transfers} - set(headers))
            headers.update(await fetch_headers(self.rpc, missing))
        if headers[first].parent_hash != snap.cursor_hash:
            raise InconsistentAnswer(f"block {first} does not follow the cursor")
        if mode == "unfinal":
            for number in range(first + 1, last + 1):
                if headers[number].parent_hash != headers[number - 1].hash:
                    raise InconsistentAnswer(f"block {number} does not follow {number - 1}")
        for t in transfers:
            if headers[t.block_number].hash != t.block_hash:
                raise InconsistentAnswer(f"log in block {t.block_number} from another fork")
        positions = await log_positions(self.rpc, transfers)
        report = await self._write(
            grant,
            snap,
            head,
            final_number,
            final_header,
            (first, last, headers),
            transfers,
            positions,
        )
        if mode == "final":
            self.range = min(self.options.max_range, self.range * 2)
        return report

    async def _initialise(
        self, grant: LeaseGrant, head: BlockHeader, final_header: BlockHeader | None
    ) -> StepReport:
        """First start on this chain: begin just before the oldest order still watched."""
        async with session_scope(self.sessions) as session:
            oldest = await self.watched.oldest_open_create_time(session, self.clock.now_ms())
        start = head
        if oldest is not None:
            start = await self._block_at_time(oldest - 5 * 60_000, head)
        final_number = final_header.number if final_header else 0
        async with session_scope(self.sessions) as session:
            await hold(session, grant)
            if await session.get(ChainState, self.chain.id) is not None:
                raise Fenced("chain state created by another watcher")
            now = self.clock.now_ms()
            session.add(
                ChainState(
                    chain_id=self.chain.id,
                    epoch=grant.epoch,
                    cursor_number=start.number,
                    cursor_hash=start.hash,
                    final_number=min(final_number, start.number),
                    final_hash=None,
                    final_block_time_ms=0,
                    head_number=head.number,
                    head_seen_at_ms=now,
                    finality_mode=self.finality_mode or FinalityMode.TAG,
                    final_advanced_at_ms=now,
                    reconcile_mismatches=0,
                    reconciled_at_ms=0,
                    updated_at_ms=now,
                )
            )
            session.add(
                ChainBlock(
                    chain_id=self.chain.id,
                    number=start.number,
                    hash=start.hash,
                    parent_hash=start.parent_hash,
                    time_ms=start.time_ms,
                )
            )
        log.info("watcher_initialised", chain_id=self.chain.id, cursor=start.number)
        return StepReport(StepOutcome.ADVANCED, to_block=start.number, head=head.number)

    async def _block_at_time(self, time_ms: int, head: BlockHeader) -> BlockHeader:
        """The last block at or before ``time_ms`` (binary search on timestamps)."""
        low, high = 0, head.number
        best = await fetch_header(self.rpc, 0)
        if best is None or best.time_ms > time_ms:
            return best or head
        while low < high:
            middle = (low + high + 1) // 2
            header = await fetch_header(self.rpc, middle)
            if header is None:
                break
            if header.time_ms <= time_ms:
                low, best = middle, header
            else:
                high = middle - 1
        return best

    async def _reorg(
        self, grant: LeaseGrant, snap: _Snapshot, head: BlockHeader, final_number: int
    ) -> StepReport:
        """Walk back to the common ancestor, orphan what was above it, rewind the cursor."""
        ancestor: BlockHeader | None = None
        candidates = sorted((n for n in snap.stored if n < snap.cursor_number), reverse=True)
        for start in range(0, len(candidates), 50):
            # One request per 50 blocks: one node's view of the chain, not a mix.
            numbers = candidates[start : start + 50]
            answers = await self.rpc.batch_one_request(
                [("eth_getBlockByNumber", [hex(n), False]) for n in numbers]
            )
            for number, raw in zip(numbers, answers, strict=True):
                if raw and str(raw["hash"]).lower() == snap.stored[number]:
                    ancestor = parse_header(raw)
                    break
            if ancestor is not None:
                break
        if ancestor is None:
            lowest = min(snap.stored, default=snap.cursor_number)
            log.error(
                "operator_alert",
                alert="reorg deeper than the stored block hashes",
                chain_id=self.chain.id,
                lowest_stored=lowest,
            )
            ancestor = await fetch_header(self.rpc, max(lowest - 1, 0))
            if ancestor is None:
                raise RpcError(-1, "cannot read the common ancestor")
        if ancestor.number < snap.final_number:
            # Rewinding below the final height: only on more than one node's word.
            above = min((n for n in snap.stored if n > ancestor.number), default=None)
            if above is not None:
                await self._diverges(above, snap.stored[above])
            log.error(
                "operator_alert",
                alert="reorg below the final height",
                chain_id=self.chain.id,
                ancestor=ancestor.number,
                final=snap.final_number,
            )
        async with session_scope(self.sessions) as session:
            await self._fence_cursor(
                session, grant, snap, ancestor, head, min(final_number, ancestor.number), None
            )
            orphaned = await payments.orphan_above(
                session, self.clock, self.chain.id, ancestor.number
            )
            await session.execute(
                delete(ChainBlock).where(
                    ChainBlock.chain_id == self.chain.id, ChainBlock.number > ancestor.number
                )
            )
            changed = await payments.settle_orders(
                session,
                self.clock,
                self.orders,
                orphaned,
                final_time_ms=snap.final_block_time_ms,
                newly_seen={},
            )
        log.warning(
            "reorg",
            chain_id=self.chain.id,
            old_cursor=snap.cursor_number,
            ancestor=ancestor.number,
            orders=len(orphaned),
        )
        return StepReport(
            StepOutcome.REORG,
            to_block=ancestor.number,
            head=head.number,
            orders_changed=changed,
            detail=f"rewound from {snap.cursor_number} to {ancestor.number}",
        )

    async def _fence_cursor(
        self,
        session: AsyncSession,
        grant: LeaseGrant,
        snap: _Snapshot,
        cursor: BlockHeader,
        head: BlockHeader,
        final_number: int,
        final_time_ms: int | None,
    ) -> None:
        await hold(session, grant)
        now = self.clock.now_ms()
        values: dict[str, object] = {
            "epoch": grant.epoch,
            "cursor_number": cursor.number,
            "cursor_hash": cursor.hash,
            "head_number": head.number,
            "head_seen_at_ms": now,
            "finality_mode": self.finality_mode or FinalityMode.TAG,
            "updated_at_ms": now,
        }
        if final_number > snap.final_number:
            values["final_number"] = final_number
            values["final_advanced_at_ms"] = now
        if final_time_ms is not None:
            values["final_block_time_ms"] = final_time_ms
        result = await session.execute(
            update(ChainState)
            .where(
                ChainState.chain_id == self.chain.id,
                ChainState.epoch <= grant.epoch,
                ChainState.cursor_number == snap.cursor_number,
                ChainState.cursor_hash == snap.cursor_hash,
            )
            .values(**values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Fenced("the cursor moved underneath us")

    async def _write(
        self,
        grant: LeaseGrant,
        snap: _Snapshot,
        head: BlockHeader,
        final_number: int,
        final_header: BlockHeader | None,
        scanned: tuple[int, int, dict[int, BlockHeader]] | None,
        transfers: list[TransferLog],
        positions: dict[tuple[str, int], int],
    ) -> StepReport:
        if scanned is None:
            cursor = BlockHeader(snap.cursor_number, snap.cursor_hash, "", 0)
            headers: dict[int, BlockHeader] = {}
            first = last = None
        else:
            first, last, headers = scanned
            cursor = headers[last]
        processed_final = min(final_number, cursor.number)
        # The chain's clock for expiry: the time of the highest block both final and processed.
        final_time = await self._time_of(processed_final, headers, final_header)
        if final_time is not None and final_time < snap.final_block_time_ms:
            final_time = None  # never move the expiry clock backwards (e.g. after a reorg)
        self._check_stall(snap, final_number, head)
        async with session_scope(self.sessions) as session:
            await self._fence_cursor(session, grant, snap, cursor, head, final_number, final_time)
            canonical = dict(snap.stored)
            for number, header in headers.items():
                canonical[number] = header.hash
                if number > final_number - self.options.keep_blocks or number == cursor.number:
                    await session.merge(
                        ChainBlock(
                            chain_id=self.chain.id,
                            number=number,
                            hash=header.hash,
                            parent_hash=header.parent_hash,
                            time_ms=header.time_ms,
                        )
                    )
            observed = []
            for t in transfers:
                # To a deposit: a payment; else out of one: its flush (payments.classify).
                order_id = self.watched.order_for(t.recipient) or self.watched.order_for(t.sender)
                if order_id is None and self.watched.is_pooled(t.recipient):
                    if await unique_amount.is_deposit_contract(session, self.chain.id, t.sender):
                        continue  # a sweep into the payout address, not a payment
                    order_id = await unique_amount.order_for_transfer(
                        session,
                        chain_id=self.chain.id,
                        token=t.token,
                        address=t.recipient,
                        amount=t.amount,
                    )
                observed.append(
                    payments.ObservedTransfer(
                        transfer=t,
                        log_position=positions[(t.tx_hash, t.log_index)],
                        block_time_ms=headers[t.block_number].time_ms,
                        order_id=order_id,
                    )
                )
            newly_seen = await payments.record_transfers(
                session, self.clock, self.chain, observed, final_height=processed_final
            )
            finalized = await payments.finalize_up_to(
                session, self.clock, self.chain.id, processed_final, canonical
            )
            chain_time = final_time if final_time is not None else snap.final_block_time_ms
            expiring = await payments.expiry_candidates(session, self.chain.id, chain_time)
            changed = await payments.settle_orders(
                session,
                self.clock,
                self.orders,
                set(newly_seen) | finalized | set(expiring),
                final_time_ms=chain_time,
                newly_seen=newly_seen,
            )
            await payments.update_confirmations(session, self.chain.id, head.number)
            await session.execute(
                delete(ChainBlock).where(
                    ChainBlock.chain_id == self.chain.id,
                    ChainBlock.number < final_number - self.options.keep_blocks,
                    ChainBlock.number != cursor.number,
                )
            )
        if transfers or changed:
            log.info(
                "watcher_step",
                chain_id=self.chain.id,
                blocks=f"{first}-{last}",
                transfers=len(transfers),
                orders_changed=changed,
                final=final_number,
            )
        return StepReport(
            StepOutcome.ADVANCED if scanned else StepOutcome.IDLE,
            from_block=first,
            to_block=cursor.number,
            transfers=len(transfers),
            orders_changed=changed,
            head=head.number,
            final=final_number,
        )

    async def _time_of(
        self, number: int, headers: dict[int, BlockHeader], final_header: BlockHeader | None
    ) -> int | None:
        if number <= 0:
            return None
        if number in headers:
            return headers[number].time_ms
        if final_header is not None and final_header.number == number:
            return final_header.time_ms
        header = await fetch_header(self.rpc, number)
        return header.time_ms if header else None

    def _check_stall(self, snap: _Snapshot, final_number: int, head: BlockHeader) -> None:
        if self.finality_mode != FinalityMode.TAG:
            return
        stalled_for = self.clock.now_ms() - snap.final_advanced_at_ms
        stalled = final_number <= snap.final_number and stalled_for > self.options.stall_alert_ms
        if stalled and not self.stalled:
            log.error(
                "operator_alert",
                alert="finalized tag stalled: orders stop completing until it moves",
                chain_id=self.chain.id,
                final=final_number,
                head=head.number,
                stalled_ms=stalled_for,
            )
        self.stalled = stalled
