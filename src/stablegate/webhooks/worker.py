"""The webhook delivery worker: claims due outbox rows, POSTs them, records every attempt.

Everything lives in rows, nothing in memory timers, so any worker can stop at any moment
(SIGKILL included) and another one carries on. One attempt is three steps:

1. **Claim** (short transaction, :func:`~stablegate.webhooks.service.claim_due`): due rows get
   ``lease_until_ms = now + lease`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, and on both
   backends a conditional ``UPDATE ... WHERE lease free``, so two workers never hold one row).
2. **Send** outside any transaction: SSRF-checked, address-pinned, freshly signed, no redirects,
   10 s for a 2xx. Anything that stops the request before a response (a stored URL that fails
   the guard, DNS, connect, TLS, an unexpected exception while preparing it) is an ``error``
   attempt, recorded and retried on the schedule like a failing receiver.
3. **Record** (short transaction): one ``webhook_deliveries`` row, and the event moves to
   ``delivered`` / its next attempt / ``failed``. The event update is guarded by the lease
   value and attempt count it was claimed with, so a worker whose lease ran out and whose row
   was taken over cannot overwrite the newer state (its attempt is still logged).

A worker that dies mid-attempt leaves a lease that runs out (default 120 s); the row is then
claimed again, so delivery is at least once and receivers dedupe on ``Webhook-Id``.

Ordering: event n+1 of an order is not claimed while event n is ``pending`` with fewer than
``ORDER_RELEASE_ATTEMPTS`` attempts (see :mod:`stablegate.webhooks.schedule`); different orders
never wait on each other. The record step holds the order's row lock and recomputes the
order's ``deliverable`` flags (:mod:`stablegate.webhooks.ordering`), which the claim reads.

Concurrency: at most ``max_per_host`` (4) deliveries at a time per receiving host name, per
worker process (N workers may reach one host with 4 x N). In :meth:`run_forever` a host with a
backlog of more than 4 x ``max_per_host`` attempts in this process gets further rows handed back
(due again a second later) so that one slow receiver cannot fill the worker.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import socket
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import structlog
from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.clock import Clock
from stablegate.config import Settings
from stablegate.db.engine import session_scope
from stablegate.models import WebhookDelivery, WebhookEvent
from stablegate.models.webhook_event import EventStatus
from stablegate.outbound import DestinationError, Resolver, post_pinned
from stablegate.secret_box import SecretBox
from stablegate.watchdog import Watchdog
from stablegate.webhooks.ordering import lock_orders, refresh
from stablegate.webhooks.schedule import ATTEMPT_TIMEOUT_S, is_success, next_attempt_at_ms
from stablegate.webhooks.service import Claim, Outcome, claim_due
from stablegate.webhooks.signing import webhook_body, webhook_headers
from stablegate.webhooks.signing_key import GatewaySigningKey
from stablegate.webhooks.state import EventTrigger, transition

log = structlog.get_logger("stablegate.webhooks")

ClientFactory = Callable[[], httpx.AsyncClient]

RESPONSE_BODY_LIMIT = 256
_ERROR_LIMIT = 500
# An attempt starts only if its lease outlives the attempt plus the time to record it.
_LEASE_MARGIN_MS = int(ATTEMPT_TIMEOUT_S * 1000) + 10_000
_MAX_CLIENTS = 64  # kept-alive clients beyond this are closed, least recently used first
PENDING = EventStatus.PENDING.value


def default_client() -> httpx.AsyncClient:
    # trust_env=False: an environment proxy would defeat address pinning.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(ATTEMPT_TIMEOUT_S),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=4, keepalive_expiry=30),
    )


@dataclass(frozen=True)
class AttemptResult:
    outcome: Outcome
    url: str
    attempted_at_ms: int
    latency_ms: int
    status_code: int | None = None
    body: str | None = None
    error: str | None = None


class HostLimiter:
    """At most ``per_host`` concurrent deliveries per receiving host name, in this process."""

    def __init__(self, per_host: int) -> None:
        self._per_host = per_host
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._users: dict[str, int] = {}

    def users(self, host: str) -> int:
        """Attempts for ``host`` running or waiting for a slot."""
        return self._users.get(host, 0)

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        self._users[host] = self._users.get(host, 0) + 1
        gate = self._gates.setdefault(host, asyncio.Semaphore(self._per_host))
        try:
            async with gate:
                yield
        finally:
            self._users[host] -= 1
            if self._users[host] == 0:
                del self._users[host], self._gates[host]


class WebhookWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: Settings,
        secret_box: SecretBox,
        signing_key: GatewaySigningKey,
        *,
        http_client_factory: ClientFactory | None = None,
        worker_id: str | None = None,
        resolver: Resolver | None = None,
        rng: random.Random | None = None,
        batch_size: int = 100,
        max_in_flight: int = 64,
        max_per_host: int = 4,
        lease_seconds: float = 120.0,
        poll_interval: float = 0.25,  # commit -> first attempt; an idle poll is one query
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._allow_private = settings.allow_private_webhooks
        self._box = secret_box
        self._signing_key = signing_key
        self._client_factory = http_client_factory or default_client
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._resolver = resolver
        self._rng = rng or random.Random()  # jitter only; not security-relevant
        self._batch_size = batch_size
        self._max_in_flight = max_in_flight
        self._host_backlog = 4 * max_per_host
        # A waiting claim must still have this much lease left when its attempt starts: the
        # attempt (10 s at most) and its record must end before the lease does.
        self._lease_safety_ms = 30_000
        self._lease_ms = int(lease_seconds * 1000)
        self._poll_interval = poll_interval
        self._hosts = HostLimiter(max_per_host)
        bind = sessions.kw.get("bind")
        is_sqlite = bind is not None and bind.dialect.name == "sqlite"
        self._sqlite_writes = asyncio.Lock() if is_sqlite else None
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()
        self._watchdog = Watchdog("webhooks", settings.step_timeout_s, worker_id=self.worker_id)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        # SQLite has one writer: queueing here beats its busy handler's sleeping retries
        # (up to 100 ms each) when many attempts finish at once.
        if self._sqlite_writes is None:
            async with session_scope(self._sessions) as session:
                yield session
        else:
            async with self._sqlite_writes, session_scope(self._sessions) as session:
                yield session

    async def __aenter__(self) -> WebhookWorker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), OrderedDict()
        for client in clients:
            await client.aclose()

    async def run_once(self) -> int:
        """Claim one batch of due events and attempt them all; returns the HTTP attempts made."""
        claims = await self.claim(self._batch_size)
        return sum(await asyncio.gather(*(self.attempt(claim) for claim in claims)))

    async def run_forever(self, stop_event: asyncio.Event) -> None:
        """Deliver until ``stop_event`` is set; in-flight attempts then finish (10 s at most).

        A failing database (or any other error of one iteration) is logged and retried after
        the poll interval; it never ends the loop.
        """
        log.info(
            "webhook_worker_started",
            worker_id=self.worker_id,
            **({"private_addresses_allowed": True} if self._allow_private else {}),
        )
        tasks: set[asyncio.Task[bool]] = set()
        # Claims for hosts whose backlog here is full wait in memory, inside their lease,
        # instead of being handed back (handing back pushed them behind newer events).
        waiting: deque[Claim] = deque()
        stopping = asyncio.create_task(stop_event.wait())
        try:
            while not stop_event.is_set():
                waiting = deque(self._start(list(waiting), tasks))
                wanted = min(self._max_in_flight - len(tasks) - len(waiting), self._batch_size)
                claimed = 0
                deferred: list[Claim] = []
                if wanted > 0:
                    try:
                        claims = await self._watchdog.run(partial(self.claim, wanted), "claim")
                        claimed = len(claims)
                        deferred = self._start(claims, tasks)
                        waiting.extend(deferred)
                    except Exception as exc:  # the database may be away for a while
                        log.warning("webhook_claim_failed", error=type(exc).__name__)
                        claimed = 0
                if wanted > 0 and claimed == wanted and not deferred:
                    continue  # more may be due right now
                done, _ = await asyncio.wait(
                    {stopping, *tasks},
                    timeout=self._poll_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                tasks -= done
        finally:
            stopping.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            await self.aclose()
            log.info("webhook_worker_stopped", worker_id=self.worker_id)

    def _start(self, claims: Sequence[Claim], tasks: set[asyncio.Task[bool]]) -> list[Claim]:
        """Start an attempt per claim, in order, except for hosts with a full backlog here;
        returns those, to wait in memory. A claim whose lease is about to run out is dropped:
        the row comes back to a worker (this one or another) once the lease expired."""
        planned: dict[str, int] = {}
        deferred: list[Claim] = []
        latest_start = self._clock.now_ms() + self._lease_safety_ms
        for claim in claims:
            host = claim.host
            if host and self._hosts.users(host) + planned.get(host, 0) >= self._host_backlog:
                if claim.lease_until_ms > latest_start:
                    deferred.append(claim)
                continue
            planned[host] = planned.get(host, 0) + 1
            # A stalled attempt is abandoned; its lease runs out and the event is retried.
            attempt = partial(self.attempt, claim)
            tasks.add(asyncio.create_task(self._watchdog.run_or(attempt, False, "attempt")))
        return deferred

    async def claim(self, limit: int) -> list[Claim]:
        """Lease up to ``limit`` due events (one short transaction)."""
        async with self._transaction() as session:
            return await claim_due(
                session,
                self._box,
                now_ms=self._clock.now_ms(),
                limit=limit,
                lease_ms=self._lease_ms,
            )

    async def attempt(self, claim: Claim) -> bool:
        """Attempt one claimed event and record it; True when a request was attempted."""
        try:
            if claim.url is None:
                now = self._clock.now_ms()
                skipped = AttemptResult(
                    Outcome.SKIPPED, "", now, 0, error="no notifyUrl on the order or the merchant"
                )
                await self._record(claim, skipped)
                return False
            async with self._hosts.slot(claim.host):
                if self._clock.now_ms() + _LEASE_MARGIN_MS > claim.lease_until_ms:
                    await self.release([claim])  # waited too long for a slot: hand it back
                    return False
                result = await self._send(claim, claim.url)
            await self._record(claim, result)
            return True
        except Exception:  # one broken attempt must not stop the worker; its lease runs out
            log.exception("webhook_attempt_crashed", event_id=claim.event_id)
            return False

    async def _send(self, claim: Claim, url: str) -> AttemptResult:
        started_ms = self._clock.now_ms()
        started = time.perf_counter()

        def result(outcome: Outcome, **kw: Any) -> AttemptResult:
            latency = round((time.perf_counter() - started) * 1000)
            return AttemptResult(outcome, url, started_ms, latency, **kw)

        if claim.secret_error is not None:
            return result(Outcome.ERROR, error=claim.secret_error)
        try:
            body = webhook_body(claim.payload, merchant_id=claim.merchant_id)
            headers = webhook_headers(
                event_id=claim.event_id,
                time_ms=started_ms,
                body=body,
                secrets=claim.secrets,
                signing_key=self._signing_key,
            )
            response = await post_pinned(
                self._client,
                url,
                content=body,
                headers=headers,
                allow_private=self._allow_private,
                resolver=self._resolver,
                timeout_s=ATTEMPT_TIMEOUT_S,
                body_limit=RESPONSE_BODY_LIMIT,
            )
        except DestinationError as exc:
            return result(Outcome.ERROR, error=str(exc)[:_ERROR_LIMIT])
        except TimeoutError:
            return result(Outcome.ERROR, error=f"no response within {ATTEMPT_TIMEOUT_S:g} s")
        except httpx.HTTPError as exc:
            return result(Outcome.ERROR, error=f"{type(exc).__name__}: {exc}"[:_ERROR_LIMIT])
        except Exception as exc:
            # Anything else while building or sending the request is this destination's failed
            # attempt, on the normal schedule: left to the lease, it would block the order's
            # later events for good and come back every lease period with no trace in the log.
            log.warning("webhook_attempt_error", event_id=claim.event_id, exc_info=True)
            return result(Outcome.ERROR, error=f"{type(exc).__name__}: {exc}"[:_ERROR_LIMIT])
        status = response.status_code
        outcome = Outcome.SUCCESS if is_success(status) else Outcome.FAILURE
        return result(outcome, status_code=status, body=_log_text(response.body_prefix))

    async def _client(self, host: str) -> httpx.AsyncClient:
        # One client per host name: pooled connections are keyed by the pinned address, and a
        # TLS connection made for one name must never carry a request for another.
        client = self._clients.get(host)
        if client is None:
            client = self._clients[host] = self._client_factory()
            idle = [h for h in self._clients if h != host and not self._hosts.users(h)]
            for old in idle[: max(0, len(self._clients) - _MAX_CLIENTS)]:
                await self._clients.pop(old).aclose()
        self._clients.move_to_end(host)
        return client

    async def _record(self, claim: Claim, result: AttemptResult) -> None:
        async with self._transaction() as session:
            now = self._clock.now_ms()
            # The order's lock before any of its rows: the outcome may let its next events go.
            await lock_orders(session, [claim.order_id])
            skipped = result.outcome == Outcome.SKIPPED
            session.add(
                WebhookDelivery(
                    event_id=claim.event_id,
                    merchant_id=claim.merchant_id,
                    attempt=0 if skipped else claim.attempt,
                    url=_storable(result.url),
                    outcome=result.outcome.value,
                    response_status=result.status_code,
                    response_body=result.body,
                    error=None if result.error is None else _storable(result.error),
                    latency_ms=result.latency_ms,
                    attempted_at_ms=result.attempted_at_ms,
                )
            )
            values: dict[str, Any] = {"lease_until_ms": None}
            next_at: int | None = None
            if skipped:
                values["status"] = transition(EventStatus.PENDING, EventTrigger.NO_ENDPOINT)
            elif result.outcome == Outcome.SUCCESS:
                delivered = transition(EventStatus.PENDING, EventTrigger.DELIVERED)
                values.update(status=delivered, attempts=claim.attempt)
            else:
                first = result.attempted_at_ms
                if claim.attempt > 1:
                    first = await _first_attempt_ms(session, claim)
                next_at = next_attempt_at_ms(
                    failed_attempts=claim.attempt,
                    first_attempt_ms=first,
                    last_attempt_end_ms=now,
                    rng=self._rng,
                )
                values["attempts"] = claim.attempt
                if next_at is None:
                    values["status"] = transition(EventStatus.PENDING, EventTrigger.GAVE_UP)
                else:
                    # transition(PENDING, ATTEMPT_FAILED) keeps it pending: only the schedule.
                    values["next_attempt_at_ms"] = next_at
            updated = await session.execute(
                _guarded(claim).values(**values).execution_options(synchronize_session=False)
            )
            assert isinstance(updated, CursorResult)
            lease_lost = updated.rowcount == 0
            if not lease_lost:
                await refresh(session, [claim.order_id])
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
            worker_id=self.worker_id,
            **({"next_attempt_at": next_at} if next_at is not None else {}),
            **({"lease_lost": True} if lease_lost else {}),
        )

    async def release(self, claims: Sequence[Claim], *, due_at_ms: int | None = None) -> None:
        """Give claims back unattempted (optionally due again at ``due_at_ms``)."""
        values: dict[str, Any] = {"lease_until_ms": None}
        if due_at_ms is not None:
            values["next_attempt_at_ms"] = due_at_ms
        async with self._transaction() as session:
            for claim in claims:
                await session.execute(
                    _guarded(claim).values(**values).execution_options(synchronize_session=False)
                )


def _guarded(claim: Claim) -> Any:
    """UPDATE of the claimed event that matches only while this claim's lease still holds."""
    return update(WebhookEvent).where(
        WebhookEvent.id == claim.event_id,
        WebhookEvent.status == PENDING,
        WebhookEvent.lease_until_ms == claim.lease_until_ms,
        WebhookEvent.attempts == claim.attempt - 1,
    )


async def _first_attempt_ms(session: AsyncSession, claim: Claim) -> int:
    """When the current round's attempt 1 was made (rounds restart at 1 on resend)."""
    first = await session.scalar(
        select(func.max(WebhookDelivery.attempted_at_ms)).where(
            WebhookDelivery.event_id == claim.event_id, WebhookDelivery.attempt == 1
        )
    )
    return int(first) if first is not None else claim.created_at_ms


def _log_text(raw: bytes) -> str | None:
    """A response body prefix as text safe to store."""
    if not raw:
        return None
    return _storable(raw.decode("utf-8", errors="replace"))


def _storable(text: str) -> str:
    """Text PostgreSQL can hold (no NUL); a URL stored by an older version may have one."""
    return text.replace("\x00", "\ufffd")
