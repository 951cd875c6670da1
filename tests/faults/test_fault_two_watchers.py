"""Two ``stablegate watch`` processes for one chain on one database (SQLite and PostgreSQL):
one holds the lease and works, the other stands by and takes over when the first dies or
freezes; a frozen holder that wakes up after the takeover is fenced and writes nothing.
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
from tests.faults.fault_support import QUICK_MIX, FaultHarness, WatcherProcess, log_time, wait_for
from tests.rpc_fault_proxy import FaultProxy

pytestmark = pytest.mark.anvil

LEASE_TTL_MS = 3000
WORK_EVENTS = ("watcher_step", "payment_recorded", "order_settled", "watcher_initialised", "reorg")


async def _steps_seen(process: WatcherProcess, count: int = 1) -> bool:
    return len([e for e in process.events("watcher_step") if e.get("transfers")]) >= count


def _work(process: WatcherProcess, *, after: float = 0.0) -> list[dict[str, object]]:
    return [
        line
        for line in process.logs()
        if line.get("event") in WORK_EVENTS and log_time(line) >= after
    ]


async def test_standby_takes_over_from_a_killed_watcher(harness: FaultHarness) -> None:
    started = time.monotonic()
    env = harness.env(lease_ttl_ms=LEASE_TTL_MS)
    harness.driver.start_miner(0.1)
    first = harness.start("first", env)
    await harness.wait_holder(first)
    second = harness.start("second", env)
    await harness.wave(6, QUICK_MIX)
    await wait_for(lambda: _steps_seen(first), 20, "the holder to credit a step")
    await asyncio.sleep(2)  # both running: the second must stay in standby

    lease = await harness.db.lease()
    state = await harness.db.chain_state()
    assert lease is not None and first.holds(lease) and lease.epoch == 1
    assert state is not None and state.epoch == lease.epoch
    assert _work(first), "the holder works"
    assert not _work(second), "the standby writes nothing"
    assert not second.events("finality_mode"), "the standby never steps"

    # (1) SIGKILL, the row untouched: the standby waits out the lease TTL, then takes over.
    expires_at_ms = lease.expires_at_ms
    killed_at = time.monotonic()
    first.kill()
    await harness.wave(6, QUICK_MIX)
    ttl_takeover = await harness.wait_holder(second, within=LEASE_TTL_MS / 1000 + 10)
    taken = await harness.db.lease()
    assert taken is not None and taken.epoch == 2
    assert time.time() * 1000 >= expires_at_ms, "taken only after the lease expired"
    took_s = time.monotonic() - killed_at
    assert took_s <= LEASE_TTL_MS / 1000 + 2.5, took_s
    await wait_for(lambda: _steps_seen(second), 20, "the new holder to credit a step")

    # (2) SIGKILL, then the row is expired by hand (as a clean release does): at once.
    third = harness.start("third", env)
    await wait_for(lambda: third.events("watcher_started"), 20, "the third process to start")
    await asyncio.sleep(1)  # it stands by
    assert not _work(third)
    second.kill()
    assert await harness.db.expire_lease(second.pid)
    released_at = time.monotonic()
    await harness.wave(6, QUICK_MIX)
    await harness.wait_holder(third, within=10)
    fast_takeover = time.monotonic() - released_at
    assert fast_takeover <= 2.5, fast_takeover

    figures = await harness.verify()
    lease = await harness.db.lease()
    state = await harness.db.chain_state()
    assert lease is not None and state is not None
    assert third.holds(lease) and lease.epoch == 3 and state.epoch == 3
    # Work never overlaps: each process logs work only while it held the lease.
    first_end = max(log_time(e) for e in _work(first))
    second_work = _work(second)
    assert min(log_time(e) for e in second_work) > first_end
    assert min(log_time(e) for e in _work(third)) > max(log_time(e) for e in second_work)
    print(
        f"two watchers ({harness.database_url.split(':')[0]}): {figures},"
        f" takeover after SIGKILL with TTL {LEASE_TTL_MS} ms: {ttl_takeover:.2f}s"
        f" (from kill {took_s:.2f}s), with the row expired: {fast_takeover:.2f}s,"
        f" runtime {time.monotonic() - started:.1f}s"
    )


async def test_frozen_watcher_is_fenced_after_the_takeover(harness: FaultHarness) -> None:
    """SIGSTOP the holder in the middle of a step (its eth_getLogs hangs in a proxy, so it is
    outside any database transaction), let the standby take over and work, then SIGCONT it:
    its step must be fenced and it must write nothing, while payments keep arriving."""
    started = time.monotonic()
    with FaultProxy(harness.upstream_url, seed=harness.seed) as proxy:
        env_frozen = harness.env(harness.chains_file("via-proxy", [proxy.url]), LEASE_TTL_MS)
        env_direct = harness.env(lease_ttl_ms=LEASE_TTL_MS)
        harness.driver.start_miner(0.1)
        old = harness.start("old", env_frozen)
        await harness.wait_holder(old)
        new = harness.start("new", env_direct)
        await wait_for(lambda: new.events("watcher_started"), 20, "the standby to start")
        await harness.wave(6, QUICK_MIX)
        await wait_for(lambda: _steps_seen(old), 20, "the holder to credit a step")
        assert not _work(new)

        # Hold the holder inside a step: its next eth_getLogs never gets an answer.
        proxy.set_policy(timeout_rate=1.0, only_methods=["eth_getLogs"], hang_seconds=120)
        before = await harness.holder()
        assert before is not None and old.holds(await harness.db.lease())
        old_epoch = before[1]
        await harness.wave(6, QUICK_MIX)
        await wait_for(lambda: proxy.injected["timeout"] >= 1, 20, "a hanging eth_getLogs")
        old.signal(signal.SIGSTOP)
        stopped_wall = time.time()
        assert await harness.db.can_write_now(), "the frozen process holds no database lock"

        takeover = await harness.wait_holder(new, within=LEASE_TTL_MS / 1000 + 15)
        lease = await harness.db.lease()
        assert lease is not None and lease.epoch == old_epoch + 1
        await harness.wave(6, QUICK_MIX)
        await wait_for(lambda: _steps_seen(new, 2), 20, "the new holder to credit steps")

        # Wake the old holder: its step goes on with fresh answers and reaches its write.
        proxy.set_policy(timeout_rate=0.0)
        resumed_wall = time.time()
        old.signal(signal.SIGCONT)
        fenced = await wait_for(
            lambda: [e for e in old.events("watcher_fenced") if log_time(e) >= resumed_wall],
            30,
            "the resumed watcher to be fenced",
        )
        await harness.wave(6, QUICK_MIX)
        figures = await harness.verify()
        await asyncio.sleep(1)  # time for a stray write of the old process to show

        assert f"lease epoch is {old_epoch + 1}, ours is {old_epoch}" in str(fenced[0]["detail"])
        assert not _work(old, after=stopped_wall), _work(old, after=stopped_wall)
        lease = await harness.db.lease()
        state = await harness.db.chain_state()
        assert lease is not None and state is not None
        assert new.holds(lease) and lease.epoch == old_epoch + 1
        assert state.epoch == old_epoch + 1
        assert old.alive, "fenced, not crashed"
        # Every payment row was written once, by exactly one process; after the freeze only
        # by the new holder.
        recorded: dict[str, list[tuple[str, float]]] = {}
        for process in (old, new):
            for line in process.events("payment_recorded"):
                recorded.setdefault(str(line["tx_hash"]).lower(), []).append(
                    (process.name, log_time(line))
                )
        payments = await harness.db.payments()
        assert sorted(recorded) == sorted(p.tx_hash.lower() for p in payments)
        assert all(len(writers) == 1 for writers in recorded.values()), recorded
        late_writers = {w for writers in recorded.values() for w, t in writers if t > stopped_wall}
        assert late_writers == {"new"}, late_writers
        print(
            f"frozen watcher ({harness.database_url.split(':')[0]}): {figures},"
            f" takeover {takeover:.2f}s after SIGSTOP (lease TTL {LEASE_TTL_MS} ms),"
            f" frozen {resumed_wall - stopped_wall:.1f}s, fenced: {fenced[0]['detail']},"
            f" proxy {dict(proxy.injected)}, runtime {time.monotonic() - started:.1f}s"
        )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_clean_shutdown_hands_the_lease_over_at_once(harness: FaultHarness) -> None:
    """SIGTERM is a clean stop: the holder should release its lease, so the standby takes over
    at once instead of after the TTL (15 s by default).

    BUG: ``ChainWatcher.run_forever`` (watcher/loop.py) returns on ``stop`` without calling
    ``leases.release``; the released row (expires_at_ms = 0) never happens, so every
    rolling restart leaves the chain unwatched for up to the TTL."""
    env = harness.env()  # the default lease TTL
    harness.driver.start_miner(0.1)
    first = harness.start("first", env)
    await harness.wait_holder(first)
    second = harness.start("second", env)
    await asyncio.sleep(2)
    assert await first.terminate() == 0
    assert first.events("watcher_stopped")
    # Released: either still free, or already taken by the standby (which polls every second)
    # well before the 15 s TTL of the stopped holder could have run out.
    await harness.wait_holder(second, within=3)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_takeover_with_the_default_lease_ttl(harness: FaultHarness) -> None:
    """A real takeover with the production default (15 s TTL), the lease row untouched."""
    env = harness.env()
    harness.driver.start_miner(0.1)
    first = harness.start("first", env)
    await harness.wait_holder(first)
    second = harness.start("second", env)
    await harness.wave(4, QUICK_MIX)
    await wait_for(lambda: _steps_seen(first), 20, "the holder to credit a step")
    lease = await harness.db.lease()
    assert lease is not None
    first.kill()
    killed_at = time.monotonic()
    left_s = (lease.expires_at_ms - time.time() * 1000) / 1000
    took = await harness.wait_holder(second, within=25)
    assert left_s - 0.5 <= took <= left_s + 2.5, (took, left_s)
    figures = await harness.verify()
    print(
        f"default TTL takeover: {time.monotonic() - killed_at:.2f}s after SIGKILL"
        f" (lease had {left_s:.1f}s left), {figures}"
    )
