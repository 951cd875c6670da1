"""The API keys page: list (with each key's last use), create (the secret shown once, on the
page that answers the creation), revoke; and each key's own page: its public keys (V1), whether
reads need a signature, its IP allowlist. Every statement is scoped to the signed-in user's
merchant (:mod:`stablegate.merchants.api_keys`): another merchant's key id is ``not_found``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.auth.ip_allowlist import MAX_ENTRIES, InvalidIpAllowlist
from stablegate.dashboard.errors import CsrfRefused
from stablegate.dashboard.pages import PREFIX, Page, read_form
from stablegate.dashboard.sessions import Viewer
from stablegate.db.engine import session_scope
from stablegate.errors import GatewayError, InvalidRequest, NotFound
from stablegate.merchants.api_keys import (
    MAX_PUBLIC_KEYS,
    add_key_public_key,
    api_key_details,
    create_api_key,
    list_api_keys,
    revoke_api_key,
    set_key_ip_allowlist,
    set_key_signed_reads,
)
from stablegate.merchants.payout_addresses import has_payout_address

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


# What a key page's ``?saved=`` says (anything else says nothing).
SAVED_NOTICES = {
    "public_key": "keys_saved_public_key",
    "reads_on": "keys_saved_reads_on",
    "reads_off": "keys_saved_reads_off",
    "ip": "keys_saved_ip",
    "ip_any": "keys_saved_ip_any",
}


def _key_error_text(page: Page, exc: GatewayError) -> str:
    if isinstance(exc, InvalidIpAllowlist):
        if exc.entry:
            return page.t("keys_ip_bad_entry", entry=exc.entry)
        return page.t("keys_ip_too_many", max=MAX_ENTRIES)
    if exc.code == "too_many_public_keys":
        return page.t("keys_pub_too_many", max=MAX_PUBLIC_KEYS)
    return page.error_text(exc)


async def _key_page(
    page: Page,
    viewer: Viewer,
    session: AsyncSession,
    key_id: str,
    *,
    status: int = 200,
    notice: str | None = None,
    pem_error: str | None = None,
    reads_error: str | None = None,
    ip_error: str | None = None,
    ip_text: str | None = None,
) -> Response:
    """The key's page; a form that failed shows its message next to it (and the allowlist as
    typed; a PEM is never shown back, in case a private key was pasted)."""
    try:
        key = await api_key_details(session, viewer.merchant_id, key_id)
    except NotFound as exc:
        return page.refusal(exc, viewer)
    return page.render(
        "key.html",
        status=status,
        viewer=viewer,
        current="keys",
        key=key,
        notice=notice,
        pem_error=pem_error,
        reads_error=reads_error,
        ip_error=ip_error,
        ip_text="\n".join(key.ip_allowlist) if ip_text is None else ip_text,
        max_entries=MAX_ENTRIES,
    )


@router.get(PREFIX + "/keys/{key_id}", include_in_schema=False)
async def key_page(request: Request, key_id: str, saved: str = "") -> Response:
    page = Page.of(request)
    async with session_scope(page.ctx.web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        notice = SAVED_NOTICES.get(saved)
        return await _key_page(
            page, viewer, session, key_id, notice=page.t(notice) if notice else None
        )


@router.post(PREFIX + "/keys/{key_id}/public-keys", include_in_schema=False)
async def add_public_key(request: Request, key_id: str) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    form = await read_form(request)
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        try:
            page.check_session_form(viewer, form)
            await add_key_public_key(
                session,
                web.clock,
                merchant_id=viewer.merchant_id,
                key_id=key_id,
                pem=form.get("pem", ""),
                actor=actor(viewer),
            )
        except (CsrfRefused, NotFound) as exc:
            return page.refusal(exc, viewer)
        except InvalidRequest as exc:
            return await _key_page(
                page, viewer, session, key_id, status=400, pem_error=_key_error_text(page, exc)
            )
    return page.redirect(f"{PREFIX}/keys/{key_id}?saved=public_key")


@router.post(PREFIX + "/keys/{key_id}/signed-reads", include_in_schema=False)
async def set_signed_reads(request: Request, key_id: str) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    form = await read_form(request)
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        try:
            page.check_session_form(viewer, form)
            choice = {"on": True, "off": False}.get(form.get("signed_reads", ""))
            if choice is None:
                # Only a hand-made form gets here (the page's buttons send on or off); the
                # answer is the viewer's key page, or not found like any other id.
                return await _key_page(
                    page,
                    viewer,
                    session,
                    key_id,
                    status=400,
                    reads_error=page.t("keys_reads_invalid"),
                )
            await set_key_signed_reads(
                session,
                web.clock,
                merchant_id=viewer.merchant_id,
                key_id=key_id,
                required=choice,
                actor=actor(viewer),
            )
        except (CsrfRefused, NotFound) as exc:
            return page.refusal(exc, viewer)
    return page.redirect(f"{PREFIX}/keys/{key_id}?saved=reads_{'on' if choice else 'off'}")


@router.post(PREFIX + "/keys/{key_id}/ip-allowlist", include_in_schema=False)
async def set_ip_allowlist(request: Request, key_id: str) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    form = await read_form(request)
    text = form.get("ip_allowlist", "")
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        try:
            page.check_session_form(viewer, form)
            networks = await set_key_ip_allowlist(
                session,
                web.clock,
                merchant_id=viewer.merchant_id,
                key_id=key_id,
                text=text,
                actor=actor(viewer),
            )
        except (CsrfRefused, NotFound) as exc:
            return page.refusal(exc, viewer)
        except InvalidRequest as exc:
            return await _key_page(
                page,
                viewer,
                session,
                key_id,
                status=400,
                ip_error=_key_error_text(page, exc),
                ip_text=text[:4000],
            )
    return page.redirect(f"{PREFIX}/keys/{key_id}?saved={'ip' if networks else 'ip_any'}")
