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

from stablegate.api.app import create_app
from stablegate.api.context import GatewayContext
from stablegate.api.server import server_config
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


async def run_embedded(
    settings: Settings,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    workers: list[Worker] | None = None,
    rate_sources: Sequence[RateSource] | None = None,
) -> None:
    """``rate_sources``: what the rate fetcher asks (``rates.sources.build_sources``); None
    runs no fetcher, and fiat-priced orders then use fixed rates or another process's fetches."""
    ctx, api = await serve_api(settings, host, port, stop)
    log.info("api_listening", url=f"http://{host}:{port}", public_url=settings.public_url)
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
