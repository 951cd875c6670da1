"""The forgotten-password pages (docs/DESIGN.md §9 "Merchant dashboard"):

- ``GET|POST /dashboard/forgot``: an address; if an account uses it, a reset link is mailed (or,
  without SMTP, listed by ``stablegate dashboard links``). The answer is the same page whether or
  not the address has an account, and the mail goes out after the answer, so neither the page
  nor its timing tells. Limited per client IP and per address.
- ``GET /dashboard/reset?token=…`` shows the new-password form; ``POST /dashboard/reset`` sets it
  (:mod:`stablegate.dashboard.password_reset`: every session ends, the link is spent) and sends
  the browser to the log-in page.

Both forms carry the pre-session CSRF token, like the log-in form.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.background import BackgroundTask

from stablegate.dashboard.accounts import normalized_email
from stablegate.dashboard.csrf import check_form_token
from stablegate.dashboard.errors import AccountError, CsrfRefused
from stablegate.dashboard.pages import PREFIX, Page, read_form
from stablegate.dashboard.password_reset import (
    ResetMail,
    checked_reset_link,
    request_reset,
    reset_password,
)
from stablegate.dashboard.passwords import checked_password, hash_password
from stablegate.dashboard.second_factor import is_enabled
from stablegate.db.engine import read_scope, session_scope
from stablegate.errors import RateLimited

router = APIRouter()

TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{1,60}\.[A-Za-z0-9_-]{1,60}$")
# The sentence a refused link shows, by error code (the verification link's words do not fit).
LINK_ERRORS = {
    "invalid_link": "reset_invalid_link",
    "expired_link": "reset_expired_link",
    "used_link": "reset_used_link",
    "link_address_changed": "reset_address_changed",
}


def _forgot_form(
    page: Page,
    *,
    status: int = 200,
    error: str | None = None,
    email: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    return page.render(
        "forgot.html",
        status=status,
        headers=headers,
        csrf_token=page.form_csrf(),
        error=error,
        email=email,
    )


@router.get(PREFIX + "/forgot", include_in_schema=False)
async def forgot_page(request: Request) -> Response:
    page = Page.of(request)
    try:
        await page.ctx.web.limiter.check_public(page.ip)
    except RateLimited as exc:
        return page.refusal(exc)
    return _forgot_form(page)


@router.post(PREFIX + "/forgot", include_in_schema=False)
async def forgot(request: Request) -> Response:
    page = Page.of(request)
    ctx, web = page.ctx, page.ctx.web
    form = await read_form(request)
    email = form.get("email", "")
    try:
        await web.limiter.check_public(page.ip)
        check_form_token(page.expected_form_csrf(), form.get("csrf_token"))
    except (RateLimited, CsrfRefused) as exc:
        return page.refusal(exc)
    try:
        address = normalized_email(email)
        await ctx.throttle.check_reset_request(address, page.ip)
        async with session_scope(web.sessions) as session:
            mail = await request_reset(
                session, web.clock, ctx.link_key, web.settings.public_url, address
            )
    except (AccountError, RateLimited) as exc:
        return _forgot_form(
            page, status=exc.status, error=page.error_text(exc), email=email, headers=exc.headers
        )
    t = page.t
    sent = "forgot_sent" if ctx.mailer.configured else "forgot_sent_no_mail"
    response = page.render(
        "message.html",
        title=t("forgot_sent_title"),
        lines=[t(sent, email=address)],
        login_link=True,
    )
    if mail is not None and ctx.mailer.configured:
        # After the answer: its timing must not tell whether the address has an account.
        response.background = BackgroundTask(_send_reset, page, mail)
    return response


async def _send_reset(page: Page, mail: ResetMail) -> None:
    t = page.t
    await page.ctx.mailer.send(
        mail.email,
        t("mail_reset_subject", name=mail.merchant_name),
        t("mail_reset_body", name=mail.merchant_name, url=mail.url),
    )


def _link_failed(page: Page, exc: AccountError) -> Response:
    t = page.t
    return page.render(
        "message.html",
        status=exc.status,
        title=t("reset_failed_title"),
        lines=[t(LINK_ERRORS.get(exc.code, "reset_invalid_link"))],
        next_link={"href": f"{PREFIX}/forgot", "text": t("reset_ask_again")},
    )


def _reset_form(
    page: Page,
    *,
    token: str,
    email: str,
    two_factor: bool,
    status: int = 200,
    error: str | None = None,
) -> Response:
    return page.render(
        "reset.html",
        status=status,
        csrf_token=page.form_csrf(),
        token=token,
        email=email,
        two_factor=two_factor,
        error=error,
    )


@router.get(PREFIX + "/reset", include_in_schema=False)
async def reset_page(request: Request, token: str = "") -> Response:
    page = Page.of(request)
    web = page.ctx.web
    try:
        await web.limiter.check_public(page.ip)
    except RateLimited as exc:
        return page.refusal(exc)
    try:
        if not TOKEN_SHAPE.match(token):
            raise AccountError("this link is not valid", code="invalid_link")
        async with read_scope(web.sessions) as session:
            _link, user = await checked_reset_link(session, web.clock, page.ctx.link_key, token)
    except AccountError as exc:
        return _link_failed(page, exc)
    return _reset_form(page, token=token, email=user.email, two_factor=is_enabled(user))


@router.post(PREFIX + "/reset", include_in_schema=False)
async def reset(request: Request) -> Response:
    page = Page.of(request)
    ctx, web = page.ctx, page.ctx.web
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
        async with read_scope(web.sessions) as session:
            _link, user = await checked_reset_link(session, web.clock, ctx.link_key, token)
    except AccountError as exc:
        return _link_failed(page, exc)
    try:
        password = checked_password(form.get("password", ""))
    except AccountError as exc:
        return _reset_form(
            page,
            token=token,
            email=user.email,
            two_factor=is_enabled(user),
            status=exc.status,
            error=page.error_text(exc),
        )
    # Outside any transaction: Argon2 takes tens of milliseconds.
    password_hash = await hash_password(password)
    try:
        async with session_scope(web.sessions) as session:
            await reset_password(session, web.clock, ctx.link_key, token, password_hash)
    except AccountError as exc:
        return _link_failed(page, exc)
    page.end_session_cookie()
    return page.redirect(f"{PREFIX}/login?notice=password_reset_done")
