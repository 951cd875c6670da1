"""The webhook claim with a long history and a burst pending: the claim query before the
``deliverable`` flag against the one now, on the same rows, with fresh and with stale statistics.

For each backend (PostgreSQL, SQLite), in a fresh database (dropped or deleted afterwards):

1. **History**: ``--delivered`` events (``--events-per-order`` per order) written by
   ``create_order`` and ``add_event``, then marked delivered in one statement, then ``ANALYZE``:
   the statistics of a long-running gateway, which say almost nothing is pending. On PostgreSQL
   autovacuum is off for ``webhook_events`` so that only this script decides when statistics are
   taken.
2. **Burst**: ``--burst`` more events, same per order, written the same way, all pending.
3. **Stale**: no ``ANALYZE`` after the burst. Timed, each in its own transaction rolled back
   (so every run sees the same rows): the previous claim SELECT (the ordering rule's NOT EXISTS,
   run with the index it had, ``ix_webhook_events_next_attempt_at_ms``, created for it and
   dropped before the new one runs), the claim SELECT now (``claim_due``'s, on the partial index
   of deliverable rows) and the whole ``claim_due`` (since issue 12 one statement: the SELECT as
   a subquery of the lease UPDATE, which returns the rows, URLs and stored secrets; the secrets
   opened with a cold cache), ``--limit`` rows each. ``EXPLAIN ANALYZE`` of both SELECTs is printed.
4. **Fresh**: ``ANALYZE``, then the same.
5. **Upkeep**: what the record step now adds per attempt, the order's row lock and the
   recomputation of its flags (``lock_orders`` + ``refresh``, after the order's head was marked
   delivered), and what ``add_event`` now reads (does an earlier event hold the new one),
   timed the same way.

The figure to read is the ratio previous / now within a run; times are medians.

Usage::

    .venv/bin/python bench/webhook_claim.py --backends postgres,sqlite

For ``postgres``, ``--postgres-url`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``
or ``STABLEGATE_BENCH_POSTGRES_URL``) must be allowed to CREATE DATABASE.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet
from sqlalchemy import Executable, Select, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from stablegate.api.app import build_context
from stablegate.api.context import GatewayContext
from stablegate.clock import SystemClock
from stablegate.config import Settings
from stablegate.db.engine import session_scope
from stablegate.logs import configure_logging
from stablegate.merchants.service import create_merchant
from stablegate.migrations import upgrade
from stablegate.models import WebhookEvent
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.service import create_order
from stablegate.orders.view import order_view
from stablegate.webhooks.claims import claim_due
from stablegate.webhooks.ordering import holds_next, lock_orders, refresh
from stablegate.webhooks.outbox import add_event
from stablegate.webhooks.schedule import ORDER_RELEASE_ATTEMPTS
from stablegate.webhooks.secret_cache import WebhookSecretCache

CHAIN_ID = 31337
USDT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
PAYOUT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
LATER_EVENTS = ("order.payment_seen", "order.confirming", "order.completed", "order.overpaid")
ORDERS_PER_TX = 50
OLD_INDEX = "ix_webhook_events_next_attempt_at_ms"  # the previous claim's index (until 0005)
OLD_INDEX_DDL = f"CREATE INDEX {OLD_INDEX} ON webhook_events (next_attempt_at_ms)"


def _with_database(url: str, name: str, scheme: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((scheme, parts.netloc, "/" + name, parts.query, ""))


async def _pg_admin(admin_url: str, sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(
        _with_database(admin_url, urlsplit(admin_url).path[1:], "postgresql")
    )
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@asynccontextmanager
async def fresh_gateway(
    backend: str, args: argparse.Namespace, tmp: Path
) -> AsyncIterator[tuple[GatewayContext, str]]:
    name = f"stablegate_bench_{secrets.token_hex(4)}"
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / (name + '.db')}"
    else:
        await _pg_admin(args.postgres_url, f'CREATE DATABASE "{name}"')
        url = _with_database(args.postgres_url, name, "postgresql+asyncpg")
    chains = tmp / "chains.toml"
    chains.write_text(
        f'[chains.{CHAIN_ID}]\nrpc_urls = ["http://127.0.0.1:1"]\n'
        f'tokens = [ {{ symbol = "USDT", address = "{USDT}", decimals = 6 }} ]\n'
    )
    settings = Settings(
        data_dir=tmp / f"data-{backend}",
        database_url=url,
        redis_url=None,
        chains_file=chains,
        secret_key=Fernet.generate_key().decode(),
        _env_file=None,  # type: ignore[call-arg]
    )
    ctx: GatewayContext | None = None
    try:
        ctx = build_context(settings, clock=SystemClock())
        await upgrade(ctx.engine)
        async with session_scope(ctx.sessions) as session:
            if backend == "postgres":
                await session.execute(
                    text("ALTER TABLE webhook_events SET (autovacuum_enabled = false)")
                )
            created = await create_merchant(
                session,
                ctx.secret_box,
                ctx.clock,
                name="Bench shop",
                payout_address=PAYOUT,
                chain_ids=[CHAIN_ID],
                notify_url="https://shop.example/hook",
            )
        yield ctx, created.merchant_id
    finally:
        if ctx is not None:
            await ctx.engine.dispose()
        if backend == "postgres":
            await _pg_admin(args.postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            for suffix in ("", "-wal", "-shm"):
                (tmp / f"{name}.db{suffix}").unlink(missing_ok=True)


async def write_events(ctx: GatewayContext, merchant_id: str, events: int, per_order: int) -> float:
    """``events`` outbox events, ``per_order`` per order, as the services write them; events/s."""
    started = time.perf_counter()
    orders = events // per_order
    req = CreateOrderRequest.model_validate(
        {"chainId": CHAIN_ID, "symbol": "USDT", "amount": "12.34", "expireSeconds": 86400}
    )
    for first in range(0, orders, ORDERS_PER_TX):
        async with session_scope(ctx.sessions) as session:
            for _ in range(min(ORDERS_PER_TX, orders - first)):
                order, _ = await create_order(
                    session, ctx.clock, ctx.orders, merchant_id=merchant_id, req=req
                )
                view = order_view(order, ctx.registry, ctx.settings.public_url)
                for event_type in LATER_EVENTS[: per_order - 1]:
                    await add_event(session, ctx.clock, order, event_type, view)
    return round(orders * per_order / (time.perf_counter() - started))


async def analyze(ctx: GatewayContext) -> None:
    async with ctx.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        if ctx.engine.dialect.name == "postgresql":
            await autocommit.execute(text("ANALYZE webhook_events"))
        else:
            await autocommit.execute(text("ANALYZE"))


async def ddl(ctx: GatewayContext, sql: str) -> None:
    async with ctx.engine.begin() as connection:
        await connection.execute(text(sql))


def previous_claim_select(now_ms: int, limit: int, postgres: bool) -> Select[Any]:
    """The claim SELECT before the flag, as claim_due built it (the rule worked out per row)."""
    earlier = aliased(WebhookEvent)
    held = (
        select(earlier.id)
        .where(
            earlier.order_id == WebhookEvent.order_id,
            earlier.sequence < WebhookEvent.sequence,
            earlier.status == "pending",
            earlier.attempts < ORDER_RELEASE_ATTEMPTS,
        )
        .exists()
    )
    lease_free = or_(WebhookEvent.lease_until_ms.is_(None), WebhookEvent.lease_until_ms < now_ms)
    query = (
        select(WebhookEvent.id)
        .where(WebhookEvent.status == "pending", WebhookEvent.next_attempt_at_ms <= now_ms)
        .where(lease_free, ~held)
        .order_by(WebhookEvent.next_attempt_at_ms, WebhookEvent.id)
        .limit(limit)
    )
    return query.with_for_update(skip_locked=True, of=WebhookEvent) if postgres else query


def current_claim_select(now_ms: int, limit: int, postgres: bool) -> Select[Any]:
    """claim_due's SELECT now (kept in step with webhooks/service.py)."""
    lease_free = or_(WebhookEvent.lease_until_ms.is_(None), WebhookEvent.lease_until_ms < now_ms)
    query = (
        select(WebhookEvent.id)
        .where(WebhookEvent.deliverable, WebhookEvent.next_attempt_at_ms <= now_ms, lease_free)
        .order_by(WebhookEvent.next_attempt_at_ms, WebhookEvent.id)
        .limit(limit)
    )
    return query.with_for_update(skip_locked=True, of=WebhookEvent) if postgres else query


async def timed(
    ctx: GatewayContext, runs: int, step: Callable[[AsyncSession], Awaitable[int]]
) -> dict[str, Any]:
    """Median and max ms of ``step``, each run in its own transaction, rolled back."""
    times, rows = [], 0
    for _ in range(runs):
        async with ctx.sessions() as session:
            await session.connection()  # the transaction (BEGIN IMMEDIATE on SQLite) is open
            started = time.perf_counter()
            rows = await step(session)
            times.append((time.perf_counter() - started) * 1000)
            await session.rollback()
    return {"medianMs": round(statistics.median(times), 3), "maxMs": round(max(times), 3)} | {
        "rows": rows,
        "runs": runs,
    }


async def explain(ctx: GatewayContext, query: Executable) -> str:
    dialect = ctx.engine.dialect
    compiled = query.compile(  # type: ignore[attr-defined]
        dialect=dialect, compile_kwargs={"literal_binds": True, "render_postcompile": True}
    )
    sql = str(compiled)
    async with ctx.sessions() as session:
        if dialect.name == "postgresql":
            lines = await session.scalars(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"))
            plan = "\n".join(lines.all())
        else:
            rows = await session.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
            plan = "\n".join(str(row[-1]) for row in rows.all())
        await session.rollback()
    return plan


async def counts(ctx: GatewayContext) -> dict[str, int]:
    async with ctx.sessions() as session:
        rows = await session.execute(
            select(WebhookEvent.status, WebhookEvent.deliverable, func.count()).group_by(
                WebhookEvent.status, WebhookEvent.deliverable
            )
        )
        out: dict[str, int] = {}
        for status, deliverable, count in rows.all():
            key = f"{status}{' deliverable' if deliverable else ''}"
            out[key] = out.get(key, 0) + int(count)
        return out


async def measure(ctx: GatewayContext, args: argparse.Namespace, label: str) -> dict[str, Any]:
    postgres = ctx.engine.dialect.name == "postgresql"
    now = ctx.clock.now_ms()
    old = previous_claim_select(now, args.limit, postgres)
    new = current_claim_select(now, args.limit, postgres)

    def run(query: Select[Any]) -> Callable[[AsyncSession], Awaitable[int]]:
        async def step(session: AsyncSession) -> int:
            return len((await session.scalars(query)).all())

        return step

    async def whole_claim(session: AsyncSession) -> int:
        # A fresh cache each run: every run opens the merchant's secret, as a cold worker does.
        claims = await claim_due(
            session,
            WebhookSecretCache(ctx.secret_box),
            now_ms=now,
            limit=args.limit,
            lease_ms=120_000,
        )
        return len(claims)

    out: dict[str, Any] = {"label": label}
    # The previous query runs with the index it had (made by the caller), dropped before the
    # new one runs.
    out["previousPlan"] = await explain(ctx, old)
    out["previous"] = await timed(ctx, args.old_runs, run(old))
    await ddl(ctx, f"DROP INDEX {OLD_INDEX}")
    out["currentPlan"] = await explain(ctx, new)
    out["current"] = await timed(ctx, args.runs, run(new))
    out["claimDue"] = await timed(ctx, args.runs, whole_claim)
    out["ratio"] = round(out["previous"]["medianMs"] / max(out["current"]["medianMs"], 1e-6), 1)
    out["upkeep"] = await upkeep(ctx, args)
    return out


async def upkeep(ctx: GatewayContext, args: argparse.Namespace) -> dict[str, Any]:
    """What the flag adds to recording an attempt and to add_event, with the plans of the
    statements it adds (and of the claim's lease UPDATE), on orders with a deliverable head."""
    async with ctx.sessions() as session:
        rows = await session.execute(
            select(WebhookEvent.order_id, WebhookEvent.id)
            .where(WebhookEvent.deliverable)
            .order_by(WebhookEvent.id)
            .limit(args.runs)
        )
        heads = [(order_id, event_id) for order_id, event_id in rows.all()]
    picks = iter(heads * 2)

    async def record_adds(session: AsyncSession) -> int:
        order_id, head = next(picks)
        await lock_orders(session, [order_id])
        # The head delivered (by id, as the worker's guarded UPDATE), then the flags recomputed.
        await session.execute(
            update(WebhookEvent).where(WebhookEvent.id == head).values(status="delivered")
        )
        await refresh(session, [order_id])
        return 1

    async def add_event_reads(session: AsyncSession) -> int:
        return int(await holds_next(session, next(picks)[0]))

    order_id = heads[0][0]
    now = ctx.clock.now_ms()
    async with ctx.sessions() as session:
        claimed = list(await session.scalars(current_claim_select(now, args.limit, False)))
        await session.rollback()
    lease_free = or_(WebhookEvent.lease_until_ms.is_(None), WebhookEvent.lease_until_ms < now)
    return {
        "recordAdds": await timed(ctx, len(heads), record_adds),
        "addEventReads": await timed(ctx, len(heads), add_event_reads),
        "refreshReadPlan": await explain(
            ctx,
            select(
                WebhookEvent.order_id,
                WebhookEvent.id,
                WebhookEvent.status,
                WebhookEvent.attempts,
                WebhookEvent.deliverable,
            )
            .where(WebhookEvent.order_id.in_([order_id]))
            .order_by(WebhookEvent.order_id, WebhookEvent.sequence),
        ),
        "leaseUpdatePlan": await explain(
            ctx,
            update(WebhookEvent)
            .where(WebhookEvent.id.in_(claimed), lease_free)
            .values(lease_until_ms=now + 120_000)
            .returning(WebhookEvent.id),
        ),
    }


async def run_backend(backend: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    async with fresh_gateway(backend, args, tmp) as (ctx, merchant_id):
        out: dict[str, Any] = {}
        per = args.events_per_order
        out["historyEventsPerSecond"] = await write_events(ctx, merchant_id, args.delivered, per)
        async with session_scope(ctx.sessions) as session:
            await session.execute(
                update(WebhookEvent).values(status="delivered", attempts=1, deliverable=False)
            )
        await analyze(ctx)
        # Made before the burst: building an index refreshes PostgreSQL's row count estimate.
        await ddl(ctx, OLD_INDEX_DDL)
        out["burstEventsPerSecond"] = await write_events(ctx, merchant_id, args.burst, per)
        out["rows"] = await counts(ctx)
        print(f"{backend}: {out['rows']}", flush=True)
        out["stale"] = await measure(ctx, args, "stale statistics (no ANALYZE after the burst)")
        await analyze(ctx)
        await ddl(ctx, OLD_INDEX_DDL)
        out["fresh"] = await measure(ctx, args, "fresh statistics (ANALYZE after the burst)")
        for key in ("stale", "fresh"):
            m = out[key]
            print(
                f"  {m['label']}: previous {m['previous']['medianMs']} ms, now "
                f"{m['current']['medianMs']} ms ({m['ratio']}x), whole claim_due "
                f"{m['claimDue']['medianMs']} ms",
                flush=True,
            )
        return out


def report(results: dict[str, Any]) -> None:
    print(f"\nmachine: {results['machine']}")
    print(f"args: {results['args']}")
    print(
        "\n  backend     statistics  pending  previous SELECT ms  now SELECT ms  previous / now"
        "  claim_due ms  (medians; max in brackets)"
    )
    for backend, out in results["backends"].items():
        pending = sum(v for k, v in out["rows"].items() if k.startswith("pending"))
        for key in ("stale", "fresh"):
            m = out[key]
            print(
                f"  {backend:10}  {key:10}  {pending:7}  "
                f"{m['previous']['medianMs']:>9} [{m['previous']['maxMs']}]"
                f"  {m['current']['medianMs']:>6} [{m['current']['maxMs']}]"
                f"  {m['ratio']:>8}x  {m['claimDue']['medianMs']:>8} [{m['claimDue']['maxMs']}]"
            )
    for backend, out in results["backends"].items():
        for key in ("stale", "fresh"):
            up = out[key]["upkeep"]
            adds, reads = up["recordAdds"], up["addEventReads"]
            print(
                f"\n{backend}, {key}: per attempt, lock the order + recompute its flags after its "
                f"head was delivered: {adds['medianMs']} ms median ({adds['maxMs']} max, "
                f"{adds['runs']} orders); add_event's read of the order's events: "
                f"{reads['medianMs']} ms median ({reads['maxMs']} max)"
            )
        print(
            f"{backend}: writing events {out['historyEventsPerSecond']} /s (history), "
            f"{out['burstEventsPerSecond']} /s (burst); rows {out['rows']}"
        )
        for key in ("stale", "fresh"):
            m = out[key]
            print(f"\n{backend}, {m['label']}, previous claim SELECT:\n{m['previousPlan']}")
            print(f"\n{backend}, {m['label']}, claim SELECT now:\n{m['currentPlan']}")
            print(
                f"\n{backend}, {m['label']}, claim's lease UPDATE:\n"
                + m["upkeep"]["leaseUpdatePlan"]
            )
            print(f"\n{backend}, {m['label']}, refresh's read:\n{m['upkeep']['refreshReadPlan']}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
        },
        "args": {
            "delivered": args.delivered,
            "burst": args.burst,
            "eventsPerOrder": args.events_per_order,
            "limit": args.limit,
            "runs": args.runs,
            "previousRuns": args.old_runs,
        },
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="stablegate-bench-") as tmp:
        for backend in args.backends:
            results["backends"][backend] = await run_backend(backend, args, Path(tmp))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="postgres,sqlite", help="postgres,sqlite")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "STABLEGATE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a server where this user may CREATE DATABASE (a fresh one is created and dropped)",
    )
    parser.add_argument("--delivered", type=int, default=20_000, help="history: events")
    parser.add_argument("--burst", type=int, default=8_000, help="burst: pending events")
    parser.add_argument("--events-per-order", type=int, default=4, choices=range(1, 6))
    parser.add_argument("--limit", type=int, default=100, help="rows per claim (worker batch)")
    parser.add_argument("--runs", type=int, default=30, help="timed runs of the new claim")
    parser.add_argument("--old-runs", type=int, default=3, help="timed runs of the previous one")
    parser.add_argument("--json-out", type=Path, help="also write the JSON figures here")
    args = parser.parse_args()
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(args.backends) - {"sqlite", "postgres"}:
        parser.error("--backends takes postgres and/or sqlite")
    configure_logging("json", "WARNING")
    started = time.perf_counter()
    results = asyncio.run(run(args))
    results["wallSeconds"] = round(time.perf_counter() - started, 1)
    report(results)
    line = json.dumps(results, separators=(",", ":"))
    if args.json_out:
        args.json_out.write_text(line + "\n")
    print(f"\ntotal {results['wallSeconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
