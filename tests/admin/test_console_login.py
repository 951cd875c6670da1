"""The console's log-in: cookie flags, throttling, no session fixation, two-factor, disabled
operators, log-out; and the one-way wall between the console and the merchants' dashboard."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import select
from tests.admin.console_support import CONSOLE_COOKIE, OPERATOR, Console, make_operator
from tests.dashboard.dashboard_support import PASSWORD, Browser, MailSink, signed_up_and_in
from tests.dashboard.test_second_factor_pages import enrol, now_code, wrong
from tests.dashboard.test_sessions import cookies_set, flags

from stablegate.admin.accounts import set_disabled
from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.dashboard.sessions import token_hash
from stablegate.dashboard.throttle import ACCOUNT_FAILURES
from stablegate.db.engine import session_scope
from stablegate.models.operator_account import OperatorSession

SECURITY = "/admin/security"
SECOND_STEP = "/admin/login/second-factor"


async def test_log_in_sets_a_console_cookie_httponly_lax_secure_scoped_to_admin(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock
) -> None:
    await make_operator(gateway, clock)
    async with Console(app) as console:
        answer = await console.log_in()
        assert answer.status_code == 303 and answer.headers["location"] == "/admin/merchants"
        header = cookies_set(answer)[CONSOLE_COOKIE]
        assert {"httponly", "secure", "samesite", "path"} <= flags(header)
        assert "SameSite=lax" in header and "Path=/admin" in header
        page = await console.get("/admin/merchants")
        assert page.status_code == 200 and OPERATOR in page.text
        assert page.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_wrong_passwords_and_unknown_or_disabled_accounts_read_alike_and_are_limited(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock
) -> None:
    await make_operator(gateway, clock)
    await make_operator(gateway, clock, "gone@gateway.example")
    async with session_scope(gateway.sessions) as session:
        await set_disabled(session, clock, "gone@gateway.example", disabled=True)
    async with Console(app) as console:
        for email, password in (
            (OPERATOR, "not the password at all"),
            ("nobody@gateway.example", PASSWORD),
            ("gone@gateway.example", PASSWORD),
        ):
            answer = await console.log_in(email, password)
            assert answer.status_code == 400
            assert "The email address or password is wrong." in answer.text
            assert console.console_cookie is None
        for _ in range(ACCOUNT_FAILURES):
            await console.log_in(OPERATOR, "still not the password")
        # Out of failures: refused before the password is checked, even the right one.
        limited = await console.log_in(OPERATOR, PASSWORD)
        assert limited.status_code == 429 and limited.headers["retry-after"]
        assert console.console_cookie is None


async def test_a_cookie_planted_before_log_in_is_not_the_session_after(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock
) -> None:
    await make_operator(gateway, clock)
    async with Console(app) as attacker:
        await attacker.signed_in()
        planted = attacker.console_cookie
    assert planted is not None
    async with Console(app) as victim:
        victim.client.cookies.set(CONSOLE_COOKIE, planted, domain="pay.example.com", path="/admin")
        await victim.signed_in()
        assert victim.console_cookie not in (None, planted)
    # The planted token's session ended at the log-in that replaced it.
    async with session_scope(gateway.sessions) as session:
        held = await session.scalar(
            select(OperatorSession).where(OperatorSession.token_hash == token_hash(planted))
        )
        assert held is not None and held.revoked_at_ms is not None


async def test_a_disabled_operator_is_logged_out_at_once(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock
) -> None:
    await make_operator(gateway, clock)
    async with Console(app) as console:
        await console.signed_in()
        async with session_scope(gateway.sessions) as session:
            await set_disabled(session, clock, OPERATOR, disabled=True)
        answer = await console.get("/admin/merchants")
        assert answer.status_code == 303 and answer.headers["location"] == "/admin/login"


async def test_two_factor_guards_the_console_log_in(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock
) -> None:
    await make_operator(gateway, clock)
    async with Console(app) as console:
        await console.signed_in()
        secret, recovery = await enrol(console, clock, SECURITY)
        logged_out = await console.post("/admin/logout", {}, token_from=SECURITY)
        assert logged_out.headers["location"] == "/admin/login?notice=logged_out"

        answer = await console.log_in()
        assert answer.headers["location"] == SECOND_STEP
        # The pending session opens no page but the second step.
        assert (await console.get("/admin/merchants")).headers["location"] == "/admin/login"
        code = now_code(secret, clock)
        refused = await console.post(SECOND_STEP, {"code": wrong(code)})
        assert refused.status_code == 400 and "The code is wrong" in refused.text
        pending = console.console_cookie
        accepted = await console.post(SECOND_STEP, {"code": code})
        assert accepted.status_code == 303 and accepted.headers["location"] == "/admin/merchants"
        assert console.console_cookie not in (None, pending)
        assert (await console.get("/admin/merchants")).status_code == 200

        # A recovery code works once, and lands on the Security page to say so.
        await console.post("/admin/logout", {}, token_from=SECURITY)
        await console.log_in()
        used = await console.post(SECOND_STEP, {"code": recovery[0]})
        assert used.headers["location"] == f"{SECURITY}?notice=recovery_code_used"
        await console.post("/admin/logout", {}, token_from=SECURITY)
        await console.log_in()
        again = await console.post(SECOND_STEP, {"code": recovery[0]})
        assert again.status_code == 400


async def test_the_console_and_the_dashboard_never_accept_each_others_sessions(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    await make_operator(gateway, clock)
    async with Browser(app) as merchant:
        await signed_up_and_in(merchant, mail, "Shop", "owner@shop.example")
        merchant_token = merchant.session_cookie
        assert merchant_token is not None
        # The merchant's own cookie is scoped to /dashboard; sent to the console under either
        # name it opens nothing.
        for name in ("stablegate_session", CONSOLE_COOKIE):
            merchant.client.cookies.set(
                name, merchant_token, domain="pay.example.com", path="/admin"
            )
            for path in ("/admin/merchants", "/admin/audit", "/admin/settings", SECURITY):
                answer = await merchant.get(path)
                assert answer.status_code == 303, (name, path)
                assert answer.headers["location"] == "/admin/login"
    async with Console(app) as console:
        await console.signed_in()
        token = console.console_cookie
        assert token is not None
        console.client.cookies.set(
            "stablegate_session", token, domain="pay.example.com", path="/dashboard"
        )
        answer = await console.get("/dashboard/keys")
        assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/login"


async def test_log_out_ends_the_session(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock
) -> None:
    await make_operator(gateway, clock)
    async with Console(app) as console:
        await console.signed_in()
        token = console.console_cookie
        assert token is not None
        await console.post("/admin/logout", {}, token_from="/admin/merchants")
        console.client.cookies.set(CONSOLE_COOKIE, token, domain="pay.example.com", path="/admin")
        assert (await console.get("/admin/merchants")).headers["location"] == "/admin/login"
