"""The console's merchants: search, the merchant's page, approve / disable / enable (a disabled
merchant's API key is refused on its very next request, its dashboard users logged out), and the
payout address set with the contract-code check and an audit entry naming the operator."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from tests.admin.console_support import OPERATOR, Console, make_operator
from tests.dashboard.dashboard_support import Browser, MailSink, signed_up_and_in
from tests.support import MerchantKeys, Signer

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.merchants.service import add_merchant
from stablegate.models import AuditEntry, Merchant
from stablegate.models.merchant import MerchantStatus, PayoutAddress

QUERY = "/api/v1/payment/contractPayment"
NEW_PAYOUT = "0x00000000000000000000000000000000000000Aa"


async def signed_read(client: httpx.AsyncClient, signer: Signer) -> httpx.Response:
    signer.clock.advance(1)  # a new signing string each time (the replay cache takes each once)
    return await client.get(
        f"{QUERY}?orderNo=none", headers=signer.headers("GET", QUERY, query="orderNo=none")
    )


async def status_change(console: Console, merchant_id: str, action: str, **extra: str) -> int:
    page = f"/admin/merchants/{merchant_id}"
    answer = await console.post(f"{page}/status", {"action": action, **extra}, token_from=page)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"{page}?done={action}"
    return answer.status_code


async def test_disabling_a_merchant_refuses_its_key_at_once_and_enabling_restores_it(
    app: FastAPI,
    gateway: GatewayContext,
    clock: FakeClock,
    client: httpx.AsyncClient,
    merchant: MerchantKeys,
    signer: Signer,
) -> None:
    await make_operator(gateway, clock)
    before = await signed_read(client, signer)
    assert before.status_code == 404, before.text  # authenticated; no such order
    async with Console(app) as console:
        await console.signed_in()
        await status_change(console, merchant.merchant_id, "disable", reason="chargeback <fraud>")
        refused = await signed_read(client, signer)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_api_key"
        page = await console.get(f"/admin/merchants/{merchant.merchant_id}")
        assert 'id="merchant-status">Disabled<' in page.text
        assert "chargeback &lt;fraud&gt;" in page.text  # the reason, in the audit rows, escaped
        await status_change(console, merchant.merchant_id, "enable")
    assert (await signed_read(client, signer)).status_code == 404
    async with session_scope(gateway.sessions) as session:
        entries = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.subject == merchant.merchant_id)
                .order_by(AuditEntry.id)
            )
        ).all()
    changes = [(e.actor, e.action) for e in entries if e.action != "merchant.created"]
    assert changes == [
        (f"admin:{OPERATOR}", "merchant.disabled"),
        (f"admin:{OPERATOR}", "merchant.enabled"),
    ]
    assert entries[-2].details == {"from": "active", "reason": "chargeback <fraud>"}


async def test_a_disabled_merchants_owner_is_logged_out_and_cannot_log_in(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    await make_operator(gateway, clock)
    async with Browser(app) as owner:
        await signed_up_and_in(owner, mail, "Shop", "owner@shop.example")
        async with session_scope(gateway.sessions) as session:
            merchant = await session.scalar(select(Merchant).where(Merchant.name == "Shop"))
            assert merchant is not None
            merchant_id = merchant.id
        async with Console(app) as console:
            await console.signed_in()
            await status_change(console, merchant_id, "disable")
        assert (await owner.get("/dashboard/keys")).headers["location"] == "/dashboard/login"
        refused = await owner.log_in("owner@shop.example")
        assert refused.status_code == 400
        assert "has disabled this account" in refused.text


async def test_approving_a_pending_merchant_lets_its_owner_log_in(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    await make_operator(gateway, clock)
    async with session_scope(gateway.sessions) as session:
        await session.merge(
            __import__(
                "stablegate.models.gateway_setting", fromlist=["GatewaySetting"]
            ).GatewaySetting(
                name="signup_policy", value="approval", updated_at_ms=0, updated_by="test"
            )
        )
    async with Browser(app) as owner:
        await owner.sign_up("Waiting Shop", "wait@shop.example")
        await owner.verify(mail.link_for("wait@shop.example"))
        assert (await owner.log_in("wait@shop.example")).status_code == 400
        async with Console(app) as console:
            await console.signed_in()
            listed = await console.get("/admin/merchants?status=pending")
            assert "Waiting Shop" in listed.text and "wait@shop.example" in listed.text
            async with session_scope(gateway.sessions) as session:
                merchant = await session.scalar(
                    select(Merchant).where(Merchant.name == "Waiting Shop")
                )
                assert merchant is not None and merchant.status == MerchantStatus.PENDING
            await status_change(console, merchant.id, "approve")
        assert (await owner.log_in("wait@shop.example")).status_code == 303


async def test_search_finds_by_name_id_and_owner_email_and_pages_by_fifty(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    await make_operator(gateway, clock)
    async with session_scope(gateway.sessions) as session:
        ids = []
        for n in range(55):
            clock.advance(1)
            merchant_id, _ = await add_merchant(
                session, gateway.secret_box, clock, name=f"Shop {n:02d} 100%_off"
            )
            ids.append(merchant_id)
    async with Browser(app) as owner:
        await signed_up_and_in(owner, mail, "Emailed", "findme@owner.example")
    async with Console(app) as console:
        await console.signed_in()
        first = await console.get("/admin/merchants")
        assert first.text.count("data-merchant-id=") == 50
        assert "Emailed" in first.text  # newest first
        older = first.text.split('id="merchants-older" rel="next" href="', 1)[1].split('"', 1)[0]
        second = await console.get(older.replace("&amp;", "&"))
        assert second.text.count("data-merchant-id=") == 6
        by_email = await console.get("/admin/merchants?q=FINDME@owner")
        assert by_email.text.count("data-merchant-id=") == 1 and "Emailed" in by_email.text
        by_id = await console.get(f"/admin/merchants?q={ids[3]}")
        assert by_id.text.count("data-merchant-id=") == 1
        # LIKE wildcards are searched as text.
        wild = await console.get("/admin/merchants?q=%25_")
        assert wild.text.count("data-merchant-id=") == 50
        nothing = await console.get("/admin/merchants?q=_x%25")
        assert 'id="merchants-empty"' in nothing.text
        bad = await console.get("/admin/merchants?after=not-a-cursor")
        assert bad.status_code == 400
        assert (await console.get("/admin/merchants?status=sleeping")).status_code == 400
        assert (await console.get("/admin/merchants/mch_nope")).status_code == 404


async def test_the_payout_address_is_checked_set_and_audited(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    await make_operator(gateway, clock)
    page = f"/admin/merchants/{merchant.merchant_id}"
    chain_id = gateway.registry.with_rpc()[0].id
    async with Console(app) as console:
        await console.signed_in()
        bad = await console.post(
            f"{page}/payout", {"chain_id": str(chain_id), "address": "0x123"}, token_from=page
        )
        assert bad.status_code == 400 and 'id="payout-error"' in bad.text
        unknown = await console.post(
            f"{page}/payout", {"chain_id": "999999", "address": NEW_PAYOUT}, token_from=page
        )
        assert unknown.status_code == 400
        saved = await console.post(
            f"{page}/payout", {"chain_id": str(chain_id), "address": NEW_PAYOUT}, token_from=page
        )
        assert saved.status_code == 303, saved.text
        shown = await console.get(saved.headers["location"])
        assert "Payout address saved" in shown.text
    async with session_scope(gateway.sessions) as session:
        row = await session.get(PayoutAddress, (merchant.merchant_id, chain_id))
        assert row is not None and row.address.lower() == NEW_PAYOUT.lower()
        entry = await session.scalar(
            select(AuditEntry)
            .where(AuditEntry.subject == merchant.merchant_id)
            .order_by(AuditEntry.id.desc())
        )
        assert entry is not None and entry.actor == f"admin:{OPERATOR}"


async def test_an_unknown_action_changes_nothing(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    await make_operator(gateway, clock)
    page = f"/admin/merchants/{merchant.merchant_id}"
    async with Console(app) as console:
        await console.signed_in()
        answer = await console.post(f"{page}/status", {"action": "delete"}, token_from=page)
        assert answer.status_code == 400
    async with session_scope(gateway.sessions) as session:
        held = await session.get(Merchant, merchant.merchant_id)
        assert held is not None and held.status == MerchantStatus.ACTIVE
