"""The dashboard's Integrations page: a merchant issues its own EPay / Epusdt credential in the
browser (the key shown once), sees only its own, and the page refuses what every dashboard form
refuses (no session, no form token, bad choices), escaping what was typed."""

from __future__ import annotations

import re

from fastapi import FastAPI
from sqlalchemy import select
from tests.dashboard.dashboard_support import Browser, MailSink, signed_up_and_in
from tests.dashboard.hooks_support import merchant_of
from tests.dashboard.order_support import pay_out_to

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.compat.epay.credentials import load_epay_credential
from stablegate.db.engine import session_scope
from stablegate.models import AuditEntry

PAGE = "/dashboard/integrations"
CREATE = f"{PAGE}/epay"
PID = re.compile(r'id="pid">(\d{10})<')
KEY = re.compile(r'id="epay-key">([A-Za-z0-9]{32})<')


async def test_a_merchant_issues_an_epay_credential_shown_once(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as owner:
        await signed_up_and_in(owner, mail, "Card Shop", "owner@cards.example")
        first = await owner.get(PAGE)
        assert first.status_code == 200 and 'id="no-payout"' in first.text
        merchant_id = await merchant_of(gateway, "owner@cards.example")
        await pay_out_to(gateway.sessions, merchant_id, clock.now_ms())

        bad = await owner.post(
            CREATE, {"chain_id": "31337", "symbol": "USDT", "currency": "XXX"}, token_from=PAGE
        )
        assert bad.status_code == 400 and 'id="form-error"' in bad.text
        made = await owner.post(
            CREATE,
            {"chain_id": "31337", "symbol": "USDT", "currency": "EUR", "label": "<b>shop</b>"},
            token_from=PAGE,
        )
        assert made.status_code == 200, made.text
        pid, key = PID.search(made.text), KEY.search(made.text)
        assert pid is not None and key is not None
        assert "https://pay.example.com/epusdt/" + pid.group(1) in made.text

        listed = await owner.get(PAGE)
        assert f'data-pid="{pid.group(1)}"' in listed.text and key.group(1) not in listed.text
        assert "&lt;b&gt;shop&lt;/b&gt;" in listed.text and "<b>shop</b>" not in listed.text
    async with session_scope(gateway.sessions) as session:
        loaded = await load_epay_credential(session, gateway.secret_box, pid.group(1))
        assert loaded is not None and loaded.key == key.group(1)
        assert (loaded.merchant_id, loaded.currency, loaded.chain_id) == (merchant_id, "EUR", 31337)
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "api_key.created")
        )
        assert entry is not None and entry.actor == "dashboard:owner@cards.example"


async def test_the_page_is_the_merchants_own_and_its_form_needs_the_token(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as first, Browser(app) as second, Browser(app) as stranger:
        await signed_up_and_in(first, mail, "First", "first@shop.example")
        await signed_up_and_in(second, mail, "Second", "second@shop.example")
        for email in ("first@shop.example", "second@shop.example"):
            await pay_out_to(gateway.sessions, await merchant_of(gateway, email), clock.now_ms())
        made = await first.post(
            CREATE, {"chain_id": "31337", "symbol": "USDT", "currency": "CNY"}, token_from=PAGE
        )
        pid = PID.search(made.text)
        assert pid is not None
        assert pid.group(1) not in (await second.get(PAGE)).text

        assert (await stranger.get(PAGE)).headers["location"] == "/dashboard/login"
        anonymous = await stranger.client.post(CREATE, data={"chain_id": "31337"})
        assert anonymous.headers["location"] == "/dashboard/login"
        for token in ({}, {"csrf_token": "0" * 64}):
            forged = await second.client.post(
                CREATE, data={"chain_id": "31337", "symbol": "USDT", "currency": "CNY", **token}
            )
            assert forged.status_code == 403
        assert 'id="credentials-empty"' in (await second.get(PAGE)).text


async def test_a_greenfield_key_made_by_hand_is_shown_once_and_listed(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as owner:
        await signed_up_and_in(owner, mail, "Card Shop", "owner@cards.example")
        await pay_out_to(
            gateway.sessions, await merchant_of(gateway, "owner@cards.example"), clock.now_ms()
        )
        page = await owner.get(PAGE)
        manual = re.search(r'href="([^"]+)" id="greenfield-manual"', page.text)
        assert manual is not None
        consent_url = manual.group(1).replace("&amp;", "&")
        consent = await owner.get(consent_url)
        assert "The new key will be shown on the next page, once." in consent.text
        fields = dict(
            re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', consent.text)
        )
        made = await owner.client.post(
            "/dashboard/greenfield/authorize",
            data={
                **fields,
                "chain_id": "31337",
                "symbol": "USDT",
                "currency": "USD",
                "decision": "approve",
            },
        )
        assert made.status_code == 200
        key = re.search(r'id="gf-key">([A-Za-z0-9_-]{40})<', made.text)
        assert key is not None and 'id="gf-handoff"' not in made.text
        listed = await owner.get(PAGE)
        assert 'id="greenfield-keys"' in listed.text and key.group(1) not in listed.text
        assert key.group(1)[:8] + "…" in listed.text
