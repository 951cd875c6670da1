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
from stablegate.dashboard.security_pages import TWO_FACTOR_FORMS, issuer
from stablegate.dashboard.two_factor_forms import TwoFactorForms, two_factor_view
from stablegate.db.engine import session_scope
from stablegate.errors import GatewayError, NotFound
from stablegate.models.operator_account import OperatorAccount

router = APIRouter()

SECURITY = f"{PREFIX}/security"
TWO_FACTOR = f"{SECURITY}/two-factor"
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
    return page.console(
        "security.html",
        operator,
        status=status,
        headers=headers,
        current="security",
        sessions=sessions,
        current_session_id=operator.session_id,
        **two_factor_view(web.secret_box, account, f"{issuer(web.settings.public_url)} console"),
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


def _forms(signed: SignedIn) -> TwoFactorForms:
    page, operator = signed.page, signed.operator

    async def load(session: AsyncSession) -> OperatorAccount:
        return await _own_account(session, operator)

    async def refused(section: str, exc: GatewayError) -> Response:
        return await _refused(signed, section, exc)

    def codes_page(codes: list[str], first: bool) -> Response:
        return page.console(
            "recovery_codes.html", operator, current="security", codes=codes, first=first
        )

    return TwoFactorForms(page, operator.operator_id, load, refused, codes_page)


async def two_factor_form(request: Request) -> Response:
    """One of the dashboard's two-factor forms (:data:`TWO_FACTOR_FORMS`), on the operator."""
    action = request.url.path.rsplit("/", 1)[1]
    signed = await signed_in_form(request)
    if not isinstance(signed, SignedIn):
        return signed
    forms = _forms(signed)
    if action == "start":
        return await forms.start()
    if action == "cancel":
        return await forms.cancel()
    if action in ("confirm", "recovery-codes"):
        return await forms.with_code(signed.form, first=action == "confirm")
    return await forms.disable(signed.form)


for _action in TWO_FACTOR_FORMS:
    router.add_api_route(
        f"{TWO_FACTOR}/{_action}", two_factor_form, methods=["POST"], include_in_schema=False
    )


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
