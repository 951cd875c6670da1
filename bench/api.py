"""Merchant API throughput: signed createQrOrder against /healthz of the same server, same run.

For each backend (SQLite embedded, PostgreSQL, PostgreSQL with Redis holding the replay cache and
the rate limits) and each ``--workers`` count, this starts ``stablegate serve --workers N`` in a
fresh data dir and database, creates a merchant, checks one signed request by hand, then drives
the server with ``wrk`` at a fixed concurrency:

1. ``GET /healthz``: the framework's floor (routing, middleware, JSON) on this machine;
2. ``POST /api/v1/payment/createQrOrder``: signed (V2), each request with its own ``orderNo``
   and signature, pre-signed in Python just before the run, so the load generator only copies
   bytes;
3. the same with ``"inlineQr": true``, which renders the QR (segno, pure Python) inline.

It also times segno alone on distinct contents, to show why QR rendering stays off the creation
path (docs/DESIGN.md §2). Every non-2xx response makes the run invalid and is printed.

Usage::

    .venv/bin/python bench/api.py --duration 10 --connections 32 --backends sqlite,postgres
    # one API process against two, side by side, on PostgreSQL + Redis:
    .venv/bin/python bench/api.py --backends postgres-redis --workers 1,2

Needs ``wrk`` (Debian: ``apt-get install -y wrk``; ``--install-wrk`` does it when run as root)
and, for ``postgres``, a server reachable at ``--postgres-url`` that may create databases (for
``postgres-redis`` also Redis at ``--redis-url``). The figures are only comparable within one
run: wrk and the server share the machine's cores. With several API processes the server's CPU
is the sum over its process tree.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import platform
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
from cryptography.fernet import Fernet

from spy_record import py_spy_record
from stablegate.auth.signatures import sign_v2
from stablegate.auth.signing import signing_string
from stablegate.orders.payment_request import qr_png

ROOT = Path(__file__).resolve().parent.parent
STABLEGATE = Path(sys.executable).parent / "stablegate"
CREATE_PATH = "/api/v1/payment/createQrOrder"
HEALTH_PATH = "/healthz"
CHAIN_ID = 31337
# The widest window the server accepts: a pre-signed batch stays valid for one minute.
RECV_WINDOW_MS = 60_000
# Generation, warm-up and measurement must all fit inside the window, with slack for clock skew.
BATCH_BUDGET_S = 50
PAYOUT_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
CHAINS_TOML = f"""\
[chains.{CHAIN_ID}]
rpc_urls = ["http://127.0.0.1:8545"]
tokens = [ {{ symbol = "USDT", address = "0x5FbDB2315678afecb367f032d93F642f64180aa3", \
decimals = 6 }} ]
"""

# Replays pre-built raw HTTP requests from a file. Each wrk thread takes every n-th request, so
# no signed request is sent twice unless the file runs out ("exhausted", which spoils the run
# for signed requests: the server's replay cache refuses a signing string it has seen).
WRK_LUA = r"""
local threads = {}
local next_index = 0

function setup(thread)
  thread:set("thread_index", next_index)
  next_index = next_index + 1
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  cycle = args[3] == "cycle"
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  reqs = {}
  local pos, i = 1, 0
  while pos <= #data do
    local nl = string.find(data, "\n", pos, true)
    local len = tonumber(string.sub(data, pos, nl - 1))
    if i % nthreads == thread_index then
      reqs[#reqs + 1] = string.sub(data, nl + 1, nl + len)
    end
    pos = nl + 1 + len
    i = i + 1
  end
  data = nil
  nreqs = #reqs
  idx = 0
  exhausted = 0
  non2xx = 0
  statuses = {}
  first_errors = {}
end

function request()
  idx = idx + 1
  if idx > nreqs then
    idx = 1
    if not cycle then exhausted = exhausted + 1 end
  end
  return reqs[idx]
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if #first_errors < 5 then
      first_errors[#first_errors + 1] = key .. " " .. string.sub(body or "", 1, 400)
    end
  end
end

local function quote(s)
  s = string.gsub(s, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local non2xx_total, exhausted_total, status_totals, errors = 0, 0, {}, {}
  for _, t in ipairs(threads) do
    non2xx_total = non2xx_total + t:get("non2xx")
    exhausted_total = exhausted_total + t:get("exhausted")
    for k, v in pairs(t:get("statuses")) do
      status_totals[k] = (status_totals[k] or 0) + v
    end
    for _, e in ipairs(t:get("first_errors")) do
      if #errors < 5 then errors[#errors + 1] = quote(e) end
    end
  end
  local st = {}
  for k, v in pairs(status_totals) do st[#st + 1] = quote(k) .. ":" .. v end
  local e = summary.errors
  io.write("STABLEGATE_WRK_RESULT {",
    '"requests":', summary.requests, ",",
    '"duration_us":', summary.duration, ",",
    '"socket_errors":{"connect":', e.connect, ',"read":', e.read, ',"write":', e.write,
    ',"timeout":', e.timeout, "},",
    '"wrk_status_errors":', e.status, ",",
    '"non2xx":', non2xx_total, ",",
    '"exhausted":', exhausted_total, ",",
    '"statuses":{', table.concat(st, ","), "},",
    '"first_errors":[', table.concat(errors, ","), "],",
    '"latency_us":{"mean":', latency.mean, ',"max":', latency.max,
    ',"p50":', latency:percentile(50), ',"p90":', latency:percentile(90),
    ',"p99":', latency:percentile(99), "}}\n")
end
"""


@dataclass
class RunResult:
    """One wrk run: throughput, latency, correctness and where the CPU went."""

    name: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    non2xx: int
    socket_errors: dict[str, int]
    statuses: dict[str, int]
    exhausted: int
    first_errors: list[str]
    prepared: int
    server_cpu_pct: float  # of one core
    wrk_cpu_pct: float  # of one core
    db_cpu_pct: float  # of one core: the PostgreSQL backends serving this server's pool
    redis_cpu_pct: float  # of one core: the Redis server (0 without Redis)
    other_cpu_pct: float  # of one core: anything else on the machine (other jobs, PG's own)
    idle_background_pct: float  # of one core: the machine's load just before the run
    server_cpu_ms_per_req: float
    db_cpu_ms_per_req: float
    # The API processes' shares of the server CPU, largest first: how evenly the kernel spread
    # wrk's connections (one entry with a single process).
    process_cpu_shares: list[float]
    db_backends_opened: int  # PostgreSQL connections opened during the run (pool churn)
    busy: bool  # other jobs used the cores before or during the run: figures are suspect

    @property
    def valid(self) -> bool:
        return (
            self.non2xx == 0
            and self.exhausted == 0
            and not any(self.socket_errors.values())
            and self.requests > 0
        )


@dataclass
class BackendResult:
    backend: str
    workers: int
    runs: dict[str, RunResult] = field(default_factory=dict)
    warmups: list[RunResult] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return all(run.valid for run in [*self.warmups, *self.runs.values()])

    @property
    def label(self) -> str:
        return f"{self.backend} w{self.workers}"

    def ratios(self) -> dict[str, dict[str, float]]:
        health = self.runs["healthz"]
        out: dict[str, dict[str, float]] = {}
        for name, run in self.runs.items():
            if name == "healthz":
                continue
            out[name] = {
                "rps_ratio": run.rps / health.rps if health.rps else math.nan,
                "p50_ratio": run.p50_ms / health.p50_ms if health.p50_ms else math.nan,
                "p99_ratio": run.p99_ms / health.p99_ms if health.p99_ms else math.nan,
            }
        return out


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# Requests


def _raw_request(method: str, path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if method != "GET":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _create_body(order_no: str, *, inline_qr: bool) -> bytes:
    data: dict[str, object] = {
        "chainId": str(CHAIN_ID),
        "symbol": "USDT",
        "amount": "12.34",
        "orderNo": order_no,
    }
    if inline_qr:
        data["inlineQr"] = True
    return json.dumps(data, separators=(",", ":")).encode()


def _signed_headers(api_key: str, secret: bytes, body: bytes, now_ms: int) -> dict[str, str]:
    request_time = str(now_ms)
    window = str(RECV_WINDOW_MS)
    message = signing_string(api_key, request_time, window, "POST", CREATE_PATH, "", body)
    return {
        "BlockATM-API-Key": api_key,
        "BlockATM-Request-Time": request_time,
        "BlockATM-Rec_Window": window,
        "BlockATM-Signature-V2": sign_v2(secret, message),
        "Content-Type": "application/json",
    }


def _write_requests(path: Path, requests: Iterator[bytes]) -> int:
    count = 0
    with path.open("wb") as out:
        for raw in requests:
            out.write(f"{len(raw)}\n".encode())
            out.write(raw)
            count += 1
    return count


def _create_requests(
    host: str, api_key: str, secret: bytes, prefix: str, count: int, *, inline_qr: bool
) -> Iterator[bytes]:
    now_ms = int(time.time() * 1000)
    for i in range(count):
        body = _create_body(f"{prefix}-{i}", inline_qr=inline_qr)
        headers = _signed_headers(api_key, secret, body, now_ms)
        yield _raw_request("POST", CREATE_PATH, host, headers, body)


# ---------------------------------------------------------------------------------------------
# Processes and CPU accounting


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the file; the split starts at field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_cpu(root: int) -> dict[int, float]:
    """CPU seconds of ``root`` and of its children (the API processes of ``--workers N``)."""
    found = {root: _proc_cpu_s(root)}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == root:
                found[int(entry.name)] = _proc_cpu_s(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return found


def _redis_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"redis-server"):
                    pids.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
    return pids


def _machine_busy_s() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _background_load_pct(sample_s: float = 1.0) -> float:
    """The machine's busy CPU, in % of one core, over a short sample (our server idle)."""
    before = _machine_busy_s()
    time.sleep(sample_s)
    return 100 * (_machine_busy_s() - before) / sample_s


def _wait_for_quiet(limit_pct: float, max_wait_s: float) -> float:
    """Wait until other jobs leave the cores alone (or give up); returns the last sample."""
    deadline = time.monotonic() + max_wait_s
    load = _background_load_pct()
    while load > limit_pct and time.monotonic() < deadline:
        load = _background_load_pct()
    if load > limit_pct:
        print(f"   !! the machine is busy ({load:.0f}% of a core) before this run", flush=True)
    return load


class BackendCpuSampler:
    """CPU of the PostgreSQL backends serving one database, sampled from /proc while a run lasts.

    Backends come and go (SQLAlchemy closes pool-overflow connections on check-in), so the
    processes are found again every ``interval_s`` by their title ("postgres: ... <db> ...").
    A backend's CPU after its last sample is missed; the count of backends seen shows the churn.
    """

    def __init__(self, title: str | None, interval_s: float = 0.1) -> None:
        self.title = title
        self.interval_s = interval_s
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._baseline: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        assert self.title is not None
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                title = (entry / "cmdline").read_bytes()
                if self.title.encode() not in title or not title.startswith(b"postgres:"):
                    continue
                cpu = _proc_cpu_s(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
                continue
            pid = int(entry.name)
            self.first.setdefault(pid, cpu)
            self.last[pid] = cpu

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> BackendCpuSampler:
        if self.title is not None:
            self._sample()
            # Backends present at the start count from there; those that connect later from zero.
            self._baseline = set(self.first)
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.title is not None:
            self._stop.set()
            self._thread.join()
            self._sample()

    @property
    def cpu_s(self) -> float:
        if self.title is None:
            return 0.0
        return sum(
            cpu - (self.first[pid] if pid in self._baseline else 0.0)
            for pid, cpu in self.last.items()
        )

    @property
    def backends_opened(self) -> int:
        return 0 if self.title is None else len(set(self.last) - self._baseline)


def _ensure_wrk(install: bool) -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if install:
        print("wrk not found: apt-get install -y wrk", flush=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)
        found = shutil.which("wrk")
        if found:
            return found
    raise BenchError(
        "wrk is not installed. Install it with `apt-get install -y wrk` (Debian/Ubuntu, as root)"
        " or rerun with --install-wrk."
    )


def _stablegate(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(STABLEGATE), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"stablegate {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def _pg_url(admin_url: str, database: str, scheme: str) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit((scheme, parts.netloc, f"/{database}", parts.query, ""))


async def _pg_execute(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_pg_url(admin_url, urlsplit(admin_url).path[1:], "postgresql"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def _postgres_database(admin_url: str) -> Iterator[str]:
    name = f"stablegate_bench_{secrets.token_hex(4)}"
    asyncio.run(_pg_execute(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield _pg_url(admin_url, name, "postgresql+asyncpg")
    finally:
        asyncio.run(_pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# ---------------------------------------------------------------------------------------------
# The server under test


class Server:
    def __init__(
        self,
        workdir: Path,
        database_url: str,
        *,
        postgres: bool,
        workers: int = 1,
        redis_url: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.workers = workers
        self.redis = redis_url is not None
        # PostgreSQL backends show the database name in their process title.
        self.db_title = f" {urlsplit(database_url).path.rsplit('/', 1)[-1]} " if postgres else None
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.base_url = f"http://{self.host}"
        chains = workdir / "chains.toml"
        chains.write_text(CHAINS_TOML)
        self.env = {
            **os.environ,
            "STABLEGATE_DATA_DIR": str(workdir / "data"),
            "STABLEGATE_DATABASE_URL": database_url,
            "STABLEGATE_SECRET_KEY": Fernet.generate_key().decode(),
            "STABLEGATE_CHAINS_FILE": str(chains),
            "STABLEGATE_RATE_LIMIT_PER_MINUTE": "100000000",
            "STABLEGATE_LOG_LEVEL": "WARNING",
            "STABLEGATE_PUBLIC_URL": self.base_url,
        }
        if redis_url is not None:
            self.env["STABLEGATE_REDIS_URL"] = redis_url
        self.log_path = workdir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        if postgres:
            _stablegate(["migrate"], self.env)

    def create_merchant(self) -> tuple[str, bytes]:
        out = _stablegate(
            [
                "merchant",
                "create",
                "--name",
                "Bench Shop",
                "--payout-address",
                PAYOUT_ADDRESS,
                "--chain",
                str(CHAIN_ID),
                "--json",
            ],
            self.env,
        )
        created = json.loads(out.strip().splitlines()[-1])
        return created["apiKey"], created["secretKey"].encode()

    def start(self) -> None:
        log = self.log_path.open("wb")
        workers = ["--workers", str(self.workers)]
        self.process = subprocess.Popen(
            [str(STABLEGATE), "serve", "--host=127.0.0.1", f"--port={self.port}", *workers],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"the server exited early:\n{self.log_tail()}")
            try:
                if httpx.get(self.base_url + HEALTH_PATH, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            raise BenchError(f"the server did not answer /healthz within 120 s:\n{self.log_tail()}")
        # One process answering is not all of them: wait until the tree holds its N API
        # processes and none is still starting (importing burns a core), or the first warm-up
        # would give every connection to the process that came up first.
        while time.monotonic() < deadline:
            before = _process_cpu(self.pid)
            time.sleep(0.5)
            after = _process_cpu(self.pid)
            spent = sum(after.values()) - sum(before.values())
            if len(after) >= self.workers and spent < 0.05:
                return
        raise BenchError(f"the API processes did not settle within 120 s:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------
# Running wrk


@dataclass
class LoadShape:
    wrk: str
    threads: int
    connections: int
    timeout_s: int
    quiet_pct: float
    quiet_wait_s: float


def _run_wrk(
    shape: LoadShape,
    server: Server,
    workdir: Path,
    name: str,
    path: str,
    requests_file: Path,
    prepared: int,
    duration_s: float,
    *,
    cycle: bool,
    background_pct: float,
) -> RunResult:
    lua = workdir / "replay.lua"
    lua.write_text(WRK_LUA)
    command = [
        shape.wrk,
        f"-t{shape.threads}",
        f"-c{shape.connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={shape.timeout_s}s",
        "-s",
        str(lua),
        server.base_url + path,
        "--",
        str(requests_file),
        str(shape.threads),
        "cycle" if cycle else "once",
    ]
    redis_pids = _redis_pids() if server.redis else []
    with BackendCpuSampler(server.db_title) as db:
        tree0, machine0 = _process_cpu(server.pid), _machine_busy_s()
        redis0 = sum(_proc_cpu_s(pid) for pid in redis_pids)
        wrk0 = _children_cpu_s()
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        tree = _process_cpu(server.pid)
        machine = _machine_busy_s() - machine0
        redis_cpu = sum(_proc_cpu_s(pid) for pid in redis_pids) - redis0
        wrk_cpu = _children_cpu_s() - wrk0
    # The busiest N of the tree: the API processes (the supervisor and multiprocessing's
    # resource tracker sleep).
    per_process = sorted((cpu - tree0.get(pid, 0.0) for pid, cpu in tree.items()), reverse=True)
    per_process = per_process[: server.workers]
    server_cpu = sum(tree.values()) - sum(tree0.get(pid, 0.0) for pid in tree)
    db_cpu = db.cpu_s
    other_pct = 100 * max(0.0, machine - server_cpu - wrk_cpu - db_cpu - redis_cpu) / wall
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    line = next(
        (ln for ln in done.stdout.splitlines() if ln.startswith("STABLEGATE_WRK_RESULT ")), None
    )
    if line is None:
        raise BenchError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line.split(" ", 1)[1])
    seconds = raw["duration_us"] / 1e6
    latency = raw["latency_us"]
    requests = raw["requests"]
    return RunResult(
        name=name,
        requests=requests,
        seconds=round(seconds, 3),
        rps=round(requests / seconds, 1) if seconds else 0.0,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        mean_ms=round(latency["mean"] / 1000, 3),
        max_ms=latency["max"] / 1000,
        non2xx=raw["non2xx"],
        socket_errors=raw["socket_errors"],
        statuses=raw["statuses"],
        exhausted=raw["exhausted"],
        first_errors=raw["first_errors"],
        prepared=prepared,
        server_cpu_pct=round(100 * server_cpu / wall, 1),
        wrk_cpu_pct=round(100 * wrk_cpu / wall, 1),
        db_cpu_pct=round(100 * db_cpu / wall, 1),
        redis_cpu_pct=round(100 * redis_cpu / wall, 1),
        other_cpu_pct=round(other_pct, 1),
        idle_background_pct=round(background_pct, 1),
        server_cpu_ms_per_req=round(1000 * server_cpu / requests, 3) if requests else 0.0,
        db_cpu_ms_per_req=round(1000 * db_cpu / requests, 3) if requests else 0.0,
        process_cpu_shares=[
            round(cpu / server_cpu, 2) if server_cpu else 0.0 for cpu in per_process
        ],
        db_backends_opened=db.backends_opened,
        # "other" also holds PostgreSQL's shared processes and this script, hence the slack.
        busy=background_pct > shape.quiet_pct or other_pct > 2 * shape.quiet_pct,
    )


def _check_signed_request(server: Server, api_key: str, secret: bytes) -> None:
    """One request by hand before any load: the signing must be right, or every wrk call 401s."""
    for inline_qr in (False, True):
        body = _create_body(f"check-{secrets.token_hex(6)}", inline_qr=inline_qr)
        headers = _signed_headers(api_key, secret, body, int(time.time() * 1000))
        response = httpx.post(server.base_url + CREATE_PATH, content=body, headers=headers)
        if response.status_code != 200:
            raise BenchError(
                f"signed createQrOrder (inlineQr={inline_qr}) returned {response.status_code}: "
                f"{response.text[:500]}\n{server.log_tail()}"
            )
        order = response.json()
        if inline_qr and not str(order.get("qrCodeDataUrl", "")).startswith("data:image/png"):
            raise BenchError("inlineQr: true returned no qrCodeDataUrl")


def bench_backend(
    backend: str,
    database_url: str,
    workdir: Path,
    args: argparse.Namespace,
    shape: LoadShape,
    workers: int,
) -> BackendResult:
    print(f"\n== {backend}, {workers} API process(es): starting the server", flush=True)
    server = Server(
        workdir,
        database_url,
        postgres=backend != "sqlite",
        workers=workers,
        redis_url=args.redis_url if backend == "postgres-redis" else None,
    )
    api_key, secret = server.create_merchant()
    server.start()
    result = BackendResult(backend, workers)
    try:
        _check_signed_request(server, api_key, secret)
        health_file = workdir / "healthz.req"
        # One copy per wrk thread: each thread replays only its share of the file, and a thread
        # with none would hold its connections open without sending anything (until the
        # server's header deadline answers 408).
        health_request = _raw_request("GET", HEALTH_PATH, server.host, {}, b"")
        _write_requests(health_file, iter([health_request] * shape.threads))

        def health_run(name: str, duration: float) -> RunResult:
            background = _wait_for_quiet(shape.quiet_pct, shape.quiet_wait_s)
            return _run_wrk(
                shape,
                server,
                workdir,
                name,
                HEALTH_PATH,
                health_file,
                1,
                duration,
                cycle=True,
                background_pct=background,
            )

        def create_run(name: str, duration: float, count: int, *, inline_qr: bool) -> RunResult:
            background = _wait_for_quiet(shape.quiet_pct, shape.quiet_wait_s)
            # Signed just before the run: the batch is valid for RECV_WINDOW_MS from now.
            started = time.monotonic()
            requests_file = workdir / f"{name}.req"
            prefix = f"bench-{name}-{secrets.token_hex(4)}"
            requests = _create_requests(
                server.host, api_key, secret, prefix, count, inline_qr=inline_qr
            )
            prepared = _write_requests(requests_file, requests)
            signing_s = time.monotonic() - started
            if signing_s + duration > BATCH_BUDGET_S:
                raise BenchError(
                    f"signing {count} requests took {signing_s:.1f} s: with a {duration} s run "
                    f"the last ones would fall outside the {RECV_WINDOW_MS} ms receive window"
                )
            profile_dir = None if name.startswith("warmup") else args.py_spy
            with py_spy_record(
                profile_dir,
                f"{backend}-w{workers}-{name}",
                server.pid,
                subprocesses=True,
                duration_s=duration,
            ):
                run = _run_wrk(
                    shape,
                    server,
                    workdir,
                    name,
                    CREATE_PATH,
                    requests_file,
                    prepared,
                    duration,
                    cycle=False,
                    background_pct=background,
                )
            requests_file.unlink()
            return run

        print(f"   warm-up {args.warmup} s each", flush=True)
        warm = health_run("warmup-healthz", args.warmup)
        # healthz is an upper bound on createQrOrder's rate: size the warm-up batch from it.
        warm_count = max(2000, math.ceil(warm.rps * args.warmup * 1.2))
        warm_create = create_run("warmup-create", args.warmup, warm_count, inline_qr=False)
        result.warmups = [warm, warm_create]

        print(f"   healthz {args.duration} s", flush=True)
        health = health_run("healthz", args.duration)
        result.runs["healthz"] = health
        count = max(args.min_requests, math.ceil(health.rps * args.duration * 1.2))
        print(f"   createQrOrder {args.duration} s ({count} pre-signed requests)", flush=True)
        result.runs["createQrOrder"] = create_run(
            "createQrOrder", args.duration, count, inline_qr=False
        )
        print(f"   createQrOrder inlineQr {args.duration} s", flush=True)
        result.runs["createQrOrder+inlineQr"] = create_run(
            "createQrOrder+inlineQr", args.duration, count, inline_qr=True
        )
    finally:
        server.stop()
    for run in [*result.warmups, *result.runs.values()]:
        if not run.valid:
            print(f"!! {result.label} {run.name}: INVALID RUN", flush=True)
            print(f"   statuses {run.statuses} socket errors {run.socket_errors}", flush=True)
            print(f"   exhausted the pre-signed batch {run.exhausted} times", flush=True)
            for error in run.first_errors:
                print(f"   {error}", flush=True)
            print("   server log tail:\n" + server.log_tail(20), flush=True)
    return result


# ---------------------------------------------------------------------------------------------
# QR cost


def bench_qr(samples: int, quiet_pct: float, quiet_wait_s: float) -> dict[str, float | bool]:
    """Time segno on distinct contents (the cache would hide the cost): like a new order's QR.

    Wall time and this thread's CPU time per render; CPU time is the one other jobs on the
    machine disturb least.
    """
    background = _wait_for_quiet(quiet_pct, quiet_wait_s)
    render = qr_png.__wrapped__  # bypass the lru_cache: every new order has a new address
    contents = ["0x" + secrets.token_hex(20) for _ in range(samples + 5)]
    for content in contents[:5]:
        render(content)
    wall: list[float] = []
    cpu: list[float] = []
    for content in contents[5:]:
        started, started_cpu = time.perf_counter(), time.thread_time()
        render(content)
        wall.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - started_cpu)
    wall.sort()
    mean_ms = 1000 * statistics.fmean(wall)
    cpu_mean_ms = 1000 * statistics.fmean(cpu)
    return {
        "samples": samples,
        "mean_ms": round(mean_ms, 3),
        "p50_ms": round(1000 * wall[len(wall) // 2], 3),
        "p99_ms": round(1000 * wall[min(len(wall) - 1, int(len(wall) * 0.99))], 3),
        "cpu_mean_ms": round(cpu_mean_ms, 3),
        "orders_per_core_s_cap": round(1000 / cpu_mean_ms, 1),
        "busy": background > quiet_pct,
    }


# ---------------------------------------------------------------------------------------------
# Report


def _print_table(
    results: list[BackendResult], qr: dict[str, float | bool], shape: LoadShape
) -> None:
    columns = (
        ("backend", 17),
        ("endpoint", 22),
        ("req/s", 7),
        ("p50 ms", 7),
        ("p99 ms", 7),
        ("non2xx", 6),
        ("srv%", 5),
        ("srv ms/req", 10),
        ("db%", 4),
        ("db conn+", 8),
        ("rds%", 4),
        ("wrk%", 4),
        ("other%", 6),
        ("idle%", 5),
        ("rps/hz", 6),
        ("p50/hz", 6),
        ("p99/hz", 6),
        ("proc shares", 11),
    )
    print(
        f"\nwrk -t{shape.threads} -c{shape.connections}. CPU columns in % of one core "
        f"({os.cpu_count()} cores shared by wrk, the server and PostgreSQL).\n"
        "srv = the stablegate processes, db = their PostgreSQL backends, db conn+ = PostgreSQL "
        "connections opened during the run,\nrds = the Redis server, other = everything else "
        "during the run, idle = the machine's load just before it; x/hz = x / healthz of the "
        "same server;\nproc shares = each API process's share of the server CPU."
    )
    print(
        " ".join(
            f"{name:<{width}}" if i < 2 else f"{name:>{width}}"
            for i, (name, width) in enumerate(columns)
        )
    )
    print("-" * (sum(width for _, width in columns) + len(columns) - 1))
    for backend in results:
        ratios = backend.ratios()
        for name, run in backend.runs.items():
            r = ratios.get(name, {"rps_ratio": 1.0, "p50_ratio": 1.0, "p99_ratio": 1.0})
            cells = (
                backend.label,
                name,
                f"{run.rps:.0f}",
                f"{run.p50_ms:.2f}",
                f"{run.p99_ms:.1f}",
                str(run.non2xx),
                f"{run.server_cpu_pct:.0f}",
                f"{run.server_cpu_ms_per_req:.2f}",
                f"{run.db_cpu_pct:.0f}",
                str(run.db_backends_opened),
                f"{run.redis_cpu_pct:.0f}",
                f"{run.wrk_cpu_pct:.0f}",
                f"{run.other_cpu_pct:.0f}",
                f"{run.idle_background_pct:.0f}",
                f"{r['rps_ratio']:.3f}",
                f"{r['p50_ratio']:.1f}",
                f"{r['p99_ratio']:.1f}",
                "/".join(f"{share:.2f}" for share in run.process_cpu_shares),
            )
            line = " ".join(
                f"{cell:<{width}}" if i < 2 else f"{cell:>{width}}"
                for i, (cell, (_, width)) in enumerate(zip(cells, columns, strict=True))
            )
            print(line + ("" if run.valid else "  INVALID") + ("  BUSY" if run.busy else ""))
    print(
        f"\nQR (segno, {qr['samples']} distinct contents, no server running): "
        f"mean {qr['mean_ms']} ms, p50 {qr['p50_ms']} ms, p99 {qr['p99_ms']} ms wall; "
        f"{qr['cpu_mean_ms']} ms CPU => at most {qr['orders_per_core_s_cap']:.0f} renders/s "
        "per core" + ("  BUSY" if qr["busy"] else "")
    )
    for backend in results:
        create = backend.runs.get("createQrOrder")
        inline = backend.runs.get("createQrOrder+inlineQr")
        if create and inline and create.rps and create.server_cpu_ms_per_req:
            print(
                f"{backend.label}: createQrOrder {create.server_cpu_ms_per_req:.2f} ms server "
                f"CPU/req (p50 {create.p50_ms:.1f} ms at c={shape.connections}); one QR = "
                f"{qr['cpu_mean_ms'] / create.server_cpu_ms_per_req:.2f}x that. inlineQr: "
                f"{inline.rps:.0f} req/s vs {create.rps:.0f} ({inline.rps / create.rps:.2f}x), "
                f"{inline.server_cpu_ms_per_req:.2f} ms CPU/req, p50 {inline.p50_ms:.1f} ms"
            )
        health = backend.runs.get("healthz")
        if create and health and health.rps:
            print(f"{backend.label}: issue 12 targets: " + _targets(create, health))


# Issue 12's targets for one signed createQrOrder (docs/BENCHMARKS.md).
TARGET_CPU_MS = 1.2
TARGET_HEALTHZ_RATIO = 0.3
TARGET_P99_MS = 50.0


def _targets(create: RunResult, health: RunResult) -> str:
    checks = [
        ("CPU/order", create.server_cpu_ms_per_req, f"<= {TARGET_CPU_MS} ms", TARGET_CPU_MS, False),
        (
            "req/s / healthz",
            create.rps / health.rps,
            f">= {TARGET_HEALTHZ_RATIO}x",
            TARGET_HEALTHZ_RATIO,
            True,
        ),
        ("p99", create.p99_ms, f"< {TARGET_P99_MS} ms", TARGET_P99_MS, False),
    ]
    parts = []
    for name, value, wanted, limit, at_least in checks:
        met = value >= limit if at_least else value <= limit
        parts.append(f"{name} {value:.3g} ({wanted}: {'met' if met else 'MISSED'})")
    return ", ".join(parts)


def scaling(results: list[BackendResult]) -> dict[str, dict[str, float]]:
    """Per backend measured with several ``--workers`` counts: each count's req/s over the
    smallest count's, per endpoint ("postgres-redis w2" -> {"healthz": 1.4, ...})."""
    out: dict[str, dict[str, float]] = {}
    for backend in results:
        base = min((b for b in results if b.backend == backend.backend), key=lambda b: b.workers)
        if base is backend:
            continue
        out[backend.label] = {
            name: round(run.rps / base.runs[name].rps, 3)
            for name, run in backend.runs.items()
            if base.runs.get(name) and base.runs[name].rps
        }
    return out


def _print_scaling(results: list[BackendResult]) -> None:
    for label, ratios in scaling(results).items():
        base = label.split(" ")[0]
        smallest = min(b.workers for b in results if b.backend == base)
        shown = ", ".join(f"{name} {ratio:.2f}x" for name, ratio in ratios.items())
        print(f"{label} against w{smallest}, req/s: {shown}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per backend")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--timeout", type=int, default=10, help="wrk per-request timeout (s)")
    parser.add_argument(
        "--backends", default="sqlite,postgres", help="sqlite,postgres,postgres-redis"
    )
    parser.add_argument(
        "--workers",
        default="1",
        help="comma-separated API process counts, each run in turn (serve --workers N)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("STABLEGATE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
        help="Redis of the postgres-redis backend (keys expire; nothing is flushed)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "STABLEGATE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a database on a server where this user may CREATE DATABASE",
    )
    parser.add_argument(
        "--min-requests", type=int, default=20_000, help="minimum pre-signed requests per run"
    )
    parser.add_argument("--qr-samples", type=int, default=300, help="QR renders to time")
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=25,
        help="before each run, wait until other jobs use less than this %% of one core",
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=120, help="seconds to wait for that, at most"
    )
    parser.add_argument("--install-wrk", action="store_true", help="apt-get install wrk")
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="DIR",
        help="profile the createQrOrder runs with py-spy into DIR (perturbs the figures)",
    )
    args = parser.parse_args()

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgres", "postgres-redis"}
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    try:
        worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    except ValueError:
        parser.error("--workers takes comma-separated integers, e.g. 1,2")
    if not worker_counts or min(worker_counts) < 1:
        parser.error("--workers takes counts of at least 1")
    if args.duration + args.warmup > BATCH_BUDGET_S - 5:
        parser.error(f"--duration must stay well under the {RECV_WINDOW_MS} ms receive window")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    try:
        shape = LoadShape(
            _ensure_wrk(args.install_wrk),
            args.threads,
            args.connections,
            args.timeout,
            args.quiet_below,
            args.quiet_wait,
        )
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    cores = os.cpu_count()
    print(
        f"stablegate API bench, {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}, "
        f"{platform.machine()} {cores} cores, Python {platform.python_version()}"
    )
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s runs on the same "
        f"{cores} cores as the server (and PostgreSQL): absolute figures are a floor, "
        "ratios against /healthz of the same server are the point"
    )
    print(f"\n== QR: timing segno on {args.qr_samples} distinct contents", flush=True)
    qr = bench_qr(args.qr_samples, args.quiet_below, args.quiet_wait)

    results: list[BackendResult] = []
    try:
        for backend in backends:
            for workers in worker_counts:
                with tempfile.TemporaryDirectory(prefix=f"stablegate-bench-{backend}-") as tmp:
                    workdir = Path(tmp)
                    if backend == "sqlite":
                        url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
                        results.append(bench_backend(backend, url, workdir, args, shape, workers))
                    else:
                        with _postgres_database(args.postgres_url) as url:
                            results.append(
                                bench_backend(backend, url, workdir, args, shape, workers)
                            )
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    _print_table(results, qr, shape)
    _print_scaling(results)
    valid = all(b.valid for b in results)
    print("\nall runs valid (0 non-2xx, 0 socket errors)" if valid else "\nSOME RUNS ARE INVALID")
    busy = bool(qr["busy"]) or any(run.busy for b in results for run in b.runs.values())
    if busy:
        print("BUSY: other jobs used the cores during some runs; rerun on a quiet machine")
    summary = {
        "bench": "api",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": cores,
            "arch": platform.machine(),
            "python": platform.python_version(),
        },
        "wrk": {
            "threads": args.threads,
            "connections": args.connections,
            "duration_s": args.duration,
        },
        "valid": valid,
        "busy": busy,
        "qr": qr,
        "backends": {
            b.label: {
                "workers": b.workers,
                "runs": {name: asdict(run) for name, run in b.runs.items()},
                "ratios_vs_healthz": b.ratios(),
                "warmups_valid": all(run.valid for run in b.warmups),
            }
            for b in results
        },
        "scaling_vs_fewest_workers": scaling(results),
    }
    print(json.dumps(summary, separators=(",", ":")))
    return 0 if valid else 1


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
