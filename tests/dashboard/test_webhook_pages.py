"""The Webhooks page: the default notify URL (set, cleared, refused like the API refuses it, and
private addresses), the secret's rotation (shown once; the old one still verifies for 24 hours),
the test event (a real local receiver; the SDK verifies it), the delivery log (status codes and
bodies shown as text, pages) and Resend (a new attempt once the worker runs)."""

from __future__ import annotations

import re
from html import unescape

import pytest
from fastapi import FastAPI
from markupsafe import escape
from sqlalchemy import select
from stablegate_client import WebhookVerificationError, verify_webhook
from tests.dashboard.dashboard_support import Browser, MailSink, signed_up_and_in
from tests.dashboard.hooks_support import Answering, merchant_of, new_order, with_payout
from tests.webhooks.webhook_support import make_worker

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.dashboard import webhook_pages
from stablegate.db.engine import session_scope
from stablegate.models import AuditEntry, Merchant, WebhookEvent

EMAIL = "owner@shop.example"
SECRET = re.compile(r'id="webhook-secret">(whsec_[\w-]+)<')


@pytest.fixture
def allow_private_webhooks() -> bool:
    return False


@pytest.fixture
def settings(settings: Settings, allow_private_webhooks: bool) -> Settings:
    return settings.model_copy(update={"allow_private_webhooks": allow_private_webhooks})


async def _merchant(gateway: GatewayContext) -> Merchant:
    merchant_id = await merchant_of(gateway, EMAIL)
    async with session_scope(gateway.sessions) as session:
        merchant = await session.get(Merchant, merchant_id)
    assert merchant is not None
    return merchant


def _page_text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


async def test_signed_out_pages_and_forms_lead_to_the_log_in(app: FastAPI) -> None:
    async with Browser(app) as browser:
        for path in ("/dashboard/webhooks", "/dashboard/overview"):
            answer = await browser.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/login"
        answer = await browser.client.post("/dashboard/webhooks/test", data={})
        assert answer.headers["location"] == "/dashboard/login"


async def test_the_notify_url_is_set_cleared_and_refused_like_the_apis(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        page = await browser.get("/dashboard/webhooks")
        assert page.status_code == 200 and "No notify URL is set" in page.text

        saved = await browser.post(
            "/dashboard/webhooks/notify-url",
            {"notify_url": " https://shop.example/hooks?x=1&y=2 "},
            token_from="/dashboard/webhooks",
        )
        assert saved.status_code == 303
        page = await browser.get(saved.headers["location"])
        assert "Notify URL saved." in page.text
        assert 'id="current-url">https://shop.example/hooks?x=1&amp;y=2<' in page.text
        assert (await _merchant(gateway)).notify_url == "https://shop.example/hooks?x=1&y=2"

        refused = {
            "ftp://shop.example/hooks": "This URL cannot be called",
            "https://user:pw@shop.example/hooks": "This URL cannot be called",
            "shop.example/hooks": "This URL cannot be called",
            "https://exa mple.com/": "This URL cannot be called",
            "http://10.0.0.7/hooks": "private or reserved address",
            "http://127.0.0.1:8080/hooks": "private or reserved address",
            "https://[::1]/hooks": "private or reserved address",
            "http://169.254.169.254/latest/meta-data": "private or reserved address",
        }
        for url, message in refused.items():
            answer = await browser.post(
                "/dashboard/webhooks/notify-url",
                {"notify_url": url},
                token_from="/dashboard/webhooks",
            )
            assert answer.status_code == 400, url
            assert message in answer.text, url
            assert f'value="{url}"' in unescape(answer.text)  # what was typed, to correct it
            assert (await _merchant(gateway)).notify_url == "https://shop.example/hooks?x=1&y=2"

        hostile = "https://shop.example/<script>alert(1)</script>?q=\"'&"
        saved = await browser.post(
            "/dashboard/webhooks/notify-url",
            {"notify_url": hostile},
            token_from="/dashboard/webhooks",
        )
        assert saved.status_code == 303
        page = await browser.get("/dashboard/webhooks")
        assert "<script>alert" not in page.text and str(escape(hostile)) in page.text

        cleared = await browser.post(
            "/dashboard/webhooks/notify-url", {"notify_url": "  "}, token_from="/dashboard/webhooks"
        )
        assert cleared.status_code == 303
        assert "Notify URL cleared" in (await browser.get(cleared.headers["location"])).text
        assert (await _merchant(gateway)).notify_url is None

    async with session_scope(gateway.sessions) as session:
        audited = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "merchant.policy_set")
            )
        ).all()
    assert [(a.actor, a.details) for a in audited] == [
        (f"dashboard:{EMAIL}", {"notifyUrl": "https://shop.example/hooks?x=1&y=2"}),
        (
            f"dashboard:{EMAIL}",
            {"notifyUrl": "https://shop.example/<script>alert(1)</script>?q=\"'&"},
        ),
        (f"dashboard:{EMAIL}", {"notifyUrl": None}),
    ]


@pytest.mark.parametrize("allow_private_webhooks", [True])
async def test_private_addresses_are_allowed_when_the_operator_allows_them(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        saved = await browser.post(
            "/dashboard/webhooks/notify-url",
            {"notify_url": "http://127.0.0.1:9/hooks"},
            token_from="/dashboard/webhooks",
        )
        assert saved.status_code == 303
        assert (await _merchant(gateway)).notify_url == "http://127.0.0.1:9/hooks"


async def test_the_test_event_is_refused_without_a_notify_url(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        answer = await browser.post(
            "/dashboard/webhooks/test", {}, token_from="/dashboard/webhooks"
        )
        assert answer.status_code == 400
        assert "Set a notify URL first: the test event is sent there." in answer.text


@pytest.mark.parametrize("allow_private_webhooks", [True])
async def test_rotation_shows_the_secret_once_and_the_old_one_verifies_for_24_hours(
    app: FastAPI, gateway: GatewayContext, mail: MailSink, clock: FakeClock
) -> None:
    async with Browser(app) as browser, Answering(body="thanks") as receiver:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        merchant = await _merchant(gateway)
        old = gateway.secret_box.open(merchant.webhook_secret_enc)
        await browser.post(
            "/dashboard/webhooks/notify-url",
            {"notify_url": receiver.url},
            token_from="/dashboard/webhooks",
        )

        rotated = await browser.post(
            "/dashboard/webhooks/secret", {}, token_from="/dashboard/webhooks"
        )
        assert rotated.status_code == 200
        found = SECRET.search(rotated.text)
        assert found is not None
        new = found.group(1)
        assert new != old and "2026-01-02 00:00 UTC" in rotated.text  # 24 h after NOW_MS
        page = await browser.get("/dashboard/webhooks")
        assert new not in page.text and old not in page.text
        assert "The previous secret still signs events until 2026-01-02 00:00 UTC." in page.text

        tested = await browser.post(
            "/dashboard/webhooks/test", {}, token_from="/dashboard/webhooks"
        )
        assert tested.status_code == 200
        assert "Delivered: your server answered HTTP 200." in tested.text
        assert "thanks" in tested.text
        [(headers, body)] = receiver.hits
        now = clock.now_ms() / 1000
        pem = gateway.signing_key.public_pem
        for secret in (new, old):
            event = verify_webhook(headers, body, secret=secret, merchant_id=merchant.id, now=now)
            assert event.type == "test" and event.order is None
            assert event.event_id == headers["webhook-id"]
        verify_webhook(headers, body, public_key_pem=pem, merchant_id=merchant.id, now=now)

        clock.advance(12 * 3600)  # in two steps: a session ends after 24 h without use
        assert (await browser.get("/dashboard/webhooks")).status_code == 200
        clock.advance(12 * 3600 + 1)
        page = await browser.get("/dashboard/webhooks")
        assert page.status_code == 200
        assert "The previous secret still signs" not in page.text
        await browser.post("/dashboard/webhooks/test", {}, token_from="/dashboard/webhooks")
        headers, body = receiver.hits[-1]
        now = clock.now_ms() / 1000
        verify_webhook(headers, body, secret=new, merchant_id=merchant.id, now=now)
        with pytest.raises(WebhookVerificationError):
            verify_webhook(headers, body, secret=old, merchant_id=merchant.id, now=now)

    async with session_scope(gateway.sessions) as session:
        actions = [
            (a.action, a.actor)
            for a in (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
            if a.action.startswith("webhook")
        ]
    assert actions == [
        ("webhook_secret.rotated", f"dashboard:{EMAIL}"),
        ("webhook.test_sent", f"dashboard:{EMAIL}"),
        ("webhook.test_sent", f"dashboard:{EMAIL}"),
    ]


@pytest.mark.parametrize("allow_private_webhooks", [True])
async def test_a_refusing_receiver_is_shown_as_text(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser, Answering(503, "<script>alert(1)</script>") as receiver:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        await browser.post(
            "/dashboard/webhooks/notify-url",
            {"notify_url": receiver.url},
            token_from="/dashboard/webhooks",
        )
        tested = await browser.post(
            "/dashboard/webhooks/test", {}, token_from="/dashboard/webhooks"
        )
        assert "Not delivered: your server answered HTTP 503." in tested.text
        assert "<script>alert" not in tested.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in tested.text


@pytest.mark.parametrize("allow_private_webhooks", [True])
async def test_the_log_shows_each_attempt_as_text_and_resend_adds_one(
    app: FastAPI, gateway: GatewayContext, mail: MailSink, clock: FakeClock
) -> None:
    async with Browser(app) as browser, Answering(500, "<script>alert(1)</script>") as receiver:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        merchant_id = await merchant_of(gateway, EMAIL)
        await with_payout(gateway, clock, merchant_id)
        await browser.post(
            "/dashboard/webhooks/notify-url",
            {"notify_url": receiver.url},
            token_from="/dashboard/webhooks",
        )
        page = await browser.get("/dashboard/webhooks")
        assert "No event has been sent yet." in page.text
        order = await new_order(gateway, clock, merchant_id)
        async with make_worker(gateway, clock) as worker:
            assert await worker.run_once() == 1

        page = await browser.get("/dashboard/webhooks")
        assert "HTTP 500" in page.text and "refused" in page.text
        assert "Event: waiting for its next attempt" in page.text
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert order.id in page.text and "order.created" in page.text
        assert receiver.url in page.text
        async with session_scope(gateway.sessions) as session:
            event_id = await session.scalar(
                select(WebhookEvent.id).where(WebhookEvent.order_id == order.id)
            )
        assert event_id is not None
        assert page.text.count(f"/dashboard/webhooks/events/{event_id}/resend") == 1

        receiver.status, receiver.body = 200, "received"
        resent = await browser.post(
            f"/dashboard/webhooks/events/{event_id}/resend", {}, token_from="/dashboard/webhooks"
        )
        assert resent.status_code == 303
        page = await browser.get(resent.headers["location"])
        assert f"Event {event_id} is queued again" in page.text
        async with make_worker(gateway, clock) as worker:
            assert await worker.run_once() == 1
        page = await browser.get("/dashboard/webhooks")
        assert "HTTP 200" in page.text and "received" in page.text and "HTTP 500" in page.text
        assert page.text.index("HTTP 200") < page.text.index("HTTP 500")  # newest first
        assert page.text.count("<time datetime=") == 2
        assert page.text.count(f"/dashboard/webhooks/events/{event_id}/resend") == 1
        assert page.text.count("Event: delivered") == 1
        assert "Event: waiting" not in page.text

    async with session_scope(gateway.sessions) as session:
        audit = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "webhook.resend")
        )
    assert audit is not None and audit.actor == f"dashboard:{EMAIL}"


@pytest.mark.parametrize("allow_private_webhooks", [True])
async def test_the_log_is_paged_newest_first(
    app: FastAPI,
    gateway: GatewayContext,
    mail: MailSink,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(webhook_pages, "LOG_PAGE_SIZE", 2)
    async with Browser(app) as browser, Answering() as receiver:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        merchant_id = await merchant_of(gateway, EMAIL)
        await with_payout(gateway, clock, merchant_id)
        orders = []
        for _ in range(3):
            orders.append(await new_order(gateway, clock, merchant_id, notify_url=receiver.url))
            async with make_worker(gateway, clock) as worker:
                assert await worker.run_once() == 1
            clock.advance(60)

        first = await browser.get("/dashboard/webhooks")
        assert orders[2].id in first.text and orders[1].id in first.text
        assert orders[0].id not in first.text and "Newest attempts" not in first.text
        older = re.search(r'href="(/dashboard/webhooks\?cursor=[^"]+)" rel="next"', first.text)
        assert older is not None
        second = await browser.get(unescape(older.group(1)))
        assert orders[0].id in second.text and orders[1].id not in second.text
        assert "Newest attempts" in second.text and 'rel="next"' not in second.text
        # A cursor that is not ours shows the newest attempts.
        bad = await browser.get("/dashboard/webhooks?cursor=bm90LW91cnM")
        assert bad.status_code == 200 and orders[2].id in bad.text


@pytest.mark.parametrize("allow_private_webhooks", [True])
async def test_test_events_are_limited_per_merchant(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser, Answering() as receiver:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        await browser.post(
            "/dashboard/webhooks/notify-url",
            {"notify_url": receiver.url},
            token_from="/dashboard/webhooks",
        )
        for _ in range(webhook_pages.TESTS_PER_MINUTE):
            sent = await browser.post(
                "/dashboard/webhooks/test", {}, token_from="/dashboard/webhooks"
            )
            assert sent.status_code == 200
        refused = await browser.post(
            "/dashboard/webhooks/test", {}, token_from="/dashboard/webhooks"
        )
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert "Too many attempts." in refused.text
        assert len(receiver.hits) == webhook_pages.TESTS_PER_MINUTE
