"""The watcher process is SIGKILLed at random moments while hundreds of payments arrive.

``stablegate watch`` runs as a subprocess on a SQLite file; blocks keep coming (one every
~50 ms, each one chain-second after its parent) with many transfers packed per block. After each
kill a new process starts: half the time the dead holder's lease row is expired by hand (what
an expired lease looks like), half the time the successor waits out the short lease TTL
(``STABLEGATE_WATCHER_LEASE_TTL_MS``). In the end every transfer is one final payment row, every
order holds exactly what was sent to it (checked against ``balanceOf`` too), is in the state the
spec gives for those amounts and block times, and its outbox is a sequence a watcher without
faults could have written: numbered 1..n, one ``order.completed`` at most.

Replay a run with ``STABLEGATE_FAULT_SEED=<seed printed by the test>``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from tests.faults.fault_support import (
    ChainDriver,
    GatewayDb,
    PaymentRun,
    WatcherProcess,
    balances_of,
    check_orders,
    fault_seed,
    plan_orders,
    wait_for,
    watcher_env,
    write_chains_file,
)

from stablegate.chain.anvil import ANVIL_DEFAULT_KEYS, AnvilNode
from stablegate.chain.evm.deploy import DeployedContracts
from stablegate.chain.evm.rpc import RpcClient
from stablegate.models import WebhookEvent

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

WAVES = 10
ORDERS_PER_WAVE = 15
MIN_PAYMENTS = 520
MIN_ACTIVE_KILLS = 10  # kills of the process holding the lease (more kills in all)
LEASE_TTL_MS = 2000


async def test_watcher_killed_at_random_moments_credits_every_payment_once(
    tmp_path: Path,
    anvil: AnvilNode,
    rpc: RpcClient,
    gateway_contracts: DeployedContracts,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
    deployer_account: LocalAccount,
    clean_chain: None,
) -> None:
    started = time.monotonic()
    seed = fault_seed("watcher_kill")
    rng = random.Random(seed)
    chains_file = write_chains_file(
        tmp_path / "chains.toml",
        [anvil.url],
        gateway_contracts.factory,
        gateway_contracts.implementation,
        dev_tokens,
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    db = await GatewayDb.open(url, chains_file)
    extra: list[LocalAccount] = [Account.from_key(key) for key in ANVIL_DEFAULT_KEYS[4:7]]
    driver = ChainDriver(rpc, dev_tokens, [*customer_accounts, *extra])
    env = watcher_env(url, chains_file, tmp_path / "data", lease_ttl_ms=LEASE_TTL_MS)
    run = PaymentRun(db, driver, rng)

    waves = [
        plan_orders(rng, ORDERS_PER_WAVE, prefix=f"w{wave}", max_payments=8)
        for wave in range(WAVES)
    ]
    redraws = 0
    while sum(p.payment_count() for wave in waves for p in wave) < MIN_PAYMENTS:
        redraws += 1
        index = rng.randrange(WAVES)
        waves[index] = plan_orders(
            rng, ORDERS_PER_WAVE, prefix=f"w{index}r{redraws}", max_payments=8
        )

    processes: list[WatcherProcess] = []
    kills: list[dict[str, object]] = []
    holders: list[tuple[float, str, int]] = []  # (time, holder, epoch) whenever it changes
    payments_done = asyncio.Event()
    stop_monitor = asyncio.Event()

    def start_watcher() -> WatcherProcess:
        process = WatcherProcess(f"watcher-{len(processes)}", env, tmp_path).start()
        processes.append(process)
        return process

    async def monitor_lease() -> None:
        while not stop_monitor.is_set():
            lease = await db.lease()
            if lease is not None and (
                not holders or holders[-1][1:] != (lease.holder, lease.epoch)
            ):
                holders.append((time.monotonic(), lease.holder, lease.epoch))
            await asyncio.sleep(0.05)

    async def kill_at_random() -> None:
        process = start_watcher()
        while not (payments_done.is_set() and active_kills() >= MIN_ACTIVE_KILLS):
            if rng.random() < 0.2:
                # Any moment of its life: starting up, migrating, standing by, working.
                await asyncio.sleep(rng.uniform(0.05, 2.0))
            else:
                # A random moment of its work as the lease holder.
                await wait_for(_holds(db, process), 30, f"{process.name} to take the lease")
                await asyncio.sleep(rng.uniform(0.0, 2.0))
            lease = await db.lease()
            lines = process.logs()
            held = process.holds(lease)
            process.kill()
            expire = len(kills) % 2 == 0
            expired = await db.expire_lease(process.pid) if expire else False
            kills.append(
                {
                    "at": time.monotonic(),
                    "pid": process.pid,
                    "held_lease": held,
                    "alive_s": round(time.monotonic() - process.started_at, 2),
                    "last_log": lines[-1].get("event") if lines else None,
                    "lease_expired_by_hand": expired,
                }
            )
            # Now and then stay down long enough for blocks (and payments) to become final
            # unseen: the next watcher backfills final ranges.
            long_down = rng.random() < 0.25
            kills[-1]["down_s"] = downtime = (
                rng.uniform(3.5, 6.0) if long_down else rng.uniform(0, 0.5)
            )
            await asyncio.sleep(downtime)
            process = start_watcher()

    def active_kills() -> int:
        return sum(1 for k in kills if k["held_lease"])

    async def pay() -> None:
        all_sent = asyncio.Event()
        follow_up = asyncio.create_task(run.follow_up(all_sent))
        for wave in waves:
            await run.wave(wave)
            await asyncio.sleep(rng.uniform(1.5, 3.0))
        all_sent.set()
        await run.finish_follow_up(follow_up, 90)  # payments waiting for a status
        payments_done.set()

    monitor = asyncio.create_task(monitor_lease())
    try:
        await driver.setup(deployer_account, mint_to=extra)
        driver.start_miner(0.05)
        await asyncio.wait_for(asyncio.gather(kill_at_random(), pay()), 200)
        # The last process runs undisturbed until everything is final and settled.
        final_process = processes[-1]
        try:
            await wait_for(run.settled, 90, "every order to settle", interval=0.5)
            head = await driver.head()
            await wait_for(lambda: _cursor_at_least(db, head), 30, "the watcher to reach the head")
            settled = True
        except AssertionError:
            settled = False  # report what is wrong below, not only that it took too long
        await driver.stop_miner()
        assert await final_process.terminate() == 0
        stop_monitor.set()
        await monitor

        times = await driver.resolve_blocks()
        orders = await db.orders()
        payments = await db.payments()
        events = await db.events()
        balances = await balances_of(driver, run.plans, driver.sent)
        problems = check_orders(run.plans, driver.sent, times, orders, payments, events, balances)

        lease = await db.lease()
        state = await db.chain_state()
        assert lease is not None and state is not None
        assert state.epoch == lease.epoch, "chain_state is fenced by the lease epoch"
        tracebacks = [
            (p.name, line["raw"]) for p in processes for line in p.logs() if "raw" in line
        ]
        fenced = sum(len(p.events("watcher_fenced")) for p in processes)
        failed_steps = sum(len(p.events("watcher_step_failed")) for p in processes)
        stalls = [
            (p.name, line)
            for p in processes
            for name in ("step_stalled", "step_left_behind")
            for line in p.events(name)
        ]
        takeovers = _takeover_delays(kills, holders)
        by_hand = [d for d, k in takeovers if k["lease_expired_by_hand"]]
        by_ttl = [d for d, k in takeovers if not k["lease_expired_by_hand"]]
        summary = {
            "seed": seed,
            "orders": len(run.plans),
            "payments": len(driver.sent),
            "blocks_mined": driver.blocks_mined,
            "kills": len(kills),
            "kills_while_holding_lease": sum(1 for k in kills if k["held_lease"]),
            "watcher_processes": len(processes),
            "lease_epochs": lease.epoch,
            # Orders completed without a payment_seen: their payments were first scanned when
            # already final, i.e. while a restarted watcher was catching up.
            "completed_seen_unfinal": sum(
                1
                for rows in events.values()
                if _types(rows)[-1:] == ["order.completed"] and "order.payment_seen" in _types(rows)
            ),
            "completed_first_seen_final": sum(
                1
                for rows in events.values()
                if "order.completed" in _types(rows) and "order.payment_seen" not in _types(rows)
            ),
            "fenced_steps": fenced,
            "failed_steps": failed_steps,
            "stalled_steps": len(stalls),
            "restart_to_lease_s_row_expired": _spread(by_hand),
            "restart_to_lease_s_ttl": _spread(by_ttl),
            "runtime_s": round(time.monotonic() - started, 1),
        }
        print(f"watcher kill summary: {summary}")
        for kill in kills:
            print(f"  kill: {kill}")
        assert not problems, f"seed {seed}: {len(problems)} problems:\n" + "\n".join(problems[:40])
        assert settled, f"seed {seed}: the orders did not settle"
        assert len(driver.sent) >= 500
        assert active_kills() >= MIN_ACTIVE_KILLS, kills
        assert not tracebacks, tracebacks[:20]
        assert not stalls, f"seed {seed}: steps stuck (with their stacks): {stalls[:5]}"
    except BaseException:
        for process in processes:
            if process.alive:  # where is it? (a hung process says so before it is killed)
                await process.dump_stacks()
        raise
    finally:
        stop_monitor.set()
        for process in processes:
            process.kill()
        if not monitor.done():
            await monitor
        await driver.restore()
        await db.close()


def _holds(db: GatewayDb, process: WatcherProcess) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return process.holds(await db.lease())

    return check


async def _cursor_at_least(db: GatewayDb, block: int) -> bool:
    state = await db.chain_state()
    return state is not None and state.cursor_number >= block and state.final_number > 0


def _takeover_delays(
    kills: list[dict[str, object]], holders: list[tuple[float, str, int]]
) -> list[tuple[float, dict[str, object]]]:
    """Seconds from the start of the process after each kill of a lease holder to the lease
    changing hands (process start-up, plus the rest of the TTL when the row was not expired)."""
    delays = []
    for kill in kills:
        if not kill["held_lease"]:
            continue
        at = float(kill["at"]) + float(kill["down_s"])  # type: ignore[arg-type]
        after = [t for t, holder, _ in holders if t > at and f":{kill['pid']}:" not in holder]
        if after:
            delays.append((round(after[0] - at, 2), kill))
    return delays


def _types(rows: list[WebhookEvent]) -> list[str]:
    return [row.type for row in rows]


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return (
        f"n={len(ordered)} min={ordered[0]} median={ordered[len(ordered) // 2]} max={ordered[-1]}"
    )
