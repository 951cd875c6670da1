"""Webhook delivery figures: the real WebhookWorker against a bare HTTP loop, and live latency.

For each backend (SQLite embedded, PostgreSQL in a fresh database dropped afterwards), in one run:

1. **Burst**: ``--orders`` orders made with ``create_order``, each with ``--events-per-order``
   outbox events (``order.created`` plus later ones written with ``add_event``), so the
   per-order ordering rule holds every order's event n+1 until event n is delivered. One
   ``WebhookWorker.run_forever`` (defaults: ``max_in_flight`` 64, ``max_per_host`` 4, poll 0.25 s)
   delivers them over real HTTP on loopback, signed (V1 ECDSA + V2 HMAC), with one delivery
   row per attempt. Deliveries/s = events / (worker start -> last attempt recorded).
   The same burst is then delivered again (events reset as a resend would) with
   ``max_in_flight=16``: one host's backlog limit (4 x 4) is then never exceeded, so no claimed
   row is handed back (due again a second later); the difference is what the hand-backs cost.
   On PostgreSQL autovacuum is off for ``webhook_events`` (so its one-minute naptime does not
   decide mid-run when statistics are taken), and a third run follows ``VACUUM (ANALYZE)``
   (before the ``deliverable`` flag, the claim's NOT EXISTS ran as a nested loop over every
   pending row for every pending row without statistics; ``bench/webhook_claim.py`` measures
   the claim alone).
2. **Baseline**, same run, same receiver: the same request bodies POSTed by a bare
   ``httpx.AsyncClient`` (the worker's client limits), 4 at a time like the worker's per-host
   limit, no database, no signing. The ratio worker / baseline is the figure to compare.
3. **Live**: ``run_forever`` idles while a producer makes ``--rate`` orders a second for
   ``--live-seconds`` (each one transaction that writes the order and its ``order.created``
   outbox row); per event, the receiver's arrival time of the first attempt minus the wall time
   right after that transaction committed (``time.time()`` in both processes). Run once per
   ``--live-polls`` value (1 s and 0.1 s; the worker's default is 0.25 s).
4. **Steps**: the CPU of signing, a claim (16 rows, 1 row) and recording a success, one at a
   time, in this process (a record transaction of one attempt: under load the worker records
   many per transaction, and the burst table counts its record transactions).

The receiver is a separate process (uvicorn, uvloop, httptools, a raw ASGI app answering 204)
that stamps each arrival; afterwards every signed request's V2 and V1 signatures are checked, as
are the count (every event delivered once), the per-order order of arrival, and the database
(every event ``delivered``, one ``success`` delivery row each). Any mismatch makes the run
invalid (exit code 1).

Usage::

    .venv/bin/python bench/webhooks.py --backends sqlite,postgres

For ``postgres``, ``--postgres-url`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``
or ``STABLEGATE_BENCH_POSTGRES_URL``) must be allowed to CREATE DATABASE. The worker, the
receiver and PostgreSQL share the machine's cores: compare ratios within a run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import platform
import secrets
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import event, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from spy_record import py_spy_record
from stablegate.api.app import build_context
from stablegate.api.context import GatewayContext
from stablegate.clock import SystemClock
from stablegate.config import Settings
from stablegate.db.engine import make_engine, make_sessionmaker, read_scope, session_scope
from stablegate.logs import configure_logging
from stablegate.merchants.service import create_merchant
from stablegate.migrations import upgrade
from stablegate.models import WebhookDelivery, WebhookEvent
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.service import create_order
from stablegate.orders.view import order_view
from stablegate.webhooks.claims import Claim
from stablegate.webhooks.ordering import refresh
from stablegate.webhooks.outbox import add_event
from stablegate.webhooks.recording import AttemptResult
from stablegate.webhooks.service import Outcome
from stablegate.webhooks.signing import webhook_body, webhook_headers
from stablegate.webhooks.worker import CLIENT_LIMITS, WebhookWorker, default_client

CHAIN_ID = 31337
USDT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
PAYOUT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
LATER_EVENTS = ("order.payment_seen", "order.confirming", "order.completed", "order.overpaid")
PER_HOST = 4  # docs/DESIGN.md §8: at most 4 concurrent deliveries per receiving host
SEED_ORDERS_PER_TX = 25
STEP_EVENTS = 320  # one-event orders for the step costs
# Burst runs: label, WebhookWorker options, PostgreSQL statistics taken first (PostgreSQL only).
# max_in_flight=16 = the per-host backlog (4 x max_per_host): no claimed row is handed back.
BURSTS: tuple[tuple[str, dict[str, Any], bool], ...] = (
    ("defaults", {}, False),
    ("max_in_flight=16", {"max_in_flight": 16}, False),
    ("max_in_flight=16, ANALYZE", {"max_in_flight": 16}, True),
)


# -- the receiver (a separate process) --------------------------------------------------------


class ReceiverApp:
    """Raw ASGI: every POST is stamped with ``time.time()`` on arrival and answered 204.

    ``GET /records`` hands over (and forgets) what arrived since the last call: signed
    requests in full, for checking afterwards; unsigned (baseline) ones only counted.
    """

    def __init__(self) -> None:
        self.signed: list[list[Any]] = []
        self.unsigned = 0
        self.connections: set[tuple[str, int]] = set()  # client (address, port) seen

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        arrived = time.time()
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        if scope["method"] == "POST":
            self.connections.add(tuple(scope["client"] or ("", 0)))
            headers = dict(scope["headers"])
            event_id = headers.get(b"webhook-id")
            if event_id is None:
                self.unsigned += 1
            else:
                self.signed.append(
                    [
                        arrived,
                        event_id.decode(),
                        headers.get(b"blockatm-request-time", b"").decode(),
                        headers.get(b"blockatm-signature-v2", b"").decode(),
                        headers.get(b"blockatm-signature-v1", b"").decode(),
                        headers.get(b"blockatm-key-id", b"").decode(),
                        b"".join(chunks).decode(),
                    ]
                )
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        payload = b"ok"
        if scope["path"] == "/records":
            payload = json.dumps(
                {
                    "signed": self.signed,
                    "unsigned": self.unsigned,
                    "connections": len(self.connections),
                }
            ).encode()
            self.signed, self.unsigned, self.connections = [], 0, set()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def serve_receiver(port: int) -> None:
    import uvicorn

    config = uvicorn.Config(
        ReceiverApp(),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level="warning",
        access_log=False,
    )
    uvicorn.Server(config).run()


@dataclass
class Hit:
    arrived: float
    event_id: str
    request_time: str
    v2: str
    v1: str
    key_id: str
    body: str


@dataclass
class Arrivals:
    signed: list[Hit]
    unsigned: int
    connections: int  # distinct TCP connections the POSTs came on


class Receiver:
    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Receiver:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-receiver", str(self.port)]
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{self.base}/ready", timeout=1).raise_for_status()
                return self
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the receiver did not start") from None
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def take(self) -> Arrivals:
        """What arrived since the last call (the receiver forgets it)."""
        async with httpx.AsyncClient(timeout=30) as client:
            data = (await client.get(f"{self.base}/records")).json()
        return Arrivals(
            [Hit(*row) for row in data["signed"]], int(data["unsigned"]), int(data["connections"])
        )


# -- CPU accounting ----------------------------------------------------------------------------


def _machine_busy_s() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _process_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu() -> dict[int, float]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    found[int(entry.name)] = _process_cpu_s(int(entry.name))
    return found


class CpuMeter:
    """Busy CPU during a phase, in % of one core: this process (the worker), the receiver,
    PostgreSQL (all its processes) and everything else on the machine."""

    def __init__(self, receiver_pid: int) -> None:
        self.receiver_pid = receiver_pid
        self.figures: dict[str, float] = {}

    def __enter__(self) -> CpuMeter:
        self.start = (
            time.monotonic(),
            _machine_busy_s(),
            _process_cpu_s(os.getpid()),
            _process_cpu_s(self.receiver_pid),
            _postgres_cpu(),
        )
        return self

    def __exit__(self, *exc: object) -> None:
        wall, busy, own, receiver, pg = self.start
        seconds = max(1e-9, time.monotonic() - wall)
        pg_now = _postgres_cpu()
        pg_s = sum(cpu - pg.get(pid, 0.0) for pid, cpu in pg_now.items())
        own_s = _process_cpu_s(os.getpid()) - own
        receiver_s = _process_cpu_s(self.receiver_pid) - receiver
        busy_s = _machine_busy_s() - busy
        self.cpu_s = {"bench": own_s, "receiver": receiver_s, "postgres": pg_s}
        self.figures = {
            "benchPct": round(100 * own_s / seconds),
            "receiverPct": round(100 * receiver_s / seconds),
            "postgresPct": round(100 * pg_s / seconds),
            "otherPct": round(max(0.0, 100 * (busy_s - own_s - receiver_s - pg_s) / seconds)),
        }

    def ms_per(self, count: int) -> dict[str, float]:
        return {k: round(1000 * v / max(1, count), 3) for k, v in self.cpu_s.items()}


def wait_for_quiet(limit_pct: float, max_wait_s: float) -> float:
    """Waits until other jobs use less than ``limit_pct`` of a core (or gives up)."""
    deadline = time.monotonic() + max_wait_s
    while True:
        before = _machine_busy_s()
        time.sleep(1.0)
        load = 100 * (_machine_busy_s() - before)
        if load <= limit_pct or time.monotonic() >= deadline:
            break
    if load > limit_pct:
        print(f"  !! the machine is busy ({load:.0f}% of a core) before this phase", flush=True)
    return load


# -- databases -------------------------------------------------------------------------------


def _with_database(url: str, name: str, scheme: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((scheme, parts.netloc, "/" + name, parts.query, ""))


async def _pg_admin(admin_url: str, sql: str) -> str:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(
        _with_database(admin_url, urlsplit(admin_url).path[1:], "postgresql")
    )
    try:
        if sql.upper().startswith("SELECT"):
            return str(await connection.fetchval(sql))
        await connection.execute(sql)
        return ""
    finally:
        await connection.close()


@dataclass
class Gateway:
    ctx: GatewayContext
    settings: Settings
    merchant_id: str
    webhook_secret: str = field(repr=False)
    probe: AsyncEngine  # a second engine: bench reads never queue on the worker's pool

    @property
    def reads(self) -> async_sessionmaker[AsyncSession]:
        return make_sessionmaker(self.probe)


@asynccontextmanager
async def fresh_gateway(
    backend: str, args: argparse.Namespace, tmp: Path, notify_url: str
) -> AsyncIterator[Gateway]:
    """A migrated database, the gateway's context and one merchant whose notifyUrl is the
    receiver; the database is dropped (PostgreSQL) or deleted afterwards."""
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
        allow_private_webhooks=True,  # the receiver is on 127.0.0.1
        log_format="json",
        _env_file=None,  # type: ignore[call-arg]
    )
    ctx: GatewayContext | None = None
    probe: AsyncEngine | None = None
    try:
        ctx = build_context(settings, clock=SystemClock())
        probe = make_engine(url)
        await upgrade(ctx.engine)
        if backend == "postgres":
            # Statistics are taken on purpose (reset_events), not whenever autovacuum's naptime
            # happens to fall inside a run: the claim query's plan depends on them.
            async with session_scope(ctx.sessions) as session:
                await session.execute(
                    text("ALTER TABLE webhook_events SET (autovacuum_enabled = false)")
                )
        async with session_scope(ctx.sessions) as session:
            created = await create_merchant(
                session,
                ctx.secret_box,
                ctx.clock,
                name="Bench shop",
                payout_address=PAYOUT,
                chain_ids=[CHAIN_ID],
                notify_url=notify_url,
            )
        yield Gateway(ctx, settings, created.merchant_id, created.webhook_secret, probe)
    finally:
        if probe is not None:
            await probe.dispose()
        if ctx is not None:
            await ctx.engine.dispose()
        if backend == "postgres":
            await _pg_admin(args.postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            for suffix in ("", "-wal", "-shm"):
                (tmp / f"{name}.db{suffix}").unlink(missing_ok=True)


def order_request() -> CreateOrderRequest:
    return CreateOrderRequest.model_validate(
        {"chainId": CHAIN_ID, "symbol": "USDT", "amount": "12.34", "expireSeconds": 86400}
    )


async def seed_burst(gw: Gateway, orders: int, per_order: int) -> float:
    """``orders`` orders with ``per_order`` outbox events each, as the services write them."""
    started = time.perf_counter()
    ctx = gw.ctx
    for first in range(0, orders, SEED_ORDERS_PER_TX):
        async with session_scope(ctx.sessions) as session:
            for _ in range(min(SEED_ORDERS_PER_TX, orders - first)):
                order, _ = await create_order(
                    session, ctx.clock, ctx.orders, merchant_id=gw.merchant_id, req=order_request()
                )
                view = order_view(order, ctx.registry, ctx.settings.public_url)
                for event_type in LATER_EVENTS[: per_order - 1]:
                    await add_event(session, ctx.clock, order, event_type, view)
    return time.perf_counter() - started


async def pending_count(gw: Gateway) -> int:
    async with read_scope(gw.reads) as session:
        value = await session.scalar(
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.status == "pending")
        )
    return int(value or 0)


async def drained(
    gw: Gateway,
    timeout_s: float,
    worker: asyncio.Task[None],
    recorded: Callable[[], bool] | None = None,
) -> bool:
    """Waits until no event is pending; False on timeout or if the worker stopped.

    ``recorded`` (burst runs) says when every event may have been recorded: the database is
    asked then, and once a second meanwhile, not every 0.1 s (those queries ran in the measured
    process and counted as the worker's CPU)."""
    deadline = time.monotonic() + timeout_s
    asked = 0.0
    while True:
        if recorded is None or recorded() or time.monotonic() - asked >= 1.0:
            asked = time.monotonic()
            if await pending_count(gw) == 0:
                return True
        if time.monotonic() > deadline or worker.done():
            return False
        await asyncio.sleep(0.1 if recorded is None else 0.01)


async def reset_events(gw: Gateway, backend: str, *, analyze: bool) -> None:
    """Every event pending again with a fresh schedule, as a resend does. On PostgreSQL the
    previous run's dead rows are vacuumed away, and with ``analyze`` statistics are taken
    (autovacuum is off for this table, so nothing else decides when they are)."""
    async with session_scope(gw.ctx.sessions) as session:
        await session.execute(
            update(WebhookEvent).values(
                status="pending",
                attempts=0,
                next_attempt_at_ms=WebhookEvent.created_at_ms,
                lease_until_ms=None,
            )
        )
        # As resend does: each order's first event is deliverable again, the rest wait.
        await refresh(session, await session.scalars(select(WebhookEvent.order_id).distinct()))
    if backend == "postgres":
        async with gw.ctx.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(
                text(f"VACUUM {'(ANALYZE) ' if analyze else ''}webhook_events")
            )


# -- instrumenting the worker (wrappers only: the worker's code runs unchanged) -----------------


class WorkerProbe:
    """Counts and times the worker's claim / send / record / release steps and its SQL."""

    def __init__(self, worker: WebhookWorker, engine: AsyncEngine, *, count_sql: bool) -> None:
        self.calls: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self.claimed_at: dict[str, float] = {}
        self.handed_back: Counter[str] = Counter()  # per event
        self.last_record = 0.0
        self.statements = 0
        self.engine = engine
        self.count_sql = count_sql
        original_claim = worker.claim
        original_release = worker.release
        self._wrap(worker, "_send")
        self._wrap(worker, "_record", stamp=True)
        # one record transaction (a batch of attempts)
        self._wrap(worker._recorder, "write", label="write_records")

        async def claim(limit: int) -> list[Claim]:
            started = time.perf_counter()
            claims = await original_claim(limit)
            self._add("claim", started)
            self.rows["claimed"] += len(claims)
            self.calls["claimEmpty"] += not claims
            now = time.time()
            for item in claims:
                self.claimed_at.setdefault(item.event_id, now)
            return claims

        async def release(claims: Sequence[Claim], *, due_at_ms: int | None = None) -> None:
            started = time.perf_counter()
            await original_release(claims, due_at_ms=due_at_ms)
            self._add("release", started)
            self.rows["handedBack"] += len(claims)
            self.handed_back.update(item.event_id for item in claims)

        worker.claim = claim  # type: ignore[method-assign]
        worker.release = release  # type: ignore[method-assign]
        if count_sql:  # only when the worker is the engine's only user
            event.listen(engine.sync_engine, "before_cursor_execute", self._statement)

    def close(self) -> None:
        if self.count_sql:
            event.remove(self.engine.sync_engine, "before_cursor_execute", self._statement)

    def _statement(self, *_args: Any) -> None:
        self.statements += 1

    def _add(self, name: str, started: float) -> None:
        self.calls[name] += 1
        self.seconds[name] += time.perf_counter() - started

    def _wrap(self, worker: object, name: str, *, stamp: bool = False, label: str = "") -> None:
        original: Callable[..., Awaitable[Any]] = getattr(worker, name)

        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                self._add(label or name.lstrip("_"), started)
                if stamp:
                    self.last_record = time.perf_counter()

        setattr(worker, name, wrapped)

    def figures(self, delivered: int) -> dict[str, Any]:
        steps = {
            name: {
                "calls": self.calls[name],
                "meanMs": round(1000 * self.seconds[name] / max(1, self.calls[name]), 2),
            }
            for name in ("claim", "send", "record", "write_records", "release")
        }
        return {
            "steps": steps,
            "emptyClaims": self.calls["claimEmpty"],
            "recordTransactions": self.calls["write_records"],
            "rowsClaimed": self.rows["claimed"],
            "rowsHandedBack": self.rows["handedBack"],
            "eventsHandedBack": len(self.handed_back),
            "mostHandBacksOfOneEvent": max(self.handed_back.values(), default=0),
            "sqlStatements": self.statements if self.count_sql else None,
            "sqlStatementsPerDelivery": round(self.statements / max(1, delivered), 1)
            if self.count_sql
            else None,
        }


def make_worker(gw: Gateway, **kwargs: Any) -> WebhookWorker:
    ctx = gw.ctx
    return WebhookWorker(
        ctx.sessions, ctx.clock, gw.settings, ctx.secret_box, ctx.signing_key, **kwargs
    )


# -- checks ----------------------------------------------------------------------------------


def check_hits(
    gw: Gateway, hits: Sequence[Hit], expected: set[str], problems: list[str], label: str
) -> dict[str, Any]:
    """Signatures (V2 and V1 of every request), one arrival per event, per-order order."""
    public_key = gw.ctx.signing_key.private_key.public_key()
    secret = gw.webhook_secret.encode()
    bad_v2 = bad_v1 = 0
    for hit in hits:
        signed = hit.request_time.encode() + b"." + hit.body.encode()
        if not hmac.compare_digest(hmac.new(secret, signed, hashlib.sha256).hexdigest(), hit.v2):
            bad_v2 += 1
        try:
            public_key.verify(base64.b64decode(hit.v1), signed, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            bad_v1 += 1
        if hit.key_id != gw.ctx.signing_key.key_id:
            bad_v1 += 1
    arrivals = Counter(hit.event_id for hit in hits)
    duplicates = sum(n - 1 for n in arrivals.values())
    missing = len(expected - set(arrivals))
    unexpected = len(set(arrivals) - expected)
    last_seq: dict[str, int] = {}
    out_of_order = 0
    for hit in sorted(hits, key=lambda h: h.arrived):
        body = json.loads(hit.body)
        order_id, sequence = body["data"]["orderId"], body["sequence"]
        if sequence < last_seq.get(order_id, 0):
            out_of_order += 1
        last_seq[order_id] = max(sequence, last_seq.get(order_id, 0))
    figures = {
        "requests": len(hits),
        "badV2": bad_v2,
        "badV1": bad_v1,
        "duplicates": duplicates,
        "missing": missing,
        "unexpected": unexpected,
        "outOfOrder": out_of_order,
    }
    for key in ("badV2", "badV1", "missing", "unexpected", "outOfOrder"):
        if figures[key]:
            problems.append(f"{label}: {key} = {figures[key]}")
    return figures


async def check_database(gw: Gateway, events: int, problems: list[str], label: str) -> None:
    async with read_scope(gw.reads) as session:
        statuses = dict(
            (
                await session.execute(
                    select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
                )
            ).all()
        )
        outcomes = dict(
            (
                await session.execute(
                    select(WebhookDelivery.outcome, func.count()).group_by(WebhookDelivery.outcome)
                )
            ).all()
        )
    if statuses != {"delivered": events}:
        problems.append(f"{label}: event statuses {statuses}, expected {events} delivered")
    if set(outcomes) != {"success"}:
        problems.append(f"{label}: delivery outcomes {outcomes}")


# -- phases ----------------------------------------------------------------------------------


async def event_bodies(gw: Gateway) -> tuple[list[bytes], set[str]]:
    async with read_scope(gw.reads) as session:
        rows = (
            await session.execute(
                select(WebhookEvent.id, WebhookEvent.merchant_id, WebhookEvent.payload).order_by(
                    WebhookEvent.next_attempt_at_ms, WebhookEvent.id
                )
            )
        ).all()
    bodies = [webhook_body(payload, merchant_id=merchant) for _, merchant, payload in rows]
    return bodies, {event_id for event_id, _, _ in rows}


def plain_client() -> httpx.AsyncClient:
    """httpx as it comes (anyio I/O) with the worker's limits: the bare loop of issue 12."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(10.0), follow_redirects=False, trust_env=False, limits=CLIENT_LIMITS
    )


async def measure_baseline(
    receiver: Receiver,
    bodies: Sequence[bytes],
    concurrency: int,
    client_factory: Callable[[], httpx.AsyncClient] = plain_client,
) -> dict[str, Any]:
    """The same bodies, POSTed 4 at a time with the worker's client settings; nothing else."""
    url = f"{receiver.base}/baseline"
    statuses: Counter[int] = Counter()
    async with client_factory() as client:
        for body in bodies[:50]:  # warm-up: connections open, code paths hot
            await client.post(url, content=body, headers={"Content-Type": "application/json"})
        await receiver.take()
        queue = iter(bodies)

        async def post_all() -> None:
            for body in queue:
                response = await client.post(
                    url, content=body, headers={"Content-Type": "application/json"}
                )
                statuses[response.status_code] += 1

        with CpuMeter(receiver.pid) as cpu:
            started = time.perf_counter()
            await asyncio.gather(*(post_all() for _ in range(concurrency)))
            seconds = time.perf_counter() - started
    arrivals = await receiver.take()
    return {
        "deliveries": len(bodies),
        "arrived": arrivals.unsigned,
        "connections": arrivals.connections,
        "statuses": {str(k): v for k, v in statuses.items()},
        "seconds": round(seconds, 3),
        "perSecond": round(len(bodies) / seconds, 1),
        "cpu": cpu.figures,
        "cpuMsPerDelivery": cpu.ms_per(len(bodies)),
    }


async def measure_burst(
    gw: Gateway,
    receiver: Receiver,
    expected: set[str],
    problems: list[str],
    label: str,
    profile_dir: Path | None = None,
    **worker_options: Any,
) -> dict[str, Any]:
    """run_forever until every event is delivered; events / (start -> last record)."""
    await receiver.take()
    worker = make_worker(gw, **worker_options)
    probe = WorkerProbe(worker, gw.ctx.engine, count_sql=True)
    stop = asyncio.Event()
    events = len(expected)
    with py_spy_record(profile_dir, label, os.getpid()), CpuMeter(receiver.pid) as cpu:
        started = time.perf_counter()
        task = asyncio.create_task(worker.run_forever(stop))
        if not await drained(gw, 300, task, lambda: probe.calls["record"] >= events):
            problems.append(f"{label}: not every event was delivered within 300 s")
        seconds = probe.last_record - started
        stop.set()
        await task
    probe.close()
    arrivals = await receiver.take()
    hits = arrivals.signed
    checks = check_hits(gw, hits, expected, problems, label)
    checks["connections"] = arrivals.connections
    await check_database(gw, events, problems, label)
    arrivals = sorted(hit.arrived for hit in hits)
    return {
        "workerOptions": worker_options,
        "events": events,
        "seconds": round(seconds, 3),
        "perSecond": round(events / seconds, 1),
        "firstToLastArrivalSeconds": round(arrivals[-1] - arrivals[0], 3) if arrivals else None,
        "checks": checks,
        "worker": probe.figures(events),
        "cpu": cpu.figures,
        "cpuMsPerDelivery": cpu.ms_per(events),
    }


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 1),
        "p90": round(percentile(values, 0.90), 1),
        "p99": round(percentile(values, 0.99), 1),
        "max": round(max(values), 1),
        "min": round(min(values), 1),
    }


async def measure_live(
    gw: Gateway,
    receiver: Receiver,
    args: argparse.Namespace,
    poll_interval: float,
    problems: list[str],
) -> dict[str, Any]:
    """Orders made at a steady rate while run_forever delivers; commit -> first arrival."""
    label = f"live poll {poll_interval:g}s"
    await receiver.take()
    worker = make_worker(gw, poll_interval=poll_interval)
    probe = WorkerProbe(worker, gw.ctx.engine, count_sql=False)  # the producer shares it
    stop = asyncio.Event()
    committed_at: dict[str, float] = {}
    ctx = gw.ctx
    count = round(args.rate * args.live_seconds)
    task = asyncio.create_task(worker.run_forever(stop))
    with CpuMeter(receiver.pid) as cpu:
        await asyncio.sleep(poll_interval + 0.5)  # the worker is idle and polling
        started = time.monotonic()
        for index in range(count):
            await asyncio.sleep(max(0.0, started + index / args.rate - time.monotonic()))
            async with session_scope(ctx.sessions) as session:
                order, _ = await create_order(
                    session, ctx.clock, ctx.orders, merchant_id=gw.merchant_id, req=order_request()
                )
                event_id = await session.scalar(
                    select(WebhookEvent.id).where(WebhookEvent.order_id == order.id)
                )
            committed_at[str(event_id)] = time.time()
        produced_seconds = time.monotonic() - started
        if not await drained(gw, 30, task):
            problems.append(f"{label}: events still pending 30 s after the last one was made")
    stop.set()
    await task
    probe.close()
    arrivals = await receiver.take()
    hits = arrivals.signed
    expected = set(committed_at)
    checks = check_hits(gw, hits, expected, problems, label)
    checks["connections"] = arrivals.connections
    first: dict[str, float] = {}
    for hit in hits:
        first[hit.event_id] = min(hit.arrived, first.get(hit.event_id, hit.arrived))
    seen = [e for e in committed_at if e in first]
    latency = [1000 * (first[e] - committed_at[e]) for e in seen]
    to_claim = [1000 * (probe.claimed_at[e] - committed_at[e]) for e in seen]
    claim_to_arrival = [1000 * (first[e] - probe.claimed_at[e]) for e in seen]
    if not latency:
        problems.append(f"{label}: nothing arrived")
        latency = to_claim = claim_to_arrival = [0.0]
    return {
        "pollIntervalSeconds": poll_interval,
        "events": count,
        "producedPerSecond": round(count / produced_seconds, 1),
        "commitToFirstArrivalMs": summary_ms(latency),
        "commitToClaimMs": summary_ms(to_claim),
        "claimToArrivalMs": summary_ms(claim_to_arrival),
        "checks": checks,
        "worker": probe.figures(count),
        "cpu": cpu.figures,
    }


async def measure_steps(gw: Gateway, bodies: Sequence[bytes]) -> dict[str, float]:
    """CPU of each step of an attempt in this process, one at a time (nothing concurrent):
    signing, a claim of 16 rows (the per-host backlog) and of 1 row, recording a success.
    Uses ``STEP_EVENTS`` fresh one-event orders, all delivered (recorded) at the end."""
    started = time.process_time()
    for body in bodies[:500]:
        webhook_headers(
            event_id="evt_x",
            time_ms=1,
            body=body,
            secrets=[gw.webhook_secret],
            signing_key=gw.ctx.signing_key,
        )
    signing = (time.process_time() - started) / min(500, len(bodies))
    await seed_burst(gw, STEP_EVENTS, 1)
    worker = make_worker(gw)
    claims: list[Claim] = []
    costs: dict[str, float] = {}
    for size, calls in ((16, STEP_EVENTS // 32), (1, STEP_EVENTS // 2)):
        started = time.process_time()
        for _ in range(calls):
            claims += await worker.claim(size)
        costs[f"claim{size}"] = (time.process_time() - started) / calls
    started = time.process_time()
    for item in claims:
        result = AttemptResult(Outcome.SUCCESS, item.url or "", gw.ctx.clock.now_ms(), 1, 204)
        await worker._record(item, result)
    costs["record"] = (time.process_time() - started) / len(claims)
    await worker.aclose()
    return {
        "signingMs": round(1000 * signing, 3),
        "claim16Ms": round(1000 * costs["claim16"], 2),
        "claim1Ms": round(1000 * costs["claim1"], 2),
        "recordMs": round(1000 * costs["record"], 2),
    }


async def run_backend(
    backend: str, args: argparse.Namespace, receiver: Receiver, tmp: Path
) -> dict[str, Any]:
    problems: list[str] = []
    out: dict[str, Any] = {"problems": problems}
    async with fresh_gateway(backend, args, tmp, f"{receiver.base}/hook") as gw:
        if backend == "postgres":
            out["server"] = (await _pg_admin(args.postgres_url, "SELECT version()"))[:40]
        seeded = await seed_burst(gw, args.orders, args.events_per_order)
        bodies, expected = await event_bodies(gw)
        out["seed"] = {
            "orders": args.orders,
            "events": len(expected),
            "seconds": round(seeded, 2),
            "eventsPerSecond": round(len(expected) / seeded, 1),
            "meanBodyBytes": round(statistics.mean(len(b) for b in bodies)),
        }
        print(f"  seeded {len(expected)} events in {seeded:.1f} s", flush=True)

        out["quietLoadPct"] = round(wait_for_quiet(args.quiet_below, args.quiet_wait))
        out["baseline"] = await measure_baseline(receiver, bodies, PER_HOST)
        base = out["baseline"]
        if base["arrived"] != len(bodies) or base["statuses"] != {"204": len(bodies)}:
            problems.append(f"{backend} baseline: {base['arrived']} arrived, {base['statuses']}")
        print(f"  baseline: {base['perSecond']} /s", flush=True)
        # The same loop through the worker's own client (its asyncio-stream transport).
        out["baselineWorkerClient"] = await measure_baseline(
            receiver, bodies, PER_HOST, default_client
        )
        print(
            f"  baseline, worker's client: {out['baselineWorkerClient']['perSecond']} /s",
            flush=True,
        )
        out["bursts"] = []
        for index, (label, options, analyzed) in enumerate(BURSTS):
            if analyzed and backend != "postgres":
                continue
            if index:
                await reset_events(gw, backend, analyze=analyzed)
            burst = await measure_burst(
                gw, receiver, expected, problems, f"{backend} {label}", args.py_spy, **options
            )
            burst["label"] = label
            burst["ratio"] = round(burst["perSecond"] / out["baseline"]["perSecond"], 3)
            out["bursts"].append(burst)
            print(f"  worker, {label}: {burst['perSecond']} /s", flush=True)
        out["live"] = []
        for poll in args.live_polls:
            live = await measure_live(gw, receiver, args, poll, problems)
            out["live"].append(live)
            print(f"  live (poll {poll:g} s): {live['commitToFirstArrivalMs']}", flush=True)
        out["steps"] = await measure_steps(gw, bodies)
    return out


# -- report ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        print("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if index == 0:
            print("  " + "  ".join("-" * w for w in widths))


def report(results: dict[str, Any]) -> None:
    m = results["machine"]
    print(f"\nmachine: {m['cpus']} CPUs shared by the worker, the receiver and PostgreSQL")
    print(f"  {m['platform']}, python {m['python']}, sqlite {m['sqlite']}")
    rows = []
    for backend, out in results["backends"].items():
        base = out["baseline"]
        rows.append(
            [
                backend,
                "bare httpx, 4 at a time",
                base["deliveries"],
                base["seconds"],
                base["perSecond"],
                1.0,
                base["cpuMsPerDelivery"]["bench"],
                base["cpuMsPerDelivery"]["receiver"],
                "-",
                base["cpu"]["otherPct"],
                "-",
                "-",
                "-",
                "-",
                "-",
            ]
        )
        own = out["baselineWorkerClient"]
        rows.append(
            [
                backend,
                "bare, the worker's client",
                own["deliveries"],
                own["seconds"],
                own["perSecond"],
                round(own["perSecond"] / base["perSecond"], 3),
                own["cpuMsPerDelivery"]["bench"],
                own["cpuMsPerDelivery"]["receiver"],
                "-",
                own["cpu"]["otherPct"],
                "-",
                "-",
                "-",
                "-",
                "-",
            ]
        )
        for burst in out["bursts"]:
            per, w = burst["cpuMsPerDelivery"], burst["worker"]
            rows.append(
                [
                    backend,
                    f"WebhookWorker, {burst['label']}",
                    burst["events"],
                    burst["seconds"],
                    burst["perSecond"],
                    burst["ratio"],
                    per["bench"],
                    per["receiver"],
                    per["postgres"] if backend == "postgres" else "-",
                    burst["cpu"]["otherPct"],
                    w["sqlStatementsPerDelivery"],
                    w["steps"]["claim"]["calls"],
                    w["steps"]["claim"]["meanMs"],
                    w["recordTransactions"],
                    w["rowsHandedBack"],
                ]
            )
    print_table(
        "1-2. Burst delivery to a local receiver (another process), 204 answers",
        [
            "backend",
            "",
            "deliveries",
            "s",
            "/s",
            "÷ bare",
            "worker CPU ms/d",
            "receiver ms/d",
            "PG ms/d",
            "other %",
            "SQL/d",
            "claims",
            "claim ms",
            "record tx",
            "handed back",
        ],
        rows,
    )
    rows = []
    for backend, out in results["backends"].items():
        for live in out["live"]:
            total = live["commitToFirstArrivalMs"]
            rows.append(
                [
                    backend,
                    live["pollIntervalSeconds"],
                    live["events"],
                    live["producedPerSecond"],
                    total["p50"],
                    total["p90"],
                    total["p99"],
                    total["max"],
                    live["commitToClaimMs"]["p50"],
                    live["claimToArrivalMs"]["p50"],
                    live["claimToArrivalMs"]["max"],
                    live["worker"]["eventsHandedBack"],
                    live["worker"]["mostHandBacksOfOneEvent"],
                ]
            )
    print_table(
        "3. Live: commit of the outbox row -> first attempt at the receiver (ms)",
        [
            "backend",
            "poll s",
            "events",
            "made/s",
            "p50",
            "p90",
            "p99",
            "max",
            "->claim p50",
            "claim->arrival p50",
            "claim->arrival max",
            "events handed back",
            "most hand-backs",
        ],
        rows,
    )
    rows = []
    for backend, out in results["backends"].items():
        st = out["steps"]
        http = out["baseline"]["cpuMsPerDelivery"]["bench"]
        rows.append(
            [backend, st["signingMs"], http, st["claim16Ms"], st["claim1Ms"], st["recordMs"]]
        )
    print_table(
        "4. CPU of one step in the worker's process, one at a time (ms)",
        ["backend", "sign", "POST (bare)", "claim 16 rows", "claim 1 row", "record success"],
        rows,
    )
    for backend, out in results["backends"].items():
        for burst in out["bursts"]:
            steps = burst["worker"]["steps"]
            print(
                f"{backend}, {burst['label']}: wall ms per step (mean, calls): "
                + ", ".join(f"{k} {v['meanMs']} x{v['calls']}" for k, v in steps.items())
            )
        print(f"{backend}: seeding {out['seed']['eventsPerSecond']} outbox events/s")
        for problem in out["problems"]:
            print(f"  INVALID: {problem}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "args": {
            "orders": args.orders,
            "eventsPerOrder": args.events_per_order,
            "rate": args.rate,
            "liveSeconds": args.live_seconds,
            "livePolls": args.live_polls,
        },
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="stablegate-bench-") as tmp, Receiver() as receiver:
        log_path = Path(tmp) / "worker.log"
        with log_path.open("w") as log, contextlib.redirect_stderr(log):
            for backend in args.backends:
                print(f"{backend}:", flush=True)
                results["backends"][backend] = await run_backend(backend, args, receiver, Path(tmp))
        lines = log_path.read_text().splitlines()
        kinds = Counter(json.loads(line).get("event") for line in lines if line.startswith("{"))
        results["workerLog"] = dict(kinds)
        unusual = [line for line in lines if '"level": "warning"' in line or "error" in line]
        if unusual:
            print("worker log, warnings and errors (first 5):")
            for line in unusual[:5]:
                print("  " + line[:300])
    return results


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-receiver":
        serve_receiver(int(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite,postgres")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "STABLEGATE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a server where this user may CREATE DATABASE (a fresh one is created and dropped)",
    )
    parser.add_argument("--orders", type=int, default=500, help="burst: orders")
    parser.add_argument("--events-per-order", type=int, default=4, choices=range(1, 6))
    parser.add_argument("--rate", type=float, default=20, help="live: events (orders) a second")
    parser.add_argument("--live-seconds", type=float, default=10)
    parser.add_argument(
        "--live-polls",
        default="1.0,0.1",
        help="live: worker poll intervals to run (the worker's default is 0.25)",
    )
    parser.add_argument(
        "--quiet-below", type=float, default=30, help="wait until other jobs use less (%% core)"
    )
    parser.add_argument("--quiet-wait", type=float, default=10, help="seconds to wait, at most")
    parser.add_argument("--json-out", type=Path, help="also write the JSON figures here")
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="profile each burst (this process) with py-spy into DIR (perturbs the figures)",
    )
    args = parser.parse_args()
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(args.backends) - {"sqlite", "postgres"}:
        parser.error("--backends takes sqlite and/or postgres")
    args.live_polls = [float(p) for p in args.live_polls.split(",")]
    configure_logging("json", "INFO")  # as in production: one JSON line per attempt
    started = time.perf_counter()
    results = asyncio.run(run(args))
    results["wallSeconds"] = round(time.perf_counter() - started, 1)
    report(results)
    line = json.dumps(results, separators=(",", ":"))
    if args.json_out:
        args.json_out.write_text(line + "\n")
    print(f"\ntotal {results['wallSeconds']}s")
    print(line)
    invalid = any(out["problems"] for out in results["backends"].values())
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
