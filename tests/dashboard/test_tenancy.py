"""A second merchant's session walks every dashboard route with the first merchant's ids: it
sees none of the first merchant's keys or sessions and can change none of them."""

from __future__ import annotations

import re

from fastapi import FastAPI
from markupsafe import escape
from sqlalchemy import select
from tests.dashboard.dashboard_support import PASSWORD, Browser, MailSink, signed_up_and_in
from tests.dashboard.hooks_support import merchant_of, pay
from tests.dashboard.hooks_support import new_order as new_paid_order
from tests.dashboard.order_support import new_order, pay_out_to
from tests.dashboard.test_csrf import SESSION_FORMS, dashboard_routes

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.models import (
    ApiKey,
    ApiPublicKey,
    AuditEntry,
    DashboardSession,
    DashboardUser,
    Merchant,
    Order,
    WebhookDelivery,
    WebhookEvent,
)
from stablegate.models.order import OrderStatus

# A P-256 public key (docs/DESIGN.md §2's test vector).
PEM = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEcQWIm/lXgaj0DhRyK4QOO2SogaOp
aGUv3bZNihf9i9IxRDRHJe9m6ucIsxK4XaFScoVQZavByNqfPmqZw/X6Ig==
-----END PUBLIC KEY-----
"""

SIGNED_IN_PAGES = (
    "/dashboard/keys",
    "/dashboard/keys/{key_id}",
    "/dashboard/settings",
    "/dashboard/security",
    "/dashboard/overview",
    "/dashboard/webhooks",
    "/dashboard/orders",
    "/dashboard/orders.csv",
)
# Forms that act on the caller's own session or merchant, whatever it sends: the walk checks
# that they leave the first merchant's notify URL and webhook secret alone.
OWN_FORMS = (
    "/dashboard/logout",
    "/dashboard/keys",
    "/dashboard/webhooks/notify-url",
    "/dashboard/webhooks/secret",
    "/dashboard/webhooks/test",
    "/dashboard/settings/payout",
    "/dashboard/settings/payments",
    "/dashboard/settings/cashier",
)
# Pages of one of the merchant's things: another merchant's id is "not found".
ID_PAGES = ("/dashboard/orders/{order_id}", "/dashboard/orders/{order_id}/live")


def test_the_walk_covers_every_signed_in_page() -> None:
    public = {"/dashboard", "/dashboard/", "/dashboard/signup", "/dashboard/login"}
    public |= {"/dashboard/verify", "/dashboard/static/{name}"}
    public |= {"/dashboard/login/second-factor", "/dashboard/forgot", "/dashboard/reset"}
    assert dashboard_routes("GET") - public == {*SIGNED_IN_PAGES, *ID_PAGES}


async def test_a_second_merchant_can_neither_see_nor_change_the_firsts(
    app: FastAPI, gateway: GatewayContext, mail: MailSink, clock: FakeClock
) -> None:
    async with Browser(app) as first, Browser(app, ip="198.51.100.20") as second:
        await signed_up_and_in(first, mail, "First Shop", "first@shop.example")
        created = await first.post("/dashboard/keys", {"label": "first-secret-label"})
        api_key = re.search(r'id="api-key">(ak_[\w-]+)<', created.text)
        assert api_key is not None
        first_url = "https://first-secret.example/hooks"
        saved = await first.post(
            "/dashboard/webhooks/notify-url",
            {"notify_url": first_url},
            token_from="/dashboard/webhooks",
        )
        assert saved.status_code == 303
        first_merchant = await merchant_of(gateway, "first@shop.example")
        await pay_out_to(gateway.sessions, first_merchant, clock.now_ms())
        paid_order = await new_paid_order(gateway, clock, first_merchant, amount="98765.4321")
        await pay(gateway, paid_order, 98_765_432_100, at_ms=clock.now_ms())
        async with session_scope(gateway.sessions) as session:
            event = await session.scalar(
                select(WebhookEvent).where(WebhookEvent.order_id == paid_order.id)
            )
            assert event is not None
            session.add(
                WebhookDelivery(
                    event_id=event.id,
                    merchant_id=first_merchant,
                    attempt=1,
                    url=first_url,
                    outcome="failure",
                    response_status=418,
                    response_body="first-secret-body",
                    latency_ms=5,
                    attempted_at_ms=clock.now_ms(),
                )
            )
            before = await session.get(Merchant, first_merchant)
            assert before is not None
        await signed_up_and_in(second, mail, "Second Shop", "second@shop.example")
        await second.post("/dashboard/keys", {"label": "second-label"})

        async with session_scope(gateway.sessions) as session:
            first_user = await session.scalar(
                select(DashboardUser).where(DashboardUser.email == "first@shop.example")
            )
            assert first_user is not None
            first_key = await session.scalar(
                select(ApiKey).where(ApiKey.merchant_id == first_user.merchant_id)
            )
            first_session = await session.scalar(
                select(DashboardSession.id).where(DashboardSession.user_id == first_user.id)
            )
        assert first_key is not None and first_session is not None
        first_order = await new_order(
            gateway.sessions,
            clock,
            gateway.orders,
            first_user.merchant_id,
            orderNo="first-secret-order",
            description="first-secret-description",
        )
        firsts = (
            first_user.merchant_id,
            "first@shop.example",
            "First Shop",
            "first-secret-label",
            first_key.id,
            first_key.key_prefix,
            first_session,
            first_url,
            paid_order.id,
            event.id,
            "first-secret-body",
            "98765.4321",
            first_order.id,
            first_order.order_no,
            first_order.to_address,
            "first-secret-description",
        )

        ids = {"key_id": first_key.id, "session_id": first_session}
        for path in SIGNED_IN_PAGES:
            url = path.format(**ids)
            page = await second.get(url)
            # A page of one of the first merchant's things is not found; the lists are the
            # second merchant's own. (The language links repeat the URL asked for.)
            assert page.status_code == (404 if "{" in path else 200), path
            leaked = [value for value in firsts if value in page.text.replace(url, "")]
            assert not leaked, (path, leaked)
        for path in ID_PAGES:
            asked = path.format(order_id=first_order.id)
            page = await second.get(asked)
            assert page.status_code == 404, path
            shown = page.text.replace(asked, "")  # the language links repeat the URL asked
            assert not [value for value in firsts if value in shown], path
        # Nor found by a search or an export naming them.
        for value in (first_order.id, first_order.order_no, first_order.to_address):
            for path in ("/dashboard/orders", "/dashboard/orders.csv"):
                page = await second.get(path, params={"q": value})
                assert page.status_code == 200
                shown = page.text.replace(str(escape(value)), "")  # the search box echoes it
                assert not [v for v in firsts if v in shown], (path, value)

        ids = {
            "key_id": first_key.id,
            "session_id": first_session,
            "event_id": event.id,
            "order_id": first_order.id,
        }
        for path in SESSION_FORMS:
            if path == "/dashboard/logout":
                continue
            # Also with a form a person could have filled in on their own key's page.
            form = {"pem": PEM, "signed_reads": "off", "ip_allowlist": "198.51.100.20"}
            answer = await second.post(path.format(**ids), form, token_from="/dashboard/keys")
            assert not [value for value in firsts if value in answer.text], path
            if "{" not in path:
                continue  # acts on the caller's own merchant and account: checked below
            assert answer.status_code == 404, path
            assert "There is nothing here, or it is not yours." in answer.text
        # The second's security forms, filled in, touch its own account only.
        await second.post("/dashboard/security/two-factor/start", {}, token_from="/dashboard/keys")
        changed = await second.post(
            "/dashboard/security/password",
            {"current_password": PASSWORD, "new_password": "the second's new password"},
            token_from="/dashboard/keys",
        )
        assert changed.status_code == 303
        async with session_scope(gateway.sessions) as session:
            first_now = await session.get(DashboardUser, first_user.id)
            assert first_now is not None
            assert first_now.password_hash == first_user.password_hash
            assert first_now.totp_secret_enc is None
            live = await session.get(DashboardSession, first_session)
            assert live is not None and live.revoked_at_ms is None

        for path in OWN_FORMS[2:]:
            answer = await second.post(path, {"notify_url": ""}, token_from="/dashboard/webhooks")
            assert answer.status_code in (200, 303, 400), path
            assert not [value for value in firsts if value in answer.text], path

        # Nothing changed for the first merchant: its key works, its session lives, its notify
        # URL and webhook secret are its own, its event was not put back in the queue.
        async with session_scope(gateway.sessions) as session:
            key = await session.get(ApiKey, first_key.id)
            assert key is not None and key.revoked_at_ms is None
            after = await session.get(Merchant, first_merchant)
            assert after is not None and after.notify_url == first_url
            assert after.webhook_secret_enc == before.webhook_secret_enc
            assert after.webhook_secret_prev_enc is None
            resent = await session.scalar(
                select(AuditEntry).where(AuditEntry.action == "webhook.resend")
            )
            assert resent is None
            order = await session.get(Order, first_order.id)
            assert order is not None and order.status == OrderStatus.PENDING
            assert key.signed_reads is None and key.ip_allowlist is None
            assert not (await session.scalars(select(ApiPublicKey))).all()
        page = await first.get("/dashboard/keys")
        assert page.status_code == 200 and "first-secret-label" in page.text
        assert "second-label" not in page.text


async def test_revoking_a_key_stops_it_for_the_api(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", "owner@shop.example")
        created = await browser.post("/dashboard/keys", {"label": "backend"})
        api_key = re.search(r'id="api-key">(ak_[\w-]+)<', created.text)
        assert api_key is not None
        listed = await browser.client.get(
            "/api/v1/payment/contractPayment", headers={"BlockATM-API-Key": api_key.group(1)}
        )
        assert listed.status_code == 200, listed.text
        async with session_scope(gateway.sessions) as session:
            key_id = await session.scalar(select(ApiKey.id).where(ApiKey.label == "backend"))
        revoked = await browser.post(
            f"/dashboard/keys/{key_id}/revoke", {}, token_from="/dashboard/keys"
        )
        assert revoked.status_code == 303
        page = await browser.get(revoked.headers["location"])
        assert f"Key {api_key.group(1)[:10]}… is revoked." in page.text
        refused = await browser.client.get(
            "/api/v1/payment/contractPayment", headers={"BlockATM-API-Key": api_key.group(1)}
        )
        assert refused.status_code == 401
