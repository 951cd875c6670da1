"""Where is a process stuck? Stacks of every thread and every asyncio task, on demand.

``kill -USR1 <pid>`` makes a ``stablegate`` process write to stderr (its log):

1. every thread's stack, from :mod:`faulthandler`, written by the signal handler itself, so it
   shows up even when the event loop is blocked by a synchronous call;
2. every asyncio task's await chain (outermost coroutine first, down to the future it waits
   on), written by the event loop once it gets to run the handler.

:func:`await_chain` is also what the watchdog logs for a stalled step.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import os
import signal
import sys
from types import CodeType, FrameType
from typing import Any, TextIO

import structlog

log = structlog.get_logger("stablegate.stacks")

DUMP_SIGNAL = signal.SIGUSR1
_MAX_DEPTH = 200  # a guard against cycles in hand-made awaitables


def await_chain(awaitable: Any) -> list[str]:
    """The frames a task or coroutine is suspended in, outermost first, as
    ``file:line in function`` lines; awaited tasks are followed, and the chain ends with
    what it waits on (a future, a task...).

    ``Task.print_stack`` shows only the outermost frame of a suspended task, which says
    nothing about where it waits; this follows ``cr_await`` down to the bottom.
    """
    lines: list[str] = []
    task = awaitable if isinstance(awaitable, asyncio.Task) else None
    current: Any = task.get_coro() if task is not None else awaitable
    for _ in range(_MAX_DEPTH):
        frame, inner = _frame_and_next(current)
        if frame is not None:
            lines.append(_frame_line(frame))
            if inner is not None:
                current = inner
                continue
        elif (
            current is not None
            and not _is_coroutine_like(current)
            and (task is None or not _is_future_iter(current))
        ):
            lines.append(f"-> awaits {_describe(current)}")
            break
        # The bottom of a task's coroutines: what the task itself waits on.
        waiter = getattr(task, "_fut_waiter", None) if task is not None else None
        if isinstance(waiter, asyncio.Task):
            lines.append(f"-> awaits task {waiter.get_name()!r}")
            task, current = waiter, waiter.get_coro()
            continue
        children = getattr(waiter, "_children", None)  # asyncio.gather's future
        if children is not None:
            pending = [c for c in children if isinstance(c, asyncio.Task) and not c.done()]
            lines.append(f"-> awaits gather ({len(pending)} of {len(children)} pending)")
            if pending:  # follow the first
                task, current = pending[0], pending[0].get_coro()
                continue
        elif waiter is not None:
            lines.append(f"-> awaits {_describe(waiter)}")
        break
    return lines


def _is_coroutine_like(obj: Any) -> bool:
    return any(hasattr(obj, attr) for attr in ("cr_frame", "gi_frame", "ag_frame"))


def _is_future_iter(obj: Any) -> bool:
    # A C-implemented future's __await__ (the task's _fut_waiter says which future).
    return type(obj).__qualname__ == "FutureIter"


def _describe(obj: Any) -> str:
    if isinstance(obj, asyncio.Future):
        state = "cancelled" if obj.cancelled() else "done" if obj.done() else "pending"
        return f"{type(obj).__qualname__} ({state})"
    return "a future" if _is_future_iter(obj) else type(obj).__qualname__


def _frame_and_next(obj: Any) -> tuple[FrameType | None, Any]:
    for frame_attr, await_attr in (
        ("cr_frame", "cr_await"),  # coroutines
        ("gi_frame", "gi_yieldfrom"),  # generator-based awaitables
        ("ag_frame", "ag_await"),  # async generators
    ):
        if hasattr(obj, frame_attr):
            return getattr(obj, frame_attr), getattr(obj, await_attr, None)
    return None, None


def _frame_line(frame: FrameType) -> str:
    code: CodeType = frame.f_code
    return f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"


def task_stacks() -> str:
    """Every task of the running loop with its await chain, as text."""
    parts = []
    for task in sorted(asyncio.all_tasks(), key=lambda t: t.get_name()):
        chain = "\n".join(f"    {line}" for line in await_chain(task)) or "    (not started)"
        parts.append(f"  task {task.get_name()!r}:\n{chain}")
    return "\n".join(parts)


def dump_task_stacks(file: TextIO | None = None) -> None:
    out = file or sys.stderr
    out.write(f"asyncio tasks of process {os.getpid()} (most recent await last):\n")
    out.write(task_stacks() + "\n")
    out.flush()


def install_stack_dump(file: TextIO | None = None) -> None:
    """SIGUSR1 dumps every thread's and every task's stack to ``file`` (stderr by default).
    Call from inside the running loop (a command's ``main``); a no-op where signals cannot be
    handled (Windows, a thread other than the main one)."""
    out = file or sys.stderr
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        log.info("stack_dump", pid=os.getpid(), tasks=len(asyncio.all_tasks()))
        dump_task_stacks(out)

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):
        loop.add_signal_handler(DUMP_SIGNAL, on_signal)
        # Installed second and chained: faulthandler writes the threads at once from C, then
        # hands the signal on to the loop's handler above for the tasks.
        faulthandler.register(DUMP_SIGNAL, file=out, all_threads=True, chain=True)
