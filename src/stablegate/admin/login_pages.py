"""The console's log-in, second step and log-out (docs/DESIGN.md §9 "Operator console").

The dashboard's rules: the form carries a token tied to a pre-session cookie, failures are
limited per account and per client IP before the password is checked (the throttle's buckets
are the dashboard's, keyed by address, so a guesser gains nothing by switching pages), every
log-in makes a new session, and with two-factor on the password only opens a 5-minute pending
session whose one page asks for the code.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stablegate.admin.accounts import find_operator
from stablegate.admin.pages import LOGIN, PREFIX, SECOND_STEP, ConsolePage
from stablegate.admin.sessions import end_session, load_operator, load_pending, start_session
from stablegate.dashboard.csrf import check_form_token, form_token
from stablegate.dashboard.errors import AccountError, CsrfRefused
from stablegate.dashboard.pages import read_form
from stablegate.dashboard.passwords import verify_password
from stablegate.dashboard.second_factor import Accepted, check_second_factor, is_enabled
from stablegate.db.engine import read_scope, session_scope
from stablegate.errors import RateLimited
from stablegate.models.operator_account import OperatorAccount

router = APIRouter()

HOME = f"{PREFIX}/merchants"
NOTICES = ("logged_out", "second_factor_expired")
MAX_CODE = 40


@router.get(PREFIX, include_in_schema=False)
@router.get(PREFIX + "/", include_in_schema=False)
async def home(request: Request) -> Response:
    page = ConsolePage.of(request)
    async with session_scope(page.ctx.web.sessions) as session:
        operator = await page.operator(session)
    return page.redirect(HOME if operator else LOGIN)


def _login_form(
    page: ConsolePage,
    *,
    status: int = 200,
    error: str | None = None,
    email: str = "",
    notice: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return page.public(
        "login.html",
        status=status,
        headers=headers,
        csrf_token=page.form_csrf(),
        error=error,
        email=email,
        notice=notice,
    )


@router.get(LOGIN, include_in_schema=False)
async def login_page(request: Request, notice: str = "") -> Response:
    page = ConsolePage.of(request)
    try:
        await page.ctx.web.limiter.check_public(page.ip)
    except RateLimited as exc:
        return page.refusal(exc)
    return _login_form(page, notice=page.t(notice) if notice in NOTICES else None)


@router.post(LOGIN, include_in_schema=False)
async def login(request: Request) -> Response:
    page = ConsolePage.of(request)
    ctx, web = page.ctx, page.ctx.web
    form = await read_form(request)
    email, password = form.get("email", ""), form.get("password", "")
    try:
        await web.limiter.check_public(page.ip)
        check_form_token(page.expected_form_csrf(), form.get("csrf_token"))
    except (RateLimited, CsrfRefused) as exc:
        return page.refusal(exc)
    try:
        await ctx.throttle.check_login(email, page.ip)
        async with read_scope(web.sessions) as session:
            found = await find_operator(session, email)
        # Outside any transaction: Argon2 takes tens of milliseconds. A disabled account is
        # refused like a wrong password, after the same work.
        right = await verify_password(found.password_hash if found else None, password)
        if not right or found is None or found.disabled_at_ms is not None:
            await ctx.throttle.note_failed_login(email, page.ip)
            raise AccountError("the email or password is wrong", code="invalid_credentials")
        async with session_scope(web.sessions) as session:
            operator = await session.get(OperatorAccount, found.id)
            if operator is None or operator.disabled_at_ms is not None:
                raise AccountError("the email or password is wrong", code="invalid_credentials")
            # A new session, never the browser's old one (no session fixation).
            await end_session(session, web.clock, page.session_token)
            pending = is_enabled(operator)
            token = await start_session(
                session,
                web.clock,
                operator,
                user_agent=page.user_agent,
                ip=page.ip,
                pending=pending,
            )
    except (AccountError, RateLimited) as exc:
        return _login_form(
            page, status=exc.status, error=page.error_text(exc), email=email, headers=exc.headers
        )
    page.start_session_cookie(token)
    return page.redirect(SECOND_STEP if pending else HOME)


def _pending_csrf(page: ConsolePage, token: str) -> str:
    return form_token(page.ctx.csrf_key, "operator-pending", token)


def _second_step_form(
    page: ConsolePage,
    token: str,
    *,
    status: int = 200,
    error: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return page.public(
        "second_factor.html",
        status=status,
        headers=headers,
        csrf_token=_pending_csrf(page, token),
        error=error,
    )


@router.get(SECOND_STEP, include_in_schema=False)
async def second_step_page(request: Request) -> Response:
    page = ConsolePage.of(request)
    web = page.ctx.web
    try:
        await web.limiter.check_public(page.ip)
    except RateLimited as exc:
        return page.refusal(exc)
    async with read_scope(web.sessions) as session:
        pending = await load_pending(session, web.clock, page.session_token)
    if pending is None:
        return page.redirect(f"{LOGIN}?notice=second_factor_expired")
    return _second_step_form(page, pending[0])


@router.post(SECOND_STEP, include_in_schema=False)
async def second_step(request: Request) -> Response:
    page = ConsolePage.of(request)
    ctx, web = page.ctx, page.ctx.web
    form = await read_form(request)
    code = form.get("code", "")[:MAX_CODE]
    try:
        await web.limiter.check_public(page.ip)
        async with read_scope(web.sessions) as session:
            pending = await load_pending(session, web.clock, page.session_token)
        check_form_token(
            _pending_csrf(page, pending[0]) if pending else None, form.get("csrf_token")
        )
    except (RateLimited, CsrfRefused) as exc:
        return page.refusal(exc)
    assert pending is not None
    pending_token, operator_id = pending
    try:
        await ctx.throttle.check_code(operator_id, page.ip)
        async with session_scope(web.sessions) as session:
            operator = await session.get(OperatorAccount, operator_id)
            accepted = None
            if operator is not None and operator.disabled_at_ms is None:
                accepted = await check_second_factor(
                    session, web.secret_box, operator, code, now_ms=web.clock.now_ms()
                )
            if operator is None or accepted is None:
                raise AccountError("the code is wrong", code="invalid_code")
            await end_session(session, web.clock, pending_token)
            token = await start_session(
                session, web.clock, operator, user_agent=page.user_agent, ip=page.ip
            )
    except (AccountError, RateLimited) as exc:
        if isinstance(exc, AccountError):
            await ctx.throttle.note_failed_code(operator_id, page.ip)
        return _second_step_form(
            page, pending_token, status=exc.status, error=page.error_text(exc), headers=exc.headers
        )
    page.start_session_cookie(token)
    if accepted == Accepted.RECOVERY_CODE:
        return page.redirect(f"{PREFIX}/security?notice=recovery_code_used")
    return page.redirect(HOME)


@router.post(PREFIX + "/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    page = ConsolePage.of(request)
    web = page.ctx.web
    form = await read_form(request)
    async with session_scope(web.sessions) as session:
        operator = await load_operator(session, web.clock, page.session_token)
        if operator is None:
            return page.redirect(LOGIN)
        try:
            page.check_operator_form(operator, form)
        except CsrfRefused as exc:
            return page.refusal(exc)
        await end_session(session, web.clock, operator.token)
    page.end_session_cookie()
    return page.redirect(f"{LOGIN}?notice=logged_out")
