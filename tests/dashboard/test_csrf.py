"""Every POST route of the dashboard refuses a form without its CSRF token, with a wrong one, and
with a token that belongs to another session (or to the pre-session forms), and changes nothing
when it refuses."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from tests.dashboard.dashboard_support import (
    PASSWORD,
    Browser,
    MailSink,
    csrf_of,
    reset_link_for,
    signed_up_and_in,
)

from stablegate.api.context import GatewayContext
from stablegate.dashboard import routes
from stablegate.dashboard.routes import PAGE_ROUTERS
from stablegate.db.engine import session_scope
from stablegate.models import ApiKey, DashboardSession, DashboardUser, EmailLink

PUBLIC_FORMS = (
    "/dashboard/signup",
    "/dashboard/login",
    "/dashboard/verify",
    "/dashboard/forgot",
    "/dashboard/reset",
)
# Its token is bound to the pending session (tests/dashboard/test_second_factor_pages.py).
PENDING_FORMS = ("/dashboard/login/second-factor",)
SESSION_FORMS = (
    "/dashboard/logout",
    "/dashboard/keys",
    "/dashboard/keys/{key_id}/revoke",
    "/dashboard/keys/{key_id}/public-keys",
    "/dashboard/keys/{key_id}/signed-reads",
    "/dashboard/keys/{key_id}/ip-allowlist",
    "/dashboard/security/sessions/{session_id}/revoke",
    "/dashboard/webhooks/notify-url",
    "/dashboard/webhooks/secret",
    "/dashboard/webhooks/test",
    "/dashboard/webhooks/events/{event_id}/resend",
    "/dashboard/settings/payout",
    "/dashboard/settings/payments",
    "/dashboard/settings/cashier",
    "/dashboard/orders/{order_id}/cancel",
    "/dashboard/security/password",
    "/dashboard/security/two-factor/start",
    "/dashboard/security/two-factor/cancel",
    "/dashboard/security/two-factor/confirm",
    "/dashboard/security/two-factor/recovery-codes",
    "/dashboard/security/two-factor/disable",
)
# The form token is checked before the order is looked up: any id shows the refusal.
SOME_ORDER = "ord-none"


def dashboard_routes(method: str) -> set[str]:
    return {
        route.path
        for router in (*PAGE_ROUTERS, routes.router)
        for route in router.routes
        if isinstance(route, APIRoute) and method in route.methods
    }


def test_the_lists_name_every_post_route_of_the_dashboard() -> None:
    assert dashboard_routes("POST") == {*PUBLIC_FORMS, *PENDING_FORMS, *SESSION_FORMS}


async def _counts(gateway: GatewayContext) -> tuple[object, ...]:
    async with session_scope(gateway.sessions) as session:
        users = await session.scalar(select(func.count()).select_from(DashboardUser))
        keys = await session.scalar(
            select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at_ms.is_(None))
        )
        live = await session.scalar(
            select(func.count())
            .select_from(DashboardSession)
            .where(DashboardSession.revoked_at_ms.is_(None))
        )
        verified = await session.scalar(
            select(func.count())
            .select_from(DashboardUser)
            .where(DashboardUser.email_verified_at_ms.is_not(None))
        )
        # Passwords and second factors, links spent or not: a refused form changes none.
        accounts = (
            await session.execute(
                select(
                    DashboardUser.password_hash,
                    DashboardUser.totp_secret_enc,
                    DashboardUser.recovery_hashes,
                ).order_by(DashboardUser.id)
            )
        ).all()
        links = (
            await session.execute(select(EmailLink.id, EmailLink.used_at_ms).order_by(EmailLink.id))
        ).all()
    return users or 0, keys or 0, live or 0, verified or 0, accounts, links


async def _key_and_session(browser: Browser, gateway: GatewayContext) -> tuple[str, str]:
    made = await browser.post("/dashboard/keys", {"label": "k"})
    assert made.status_code == 200
    async with session_scope(gateway.sessions) as session:
        key_id = await session.scalar(select(ApiKey.id).where(ApiKey.label == "k"))
        session_id = await session.scalar(select(DashboardSession.id).limit(1))
    assert key_id and session_id
    return key_id, session_id


def _refused(answer: httpx.Response) -> None:
    assert answer.status_code == 403, answer.text
    assert "This form has expired, or your browser blocks cookies" in answer.text


@pytest.mark.parametrize("token", [None, "", "0" * 64, "not-the-token"])
async def test_session_forms_refuse_a_missing_or_wrong_token(
    app: FastAPI, gateway: GatewayContext, mail: MailSink, token: str | None
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", "owner@shop.example")
        key_id, session_id = await _key_and_session(browser, gateway)
        before = await _counts(gateway)
        for path in SESSION_FORMS:
            url = path.format(
                key_id=key_id, session_id=session_id, event_id="evt_x", order_id=SOME_ORDER
            )
            data = {"label": "forged"} | ({} if token is None else {"csrf_token": token})
            _refused(await browser.client.post(url, data=data))
        assert await _counts(gateway) == before
        assert (await browser.get("/dashboard/keys")).status_code == 200  # still logged in


async def test_another_sessions_token_or_the_pre_session_token_is_refused(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser, Browser(app) as second:
        await signed_up_and_in(browser, mail, "Shop", "owner@shop.example")
        assert (await second.log_in("owner@shop.example")).status_code == 303
        key_id, session_id = await _key_and_session(browser, gateway)
        before = await _counts(gateway)
        others = await second.token("/dashboard/keys")
        pre_session = await browser.token("/dashboard/login")
        assert others != await browser.token("/dashboard/keys")
        for token in (others, pre_session):
            for path in SESSION_FORMS:
                url = path.format(
                    key_id=key_id, session_id=session_id, event_id="evt_x", order_id=SOME_ORDER
                )
                _refused(await browser.client.post(url, data={"csrf_token": token}))
        assert await _counts(gateway) == before


async def test_public_forms_refuse_a_missing_wrong_or_cookieless_token(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as owner:
        await owner.sign_up("Shop", "owner@shop.example")
        token_in_link = mail.link_for("owner@shop.example").split("token=", 1)[1]
        asked = await owner.post("/dashboard/forgot", {"email": "owner@shop.example"})
        assert asked.status_code == 200
    reset_token = reset_link_for(mail, "owner@shop.example").split("token=", 1)[1]
    forms = {
        "/dashboard/signup": {"name": "Forged", "email": "x@shop.example", "password": PASSWORD},
        "/dashboard/login": {"email": "owner@shop.example", "password": PASSWORD},
        "/dashboard/verify": {"token": token_in_link},
        "/dashboard/forgot": {"email": "owner@shop.example"},
        "/dashboard/reset": {"token": reset_token, "password": "a forged new password"},
        # Without a pending log-in no token is valid here.
        "/dashboard/login/second-factor": {"code": "123456"},
    }
    mails = len(mail.received)
    before = await _counts(gateway)
    async with Browser(app) as browser, Browser(app) as other:
        mine = await browser.token("/dashboard/login")
        theirs = await other.token("/dashboard/login")
        assert mine != theirs  # each browser's token is bound to its own cookie
        for path, data in forms.items():
            _refused(await browser.client.post(path, data=data))
            _refused(await browser.client.post(path, data={**data, "csrf_token": "0" * 64}))
            _refused(await browser.client.post(path, data={**data, "csrf_token": theirs}))
        # A page's token without the cookie it was made from (another site's form): refused.
        async with Browser(app) as cookieless:
            for path, data in forms.items():
                _refused(await cookieless.client.post(path, data={**data, "csrf_token": mine}))
    assert await _counts(gateway) == before
    assert len(mail.received) == mails


async def test_the_form_token_is_in_every_form_of_every_page(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        for path in ("/dashboard/signup", "/dashboard/login", "/dashboard/forgot"):
            page = (await browser.get(path)).text
            assert page.count("<form") == page.count('name="csrf_token"') == 1
        await signed_up_and_in(browser, mail, "Shop", "owner@shop.example")
        await _key_and_session(browser, gateway)
        signed_in = ("/dashboard/keys", "/dashboard/settings", "/dashboard/security")
        for path in (*signed_in, "/dashboard/webhooks"):
            page = (await browser.get(path)).text
            token = csrf_of(page)
            assert page.count("<form") == page.count(f'name="csrf_token" value="{token}"') >= 2
