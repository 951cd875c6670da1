"""A watchdog for the steps of long-running workers (watcher, sweeper, webhook delivery).

Every await a step makes should be bounded (RPC and HTTP timeouts, the database's lock and
pool timeouts), but one that is not would stop the whole loop silently: a process alive,
holding its lease, doing nothing. So each step runs under a bound. A step that outlives it is
logged with where it is stuck (its await chain and every other thread's stack), cancelled, and
the loop goes on with the next step.

Cancelling is safe for money: a step writes in one database transaction, fenced by its lease
epoch, so a cancelled step rolls back and the next one starts again from the stored state. A
step that does not even unwind when cancelled (it waits on something that ignores
cancellation) is left behind, logged again; the loop still goes on.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog

from stablegate.stacks import await_chain

log = structlog.get_logger("stablegate.watchdog")

T = TypeVar("T")

# Steps cancelled that did not finish unwinding: kept referenced until they do.
_left_behind: set[asyncio.Task[Any]] = set()


class StepStalled(Exception):
    """The step made no progress within its bound and was abandoned (already logged)."""


class Watchdog:
    """Runs the steps of one worker, each within ``bound`` seconds.

    ``stop``: once set, a running step gets ``stop_grace`` more seconds before it is
    cancelled (and :class:`asyncio.CancelledError` raised), so a slow node cannot hold up a
    shutdown.
    """

    def __init__(
        self,
        worker: str,
        bound: float,
        *,
        stop: asyncio.Event | None = None,
        stop_grace: float = 8.0,
        cancel_grace: float = 5.0,
        **context: Any,
    ) -> None:
        self.worker = worker
        self.bound = bound
        self.stop = stop
        self.stop_grace = stop_grace
        self.cancel_grace = cancel_grace
        self.context = context
        self.stalled = 0  # steps abandoned so far

    async def run(self, step: Callable[[], Awaitable[T]], what: str = "step") -> T:
        """``step()``'s result; :class:`StepStalled` past the bound."""
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(step())
        deadline = loop.time() + self.bound
        stopping = None if self.stop is None else asyncio.ensure_future(self.stop.wait())
        try:
            waiting: set[asyncio.Future[Any]] = {task} if stopping is None else {task, stopping}
            await asyncio.wait(waiting, timeout=self.bound, return_when=asyncio.FIRST_COMPLETED)
            if not task.done() and stopping is not None and stopping.done():
                left = min(self.stop_grace, max(deadline - loop.time(), 0.0))
                await asyncio.wait({task}, timeout=left)
                if not task.done():
                    await self._cancel(task, what, stalled=False)
                    raise asyncio.CancelledError
        except asyncio.CancelledError:
            task.cancel()  # our caller was cancelled (or we are stopping): so is the step
            raise
        finally:
            if stopping is not None:
                stopping.cancel()
        if task.done():
            return task.result()
        self.stalled += 1
        log.error(
            "step_stalled",
            worker=self.worker,
            step=what,
            bound_s=self.bound,
            stack=await_chain(task),
            threads=_other_threads(),
            **self.context,
        )
        await self._cancel(task, what, stalled=True)
        raise StepStalled(f"{self.worker} {what} made no progress within {self.bound:g} s")

    async def run_or(self, step: Callable[[], Awaitable[T]], stalled: T, what: str = "step") -> T:
        """``step()``'s result, or ``stalled`` when it was abandoned (for steps run as tasks
        of their own, whose errors nobody would read)."""
        try:
            return await self.run(step, what)
        except StepStalled:
            return stalled

    async def _cancel(self, task: asyncio.Task[Any], what: str, *, stalled: bool) -> None:
        task.cancel()
        await asyncio.wait({task}, timeout=self.cancel_grace)
        if task.done():
            if not task.cancelled():
                task.exception()  # retrieved: an error while unwinding is not news here
            return
        _left_behind.add(task)
        task.add_done_callback(_left_behind.discard)
        log.error(
            "step_left_behind",
            worker=self.worker,
            step=what,
            stalled=stalled,
            reason="it did not unwind when cancelled",
            stack=await_chain(task),
            **self.context,
        )


def _other_threads() -> dict[str, list[str]]:
    """Stacks of the threads other than the event loop's (database drivers run their calls in
    threads of their own), innermost call last."""
    names = {t.ident: t.name for t in threading.enumerate()}
    current = threading.get_ident()
    return {
        names.get(ident, str(ident)): [
            f"{f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_stack(frame)
        ]
        for ident, frame in sys._current_frames().items()
        if ident != current
    }
