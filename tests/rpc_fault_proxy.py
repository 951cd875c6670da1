"""A JSON-RPC proxy that misbehaves on purpose, for testing clients against bad providers.

``FaultProxy(upstream_url, seed=...)`` listens on a free local port (``.url``) and forwards
JSON-RPC (single calls and batches) to ``upstream_url``. By a seeded random policy, changeable
at runtime with :meth:`FaultProxy.set_policy`, it injects what real providers do:

- ``error_rate``: HTTP 500, HTTP 429, or a JSON-RPC -32603 (for one item of a batch);
- ``timeout_rate``: forwards the request (so a write does land) and then never answers;
- ``truncate_rate``: forwards, then cuts the answer short (valid HTTP with half the JSON, or a
  connection closed before the announced length);
- ``range_error_rate`` and ``max_logs_range``: ``eth_getLogs`` answered with -32005;
- ``lag_blocks``: answers as a node that many blocks behind: ``eth_blockNumber`` and the
  ``latest``/``pending``/``safe``/``finalized`` tags are moved back, blocks above that head are
  ``null`` (transactions and receipts are not hidden);
- ``fork_url``/``fork_rate``: answers from another node (say one that diverged, see
  :func:`start_diverged_fork`), like a load balancer over nodes that disagree; with
  ``fork_every`` = n, every n-th request also goes there whatever the dice say, so a test that
  asserts the other node was heard does not depend on how many requests a run happens to send;
- ``shuffle_batches``: answers batches in reverse order.

Random faults apply to every request, or only to requests with a method in ``only_methods``.
``injected`` counts each fault, ``methods`` every method received.

The server is a small asyncio HTTP/1.1 server on its own thread and event loop, so it keeps
answering while the test's loop is busy or blocked. Use ``with FaultProxy(...) as proxy:``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from stablegate.chain.anvil import AnvilNode

BLOCK_TAGS = ("latest", "pending", "safe", "finalized")
_REASONS = {200: "OK", 400: "Bad Request", 429: "Too Many Requests", 500: "Internal Server Error"}


@dataclass(frozen=True)
class FaultPolicy:
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    truncate_rate: float = 0.0
    range_error_rate: float = 0.0
    max_logs_range: int | None = None
    lag_blocks: int | None = None
    fork_url: str | None = None
    fork_rate: float = 0.0
    fork_every: int | None = None
    shuffle_batches: bool = False
    only_methods: frozenset[str] | None = None
    hang_seconds: float = 5.0


@dataclass
class _Reply:
    status: int
    body: bytes
    cut: bool = False  # close the connection before the announced length
    hang: bool = False  # never answer


class FaultProxy:
    def __init__(self, upstream_url: str, *, seed: int = 0, **policy: Any) -> None:
        self.upstream_url = upstream_url
        self.policy = FaultPolicy(**policy)
        self.injected: Counter[str] = Counter()
        self.methods: Counter[str] = Counter()
        self.requests = 0
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the proxy is not running")
        return f"http://127.0.0.1:{self.port}"

    def set_policy(self, **changes: Any) -> None:
        """Changes some policy fields; takes effect from the next request."""
        if "only_methods" in changes and changes["only_methods"] is not None:
            changes["only_methods"] = frozenset(changes["only_methods"])
        self.policy = dataclasses.replace(self.policy, **changes)

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the proxy is already running")
        if self.policy.only_methods is not None:
            self.set_policy(only_methods=self.policy.only_methods)
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, failure), name="fault-proxy", daemon=True
        )
        self._thread.start()
        if not ready.wait(10) or failure:
            raise RuntimeError(f"the proxy did not start: {failure}")

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        thread.join(10)
        self.port = None

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as exc:
            failure.append(exc)
            ready.set()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        self._stopped = asyncio.Event()
        connections: set[asyncio.Task[None]] = set()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            connections.add(task)
            try:
                await self._connection(reader, writer, http)
            except asyncio.CancelledError:
                pass  # stopping: end the connection quietly (asyncio logs cancelled handlers)
            finally:
                connections.discard(task)

        async with httpx.AsyncClient(timeout=30) as http:
            server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            await self._stopped.wait()
            server.close()
            for task in list(connections):
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)
            await server.wait_closed()

    # -- HTTP ---------------------------------------------------------------------------------

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, http: httpx.AsyncClient
    ) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                reply = await self._handle(body, http)
                if reply.hang:
                    await asyncio.sleep(self.policy.hang_seconds)
                    return
                announced = len(reply.body) * 2 if reply.cut else len(reply.body)
                writer.write(
                    f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Error')}\r\n"
                    f"content-type: application/json\r\ncontent-length: {announced}\r\n\r\n".encode()
                    + reply.body
                )
                await writer.drain()
                if reply.cut or headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    # -- JSON-RPC -----------------------------------------------------------------------------

    async def _handle(self, raw: bytes, http: httpx.AsyncClient) -> _Reply:
        self.requests += 1
        policy = self.policy
        try:
            parsed = json.loads(raw)
        except ValueError:
            return _Reply(400, json.dumps(_error({}, -32700, "parse error")).encode())
        is_batch = isinstance(parsed, list)
        items: list[dict[str, Any]] = parsed if is_batch else [parsed]
        methods = [str(item.get("method")) for item in items]
        self.methods.update(methods)

        faults_apply = policy.only_methods is None or bool(policy.only_methods & set(methods))
        roll = self._rng.random() if faults_apply else 1.0
        fault = None
        for name, rate in (
            ("timeout", policy.timeout_rate),
            ("truncate", policy.truncate_rate),
            ("error", policy.error_rate),
        ):
            if roll < rate:
                fault = name
                break
            roll -= rate
        if fault == "error":
            fault = self._rng.choice(["http_500", "http_429", "rpc_internal"])
            if fault != "rpc_internal":
                self.injected[fault] += 1
                status = 500 if fault == "http_500" else 429
                return _Reply(status, b"upstream trouble")

        upstream = self.upstream_url
        forced = policy.fork_every is not None and self.requests % policy.fork_every == 0
        # The roll is drawn even when forced, so a seed's other faults stay where they were.
        rolled = policy.fork_url is not None and self._rng.random() < policy.fork_rate
        if policy.fork_url is not None and (rolled or forced):
            upstream = policy.fork_url
            self.injected["fork"] += 1

        answers = await self._answer(items, upstream, policy, http, faults_apply)
        if fault == "rpc_internal":
            self.injected[fault] += 1
            victim = self._rng.randrange(len(answers))
            answers[victim] = _error(items[victim], -32603, "internal error")
        if is_batch and policy.shuffle_batches:
            answers.reverse()
        body = json.dumps(answers if is_batch else answers[0]).encode()
        if fault == "timeout":
            self.injected["timeout"] += 1
            return _Reply(200, b"", hang=True)
        if fault == "truncate":
            self.injected["truncate"] += 1
            if self._rng.random() < 0.5:
                return _Reply(200, body[: len(body) // 2])
            return _Reply(200, body[: len(body) // 2], cut=True)
        return _Reply(200, body)

    async def _answer(
        self,
        items: list[dict[str, Any]],
        upstream: str,
        policy: FaultPolicy,
        http: httpx.AsyncClient,
        faults_apply: bool,
    ) -> list[dict[str, Any]]:
        """Answers for ``items`` in order: some made here, the rest forwarded in one request."""
        answers: list[dict[str, Any] | None] = [None] * len(items)
        lagged: _LaggedView | None = None
        if policy.lag_blocks is not None:
            lagged = _LaggedView(upstream, policy.lag_blocks, http)
        forward: list[tuple[int, dict[str, Any]]] = []
        for index, item in enumerate(items):
            local = await self._local_answer(item, policy, lagged, faults_apply)
            if local is not None:
                answers[index] = local
                continue
            forward.append((index, item if lagged is None else await lagged.rewrite(item)))
        if forward:
            payload = [item for _, item in forward]
            response = await http.post(upstream, json=payload)
            by_id = {a.get("id"): a for a in response.json()}
            for index, item in forward:
                answers[index] = by_id.get(item.get("id")) or _error(item, -32603, "no answer")
        return [a for a in answers if a is not None]

    async def _local_answer(
        self,
        item: dict[str, Any],
        policy: FaultPolicy,
        lagged: _LaggedView | None,
        faults_apply: bool,
    ) -> dict[str, Any] | None:
        method = item.get("method")
        params = item.get("params") or []
        if method == "eth_getLogs" and params and isinstance(params[0], dict):
            limit = policy.max_logs_range
            if limit is not None:
                span = _logs_span(params[0])
                if span is not None and span > limit:
                    self.injected["range_limit"] += 1
                    return _error(item, -32005, f"query exceeds max block range {limit}")
            if faults_apply and self._rng.random() < policy.range_error_rate:
                self.injected["range_error"] += 1
                return _error(item, -32005, "query returned more than 10000 results")
        if lagged is not None:
            if method == "eth_blockNumber":
                self.injected["lag"] += 1
                return {"jsonrpc": "2.0", "id": item.get("id"), "result": hex(await lagged.head())}
            if method == "eth_getBlockByNumber" and params and isinstance(params[0], str):
                tag = params[0]
                if tag not in BLOCK_TAGS and int(tag, 16) > await lagged.head():
                    self.injected["lag"] += 1
                    return {"jsonrpc": "2.0", "id": item.get("id"), "result": None}
        return None


class _LaggedView:
    """The upstream as a node ``lag`` blocks behind would see it (resolved once per request)."""

    def __init__(self, upstream: str, lag: int, http: httpx.AsyncClient) -> None:
        self.upstream = upstream
        self.lag = lag
        self.http = http
        self._numbers: dict[str, int] = {}

    async def tag_number(self, tag: str) -> int:
        tag = "latest" if tag == "pending" else tag
        if tag not in self._numbers:
            request = {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber"}
            request["params"] = [tag, False]
            block = (await self.http.post(self.upstream, json=request)).json()["result"]
            self._numbers[tag] = max(0, int(block["number"], 16) - self.lag)
        return self._numbers[tag]

    async def head(self) -> int:
        return await self.tag_number("latest")

    async def rewrite(self, item: dict[str, Any]) -> dict[str, Any]:
        """The item with block tags replaced by this view's numbers."""
        params: list[Any] = []
        for param in item.get("params") or []:
            if isinstance(param, str) and param in BLOCK_TAGS:
                params.append(hex(await self.tag_number(param)))
            elif isinstance(param, dict) and ("fromBlock" in param or "toBlock" in param):
                log_filter = dict(param)
                for key in ("fromBlock", "toBlock"):
                    if log_filter.get(key) in BLOCK_TAGS:
                        log_filter[key] = hex(await self.tag_number(log_filter[key]))
                params.append(log_filter)
            else:
                params.append(param)
        return {**item, "params": params}


def _error(item: dict[str, Any], code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": item.get("id"), "error": {"code": code, "message": message}}


def _logs_span(log_filter: dict[str, Any]) -> int | None:
    first, last = log_filter.get("fromBlock"), log_filter.get("toBlock")
    if not isinstance(first, str) or not isinstance(last, str):
        return None
    if first in BLOCK_TAGS or last in BLOCK_TAGS:
        return None
    return int(last, 16) - int(first, 16) + 1


def start_diverged_fork(node: AnvilNode, fork_block: int) -> AnvilNode:
    """A second anvil node sharing ``node``'s history up to ``fork_block``: blocks mined on
    either afterwards differ. Stop it with ``.stop()``."""
    fork = AnvilNode(
        chain_id=node.chain_id,
        extra_args=["--fork-url", node.url, "--fork-block-number", str(fork_block)],
    )
    fork.start()
    return fork
