"""A small async Ethereum JSON-RPC client with failover, and sending locally signed EIP-1559
transactions.

Raw RPC data stays raw (hex strings in TypedDicts); callers convert what they use.

Errors, all raised by :class:`RpcClient`:

- :class:`RpcError`: a call failed. Raised as such when the node rejected the call itself (a
  revert, invalid params, an unknown method): the same call would fail anywhere, so it is never
  retried on another URL.
- :class:`RpcRangeTooLarge` (an ``RpcError``): ``eth_getLogs`` asked for more than the provider
  serves (-32005, "query returned more than 10000 results", "block range", "response size"...);
  ask again with a smaller block range. Not retried elsewhere and not counted against the URL.
- :class:`RpcUnavailable` (an ``RpcError``): no URL gave a usable answer: transport errors,
  timeouts, HTTP errors (5xx, 429...), malformed or truncated JSON, provider-side JSON-RPC errors
  (-32603 internal, rate limits, "header not found"...). Reads were tried on the other URLs
  first; writes were sent once, so their outcome is unknown (re-sending the same raw transaction
  is harmless).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, TypeVar
from urllib.parse import urlsplit

import httpx
import structlog
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from stablegate.clock import Clock, SystemClock

log = structlog.get_logger("stablegate.rpc")

T = TypeVar("T")

# Fee cap when the node does not answer eth_maxPriorityFeePerGas.
DEFAULT_PRIORITY_FEE = 1_000_000_000
# eth_estimateGas finds the least gas that does not revert; a margin covers state drift.
GAS_MARGIN_PERCENT = 20

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

# JSON-RPC errors that say the provider, not the call, failed: worth another URL.
_PROVIDER_CODES = frozenset({-32603, -32005, -32002, -32001, 429})
_PROVIDER_HINTS = (
    "header not found",
    "missing trie node",
    "unknown block",
    "not synced",
    "syncing",
    "timeout",
    "timed out",
    "internal error",
    "unavailable",
    "try again",
    "busy",
    "overloaded",
    "capacity",
)
_RATE_LIMIT_HINTS = ("rate limit", "too many requests", "rate exceeded", "request rate")
_RANGE_HINTS = ("more than", "range", "limit", "response size", "too many", "exceed", "too large")


class RpcError(Exception):
    """A JSON-RPC call failed; ``data`` holds revert data when there is some."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data

    @property
    def revert_data(self) -> bytes | None:
        """The revert payload of a failed eth_call/eth_estimateGas, if the node returned it."""
        data = self.data
        if isinstance(data, dict):  # some nodes nest it: {"data": "0x..."}
            data = data.get("data")
        if isinstance(data, str) and data.startswith("0x"):
            try:
                return bytes.fromhex(data[2:])
            except ValueError:
                return None
        return None


class RpcRangeTooLarge(RpcError):
    """``eth_getLogs`` covered more blocks or results than the provider serves: halve the range."""


class RpcUnavailable(RpcError):
    """No URL gave a usable answer; ``failures`` lists (redacted URL, reason) per attempt."""

    def __init__(self, what: str, failures: Sequence[tuple[str, str]]) -> None:
        detail = "; ".join(f"{url}: {reason}" for url, reason in failures)
        super().__init__(-32603, f"{what}: no RPC endpoint answered ({detail})")
        self.failures = list(failures)


class TransactionReverted(Exception):
    def __init__(self, receipt: TransactionReceipt) -> None:
        super().__init__(f"transaction {receipt['transactionHash']} reverted")
        self.receipt = receipt


class Log(TypedDict):
    address: str
    topics: list[str]
    data: str
    blockNumber: str
    blockHash: str
    transactionHash: str
    logIndex: str
    removed: NotRequired[bool]


class TransactionReceipt(TypedDict):
    transactionHash: str
    blockNumber: str
    blockHash: str
    status: str  # "0x1" success, "0x0" reverted
    gasUsed: str
    effectiveGasPrice: str
    contractAddress: str | None
    logs: list[Log]


class _EndpointFailure(Exception):
    """This URL failed (not the call): try another one if the call may be repeated."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def redact_url(url: str) -> str:
    """Scheme, host and port only: provider URLs often carry an API key in the path or query."""
    parts = urlsplit(url)
    hidden = "/…" if parts.path.strip("/") or parts.query else ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
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
        """One call; its ``result``, or :class:`RpcError` (see the module docstring)."""
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
            except _EndpointFailure as failure:
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
            except _EndpointFailure as failure:
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
            raise _EndpointFailure(f"{method}: unexpected answer {_preview(body)}")
        return _unwrap(method, body)

    async def _block_number(self, endpoint: _Endpoint) -> int:
        """eth_blockNumber on this URL only, recording its health."""
        try:
            answer = await self._call_on(endpoint, "eth_blockNumber", [])
            if not isinstance(answer, str):
                raise _EndpointFailure(f"eth_blockNumber: unexpected result {_preview(answer)}")
            number = to_int(answer)
        except (_EndpointFailure, ValueError) as failure:
            reason = str(failure)
            self._failed(endpoint, "eth_blockNumber", reason)
            raise RpcUnavailable("eth_blockNumber", [(endpoint.label, reason)]) from None
        endpoint.consecutive_failures = 0
        endpoint.unhealthy_until = 0.0
        return number

    async def _post(self, endpoint: _Endpoint, payload: object, *, calls: int) -> Any:
        """Sends one HTTP request; its parsed JSON body, or :class:`_EndpointFailure`."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        self.calls_made += calls
        self.http_requests += 1
        endpoint.requests += 1
        try:
            response = await self._http.post(
                endpoint.url, content=body, headers={"content-type": "application/json"}
            )
        except httpx.TimeoutException:
            raise _EndpointFailure(f"timed out after {self.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise _EndpointFailure(f"{type(exc).__name__}: {exc}") from None
        try:
            parsed = json.loads(response.content)
        except ValueError:
            parsed = None
        status = response.status_code
        if status == 429 or status >= 500 or (status >= 400 and not _is_error_answer(parsed)):
            raise _EndpointFailure(f"HTTP {status}")
        if parsed is None:
            raise _EndpointFailure(f"HTTP {response.status_code}: body is not JSON")
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
                raise _EndpointFailure(f"batch answered with {_preview(body)}")
            by_id = {item.get("id"): item for item in body if isinstance(item, dict)}
            missing = [i for i in ids if i not in by_id]
            if missing:
                raise _EndpointFailure(f"batch answer lacks {len(missing)} of {len(ids)} ids")
            results: list[Any] = []
            refused: RpcError | None = None
            for i, (method, _) in zip(ids, calls, strict=True):
                try:
                    results.append(_unwrap(method, by_id[i]))
                except RpcError as exc:
                    results.append(exc)
                    refused = refused or exc
            # Provider-side item errors raised _EndpointFailure above and repeat the batch.
            if refused is not None and not return_exceptions:
                raise refused
            return results

        what = f"batch of {len(calls)} ({calls[0][0]}…)"
        repeatable = all(method in READ_METHODS for method, _ in calls)
        return await self._with_failover(what, repeatable, attempt)


def _is_error_answer(parsed: Any) -> bool:
    """A JSON-RPC error object (some providers send those with HTTP 4xx/5xx)."""
    return isinstance(parsed, dict) and isinstance(parsed.get("error"), dict)


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _unwrap(method: str, answer: dict[str, Any]) -> Any:
    """The result of one JSON-RPC answer; :class:`RpcError` if the node refused the call,
    :class:`_EndpointFailure` if the answer is malformed or the provider failed."""
    error = answer.get("error")
    if error is None:
        if "result" not in answer:
            raise _EndpointFailure(f"{method}: answer without result {_preview(answer)}")
        return answer["result"]
    if not isinstance(error, dict):
        raise _EndpointFailure(f"{method}: malformed error {_preview(error)}")
    try:
        code = int(error.get("code", -32603))
    except (TypeError, ValueError):
        code = -32603
    message = str(error.get("message", ""))
    kind = _classify(method, code, message)
    if kind is _EndpointFailure:
        raise _EndpointFailure(f"{method}: {code} {message}")
    raise kind(code, message, error.get("data"))


def _classify(method: str, code: int, message: str) -> type[Exception]:
    """Who failed: the call (:class:`RpcError`), its range (:class:`RpcRangeTooLarge`) or the
    provider (:class:`_EndpointFailure`)."""
    text = message.lower()
    if code == 3 or "revert" in text:
        return RpcError
    if any(hint in text for hint in _RATE_LIMIT_HINTS):
        return _EndpointFailure
    if method == "eth_getLogs" and (code == -32005 or any(hint in text for hint in _RANGE_HINTS)):
        return RpcRangeTooLarge
    if code in _PROVIDER_CODES or any(hint in text for hint in _PROVIDER_HINTS):
        return _EndpointFailure
    return RpcError


def to_int(value: str) -> int:
    return int(value, 16)


async def chain_id(rpc: RpcClient) -> int:
    return to_int(await rpc.call("eth_chainId", []))


async def get_code(rpc: RpcClient, address: str, block: str = "latest") -> bytes:
    return bytes.fromhex((await rpc.call("eth_getCode", [address, block]))[2:])


async def get_balance(rpc: RpcClient, address: str, block: str = "latest") -> int:
    return to_int(await rpc.call("eth_getBalance", [address, block]))


async def eth_call(
    rpc: RpcClient, to: str, data: bytes, *, sender: str | None = None, block: str = "latest"
) -> bytes:
    """Runs a call without a transaction; a revert raises :class:`RpcError` with revert data."""
    call: dict[str, str] = {"to": to, "data": "0x" + data.hex()}
    if sender is not None:
        call["from"] = sender
    return bytes.fromhex((await rpc.call("eth_call", [call, block]))[2:])


async def send_transaction(
    rpc: RpcClient,
    account: LocalAccount,
    to: str | None,
    data: bytes = b"",
    *,
    value: int = 0,
    gas: int | None = None,
) -> str:
    """Signs an EIP-1559 transaction locally and broadcasts it; returns its hash.

    ``to=None`` creates a contract. Nonce (pending), chain id, fees and, unless ``gas`` is given,
    the gas limit come from the node; an estimate that reverts raises :class:`RpcError`.
    """
    sender = account.address
    tx_fields: dict[str, Any] = {"from": sender, "data": "0x" + data.hex(), "value": hex(value)}
    if to is not None:
        tx_fields["to"] = to_checksum_address(to)
    nonce, cid, block, tip = await asyncio.gather(
        rpc.call("eth_getTransactionCount", [sender, "pending"]),
        rpc.call("eth_chainId", []),
        rpc.call("eth_getBlockByNumber", ["latest", False]),
        _priority_fee(rpc),
    )
    if gas is None:
        estimate = to_int(await rpc.call("eth_estimateGas", [tx_fields]))
        gas = estimate * (100 + GAS_MARGIN_PERCENT) // 100
    base_fee = to_int(block.get("baseFeePerGas") or "0x0")
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": to_int(cid),
        "nonce": to_int(nonce),
        "gas": gas,
        "maxPriorityFeePerGas": tip,
        "maxFeePerGas": 2 * base_fee + tip,
        "value": value,
        "data": data,
    }
    if to is not None:
        tx["to"] = to_checksum_address(to)
    signed = account.sign_transaction(tx)
    return str(await rpc.call("eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()]))


async def wait_receipt(
    rpc: RpcClient,
    tx_hash: str,
    timeout: float = 30,  # noqa: ASYNC109 (a deadline for the receipt, not for one await)
    poll_interval: float = 0.05,
) -> TransactionReceipt:
    """Polls until the transaction is mined; raises :class:`TimeoutError` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        receipt: TransactionReceipt | None = await rpc.call("eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            return receipt
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no receipt for {tx_hash} after {timeout}s")
        await asyncio.sleep(poll_interval)


async def transact(
    rpc: RpcClient,
    account: LocalAccount,
    to: str | None,
    data: bytes = b"",
    *,
    value: int = 0,
    gas: int | None = None,
    timeout: float = 30,  # noqa: ASYNC109 (a deadline for the receipt, not for one await)
) -> TransactionReceipt:
    """Sends, waits, and raises :class:`TransactionReverted` unless the receipt says success."""
    tx_hash = await send_transaction(rpc, account, to, data, value=value, gas=gas)
    receipt = await wait_receipt(rpc, tx_hash, timeout=timeout)
    if to_int(receipt["status"]) != 1:
        raise TransactionReverted(receipt)
    return receipt


async def _priority_fee(rpc: RpcClient) -> int:
    try:
        return to_int(await rpc.call("eth_maxPriorityFeePerGas", []))
    except RpcUnavailable:
        raise
    except RpcError:  # the node does not know the method
        return DEFAULT_PRIORITY_FEE
