"""Sign-up, the mailed verification link, log-in and log-out under the ``open`` policy, through
the ASGI app on SQLite and PostgreSQL with a real SMTP sink."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import select
from tests.dashboard.dashboard_support import PASSWORD, Browser, MailSink, signed_up_and_in

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.dashboard.links import LINK_TTL_MS
from stablegate.db.engine import session_scope
from stablegate.models import DashboardUser, Merchant


async def test_sign_up_mails_a_link_and_the_account_logs_in_once_verified(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        answer = await browser.sign_up("Espresso Bar", "Owner@Espresso.example")
        assert answer.status_code == 200
        assert "We sent a link to owner@espresso.example" in answer.text
        [message] = mail.to("owner@espresso.example")
        assert message["Subject"] == "Confirm your email address for Espresso Bar"
        assert message["From"] == "noreply@pay.example.com"

        # Before the link is opened the right password is not enough.
        refused = await browser.log_in("owner@espresso.example")
        assert refused.status_code == 400
        assert "Confirm your email address first" in refused.text
        assert browser.session_cookie is None

        link = mail.link_for("owner@espresso.example")
        shown = await browser.get(link.split("pay.example.com", 1)[1])
        assert shown.status_code == 200 and "Confirm my address" in shown.text
        verified = await browser.verify(link)
        assert verified.status_code == 200
        assert "Your address owner@espresso.example is confirmed" in verified.text

        logged_in = await browser.log_in("OWNER@espresso.example ")
        assert logged_in.status_code == 303
        assert logged_in.headers["location"] == "/dashboard/keys"
        keys = await browser.get("/dashboard/keys")
        assert keys.status_code == 200
        assert "Espresso Bar" in keys.text and "You have no API keys yet." in keys.text

    async with session_scope(gateway.sessions) as session:
        user = await session.scalar(select(DashboardUser))
        assert user is not None and user.email == "owner@espresso.example"
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        merchant = await session.get(Merchant, user.merchant_id)
        assert merchant is not None and merchant.status == "active"


async def test_a_used_or_expired_link_is_refused(
    app: FastAPI, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await browser.sign_up("Shop", "a@shop.example")
        first = mail.link_for("a@shop.example")
        assert (await browser.verify(first)).status_code == 200
        again = await browser.verify(first)
        assert again.status_code == 400 and "This link was used already" in again.text
        shown = await browser.get(first.split("pay.example.com", 1)[1])
        assert shown.status_code == 400 and "This link was used already" in shown.text

        await browser.sign_up("Other", "b@shop.example")
        late = mail.link_for("b@shop.example")
        clock.advance(LINK_TTL_MS / 1000)
        expired = await browser.verify(late)
        assert expired.status_code == 400 and "This link has expired" in expired.text
        refused = await browser.log_in("b@shop.example")
        assert "Confirm your email address first" in refused.text
        # Logging in with the right password sent a fresh link, which works.
        fresh = mail.link_for("b@shop.example")
        assert fresh != late
        assert (await browser.verify(fresh)).status_code == 200
        assert (await browser.log_in("b@shop.example")).status_code == 303


async def test_a_forged_or_altered_link_is_refused(app: FastAPI, mail: MailSink) -> None:
    async with Browser(app) as browser:
        await browser.sign_up("Shop", "c@shop.example")
        link = mail.link_for("c@shop.example")
        link_id, signature = link.split("token=", 1)[1].split(".")
        for token in (
            f"{link_id}.{signature[:-2]}AA",
            f"lnk_unknown.{signature}",
            link_id,
            "",
        ):
            answer = await browser.get(f"/dashboard/verify?token={token}")
            assert answer.status_code == 400, token
            assert "This link is not valid" in answer.text
        assert (await browser.log_in("c@shop.example")).status_code == 400


async def test_sign_up_errors_are_clear_and_keep_what_was_typed(app: FastAPI) -> None:
    async with Browser(app) as browser:
        short = await browser.sign_up("Shop", "d@shop.example", password="short")
        assert short.status_code == 400
        assert "The password must be at least 12 characters." in short.text
        assert (
            'value="d@shop.example"' in short.text
            and "short" not in short.text.split("</form>")[0].split("password")[-1]
        )
        bad_email = await browser.sign_up("Shop", "not-an-address")
        assert bad_email.status_code == 400 and "Enter a valid email address." in bad_email.text
        no_name = await browser.sign_up("  ", "e@shop.example")
        assert no_name.status_code == 400 and "Enter your business name" in no_name.text
        assert (await browser.sign_up("Shop", "e@shop.example")).status_code == 200
        taken = await browser.sign_up("Shop 2", "E@shop.example")
        assert taken.status_code == 400
        assert "An account with this email address exists" in taken.text


async def test_wrong_password_and_unknown_account_read_the_same(
    app: FastAPI, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", "f@shop.example")
    async with Browser(app) as browser:
        wrong = await browser.log_in("f@shop.example", "wrong password here")
        unknown = await browser.log_in("nobody@shop.example")
        for answer in (wrong, unknown):
            assert answer.status_code == 400
            assert "The email address or password is wrong." in answer.text
        assert browser.session_cookie is None


async def test_log_out_ends_the_session_on_the_server(app: FastAPI, mail: MailSink) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", "g@shop.example")
        token = browser.session_cookie
        assert token is not None
        out = await browser.post("/dashboard/logout", {}, token_from="/dashboard/keys")
        assert out.status_code == 303
        assert out.headers["location"] == "/dashboard/login?notice=logged_out"
        assert browser.session_cookie is None
        after = await browser.get("/dashboard/login?notice=logged_out")
        assert "You are logged out." in after.text
    # The old cookie, replayed, opens nothing.
    async with Browser(app) as thief:
        thief.client.cookies.set(
            "stablegate_session", token, domain="pay.example.com", path="/dashboard"
        )
        answer = await thief.get("/dashboard/keys")
        assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/login"
