"""Sign-up, email verification, log-in and log-out pages (docs/DESIGN.md §9 "Merchant
dashboard").

- ``GET|POST /dashboard/signup``: a merchant and its owner account, under the operator's policy;
  the verification link is mailed, or listed for the operator without SMTP.
- ``GET /dashboard/verify?token=…`` shows a button; ``POST /dashboard/verify`` spends the link
  (a GET that spent it would be spent by mail scanners that open links).
- ``GET|POST /dashboard/login``: limited per account and per IP; every log-in starts a new
  session and ends the one the browser had. With two-factor on, the password starts a pending
  session instead (5 minutes, no page but the next one):
- ``GET|POST /dashboard/login/second-factor``: a TOTP or recovery code (wrong ones limited per
  account and per IP) ends the pending session and starts a new, full one.
- ``POST /dashboard/logout``.

The public forms (sign-up, log-in, verify) carry a CSRF token tied to a pre-session cookie; the
second step's form one tied to the pending session.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stablegate.config import SignupPolicy
from stablegate.dashboard.accounts import (
    check_may_log_in,
    checked_name,
    find_user,
    normalized_email,
    sign_up,
)
from stablegate.dashboard.csrf import check_form_token, form_token
from stablegate.dashboard.errors import AccountError, CsrfRefused
from stablegate.dashboard.links import checked_link, issue_link, latest_link_at, verify_email
from stablegate.dashboard.pages import PREFIX, Page, read_form
from stablegate.dashboard.passwords import checked_password, hash_password, verify_password
from stablegate.dashboard.second_factor import Accepted, check_second_factor, is_enabled
from stablegate.dashboard.sessions import PendingLogin, end_session, load_pending, start_session
from stablegate.dashboard.signup_policy import current_policy
from stablegate.db.engine import read_scope, session_scope
from stablegate.errors import RateLimited
from stablegate.models import DashboardUser, Merchant

router = APIRouter()

# A new verification link at log-in only when the last is older than this.
RESEND_AFTER_MS = 5 * 60_000
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{1,60}\.[A-Za-z0-9_-]{1,60}$")
NOTICES = ("logged_out", "second_factor_expired", "password_reset_done")
SECOND_STEP = f"{PREFIX}/login/second-factor"
MAX_CODE = 40
MAX_NEXT = 2000  # a path with its query, where a log-in asked for by a page leads back to


async def send_verification(page: Page, user: DashboardUser, name: str, url: str) -> bool:
    t = page.t
    return await page.ctx.mailer.send(
        user.email,
        t("mail_verify_subject", name=name),
        t("mail_verify_body", name=name, url=url),
    )


@router.get(PREFIX, include_in_schema=False)
@router.get(PREFIX + "/", include_in_schema=False)
async def home(request: Request) -> Response:
    page = Page.of(request)
    async with session_scope(page.ctx.web.sessions) as session:
        viewer = await page.viewer(session)
    return page.redirect(f"{PREFIX}/overview" if viewer else f"{PREFIX}/login")


def _signup_form(
    page: Page,
    policy: SignupPolicy,
    *,
    status: int = 200,
    error: str | None = None,
    values: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return page.render(
        "signup.html",
        status=status,
        headers=headers,
        csrf_token=page.form_csrf(),
        policy=str(policy),
        error=error,
        values=values or {},
    )


@router.get(PREFIX + "/signup", include_in_schema=False)
async def signup_page(request: Request) -> Response:
    page = Page.of(request)
    try:
        await page.ctx.web.limiter.check_public(page.ip)
    except RateLimited as exc:
        return page.refusal(exc)
    async with read_scope(page.ctx.web.sessions) as session:
        policy = await current_policy(session, page.ctx.web.settings)
    return _signup_form(page, policy)


@router.post(PREFIX + "/signup", include_in_schema=False)
async def signup(request: Request) -> Response:
    page = Page.of(request)
    ctx, web = page.ctx, page.ctx.web
    form = await read_form(request)
    values = {"name": form.get("name", ""), "email": form.get("email", "")}
    try:
        await web.limiter.check_public(page.ip)
        check_form_token(page.expected_form_csrf(), form.get("csrf_token"))
    except (RateLimited, CsrfRefused) as exc:
        return page.refusal(exc)
    async with read_scope(web.sessions) as session:
        policy = await current_policy(session, web.settings)
    try:
        name = checked_name(values["name"])
        normalized_email(values["email"])
        password = checked_password(form.get("password", ""))
        if policy == SignupPolicy.INVITE and not form.get("invite_code", "").strip():
            raise AccountError("sign-up needs an invite code", code="invite_required")
        await ctx.throttle.check_signup(page.ip)
        password_hash = await hash_password(password)
        async with session_scope(web.sessions) as session:
            account = await sign_up(
                session,
                web.secret_box,
                web.clock,
                policy=policy,
                name=name,
                email=values["email"],
                password_hash=password_hash,
                invite_code=form.get("invite_code", ""),
            )
            url = await issue_link(
                session, web.clock, ctx.link_key, web.settings.public_url, account.user
            )
    except (AccountError, RateLimited) as exc:
        return _signup_form(
            page,
            policy,
            status=exc.status,
            error=page.error_text(exc),
            values=values,
            headers=exc.headers,
        )
    t, email = page.t, account.user.email
    if not ctx.mailer.configured:
        lines = [t("signed_up_no_mail", email=email)]
    elif await send_verification(page, account.user, name, url):
        lines = [t("signed_up_verify", email=email)]
    else:
        lines = [t("signed_up_mail_failed", email=email)]
    if account.pending_approval:
        lines.append(t("signed_up_approval"))
    return page.render("message.html", title=t("signed_up_title"), lines=lines, login_link=True)


@router.get(PREFIX + "/verify", include_in_schema=False)
async def verify_page(request: Request, token: str = "") -> Response:
    page = Page.of(request)
    web = page.ctx.web
    try:
        await web.limiter.check_public(page.ip)
        if not TOKEN_SHAPE.match(token):
            raise AccountError("this link is not valid", code="invalid_link")
        async with read_scope(web.sessions) as session:
            await checked_link(session, web.clock, page.ctx.link_key, token)
    except (AccountError, RateLimited) as exc:
        return page.render(
            "message.html",
            status=exc.status,
            title=page.t("link_failed_title"),
            lines=[page.error_text(exc)],
            login_link=True,
        )
    return page.render("verify.html", csrf_token=page.form_csrf(), token=token)


@router.post(PREFIX + "/verify", include_in_schema=False)
async def verify(request: Request) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    form = await read_form(request)
    token = form.get("token", "")
    try:
        await web.limiter.check_public(page.ip)
        check_form_token(page.expected_form_csrf(), form.get("csrf_token"))
    except (RateLimited, CsrfRefused) as exc:
        return page.refusal(exc)
    try:
        if not TOKEN_SHAPE.match(token):
            raise AccountError("this link is not valid", code="invalid_link")
        async with session_scope(web.sessions) as session:
            user = await verify_email(session, web.clock, page.ctx.link_key, token)
    except AccountError as exc:
        return page.render(
            "message.html",
            status=exc.status,
            title=page.t("link_failed_title"),
            lines=[page.error_text(exc)],
            login_link=True,
        )
    return page.render(
        "message.html",
        title=page.t("verified_title"),
        lines=[page.t("verified_text", email=user.email)],
        login_link=True,
    )


def after_login(value: str | None) -> str | None:
    """Where a log-in may send the browser on: a dashboard path of this gateway only (never
    another site, never a scheme-relative ``//host`` or a backslash trick), else nowhere."""
    if not value or len(value) > MAX_NEXT or not value.startswith(f"{PREFIX}/"):
        return None
    if "\\" in value or any(ord(c) < 33 for c in value):
        return None
    return value


def _landing(next_path: str | None) -> str:
    return next_path or f"{PREFIX}/keys"


def _login_form(
    page: Page,
    *,
    status: int = 200,
    error: str | None = None,
    email: str = "",
    notice: str | None = None,
    headers: dict[str, str] | None = None,
    next_path: str | None = None,
) -> Response:
    return page.render(
        "login.html",
        status=status,
        headers=headers,
        csrf_token=page.form_csrf(),
        error=error,
        email=email,
        notice=notice,
        next_path=next_path or "",
    )


@router.get(PREFIX + "/login", include_in_schema=False)
async def login_page(request: Request, notice: str = "", next: str = "") -> Response:
    page = Page.of(request)
    try:
        await page.ctx.web.limiter.check_public(page.ip)
    except RateLimited as exc:
        return page.refusal(exc)
    return _login_form(
        page, notice=page.t(notice) if notice in NOTICES else None, next_path=after_login(next)
    )


@router.post(PREFIX + "/login", include_in_schema=False)
async def login(request: Request) -> Response:
    page = Page.of(request)
    ctx, web = page.ctx, page.ctx.web
    form = await read_form(request)
    email, password = form.get("email", ""), form.get("password", "")
    next_path = after_login(form.get("next"))
    found: DashboardUser | None = None
    try:
        await web.limiter.check_public(page.ip)
        check_form_token(page.expected_form_csrf(), form.get("csrf_token"))
    except (RateLimited, CsrfRefused) as exc:
        return page.refusal(exc)
    try:
        await ctx.throttle.check_login(email, page.ip)
        async with read_scope(web.sessions) as session:
            found = await find_user(session, email)
        # Outside any transaction: Argon2 takes tens of milliseconds.
        if not await verify_password(found.password_hash if found else None, password):
            await ctx.throttle.note_failed_login(email, page.ip)
            raise AccountError("the email or password is wrong", code="invalid_credentials")
        assert found is not None
        async with session_scope(web.sessions) as session:
            user = await session.get(DashboardUser, found.id)
            if user is None:
                raise AccountError("the email or password is wrong", code="invalid_credentials")
            await check_may_log_in(session, user)
            # A new session, never the browser's old one: a token planted before log-in
            # (session fixation) is worth nothing after it.
            await end_session(session, web.clock, page.session_token)
            pending = is_enabled(user)
            token = await start_session(
                session, web.clock, user, user_agent=page.user_agent, ip=page.ip, pending=pending
            )
    except (AccountError, RateLimited) as exc:
        if isinstance(exc, AccountError) and exc.code == "email_not_verified" and found:
            await _resend_verification(page, found)
        return _login_form(
            page,
            status=exc.status,
            error=page.error_text(exc),
            email=email,
            headers=exc.headers,
            next_path=next_path,
        )
    page.start_session_cookie(token)
    if pending:
        query = f"?{urlencode({'next': next_path})}" if next_path else ""
        return page.redirect(SECOND_STEP + query)
    return page.redirect(_landing(next_path))


def _pending_csrf(page: Page, pending: PendingLogin) -> str:
    # Its own kind: never valid on a signed-in form, nor a signed-in token here.
    return form_token(page.ctx.csrf_key, "pending", pending.token)


def _second_step_form(
    page: Page,
    pending: PendingLogin,
    *,
    status: int = 200,
    error: str | None = None,
    headers: dict[str, str] | None = None,
    next_path: str | None = None,
) -> Response:
    return page.render(
        "second_factor.html",
        status=status,
        headers=headers,
        csrf_token=_pending_csrf(page, pending),
        error=error,
        next_path=next_path or "",
    )


@router.get(SECOND_STEP, include_in_schema=False)
async def second_step_page(request: Request, next: str = "") -> Response:
    page = Page.of(request)
    web = page.ctx.web
    try:
        await web.limiter.check_public(page.ip)
    except RateLimited as exc:
        return page.refusal(exc)
    async with read_scope(web.sessions) as session:
        pending = await load_pending(session, web.clock, page.session_token)
    if pending is None:
        return page.redirect(f"{PREFIX}/login?notice=second_factor_expired")
    return _second_step_form(page, pending, next_path=after_login(next))


@router.post(SECOND_STEP, include_in_schema=False)
async def second_step(request: Request) -> Response:
    page = Page.of(request)
    ctx, web = page.ctx, page.ctx.web
    form = await read_form(request)
    code = form.get("code", "")[:MAX_CODE]
    next_path = after_login(form.get("next"))
    try:
        await web.limiter.check_public(page.ip)
        async with read_scope(web.sessions) as session:
            pending = await load_pending(session, web.clock, page.session_token)
        expected = _pending_csrf(page, pending) if pending else None
        check_form_token(expected, form.get("csrf_token"))
    except (RateLimited, CsrfRefused) as exc:
        return page.refusal(exc)
    assert pending is not None
    try:
        await ctx.throttle.check_code(pending.user_id, page.ip)
        async with session_scope(web.sessions) as session:
            user = await session.get(DashboardUser, pending.user_id)
            accepted = None
            if user is not None:
                accepted = await check_second_factor(
                    session, web.secret_box, user, code, now_ms=web.clock.now_ms()
                )
            if user is None or accepted is None:
                raise AccountError("the code is wrong", code="invalid_code")
            await check_may_log_in(session, user)
            # The pending session ends; the signed-in one is new (no fixation across steps).
            await end_session(session, web.clock, pending.token)
            token = await start_session(
                session, web.clock, user, user_agent=page.user_agent, ip=page.ip
            )
    except (AccountError, RateLimited) as exc:
        if isinstance(exc, AccountError) and exc.code == "invalid_code":
            await ctx.throttle.note_failed_code(pending.user_id, page.ip)
        return _second_step_form(
            page,
            pending,
            status=exc.status,
            error=page.error_text(exc),
            headers=exc.headers,
            next_path=next_path,
        )
    page.start_session_cookie(token)
    if accepted == Accepted.RECOVERY_CODE and next_path is None:
        return page.redirect(f"{PREFIX}/security?notice=recovery_code_used")
    return page.redirect(_landing(next_path))


async def _resend_verification(page: Page, user: DashboardUser) -> None:
    """A fresh link for someone who knows the password but never confirmed the address, at most
    one per RESEND_AFTER_MS; without SMTP it waits in the operator's list."""
    web = page.ctx.web
    async with session_scope(web.sessions) as session:
        last = await latest_link_at(session, user.id)
        if last is not None and web.clock.now_ms() - last < RESEND_AFTER_MS:
            return
        held = await session.get(DashboardUser, user.id)
        if held is None:
            return
        url = await issue_link(session, web.clock, page.ctx.link_key, web.settings.public_url, held)
        merchant = await session.get(Merchant, held.merchant_id)
        name = merchant.name if merchant else ""
    await send_verification(page, user, name, url)


@router.post(PREFIX + "/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    form = await read_form(request)
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        try:
            page.check_session_form(viewer, form)
        except CsrfRefused as exc:
            return page.refusal(exc)
        await end_session(session, web.clock, viewer.token)
    page.end_session_cookie()
    return page.redirect(f"{PREFIX}/login?notice=logged_out")
