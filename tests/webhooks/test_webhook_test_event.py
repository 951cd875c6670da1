"""The dashboard's test event (stablegate/webhooks/test_event.py): no order, the merchant's
default URL only, signed like any event with both secrets during a rotation's grace, and read by
the SDK as an event without an order."""

from __future__ import annotations

import pytest
from stablegate_client import verify_webhook
from tests.support import MerchantKeys
from tests.webhooks.webhook_support import set_merchant_url

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.errors import InvalidRequest
from stablegate.webhooks.secret_cache import WebhookSecretCache
from stablegate.webhooks.service import rotate_webhook_secret
from stablegate.webhooks.signing import webhook_body, webhook_headers
from stablegate.webhooks.test_event import TEST_EVENT_TYPE, claim_for_test_event


async def test_without_a_default_url_there_is_nothing_to_send(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    async with session_scope(gateway.sessions) as session:
        with pytest.raises(InvalidRequest) as refused:
            await claim_for_test_event(
                session,
                WebhookSecretCache(gateway.secret_box),
                clock,
                merchant_id=merchant.merchant_id,
            )
    assert refused.value.code == "no_notify_url"


async def test_the_test_event_is_signed_with_both_secrets_and_has_no_order(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    await set_merchant_url(gateway, merchant.merchant_id, "https://shop.example/hooks")
    async with session_scope(gateway.sessions) as session:
        rotated = await rotate_webhook_secret(
            session, gateway.secret_box, clock, merchant_id=merchant.merchant_id
        )
        claim = await claim_for_test_event(
            session, WebhookSecretCache(gateway.secret_box), clock, merchant_id=merchant.merchant_id
        )
    assert claim.url == "https://shop.example/hooks" and claim.host == "shop.example"
    assert claim.secrets == (rotated.webhook_secret, merchant.webhook_secret)
    assert claim.event_id.startswith("evt_test_") and len(claim.event_id) <= 40
    body = webhook_body(claim.payload, merchant_id=claim.merchant_id)
    headers = webhook_headers(
        event_id=claim.event_id,
        time_ms=clock.now_ms(),
        body=body,
        secrets=claim.secrets,
        signing_key=gateway.signing_key,
    )
    now = clock.now_ms() / 1000
    for secret in (rotated.webhook_secret, merchant.webhook_secret):
        event = verify_webhook(
            headers, body, secret=secret, merchant_id=merchant.merchant_id, now=now
        )
        assert (event.type, event.order, event.sequence) == (TEST_EVENT_TYPE, None, None)
        assert event.event_id == claim.event_id
