"""The webhook delivery worker: claims due outbox rows, POSTs them, records every attempt.

Everything lives in rows, nothing in memory timers, so any worker can stop at any moment
(SIGKILL included) and another one carries on. One attempt is three steps:

1. **Claim** (short transaction, :func:`~stablegate.webhooks.claims.claim_due`): due rows get
   ``lease_until_ms = now + lease`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, and on both
   backends a conditional ``UPDATE ... WHERE lease free``, so two workers never hold one row).
2. **Send** outside any transaction: SSRF-checked, address-pinned, freshly signed, no redirects,
   10 s for a 2xx. Anything that stops the request before a response (a stored URL that fails
   the guard, DNS, connect, TLS, an unexpected exception while preparing it) is an ``error``
   attempt, recorded and retried on the schedule like a failing receiver.
3. **Record** (short transaction, :func:`~stablegate.webhooks.recording.record_attempts`): one
   ``webhook_deliveries`` row, and the event moves to ``delivered`` / its next attempt /
   ``failed``. The event update is guarded by the lease value and attempt count it was claimed
   with, so a worker whose lease ran out and whose row was taken over cannot overwrite the
   newer state (its attempt is still logged). Attempts that finish while a record transaction
   is running are recorded together in the next one (a group commit,
   :mod:`stablegate.webhooks.recorder`): under load one transaction records dozens of attempts,
   idle it records one as soon as it finishes. An attempt's task ends once its record is
   committed. Claims and records run on a Core connection, not an ORM session.

A worker that dies mid-attempt, or after an attempt and before its record committed, leaves a
lease that runs out (default 120 s); the row is then claimed again, so delivery is at least once
and receivers dedupe on ``Webhook-Id``.

Claims come in batches: :meth:`WebhookWorker.run_forever` claims again once half of its room
(``max_in_flight``) is free, or a poll interval after its last claim, not after every attempt.
Webhook secrets are opened through a short-lived cache keyed by their ciphertext
(:mod:`stablegate.webhooks.secret_cache`), so a rotation is seen by the next claim.

Ordering: event n+1 of an order is not claimed while event n is ``pending`` with fewer than
``ORDER_RELEASE_ATTEMPTS`` attempts (see :mod:`stablegate.webhooks.schedule`); different orders
never wait on each other. The record step holds the order's row lock and recomputes the
order's ``deliverable`` flags (:mod:`stablegate.webhooks.ordering`), which the claim reads.

Concurrency: at most ``max_per_host`` (4) deliveries at a time per receiving host name, per
worker process (N workers may reach one host with 4 x N). In :meth:`run_forever` a host with a
backlog of 4 x ``max_per_host`` attempts in this process gets its further claims kept waiting in
memory, inside their lease, so that one slow receiver cannot fill the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import socket
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from stablegate.clock import Clock
from stablegate.config import Settings
from stablegate.db.engine import session_scope
from stablegate.models import WebhookEvent
from stablegate.models.order import NotifyFormat
from stablegate.models.webhook_event import EventStatus
from stablegate.outbound import DestinationError, Resolver, post_pinned
from stablegate.outbound_streams import asyncio_transport
from stablegate.secret_box import SecretBox
from stablegate.watchdog import Watchdog
from stablegate.webhooks.callbacks import CallbackFormat, CallbackRequest
from stablegate.webhooks.claims import Claim, claim_due
from stablegate.webhooks.ordering import Executor
from stablegate.webhooks.recorder import AttemptRecorder
from stablegate.webhooks.recording import AttemptResult, log_text
from stablegate.webhooks.schedule import ATTEMPT_TIMEOUT_S, is_success
from stablegate.webhooks.secret_cache import WebhookSecretCache
from stablegate.webhooks.service import Outcome
from stablegate.webhooks.signing import webhook_body, webhook_headers
from stablegate.webhooks.signing_key import GatewaySigningKey

log = structlog.get_logger("stablegate.webhooks")

ClientFactory = Callable[[], httpx.AsyncClient]

RESPONSE_BODY_LIMIT = 256
_ERROR_LIMIT = 500
# An attempt starts only if its lease outlives the attempt plus the time to record it.
_LEASE_MARGIN_MS = int(ATTEMPT_TIMEOUT_S * 1000) + 10_000
_MAX_CLIENTS = 64  # kept-alive clients beyond this are closed, least recently used first
PENDING = EventStatus.PENDING.value


CLIENT_LIMITS = httpx.Limits(max_connections=8, max_keepalive_connections=4, keepalive_expiry=30)


class _NoCookies(httpx.Cookies):
    """A receiver's cookies are neither kept nor sent back: they are no part of a webhook, and
    reading them (httpx copies every header into a ``Message`` first) cost CPU per response."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


def default_client() -> httpx.AsyncClient:
    # trust_env=False: an environment proxy would defeat address pinning. The transport does
    # its I/O on asyncio streams (outbound_streams: a third of a POST's CPU less than anyio's).
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(ATTEMPT_TIMEOUT_S),
        follow_redirects=False,
        trust_env=False,
        transport=asyncio_transport(CLIENT_LIMITS),
    )
    client._cookies = _NoCookies()  # the setter would copy it into a plain Cookies
    return client


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
        callback_formats: Mapping[str, CallbackFormat] | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._allow_private = settings.allow_private_webhooks
        self._secrets = WebhookSecretCache(secret_box)
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
        self._engine: AsyncEngine | None = bind if isinstance(bind, AsyncEngine) else None
        is_sqlite = bind is not None and bind.dialect.name == "sqlite"
        self._sqlite_writes = asyncio.Lock() if is_sqlite else None
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()
        self._watchdog = Watchdog("webhooks", settings.step_timeout_s, worker_id=self.worker_id)
        self._recorder = AttemptRecorder(
            self._core_transaction, clock, self._rng, self._watchdog, self.worker_id
        )
        # Foreign formats by name (orders made through a compatibility API; webhooks.callbacks).
        self._formats: Mapping[str, CallbackFormat] = callback_formats or {}

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

    @asynccontextmanager
    async def _core_transaction(self) -> AsyncIterator[Executor]:
        """The claim's and the record's transaction, on a Core connection: no ORM session to
        set up and no ORM execution path per statement (a session if no engine is bound)."""
        if self._engine is None:
            async with self._transaction() as session:
                yield session
            return
        async with self._sqlite_writes or contextlib.nullcontext(), self._engine.begin() as conn:
            yield conn

    async def __aenter__(self) -> WebhookWorker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._recorder.aclose()  # records still being written finish first
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
        # Set when an attempt ends or stop is asked: one flag, not a wait over every task.
        wake = asyncio.Event()

        def finished(task: asyncio.Task[Any]) -> None:
            tasks.discard(task)
            wake.set()

        stopping = asyncio.create_task(stop_event.wait())
        stopping.add_done_callback(finished)
        loop = asyncio.get_running_loop()
        last_claim = -self._poll_interval
        try:
            while not stop_event.is_set():
                wake.clear()
                waiting = deque(self._start(list(waiting), tasks, finished))
                held = len(tasks) + len(waiting)
                wanted = min(self._max_in_flight - held, self._batch_size)
                # A claim costs about the same for 1 row as for 50: claim once half the room
                # is free, or a poll interval after the last claim (what a new event waits).
                next_poll = last_claim + self._poll_interval
                claiming = wanted > 0 and (
                    held <= self._max_in_flight // 2 or loop.time() >= next_poll
                )
                claimed = 0
                deferred: list[Claim] = []
                if claiming:
                    last_claim = loop.time()
                    try:
                        claims = await self._watchdog.run(partial(self.claim, wanted), "claim")
                        claimed = len(claims)
                        deferred = self._start(claims, tasks, finished)
                        waiting.extend(deferred)
                    except Exception as exc:  # the database may be away for a while
                        log.warning("webhook_claim_failed", error=type(exc).__name__)
                        claimed = 0
                if claiming and claimed == wanted and not deferred:
                    continue  # more may be due right now
                timeout = self._poll_interval
                if wanted > 0 and not claiming:
                    timeout = max(0.0, next_poll - loop.time())
                if not wake.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(timeout):
                            await wake.wait()
        finally:
            stopping.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            await self.aclose()
            log.info("webhook_worker_stopped", worker_id=self.worker_id)

    def _start(
        self,
        claims: Sequence[Claim],
        tasks: set[asyncio.Task[bool]],
        finished: Callable[[asyncio.Task[Any]], None],
    ) -> list[Claim]:
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
            task = asyncio.create_task(self._watchdog.run_or(attempt, False, "attempt"))
            task.add_done_callback(finished)
            tasks.add(task)
        return deferred

    async def claim(self, limit: int) -> list[Claim]:
        """Lease up to ``limit`` due events (one short transaction)."""
        async with self._core_transaction() as connection:
            return await claim_due(
                connection,
                self._secrets,
                now_ms=self._clock.now_ms(),
                limit=limit,
                lease_ms=self._lease_ms,
            )

    async def attempt(self, claim: Claim) -> bool:
        """Attempt one claimed event and record it; True when a request was attempted."""
        try:
            if claim.url is None:
                now = self._clock.now_ms()
                why = "no notifyUrl on the order or the merchant"
                if claim.notify_format == NotifyFormat.GREENFIELD:
                    why = "the store has no enabled Greenfield webhook"
                skipped = AttemptResult(Outcome.SKIPPED, "", now, 0, error=why)
                await self._record(claim, skipped)
                return False
            reason = self._skip_reason(claim)
            if reason is not None:
                now = self._clock.now_ms()
                skipped = AttemptResult(Outcome.SKIPPED, claim.url, now, 0, error=reason)
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

    def _skip_reason(self, claim: Claim) -> str | None:
        """Why an event of an order in a foreign format is not sent by that format, if so."""
        if claim.notify_format == NotifyFormat.SIGNED:
            return None
        known = self._formats.get(claim.notify_format)
        return None if known is None else known.skip_reason(claim)

    async def send(self, claim: Claim) -> AttemptResult:
        """One request for ``claim``, recorded nowhere: the dashboard's test event (an event
        without an order, so without an outbox row) goes out signed and guarded like the rest."""
        if claim.url is None:
            raise ValueError("the claim has no URL")
        async with self._hosts.slot(claim.host):
            return await self._send(claim, claim.url)

    async def _send(self, claim: Claim, url: str) -> AttemptResult:
        started_ms = self._clock.now_ms()
        started = time.perf_counter()

        def result(outcome: Outcome, **kw: Any) -> AttemptResult:
            latency = round((time.perf_counter() - started) * 1000)
            return AttemptResult(outcome, url, started_ms, latency, **kw)

        if claim.secret_error is not None:
            return result(Outcome.ERROR, error=claim.secret_error)
        callback: CallbackFormat | None = None
        try:
            if claim.notify_format == NotifyFormat.SIGNED:
                body = webhook_body(claim.payload, merchant_id=claim.merchant_id)
                headers = webhook_headers(
                    event_id=claim.event_id,
                    time_ms=started_ms,
                    body=body,
                    secrets=claim.secrets,
                    signing_key=self._signing_key,
                )
                request = CallbackRequest("POST", url, body, headers)
            else:
                callback = self._formats.get(claim.notify_format)
                if callback is None:
                    return result(
                        Outcome.ERROR,
                        error=f"this worker cannot send {claim.notify_format} callbacks",
                    )
                request = callback.request(claim, url)
            response = await post_pinned(
                self._client,
                request.url,
                content=request.body,
                headers=request.headers,
                allow_private=self._allow_private,
                resolver=self._resolver,
                timeout_s=ATTEMPT_TIMEOUT_S,
                body_limit=RESPONSE_BODY_LIMIT,
                method=request.method,
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
        taken = is_success(status) and (
            callback is None or callback.acknowledged(status, response.body_prefix)
        )
        outcome = Outcome.SUCCESS if taken else Outcome.FAILURE
        return result(outcome, status_code=status, body=log_text(response.body_prefix))

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
        await self._recorder.record(claim, result)

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
