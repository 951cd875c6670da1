"""What authentication costs per request, by outcome, in one process (no sockets, no wrk).

The merchant API is driven in-process through httpx's ASGI transport, one request at a time, on
the embedded SQLite database with the in-process limiter (or Redis with ``--redis-url``):

1. ``signed read``: a correctly signed (V2) ``GET contractPayment`` (404, the order is not there);
2. ``key-only read``: the same read with the API key alone;
3. ``junk, fresh address``: a wrong signature with a valid API key, each from its own address
   (through a trusted proxy's ``X-Forwarded-For``), answered 401;
4. ``junk, over-budget address``: the same from one address whose failed-authentication budget
   is used up, answered 429.

Only failures are limited, after authenticating, so (4) costs what (3) costs: the body is read,
the key looked up and the signature checked before the failure is counted. Each figure is given
as wall time and as this process's CPU time per request (all threads: the SQLite driver runs in
one), the latter being what matters on a busy machine. The per-key limits are set out of the way
and the gateway's clock stands still (so no budget refills). Figures are the median of
``--rounds`` rounds of ``--requests`` requests.

Usage::

    .venv/bin/python bench/auth.py --requests 400 --rounds 5 [--redis-url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from stablegate.api.app import create_app
from stablegate.auth.signatures import sign_v2
from stablegate.auth.signing import signing_string
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.db.engine import session_scope
from stablegate.merchants.service import create_merchant
from stablegate.migrations import upgrade

PATH = "/api/v1/payment/contractPayment"
PAYOUT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


async def run(requests: int, rounds: int, redis_url: str | None) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="stablegate-bench-auth-"))
    (tmp / "chains.toml").write_text('[chains.31337]\nrpc_urls = ["http://127.0.0.1:1"]\n')
    settings = Settings(
        data_dir=tmp,
        chains_file=tmp / "chains.toml",
        secret_key=Fernet.generate_key().decode(),
        redis_url=redis_url,
        rate_limit_per_minute=100_000_000,
        unsigned_reads_per_minute=100_000_000,
        trusted_proxies=["127.0.0.1"],
        _env_file=None,
    )
    # A clock that stands still: the over-budget address stays over budget for the whole run.
    clock = FakeClock(int(time.time() * 1000))
    app = create_app(settings, clock=clock, migrate=False)
    ctx = app.state.gateway
    await upgrade(ctx.engine)
    async with session_scope(ctx.sessions) as session:
        merchant = await create_merchant(
            session, ctx.secret_box, ctx.clock, name="bench", payout_address=PAYOUT, chain_ids=[]
        )
    api_key, secret = merchant.api_key, merchant.secret_key.encode()
    counter = iter(range(10**9))

    def signed(query: str) -> dict[str, str]:
        now = str(clock.now_ms())
        message = signing_string(api_key, now, "60000", "GET", PATH, query, b"")
        return {
            "BlockATM-API-Key": api_key,
            "BlockATM-Request-Time": now,
            "BlockATM-Rec_Window": "60000",
            "BlockATM-Signature-V2": sign_v2(secret, message),
        }

    def signed_read() -> tuple[str, dict[str, str]]:
        query = f"orderNo=b-{next(counter)}"  # unique: the replay cache accepts it
        return query, {**signed(query), "X-Forwarded-For": "198.51.100.1"}

    def key_only() -> tuple[str, dict[str, str]]:
        return "orderNo=k", {"BlockATM-API-Key": api_key, "X-Forwarded-For": "198.51.100.2"}

    def junk(address: Callable[[], str]) -> Callable[[], tuple[str, dict[str, str]]]:
        def build() -> tuple[str, dict[str, str]]:
            headers = signed("orderNo=j")
            headers["BlockATM-Signature-V2"] = "0" * 64
            return "orderNo=j", {**headers, "X-Forwarded-For": address()}

        return build

    def fresh() -> str:
        n = next(counter)
        return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"

    scenarios: dict[str, tuple[Callable[[], tuple[str, dict[str, str]]], int]] = {
        "signed read": (signed_read, 404),
        "key-only read": (key_only, 404),
        "junk, fresh address": (junk(fresh), 401),
        "junk, over-budget address": (junk(lambda: "203.0.113.66"), 429),
    }
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    results: dict[str, object] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for _ in range(settings.failed_auth_per_minute):  # use up the over-budget address
            query, headers = junk(lambda: "203.0.113.66")()
            await client.get(f"{PATH}?{query}", headers=headers)
        for name, (build, expected) in scenarios.items():
            wall_us, cpu_us = [], []
            for _ in range(rounds + 1):  # the first round warms up
                batch = [build() for _ in range(requests)]
                started, started_cpu = time.perf_counter(), time.process_time()
                for query, headers in batch:
                    response = await client.get(f"{PATH}?{query}", headers=headers)
                    if response.status_code != expected:
                        raise SystemExit(f"{name}: {response.status_code} {response.text}")
                wall_us.append((time.perf_counter() - started) / requests * 1e6)
                cpu_us.append((time.process_time() - started_cpu) / requests * 1e6)
            wall, cpu = statistics.median(wall_us[1:]), statistics.median(cpu_us[1:])
            results[name] = {"wall_us": round(wall), "cpu_us": round(cpu)}
            print(f"{name:28} {wall:7.0f} us wall {cpu:7.0f} us CPU per request ({expected})")
    await ctx.engine.dispose()
    if ctx.redis is not None:
        await ctx.redis.aclose()
    shutil.rmtree(tmp, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()
    results = asyncio.run(run(args.requests, args.rounds, args.redis_url))
    print(json.dumps({"limiter": "redis" if args.redis_url else "memory", **results}))


if __name__ == "__main__":
    main()
