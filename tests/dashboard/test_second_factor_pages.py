"""Two-factor authentication through the pages: enrolment on the Security page, the log-in's
second step on a pending session (which opens no other page), no session fixation across the
steps, throttled codes, new recovery codes, turning it off, and changing the password."""

from __future__ import annotations

import re
from html import unescape

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from tests.dashboard.dashboard_support import PASSWORD, Browser, MailSink, signed_up_and_in
from tests.dashboard.test_csrf import SESSION_FORMS
from tests.dashboard.test_tenancy import SIGNED_IN_PAGES

from stablegate.api.context import GatewayContext
from stablegate.auth.ratelimit import MemoryRateLimitBackend
from stablegate.clock import FakeClock
from stablegate.dashboard.second_factor import STEP_SECONDS, code_at, time_step
from stablegate.dashboard.sessions import PENDING_TTL_MS, token_hash
from stablegate.dashboard.throttle import (
    CODE_ACCOUNT_FAILURES,
    CODE_IP_FAILURES,
    PERIOD_MS,
    FormThrottle,
)
from stablegate.db.engine import session_scope
from stablegate.errors import RateLimited
from stablegate.models import DashboardSession, DashboardUser

EMAIL = "owner@shop.example"
SECURITY = "/dashboard/security"
SECOND_STEP = "/dashboard/login/second-factor"
SECRET = re.compile(r'id="totp-secret">([A-Z2-7 ]+)<')
CODES = re.compile(r"<li><code>([0-9a-z-]{19})</code></li>")


def now_code(secret: str, clock: FakeClock, offset: int = 0) -> str:
    return code_at(secret, time_step(clock.now_ms()) + offset)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def enrol(
    browser: Browser, clock: FakeClock, security: str = SECURITY
) -> tuple[str, list[str]]:
    """Turn two-factor on through the Security page (the dashboard's, or the console's at
    ``/admin/security``): the secret and the recovery codes."""
    started = await browser.post(f"{security}/two-factor/start", {}, token_from=security)
    assert started.status_code == 303
    page = await browser.get(security)
    found = SECRET.search(page.text)
    assert found is not None, page.text
    secret = found.group(1).replace(" ", "")
    assert 'src="data:image/svg+xml' in page.text
    confirmed = await browser.post(
        f"{security}/two-factor/confirm", {"code": now_code(secret, clock)}, token_from=security
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = CODES.findall(confirmed.text)
    assert len(codes) == 10
    # The next code is another step's.
    clock.advance(STEP_SECONDS)
    return secret, codes


async def signed_up_with_two_factor(
    browser: Browser, mail: MailSink, clock: FakeClock
) -> tuple[str, list[str]]:
    await signed_up_and_in(browser, mail, "Shop", EMAIL)
    return await enrol(browser, clock)


async def second_step(browser: Browser, code: str) -> httpx.Response:
    return await browser.post(SECOND_STEP, {"code": code})


async def test_enrolment_shows_the_qr_and_key_and_the_codes_once(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        page = await browser.get(SECURITY)
        assert "Off. With two-factor authentication" in page.text
        await browser.post(f"{SECURITY}/two-factor/start", {}, token_from=SECURITY)
        page = await browser.get(SECURITY)
        found = SECRET.search(page.text)
        assert found is not None and "Scan this QR code" in page.text
        secret = found.group(1).replace(" ", "")
        async with session_scope(gateway.sessions) as session:
            user = await session.scalar(select(DashboardUser))
            assert user is not None and user.totp_enabled_at_ms is None
            assert user.totp_secret_enc is not None and secret not in user.totp_secret_enc
        # A wrong code: the page again with the error, nothing enabled.
        refused = await browser.post(
            f"{SECURITY}/two-factor/confirm",
            {"code": wrong(now_code(secret, clock))},
            token_from=SECURITY,
        )
        assert refused.status_code == 400 and "The code is wrong" in refused.text
        assert SECRET.search(refused.text) is not None
        confirmed = await browser.post(
            f"{SECURITY}/two-factor/confirm", {"code": now_code(secret, clock)}, token_from=SECURITY
        )
        assert confirmed.status_code == 200 and "Two-factor authentication is on." in confirmed.text
        codes = CODES.findall(confirmed.text)
        assert len(set(codes)) == 10
        # Shown once: neither the codes nor the secret appear again.
        page = await browser.get(SECURITY)
        assert "Recovery codes left: 10." in page.text
        assert not [code for code in codes if code in page.text]
        assert SECRET.search(page.text) is None and "data:image" not in page.text
        # Starting again while it is on changes nothing.
        await browser.post(f"{SECURITY}/two-factor/start", {}, token_from=SECURITY)
        async with session_scope(gateway.sessions) as session:
            user = await session.scalar(select(DashboardUser))
            assert user is not None and user.totp_enabled_at_ms is not None
            assert gateway.secret_box.open(user.totp_secret_enc or "") == secret


async def test_an_unconfirmed_enrolment_can_be_cancelled_and_changes_no_log_in(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        await browser.post(f"{SECURITY}/two-factor/start", {}, token_from=SECURITY)
        logged_in = await browser.log_in(EMAIL)
        assert logged_in.headers["location"] == "/dashboard/keys"  # not on yet
        cancelled = await browser.post(f"{SECURITY}/two-factor/cancel", {}, token_from=SECURITY)
        assert cancelled.headers["location"].startswith(f"{SECURITY}?notice=two_factor_cancelled")
        page = await browser.get(cancelled.headers["location"])
        assert "The set-up is cancelled." in page.text and SECRET.search(page.text) is None
    async with session_scope(gateway.sessions) as session:
        user = await session.scalar(select(DashboardUser))
        assert user is not None and user.totp_secret_enc is None


async def test_log_in_needs_the_code_and_starts_a_new_session_after_it(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        secret, _codes = await signed_up_with_two_factor(browser, mail, clock)
        full_before = browser.session_cookie
        answer = await browser.log_in(EMAIL)
        assert answer.status_code == 303 and answer.headers["location"] == SECOND_STEP
        pending = browser.session_cookie
        assert pending is not None and pending != full_before
        page = await browser.get(SECOND_STEP)
        assert page.status_code == 200 and "Now enter the code" in page.text
        # The session the browser had before the password is ended, like any log-in's.
        assert (await browser.get("/dashboard/keys")).status_code == 303

        refused = await second_step(browser, wrong(now_code(secret, clock)))
        assert refused.status_code == 400 and "The code is wrong" in refused.text
        done = await second_step(browser, now_code(secret, clock))
        assert done.status_code == 303 and done.headers["location"] == "/dashboard/keys"
        full = browser.session_cookie
        assert full is not None and full != pending  # a new token: no fixation
        keys = await browser.get("/dashboard/keys")
        assert keys.status_code == 200 and EMAIL in keys.text
    async with session_scope(gateway.sessions) as session:
        rows = {
            row.token_hash: row for row in (await session.scalars(select(DashboardSession))).all()
        }
    assert rows[token_hash(pending)].revoked_at_ms is not None
    assert rows[token_hash(pending)].second_factor_pending
    assert rows[token_hash(full)].revoked_at_ms is None
    assert not rows[token_hash(full)].second_factor_pending


async def test_a_pending_session_opens_no_page_but_the_second_step(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_with_two_factor(browser, mail, clock)
        async with session_scope(gateway.sessions) as session:
            key_id = "ak_none"
            session_id = await session.scalar(select(DashboardSession.id).limit(1))
        assert (await browser.log_in(EMAIL)).headers["location"] == SECOND_STEP
        pending = browser.session_cookie
        for path in SIGNED_IN_PAGES:
            answer = await browser.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"] == "/dashboard/login", path
        home = await browser.get("/dashboard/")
        assert home.headers["location"] == "/dashboard/login"
        token = await browser.token(SECOND_STEP)
        for path in SESSION_FORMS:
            ids = {"event_id": "evt_none", "order_id": "ord-none"}
            url = path.format(key_id=key_id, session_id=session_id, **ids)
            answer = await browser.client.post(url, data={"csrf_token": token, "label": "x"})
            assert answer.status_code == 303, path
            assert answer.headers["location"] == "/dashboard/login", path
        # Still pending (logging out above did not end it, nor turn it into a session).
        assert browser.session_cookie == pending
        assert (await browser.get(SECOND_STEP)).status_code == 200
    async with session_scope(gateway.sessions) as session:
        row = await session.scalar(
            select(DashboardSession).where(DashboardSession.token_hash == token_hash(pending or ""))
        )
        assert row is not None and row.second_factor_pending and row.revoked_at_ms is None


async def test_the_second_step_expires_after_five_minutes(
    app: FastAPI, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        secret, _codes = await signed_up_with_two_factor(browser, mail, clock)
        await browser.log_in(EMAIL)
        token = await browser.token(SECOND_STEP)
        clock.advance(PENDING_TTL_MS / 1000)
        gone = await browser.get(SECOND_STEP)
        assert gone.status_code == 303
        assert gone.headers["location"] == "/dashboard/login?notice=second_factor_expired"
        late = await browser.client.post(
            SECOND_STEP, data={"csrf_token": token, "code": now_code(secret, clock)}
        )
        assert late.status_code == 403 and browser.session_cookie is not None
        assert (await browser.get("/dashboard/keys")).status_code == 303
        notice = await browser.get(gone.headers["location"])
        assert "the time to enter your code has run out" in notice.text


async def test_a_code_logs_in_once(app: FastAPI, clock: FakeClock, mail: MailSink) -> None:
    async with Browser(app) as browser, Browser(app, ip="198.51.100.30") as thief:
        secret, _codes = await signed_up_with_two_factor(browser, mail, clock)
        code = now_code(secret, clock)
        await browser.log_in(EMAIL)
        assert (await second_step(browser, code)).headers["location"] == "/dashboard/keys"
        # Someone who saw the password and the code: the code is spent.
        await thief.log_in(EMAIL)
        replayed = await second_step(thief, code)
        assert replayed.status_code == 400 and "The code is wrong or was used" in replayed.text
        assert (await thief.get("/dashboard/keys")).status_code == 303
        # The step after passes (an adjacent step is accepted too, once).
        assert (await second_step(thief, now_code(secret, clock, 1))).status_code == 303
        assert (await thief.get("/dashboard/keys")).status_code == 200


async def test_a_recovery_code_logs_in_once(app: FastAPI, clock: FakeClock, mail: MailSink) -> None:
    async with Browser(app) as browser:
        _secret, codes = await signed_up_with_two_factor(browser, mail, clock)
        await browser.log_in(EMAIL)
        used = await second_step(browser, codes[0].upper())
        assert used.headers["location"] == f"{SECURITY}?notice=recovery_code_used"
        page = await browser.get(used.headers["location"])
        assert "You logged in with a recovery code" in page.text
        assert "Recovery codes left: 9." in page.text
        await browser.log_in(EMAIL)
        again = await second_step(browser, codes[0])
        assert again.status_code == 400
        assert (await browser.get("/dashboard/keys")).status_code == 303


async def test_wrong_codes_are_limited_per_account(
    app: FastAPI, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        secret, _codes = await signed_up_with_two_factor(browser, mail, clock)
    async with Browser(app, ip="198.51.100.40") as guesser:
        await guesser.log_in(EMAIL)
        for _ in range(CODE_ACCOUNT_FAILURES):
            answer = await second_step(guesser, wrong(now_code(secret, clock)))
            assert answer.status_code == 400
        locked = await second_step(guesser, now_code(secret, clock))
        assert locked.status_code == 429 and "Too many attempts" in locked.text
        assert locked.headers["retry-after"] == "180"
    # Per account: from another address too, with the right code.
    async with Browser(app, ip="192.0.2.60") as owner:
        await owner.log_in(EMAIL)
        assert (await second_step(owner, now_code(secret, clock))).status_code == 429
        clock.advance(PERIOD_MS / CODE_ACCOUNT_FAILURES / 1000)
        await owner.log_in(EMAIL)
        assert (await second_step(owner, now_code(secret, clock))).status_code == 303


async def test_the_second_steps_form_takes_only_its_own_pending_token(
    app: FastAPI, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser, Browser(app) as other:
        secret, _codes = await signed_up_with_two_factor(browser, mail, clock)
        signed_in = await browser.token("/dashboard/keys")
        await other.log_in(EMAIL)
        others = await other.token(SECOND_STEP)
        await browser.log_in(EMAIL)
        pre_session = await browser.token("/dashboard/login")
        code = now_code(secret, clock)
        for token in (None, "", signed_in, others, pre_session):
            data = {"code": code} | ({} if token is None else {"csrf_token": token})
            refused = await browser.client.post(SECOND_STEP, data=data)
            assert refused.status_code == 403, token
        assert (await browser.get("/dashboard/keys")).status_code == 303
        assert (await second_step(browser, code)).status_code == 303


async def test_new_recovery_codes_need_a_current_code(
    app: FastAPI, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        secret, codes = await signed_up_with_two_factor(browser, mail, clock)
        url = f"{SECURITY}/two-factor/recovery-codes"
        refused = await browser.post(url, {"code": codes[0]}, token_from=SECURITY)
        assert refused.status_code == 400 and "The code is wrong" in refused.text
        made = await browser.post(url, {"code": now_code(secret, clock)}, token_from=SECURITY)
        assert made.status_code == 200
        fresh = CODES.findall(made.text)
        assert len(fresh) == 10 and not set(fresh) & set(codes)
        await browser.log_in(EMAIL)
        assert (await second_step(browser, codes[1])).status_code == 400
        assert (await second_step(browser, fresh[1])).status_code == 303


async def test_turning_it_off_needs_the_password_and_a_code(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        secret, codes = await signed_up_with_two_factor(browser, mail, clock)
        url = f"{SECURITY}/two-factor/disable"
        code = now_code(secret, clock)
        no_password = await browser.post(
            url, {"password": "not the password", "code": code}, token_from=SECURITY
        )
        assert no_password.status_code == 400 and "The password is wrong." in no_password.text
        no_code = await browser.post(
            url, {"password": PASSWORD, "code": wrong(code)}, token_from=SECURITY
        )
        assert no_code.status_code == 400 and "The code is wrong" in no_code.text
        off = await browser.post(url, {"password": PASSWORD, "code": codes[2]}, token_from=SECURITY)
        assert off.status_code == 303
        page = await browser.get(off.headers["location"])
        assert "Two-factor authentication is off." in page.text
        assert (await browser.log_in(EMAIL)).headers["location"] == "/dashboard/keys"
    async with session_scope(gateway.sessions) as session:
        user = await session.scalar(select(DashboardUser))
        assert user is not None
        assert (user.totp_secret_enc, user.totp_enabled_at_ms, user.recovery_hashes) == (
            None,
            None,
            None,
        )


async def test_changing_the_password_ends_the_other_sessions(
    app: FastAPI, clock: FakeClock, mail: MailSink
) -> None:
    new = "a brand new passphrase"
    async with Browser(app) as browser, Browser(app, ip="198.51.100.50") as elsewhere:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        assert (await elsewhere.log_in(EMAIL)).status_code == 303
        url = f"{SECURITY}/password"
        wrong_current = await browser.post(
            url, {"current_password": "not it at all", "new_password": new}, token_from=SECURITY
        )
        assert wrong_current.status_code == 400 and "The password is wrong." in wrong_current.text
        short = await browser.post(
            url, {"current_password": PASSWORD, "new_password": "short"}, token_from=SECURITY
        )
        assert short.status_code == 400 and "at least 12 characters" in short.text
        assert (await elsewhere.get("/dashboard/keys")).status_code == 200
        changed = await browser.post(
            url, {"current_password": PASSWORD, "new_password": new}, token_from=SECURITY
        )
        assert changed.status_code == 303
        page = await browser.get(changed.headers["location"])
        assert page.status_code == 200 and "Your password is changed." in page.text
        assert (await elsewhere.get("/dashboard/keys")).status_code == 303
        assert (await elsewhere.log_in(EMAIL)).status_code == 400
        assert (await elsewhere.log_in(EMAIL, new)).status_code == 303


async def test_wrong_passwords_on_the_security_page_are_limited(
    app: FastAPI, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        url = f"{SECURITY}/password"
        data = {"current_password": "not it at all", "new_password": "a brand new passphrase"}
        for _ in range(CODE_ACCOUNT_FAILURES):
            assert (await browser.post(url, data, token_from=SECURITY)).status_code == 400
        data["current_password"] = PASSWORD
        locked = await browser.post(url, data, token_from=SECURITY)
        assert locked.status_code == 429 and "Too many attempts" in locked.text


async def test_hostile_text_stays_inert_on_the_two_factor_pages(
    app: FastAPI, clock: FakeClock, mail: MailSink
) -> None:
    email = "o'neil&{x}|y=`z`@evil.example"
    agent = "<script>alert('agent')</script>"
    async with Browser(app, user_agent=agent) as browser:
        await signed_up_and_in(browser, mail, "<b>Shop</b>", email)
        await browser.post(f"{SECURITY}/two-factor/start", {}, token_from=SECURITY)
        page = (await browser.get(SECURITY)).text
        for raw in (email, agent, "<b>Shop</b>"):
            assert raw not in page
        assert "<script>" not in page and "<b>" not in page
        # The address is in the QR code's URI, drawn as an SVG path: an image runs nothing.
        images = re.findall(r'<img class="qr" src="([^"]*)"', page)
        assert len(images) == 1 and unescape(images[0]).startswith("data:image/svg+xml")
        found = SECRET.search(page)
        assert found is not None
        secret = found.group(1).replace(" ", "")
        confirmed = await browser.post(
            f"{SECURITY}/two-factor/confirm",
            {"code": "<script>alert(1)</script>"},
            token_from=SECURITY,
        )
        assert confirmed.status_code == 400 and "<script>alert(1)" not in confirmed.text
        await browser.post(
            f"{SECURITY}/two-factor/confirm", {"code": now_code(secret, clock)}, token_from=SECURITY
        )
        await browser.log_in(email)
        step = await second_step(browser, "<svg onload=alert(1)>")
        assert step.status_code == 400 and "<svg" not in step.text


async def test_wrong_codes_are_limited_per_ip_across_accounts(clock: FakeClock) -> None:
    throttle = FormThrottle(MemoryRateLimitBackend(clock))
    for number in range(CODE_IP_FAILURES):
        await throttle.check_code(f"usr_{number}", "198.51.100.90")
        await throttle.note_failed_code(f"usr_{number}", "198.51.100.90")
    with pytest.raises(RateLimited) as refused:
        await throttle.check_code("usr_fresh", "198.51.100.90")
    assert refused.value.retry_after == 45
    await throttle.check_code("usr_fresh", "198.51.100.91")  # another address is not limited
    # The log-in's own counters are separate: wrong codes do not lock the password form.
    await throttle.check_login("owner@shop.example", "198.51.100.90")
