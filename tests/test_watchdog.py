"""The watchdog abandons a step that makes no progress, logs where it was stuck, goes on."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from structlog.testing import capture_logs

from stablegate.stacks import await_chain
from stablegate.watchdog import StepStalled, Watchdog


async def _wait_forever(gate: asyncio.Event) -> str:
    await gate.wait()
    return "done"


async def _stuck_step(gate: asyncio.Event) -> str:
    return await _wait_forever(gate)


async def test_a_step_within_its_bound_returns_its_result() -> None:
    gate = asyncio.Event()
    gate.set()
    with capture_logs() as logs:
        assert await Watchdog("test", 5).run(lambda: _stuck_step(gate)) == "done"
    assert logs == []


async def test_a_stuck_step_is_cancelled_logged_with_its_stack_and_the_next_one_runs() -> None:
    gate = asyncio.Event()
    watchdog = Watchdog("test", 0.2, chain_id=7)
    with capture_logs() as logs:
        with pytest.raises(StepStalled):
            await watchdog.run(lambda: _stuck_step(gate), "scan")
        gate.set()
        assert await watchdog.run(lambda: _stuck_step(gate), "scan") == "done"
    [stalled] = [e for e in logs if e["event"] == "step_stalled"]
    assert stalled["worker"] == "test" and stalled["step"] == "scan" and stalled["chain_id"] == 7
    # The whole await chain, down to the line that waits, not only the outer coroutine.
    frames = [line.rsplit(" in ", 1)[1] for line in stalled["stack"] if " in " in line]
    assert frames[:2] == ["_stuck_step", "_wait_forever"]
    assert "wait" in frames
    assert stalled["log_level"] == "error"
    assert watchdog.stalled == 1


async def test_a_step_that_ignores_cancellation_is_left_behind_and_the_loop_goes_on() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()  # e.g. a rollback queued behind a stuck database call

    watchdog = Watchdog("test", 0.1, cancel_grace=0.1)
    with capture_logs() as logs:
        with pytest.raises(StepStalled):
            await watchdog.run(stubborn)
        assert await watchdog.run(lambda: asyncio.sleep(0, "next")) == "next"
    events = [e["event"] for e in logs]
    assert events == ["step_stalled", "step_left_behind"]
    left = next(e for e in logs if e["event"] == "step_left_behind")
    assert any(line.endswith(" in stubborn") for line in left["stack"])
    release.set()


async def test_a_stop_request_cancels_the_step_after_its_grace() -> None:
    stop = asyncio.Event()
    gate = asyncio.Event()
    watchdog = Watchdog("test", 60, stop=stop, stop_grace=0.1)
    step = asyncio.create_task(watchdog.run(lambda: _stuck_step(gate)))
    await asyncio.sleep(0)
    stop.set()
    with capture_logs() as logs, pytest.raises(asyncio.CancelledError):
        await step
    assert watchdog.stalled == 0 and logs == []  # a stop is not a stall


async def test_a_cancelled_caller_cancels_its_step() -> None:
    cancelled = asyncio.Event()

    async def step() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    outer = asyncio.create_task(Watchdog("test", 60).run(step))
    await asyncio.sleep(0.05)
    outer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await outer
    assert cancelled.is_set()


async def test_await_chain_follows_awaited_tasks() -> None:
    gate = asyncio.Event()
    inner = asyncio.create_task(_stuck_step(gate), name="inner")

    async def outer() -> str:
        return await inner

    task = asyncio.create_task(outer())
    await asyncio.sleep(0.01)
    chain = await_chain(task)
    assert chain[0].endswith(" in outer")
    assert "-> awaits task 'inner'" in chain
    assert any(line.endswith(" in _wait_forever") for line in chain)
    gate.set()
    assert await task == "done"


async def test_await_chain_follows_gather_into_a_pending_child() -> None:
    gate = asyncio.Event()

    async def outer() -> list[str]:
        return await asyncio.gather(asyncio.sleep(0, "x"), _stuck_step(gate))

    task = asyncio.create_task(outer())
    await asyncio.sleep(0.01)
    chain = await_chain(task)
    assert chain[0].endswith(" in outer")
    assert "-> awaits gather (1 of 2 pending)" in chain
    assert chain[-1].endswith(" in wait") or chain[-1].startswith("-> awaits")
    assert any(line.endswith(" in _wait_forever") for line in chain)
    gate.set()
    assert await task == ["x", "done"]
