"""The ``epay`` credential: issued by the service and ``stablegate merchant create-key``, its key
stored encrypted, refused by the signed API whatever is sent in its place. SQLite and
PostgreSQL."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import select
from tests.cli_env import cli_env, runner  # noqa: F401  (fixture)
from tests.compat.epay.epay_support import EpayKeys
from tests.support import MerchantKeys, Signer

from stablegate.api.context import GatewayContext
from stablegate.cli import app
from stablegate.clock import FakeClock
from stablegate.compat.epay.credentials import issue_epay_credential, load_epay_credential
from stablegate.config import Settings
from stablegate.db.engine import session_scope
from stablegate.errors import InvalidRequest
from stablegate.merchants.service import set_merchant_status
from stablegate.models import ApiKey
from stablegate.models.api_key import CredentialKind
from stablegate.models.merchant import MerchantStatus

QUERY = "/api/v1/payment/contractPayment"
CREATE = "/api/v1/payment/createQrOrder"


async def test_an_epay_credential_is_a_numeric_pid_and_an_encrypted_key(
    gateway: GatewayContext, epay: EpayKeys
) -> None:
    assert len(epay.pid) == 10 and epay.pid.isdigit() and epay.pid[0] != "0"
    assert len(epay.key) == 32 and epay.key.isalnum()
    async with session_scope(gateway.sessions) as session:
        row = await session.get(ApiKey, epay.pid)
        assert row is not None and row.kind == CredentialKind.EPAY
        assert (
            epay.key not in row.secret_enc and gateway.secret_box.open(row.secret_enc) == epay.key
        )
        assert (row.compat_chain_id, row.compat_symbol, row.compat_currency) == (
            31337,
            "USDT",
            "CNY",
        )
        loaded = await load_epay_credential(session, gateway.secret_box, epay.pid)
        assert loaded is not None and loaded.key == epay.key
        assert epay.key not in repr(loaded)
        # A disabled merchant's credential stops at once, and works again once enabled.
        await set_merchant_status(
            session,
            FakeClock(0),
            merchant_id=row.merchant_id,
            status=MerchantStatus.DISABLED,
            actor="test",
        )
        assert await load_epay_credential(session, gateway.secret_box, epay.pid) is None
        await set_merchant_status(
            session,
            FakeClock(0),
            merchant_id=row.merchant_id,
            status=MerchantStatus.ACTIVE,
            actor="test",
        )
        assert await load_epay_credential(session, gateway.secret_box, epay.pid) is not None
        row.revoked_at_ms = 1
        await session.flush()
        assert await load_epay_credential(session, gateway.secret_box, epay.pid) is None


async def test_signed_keys_are_not_epay_credentials(
    gateway: GatewayContext, merchant: MerchantKeys
) -> None:
    async with session_scope(gateway.sessions) as session:
        key_id = await session.scalar(
            select(ApiKey.id).where(ApiKey.merchant_id == merchant.merchant_id)
        )
        assert key_id is not None
        assert await load_epay_credential(session, gateway.secret_box, key_id) is None


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"chain_id": None}, "invalid_request"),  # two payout chains: which one?
        ({"chain_id": 31337, "symbol": "DOGE"}, "unsupported_token"),
        ({"chain_id": 31337, "currency": "XXX"}, "unsupported_currency"),
        ({"chain_id": 999}, "unknown_chain"),
    ],
)
async def test_issuing_checks_what_its_orders_will_need(
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    fields: dict[str, object],
    code: str,
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        async with session_scope(gateway.sessions) as session:
            await issue_epay_credential(
                session,
                gateway.secret_box,
                clock,
                gateway.registry,
                merchant_id=merchant.merchant_id,
                **fields,  # type: ignore[arg-type]
            )
    assert refused.value.code == code


async def test_the_signed_api_refuses_an_epay_credential_as_an_api_key(
    client: httpx.AsyncClient, clock: FakeClock, epay: EpayKeys
) -> None:
    """The pid is the row's key_hash: without the kind check a read with the pid alone, or a
    write signed with the MD5 key as the HMAC secret, would be the merchant's."""
    read = await client.get(QUERY, headers={"BlockATM-API-Key": epay.pid})
    assert read.status_code == 401 and read.json()["error"]["code"] == "invalid_api_key"

    keys = MerchantKeys(epay.merchant_id, epay.pid, epay.key, "")
    body = json.dumps({"chainId": "31337", "symbol": "USDT", "amount": "1"}).encode()
    clock.advance(1)
    write = await client.post(
        CREATE, content=body, headers=Signer(keys, clock).headers("POST", CREATE, body)
    )
    assert write.status_code == 401 and write.json()["error"]["code"] == "invalid_api_key"


def test_create_key_prints_an_epay_credential_once(cli_env: Settings) -> None:  # noqa: F811
    created = runner.invoke(
        app,
        ["merchant", "create", "--name", "Shop", "--payout-address",
         "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "--chain", "31337", "--json"],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    merchant_id = json.loads(created.stdout.strip().splitlines()[-1])["merchantId"]

    result = runner.invoke(
        app, ["merchant", "create-key", "--merchant-id", merchant_id, "--kind", "epay", "--json"]
    )
    assert result.exit_code == 0, result.output
    credential = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(credential) == {"merchantId", "kind", "pid", "key", "chainId", "symbol", "currency"}
    assert credential["kind"] == "epay" and credential["pid"].isdigit()
    assert (credential["chainId"], credential["symbol"], credential["currency"]) == (
        31337,
        "USDT",
        "CNY",
    )

    signed = runner.invoke(app, ["merchant", "create-key", "--merchant-id", merchant_id, "--json"])
    assert signed.exit_code == 0, signed.output
    assert json.loads(signed.stdout.strip().splitlines()[-1])["apiKey"].startswith("ak_")

    unknown = runner.invoke(
        app, ["merchant", "create-key", "--merchant-id", "mch_nope", "--kind", "epay"]
    )
    assert unknown.exit_code != 0 and "not found" in unknown.output
