"""Greenfield's key, server and store endpoints, as the WooCommerce plugin calls them when a
merchant saves its settings:

- ``GET /api/v1/api-keys/current``: the key, its label and permissions (any valid key);
- ``GET /api/v1/server/info``: a version BTCPay's clients accept, fully synched;
- ``GET /api/v1/stores`` and ``/stores/{storeId}`` (``canviewstoresettings``): the one store;
- ``GET /api/v1/stores/{storeId}/payment-methods`` (``canviewstoresettings``): one enabled
  method per token and payout chain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stablegate.compat.greenfield.auth import authenticated
from stablegate.compat.greenfield.credentials import CAN_VIEW_STORE_SETTINGS, GreenfieldCredential
from stablegate.compat.greenfield.payment_methods import PaymentMethod, store_payment_methods
from stablegate.compat.greenfield.wire import answer, refusal
from stablegate.db.engine import read_scope
from stablegate.errors import GatewayError
from stablegate.merchants.service import get_merchant
from stablegate.models import Merchant

router = APIRouter(prefix="/api/v1", tags=["compat"], include_in_schema=False)

# BTCPay's clients gate features on the server's version (the WooCommerce plugin offers refunds
# from 1.7.6); the shapes answered are 2.0's, with the older field names where they differ.
SERVER_VERSION = "2.0.0"
INVOICE_EXPIRATION_S = 900
MONITORING_EXPIRATION_S = 86_400


async def guarded(work: Callable[[], Awaitable[Response]]) -> Response:
    """``work``'s answer, or its refusal in Greenfield's shape."""
    try:
        return await work()
    except GatewayError as exc:
        return refusal(exc)


def store_json(merchant: Merchant, credential: GreenfieldCredential) -> dict[str, Any]:
    return {
        "id": credential.store_id,
        "name": merchant.display_name or merchant.name,
        "website": "",
        "defaultCurrency": credential.currency,
        "invoiceExpiration": INVOICE_EXPIRATION_S,
        "monitoringExpiration": MONITORING_EXPIRATION_S,
        "displayExpirationTimer": 300,
        "speedPolicy": "MediumSpeed",
        "paymentTolerance": merchant.underpay_tolerance_ppm / 10_000,
        "anyoneCanCreateInvoice": False,
        "requiresRefundEmail": False,
        "checkoutType": "V2",
        "lightningAmountInSatoshi": False,
        "lightningPrivateRouteHints": False,
        "onChainWithLnInvoiceFallback": False,
        "redirectAutomatically": False,
        "showRecommendedFee": False,
        "recommendedFeeBlockTarget": 1,
        "defaultLang": "en",
        "customLogo": merchant.logo_url or "",
        "customCSS": "",
        "htmlTitle": "",
        "networkFeeMode": "Never",
        "payJoinEnabled": False,
        "lazyPaymentMethods": False,
        "defaultPaymentMethod": None,
        "archived": False,
    }


def method_json(method: PaymentMethod) -> dict[str, Any]:
    return {
        "paymentMethodId": method.id,
        "paymentMethod": method.id,  # the name before BTCPay 2.0, which older plugins read
        "cryptoCode": method.symbol,
        "enabled": True,
        "config": None,
    }


@router.get("/api-keys/current")
async def current_key(request: Request) -> Response:
    async def work() -> Response:
        auth = await authenticated(request)
        return answer(
            {
                "apiKey": auth.key,
                "label": auth.credential.label or "",
                "permissions": list(auth.credential.permissions),
            }
        )

    return await guarded(work)


@router.get("/server/info")
async def server_info(request: Request) -> Response:
    async def work() -> Response:
        await authenticated(request)
        return answer(
            {
                "version": SERVER_VERSION,
                "onion": "",
                "supportedPaymentMethods": [],
                "fullySynched": True,
                "syncStatus": [],
            }
        )

    return await guarded(work)


async def _store(request: Request, store_id: str | None) -> dict[str, Any]:
    auth = await authenticated(request, CAN_VIEW_STORE_SETTINGS, store_id)
    async with read_scope(auth.ctx.sessions) as session:
        merchant = await get_merchant(session, auth.credential.merchant_id)
        return store_json(merchant, auth.credential)


@router.get("/stores")
async def stores(request: Request) -> Response:
    async def work() -> Response:
        return answer([await _store(request, None)])

    return await guarded(work)


@router.get("/stores/{store_id}")
async def store(request: Request, store_id: str) -> Response:
    async def work() -> Response:
        return answer(await _store(request, store_id))

    return await guarded(work)


@router.get("/stores/{store_id}/payment-methods")
async def payment_methods(request: Request, store_id: str) -> Response:
    async def work() -> Response:
        auth = await authenticated(request, CAN_VIEW_STORE_SETTINGS, store_id)
        async with read_scope(auth.ctx.sessions) as session:
            methods = await store_payment_methods(
                session, auth.ctx.registry, auth.credential.merchant_id
            )
        return answer([method_json(m) for m in methods])

    return await guarded(work)
