"""The dashboard's Integrations page (docs/INTEGRATIONS.md): the credentials shop plugins sign
with, issued by the merchant in the browser as ``stablegate merchant create-key`` issues them.

- ``GET /dashboard/integrations``: the addresses to give an EPay or Epusdt plugin, and the
  merchant's own ``epay`` credentials (pid, chain, token, pricing currency, active or revoked;
  revoking is on the API keys' page, where every credential is listed).
- ``POST /dashboard/integrations/epay``: a new ``epay`` credential; its key is shown on the
  answer, once.

Served under ``/dashboard`` with the dashboard's session, CSRF tokens and page rules (it is a
dashboard page; it lives here because the credentials belong to this package, above it).
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.compat.epay.credentials import (
    DEFAULT_CURRENCY,
    DEFAULT_SYMBOL,
    issue_epay_credential,
)
from stablegate.compat.greenfield.credentials import STORE_PERMISSIONS
from stablegate.compat.i18n import translator
from stablegate.dashboard.key_pages import actor
from stablegate.dashboard.pages import PREFIX, Page, signed_in_form
from stablegate.dashboard.sessions import Viewer
from stablegate.db.engine import session_scope
from stablegate.errors import GatewayError
from stablegate.merchants.api_keys import readable_api_keys
from stablegate.models import ApiKey, PayoutAddress
from stablegate.models.api_key import CredentialKind
from stablegate.rates.currencies import FIAT_MINOR_UNITS, STABLECOINS
from stablegate.web.i18n import Translator
from stablegate.web.pages import page_templates

router = APIRouter()

INTEGRATIONS = f"{PREFIX}/integrations"
_templates = page_templates("stablegate.compat", "stablegate.dashboard")


class IntegrationPage(Page):
    templates: ClassVar[Any] = _templates

    @staticmethod
    def translator(language: str) -> Translator:
        return translator(language)


async def payment_choices(session: AsyncSession, page: Page, merchant_id: str) -> dict[str, Any]:
    """What a plugin credential's orders can default to: a watched chain the merchant has a
    payout address on, its stablecoins (the only tokens a fiat price converts to), a fiat
    currency."""
    registry = page.ctx.web.registry
    paid_on = set(
        (
            await session.scalars(
                select(PayoutAddress.chain_id).where(PayoutAddress.merchant_id == merchant_id)
            )
        ).all()
    )
    chains = [chain for chain in registry.with_rpc() if chain.id in paid_on]
    symbols = sorted({t.symbol for c in chains for t in c.tokens if t.symbol in STABLECOINS})
    return {
        "chains": [{"id": chain.id, "name": chain.name} for chain in chains],
        "symbols": symbols,
        "currencies": sorted(FIAT_MINOR_UNITS),
    }


async def _page(
    page: IntegrationPage,
    viewer: Viewer,
    session: AsyncSession,
    *,
    status: int = 200,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    web = page.ctx.web
    rows = await session.scalars(
        readable_api_keys(viewer.merchant_id)
        .where(ApiKey.kind.in_([CredentialKind.EPAY, CredentialKind.GREENFIELD]))
        .order_by(ApiKey.revoked_at_ms.is_not(None), ApiKey.created_at_ms.desc())
    )
    keys = list(rows.all())
    choices = await payment_choices(session, page, viewer.merchant_id)
    return page.render(
        "integrations.html",
        status=status,
        viewer=viewer,
        current="integrations",
        credentials=[key for key in keys if key.kind == CredentialKind.EPAY],
        greenfield_keys=[key for key in keys if key.kind == CredentialKind.GREENFIELD],
        manual_greenfield=f"{PREFIX}/greenfield/authorize?"
        + urlencode([("permissions", name) for name in STORE_PERMISSIONS]),
        **choices,
        public_url=web.settings.public_url.rstrip("/"),
        error=error,
        form=form or {"symbol": DEFAULT_SYMBOL, "currency": DEFAULT_CURRENCY},
        names={chain.id: chain.name for chain in web.registry},
    )


@router.get(INTEGRATIONS, include_in_schema=False)
async def integrations_page(request: Request) -> Response:
    page = IntegrationPage.of(request)
    async with session_scope(page.ctx.web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        return await _page(page, viewer, session)


def _chain_id(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


@router.post(INTEGRATIONS + "/epay", include_in_schema=False)
async def create_epay_credential(request: Request) -> Response:
    page = IntegrationPage.of(request)
    web = page.ctx.web
    async with session_scope(web.sessions) as session:
        found = await signed_in_form(page, session)
        if isinstance(found, Response):
            return found
        viewer, form = found
        typed = {
            "label": form.get("label", "")[:100],
            "chain_id": form.get("chain_id", ""),
            "symbol": form.get("symbol", "").strip().upper()[:10],
            "currency": form.get("currency", "").strip().upper()[:3],
        }
        chain_id = _chain_id(typed["chain_id"])
        try:
            if chain_id is None:
                raise GatewayError("choose a chain", code="unknown_chain", status=400)
            made = await issue_epay_credential(
                session,
                web.secret_box,
                web.clock,
                web.registry,
                merchant_id=viewer.merchant_id,
                chain_id=chain_id,
                symbol=typed["symbol"],
                currency=typed["currency"],
                label=typed["label"],
                actor=actor(viewer),
            )
        except GatewayError as exc:
            if exc.status >= 500:
                raise
            return await _page(
                page, viewer, session, status=400, error=page.error_text(exc), form=typed
            )
    return page.render(
        "integration_created.html",
        viewer=viewer,
        current="integrations",
        made=made,
        chain_name=web.registry.require(made.chain_id).name,
        public_url=web.settings.public_url.rstrip("/"),
    )
