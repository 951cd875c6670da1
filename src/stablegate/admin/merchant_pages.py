"""The console's merchants (docs/DESIGN.md §9 "Operator console").

- ``GET /admin/merchants``: search by id, name or owner email, filter by status, 50 a page.
- ``GET /admin/merchants/{id}``: owners, payout addresses, API keys, orders per status, the
  latest audit entries about the merchant.
- ``POST /admin/merchants/{id}/status``: approve (pending → active), disable (its keys and
  dashboard sessions refused from the next request on), enable again. Audited as
  ``admin:<email>``.
- ``POST /admin/merchants/{id}/payout``: a payout address for one watched chain, through the
  same service and contract-code check as the CLI and the merchant's own Settings page
  (a mixed result needs the confirmation box), audited.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stablegate.admin.accounts import actor_of
from stablegate.admin.audit_pages import audit_rows
from stablegate.admin.directory import merchant_file, search_merchants
from stablegate.admin.pages import PREFIX, ConsolePage, SignedIn, signed_in, signed_in_form
from stablegate.admin.sessions import Operator
from stablegate.db.engine import read_scope, session_scope
from stablegate.errors import GatewayError
from stablegate.merchants.payout_addresses import set_payout_address
from stablegate.merchants.payout_check import PayoutCodeCheck
from stablegate.merchants.service import set_merchant_status
from stablegate.models.merchant import MerchantStatus

router = APIRouter()

MERCHANTS = f"{PREFIX}/merchants"
STATUS_ACTIONS = {
    "approve": MerchantStatus.ACTIVE,
    "enable": MerchantStatus.ACTIVE,
    "disable": MerchantStatus.DISABLED,
}
MAX_REASON = 500
NOTICES = ("approve", "enable", "disable", "payout")


@router.get(MERCHANTS, include_in_schema=False)
async def merchants_page(
    request: Request, q: str = "", status: str = "", after: str = ""
) -> Response:
    signed = await signed_in(request)
    if not isinstance(signed, SignedIn):
        return signed
    page, operator = signed.page, signed.operator
    try:
        async with read_scope(page.ctx.web.sessions) as session:
            found = await search_merchants(session, query=q, status=status, after=after)
    except GatewayError as exc:
        return page.console(
            "merchants.html",
            operator,
            status=exc.status,
            current="merchants",
            error=page.error_text(exc),
            rows=[],
            next_after=None,
            q=q[:200],
            status_filter="",
            statuses=[s.value for s in MerchantStatus],
        )
    return page.console(
        "merchants.html",
        operator,
        current="merchants",
        error=None,
        rows=found.rows,
        next_after=found.next_after,
        q=q,
        status_filter=status,
        statuses=[s.value for s in MerchantStatus],
    )


async def _merchant_page(
    page: ConsolePage,
    operator: Operator,
    merchant_id: str,
    *,
    status: int = 200,
    notice: str | None = None,
    payout_error: str | None = None,
    payout_form: dict[str, str] | None = None,
    confirm_mixed: bool = False,
) -> Response:
    web = page.ctx.web
    try:
        async with read_scope(web.sessions) as session:
            held = await merchant_file(session, merchant_id)
    except GatewayError as exc:
        return page.refusal(exc)
    chains = [
        {
            "id": chain.id,
            "name": chain.name,
            "address": held.payouts[chain.id].address if chain.id in held.payouts else None,
        }
        for chain in web.registry.with_rpc()
    ]
    # Payout addresses on chains the gateway no longer watches are shown too.
    watched = {chain["id"] for chain in chains}
    chains += [
        {"id": chain_id, "name": str(chain_id), "address": row.address}
        for chain_id, row in sorted(held.payouts.items())
        if chain_id not in watched
    ]
    return page.console(
        "merchant.html",
        operator,
        status=status,
        current="merchants",
        held=held,
        entries=audit_rows(held.audit),
        chains=chains,
        watched=watched,
        notice=notice,
        payout_error=payout_error,
        payout_form=payout_form or {},
        confirm_mixed=confirm_mixed,
        now_ms=web.clock.now_ms(),
    )


@router.get(MERCHANTS + "/{merchant_id}", include_in_schema=False)
async def merchant_page(request: Request, merchant_id: str, done: str = "") -> Response:
    signed = await signed_in(request)
    if not isinstance(signed, SignedIn):
        return signed
    page = signed.page
    notice = page.t(f"merchant_done_{done}") if done in NOTICES else None
    return await _merchant_page(page, signed.operator, merchant_id, notice=notice)


@router.post(MERCHANTS + "/{merchant_id}/status", include_in_schema=False)
async def change_status(request: Request, merchant_id: str) -> Response:
    signed = await signed_in_form(request)
    if not isinstance(signed, SignedIn):
        return signed
    page, operator, form = signed.page, signed.operator, signed.form
    action = form.get("action", "")
    wanted = STATUS_ACTIONS.get(action)
    if wanted is None:
        return await _merchant_page(
            page, operator, merchant_id, status=400, notice=page.t("error_invalid_action")
        )
    web = page.ctx.web
    try:
        async with session_scope(web.sessions) as session:
            await set_merchant_status(
                session,
                web.clock,
                merchant_id=merchant_id,
                status=wanted,
                actor=actor_of(operator.email),
                reason=form.get("reason", "").strip()[:MAX_REASON] or None,
            )
    except GatewayError as exc:
        return page.refusal(exc)
    return page.redirect(f"{MERCHANTS}/{merchant_id}?done={action}")


def _chain_id(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


@router.post(MERCHANTS + "/{merchant_id}/payout", include_in_schema=False)
async def set_payout(request: Request, merchant_id: str) -> Response:
    signed = await signed_in_form(request)
    if not isinstance(signed, SignedIn):
        return signed
    page, operator, form = signed.page, signed.operator, signed.form
    web = page.ctx.web
    address = form.get("address", "").strip()[:100]
    chain_id = _chain_id(form.get("chain_id", ""))
    chain = web.registry.get(chain_id) if chain_id is not None else None
    if chain is None or not chain.has_rpc:
        return await _merchant_page(
            page,
            operator,
            merchant_id,
            status=400,
            payout_error=page.t("error_unknown_chain"),
            payout_form={"address": address},
        )
    try:
        async with session_scope(web.sessions) as session:
            await set_payout_address(
                session,
                web.clock,
                merchant_id=merchant_id,
                chain_id=chain.id,
                address=address,
                payout_code=PayoutCodeCheck.through(
                    web.registry, force=form.get("confirm_mixed") == "yes"
                ),
                actor=actor_of(operator.email),
            )
    except GatewayError as exc:
        if exc.code not in ("invalid_address", "payout_code_mismatch"):
            return page.refusal(exc)
        return await _merchant_page(
            page,
            operator,
            merchant_id,
            status=400,
            payout_error=page.error_text(exc),
            payout_form={"address": address, "chain_id": str(chain.id)},
            confirm_mixed=exc.code == "payout_code_mismatch",
        )
    return page.redirect(f"{MERCHANTS}/{merchant_id}?done=payout")
