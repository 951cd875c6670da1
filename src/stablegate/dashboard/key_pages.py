"""The API keys page: list, create (the secret shown once, on the page that answers the
creation), revoke. Every statement is scoped to the signed-in user's merchant
(:mod:`stablegate.merchants.api_keys`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.dashboard.errors import CsrfRefused
from stablegate.dashboard.pages import PREFIX, Page, read_form
from stablegate.dashboard.sessions import Viewer
from stablegate.db.engine import session_scope
from stablegate.errors import InvalidRequest, NotFound
from stablegate.merchants.api_keys import create_api_key, list_api_keys, revoke_api_key
from stablegate.merchants.service import has_payout_address

router = APIRouter()


def actor(viewer: Viewer) -> str:
    return f"dashboard:{viewer.email}"[:200]


async def _keys_page(
    page: Page,
    viewer: Viewer,
    session: AsyncSession,
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    label: str = "",
) -> Response:
    keys = await list_api_keys(session, viewer.merchant_id)
    return page.render(
        "keys.html",
        status=status,
        viewer=viewer,
        current="keys",
        keys=keys,
        has_payout=await has_payout_address(session, viewer.merchant_id),
        error=error,
        notice=notice,
        label=label,
    )


@router.get(PREFIX + "/keys", include_in_schema=False)
async def keys_page(request: Request, revoked: str = "") -> Response:
    page = Page.of(request)
    web = page.ctx.web
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        notice = None
        if revoked:
            mine = [
                k for k in await list_api_keys(session, viewer.merchant_id) if k.key_id == revoked
            ]
            if mine and mine[0].revoked_at_ms is not None:
                notice = page.t("revoked_notice", prefix=mine[0].prefix)
        return await _keys_page(page, viewer, session, notice=notice)


@router.post(PREFIX + "/keys", include_in_schema=False)
async def create_key(request: Request) -> Response:
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
        label = form.get("label", "")
        try:
            api_key, secret_key = await create_api_key(
                session,
                web.secret_box,
                web.clock,
                merchant_id=viewer.merchant_id,
                label=label,
                actor=actor(viewer),
            )
        except InvalidRequest as exc:
            return await _keys_page(
                page, viewer, session, status=400, error=page.error_text(exc), label=label
            )
    return page.render(
        "key_created.html",
        viewer=viewer,
        current="keys",
        api_key=api_key,
        secret_key=secret_key,
    )


@router.post(PREFIX + "/keys/{key_id}/revoke", include_in_schema=False)
async def revoke_key(request: Request, key_id: str) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    form = await read_form(request)
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        try:
            page.check_session_form(viewer, form)
            await revoke_api_key(
                session,
                web.clock,
                merchant_id=viewer.merchant_id,
                key_id=key_id,
                actor=actor(viewer),
            )
        except (CsrfRefused, NotFound) as exc:
            return page.refusal(exc, viewer)
    return page.redirect(f"{PREFIX}/keys?revoked={key_id}")
