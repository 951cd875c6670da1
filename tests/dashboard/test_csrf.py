"""Every POST route of the dashboard refuses a form without its CSRF token, with a wrong one, and
with a token that belongs to another session (or to the pre-session forms), and changes nothing
when it refuses."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from tests.dashboard.dashboard_support import PASSWORD, Browser, MailSink, csrf_of, signed_up_and_in

from stablegate.api.context import GatewayContext
from stablegate.dashboard import routes
from stablegate.dashboard.routes import PAGE_ROUTERS
from stablegate.db.engine import session_scope
from stablegate.models import ApiKey, DashboardSession, DashboardUser

PUBLIC_FORMS = ("/dashboard/signup", "/dashboard/login", "/dashboard/verify")
SESSION_FORMS = (
    "/dashboard/logout",
    "/dashboard/keys",
    "/dashboard/keys/{key_id}/revoke",
    "/dashboard/keys/{key_id}/public-keys",
    "/dashboard/keys/{key_id}/signed-reads",
    "/dashboard/keys/{key_id}/ip-allowlist",
    "/dashboard/security/sessions/{session_id}/revoke",
)


def dashboard_routes(method: str) -> set[str]:
    return {
        route.path
        for router in (*PAGE_ROUTERS, routes.router)
        for route in router.routes
        if isinstance(route, APIRoute) and method in route.methods
    }


def test_the_lists_name_every_post_route_of_the_dashboard() -> None:
    assert dashboard_routes("POST") == {*PUBLIC_FORMS, *SESSION_FORMS}


async def _counts(gateway: GatewayContext) -> tuple[int, int, int, int]:
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
    return users or 0, keys or 0, live or 0, verified or 0


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
            url = path.format(key_id=key_id, session_id=session_id)
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
                url = path.format(key_id=key_id, session_id=session_id)
                _refused(await browser.client.post(url, data={"csrf_token": token}))
        assert await _counts(gateway) == before


async def test_public_forms_refuse_a_missing_wrong_or_cookieless_token(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as owner:
        await owner.sign_up("Shop", "owner@shop.example")
    token_in_link = mail.link_for("owner@shop.example").split("token=", 1)[1]
    forms = {
        "/dashboard/signup": {"name": "Forged", "email": "x@shop.example", "password": PASSWORD},
        "/dashboard/login": {"email": "owner@shop.example", "password": PASSWORD},
        "/dashboard/verify": {"token": token_in_link},
    }
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


async def test_the_form_token_is_in_every_form_of_every_page(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        for path in ("/dashboard/signup", "/dashboard/login"):
            page = (await browser.get(path)).text
            assert page.count("<form") == page.count('name="csrf_token"') == 1
        await signed_up_and_in(browser, mail, "Shop", "owner@shop.example")
        await _key_and_session(browser, gateway)
        for path in ("/dashboard/keys", "/dashboard/security"):
            page = (await browser.get(path)).text
            token = csrf_of(page)
            assert page.count("<form") == page.count(f'name="csrf_token" value="{token}"') >= 2
