"""A small async Ethereum JSON-RPC client over HTTP with failover between several URLs.

What its errors mean (the call, its range or the provider failed) is in :mod:`rpc_errors`;
reading and sending transactions on top of it in :mod:`wallet`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import structlog

from stablegate.chain.evm.rpc_errors import (
    EndpointFailure,
    RpcError,
    RpcUnavailable,
    preview,
    unwrap,
)
from stablegate.clock import Clock, SystemClock
from stablegate.json_nesting import nested_deeper_than

log = structlog.get_logger("stablegate.rpc")

T = TypeVar("T")

# Methods that change nothing: safe to send again, to another URL, after any failure.
READ_METHODS = frozenset(
    {
        "eth_blockNumber",
        "eth_call",
        "eth_chainId",
        "eth_estimateGas",
        "eth_feeHistory",
        "eth_gasPrice",
        "eth_getBalance",
        "eth_getBlockByHash",
        "eth_getBlockByNumber",
        "eth_getBlockReceipts",
        "eth_getCode",
        "eth_getLogs",
        "eth_getStorageAt",
        "eth_getTransactionByHash",
        "eth_getTransactionCount",
        "eth_getTransactionReceipt",
        "eth_maxPriorityFeePerGas",
        "eth_syncing",
        "net_version",
        "web3_clientVersion",
    }
)

# Providers stay well under these: ~2 MB request bodies, 100-1000 calls per batch.
MAX_BATCH_CALLS = 100
MAX_REQUEST_BYTES = 1_000_000
# A JSON-RPC answer (a batch of receipts with their logs) nests about 6 levels; anything far
# deeper is hostile (stablegate.json_nesting).
MAX_ANSWER_DEPTH = 64


def redact_url(url: str) -> str:
    """Scheme, host and port only: provider URLs often carry an API key in the path or query."""
    parts = urlsplit(url)
    hidden = "/…" if parts.path.strip("/") or parts.query else ""
    host = parts.hostname or ""
    if ":" in host:  # IPv6, bracketed as in the URL
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number: whatever is there (a key, say) is not shown
        port, hidden = "", "/…"
    return f"{parts.scheme}://{host}{port}{hidden}"


@dataclass
class _Endpoint:
    url: str
    label: str  # redacted, for logs and status
    unhealthy_until: float = 0.0
    consecutive_failures: int = 0
    last_error: str | None = None
    head: int | None = None
    lagging: bool = False
    requests: int = 0
    failures: int = 0

    def cooling(self, now: float) -> bool:
        return now < self.unhealthy_until


# The node a task pinned with RpcClient.pinned(): (id of the client, endpoint).
_PINNED: contextvars.ContextVar[tuple[int, _Endpoint] | None] = contextvars.ContextVar(
    "stablegate_rpc_pinned", default=None
)


class RpcClient:
    """JSON-RPC over HTTP to one chain through several URLs.

    Calls go to the active URL (the last one that answered). A URL that fails is put aside for
    ``cooldown`` seconds and the call moves on: reads (:data:`READ_METHODS`) up to
    ``max_attempts`` times in all (default three per URL), anything else exactly once.
    :meth:`head` asks every usable URL for its block number and sets aside those more than
    ``max_lag_blocks`` behind the best until they catch up. When every URL is set aside the
    least bad one is still tried, so a single-URL client keeps working through blips.

    ``calls_made`` counts JSON-RPC calls sent (batch items one each, retries included) and
    ``http_requests`` the HTTP requests carrying them.

    Cooldowns read ``clock`` and the pause between failover rounds awaits ``sleep``, so tests
    can pass a :class:`~stablegate.clock.FakeClock` and its ``sleep`` instead of waiting.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout: float = 10.0,
        max_lag_blocks: int = 5,
        cooldown: float = 10.0,
        max_attempts: int | None = None,
        max_batch_calls: int = MAX_BATCH_CALLS,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        retry_delay: float = 0.05,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not urls:
            raise ValueError("at least one RPC URL is required")
        self.urls = list(urls)
        self.timeout = timeout
        self.max_lag_blocks = max_lag_blocks
        self.cooldown = cooldown
        self.max_attempts = max_attempts or 3 * len(self.urls)
        self.max_batch_calls = max_batch_calls
        self.max_request_bytes = max_request_bytes
        self.retry_delay = retry_delay
        self._clock = clock or SystemClock()
        self._sleep = sleep
        self.calls_made = 0
        self.http_requests = 0
        self._endpoints = [_Endpoint(url, redact_url(url)) for url in self.urls]
        self._active = self._endpoints[0]
        self._http = httpx.AsyncClient(timeout=timeout)
        self._ids = itertools.count(1)

    # -- public calls -------------------------------------------------------------------------

    async def call(self, method: str, params: Sequence[Any]) -> Any:
        """One call; its ``result``, or :class:`RpcError` (see :mod:`rpc_errors`)."""
        return await self._with_failover(
            method,
            method in READ_METHODS,
            lambda endpoint: self._call_on(endpoint, method, params),
        )

    async def batch(
        self, calls: Sequence[tuple[str, Sequence[Any]]], *, return_exceptions: bool = False
    ) -> list[Any]:
        """Results of ``calls`` in order, sent as JSON-RPC batches.

        Calls are split into batches of at most ``max_batch_calls`` calls and
        ``max_request_bytes`` bytes, sent one after the other; answers are matched by id, so
        out-of-order answers are fine. A batch of reads only fails over like :meth:`call` (a
        provider-side error in any item repeats the whole batch elsewhere). An item the node
        rejects raises its :class:`RpcError`, or with ``return_exceptions=True`` takes that
        exception's place in the result list.
        """
        results: list[Any] = []
        for chunk in self._chunks(calls):
            results.extend(await self._batch_chunk(chunk, return_exceptions))
        return results

    async def batch_one_request(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Results of ``calls`` sent as ONE HTTP request, so one node answers them all.

        Behind a load balancer, separate requests may reach nodes that disagree (one lagging,
        one on another fork); answers that must describe the same chain go together here.
        """
        calls = list(calls)
        if len(calls) > self.max_batch_calls:
            raise ValueError(f"{len(calls)} calls do not fit one request")
        return await self._batch_chunk(calls, return_exceptions=False)

    async def head(self) -> int:
        """The best block number among the usable URLs, asked concurrently; URLs lagging it by
        more than ``max_lag_blocks`` are avoided until a later :meth:`head` finds them caught up.
        """
        now = self._clock.monotonic()
        usable = [e for e in self._endpoints if not e.cooling(now)] or self._endpoints
        answers = await asyncio.gather(
            *(self._block_number(e) for e in usable), return_exceptions=True
        )
        heads = {e.url: a for e, a in zip(usable, answers, strict=True) if isinstance(a, int)}
        if not heads:
            failures = [f for a in answers if isinstance(a, RpcUnavailable) for f in a.failures]
            for answer in answers:
                if isinstance(answer, BaseException) and not isinstance(answer, RpcUnavailable):
                    raise answer
            raise RpcUnavailable("eth_blockNumber", failures)
        best = max(heads.values())
        for endpoint in self._endpoints:
            if endpoint.url in heads:
                endpoint.head = heads[endpoint.url]
                was_lagging = endpoint.lagging
                endpoint.lagging = best - endpoint.head > self.max_lag_blocks
                if endpoint.lagging != was_lagging:
                    log.warning(
                        "rpc_endpoint_lagging" if endpoint.lagging else "rpc_endpoint_caught_up",
                        url=endpoint.label,
                        head=endpoint.head,
                        best=best,
                    )
        return best

    @property
    def active_url(self) -> str:
        return self._active.url

    def status(self) -> list[dict[str, Any]]:
        """Per URL (redacted): whether it is active, healthy, lagging, its last known head,
        counters and last error; for ``stablegate chain status``."""
        now = self._clock.monotonic()
        return [
            {
                "url": e.label,
                "active": e is self._active,
                "healthy": not e.cooling(now),
                "lagging": e.lagging,
                "head": e.head,
                "requests": e.requests,
                "failures": e.failures,
                "consecutiveFailures": e.consecutive_failures,
                "lastError": e.last_error,
            }
            for e in self._endpoints
        ]

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- failover -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def pinned(self) -> AsyncIterator[str]:
        """Within the block (and the task running it), every call goes to ONE node.

        A watcher step reads the head, headers and logs and checks them against each other;
        answers from different nodes (one of them lagging, or on another fork) would pass
        those checks while describing different chains. A pinned node that fails is not
        replaced inside the block: the call raises and the step is retried, on whichever node
        is then healthiest. Yields the pinned URL.
        """
        endpoint = self._pick()
        token = _PINNED.set((id(self), endpoint))
        try:
            yield endpoint.url
        finally:
            _PINNED.reset(token)

    def demote_pinned(self, reason: str) -> None:
        """The pinned node contradicted the others: set it aside for the cooldown."""
        pinned = self._pinned_endpoint()
        if pinned is not None:
            self._failed(pinned, "consistency", reason)

    async def call_elsewhere(self, method: str, params: Sequence[Any]) -> Any:
        """A second opinion: the same read on a usable node other than the pinned one.
        Raises :class:`RpcUnavailable` when there is no other node or none answers."""
        pinned = self._pinned_endpoint()
        now = self._clock.monotonic()
        # Any other node is a witness: a lagging one still knows the blocks below its head and
        # one cooling after a blip may answer now. Healthy, in-step nodes are asked first.
        others = sorted(
            (e for e in self._endpoints if e is not pinned),
            key=lambda e: (e.cooling(now), e.lagging),
        )
        failures: list[tuple[str, str]] = []
        for endpoint in others:
            try:
                result = await self._call_on(endpoint, method, params)
            except EndpointFailure as failure:
                self._failed(endpoint, method, failure.reason)
                failures.append((endpoint.label, failure.reason))
                continue
            if result is None:
                # "I don't have it" (e.g. a lagging node asked about a newer block) is no opinion.
                failures.append((endpoint.label, "no answer"))
                continue
            return result
        raise RpcUnavailable(method, failures)

    def _pinned_endpoint(self) -> _Endpoint | None:
        pinned = _PINNED.get()
        if pinned is not None and pinned[0] == id(self):
            return pinned[1]
        return None

    def _pick(self) -> _Endpoint:
        """Usable before cooling, in step before lagging, the active one first, else in order."""
        pinned = self._pinned_endpoint()
        if pinned is not None:
            return pinned
        now = self._clock.monotonic()

        def rank(indexed: tuple[int, _Endpoint]) -> tuple[float, bool, bool, int]:
            index, endpoint = indexed
            cooling_until = endpoint.unhealthy_until if endpoint.cooling(now) else 0.0
            return (cooling_until, endpoint.lagging, endpoint is not self._active, index)

        return min(enumerate(self._endpoints), key=rank)[1]

    async def _with_failover(
        self, what: str, repeatable: bool, attempt: Callable[[_Endpoint], Awaitable[T]]
    ) -> T:
        failures: list[tuple[str, str]] = []
        attempts = self.max_attempts if repeatable else 1
        if self._pinned_endpoint() is not None:
            attempts = min(attempts, 2)  # the same node again, once; then the caller retries
        for number in range(attempts):
            endpoint = self._pick()
            if number and endpoint.cooling(self._clock.monotonic()):
                # Every URL failed just now: give them a moment before the next round.
                await self._sleep(min(self.retry_delay * number, 1.0))
            try:
                result = await attempt(endpoint)
            except EndpointFailure as failure:
                self._failed(endpoint, what, failure.reason)
                failures.append((endpoint.label, failure.reason))
                continue
            except RpcError:
                self._answered(endpoint)  # the URL is fine; the call was refused
                raise
            self._answered(endpoint)
            return result
        raise RpcUnavailable(what, failures)

    def _answered(self, endpoint: _Endpoint) -> None:
        endpoint.consecutive_failures = 0
        endpoint.unhealthy_until = 0.0
        self._active = endpoint

    def _failed(self, endpoint: _Endpoint, what: str, reason: str) -> None:
        endpoint.failures += 1
        endpoint.consecutive_failures += 1
        endpoint.last_error = reason
        endpoint.unhealthy_until = self._clock.monotonic() + self.cooldown
        log.warning("rpc_endpoint_failed", url=endpoint.label, call=what, reason=reason)

    async def _call_on(self, endpoint: _Endpoint, method: str, params: Sequence[Any]) -> Any:
        request_id = next(self._ids)
        request = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        body = await self._post(endpoint, request, calls=1)
        if not isinstance(body, dict) or body.get("id") != request_id:
            raise EndpointFailure(f"{method}: unexpected answer {preview(body)}")
        return unwrap(method, body)

    async def _block_number(self, endpoint: _Endpoint) -> int:
        """eth_blockNumber on this URL only, recording its health."""
        try:
            answer = await self._call_on(endpoint, "eth_blockNumber", [])
            if not isinstance(answer, str):
                raise EndpointFailure(f"eth_blockNumber: unexpected result {preview(answer)}")
            number = int(answer, 16)
        except (EndpointFailure, ValueError) as failure:
            reason = str(failure)
            self._failed(endpoint, "eth_blockNumber", reason)
            raise RpcUnavailable("eth_blockNumber", [(endpoint.label, reason)]) from None
        endpoint.consecutive_failures = 0
        endpoint.unhealthy_until = 0.0
        return number

    async def _post(self, endpoint: _Endpoint, payload: object, *, calls: int) -> Any:
        """Sends one HTTP request; its parsed JSON body, or :class:`EndpointFailure`."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        self.calls_made += calls
        self.http_requests += 1
        endpoint.requests += 1
        try:
            response = await self._http.post(
                endpoint.url, content=body, headers={"content-type": "application/json"}
            )
        except httpx.TimeoutException:
            raise EndpointFailure(f"timed out after {self.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise EndpointFailure(f"{type(exc).__name__}: {exc}") from None
        if nested_deeper_than(response.content, MAX_ANSWER_DEPTH):
            raise EndpointFailure(f"HTTP {response.status_code}: the answer nests too deep")
        try:
            parsed = json.loads(response.content)
        except ValueError:
            parsed = None
        status = response.status_code
        if status == 429 or status >= 500 or (status >= 400 and not _is_error_answer(parsed)):
            raise EndpointFailure(f"HTTP {status}")
        if parsed is None:
            raise EndpointFailure(f"HTTP {response.status_code}: body is not JSON")
        return parsed

    # -- batches ------------------------------------------------------------------------------

    def _chunks(
        self, calls: Sequence[tuple[str, Sequence[Any]]]
    ) -> Iterator[list[tuple[str, Sequence[Any]]]]:
        chunk: list[tuple[str, Sequence[Any]]] = []
        size = 0
        for method, params in calls:
            # Estimated size of the call in the body; ids and framing add a few bytes.
            item = len(json.dumps(params, separators=(",", ":"))) + len(method) + 50
            if chunk and (
                len(chunk) >= self.max_batch_calls or size + item > self.max_request_bytes
            ):
                yield chunk
                chunk, size = [], 0
            chunk.append((method, params))
            size += item
        if chunk:
            yield chunk

    async def _batch_chunk(
        self, calls: list[tuple[str, Sequence[Any]]], return_exceptions: bool
    ) -> list[Any]:
        async def attempt(endpoint: _Endpoint) -> list[Any]:
            ids = [next(self._ids) for _ in calls]
            request = [
                {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
                for i, (method, params) in zip(ids, calls, strict=True)
            ]
            body = await self._post(endpoint, request, calls=len(calls))
            if not isinstance(body, list):
                raise EndpointFailure(f"batch answered with {preview(body)}")
            by_id = {item.get("id"): item for item in body if isinstance(item, dict)}
            missing = [i for i in ids if i not in by_id]
            if missing:
                raise EndpointFailure(f"batch answer lacks {len(missing)} of {len(ids)} ids")
            results: list[Any] = []
            refused: RpcError | None = None
            for i, (method, _) in zip(ids, calls, strict=True):
                try:
                    results.append(unwrap(method, by_id[i]))
                except RpcError as exc:
                    results.append(exc)
                    refused = refused or exc
            # Provider-side item errors raised EndpointFailure above and repeat the batch.
            if refused is not None and not return_exceptions:
                raise refused
            return results

        what = f"batch of {len(calls)} ({calls[0][0]}…)"
        repeatable = all(method in READ_METHODS for method, _ in calls)
        return await self._with_failover(what, repeatable, attempt)


def _is_error_answer(parsed: Any) -> bool:
    """A JSON-RPC error object (some providers send those with HTTP 4xx/5xx)."""
    return isinstance(parsed, dict) and isinstance(parsed.get("error"), dict)
