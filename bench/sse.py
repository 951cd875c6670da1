"""Live-status streams: a signed createQrOrder's latency idle and with 1,000 streams open.

For each backend this starts ``stablegate serve`` in a fresh data dir (one process, the rate
limits out of the way, 127.0.0.1 trusted as a proxy, stream caps of 125 per IP and 1,000 per
process), creates a merchant and 1,000 orders through the signed API, then in one run:

1. **idle**: ``--requests`` signed ``createQrOrder`` one after another on one keep-alive
   connection, and the server's CPU over a quiet ``--window``;
2. **streams**: opens ``--streams`` event streams, one per order, from 8 client addresses
   (``X-Forwarded-For`` through the trusted proxy), each read up to its first event, then the
   same quiet window and requests;
3. **after**: closes the streams and measures idle again, to show the machine did not drift.

It prints the latency (p50, p90, mean), the ratio streams ÷ idle, the server's CPU in % of a
core, and on PostgreSQL the database's transactions per second during the quiet windows (from
``pg_stat_database``). Streams refused with 429 are counted (none are expected at the defaults
here). The figures are comparable only within one run: client, server and database share the
machine's cores.

Usage::

    .venv/bin/python bench/sse.py --backends sqlite,postgres

The code under test is whatever ``stablegate`` imports: with ``PYTHONPATH`` pointing at another
checkout's ``src`` the same script measures that code (how the "before" figures were taken).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from cryptography.fernet import Fernet

from stablegate.auth.signatures import sign_v2
from stablegate.auth.signing import signing_string

STABLEGATE = Path(sys.executable).parent / "stablegate"
CREATE_PATH = "/api/v1/payment/createQrOrder"
CHAIN_ID = 31337
PAYOUT_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
CHAINS_TOML = f"""\
[chains.{CHAIN_ID}]
rpc_urls = ["http://127.0.0.1:8545"]
tokens = [ {{ symbol = "USDT", address = "0x5FbDB2315678afecb367f032d93F642f64180aa3", \
decimals = 6 }} ]
"""
ADDRESSES = [f"198.51.100.{n}" for n in range(1, 9)]
PER_IP = 125
PG_STATS_SETTLE_S = 11


class BenchError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stablegate(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(STABLEGATE), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"stablegate {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _pg_url(admin_url: str, database: str, scheme: str) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit((scheme, parts.netloc, f"/{database}", parts.query, ""))


async def _pg_fetch(admin_url: str, sql: str, *args: object) -> Any:
    import asyncpg

    conn = await asyncpg.connect(_pg_url(admin_url, urlsplit(admin_url).path[1:], "postgresql"))
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


@contextmanager
def _postgres_database(admin_url: str) -> Iterator[str]:
    name = f"stablegate_bench_{secrets.token_hex(4)}"
    asyncio.run(_pg_fetch(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        asyncio.run(_pg_fetch(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class Server:
    def __init__(self, workdir: Path, database_url: str, streams: int) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        chains = workdir / "chains.toml"
        chains.write_text(CHAINS_TOML)
        self.env = {
            **os.environ,
            "STABLEGATE_DATA_DIR": str(workdir / "data"),
            "STABLEGATE_DATABASE_URL": database_url,
            "STABLEGATE_SECRET_KEY": Fernet.generate_key().decode(),
            "STABLEGATE_CHAINS_FILE": str(chains),
            "STABLEGATE_RATE_LIMIT_PER_MINUTE": "100000000",
            "STABLEGATE_PUBLIC_PER_MINUTE": "100000000",
            "STABLEGATE_TRUSTED_PROXIES": "127.0.0.1/32",
            "STABLEGATE_LIVE_STREAMS_PER_IP": str(PER_IP),
            "STABLEGATE_LIVE_STREAMS_PER_PROCESS": str(streams),
            "STABLEGATE_LOG_LEVEL": "WARNING",
            "STABLEGATE_PUBLIC_URL": self.base_url,
        }
        self.log_path = workdir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        if not database_url.startswith("sqlite"):
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
        self.process = subprocess.Popen(
            [str(STABLEGATE), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"the server exited early:\n{self.log_tail()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise BenchError(f"the server did not answer /healthz within 60 s:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Creator:
    """Signed createQrOrder requests on one keep-alive connection, timed one by one."""

    def __init__(self, client: httpx.AsyncClient, api_key: str, secret: bytes) -> None:
        self.client = client
        self.api_key = api_key
        self.secret = secret

    async def create(self) -> tuple[str, float]:
        body = json.dumps(
            {
                "chainId": str(CHAIN_ID),
                "symbol": "USDT",
                "amount": "12.34",
                "orderNo": secrets.token_hex(8),
            },
            separators=(",", ":"),
        ).encode()
        request_time = str(int(time.time() * 1000))
        message = signing_string(self.api_key, request_time, "30000", "POST", CREATE_PATH, "", body)
        headers = {
            "BlockATM-API-Key": self.api_key,
            "BlockATM-Request-Time": request_time,
            "BlockATM-Rec_Window": "30000",
            "BlockATM-Signature-V2": sign_v2(self.secret, message),
            "Content-Type": "application/json",
        }
        started = time.perf_counter()
        response = await self.client.post(CREATE_PATH, content=body, headers=headers)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise BenchError(f"createQrOrder failed: {response.status_code} {response.text}")
        order_id: str = response.json()["orderId"]
        return order_id, elapsed

    async def latencies(self, count: int) -> dict[str, float]:
        times = sorted([(await self.create())[1] * 1000 for _ in range(count)])
        return {
            "p50_ms": round(statistics.median(times), 2),
            "p90_ms": round(times[int(0.9 * (len(times) - 1))], 2),
            "mean_ms": round(statistics.fmean(times), 2),
        }


class Stream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.status = 0

    @classmethod
    async def open(cls, port: int, order_id: str, client: str) -> Stream:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET /api/v1/public/orders/{order_id}/events HTTP/1.1\r\nHost: bench\r\n"
            f"Accept: text/event-stream\r\nX-Forwarded-For: {client}\r\n\r\n".encode()
        )
        stream = cls(reader, writer)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
        stream.status = int(head.split(b" ", 2)[1])
        if stream.status == 200:
            text = b""
            while b"event: order" not in text:  # the first event: the stream is live
                size = int((await asyncio.wait_for(reader.readline(), 120)).strip(), 16)
                text += (await reader.readexactly(size + 2))[:-2]
        return stream

    def close(self) -> None:
        self.writer.close()


async def _quiet_window(pid: int, seconds: float, pg: tuple[str, str] | None) -> dict[str, float]:
    """The server's CPU and the database's transactions while nothing but the streams runs."""
    xacts = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1"
    if pg:
        # An idle backend publishes its counters up to 10 s late: let the last phase's land.
        await asyncio.sleep(PG_STATS_SETTLE_S)
    before_xact = await _pg_fetch(pg[0], xacts, pg[1]) if pg else 0
    before_cpu = _proc_cpu_s(pid)
    started = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    result = {"server_cpu_pct": round(100 * (_proc_cpu_s(pid) - before_cpu) / elapsed, 1)}
    if pg:
        # PostgreSQL publishes these counters about once a second; the window is much longer.
        after_xact = await _pg_fetch(pg[0], xacts, pg[1])
        result["db_xact_per_s"] = round((after_xact - before_xact) / elapsed, 1)
    return result


async def _run(
    server: Server, streams: int, requests: int, window: float, pg: tuple[str, str] | None
) -> dict[str, Any]:
    api_key, secret = server.create_merchant()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=60) as client:
        creator = Creator(client, api_key, secret)
        order_ids = [(await creator.create())[0] for _ in range(streams)]  # also the warm-up
        idle = {**await _quiet_window(server.pid, window, pg), **await creator.latencies(requests)}

        gate = asyncio.Semaphore(100)

        async def one(i: int) -> Stream:
            async with gate:
                return await Stream.open(server.port, order_ids[i], ADDRESSES[i // PER_IP % 8])

        opened = await asyncio.gather(*(one(i) for i in range(streams)))
        live = sum(s.status == 200 for s in opened)
        refused = sum(s.status == 429 for s in opened)
        loaded = {
            **await _quiet_window(server.pid, window, pg),
            **await creator.latencies(requests),
            "open": live,
            "refused_429": refused,
        }
        for stream in opened:
            stream.close()
        await asyncio.sleep(2)  # let the server see the disconnects
        after = {**await _quiet_window(server.pid, window, pg), **await creator.latencies(requests)}
    return {
        "idle": idle,
        "streams": loaded,
        "after": after,
        "p50_ratio": round(loaded["p50_ms"] / idle["p50_ms"], 2),
        "mean_ratio": round(loaded["mean_ms"] / idle["mean_ms"], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--window", type=float, default=10.0, help="quiet seconds per phase")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "STABLEGATE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()

    # 1,000 client sockets here and 1,000 in the server (which inherits the limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * args.streams + 1024
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))

    import stablegate

    print(
        f"# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"stablegate from {Path(stablegate.__file__).parent}",
        flush=True,
    )
    results: dict[str, Any] = {}
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix="stablegate-sse-") as tmp:
            workdir = Path(tmp)
            with _database(backend, workdir, args.postgres_url) as (url, pg):
                server = Server(workdir, url, args.streams)
                server.start()
                try:
                    results[backend] = asyncio.run(
                        _run(server, args.streams, args.requests, args.window, pg)
                    )
                except BaseException:
                    print(server.log_tail(), file=sys.stderr)
                    raise
                finally:
                    server.stop()
        _print(backend, results[backend])
    print(json.dumps(results, separators=(",", ":")))
    return 0


@contextmanager
def _database(
    backend: str, workdir: Path, admin_url: str
) -> Iterator[tuple[str, tuple[str, str] | None]]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / 'gateway.db'}", None
        return
    with _postgres_database(admin_url) as name:
        yield _pg_url(admin_url, name, "postgresql+asyncpg"), (admin_url, name)


def _print(backend: str, result: dict[str, Any]) -> None:
    print(
        f"\n{backend}: streams open {result['streams']['open']}, "
        f"refused {result['streams']['refused_429']}"
    )
    print("phase    p50 ms  p90 ms  mean ms  server CPU %  db xact/s")
    for phase in ("idle", "streams", "after"):
        row = result[phase]
        print(
            f"{phase:<8}{row['p50_ms']:>7}{row['p90_ms']:>8}{row['mean_ms']:>9}"
            f"{row['server_cpu_pct']:>14}{row.get('db_xact_per_s', '-'):>11}"
        )
    print(f"streams / idle: p50 x{result['p50_ratio']}, mean x{result['mean_ratio']}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
