"""The ``greenfield`` credential: issued by the service and ``stablegate merchant create-key``,
stored as a hash, scoped to its merchant's store with the WooCommerce plugin's permissions,
stopped with its merchant, refused by the signed API, and ``GET /api/v1/api-keys/current``.
SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from tests.cli_env import cli_env, runner  # noqa: F401  (fixture)
from tests.compat.greenfield.greenfield_support import GreenfieldKeys, client_headers
from tests.support import MerchantKeys, Signer

from stablegate.api.context import GatewayContext
from stablegate.cli import app
from stablegate.clock import FakeClock
from stablegate.compat.greenfield.credentials import (
    issue_greenfield_credential,
    load_greenfield_credential,
)
from stablegate.config import Settings
from stablegate.db.engine import session_scope
from stablegate.errors import InvalidRequest
from stablegate.merchants.service import hash_api_key, set_merchant_status
from stablegate.models import ApiKey
from stablegate.models.api_key import CredentialKind
from stablegate.models.merchant import MerchantStatus

CURRENT = "/api/v1/api-keys/current"
QUERY = "/api/v1/payment/contractPayment"
CREATE = "/api/v1/payment/createQrOrder"
PLUGIN_PERMISSIONS = {
    "btcpay.store.canviewinvoices",
    "btcpay.store.cancreateinvoice",
    "btcpay.store.webhooks.canmodifywebhooks",
    "btcpay.store.canviewstoresettings",
    "btcpay.store.canmodifyinvoices",
}


async def test_a_greenfield_key_is_stored_as_a_hash_with_the_store_permissions(
    gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    assert re.fullmatch(r"[A-Za-z0-9_-]{40}", greenfield.key)
    async with session_scope(gateway.sessions) as session:
        row = await session.get(ApiKey, greenfield.key_id)
        assert row is not None and row.kind == CredentialKind.GREENFIELD
        assert row.key_hash == hash_api_key(greenfield.key)
        assert greenfield.key not in gateway.secret_box.open(row.secret_enc)
        assert (row.compat_chain_id, row.compat_symbol, row.compat_currency) == (
            31337,
            "USDT",
            "USD",
        )
        permissions = (row.compat_permissions or "").split()
    # Every permission is store-scoped to this merchant's store, and they are exactly the set
    # the WooCommerce plugin checks for (it refuses a key with more or fewer).
    assert {p.split(":")[0] for p in permissions} == PLUGIN_PERMISSIONS
    assert {p.split(":")[1] for p in permissions} == {greenfield.store_id}
    assert greenfield.store_id == greenfield.merchant_id


async def test_current_key_answers_the_key_its_label_and_permissions(
    client: httpx.AsyncClient, greenfield: GreenfieldKeys
) -> None:
    response = await client.get(CURRENT, headers=greenfield.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["apiKey"] == greenfield.key and body["label"] == "WooCommerce"
    assert body["permissions"][0].split(":")[1] == greenfield.store_id
    assert len(body["permissions"]) == 5


@pytest.mark.parametrize(
    "authorization",
    [None, "", "token", "token ", "Bearer {key}", "token {key}x", "token not/a/key", "Basic eA=="],
)
async def test_anything_but_token_and_the_key_is_401(
    client: httpx.AsyncClient, greenfield: GreenfieldKeys, authorization: str | None
) -> None:
    headers = {"Accept": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization.format(key=greenfield.key)
    response = await client.get(CURRENT, headers=headers)
    assert response.status_code == 401
    assert set(response.json()) == {"code", "message"}


async def test_a_disabled_merchant_or_a_revoked_key_stops_at_once(
    gateway: GatewayContext, client: httpx.AsyncClient, greenfield: GreenfieldKeys
) -> None:
    async with session_scope(gateway.sessions) as session:
        await set_merchant_status(
            session,
            FakeClock(0),
            merchant_id=greenfield.merchant_id,
            status=MerchantStatus.DISABLED,
            actor="test",
        )
    assert (await client.get(CURRENT, headers=greenfield.headers)).status_code == 401
    async with session_scope(gateway.sessions) as session:
        assert await load_greenfield_credential(session, greenfield.key) is None
        await set_merchant_status(
            session,
            FakeClock(0),
            merchant_id=greenfield.merchant_id,
            status=MerchantStatus.ACTIVE,
            actor="test",
        )
    assert (await client.get(CURRENT, headers=greenfield.headers)).status_code == 200
    async with session_scope(gateway.sessions) as session:
        row = await session.get(ApiKey, greenfield.key_id)
        assert row is not None
        row.revoked_at_ms = 1
    assert (await client.get(CURRENT, headers=greenfield.headers)).status_code == 401


async def test_a_signed_key_is_not_a_greenfield_key(
    client: httpx.AsyncClient, merchant: MerchantKeys, greenfield: GreenfieldKeys
) -> None:
    response = await client.get(CURRENT, headers=client_headers(merchant.api_key))
    assert response.status_code == 401


async def test_the_signed_api_refuses_a_greenfield_key(
    client: httpx.AsyncClient, clock: FakeClock, greenfield: GreenfieldKeys
) -> None:
    """The row's key_hash is the key's: without the kind check a read with the key alone would
    be the merchant's."""
    read = await client.get(QUERY, headers={"BlockATM-API-Key": greenfield.key})
    assert read.status_code == 401 and read.json()["error"]["code"] == "invalid_api_key"
    keys = MerchantKeys(greenfield.merchant_id, greenfield.key, "", "")
    body = json.dumps({"chainId": "31337", "symbol": "USDT", "amount": "1"}).encode()
    clock.advance(1)
    write = await client.post(
        CREATE, content=body, headers=Signer(keys, clock).headers("POST", CREATE, body)
    )
    assert write.status_code == 401 and write.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"chain_id": None}, "invalid_request"),  # two payout chains: which one?
        ({"chain_id": 31337, "symbol": "DOGE"}, "unsupported_token"),
        ({"chain_id": 31337, "currency": "XXX"}, "unsupported_currency"),
        ({"chain_id": 999}, "unknown_chain"),
    ],
)
async def test_issuing_checks_what_its_invoices_will_need(
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    fields: dict[str, object],
    code: str,
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        async with session_scope(gateway.sessions) as session:
            await issue_greenfield_credential(
                session,
                gateway.secret_box,
                clock,
                gateway.registry,
                merchant_id=merchant.merchant_id,
                **fields,  # type: ignore[arg-type]
            )
    assert refused.value.code == code


def test_create_key_prints_a_greenfield_key_once(cli_env: Settings) -> None:  # noqa: F811
    created = runner.invoke(
        app,
        ["merchant", "create", "--name", "Shop", "--payout-address",
         "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "--chain", "31337", "--json"],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    merchant_id = json.loads(created.stdout.strip().splitlines()[-1])["merchantId"]

    result = runner.invoke(
        app,
        ["merchant", "create-key", "--merchant-id", merchant_id, "--kind", "greenfield",
         "--currency", "eur", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    made = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(made) == {
        "merchantId", "kind", "keyId", "apiKey", "storeId", "permissions", "chainId", "symbol",
        "currency",
    }  # fmt: skip
    assert made["kind"] == "greenfield" and re.fullmatch(r"[A-Za-z0-9_-]{40}", made["apiKey"])
    assert (made["storeId"], made["chainId"], made["symbol"], made["currency"]) == (
        merchant_id,
        31337,
        "USDT",
        "EUR",
    )
    assert {p.split(":")[0] for p in made["permissions"]} == PLUGIN_PERMISSIONS

    unknown = runner.invoke(
        app, ["merchant", "create-key", "--merchant-id", "mch_nope", "--kind", "greenfield"]
    )
    assert unknown.exit_code != 0 and "not found" in unknown.output
