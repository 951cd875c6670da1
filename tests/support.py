"""Helpers shared by the tests: test-chain constants and a request signer."""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from stablegate.api.context import GatewayContext
from stablegate.auth.replay import ReplayClaim
from stablegate.auth.signatures import sign_v2
from stablegate.auth.signing import signing_string
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.merchants.service import add_public_key
from stablegate.models import CredentialEpoch

# Tokens of the test chain (addresses need not exist: API tests never touch a node).
TEST_USDT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
TEST_USDT18 = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
PAYOUT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@dataclass
class MerchantKeys:
    merchant_id: str
    api_key: str
    secret_key: str
    webhook_secret: str


class Signer:
    """Signs requests the way docs/DESIGN.md §2 says a merchant must (V2 by default)."""

    def __init__(self, keys: MerchantKeys, clock: FakeClock) -> None:
        self.keys = keys
        self.clock = clock
        self.private_key: ec.EllipticCurvePrivateKey | None = None

    def headers(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        query: str = "",
        *,
        window: str | None = "30000",
        v1: bool = False,
        v2: bool = True,
        time_ms: int | None = None,
    ) -> dict[str, str]:
        request_time = str(self.clock.now_ms() if time_ms is None else time_ms)
        message = signing_string(self.keys.api_key, request_time, window, method, path, query, body)
        headers = {"BlockATM-API-Key": self.keys.api_key, "BlockATM-Request-Time": request_time}
        if window is not None:
            headers["BlockATM-Rec_Window"] = window
        if v2:
            headers["BlockATM-Signature-V2"] = sign_v2(self.keys.secret_key.encode(), message)
        if v1:
            assert self.private_key is not None
            signature = self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))
            headers["BlockATM-Signature-V1"] = base64.b64encode(signature).decode()
        if body:
            headers["Content-Type"] = "application/json"
        return headers

    async def register_public_key(self, gateway: GatewayContext) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        pem = self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        async with session_scope(gateway.sessions) as session:
            await add_public_key(session, self.clock, api_key=self.keys.api_key, pem=pem)


class LiveServer:
    """A real uvicorn server on a free port in a background thread (for fuzzing and SDK tests);
    ``options`` go to ``uvicorn.Config``."""

    def __init__(self, app: Any, **options: Any) -> None:
        import socket

        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        # Like the gateway's own server: only client_ip judges X-Forwarded-For.
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            **{"proxy_headers": False, **options},
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


async def credential_epoch(gateway: GatewayContext) -> int:
    """The credential epoch as stored now (what a signed-order guard must match)."""
    async with session_scope(gateway.sessions) as session:
        epoch = await session.scalar(select(CredentialEpoch.epoch))
    assert epoch is not None
    return int(epoch)


def replay_claim(clock: FakeClock, key: str = "a" * 64) -> ReplayClaim:
    """A replay claim for ``key`` made now, living as long as the widest receive window."""
    now = clock.now_ms()
    return ReplayClaim(key, now + 61_000, now)
