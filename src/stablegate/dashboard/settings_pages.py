"""The Settings page: where the merchant's money goes and how its customers are served.

- ``POST /dashboard/settings/payout``: the payout address of one chain, through the same
  service and contract-code check as ``stablegate merchant set-payout``. When the address is a
  contract on some of the merchant's chains and not on others (a contract wallet is usually
  nobody's on a chain it was not deployed on), the page shows the warning and a box to tick;
  only a second submit with the box ticked saves it, as the CLI's ``--force`` does.
- ``POST /dashboard/settings/payments``: late-payment policy, underpayment tolerance (a percent
  here, stored in parts per million), deposit strategy.
- ``POST /dashboard/settings/cashier``: display name, logo and support contact.

Every form is checked whole before anything is written, through ``merchants.service.set_policy``
and ``merchants.payout_addresses.set_payout_address`` (audited as ``dashboard:<email>``); a bad
value answers 400 with the form refilled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.dashboard.key_pages import actor
from stablegate.dashboard.pages import PREFIX, Page, signed_in_form
from stablegate.dashboard.sessions import Viewer
from stablegate.db.engine import session_scope
from stablegate.errors import GatewayError, InvalidRequest
from stablegate.merchants.branding import (
    checked_display_name,
    checked_logo_url,
    checked_support_contact,
)
from stablegate.merchants.payout_addresses import set_payout_address
from stablegate.merchants.payout_check import PayoutCodeCheck
from stablegate.merchants.service import get_merchant, set_policy
from stablegate.models import PayoutAddress
from stablegate.models.merchant import DepositStrategy, LatePaymentPolicy

router = APIRouter()

SECTIONS = ("payout", "payments", "cashier")
# A percent with at most 4 decimals is a whole number of parts per million.
PERCENT = re.compile(r"^\d{1,2}(\.\d{1,4})?$")
TOLERANCE_LIMIT_PERCENT = Decimal(10)  # below 10 %, as the service allows (a fraction < 0.1)


@dataclass
class FormState:
    """What a refused form answers with: its section, the message, the values typed."""

    section: str = ""
    error: str = ""
    values: dict[str, str] | None = None
    chain_id: int | None = None
    confirm_mixed: bool = False  # the payout address needs the mixed-code box ticked


def tolerance_percent(ppm: int) -> str:
    """Parts per million as the percent the form shows (0.5 for 5,000 ppm)."""
    return format(Decimal(ppm).scaleb(-4).normalize(), "f")


def tolerance_fraction(percent: str) -> str:
    """The form's percent as the fraction ``set_policy`` takes, exactly (Decimal, no float)."""
    text = percent.strip()
    if not PERCENT.match(text) or Decimal(text) >= TOLERANCE_LIMIT_PERCENT:
        raise InvalidRequest("tolerance is a percent from 0 to below 10", code="invalid_policy")
    return format(Decimal(text).scaleb(-2).normalize(), "f")


async def _render(
    page: Page,
    viewer: Viewer,
    session: AsyncSession,
    *,
    status: int = 200,
    state: FormState | None = None,
    saved: str = "",
) -> Response:
    merchant = await get_merchant(session, viewer.merchant_id)
    payouts = dict(
        (
            await session.execute(
                select(PayoutAddress.chain_id, PayoutAddress.address).where(
                    PayoutAddress.merchant_id == viewer.merchant_id
                )
            )
        ).all()
    )
    state = state or FormState()
    return page.render(
        "settings.html",
        status=status,
        viewer=viewer,
        current="settings",
        chains=page.ctx.web.registry.with_rpc(),  # the chains the gateway watches
        payouts=payouts,
        merchant=merchant,
        tolerance=tolerance_percent(merchant.underpay_tolerance_ppm),
        late_policies=list(LatePaymentPolicy),
        strategies=list(DepositStrategy),
        state=state,
        notice=page.t(f"settings_saved_{saved}") if saved in SECTIONS else None,
    )


@router.get(PREFIX + "/settings", include_in_schema=False)
async def settings_page(request: Request, saved: str = "") -> Response:
    page = Page.of(request)
    async with session_scope(page.ctx.web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        return await _render(page, viewer, session, saved=saved)


async def _signed_in_form(
    page: Page, session: AsyncSession
) -> tuple[Viewer | None, dict[str, str], Response | None]:
    found = await signed_in_form(page, session)
    if isinstance(found, Response):
        return None, {}, found
    return found[0], found[1], None


@router.post(PREFIX + "/settings/payout", include_in_schema=False)
async def save_payout(request: Request) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    async with session_scope(web.sessions) as session:
        viewer, form, answer = await _signed_in_form(page, session)
        if answer is not None or viewer is None:
            return answer or page.redirect(f"{PREFIX}/login")
        address = form.get("address", "").strip()
        chain = web.registry.get(_int(form.get("chain_id", "")))
        if chain is not None and not chain.has_rpc:
            chain = None  # a chain the gateway does not watch takes no payout address
        if chain is None:
            return await _render(
                page,
                viewer,
                session,
                status=400,
                state=FormState("payout", page.t("error_unknown_chain")),
            )
        confirmed = form.get("confirm_mixed") == "yes"
        try:
            await set_payout_address(
                session,
                web.clock,
                merchant_id=viewer.merchant_id,
                chain_id=chain.id,
                address=address,
                payout_code=PayoutCodeCheck.through(web.registry, force=confirmed),
                actor=actor(viewer),
            )
        except GatewayError as exc:
            if exc.code not in ("invalid_address", "payout_code_mismatch"):
                raise
            return await _render(
                page,
                viewer,
                session,
                status=400,
                state=FormState(
                    "payout",
                    page.error_text(exc),
                    {"address": address},
                    chain.id,
                    exc.code == "payout_code_mismatch",
                ),
            )
    return page.redirect(f"{PREFIX}/settings?saved=payout#payout")


@router.post(PREFIX + "/settings/payments", include_in_schema=False)
async def save_payments(request: Request) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    async with session_scope(web.sessions) as session:
        viewer, form, answer = await _signed_in_form(page, session)
        if answer is not None or viewer is None:
            return answer or page.redirect(f"{PREFIX}/login")
        values = {
            name: form.get(name, "")
            for name in ("late_payment", "underpay_tolerance", "deposit_strategy")
        }
        try:
            await set_policy(
                session,
                web.clock,
                merchant_id=viewer.merchant_id,
                late_payment=values["late_payment"],
                underpay_tolerance=tolerance_fraction(values["underpay_tolerance"]),
                deposit_strategy=values["deposit_strategy"],
                actor=actor(viewer),
            )
        except InvalidRequest as exc:
            await session.rollback()
            return await _render(
                page,
                viewer,
                session,
                status=400,
                state=FormState("payments", page.error_text(exc), values),
            )
    return page.redirect(f"{PREFIX}/settings?saved=payments#payments")


# Each cashier field's own check, so the message names the field that is wrong.
CASHIER_FIELDS = {
    "display_name": checked_display_name,
    "logo_url": checked_logo_url,
    "support_contact": checked_support_contact,
}


@router.post(PREFIX + "/settings/cashier", include_in_schema=False)
async def save_cashier(request: Request) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    async with session_scope(web.sessions) as session:
        viewer, form, answer = await _signed_in_form(page, session)
        if answer is not None or viewer is None:
            return answer or page.redirect(f"{PREFIX}/login")
        values = {name: form.get(name, "").strip() for name in CASHIER_FIELDS}
        for name, check in CASHIER_FIELDS.items():
            try:
                check(values[name])
            except InvalidRequest:
                return await _render(
                    page,
                    viewer,
                    session,
                    status=400,
                    state=FormState("cashier", page.t(f"settings_error_{name}"), values),
                )
        await set_policy(
            session, web.clock, merchant_id=viewer.merchant_id, actor=actor(viewer), **values
        )
    return page.redirect(f"{PREFIX}/settings?saved=cashier#cashier")


def _int(text: str) -> int:
    return int(text) if text.isdigit() and len(text) < 19 else -1
