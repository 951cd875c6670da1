"""Password reset by email through the SMTP sink: the same answer for any address, a link that
works once, for an hour, for the address it went to; every session ends; two-factor stays on;
without SMTP the operator's list has the link."""

from __future__ import annotations

import dataclasses
import re

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update
from tests.dashboard.dashboard_support import (
    PASSWORD,
    Browser,
    MailSink,
    reset_link_for,
    signed_up_and_in,
)
from tests.dashboard.test_second_factor_pages import SECOND_STEP, now_code, second_step
from tests.dashboard.test_second_factor_pages import enrol as enrol_two_factor

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.dashboard import links
from stablegate.dashboard.context import DashboardContext
from stablegate.dashboard.links import RESET_TTL_MS
from stablegate.dashboard.mailer import Mailer
from stablegate.dashboard.throttle import RESETS_PER_ADDRESS, RESETS_PER_IP
from stablegate.db.engine import session_scope
from stablegate.models import DashboardSession, DashboardUser, EmailLink
from stablegate.models.email_link import LinkPurpose

EMAIL = "owner@shop.example"
NEW = "a fresh passphrase nobody knows"
SENT = "If an account uses {email}, we sent a link to it."


def token_of(link: str) -> str:
    return link.split("token=", 1)[1]


async def ask(browser: Browser, email: str) -> httpx.Response:
    return await browser.post("/dashboard/forgot", {"email": email})


async def reset(browser: Browser, link: str, password: str = NEW) -> httpx.Response:
    path = link.split("pay.example.com", 1)[1]
    page = await browser.get(path)
    assert page.status_code == 200, page.text
    return await browser.post(
        "/dashboard/reset", {"token": token_of(link), "password": password}, token_from=path
    )


async def test_a_mailed_link_sets_a_new_password_and_ends_every_session(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as laptop, Browser(app, ip="198.51.100.70") as phone:
        await signed_up_and_in(laptop, mail, "Shop", EMAIL)
        assert (await phone.log_in(EMAIL)).status_code == 303
        async with Browser(app, ip="192.0.2.80") as browser:
            login = await browser.get("/dashboard/login")
            assert 'href="/dashboard/forgot">Forgot your password?</a>' in login.text
            asked = await ask(browser, EMAIL)
            assert asked.status_code == 200 and SENT.format(email=EMAIL) in asked.text
            message = mail.to(EMAIL)[-1]
            assert message["Subject"] == "Reset the password of Shop"
            link = reset_link_for(mail, EMAIL)
            assert link.startswith("https://pay.example.com/dashboard/reset?token=lnk_")
            form = await browser.get(link.split("pay.example.com", 1)[1])
            assert "Choose a new password" in form.text and EMAIL in form.text
            short = await browser.post(
                "/dashboard/reset",
                {"token": token_of(link), "password": "short"},
                token_from="/dashboard/forgot",
            )
            assert short.status_code == 400 and "at least 12 characters" in short.text
            done = await reset(browser, link)
            assert done.status_code == 303
            assert done.headers["location"] == "/dashboard/login?notice=password_reset_done"
            assert "Log in with the new one." in (await browser.get(done.headers["location"])).text
            assert (await browser.log_in(EMAIL)).status_code == 400
            assert (await browser.log_in(EMAIL, NEW)).status_code == 303
        # Every session that existed before the reset is over.
        for before in (laptop, phone):
            assert (await before.get("/dashboard/keys")).status_code == 303
    async with session_scope(gateway.sessions) as session:
        live = (
            await session.scalars(
                select(DashboardSession).where(DashboardSession.revoked_at_ms.is_(None))
            )
        ).all()
        assert [row.ip for row in live] == ["192.0.2.80"]  # the log-in after the reset


async def test_an_unknown_address_gets_the_same_answer_and_no_mail(
    app: FastAPI, mail: MailSink
) -> None:
    async with Browser(app) as owner:
        await signed_up_and_in(owner, mail, "Shop", EMAIL)
    sent_before = len(mail.received)
    async with Browser(app, ip="192.0.2.81") as browser:
        known = await ask(browser, EMAIL)
        unknown = await ask(browser, "nobody@shop.example")
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace(EMAIL, "X") == unknown.text.replace("nobody@shop.example", "X")
    assert known.headers.get("set-cookie") == unknown.headers.get("set-cookie")
    assert len(mail.received) == sent_before + 1 and not mail.to("nobody@shop.example")


async def test_reset_mails_are_limited_per_address_and_per_ip(
    app: FastAPI, mail: MailSink, clock: FakeClock
) -> None:
    async with Browser(app) as owner:
        await signed_up_and_in(owner, mail, "Shop", EMAIL)
    async with Browser(app, ip="192.0.2.82") as one, Browser(app, ip="192.0.2.83") as two:
        for address in (EMAIL, "nobody@shop.example"):  # the same limit, account or not
            for number in range(RESETS_PER_ADDRESS):
                browser = one if number % 2 else two
                assert (await ask(browser, address)).status_code == 200
            refused = await ask(one, address)
            assert refused.status_code == 429 and "Too many attempts" in refused.text
    async with Browser(app, ip="192.0.2.84") as sprayer:
        for number in range(RESETS_PER_IP):
            assert (await ask(sprayer, f"guess{number}@shop.example")).status_code == 200
        assert (await ask(sprayer, "another@shop.example")).status_code == 429
    assert len(mail.to(EMAIL)) == 1 + RESETS_PER_ADDRESS  # the verification, then the resets


async def test_a_used_or_expired_link_is_refused(
    app: FastAPI, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        await ask(browser, EMAIL)
        first = reset_link_for(mail, EMAIL)
        await ask(browser, EMAIL)
        second = reset_link_for(mail, EMAIL)
        assert (await reset(browser, second)).status_code == 303
        # Used: the page and the form say so, and the password stays.
        for link in (second, first):  # using one voids the user's other reset links
            page = await browser.get(link.split("pay.example.com", 1)[1])
            assert page.status_code == 400 and "This link does not work" in page.text
            assert "a reset link works once" in page.text
            assert 'href="/dashboard/forgot">Ask for a new link</a>' in page.text
            posted = await browser.post(
                "/dashboard/reset",
                {"token": token_of(link), "password": "yet another passphrase"},
                token_from="/dashboard/forgot",
            )
            assert posted.status_code == 400 and "a reset link works once" in posted.text
        await ask(browser, EMAIL)
        third = reset_link_for(mail, EMAIL)
        clock.advance(RESET_TTL_MS / 1000)
        page = await browser.get(third.split("pay.example.com", 1)[1])
        assert page.status_code == 400 and "This link has expired" in page.text
        posted = await browser.post(
            "/dashboard/reset",
            {"token": token_of(third), "password": "yet another passphrase"},
            token_from="/dashboard/forgot",
        )
        assert posted.status_code == 400 and "This link has expired" in posted.text
        assert (await browser.log_in(EMAIL, NEW)).status_code == 303


async def test_a_link_for_an_old_address_or_another_purpose_is_refused(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await browser.sign_up("Shop", EMAIL)
        verification = mail.link_for(EMAIL)
        await ask(browser, EMAIL)
        reset_link = reset_link_for(mail, EMAIL)
        # A verification link resets nothing; a reset link verifies nothing.
        wrong_page = await browser.get(f"/dashboard/reset?token={token_of(verification)}")
        assert wrong_page.status_code == 400 and "This link is not valid" in wrong_page.text
        posted = await browser.post(
            "/dashboard/reset",
            {"token": token_of(verification), "password": NEW},
            token_from="/dashboard/forgot",
        )
        assert posted.status_code == 400
        verified = await browser.verify(reset_link)
        assert verified.status_code == 400 and "This link is not valid" in verified.text
        # The address changes: the link sent to the old one is void.
        async with session_scope(gateway.sessions) as session:
            await session.execute(update(DashboardUser).values(email="moved@shop.example"))
        moved = await browser.get(reset_link.split("pay.example.com", 1)[1])
        assert moved.status_code == 400
        assert "sent to an address the account no longer uses" in moved.text
        # A forged signature.
        forged = token_of(reset_link)[:-4] + "AAAA"
        refused = await browser.get(f"/dashboard/reset?token={forged}")
        assert refused.status_code == 400 and "This link is not valid" in refused.text
        for junk in ("", "<script>", "a" * 200):
            page = await browser.get("/dashboard/reset", params={"token": junk})
            assert page.status_code == 400 and "<script>" not in page.text


async def test_a_reset_leaves_two_factor_on(app: FastAPI, clock: FakeClock, mail: MailSink) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        secret, _codes = await enrol_two_factor(browser, clock)
        await ask(browser, EMAIL)
        link = reset_link_for(mail, EMAIL)
        form = await browser.get(link.split("pay.example.com", 1)[1])
        assert "Two-factor authentication stays on" in form.text
        assert (await reset(browser, link)).status_code == 303
        answer = await browser.log_in(EMAIL, NEW)
        assert answer.headers["location"] == SECOND_STEP
        assert (await browser.get("/dashboard/keys")).status_code == 303
        assert (await second_step(browser, now_code(secret, clock))).status_code == 303


async def test_without_smtp_the_operator_lists_the_reset_link(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        await ask(browser, EMAIL)
    mailed = reset_link_for(mail, EMAIL)
    key = gateway.secret_box.derive_key("dashboard-links")
    async with session_scope(gateway.sessions) as session:
        pending = await links.pending_links(session, clock, key, "https://pay.example.com")
    # The user is verified: its verification link is used, the reset link is listed.
    assert [(p.email, p.purpose, p.url) for p in pending] == [
        (EMAIL, str(LinkPurpose.RESET_PASSWORD), mailed)
    ]
    async with session_scope(gateway.sessions) as session:
        row = await session.scalar(
            select(EmailLink).where(EmailLink.purpose == LinkPurpose.RESET_PASSWORD)
        )
        assert row is not None and row.expires_at_ms == clock.now_ms() + RESET_TTL_MS


async def test_the_forgot_page_without_smtp_names_the_operator(
    app: FastAPI, gateway: GatewayContext
) -> None:
    # The same app without SMTP: a mailer that is not configured.
    ctx = DashboardContext.build(gateway)
    app.state.dashboard = dataclasses.replace(ctx, mailer=Mailer(None, "x@pay.example.com"))
    async with Browser(app) as browser:
        answer = await ask(browser, "nobody@shop.example")
    assert answer.status_code == 200
    assert "the gateway&#39;s operator can give you a link" in answer.text


async def test_the_reset_pages_escape_what_they_show(app: FastAPI, mail: MailSink) -> None:
    email = "o'neil&{x}|y=`z`@evil.example"
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", email)
        answer = await ask(browser, email)
        assert email not in answer.text and "o&#39;neil&amp;{x}" in answer.text
        form = await browser.get(reset_link_for(mail, email).split("pay.example.com", 1)[1])
        assert email not in form.text and "o&#39;neil&amp;{x}" in form.text
        hostile = await ask(browser, '"><script>alert(1)</script>@evil.example')
        assert hostile.status_code == 400 and "<script>alert(1)" not in hostile.text
        assert "Enter a valid email address." in hostile.text
    assert re.search(r"<script(?![^>]*\bsrc=)", answer.text) is None
    assert PASSWORD not in form.text
