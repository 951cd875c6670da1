"""`stablegate run`: API, watchers, webhook delivery, sweeper and the rate fetcher as tasks of
one process.

The embedded default (SQLite in the data dir). Each part is the same code the separate
commands run; they share one engine, one clock and one stop event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any

import structlog
import uvicorn

from stablegate.api.app import build_context, create_app
from stablegate.api.context import GatewayContext
from stablegate.api.processes import ApiProcesses, listen, prepare_shared_state
from stablegate.api.server import server_config, settle_heap
from stablegate.compat.callbacks import callback_formats
from stablegate.config import Settings
from stablegate.migrations import upgrade
from stablegate.rates.fetcher import RateFetcher
from stablegate.rates.sources import RateSource
from stablegate.sweeper.commands import run_sweepers
from stablegate.watcher.runner import run_watchers
from stablegate.webhooks.worker import WebhookWorker

log = structlog.get_logger("stablegate.run")

Worker = Callable[[GatewayContext, asyncio.Event], Coroutine[Any, Any, None]]


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the process's stop event ends every task."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_api(
    settings: Settings, host: str, port: int, stop: asyncio.Event
) -> tuple[GatewayContext, asyncio.Task[None]]:
    """Start the API server as a task; returns its context and task once it listens."""
    app = create_app(settings, migrate=False)
    ctx: GatewayContext = app.state.gateway
    await upgrade(ctx.engine)
    server = EmbeddedServer(server_config(app, settings, host, port))
    settle_heap()

    async def watch_stop() -> None:
        await stop.wait()
        server.should_exit = True

    task = asyncio.create_task(server.serve(), name="api")
    stopper = asyncio.create_task(watch_stop(), name="api-stop")
    task.add_done_callback(lambda _: stopper.cancel())
    while not server.started:
        if task.done():
            task.result()  # raises the start-up error
            raise RuntimeError("the API server stopped during start-up")
        await asyncio.sleep(0.02)
    return ctx, task


async def serve_api_processes(
    settings: Settings, host: str, port: int, count: int, stop: asyncio.Event
) -> tuple[GatewayContext, asyncio.Task[None]]:
    """Like :func:`serve_api` with the API in ``count`` processes of its own; the context is
    this process's, for the workers (the caller closes it), and the task supervises them."""
    await prepare_shared_state(settings, migrate=True)
    sock = listen(host, port)
    processes = ApiProcesses(settings, sock, count)
    try:
        await processes.start(stop)
    except BaseException:
        sock.close()
        raise

    async def supervise() -> None:
        try:
            await processes.run(stop)
        finally:
            sock.close()

    return build_context(settings), asyncio.create_task(supervise(), name="api")


async def close_context(ctx: GatewayContext) -> None:
    await ctx.engine.dispose()
    if ctx.redis is not None:
        await ctx.redis.aclose()


async def run_embedded(
    settings: Settings,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    workers: list[Worker] | None = None,
    rate_sources: Sequence[RateSource] | None = None,
    api_processes: int = 1,
) -> None:
    """``rate_sources``: what the rate fetcher asks (``rates.sources.build_sources``); None
    runs no fetcher, and fiat-priced orders then use fixed rates or another process's fetches.
    ``api_processes`` above 1 runs the API in that many processes of its own
    (:mod:`stablegate.api.processes`) and only the workers in this one."""
    if api_processes == 1:
        ctx, api = await serve_api(settings, host, port, stop)
    else:
        ctx, api = await serve_api_processes(settings, host, port, api_processes, stop)
    log.info(
        "api_listening",
        url=f"http://{host}:{port}",
        public_url=settings.public_url,
        **({"processes": api_processes} if api_processes > 1 else {}),
    )
    tasks: list[asyncio.Task[Any]] = [
        asyncio.create_task(
            run_watchers(settings, ctx.registry, ctx.sessions, ctx.clock, stop), name="watchers"
        ),
        api,
    ]
    if settings.relayer_key is not None:
        tasks.append(
            asyncio.create_task(
                run_sweepers(settings, ctx.registry, ctx.sessions, ctx.clock, stop),
                name="sweepers",
            )
        )
    else:
        log.warning("sweeper_off", reason="STABLEGATE_RELAYER_KEY is not set")
    deliveries = WebhookWorker(
        ctx.sessions,
        ctx.clock,
        settings,
        ctx.secret_box,
        ctx.signing_key,
        callback_formats=callback_formats(),
    )
    tasks.append(asyncio.create_task(deliveries.run_forever(stop), name="webhooks"))
    if rate_sources is not None:
        fetcher = RateFetcher(ctx.sessions, ctx.clock, settings, rate_sources)
        tasks.append(asyncio.create_task(fetcher.run_forever(stop), name="rates"))
    else:
        log.warning("rate_fetcher_off", reason="no rate sources were given to this process")
    tasks += [asyncio.create_task(worker(ctx, stop)) for worker in workers or []]
    try:
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        if api_processes > 1:  # else the API's lifespan closes the context
            await asyncio.wait(tasks)
            await close_context(ctx)
