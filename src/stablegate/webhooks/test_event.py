"""The ``test`` event a merchant sends to its default notify URL (dashboard, Webhooks page).

It belongs to no order, and the outbox (``webhook_events``) and the delivery log hold order
events only (``order_id`` is required there), so it is not queued: it is sent once, at once, by
the delivery worker's own request step (:meth:`WebhookWorker.send`): the same body shape, both
signatures with the secrets a real event would carry (the previous one too during its grace),
the SSRF guard and the 10 s limit. Its answer is shown to the merchant, not stored. Its body::

    {"eventId": "evt_test_…", "merchantId": "mch_…", "type": "test", "createTime": 1700000000000}

No ``sequence`` and no ``data``: the SDK's ``verify_webhook`` reads it as an event with
``order`` None.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.errors import InvalidRequest, NotFound
from stablegate.models import Merchant
from stablegate.outbound import DestinationError, parse_webhook_url
from stablegate.secret_box import new_token
from stablegate.webhooks.claims import Claim
from stablegate.webhooks.secret_cache import WebhookSecretCache
from stablegate.webhooks.service import webhook_secrets

TEST_EVENT_TYPE = "test"
_LEASE_MS = 60_000  # only a Claim field here: nothing is leased


async def claim_for_test_event(
    session: AsyncSession, secrets: WebhookSecretCache, clock: Clock, *, merchant_id: str
) -> Claim:
    """The test event for the merchant's default notify URL, ready for :meth:`send`.

    400 ``no_notify_url`` when the merchant has none (an order's own URL is not a default)."""
    merchant = await session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound(f"merchant {merchant_id} not found")
    if not merchant.notify_url:
        raise InvalidRequest("set a notify URL first", code="no_notify_url")
    try:
        host = parse_webhook_url(merchant.notify_url)[1]
    except DestinationError:
        host = ""  # stored by an older version: the attempt reports the reason
    now = clock.now_ms()
    event_id = new_token("evt_test_", 16)
    keys = webhook_secrets(
        merchant.webhook_secret_enc,
        merchant.webhook_secret_prev_enc,
        merchant.webhook_secret_prev_until_ms,
        secrets,
        now,
    )
    return Claim(
        event_id=event_id,
        merchant_id=merchant_id,
        order_id="",
        attempt=1,
        lease_until_ms=now + _LEASE_MS,
        created_at_ms=now,
        url=merchant.notify_url,
        payload={"eventId": event_id, "type": TEST_EVENT_TYPE, "createTime": now},
        secrets=tuple(keys),
        host=host,
    )
