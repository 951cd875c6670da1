"""One order's page: its facts from base units, its payments with explorer links where the chain
has an explorer, its webhook events with each delivery attempt, the live JSON it polls, and the
Cancel button (the API's own rule, CSRF-checked). What a shop sends (orderNo, description,
metadata) and what a webhook receiver answers is shown as inert text. SQLite and PostgreSQL."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from fastapi import FastAPI
from markupsafe import escape
from sqlalchemy import select
from tests.dashboard.dashboard_support import Browser, MailSink, csrf_of
from tests.dashboard.order_support import (
    BSC,
    BSC_USDT,
    PaymentChain,
    new_order,
    shop_signed_in,
    write_order_chains,
)
from tests.dashboard.test_escaping import assert_inert

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.models import Order, WebhookDelivery, WebhookEvent
from stablegate.models.order import OrderStatus
from stablegate.web.pages import CONTENT_SECURITY_POLICY

HOSTILE_NO = "<script>alert('no')</script>"
HOSTILE_TEXT = "<img src=x onerror=alert('description')>"
HOSTILE_BODY = "<script>alert('receiver')</script>" + "x" * 300


@pytest.fixture
def chains_file(tmp_path: Path) -> Path:
    return write_order_chains(tmp_path / "chains.toml")


async def test_signed_out_the_order_pages_send_to_log_in(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as owner, Browser(app) as stranger:
        merchant_id = await shop_signed_in(owner, mail, gateway.sessions, clock.now_ms())
        order = await new_order(gateway.sessions, clock, gateway.orders, merchant_id)
        for path in ("/dashboard/orders", "/dashboard/orders.csv", f"/dashboard/orders/{order.id}"):
            answer = await stranger.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/login"
        live = await stranger.get(f"/dashboard/orders/{order.id}/live")
        assert live.status_code == 401 and live.json() == {"error": "signed_out"}
        assert live.headers["cache-control"] == "no-store"
        cancelled = await stranger.client.post(
            f"/dashboard/orders/{order.id}/cancel", data={"csrf_token": "x"}
        )
        assert cancelled.status_code == 303 and cancelled.headers["location"] == "/dashboard/login"


async def test_the_order_page_shows_the_order_its_payments_and_its_webhooks(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        merchant_id = await shop_signed_in(browser, mail, gateway.sessions, clock.now_ms())
        order = await new_order(
            gateway.sessions,
            clock,
            gateway.orders,
            merchant_id,
            chainId=BSC,
            orderNo="INV-7",
            amount="12.5",
            custNo="cust-42",
            description="Two espressos",
            metadata={"table": 7},
        )
        chain = PaymentChain(gateway.sessions, gateway.registry, gateway.orders, clock, BSC)
        tx = await chain.pay(order.id, 5 * 10**18, token=BSC_USDT)
        async with session_scope(gateway.sessions) as session:
            event = await session.scalar(
                select(WebhookEvent).where(
                    WebhookEvent.order_id == order.id, WebhookEvent.type == "order.created"
                )
            )
            assert event is not None
            for attempt, (status, outcome) in enumerate([(500, "failure"), (200, "success")], 1):
                session.add(
                    WebhookDelivery(
                        event_id=event.id,
                        merchant_id=merchant_id,
                        attempt=attempt,
                        url="https://shop.example/hook",
                        outcome=outcome,
                        response_status=status,
                        response_body=HOSTILE_BODY[:256] if status == 500 else "ok",
                        latency_ms=12,
                        attempted_at_ms=clock.now_ms() + attempt,
                    )
                )

        page = await browser.get(f"/dashboard/orders/{order.id}")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        html = page.text
        assert '<h1 class="order-title">Order INV-7</h1>' in html
        assert 'id="order-amount">12.5 USDT</dd>' in html
        assert 'id="order-paid">5 USDT</dd>' in html
        assert 'data-status="pending">Pending</span>' in html
        assert 'id="order-exceptions">Underpaid</dd>' in html  # 5 of 12.5, final
        assert "cust-42" in html and "Two espressos" in html and "&#34;table&#34;: 7" in html
        assert f'id="order-address">{order.to_address}</code>' in html
        assert f'href="https://pay.example.com/cashier/{order.id}"' in html
        # BNB Smart Chain has an explorer: the payment links to its transaction page.
        assert f'href="https://bscscan.com/tx/{tx}"' in html and 'id="no-explorer"' not in html
        # The events, each with its attempts: status, outcome, a short response.
        assert "order.created" in html and "order.underpaid" in html
        assert ">500</td>" in html and ">Refused</td>" in html and ">Success</td>" in html
        assert str(escape(HOSTILE_BODY[:119])) + "…" in html
        assert HOSTILE_BODY[:200] not in unescape(html)
        assert_inert(html)
        assert 'data-live-url="/dashboard/orders/' + order.id + '/live"' in html
        # A payment was seen: no Cancel button.
        assert re.search(r'id="cancel-form"[^>]*hidden', html)


async def test_without_an_explorer_the_hash_is_plain_text(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        merchant_id = await shop_signed_in(browser, mail, gateway.sessions, clock.now_ms())
        order = await new_order(gateway.sessions, clock, gateway.orders, merchant_id)
        chain = PaymentChain(gateway.sessions, gateway.registry, gateway.orders, clock)
        tx = await chain.pay(order.id, 20 * 10**6)
        html = (await browser.get(f"/dashboard/orders/{order.id}")).text
        assert f"<code>{tx}</code>" in html and f"/tx/{tx}" not in html
        assert "This chain has no block explorer configured" in html
        assert 'data-status="completed">Completed</span>' in html


async def test_the_live_view_follows_the_order(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        merchant_id = await shop_signed_in(browser, mail, gateway.sessions, clock.now_ms())
        order = await new_order(gateway.sessions, clock, gateway.orders, merchant_id)
        url = f"/dashboard/orders/{order.id}/live"
        first = await browser.get(url)
        assert first.status_code == 200
        assert first.headers["cache-control"] == "no-store"
        assert first.headers["content-type"] == "application/json"
        assert first.json() == {
            "status": "pending",
            "statusText": "Pending",
            "exceptions": [],
            "exceptionsText": "None",
            "paid": "0 USDT",
            "pending": "0 USDT",
            "confirmations": "0 of 2",
            "completed": "Not yet",
            "payments": 0,
            "cancellable": True,
        }
        chain = PaymentChain(gateway.sessions, gateway.registry, gateway.orders, clock)
        await chain.pay(order.id, 5 * 10**6, final=False)
        seen = (await browser.get(url)).json()
        assert seen["pending"] == "5 USDT" and seen["payments"] == 1
        assert seen["cancellable"] is False
        paid = await new_order(gateway.sessions, clock, gateway.orders, merchant_id)
        await chain.pay(paid.id, 21 * 10**6)
        done = (await browser.get(f"/dashboard/orders/{paid.id}/live")).json()
        assert done["status"] == "completed" and done["statusText"] == "Completed"
        assert done["paid"] == "21 USDT" and done["exceptions"] == ["overpaid"]
        assert done["exceptionsText"] == "Overpaid" and done["completed"].endswith(" UTC")
        assert done["confirmations"] == "Final"
        chinese = (await browser.get(f"/dashboard/orders/{paid.id}/live?lang=zh-CN")).json()
        assert chinese["statusText"] == "已完成"
        assert (await browser.get("/dashboard/orders/nope/live")).status_code == 404


async def test_cancel_uses_the_apis_rule_and_its_form_token(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser, Browser(app) as other_session:
        merchant_id = await shop_signed_in(browser, mail, gateway.sessions, clock.now_ms())
        assert (await other_session.log_in("owner@shop.example")).status_code == 303
        order = await new_order(gateway.sessions, clock, gateway.orders, merchant_id)
        path = f"/dashboard/orders/{order.id}"
        html = (await browser.get(path)).text
        assert f'<form method="post" action="{path}/cancel" id="cancel-form"' in html
        token = csrf_of(html)

        # Refused without the session's token, with another session's: nothing changes.
        for forged in (
            {},
            {"csrf_token": "0" * 64},
            {"csrf_token": csrf_of((await other_session.get(path)).text)},
        ):
            answer = await browser.client.post(f"{path}/cancel", data=forged)
            assert answer.status_code == 403
            assert "This form has expired" in answer.text
        async with session_scope(gateway.sessions) as session:
            assert (await session.get(Order, order.id)).status == OrderStatus.PENDING  # type: ignore[union-attr]

        answer = await browser.client.post(f"{path}/cancel", data={"csrf_token": token})
        assert answer.status_code == 303 and answer.headers["location"] == f"{path}?cancelled=1"
        page = await browser.get(answer.headers["location"])
        assert "The order is cancelled." in page.text
        assert 'data-status="cancelled">Cancelled</span>' in page.text
        async with session_scope(gateway.sessions) as session:
            types = (
                await session.scalars(
                    select(WebhookEvent.type).where(WebhookEvent.order_id == order.id)
                )
            ).all()
        assert list(types) == ["order.created", "order.cancelled"]
        # Twice is harmless, as in the API.
        again = await browser.client.post(f"{path}/cancel", data={"csrf_token": token})
        assert again.status_code == 303

        # An order with a payment cannot be cancelled: the page says why (409).
        paid = await new_order(gateway.sessions, clock, gateway.orders, merchant_id)
        await PaymentChain(gateway.sessions, gateway.registry, gateway.orders, clock).pay(
            paid.id, 20 * 10**6
        )
        refused = await browser.client.post(
            f"/dashboard/orders/{paid.id}/cancel", data={"csrf_token": token}
        )
        assert refused.status_code == 409
        assert "Only a pending order can be cancelled." in refused.text
        assert 'data-status="completed"' in refused.text

        unknown = await browser.client.post(
            "/dashboard/orders/nope/cancel", data={"csrf_token": token}
        )
        assert unknown.status_code == 404
        assert "There is nothing here, or it is not yours." in unknown.text


async def test_what_the_shop_sends_is_inert_on_the_list_and_the_page(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        merchant_id = await shop_signed_in(browser, mail, gateway.sessions, clock.now_ms())
        order = await new_order(
            gateway.sessions,
            clock,
            gateway.orders,
            merchant_id,
            orderNo=HOSTILE_NO,
            description=HOSTILE_TEXT,
            custNo="<b>cust</b>",
            metadata={"note": HOSTILE_NO, HOSTILE_TEXT: 1},
        )
        listing = await browser.get("/dashboard/orders")
        assert str(escape(HOSTILE_NO)) in listing.text
        assert_inert(listing.text)
        assert "<img" not in listing.text and "<b>" not in listing.text
        found = await browser.get("/dashboard/orders", params={"q": HOSTILE_NO})
        assert order.id in found.text
        assert_inert(found.text)
        page = await browser.get(f"/dashboard/orders/{order.id}")
        assert str(escape(HOSTILE_NO)) in page.text and str(escape(HOSTILE_TEXT)) in page.text
        assert_inert(page.text)
        assert "<img" not in page.text and "<b>" not in page.text
        # The id in the URL is checked before any lookup.
        for odd in ("%3Cscript%3E", "a" * 65, "x.y"):
            answer = await browser.get(f"/dashboard/orders/{odd}")
            assert answer.status_code == 404
            assert_inert(answer.text)
