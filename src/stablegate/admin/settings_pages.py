"""The console's gateway settings (docs/DESIGN.md §9 "Operator console").

- ``GET /admin/settings``: the sign-up policy in force, the links waiting to be handed out
  (email verification and password reset: without SMTP they reach the merchant only through
  the operator), and invite codes.
- ``POST /admin/settings/policy``: ``open``, ``approval`` or ``invite``, stored for every API
  process (``open`` refused without ``STABLEGATE_SMTP_URL``), audited.
- ``POST /admin/settings/invite``: a single-use sign-up code, shown once on the answer.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stablegate.admin.accounts import actor_of
from stablegate.admin.pages import PREFIX, ConsolePage, SignedIn, signed_in, signed_in_form
from stablegate.admin.sessions import Operator
from stablegate.config import SignupPolicy
from stablegate.dashboard.errors import AccountError
from stablegate.dashboard.invites import create_invite
from stablegate.dashboard.links import pending_links
from stablegate.dashboard.signup_policy import current_policy, set_policy
from stablegate.db.engine import read_scope, session_scope

router = APIRouter()

SETTINGS = f"{PREFIX}/settings"
INVITE_DAYS = 7
MAX_NOTE = 200


async def _settings_page(
    page: ConsolePage,
    operator: Operator,
    *,
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
    invite: dict[str, object] | None = None,
) -> Response:
    web = page.ctx.web
    async with read_scope(web.sessions) as session:
        policy = await current_policy(session, web.settings)
        links = await pending_links(session, web.clock, page.ctx.link_key, web.settings.public_url)
    return page.console(
        "settings.html",
        operator,
        status=status,
        current="settings",
        policy=str(policy),
        policies=[p.value for p in SignupPolicy],
        smtp=page.ctx.mailer.configured,
        links=links,
        notice=notice,
        error=error,
        invite=invite,
    )


@router.get(SETTINGS, include_in_schema=False)
async def settings_page(request: Request, saved: str = "") -> Response:
    signed = await signed_in(request)
    if not isinstance(signed, SignedIn):
        return signed
    notice = signed.page.t("settings_saved_policy") if saved == "policy" else None
    return await _settings_page(signed.page, signed.operator, notice=notice)


@router.post(SETTINGS + "/policy", include_in_schema=False)
async def save_policy(request: Request) -> Response:
    signed = await signed_in_form(request)
    if not isinstance(signed, SignedIn):
        return signed
    page, operator = signed.page, signed.operator
    web = page.ctx.web
    try:
        async with session_scope(web.sessions) as session:
            await set_policy(
                session,
                web.clock,
                web.settings,
                signed.form.get("policy", ""),
                actor=actor_of(operator.email),
            )
    except AccountError as exc:
        return await _settings_page(page, operator, status=exc.status, error=page.error_text(exc))
    return page.redirect(f"{SETTINGS}?saved=policy")


@router.post(SETTINGS + "/invite", include_in_schema=False)
async def new_invite(request: Request) -> Response:
    signed = await signed_in_form(request)
    if not isinstance(signed, SignedIn):
        return signed
    page, operator = signed.page, signed.operator
    web = page.ctx.web
    note = signed.form.get("note", "").strip()[:MAX_NOTE] or None
    async with session_scope(web.sessions) as session:
        code, made = await create_invite(
            session, web.clock, days=INVITE_DAYS, note=note, actor=actor_of(operator.email)
        )
    return await _settings_page(
        page, operator, invite={"code": code, "expires_at_ms": made.expires_at_ms, "note": note}
    )
