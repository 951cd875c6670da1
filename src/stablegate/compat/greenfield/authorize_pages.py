"""The Greenfield authorization flow in the dashboard (docs/INTEGRATIONS.md): a shop's
"connect" button sends the merchant here, the merchant logs in and approves, and the new key is
posted back to the shop, as BTCPay Server does it.

- ``GET /api-keys/authorize?permissions=…&applicationName=…&redirect=…``: Greenfield's address,
  outside the dashboard's cookie path, sends the browser on to
  ``GET /dashboard/greenfield/authorize`` with the same query (through the log-in, which
  comes back, when there is no session).
- That page says who asks, for which permissions (what this gateway does not implement is
  listed as not granted) and where the key will go; the merchant picks the chain, token and
  currency the store's invoices default to.
- ``POST /dashboard/greenfield/authorize``: ``approve`` makes a ``greenfield`` credential with
  the granted permissions and answers a page whose form posts ``apiKey``, ``userId`` and
  ``permissions[]`` (each ``<permission>:<storeId>``) to the redirect address: the dashboard's
  script submits it at once, its button does without a script, and the page's
  Content-Security-Policy lets forms go to that one origin. Without a redirect address the key
  is shown, once. ``deny`` makes nothing.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.compat.greenfield.authorize import AuthorizeRequest, authorize_request
from stablegate.compat.greenfield.credentials import (
    DEFAULT_CURRENCY,
    DEFAULT_SYMBOL,
    issue_greenfield_credential,
    store_id_of,
)
from stablegate.compat.integration_pages import IntegrationPage, payment_choices
from stablegate.dashboard.key_pages import actor
from stablegate.dashboard.pages import PREFIX, signed_in_form
from stablegate.dashboard.sessions import Viewer
from stablegate.db.engine import session_scope
from stablegate.errors import GatewayError
from stablegate.web.pages import CONTENT_SECURITY_POLICY, page_headers

router = APIRouter()

AUTHORIZE = f"{PREFIX}/greenfield/authorize"
MAX_QUERY = 8000


@router.get("/api-keys/authorize", include_in_schema=False)
async def greenfield_authorize(request: Request) -> Response:
    query = request.scope.get("query_string", b"").decode("latin-1")[:MAX_QUERY]
    return RedirectResponse(f"{AUTHORIZE}?{query}", status_code=303, headers=page_headers())


def _asked(
    permissions: list[str], application: str, redirect: str, viewer: Viewer
) -> AuthorizeRequest:
    return authorize_request(permissions, application, redirect, store_id_of(viewer.merchant_id))


async def _consent(
    page: IntegrationPage,
    viewer: Viewer,
    session: AsyncSession,
    asked: AuthorizeRequest,
    *,
    status: int = 200,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    return page.render(
        "greenfield_authorize.html",
        status=status,
        viewer=viewer,
        current="integrations",
        asked=asked,
        error=error,
        form=form or {"symbol": DEFAULT_SYMBOL, "currency": DEFAULT_CURRENCY},
        **await payment_choices(session, page, viewer.merchant_id),
    )


def _refused(page: IntegrationPage, viewer: Viewer, exc: GatewayError) -> Response:
    return page.render(
        "message.html",
        status=exc.status,
        viewer=viewer,
        title=page.t("gf_authorize_refused_title"),
        lines=[page.error_text(exc)],
    )


@router.get(AUTHORIZE, include_in_schema=False)
async def consent_page(request: Request) -> Response:
    page = IntegrationPage.of(request)
    async with session_scope(page.ctx.web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            here = f"{AUTHORIZE}?{request.scope.get('query_string', b'').decode('latin-1')}"
            return page.redirect(f"{PREFIX}/login?next={quote(here[:2000], safe='')}")
        params = request.query_params
        try:
            asked = _asked(
                params.getlist("permissions"),
                params.get("applicationName", ""),
                params.get("redirect", ""),
                viewer,
            )
        except GatewayError as exc:
            return _refused(page, viewer, exc)
        return await _consent(page, viewer, session, asked)


@router.post(AUTHORIZE, include_in_schema=False)
async def decide(request: Request) -> Response:
    page = IntegrationPage.of(request)
    web = page.ctx.web
    async with session_scope(web.sessions) as session:
        found = await signed_in_form(page, session)
        if isinstance(found, Response):
            return found
        viewer, form = found
        try:
            asked = _asked(
                form.get("permissions", "").split(),
                form.get("application", ""),
                form.get("redirect", ""),
                viewer,
            )
        except GatewayError as exc:
            return _refused(page, viewer, exc)
        if form.get("decision") != "approve":
            return page.redirect(f"{PREFIX}/integrations")
        typed = {
            "chain_id": form.get("chain_id", ""),
            "symbol": form.get("symbol", "").strip().upper()[:10],
            "currency": form.get("currency", "").strip().upper()[:3],
        }
        chain_id = typed["chain_id"].strip()
        try:
            if not chain_id.isdigit() or len(chain_id) > 18:
                raise GatewayError("choose a chain", code="unknown_chain", status=400)
            issued = await issue_greenfield_credential(
                session,
                web.secret_box,
                web.clock,
                web.registry,
                merchant_id=viewer.merchant_id,
                chain_id=int(chain_id),
                symbol=typed["symbol"],
                currency=typed["currency"],
                label=asked.application[:80],
                actor=actor(viewer),
                permissions=asked.granted,
            )
        except GatewayError as exc:
            if exc.status >= 500:
                raise
            return await _consent(
                page, viewer, session, asked, status=400, error=page.error_text(exc), form=typed
            )
    credential = issued.credential
    origin = asked.redirect_origin
    headers = None
    if origin is not None:
        # The one place a dashboard form may leave the gateway: to the shop that asked.
        policy = CONTENT_SECURITY_POLICY.replace(
            "form-action 'self'", f"form-action 'self' {origin}"
        )
        headers = {"Content-Security-Policy": policy}
    return page.render(
        "greenfield_authorized.html",
        headers=headers,
        viewer=viewer,
        current="integrations",
        asked=asked,
        key=issued.key,
        user_id=viewer.user_id,
        permissions=credential.permissions,
        store_id=credential.store_id,
        public_url=web.settings.public_url.rstrip("/"),
    )
