"""schemathesis over /openapi.json against a live server, every request signed like a merchant's.

Checks: no 5xx for any generated input (valid and invalid), and the fuzz gets past
authentication (at least half of the responses are not 401).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests
import schemathesis
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support import PAYOUT, LiveServer

from stablegate.api.app import create_app
from stablegate.auth.signatures import sign_v2
from stablegate.auth.signing import signing_string
from stablegate.clock import SystemClock
from stablegate.config import Settings
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.merchants.service import create_merchant
from stablegate.secret_box import load_secret_box

EXAMPLES_PER_OPERATION = 60
CURSOR_EXAMPLES = 200


def _token(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# Cursors a client could forge: the right shapes with any integers (far past 64 bits) and ids,
# any JSON at all, and text that is not base64. Registered for the schema's ``format: cursor``
# so schemathesis fuzzes the cursor parameters with them too.
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
_ANY_INT = st.integers() | st.integers(min_value=-(2**80), max_value=2**80)
CURSORS = st.one_of(
    st.tuples(_ANY_INT, st.text(max_size=45)).map(lambda pair: _token(list(pair))),
    st.tuples(_ANY_INT).map(lambda one: _token(list(one))),
    _JSON.map(_token),
    st.text(max_size=60),
).filter(lambda cursor: len(cursor) <= 200)
schemathesis.openapi.format("cursor", CURSORS)


def _merchant(config: Settings) -> tuple[str, str]:
    async def work() -> tuple[str, str]:
        engine = make_engine(config.effective_database_url)
        try:
            async with session_scope(make_sessionmaker(engine)) as session:
                created = await create_merchant(
                    session,
                    load_secret_box(config),
                    SystemClock(),
                    name="Fuzz",
                    payout_address=PAYOUT,
                    chain_ids=[31337],
                )
        finally:
            await engine.dispose()
        return created.api_key, created.secret_key

    return asyncio.run(work())


@pytest.fixture
def fuzz_settings(tmp_path: Path, database_url: str, chains_file: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        chains_file=chains_file,
        secret_key=Fernet.generate_key().decode(),
        metrics_token="metrics-token",
        rate_limit_per_minute=1_000_000,
        public_per_minute=1_000_000,
        failed_auth_per_minute=1_000_000,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.mark.slow
def test_fuzz_every_operation_signed(fuzz_settings: Settings) -> None:
    app = create_app(fuzz_settings, migrate=True)
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    with LiveServer(app) as server:
        api_key, secret = _merchant(fuzz_settings)
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        session = requests.Session()
        counter = iter(range(10**9))

        def send(case: schemathesis.Case) -> None:
            kwargs = case.as_transport_kwargs(base_url=server.url)
            prepared = requests.Request(
                **{
                    k: v
                    for k, v in kwargs.items()
                    if k
                    in {"method", "url", "headers", "params", "json", "data", "files", "cookies"}
                }
            ).prepare()
            body = prepared.body or b""
            if isinstance(body, str):
                body = body.encode()
            parts = urlsplit(prepared.url)
            # A unique time per request keeps each signing string unique (the replay cache).
            now = str(int(time.time() * 1000) - next(counter) % 1000)
            message = signing_string(
                api_key, now, "60000", prepared.method or "GET", parts.path, parts.query, body
            )
            prepared.headers.update(
                {
                    "BlockATM-API-Key": api_key,
                    "BlockATM-Request-Time": now,
                    "BlockATM-Rec_Window": "60000",
                    "BlockATM-Signature-V2": sign_v2(secret.encode(), message),
                    "Authorization": "Bearer metrics-token",
                }
            )
            response = session.send(prepared, timeout=30)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(
                    f"{prepared.method} {prepared.url} -> {response.status_code} "
                    f"{response.text[:200]} body={hashlib.sha256(body).hexdigest()[:8]}"
                )

        for result in schema.get_all_operations():
            operation = result.ok()
            strategy = st.one_of(
                operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE),
                operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
            )

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: schemathesis.Case) -> None:
                send(case)

            run()
    total = sum(statuses.values())
    print(f"fuzz statuses: {dict(sorted(statuses.items()))} over {total} requests")
    assert not failures, "\n".join(failures[:10])
    assert total >= EXAMPLES_PER_OPERATION
    assert (total - statuses[401]) / total >= 0.5, dict(statuses)


@pytest.mark.slow
def test_fuzz_cursors_signed(fuzz_settings: Settings) -> None:
    """Any cursor on the order list and the delivery log: a page or 400, never a 500."""
    app = create_app(fuzz_settings, migrate=True)
    failures: list[str] = []
    codes: Counter[str] = Counter()
    with LiveServer(app) as server:
        api_key, secret = _merchant(fuzz_settings)
        session = requests.Session()
        counter = iter(range(10**9))

        @settings(
            max_examples=CURSOR_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            cursor=CURSORS,
            path=st.sampled_from(["/api/v1/payment/contractPayment", "/api/v1/webhook/deliveries"]),
        )
        def run(cursor: str, path: str) -> None:
            query = f"cursor={quote(cursor, safe='')}"
            now = str(int(time.time() * 1000) - next(counter) % 1000)
            message = signing_string(api_key, now, "60000", "GET", path, query, b"")
            response = session.get(
                f"{server.url}{path}?{query}",
                headers={
                    "BlockATM-API-Key": api_key,
                    "BlockATM-Request-Time": now,
                    "BlockATM-Rec_Window": "60000",
                    "BlockATM-Signature-V2": sign_v2(secret.encode(), message),
                },
                timeout=30,
            )
            code = response.json().get("error", {}).get("code", "ok")
            codes[f"{response.status_code} {code}"] += 1
            # A NUL anywhere in a URL is refused before routing (invalid_request).
            expected = "invalid_request" if "\x00" in cursor else "invalid_cursor"
            if response.status_code != 200 and (response.status_code != 400 or code != expected):
                failures.append(f"{path} cursor={cursor!r} -> {response.status_code} {code}")

        run()
    print(f"cursor fuzz: {dict(codes)}")
    assert not failures, "\n".join(failures[:10])
