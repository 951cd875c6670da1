"""The console under attack: every route named in a list the router is checked against; without
an operator session every page and form leads to the log-in and changes nothing; forms without
the session's token (a missing, made-up, or a merchant dashboard session's token) are refused
and change nothing; whatever merchants typed is shown as text."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from tests.admin.console_support import Console, make_operator
from tests.dashboard.dashboard_support import Browser, MailSink, csrf_of, signed_up_and_in
from tests.support import MerchantKeys

from stablegate.admin.routes import PAGE_ROUTERS
from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.merchants.service import add_merchant, set_merchant_status
from stablegate.models import AuditEntry, Merchant, OperatorSession
from stablegate.models.gateway_setting import GatewaySetting
from stablegate.models.merchant import MerchantStatus

PUBLIC_PAGES = ("/admin", "/admin/", "/admin/login", "/admin/login/second-factor")
CONSOLE_PAGES = (
    "/admin/merchants",
    "/admin/merchants/{merchant_id}",
    "/admin/chains",
    "/admin/sweeps",
    "/admin/audit",
    "/admin/settings",
    "/admin/security",
)
PUBLIC_FORMS = ("/admin/login", "/admin/login/second-factor")
CONSOLE_FORMS = (
    "/admin/logout",
    "/admin/merchants/{merchant_id}/status",
    "/admin/merchants/{merchant_id}/payout",
    "/admin/settings/policy",
    "/admin/settings/invite",
    "/admin/security/two-factor/start",
    "/admin/security/two-factor/cancel",
    "/admin/security/two-factor/confirm",
    "/admin/security/two-factor/recovery-codes",
    "/admin/security/two-factor/disable",
    "/admin/security/sessions/{session_id}/revoke",
)
XSS = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def console_routes(method: str) -> set[str]:
    return {
        route.path
        for router in PAGE_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and method in route.methods
    }


def test_the_lists_name_every_route_of_the_console() -> None:
    assert console_routes("GET") == {*PUBLIC_PAGES, *CONSOLE_PAGES}
    assert console_routes("POST") == {*PUBLIC_FORMS, *CONSOLE_FORMS}


async def _state(gateway: GatewayContext) -> tuple[object, ...]:
    async with session_scope(gateway.sessions) as session:
        merchants = (
            await session.execute(select(Merchant.id, Merchant.status).order_by(Merchant.id))
        ).all()
        settings = (await session.execute(select(GatewaySetting.name, GatewaySetting.value))).all()
        audit = await session.scalar(select(func.count()).select_from(AuditEntry))
        live = await session.scalar(
            select(func.count())
            .select_from(OperatorSession)
            .where(OperatorSession.revoked_at_ms.is_(None))
        )
    return merchants, settings, audit, live


def _filled(path: str, merchant_id: str, session_id: str = "ops_none") -> str:
    return path.format(merchant_id=merchant_id, session_id=session_id)


FORM = {"action": "disable", "policy": "invite", "address": "0x" + "11" * 20, "chain_id": "1"}


async def test_without_an_operator_every_page_and_form_leads_to_the_log_in(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    await make_operator(gateway, clock)
    before = await _state(gateway)
    async with Console(app) as stranger:
        for path in CONSOLE_PAGES:
            answer = await stranger.get(_filled(path, merchant.merchant_id))
            assert answer.status_code == 303, path
            assert answer.headers["location"] == "/admin/login"
        for path in CONSOLE_FORMS:
            answer = await stranger.client.post(_filled(path, merchant.merchant_id), data=FORM)
            assert answer.status_code == 303, path
    assert await _state(gateway) == before


@pytest.mark.parametrize("token", [None, "", "0" * 64, "merchant"])
async def test_console_forms_refuse_a_missing_or_foreign_token(
    app: FastAPI,
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    mail: MailSink,
    token: str | None,
) -> None:
    await make_operator(gateway, clock)
    if token == "merchant":
        # A merchant's signed-in dashboard form token, replayed against the console.
        async with Browser(app) as owner:
            await signed_up_and_in(owner, mail, "Shop", "owner@shop.example")
            token = csrf_of((await owner.get("/dashboard/keys")).text)
    async with Console(app) as console:
        await console.signed_in()
        async with session_scope(gateway.sessions) as session:
            session_id = await session.scalar(select(OperatorSession.id).limit(1))
        assert session_id is not None
        before = await _state(gateway)
        for path in CONSOLE_FORMS:
            data = FORM | ({} if token is None else {"csrf_token": token})
            answer = await console.client.post(
                _filled(path, merchant.merchant_id, session_id), data=data
            )
            assert answer.status_code == 403, (path, answer.text)
        assert await _state(gateway) == before
        assert (await console.get("/admin/merchants")).status_code == 200


async def test_what_merchants_typed_is_shown_as_text(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock
) -> None:
    await make_operator(gateway, clock)
    async with session_scope(gateway.sessions) as session:
        merchant_id, _ = await add_merchant(
            session,
            gateway.secret_box,
            clock,
            name=XSS,
            notify_url="https://shop.example/hook?x=" + XSS,
        )
        held = await session.get(Merchant, merchant_id)
        assert held is not None
        held.display_name, held.support_contact = XSS[:80], XSS
        await set_merchant_status(
            session,
            clock,
            merchant_id=merchant_id,
            status=MerchantStatus.DISABLED,
            actor="cli",
            reason=XSS,
        )
    async with Console(app) as console:
        await console.signed_in()
        pages = [
            "/admin/merchants",
            f"/admin/merchants?q={httpx.URL('', params={'q': XSS}).query.decode()[2:]}",
            f"/admin/merchants/{merchant_id}",
            "/admin/audit",
            f"/admin/audit?actor=cli&subject={merchant_id}",
        ]
        for path in pages:
            answer = await console.get(path)
            assert answer.status_code == 200, path
            assert "<script>alert" not in answer.text and "<img src=x" not in answer.text, path
            # Nothing closes an attribute early either: the quote is escaped wherever it lands.
            assert '"><img' not in answer.text, path
        page = await console.get(f"/admin/merchants/{merchant_id}")
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
