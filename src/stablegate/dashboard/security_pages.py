"""The Security page: the signed-in user's two-factor authentication, password and live sessions.
Everything acts on the viewer's own account and sessions (:mod:`stablegate.dashboard.sessions`).

- ``POST /dashboard/security/two-factor/start`` makes a secret (stored sealed, not in force yet);
  the page then shows it as a QR code (an SVG ``data:`` image, which the CSP allows) and as text.
  ``.../confirm`` with a code from the app turns it on and answers with the 10 recovery codes,
  shown this once; ``.../cancel`` drops an unconfirmed secret.
- ``.../recovery-codes`` (a current code) replaces the recovery codes; ``.../disable`` (the
  password and a code or a recovery code) turns two-factor off.
- ``POST /dashboard/security/password``: the current password and a new one; the user's other
  sessions end.
- ``POST /dashboard/security/sessions/{id}/revoke`` ends one session (its own: a log-out).

Wrong codes and passwords here count against the same per-account and per-IP limits as the
log-in's second step, so a stolen session guesses no faster here.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.dashboard.errors import AccountError, CsrfRefused
from stablegate.dashboard.pages import PREFIX, Page, read_form
from stablegate.dashboard.passwords import checked_password, hash_password, verify_password
from stablegate.dashboard.sessions import (
    Viewer,
    end_user_sessions,
    list_sessions,
    revoke_session,
)
from stablegate.dashboard.two_factor_forms import TwoFactorForms, two_factor_view
from stablegate.db.engine import session_scope
from stablegate.errors import GatewayError, NotFound, RateLimited
from stablegate.models import DashboardUser

router = APIRouter()

SECURITY = f"{PREFIX}/security"
TWO_FACTOR = f"{SECURITY}/two-factor"
NOTICES = (
    "session_ended",
    "password_changed",
    "two_factor_disabled",
    "two_factor_cancelled",
    "recovery_code_used",
)
MAX_CODE = 40


def issuer(public_url: str) -> str:
    """The name an authenticator app shows above the code: the product and the gateway's host
    (one operator's gateway is told from another's)."""
    host = urlsplit(public_url).hostname or ""
    return f"stablegate ({host})" if host else "stablegate"


async def _own_user(session: AsyncSession, viewer: Viewer) -> DashboardUser:
    user = await session.get(DashboardUser, viewer.user_id)
    if user is None:  # the session's user exists (load_viewer joined it)
        raise NotFound("no such user")
    return user


async def _security_page(
    page: Page,
    session: AsyncSession,
    viewer: Viewer,
    *,
    status: int = 200,
    notice: str | None = None,
    errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    web = page.ctx.web
    user = await _own_user(session, viewer)
    sessions = await list_sessions(session, web.clock, viewer.user_id)
    return page.render(
        "security.html",
        status=status,
        headers=headers,
        viewer=viewer,
        current="security",
        sessions=sessions,
        current_session_id=viewer.session_id,
        **two_factor_view(web.secret_box, user, issuer(web.settings.public_url)),
        notice=page.t(notice) if notice else None,
        errors=errors or {},
    )


@router.get(SECURITY, include_in_schema=False)
async def security_page(request: Request, ended: str = "", notice: str = "") -> Response:
    page = Page.of(request)
    web = page.ctx.web
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        shown = "session_ended" if ended else (notice if notice in NOTICES else None)
        return await _security_page(page, session, viewer, notice=shown)


async def _signed_in_form(page: Page) -> tuple[Viewer | None, dict[str, str], Response | None]:
    """The viewer and the form of a Security POST, or the answer when there is no viewer (the
    log-in page) or the CSRF check fails (403)."""
    web = page.ctx.web
    form = await read_form(page.request)
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
    if viewer is None:
        return None, form, page.redirect(f"{PREFIX}/login")
    try:
        page.check_session_form(viewer, form)
    except CsrfRefused as exc:
        return viewer, form, page.refusal(exc, viewer)
    return viewer, form, None


async def _refused_form(
    page: Page, section: str, exc: GatewayError, *, extra: dict[str, str] | None = None
) -> Response:
    """The Security page again, the error in the section whose form was refused."""
    web = page.ctx.web
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        return await _security_page(
            page,
            session,
            viewer,
            status=exc.status,
            errors={section: page.error_text(exc), **(extra or {})},
            headers=dict(exc.headers),
        )


def _forms(page: Page, viewer: Viewer) -> TwoFactorForms:
    async def load(session: AsyncSession) -> DashboardUser:
        return await _own_user(session, viewer)

    async def refused(section: str, exc: GatewayError) -> Response:
        return await _refused_form(page, section, exc)

    def codes_page(codes: list[str], first: bool) -> Response:
        return page.render(
            "recovery_codes.html", viewer=viewer, current="security", codes=codes, first=first
        )

    return TwoFactorForms(page, viewer.user_id, load, refused, codes_page)


TWO_FACTOR_FORMS = ("start", "cancel", "confirm", "recovery-codes", "disable")


async def two_factor_form(request: Request) -> Response:
    """One of :data:`TWO_FACTOR_FORMS`, by the path's last part
    (:mod:`stablegate.dashboard.two_factor_forms`)."""
    action = request.url.path.rsplit("/", 1)[1]
    page = Page.of(request)
    viewer, form, answer = await _signed_in_form(page)
    if answer is not None:
        return answer
    assert viewer is not None
    forms = _forms(page, viewer)
    if action == "start":
        return await forms.start()
    if action == "cancel":
        return await forms.cancel()
    if action in ("confirm", "recovery-codes"):
        return await forms.with_code(form, first=action == "confirm")
    return await forms.disable(form)


for _action in TWO_FACTOR_FORMS:
    router.add_api_route(
        f"{TWO_FACTOR}/{_action}", two_factor_form, methods=["POST"], include_in_schema=False
    )


async def _password_matches(page: Page, viewer: Viewer, password: str) -> bool:
    web = page.ctx.web
    async with session_scope(web.sessions) as session:
        stored = (await _own_user(session, viewer)).password_hash
    # Outside any transaction: Argon2 takes tens of milliseconds.
    return await verify_password(stored, password)


@router.post(SECURITY + "/password", include_in_schema=False)
async def change_password(request: Request) -> Response:
    page = Page.of(request)
    ctx, web = page.ctx, page.ctx.web
    viewer, form, answer = await _signed_in_form(page)
    if answer is not None:
        return answer
    assert viewer is not None
    try:
        await ctx.throttle.check_code(viewer.user_id, page.ip)
        new_password = checked_password(form.get("new_password", ""))
        if not await _password_matches(page, viewer, form.get("current_password", "")):
            raise AccountError("the password is wrong", code="wrong_password")
        password_hash = await hash_password(new_password)
        async with session_scope(web.sessions) as session:
            if await page.viewer(session) is None:
                return page.redirect(f"{PREFIX}/login")
            user = await _own_user(session, viewer)
            user.password_hash = password_hash
            # Whoever is logged in elsewhere (perhaps with the old password) is out.
            await end_user_sessions(session, web.clock, viewer.user_id, keep=viewer.session_id)
    except (AccountError, RateLimited) as exc:
        if exc.code == "wrong_password":
            await ctx.throttle.note_failed_code(viewer.user_id, page.ip)
        return await _refused_form(page, "password", exc)
    return page.redirect(f"{SECURITY}?notice=password_changed")


@router.post(SECURITY + "/sessions/{session_id}/revoke", include_in_schema=False)
async def end_one_session(request: Request, session_id: str) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    form = await read_form(request)
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        try:
            page.check_session_form(viewer, form)
            await revoke_session(session, web.clock, user_id=viewer.user_id, session_id=session_id)
        except (CsrfRefused, NotFound) as exc:
            return page.refusal(exc, viewer)
    if session_id == viewer.session_id:
        page.end_session_cookie()
        return page.redirect(f"{PREFIX}/login?notice=logged_out")
    return page.redirect(f"{SECURITY}?ended=1")
