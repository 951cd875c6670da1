"""The Security page: the signed-in user's live sessions, each of which can be ended (the
current one too, which logs out). Scoped to the user (:mod:`stablegate.dashboard.sessions`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stablegate.dashboard.errors import CsrfRefused
from stablegate.dashboard.pages import PREFIX, Page, read_form
from stablegate.dashboard.sessions import list_sessions, revoke_session
from stablegate.db.engine import session_scope
from stablegate.errors import NotFound

router = APIRouter()


@router.get(PREFIX + "/security", include_in_schema=False)
async def security_page(request: Request, ended: str = "") -> Response:
    page = Page.of(request)
    web = page.ctx.web
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        sessions = await list_sessions(session, web.clock, viewer.user_id)
    return page.render(
        "security.html",
        viewer=viewer,
        current="security",
        sessions=sessions,
        notice=page.t("session_ended") if ended else None,
    )


@router.post(PREFIX + "/security/sessions/{session_id}/revoke", include_in_schema=False)
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
    return page.redirect(f"{PREFIX}/security?ended=1")
