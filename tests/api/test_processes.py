"""``stablegate serve --workers N`` and ``run --workers N`` as real processes.

Which process answered a request is read from the log: with several processes every line
carries its ``pid``, and the request's ``X-Request-Id`` names its line. Requests go over fresh
connections, several at a time, so the kernel hands them to both processes; every loop that
waits for that has a deadline, and no assertion depends on how long anything took.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import REDIS_URL, unavailable
from tests.support import PAYOUT, MerchantKeys, Signer
from typer.testing import CliRunner

from stablegate.api.processes import in_memory_sqlite, limits_per_process, multi_process_problem
from stablegate.cli import app as cli
from stablegate.clock import SystemClock
from stablegate.config import Settings
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.merchants.service import create_merchant
from stablegate.secret_box import load_secret_box

QUERY = "/api/v1/payment/contractPayment"
START_BOUND = 120.0  # seconds for N fresh interpreters to import and start on a busy machine
# Seconds of requests for both processes to have answered; within the 60 s receive window of
# the one request the replay test sends again and again.
SPREAD_BOUND = 45.0
STOP_BOUND = 60.0

runner = CliRunner()


# ---------------------------------------------------------------------------------------------
# The rule at start-up


def settings_with(**fields: Any) -> Settings:
    return Settings(_env_file=None, **fields)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite://",
        "sqlite+aiosqlite:///:memory:",
        "sqlite:///file:db?mode=memory&uri=true",
    ],
)
def test_an_in_memory_sqlite_database_is_refused_for_several_processes(url: str) -> None:
    assert in_memory_sqlite(url)
    for redis_url in (None, "redis://127.0.0.1:6379/0"):  # Redis holds no orders
        settings = settings_with(database_url=url, redis_url=redis_url)
        assert multi_process_problem(settings, 1) is None
        problem = multi_process_problem(settings, 2)
        assert problem is not None and "in-memory SQLite" in problem and "--workers 1" in problem


@pytest.mark.parametrize(
    "url", ["sqlite+aiosqlite:////var/lib/gw.db", "postgresql+asyncpg://gw@db/gw", None]
)
def test_a_database_every_process_opens_holds_the_replay_cache(url: str | None) -> None:
    settings = settings_with(database_url=url)
    assert not in_memory_sqlite(settings.effective_database_url)
    assert multi_process_problem(settings, 8) is None
    # Without Redis the limits are each process's own; with it they are shared.
    assert limits_per_process(settings, 8)
    assert not limits_per_process(settings, 1)
    assert not limits_per_process(settings_with(database_url=url, redis_url="redis://r/0"), 8)


@pytest.mark.parametrize("command", ["serve", "run"])
def test_the_command_refuses_an_in_memory_database_with_exit_code_2(
    command: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STABLEGATE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STABLEGATE_DATABASE_URL", "sqlite+aiosqlite:///:memory:")
    result = runner.invoke(cli, [command, "--workers", "2", "--port", "1"])
    assert result.exit_code == 2, result.output
    assert "in-memory SQLite database" in " ".join(result.output.split())
    assert not list(tmp_path.iterdir())  # refused before anything was created


def test_workers_must_be_at_least_one() -> None:
    result = runner.invoke(cli, ["serve", "--workers", "0"])
    assert result.exit_code == 2
    assert "--workers" in result.output


# ---------------------------------------------------------------------------------------------
# Real processes


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def wait_for(what: str, condition: Callable[[], bool], bound: float) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Gateway:
    """``stablegate <command> --workers N`` in a subprocess, its log (JSON lines) in a file."""

    def __init__(self, settings: Settings, directory: Path, command: str, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / f"{command}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("STABLEGATE_")}
        assert settings.secret_key is not None
        env |= {
            "STABLEGATE_DATA_DIR": str(settings.data_dir),
            "STABLEGATE_DATABASE_URL": settings.effective_database_url,
            "STABLEGATE_CHAINS_FILE": str(settings.chains_file),
            "STABLEGATE_SECRET_KEY": settings.secret_key.get_secret_value(),
            "STABLEGATE_RATE_LIMIT_PER_MINUTE": str(settings.rate_limit_per_minute),
            "STABLEGATE_FAILED_AUTH_PER_MINUTE": str(settings.failed_auth_per_minute),
            "STABLEGATE_RATE_SOURCES": "",
            "STABLEGATE_METRICS_TOKEN": "metrics-token",
            "STABLEGATE_LOG_FORMAT": "json",
            "STABLEGATE_LOG_LEVEL": "INFO",
            # Each log line reaches the file when it is written: the test reads which process
            # answered a request from it, and a line left in an idle process's buffer never comes.
            "PYTHONUNBUFFERED": "1",
        }
        if settings.redis_url:
            env["STABLEGATE_REDIS_URL"] = settings.redis_url
        self.log_file = self.log_path.open("wb")
        port = ["--port", str(self.port)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stablegate.cli", command, f"--workers={workers}", *port],
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pids: list[int] = []

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        lines = self.log_path.read_text("utf-8", "replace").splitlines()
        records = []
        for line in lines:
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:  # a line still being written
                    continue
                if event is None or record.get("event") == event:
                    records.append(record)
        return records

    def wait_ready(self) -> list[int]:
        def ready() -> bool:
            assert self.process.poll() is None, f"the gateway exited:\n{self.log_text()}"
            return bool(self.events("api_processes_ready"))

        wait_for("the API processes", ready, START_BOUND)
        self.pids = self.events("api_processes_ready")[-1]["pids"]
        return self.pids

    def answered_by(self) -> dict[str, int]:
        """request id -> the pid whose request line names it."""
        return {r["request_id"]: r["pid"] for r in self.events("request")}

    def log_text(self) -> str:
        return self.log_path.read_text("utf-8", "replace")[-6000:]

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_BOUND)
        self.log_file.close()


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[[Settings, str, int], Gateway]]:
    started: list[Gateway] = []

    def start(settings: Settings, command: str, workers: int) -> Gateway:
        gateway = Gateway(settings, tmp_path, command, workers)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.close()


request_ids = (f"t{n:06d}" for n in itertools.count())


def send_until_both_answer(
    gateway: Gateway,
    make: Callable[[], tuple[str, dict[str, str]]],
    pids: set[int],
    counts: Callable[[int], bool] = lambda _status: True,
) -> list[tuple[int, str, int | None]]:
    """Send requests (``make``: path and headers), 8 at a time over fresh connections, until
    every pid in ``pids`` has answered one with a status that ``counts``; return (status, body,
    pid) of each (None where its log line is not there yet)."""

    async def send() -> list[tuple[int, str, int | None]]:
        answers: list[tuple[str, httpx.Response]] = []
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=gateway.url, limits=limits, timeout=30) as client:
            deadline = time.monotonic() + SPREAD_BOUND
            while True:
                batch = []
                for _ in range(8):
                    path, headers = make()
                    request_id = next(request_ids)
                    headers = headers | {"X-Request-Id": request_id}
                    batch.append((request_id, client.get(path, headers=headers)))
                responses = await asyncio.gather(*(call for _, call in batch))
                answers += zip((rid for rid, _ in batch), responses, strict=True)
                seen = gateway.answered_by()
                counted = {seen.get(rid) for rid, r in answers if counts(r.status_code)}
                if pids <= counted:
                    break
                assert time.monotonic() < deadline, "one process never answered"
        # A request's log line may land in the file just after its answer: give the stragglers
        # a moment. Which process answered is known for the requests whose line is there (the
        # loop above already saw every pid answer); the others read as None.
        deadline = time.monotonic() + 5
        seen = gateway.answered_by()
        while any(rid not in seen for rid, _ in answers) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            seen = gateway.answered_by()
        return [(r.status_code, r.text, seen.get(rid)) for rid, r in answers]

    return asyncio.run(send())


def error_code(body: str) -> str:
    code: str = json.loads(body)["error"]["code"]
    return code


def requests_counted(exposition: str, route: str) -> float:
    """``stablegate_http_requests_total`` of one route, every status."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "stablegate_http_requests_total" and sample.labels["route"] == route
    )


def add_merchant(settings: Settings, name: str) -> Signer:
    async def create() -> MerchantKeys:
        engine = make_engine(settings.effective_database_url)
        try:
            async with session_scope(make_sessionmaker(engine)) as session:
                created = await create_merchant(
                    session,
                    load_secret_box(settings),
                    SystemClock(),
                    name=name,
                    payout_address=PAYOUT,
                    chain_ids=[31337],
                )
        finally:
            await engine.dispose()
        return MerchantKeys(
            created.merchant_id, created.api_key, created.secret_key, created.webhook_secret
        )

    # Requests are timed by the real clock, as the server checks them.
    return Signer(asyncio.run(create()), SystemClock())  # type: ignore[arg-type]


@pytest.fixture
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable("Redis", str(exc))
    finally:
        client.close()
    return REDIS_URL


@pytest.mark.slow
def test_two_processes_on_postgresql_and_redis_share_replays_and_limits_and_stop_together(
    postgres_database: str,
    redis_url: str,
    chains_file: Path,
    tmp_path: Path,
    start_gateway: Callable[[Settings, str, int], Gateway],
) -> None:
    settings = settings_with(
        data_dir=tmp_path / "data",
        database_url=postgres_database,
        redis_url=redis_url,
        chains_file=chains_file,
        secret_key=Fernet.generate_key().decode(),
        rate_limit_per_minute=1,  # one request per key per minute: a second anywhere is a 429
        failed_auth_per_minute=10_000,  # replays are failed authentications; count them all
    )
    replayer = add_merchant(settings, "Replay Shop")
    limited = add_merchant(settings, "Limited Shop")
    gateway = start_gateway(settings, "serve", 2)
    pids = gateway.wait_ready()
    assert len(set(pids)) == 2
    assert all(parent_of(pid) == gateway.process.pid for pid in pids)

    # Both processes answer.
    health = send_until_both_answer(gateway, lambda: ("/healthz", {}), set(pids))
    assert {status for status, _, _ in health} == {200}
    # Whichever answers /metrics counts the requests of both.
    bearer = {"Authorization": "Bearer metrics-token"}
    scrapes = send_until_both_answer(gateway, lambda: ("/metrics", bearer), set(pids))
    assert {requests_counted(body, "/healthz") for _, body, _ in scrapes} == {len(health)}

    # One signed request, sent again and again: accepted once, refused by both processes.
    query = "orderNo=replayed"
    headers = replayer.headers("GET", QUERY, query=query, window="60000")
    copies = send_until_both_answer(
        gateway, lambda: (f"{QUERY}?{query}", headers), set(pids), lambda status: status == 401
    )
    accepted = [answer for answer in copies if answer[0] == 404]  # authenticated; no such order
    refused = [answer for answer in copies if answer[0] == 401]
    assert len(accepted) == 1 and len(refused) == len(copies) - 1
    assert {error_code(body) for _, body, _ in refused} == {"replayed_request"}
    assert {pid for _, _, pid in refused} - {None} == set(pids)

    # Distinct signed requests of one key: its one request a minute is spent once, in total.
    numbers = itertools.count()

    def distinct() -> tuple[str, dict[str, str]]:
        q = f"orderNo=limited-{next(numbers)}"
        return f"{QUERY}?{q}", limited.headers("GET", QUERY, query=q, window="60000")

    answers = send_until_both_answer(gateway, distinct, set(pids), lambda status: status != 404)
    assert [status for status, _, _ in answers].count(404) == 1
    over = [(error_code(body), pid) for status, body, pid in answers if status != 404]
    assert {code for code, _ in over} <= {"rate_limited", "ip_banned"}
    assert {pid for _, pid in over} - {None} == set(pids)

    # SIGTERM to the parent stops every process.
    gateway.process.send_signal(signal.SIGTERM)
    assert gateway.process.wait(timeout=STOP_BOUND) == 0, gateway.log_text()
    wait_for("the API processes to exit", lambda: not any(alive(pid) for pid in pids), STOP_BOUND)


@pytest.mark.slow
def test_run_keeps_one_set_of_workers_and_replaces_a_dead_api_process(
    chains_file: Path,
    tmp_path: Path,
    start_gateway: Callable[[Settings, str, int], Gateway],
) -> None:
    settings = settings_with(
        data_dir=tmp_path / "data",
        chains_file=chains_file,
        secret_key=Fernet.generate_key().decode(),
    )
    gateway = start_gateway(settings, "run", 2)
    pids = gateway.wait_ready()
    parent = gateway.process.pid
    send_until_both_answer(gateway, lambda: ("/readyz", {}), set(pids))
    # The workers run once, in the parent, beside the API processes.
    workers = gateway.events("webhook_worker_started")
    assert [record["pid"] for record in workers] == [parent]
    assert parent not in pids

    # SIGUSR1 makes an API process log its stacks, and it keeps serving.
    os.kill(pids[1], signal.SIGUSR1)
    wait_for(
        "the stack dump",
        lambda: any(r["pid"] == pids[1] for r in gateway.events("stack_dump")),
        STOP_BOUND,
    )

    # An API process that dies is replaced.
    os.kill(pids[0], signal.SIGKILL)
    wait_for(
        "a replacement",
        lambda: any(r["api_pid"] == pids[0] for r in gateway.events("api_process_exited")),
        START_BOUND,
    )

    def replaced() -> set[int]:
        children = [p for p in Path("/proc").iterdir() if p.name.isdigit()]
        found = set()
        for child in children:
            try:
                if parent_of(int(child.name)) == parent and "spawn_main" in (
                    (child / "cmdline").read_text()
                ):
                    found.add(int(child.name))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue
        return found

    wait_for("two API processes again", lambda: len(replaced()) == 2, START_BOUND)
    now = replaced()
    assert pids[0] not in now and pids[1] in now
    send_until_both_answer(gateway, lambda: ("/healthz", {}), now)

    # Killed outright, the parent leaves no API process behind: each notices and stops.
    os.kill(parent, signal.SIGKILL)
    gateway.process.wait(timeout=STOP_BOUND)
    wait_for("the orphans to stop", lambda: not any(alive(pid) for pid in now), STOP_BOUND)


@pytest.mark.slow
def test_a_process_that_cannot_start_stops_the_command_with_exit_code_1(
    chains_file: Path, tmp_path: Path
) -> None:
    # Only the API processes build a Redis client: a URL it cannot parse fails each of them.
    env = {k: v for k, v in os.environ.items() if not k.startswith("STABLEGATE_")} | {
        "STABLEGATE_DATA_DIR": str(tmp_path / "data"),
        "STABLEGATE_CHAINS_FILE": str(chains_file),
        "STABLEGATE_REDIS_URL": "nonsense://",
    }
    done = subprocess.run(
        [sys.executable, "-m", "stablegate.cli", "serve", "--workers=2", f"--port={free_port()}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=START_BOUND,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "before it was ready" in " ".join(done.stderr.split())
