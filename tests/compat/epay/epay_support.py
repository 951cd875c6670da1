"""An ``epay`` credential for the test merchant, a fixed CNY rate, and clients that sign
requests the way the EPay and Epusdt documentation says a plugin does (written here from that
description, not with the gateway's own signing module)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import pytest_asyncio
from tests.orders.test_fiat_orders import fixed_rate
from tests.support import MerchantKeys

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.compat.epay.credentials import issue_epay_credential
from stablegate.db.engine import session_scope


@dataclass(frozen=True)
class EpayKeys:
    pid: str
    key: str
    merchant_id: str


def plugin_sign(params: Mapping[str, object], key: str, skip: tuple[str, ...]) -> str:
    """md5(k1=v1&k2=v2…key) over the sorted non-empty parameters, as a PHP plugin builds it."""
    names = sorted(k for k, v in params.items() if k not in skip and v not in ("", None))
    text = "&".join(f"{k}={params[k]}" for k in names) + key
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def epay_signed(params: dict[str, str], key: str) -> dict[str, str]:
    return {**params, "sign": plugin_sign(params, key, ("sign", "sign_type")), "sign_type": "MD5"}


def epusdt_signed(params: dict[str, object], key: str) -> dict[str, object]:
    return {**params, "signature": plugin_sign(params, key, ("signature",))}


@pytest_asyncio.fixture
async def epay(gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys) -> EpayKeys:
    """An epay credential paying in USDT on the dev chain, CNY at a fixed 7.2 per USDT."""
    await fixed_rate(gateway, clock, "7.2")
    async with session_scope(gateway.sessions) as session:
        credential = await issue_epay_credential(
            session,
            gateway.secret_box,
            clock,
            gateway.registry,
            merchant_id=merchant.merchant_id,
            chain_id=31337,
        )
    return EpayKeys(credential.pid, credential.key, merchant.merchant_id)
