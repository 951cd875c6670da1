"""Server-side sessions: cookie flags, no fixation, expiry and idle timeout, the Security page's
list and revocation."""

from __future__ import annotations

from http.cookies import SimpleCookie

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from tests.dashboard.dashboard_support import Browser, MailSink, signed_up_and_in

from stablegate.api.app import create_app
from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.dashboard.sessions import IDLE_TIMEOUT_MS, SESSION_TTL_MS, token_hash
from stablegate.db.engine import session_scope
from stablegate.models import DashboardSession


def cookies_set(answer: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie header by cookie name (the whole header, flags included)."""
    found = {}
    for header in answer.headers.get_list("set-cookie"):
        found[next(iter(SimpleCookie(header)))] = header
    return found


def flags(header: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}


async def test_cookies_are_httponly_lax_secure_and_scoped_to_the_dashboard(
    app: FastAPI, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        form_page = await browser.get("/dashboard/login")
        pre = cookies_set(form_page)["stablegate_form"]
        await signed_up_and_in(browser, mail, "Shop", "owner@shop.example")
        answer = await browser.post(
            "/dashboard/login",
            {"email": "owner@shop.example", "password": "correct horse battery staple"},
        )
        session = cookies_set(answer)["stablegate_session"]
        for header in (pre, session):
            assert {"httponly", "secure", "samesite", "path"} <= flags(header)
            assert "SameSite=lax" in header and "Path=/dashboard" in header
        assert "Max-Age=604800" in session  # the server's 7 days, no longer


async def test_over_plain_http_the_cookies_are_not_marked_secure(
    app: FastAPI, settings: Settings, clock: FakeClock
) -> None:
    plain = create_app(
        settings.model_copy(update={"public_url": "http://127.0.0.1:8000"}),
        clock=clock,
        migrate=False,
    )
    transport = httpx.ASGITransport(app=plain, client=("127.0.0.1", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        answer = await client.get("/dashboard/login")
    header = cookies_set(answer)["stablegate_form"]
    assert "secure" not in flags(header) and "httponly" in flags(header)


async def test_a_token_planted_before_log_in_is_not_the_session_after(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as attacker:
        await signed_up_and_in(attacker, mail, "Attacker", "attacker@evil.example")
        attackers_token = attacker.session_cookie
    async with Browser(app) as owner:
        await owner.sign_up("Shop", "owner@shop.example")
        await owner.verify(mail.link_for("owner@shop.example"))
        # Whatever session cookie the browser holds before log-in, a planted made-up one or the
        # attacker's own valid one, log-in replaces it with a new token.
        for planted in ("planted-by-the-attacker", attackers_token):
            assert planted is not None
            owner.client.cookies.set(
                "stablegate_session", planted, domain="pay.example.com", path="/dashboard"
            )
            assert (await owner.log_in("owner@shop.example")).status_code == 303
            after = owner.session_cookie
            assert after is not None and after != planted
        keys = await owner.get("/dashboard/keys")
        assert "owner@shop.example" in keys.text and "attacker@evil.example" not in keys.text
    async with session_scope(gateway.sessions) as session:
        planted_row = await session.scalar(
            select(DashboardSession).where(
                DashboardSession.token_hash == token_hash(attackers_token or "")
            )
        )
        assert planted_row is not None and planted_row.revoked_at_ms is not None
        made_up = await session.scalar(
            select(DashboardSession).where(
                DashboardSession.token_hash == token_hash("planted-by-the-attacker")
            )
        )
        assert made_up is None


async def test_only_the_hash_of_the_token_is_stored(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", "owner@shop.example")
        token = browser.session_cookie
    assert token is not None
    async with session_scope(gateway.sessions) as session:
        [row] = (await session.scalars(select(DashboardSession))).all()
    assert row.token_hash == token_hash(token) and token not in {row.id, row.token_hash}
    assert row.user_agent == "TestBrowser/1" and row.ip == "203.0.113.7"


async def test_sessions_end_after_a_day_idle_and_after_seven_days(
    app: FastAPI, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", "owner@shop.example")
        clock.advance(IDLE_TIMEOUT_MS / 1000 - 60)
        assert (await browser.get("/dashboard/keys")).status_code == 200
        clock.advance(IDLE_TIMEOUT_MS / 1000 - 60)  # used a minute ago: the idle clock restarted
        assert (await browser.get("/dashboard/keys")).status_code == 200
        clock.advance(IDLE_TIMEOUT_MS / 1000)
        idle = await browser.get("/dashboard/keys")
        assert idle.status_code == 303 and idle.headers["location"] == "/dashboard/login"

        assert (await browser.log_in("owner@shop.example")).status_code == 303
        for _ in range(7):  # busy every day, still ends after seven
            clock.advance(SESSION_TTL_MS / 7 / 1000)
            await browser.get("/dashboard/keys")
        expired = await browser.get("/dashboard/keys")
        assert expired.status_code == 303


async def test_sessions_are_listed_and_can_be_ended(app: FastAPI, mail: MailSink) -> None:
    async with (
        Browser(app, user_agent="Laptop Firefox") as laptop,
        Browser(app, ip="198.51.100.9", user_agent="Phone Safari") as phone,
    ):
        await signed_up_and_in(laptop, mail, "Shop", "owner@shop.example")
        assert (await phone.log_in("owner@shop.example")).status_code == 303
        page = await laptop.get("/dashboard/security")
        assert "Laptop Firefox" in page.text and "Phone Safari" in page.text
        assert "198.51.100.9" in page.text and page.text.count("This session") == 1

        async with session_scope(app.state.gateway.sessions) as session:
            phone_id = await session.scalar(
                select(DashboardSession.id).where(DashboardSession.user_agent == "Phone Safari")
            )
        ended = await laptop.post(
            f"/dashboard/security/sessions/{phone_id}/revoke", {}, token_from="/dashboard/security"
        )
        assert (
            ended.status_code == 303 and ended.headers["location"] == "/dashboard/security?ended=1"
        )
        assert "The session is ended." in (await laptop.get("/dashboard/security?ended=1")).text
        assert (await phone.get("/dashboard/keys")).status_code == 303
        assert "Phone Safari" not in (await laptop.get("/dashboard/security")).text

        async with session_scope(app.state.gateway.sessions) as session:
            own_id = await session.scalar(
                select(DashboardSession.id).where(
                    DashboardSession.user_agent == "Laptop Firefox",
                    DashboardSession.revoked_at_ms.is_(None),
                )
            )
        out = await laptop.post(
            f"/dashboard/security/sessions/{own_id}/revoke", {}, token_from="/dashboard/security"
        )
        assert out.headers["location"] == "/dashboard/login?notice=logged_out"
        assert (await laptop.get("/dashboard/keys")).status_code == 303


async def test_a_log_in_waiting_for_its_second_factor_is_not_listed(
    app: FastAPI, clock: FakeClock, mail: MailSink
) -> None:
    from tests.dashboard.test_second_factor_pages import enrol

    async with (
        Browser(app, user_agent="Laptop Firefox") as laptop,
        Browser(app, user_agent="Phone Safari") as phone,
    ):
        await signed_up_and_in(laptop, mail, "Shop", "owner@shop.example")
        await enrol(laptop, clock)
        answer = await phone.log_in("owner@shop.example")
        assert answer.headers["location"] == "/dashboard/login/second-factor"
        page = await laptop.get("/dashboard/security")
        assert "Laptop Firefox" in page.text and "Phone Safari" not in page.text
