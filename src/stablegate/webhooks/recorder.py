"""The worker's record step as a group commit: finished attempts queue, one task writes them.

An attempt that finishes while a record transaction runs waits for the next one, which records
everything queued (up to ``RECORD_BATCH``): under load one transaction records dozens of
attempts, idle it records one as soon as it finishes; there is no timer. Each attempt's task
waits until the transaction holding its record committed, and its log line is written then.

A record transaction that fails (or a process that dies before it commits) leaves those
attempts unrecorded: their events keep the lease they were claimed with, the lease runs out and
the events are claimed and sent again. A POST is therefore never forgotten without a trace in
the database: either its delivery row and the event's new state commit together, or the event
goes out again (at least once; receivers dedupe on ``Webhook-Id``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from functools import partial

import structlog

from stablegate.clock import Clock
from stablegate.watchdog import Watchdog
from stablegate.webhooks.claims import Claim
from stablegate.webhooks.ordering import Executor
from stablegate.webhooks.recording import AttemptResult, Recorded, record_attempts

log = structlog.get_logger("stablegate.webhooks")

RECORD_BATCH = 200  # attempts recorded in one transaction, at most
# An attempt waiting for its record: the claim, what happened, and the future its task awaits.
_Unrecorded = tuple[Claim, AttemptResult, "asyncio.Future[None]"]


class AttemptRecorder:
    def __init__(
        self,
        transaction: Callable[[], AbstractAsyncContextManager[Executor]],
        clock: Clock,
        rng: random.Random,
        watchdog: Watchdog,
        worker_id: str,
    ) -> None:
        self._transaction = transaction
        self._clock = clock
        self._rng = rng
        self._watchdog = watchdog
        self._worker_id = worker_id
        self._unrecorded: list[_Unrecorded] = []
        self._task: asyncio.Task[None] | None = None

    async def record(self, claim: Claim, result: AttemptResult) -> None:
        """Record one attempt with whatever else is queued; returns once its transaction
        committed (raises if it failed: the attempt is then unrecorded, its lease runs out)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unrecorded.append((claim, result, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._record_queued())
        await done

    async def aclose(self) -> None:
        """Records still being written finish first."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _record_queued(self) -> None:
        """Write the queued attempts, a batch per transaction, until none is left."""
        batch: list[_Unrecorded] = []
        try:
            while self._unrecorded:
                batch = self._unrecorded[:RECORD_BATCH]
                del self._unrecorded[:RECORD_BATCH]
                attempts = [(claim, result) for claim, result, _ in batch]
                try:
                    recorded = await self._watchdog.run(partial(self.write, attempts), "record")
                except Exception as exc:
                    log.warning("webhook_record_failed", error=type(exc).__name__, count=len(batch))
                    for _, _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    batch = []
                    continue
                for (claim, result, done), outcome in zip(batch, recorded, strict=True):
                    self._log_attempt(claim, result, outcome)
                    if not done.done():
                        done.set_result(None)
                batch = []
        finally:  # cancelled (the loop is going away): these stay unrecorded
            for _, _, done in batch + self._unrecorded:
                if not done.done():
                    done.set_exception(RuntimeError("the webhook recorder was stopped"))
            self._unrecorded = []

    async def write(self, attempts: Sequence[tuple[Claim, AttemptResult]]) -> list[Recorded]:
        """One record transaction for ``attempts``."""
        async with self._transaction() as connection:
            return await record_attempts(
                connection, attempts, now_ms=self._clock.now_ms(), rng=self._rng
            )

    def _log_attempt(self, claim: Claim, result: AttemptResult, recorded: Recorded) -> None:
        next_at = recorded.next_attempt_at_ms
        log.info(
            "webhook_attempt",
            event_id=claim.event_id,
            order_id=claim.order_id,
            merchant_id=claim.merchant_id,
            attempt=claim.attempt,
            outcome=result.outcome.value,
            status=result.status_code,
            ms=result.latency_ms,
            host=claim.host,
            worker_id=self._worker_id,
            **({"next_attempt_at": next_at} if next_at is not None else {}),
            **({"lease_lost": True} if recorded.lease_lost else {}),
        )
