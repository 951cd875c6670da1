"""Several API processes on one listening socket: ``serve --workers N`` and ``run --workers N``.

The parent binds the socket, then starts N processes (fresh interpreters, not forks: the parent
may already hold an event loop, database connections and threads), each running the gateway's
server (:mod:`stablegate.api.server`, so every connection limit holds per process) on that
socket; the kernel gives each new connection to one of them. The parent:

- migrates the embedded database and loads or generates the keys in the data dir before any
  process starts, so N processes starting together never race to do it;
- restarts a process that dies after it was ready, and stops them all when one fails to start
  (a broken setting would fail the same way on every restart);
- on its stop event (SIGTERM or SIGINT) sends SIGTERM to each process, which finishes its
  requests, and kills what is left after :data:`STOP_GRACE_S`.

A process whose parent is gone (SIGKILL) stops itself within a second. ``/metrics`` of any
process reports the counters of all of them: each writes its values to files in a directory the
parent creates and removes (Prometheus' multi-process mode).

What must be shared between processes is (:func:`multi_process_problem`): the replay cache is in
Redis when ``STABLEGATE_REDIS_URL`` is set, else in the database, so only a database each process
would hold in its own memory (SQLite ``:memory:``) is refused. Rate limits and bans are shared
only through Redis; without it each process counts on its own (:func:`limits_per_process`).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event as ProcessEvent

import structlog
import uvicorn
from sqlalchemy.engine import make_url

from stablegate.chain.registry import load_registry
from stablegate.config import Settings
from stablegate.db.engine import make_engine
from stablegate.logs import configure_logging
from stablegate.migrations import upgrade
from stablegate.secret_box import load_secret_box
from stablegate.stacks import install_stack_dump
from stablegate.webhooks.signing_key import load_signing_key

log = structlog.get_logger("stablegate.api")

STOP_GRACE_S = 30.0  # after SIGTERM, how long a process may take to finish its requests
_POLL_S = 0.05
_SPAWN = multiprocessing.get_context("spawn")


class ApiProcessFailed(RuntimeError):
    """An API process exited before it was ready to serve."""


def in_memory_sqlite(database_url: str) -> bool:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return False
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def multi_process_problem(settings: Settings, processes: int) -> str | None:
    """Why ``processes`` API processes cannot share these settings, or None when they can.

    A signed request must be accepted once whichever process gets it: the replay cache is in
    Redis when one is configured, else in the database (``api.app.build_context``), which is
    shared unless it lives in each process's memory."""
    if processes > 1 and in_memory_sqlite(settings.effective_database_url):
        return (
            f"--workers {processes} needs a database every process opens: STABLEGATE_DATABASE_URL"
            " is an in-memory SQLite database, so each process would have its own, replay cache"
            " included, and a signed request could be accepted once per process. Use a SQLite"
            " file (the default) or PostgreSQL, or --workers 1."
        )
    return None


def limits_per_process(settings: Settings, processes: int) -> bool:
    """Whether each process would count rate limits and bans on its own (no Redis)."""
    return processes > 1 and not settings.redis_url


async def prepare_shared_state(settings: Settings, *, migrate: bool) -> None:
    """What N processes must not each do at start-up: check the chains file, load or generate
    the keys in the data dir, migrate the database. Raises what ``create_app`` would."""
    load_registry(settings.chains_file)
    load_secret_box(settings)
    load_signing_key(settings)
    if migrate:
        engine = make_engine(settings.effective_database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()


def listen(host: str, port: int) -> socket.socket:
    """The socket every API process accepts on (raises OSError when the address is taken)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


# ---------------------------------------------------------------------------------------------
# In each API process


class _ReadyServer(uvicorn.Server):
    """uvicorn's server that tells the parent once it accepts connections; SIGUSR1 dumps its
    stacks (uvicorn handles only SIGINT and SIGTERM)."""

    def __init__(self, config: uvicorn.Config, ready: ProcessEvent) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            install_stack_dump()
            self._ready.set()


def _stop_with_parent(parent: int) -> None:
    """SIGTERM this process (a graceful stop) once its parent is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _serve(
    settings: Settings, sock: socket.socket, ready: ProcessEvent, parent: int, metrics_dir: str
) -> None:
    """The body of one API process (imported by name in the new interpreter)."""
    from prometheus_client import values

    from stablegate.api.app import create_app
    from stablegate.api.context import GatewayContext
    from stablegate.api.server import server_config, settle_heap

    configure_logging(settings.log_format, settings.log_level, pid=True)
    _stop_with_parent(parent)
    # Before any metric holds a value: values go to files in metrics_dir, which /metrics of
    # any process reads whole.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    host, port = sock.getsockname()[:2]
    app = create_app(settings, migrate=False)
    ctx: GatewayContext = app.state.gateway
    ctx.metrics.multiprocess_dir = metrics_dir
    server = _ReadyServer(server_config(app, settings, host, port), ready)
    settle_heap()
    # Ctrl-C reaches the whole process group: uvicorn stops gracefully, then raises SIGINT
    # again, which has nothing left to interrupt.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])


# ---------------------------------------------------------------------------------------------
# In the parent


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


@dataclass
class _Child:
    process: SpawnProcess
    ready: ProcessEvent
    was_ready: bool = False


class ApiProcesses:
    """N API processes on ``sock``: :meth:`start`, then :meth:`run` until ``stop`` is set."""

    def __init__(self, settings: Settings, sock: socket.socket, count: int) -> None:
        if count < 1:
            raise ValueError("at least one API process")
        self._settings = settings
        self._sock = sock
        self._count = count
        self._children: list[_Child] = []
        self._metrics_dir: str | None = None

    @property
    def pids(self) -> list[int]:
        return [child.process.pid for child in self._children if child.process.pid is not None]

    def _spawn(self) -> _Child:
        assert self._metrics_dir is not None
        ready = _SPAWN.Event()
        process = _SPAWN.Process(
            target=_serve,
            args=(self._settings, self._sock, ready, os.getpid(), self._metrics_dir),
            name="stablegate-api",
        )
        process.start()
        return _Child(process, ready)

    def _check(self) -> bool:
        """Note who became ready; restart who died after being ready; True when all are ready.
        Raises ApiProcessFailed for a process that died before it was ready."""
        for index, child in enumerate(self._children):
            if not child.was_ready and child.ready.is_set():
                child.was_ready = True
            code = child.process.exitcode
            if code is None:
                continue
            if not child.was_ready:
                raise ApiProcessFailed(
                    f"API process {child.process.pid} exited with code {code} before it was"
                    " ready; its log above says why"
                )
            log.warning("api_process_exited", api_pid=child.process.pid, exit_code=code)
            self._children[index] = self._spawn()
        return all(child.was_ready for child in self._children)

    async def start(self, stop: asyncio.Event) -> None:
        """Start the processes and return once every one accepts connections (or ``stop``)."""
        self._metrics_dir = tempfile.mkdtemp(prefix="stablegate-metrics-")
        self._children = [self._spawn() for _ in range(self._count)]
        try:
            while not self._check() and not stop.is_set():
                await _pause(stop, _POLL_S)
        except BaseException:
            await self.terminate()
            raise
        if not stop.is_set():
            log.info("api_processes_ready", pids=self.pids)

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the processes running until ``stop`` is set, then stop them."""
        try:
            while not stop.is_set():
                self._check()
                await _pause(stop, _POLL_S * 10)
        finally:
            await self.terminate()

    async def terminate(self) -> None:
        """SIGTERM every process; SIGKILL those still running after :data:`STOP_GRACE_S`."""
        for child in self._children:
            if child.process.exitcode is None and child.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in self._children:
            await asyncio.to_thread(child.process.join, max(0.0, deadline - time.monotonic()))
            if child.process.exitcode is None:
                log.warning("api_process_killed", api_pid=child.process.pid, after_s=STOP_GRACE_S)
                child.process.kill()
                await asyncio.to_thread(child.process.join)
        if self._metrics_dir is not None:
            shutil.rmtree(self._metrics_dir, ignore_errors=True)


async def serve_processes(
    settings: Settings, host: str, port: int, count: int, stop: asyncio.Event
) -> None:
    """``serve --workers N``: the API in ``count`` processes until ``stop`` is set."""
    await prepare_shared_state(settings, migrate=settings.is_embedded)
    sock = listen(host, port)
    try:
        processes = ApiProcesses(settings, sock, count)
        await processes.start(stop)
        log.info("api_listening", url=f"http://{host}:{port}", processes=count)
        await processes.run(stop)
    finally:
        sock.close()
