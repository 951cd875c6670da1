"""The Greenfield authorization flow through the dashboard: what a shop may ask for, the log-in
that comes back to the request, the merchant's approval making a key with exactly the granted
permissions on its own store, the hand-off form to the shop (and the policy that lets that one
form leave the gateway), a denial making nothing, and the refusals a dashboard form gets."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from tests.dashboard.dashboard_support import Browser, MailSink, signed_up_and_in
from tests.dashboard.hooks_support import merchant_of
from tests.dashboard.order_support import pay_out_to

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.compat.greenfield.authorize import authorize_request, checked_redirect
from stablegate.compat.greenfield.credentials import STORE_PERMISSIONS
from stablegate.db.engine import session_scope
from stablegate.errors import InvalidRequest
from stablegate.models import ApiKey
from stablegate.models.api_key import CredentialKind

# What the WooCommerce plugin asks for (GreenfieldApiAuthorization: required, then optional).
WOOCOMMERCE = [
    "btcpay.store.canviewinvoices",
    "btcpay.store.cancreateinvoice",
    "btcpay.store.canviewstoresettings",
    "btcpay.store.canmodifyinvoices",
    "btcpay.store.cancreatenonapprovedpullpayments",
    "btcpay.store.webhooks.canmodifywebhooks",
]
SHOP = "https://shop.example/?btcpay-settings-callback"
EMAIL = "owner@shop.example"
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def authorize_url(permissions: list[str] = WOOCOMMERCE, redirect: str = SHOP) -> str:
    query = [("permissions", p) for p in permissions]
    query += [("applicationName", "WooCommerce"), ("strict", "true")]
    query += [("selectiveStores", "true"), ("redirect", redirect)]
    return f"/api-keys/authorize?{urlencode(query)}"


def test_what_a_shop_may_ask_for() -> None:
    asked = authorize_request(WOOCOMMERCE, " Woo\\nCommerce ", SHOP, "mch_a")
    assert asked.granted == STORE_PERMISSIONS
    assert asked.refused == ("btcpay.store.cancreatenonapprovedpullpayments",)
    assert asked.application == "Woo\\nCommerce" and asked.redirect_origin == "https://shop.example"
    scoped = [f"{p}:mch_a" for p in WOOCOMMERCE[:2]]
    assert authorize_request(scoped, "", "", "mch_a").granted == tuple(WOOCOMMERCE[:2])
    assert authorize_request(scoped, "", "", "mch_a").redirect is None
    for permissions in ([], ["btcpay.server.canmodifyserversettings"], ["x" * 200]):
        with pytest.raises(InvalidRequest):
            authorize_request(permissions, "", SHOP, "mch_a")
    with pytest.raises(InvalidRequest):  # another merchant's store
        authorize_request([f"{WOOCOMMERCE[0]}:mch_b"], "", SHOP, "mch_a")
    assert checked_redirect("http://127.0.0.1:8080/cb") == "http://127.0.0.1:8080/cb"
    for bad in (
        "http://shop.example/cb",
        "https://user:pass@shop.example/",
        "javascript:alert(1)",
        "//shop.example/",
        "https://shop.example:port/",
        "https://shop.example/\nx",
    ):
        with pytest.raises(InvalidRequest):
            checked_redirect(bad)


async def _owner(app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink) -> str:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
    merchant_id = await merchant_of(gateway, EMAIL)
    await pay_out_to(gateway.sessions, merchant_id, clock.now_ms())
    return merchant_id


async def test_log_in_approve_and_the_key_goes_to_the_shop_with_its_store(
    app: FastAPI,
    gateway: GatewayContext,
    clock: FakeClock,
    mail: MailSink,
    client: httpx.AsyncClient,
) -> None:
    merchant_id = await _owner(app, gateway, clock, mail)
    async with Browser(app) as browser:
        sent = await browser.get(authorize_url())
        assert sent.status_code == 303
        consent_url = sent.headers["location"]
        assert consent_url.startswith("/dashboard/greenfield/authorize?permissions=")
        to_login = await browser.get(consent_url)
        assert to_login.headers["location"].startswith("/dashboard/login?next=")
        login_form = await browser.get(to_login.headers["location"])
        assert 'name="next"' in login_form.text
        logged_in = await browser.post(
            "/dashboard/login",
            {"email": EMAIL, "password": "correct horse battery staple", "next": consent_url},
            token_from=to_login.headers["location"],
        )
        assert logged_in.headers["location"] == consent_url
        consent = await browser.get(consent_url)
        assert consent.status_code == 200
        assert "WooCommerce asks to connect to your store Shop" in unescape(consent.text)
        assert "https://shop.example" in consent.text
        assert "btcpay.store.cancreatenonapprovedpullpayments" in consent.text
        fields = dict(HIDDEN.findall(consent.text))
        approved = await browser.client.post(
            "/dashboard/greenfield/authorize",
            data={
                **{k: unescape(v) for k, v in fields.items()},
                "chain_id": "31337",
                "symbol": "USDT",
                "currency": "EUR",
                "decision": "approve",
            },
        )
        assert approved.status_code == 200, approved.text
        assert (
            "form-action 'self' https://shop.example" in approved.headers["content-security-policy"]
        )
        assert f'action="{SHOP}"' in approved.text
        handed = HIDDEN.findall(approved.text)
        api_key = next(v for k, v in handed if k == "apiKey")
        granted = [v for k, v in handed if k == "permissions[]"]
    # What the plugin checks (GreenfieldApiAuthorization): one store, the required set exactly
    # once the optional ones are removed.
    assert {p.split(":")[1] for p in granted} == {merchant_id}
    names = {p.split(":")[0] for p in granted} - {
        "btcpay.store.cancreatenonapprovedpullpayments",
        "btcpay.store.webhooks.canmodifywebhooks",
    }
    assert names == {
        "btcpay.store.canviewinvoices",
        "btcpay.store.cancreateinvoice",
        "btcpay.store.canviewstoresettings",
        "btcpay.store.canmodifyinvoices",
    }
    current = await client.get(
        "/api/v1/api-keys/current", headers={"Authorization": f"token {api_key}"}
    )
    assert current.status_code == 200
    assert sorted(current.json()["permissions"]) == sorted(granted)
    async with session_scope(gateway.sessions) as session:
        row = await session.scalar(select(ApiKey).where(ApiKey.kind == CredentialKind.GREENFIELD))
        assert row is not None and row.label == "WooCommerce" and row.compat_currency == "EUR"


async def test_deny_forged_and_foreign_requests_make_no_key(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    await _owner(app, gateway, clock, mail)
    async with Browser(app) as browser:
        await browser.log_in(EMAIL)
        consent_url = (await browser.get(authorize_url())).headers["location"]
        fields = {k: unescape(v) for k, v in HIDDEN.findall((await browser.get(consent_url)).text)}
        choice = {"chain_id": "31337", "symbol": "USDT", "currency": "EUR"}
        denied = await browser.client.post(
            "/dashboard/greenfield/authorize", data={**fields, **choice, "decision": "deny"}
        )
        assert denied.headers["location"] == "/dashboard/integrations"
        unsigned = {k: v for k, v in fields.items() if k != "csrf_token"}
        for token in ({}, {"csrf_token": "0" * 64}):
            forged = await browser.client.post(
                "/dashboard/greenfield/authorize",
                data={**unsigned, **choice, "decision": "approve", **token},
            )
            assert forged.status_code == 403
        other_store = authorize_url([f"{WOOCOMMERCE[0]}:mch_someone_else"])
        refused = await browser.get((await browser.get(other_store)).headers["location"])
        assert refused.status_code == 400
        plain_http = authorize_url(redirect="http://shop.example/cb")
        assert (
            await browser.get((await browser.get(plain_http)).headers["location"])
        ).status_code == 400
    async with session_scope(gateway.sessions) as session:
        made = await session.scalar(
            select(func.count()).select_from(ApiKey).where(ApiKey.kind == CredentialKind.GREENFIELD)
        )
    assert made == 0
