"""Credentials cached per API process are dropped by the next request after any change.

Each change is made the way another process (the dashboard, the console, a CLI command) would
make it: through a second engine on the same database, with plain SQL, so only the database's
triggers can tell this process. Every one of these tests fails if the epoch check is removed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.support import MerchantKeys, Signer

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.db.engine import make_engine, session_scope
from stablegate.merchants.credential_cache import CredentialCache
from stablegate.models import CredentialEpoch, Order

CREATE = "/api/v1/payment/createQrOrder"
OTHER_PAYOUT = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


@pytest.fixture
async def other_process(settings: Settings, gateway: GatewayContext) -> AsyncIterator[AsyncEngine]:
    del gateway  # the app's fixture made the database; this engine only shares it
    engine = make_engine(settings.effective_database_url)
    yield engine
    await engine.dispose()


async def _run(engine: AsyncEngine, sql: str, **params: Any) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(sql), params)


async def _create(client: httpx.AsyncClient, signer: Signer, order_no: str) -> httpx.Response:
    body = json.dumps(
        {"chainId": "31337", "symbol": "USDT", "amount": "1", "orderNo": order_no}
    ).encode()
    return await client.post(CREATE, content=body, headers=signer.headers("POST", CREATE, body))


async def _epoch(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        epoch = await connection.scalar(select(CredentialEpoch.epoch))
    assert epoch is not None
    return int(epoch)


async def _warm(client: httpx.AsyncClient, signer: Signer, gateway: GatewayContext) -> None:
    """Two orders: the first loads the key, the second is served from the cache."""
    assert (await _create(client, signer, "warm-1")).status_code == 200
    loads = gateway.credential_cache.loads
    assert (await _create(client, signer, "warm-2")).status_code == 200
    assert gateway.credential_cache.loads == loads  # no second load: the cache answered


async def test_signed_orders_load_the_key_once(
    client: httpx.AsyncClient, gateway: GatewayContext, signer: Signer
) -> None:
    for n in range(5):
        assert (await _create(client, signer, f"o{n}")).status_code == 200
    assert gateway.credential_cache.loads == 1


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ("UPDATE api_keys SET revoked_at_ms = 1 WHERE merchant_id = :m", 401, "invalid_api_key"),
        ("UPDATE merchants SET status = 'disabled' WHERE id = :m", 401, "invalid_api_key"),
        ("UPDATE merchants SET status = 'pending' WHERE id = :m", 401, "invalid_api_key"),
        ("UPDATE api_keys SET kind = 'epay' WHERE merchant_id = :m", 401, "invalid_api_key"),
        (
            "UPDATE api_keys SET ip_allowlist = '10.9.8.0/24' WHERE merchant_id = :m",
            403,
            "ip_not_allowed",
        ),
        ("DELETE FROM payout_addresses WHERE merchant_id = :m", 400, "payout_address_missing"),
        # Rotated elsewhere: the old secret's signature no longer verifies.
        (
            "UPDATE api_keys SET secret_enc = :sealed WHERE merchant_id = :m",
            401,
            "invalid_signature",
        ),
        # A public key registered elsewhere ends V2 for the key.
        (
            "INSERT INTO api_public_keys (id, api_key_id, pem, fingerprint, created_at_ms) "
            "SELECT 'pk_elsewhere', id, :pem, 'f', 1 FROM api_keys WHERE merchant_id = :m",
            401,
            "signature_v1_required",
        ),
    ],
    ids=[
        "revoked",
        "disabled",
        "pending",
        "kind",
        "ip-allowlist",
        "payout-removed",
        "secret-rotated",
        "public-key-added",
    ],
)
async def test_a_change_elsewhere_is_seen_by_the_next_request(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    merchant: MerchantKeys,
    signer: Signer,
    other_process: AsyncEngine,
    change: str,
    status: int,
    code: str,
) -> None:
    await _warm(client, signer, gateway)
    values = {"m": merchant.merchant_id}
    if ":sealed" in change:
        values["sealed"] = gateway.secret_box.seal("sk_a_secret_rotated_elsewhere_000000000000")
    if ":pem" in change:
        values["pem"] = (
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
    await _run(other_process, change, **values)
    refused = await _create(client, signer, "after")
    assert refused.status_code == status, refused.text
    assert refused.json()["error"]["code"] == code


async def test_new_terms_are_used_by_the_next_order(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    merchant: MerchantKeys,
    signer: Signer,
    other_process: AsyncEngine,
) -> None:
    await _warm(client, signer, gateway)
    await _run(
        other_process,
        "UPDATE payout_addresses SET address = :a WHERE merchant_id = :m AND chain_id = 31337",
        a=OTHER_PAYOUT,
        m=merchant.merchant_id,
    )
    moved = await _create(client, signer, "new-payout")
    assert moved.status_code == 200, moved.text
    await _run(
        other_process,
        "UPDATE merchants SET deposit_strategy = 'unique_amount' WHERE id = :m",
        m=merchant.merchant_id,
    )
    unique = await _create(client, signer, "unique-amount")
    assert unique.status_code == 200, unique.text
    async with session_scope(gateway.sessions) as session:
        orders = {
            o.order_no: o
            for o in await session.scalars(select(Order).where(Order.order_no != "warm-1"))
        }
    assert orders["new-payout"].payout_address == OTHER_PAYOUT
    assert orders["unique-amount"].deposit_strategy == "unique_amount"
    assert orders["unique-amount"].to_address == OTHER_PAYOUT


@pytest.mark.parametrize(
    ("change", "bumps"),
    [
        ("UPDATE api_keys SET last_used_at_ms = 5", False),
        ("UPDATE api_keys SET label = 'renamed'", False),
        ("UPDATE merchants SET display_name = 'Renamed'", False),
        ("UPDATE api_keys SET revoked_at_ms = 5", True),
        ("UPDATE api_keys SET v2_enabled = TRUE", True),
        ("UPDATE api_keys SET signed_reads = TRUE", True),
        ("UPDATE api_keys SET secret_enc = 'x'", True),
        ("DELETE FROM payout_addresses WHERE chain_id = 56", True),
        ("UPDATE merchants SET status = 'disabled'", True),
        ("UPDATE merchants SET deposit_strategy = 'unique_amount'", True),
        ("UPDATE payout_addresses SET updated_at_ms = 5", True),
    ],
)
async def test_what_moves_the_epoch(
    merchant: MerchantKeys, other_process: AsyncEngine, change: str, bumps: bool
) -> None:
    del merchant  # rows to change
    before = await _epoch(other_process)
    await _run(other_process, change)
    assert (await _epoch(other_process) > before) is bumps


async def test_an_entry_expires_after_its_time(
    gateway: GatewayContext, merchant: MerchantKeys
) -> None:
    cache = CredentialCache(gateway.secret_box, ttl_s=0.0)
    async with session_scope(gateway.sessions) as session:
        assert await cache.lookup(session, merchant.api_key) is not None
        assert await cache.lookup(session, merchant.api_key) is not None
    assert cache.loads == 2


async def test_unknown_keys_are_not_kept(gateway: GatewayContext, merchant: MerchantKeys) -> None:
    del merchant
    cache = CredentialCache(gateway.secret_box)
    async with session_scope(gateway.sessions) as session:
        for n in range(3):
            assert await cache.lookup(session, f"ak_unknown{n:040d}") is None
    assert cache.loads == 3
    assert not cache._entries


async def test_a_repeat_after_the_payout_address_was_removed_is_the_same_order(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    merchant: MerchantKeys,
    signer: Signer,
    other_process: AsyncEngine,
    clock: FakeClock,
) -> None:
    """The signed API inserts without looking for a repeat first; a repeat still gets its order
    back, even once no new order could be made."""
    first = await _create(client, signer, "kept")
    assert first.status_code == 200, first.text
    await _run(
        other_process, "DELETE FROM payout_addresses WHERE merchant_id = :m", m=merchant.merchant_id
    )
    clock.advance(1)  # a new signing string: a repeat of the order, not of the request
    again = await _create(client, signer, "kept")
    assert again.status_code == 200, again.text
    assert again.json()["orderId"] == first.json()["orderId"]
    fresh = await _create(client, signer, "new")
    assert fresh.status_code == 400
    assert fresh.json()["error"]["code"] == "payout_address_missing"
