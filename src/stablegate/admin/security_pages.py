"""The operator's own security page (docs/DESIGN.md §9 "Operator console"): two-factor
authentication (the dashboard's TOTP and recovery codes, on the operator's row) and the
account's sessions, each of which can be ended. The password is set with
``stablegate admin set-password`` (operators are made on the command line, and so is theirs).

- ``GET /admin/security``
- ``POST /admin/security/two-factor/{start,cancel,confirm,recovery-codes,disable}``
- ``POST /admin/security/sessions/{id}/revoke``
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.admin.pages import PREFIX, ConsolePage, SignedIn, signed_in, signed_in_form
from stablegate.admin.sessions import Operator, list_sessions, revoke_session
from stablegate.dashboard import second_factor
from stablegate.dashboard.errors import AccountError
from stablegate.dashboard.passwords import verify_password
from stablegate.dashboard.security_pages import issuer
from stablegate.db.engine import session_scope
from stablegate.errors import GatewayError, NotFound, RateLimited
from stablegate.models.operator_account import OperatorAccount

router = APIRouter()

SECURITY = f"{PREFIX}/security"
TWO_FACTOR = f"{SECURITY}/two-factor"
MAX_CODE = 40
NOTICES = ("two_factor_cancelled", "two_factor_disabled", "recovery_code_used", "session_ended")


async def _own_account(session: AsyncSession, operator: Operator) -> OperatorAccount:
    account = await session.get(OperatorAccount, operator.operator_id)
    if account is None:  # load_operator joined it
        raise NotFound("no such operator")
    return account


async def _security_page(
    page: ConsolePage,
    operator: Operator,
    *,
    status: int = 200,
    notice: str | None = None,
    errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    web = page.ctx.web
    async with session_scope(web.sessions) as session:
        account = await _own_account(session, operator)
        sessions = await list_sessions(session, web.clock, operator.operator_id)
    enrolment = None
    secret = second_factor.secret_of(web.secret_box, account)
    if second_factor.is_enrolling(account) and secret is not None:
        uri = second_factor.provisioning_uri(
            secret,
            account=account.email,
            issuer=f"{issuer(web.settings.public_url)} console",
        )
        enrolment = {
            "qr": second_factor.qr_data_uri(uri),
            "secret": second_factor.grouped_secret(secret),
        }
    return page.console(
        "security.html",
        operator,
        status=status,
        headers=headers,
        current="security",
        sessions=sessions,
        current_session_id=operator.session_id,
        two_factor_on=second_factor.is_enabled(account),
        two_factor_since=account.totp_enabled_at_ms,
        recovery_left=second_factor.recovery_codes_left(account),
        enrolment=enrolment,
        notice=page.t(notice) if notice else None,
        errors=errors or {},
    )


@router.get(SECURITY, include_in_schema=False)
async def security_page(request: Request, notice: str = "") -> Response:
    signed = await signed_in(request)
    if not isinstance(signed, SignedIn):
        return signed
    shown = notice if notice in NOTICES else None
    return await _security_page(signed.page, signed.operator, notice=shown)


async def _refused(signed: SignedIn, section: str, exc: GatewayError) -> Response:
    return await _security_page(
        signed.page,
        signed.operator,
        status=exc.status,
        errors={section: signed.page.error_text(exc)},
        headers=dict(exc.headers),
    )


@router.post(TWO_FACTOR + "/start", include_in_schema=False)
async def start_two_factor(request: Request) -> Response:
    signed = await signed_in_form(request)
    if not isinstance(signed, SignedIn):
        return signed
    web = signed.page.ctx.web
    async with session_scope(web.sessions) as session:
        account = await _own_account(session, signed.operator)
        if not second_factor.is_enabled(account):
            second_factor.start_enrolment(web.secret_box, account)
    return signed.page.redirect(f"{SECURITY}#two-factor")


@router.post(TWO_FACTOR + "/cancel", include_in_schema=False)
async def cancel_two_factor(request: Request) -> Response:
    signed = await signed_in_form(request)
    if not isinstance(signed, SignedIn):
        return signed
    async with session_scope(signed.page.ctx.web.sessions) as session:
        second_factor.cancel_enrolment(await _own_account(session, signed.operator))
    return signed.page.redirect(f"{SECURITY}?notice=two_factor_cancelled#two-factor")


async def _with_code(signed: SignedIn, section: str) -> list[str] | Response:
    """Confirm an enrolment (``confirm``) or replace the recovery codes (``recovery``) with a
    current TOTP code: the new recovery codes, or the page with the error."""
    page, operator = signed.page, signed.operator
    ctx, web = page.ctx, page.ctx.web
    code = signed.form.get("code", "")[:MAX_CODE]
    try:
        await ctx.throttle.check_code(operator.operator_id, page.ip)
        async with session_scope(web.sessions) as session:
            account = await _own_account(session, operator)
            act = (
                second_factor.enable
                if section == "confirm"
                else second_factor.replace_recovery_codes
            )
            codes = await act(session, web.secret_box, account, code, now_ms=web.clock.now_ms())
            if codes is None:
                raise AccountError("the code is wrong", code="invalid_code")
    except (AccountError, RateLimited) as exc:
        if exc.code == "invalid_code":
            await ctx.throttle.note_failed_code(operator.operator_id, page.ip)
        return await _refused(signed, section, exc)
    return codes


@router.post(TWO_FACTOR + "/confirm", include_in_schema=False)
@router.post(TWO_FACTOR + "/recovery-codes", include_in_schema=False)
async def codes_from_app(request: Request) -> Response:
    signed = await signed_in_form(request)
    if not isinstance(signed, SignedIn):
        return signed
    first = request.url.path.endswith("/confirm")
    codes = await _with_code(signed, "confirm" if first else "recovery")
    if not isinstance(codes, list):
        return codes
    return signed.page.console(
        "recovery_codes.html", signed.operator, current="security", codes=codes, first=first
    )


@router.post(TWO_FACTOR + "/disable", include_in_schema=False)
async def disable_two_factor(request: Request) -> Response:
    signed = await signed_in_form(request)
    if not isinstance(signed, SignedIn):
        return signed
    page, operator, form = signed.page, signed.operator, signed.form
    ctx, web = page.ctx, page.ctx.web
    try:
        await ctx.throttle.check_code(operator.operator_id, page.ip)
        async with session_scope(web.sessions) as session:
            stored = (await _own_account(session, operator)).password_hash
        # Outside any transaction: Argon2 takes tens of milliseconds.
        if not await verify_password(stored, form.get("password", "")):
            raise AccountError("the password is wrong", code="wrong_password")
        async with session_scope(web.sessions) as session:
            account = await _own_account(session, operator)
            accepted = await second_factor.check_second_factor(
                session,
                web.secret_box,
                account,
                form.get("code", "")[:MAX_CODE],
                now_ms=web.clock.now_ms(),
            )
            if accepted is None:
                raise AccountError("the code is wrong", code="invalid_code")
            await second_factor.disable(session, account)
    except (AccountError, RateLimited) as exc:
        if exc.code in ("invalid_code", "wrong_password"):
            await ctx.throttle.note_failed_code(operator.operator_id, page.ip)
        return await _refused(signed, "disable", exc)
    return page.redirect(f"{SECURITY}?notice=two_factor_disabled#two-factor")


@router.post(SECURITY + "/sessions/{session_id}/revoke", include_in_schema=False)
async def end_one_session(request: Request, session_id: str) -> Response:
    signed = await signed_in_form(request)
    if not isinstance(signed, SignedIn):
        return signed
    page, operator = signed.page, signed.operator
    web = page.ctx.web
    try:
        async with session_scope(web.sessions) as session:
            await revoke_session(
                session, web.clock, operator_id=operator.operator_id, session_id=session_id
            )
    except NotFound as exc:
        return page.refusal(exc)
    if session_id == operator.session_id:
        page.end_session_cookie()
        return page.redirect(f"{PREFIX}/login?notice=logged_out")
    return page.redirect(f"{SECURITY}?notice=session_ended#sessions")
