"""The Settings page: payout address per chain (with the CLI's contract-code check), payment
rules and the checkout page's branding, each form checked whole before anything is written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from tests.dashboard.dashboard_support import Browser, MailSink, signed_up_and_in

from stablegate.api.context import GatewayContext
from stablegate.dashboard.settings_pages import tolerance_fraction, tolerance_percent
from stablegate.db.engine import session_scope
from stablegate.errors import InvalidRequest
from stablegate.merchants import payout_check
from stablegate.models import AuditEntry, DashboardUser, Merchant, PayoutAddress
from stablegate.models.merchant import DepositStrategy, LatePaymentPolicy

CHAIN = 31337
WALLET = "0x52908400098527886e0f7030069857d2e4169ee7"  # EIP-55's all-lower-case example
WALLET_CHECKSUMMED = "0x52908400098527886E0F7030069857D2E4169EE7"


async def _merchant(gateway: GatewayContext, email: str = "owner@shop.example") -> Merchant:
    async with session_scope(gateway.sessions) as session:
        merchant_id = await session.scalar(
            select(DashboardUser.merchant_id).where(DashboardUser.email == email)
        )
        merchant = await session.get(Merchant, merchant_id)
        assert merchant is not None
        return merchant


async def _payouts(gateway: GatewayContext) -> dict[int, str]:
    async with session_scope(gateway.sessions) as session:
        rows = await session.execute(select(PayoutAddress.chain_id, PayoutAddress.address))
        return {chain_id: address for chain_id, address in rows.all()}


async def _audit(gateway: GatewayContext, action: str) -> list[AuditEntry]:
    async with session_scope(gateway.sessions) as session:
        return list(
            (await session.scalars(select(AuditEntry).where(AuditEntry.action == action))).all()
        )


async def _post(browser: Browser, form: str, data: dict[str, str]) -> httpx.Response:
    return await browser.post(f"/dashboard/settings/{form}", data, token_from="/dashboard/settings")


def test_tolerance_percent_and_fraction_are_exact() -> None:
    assert tolerance_percent(0) == "0"
    assert tolerance_percent(5_000) == "0.5"
    assert tolerance_percent(1) == "0.0001"
    assert tolerance_percent(99_999) == "9.9999"
    assert tolerance_fraction("0.5") == "0.005"
    assert tolerance_fraction("9.9999") == "0.099999"
    assert tolerance_fraction(" 0 ") == "0"
    for bad in ("10", "-1", "abc", "0.00001", "1e-3", "5%", "", "0,5", "NaN", "Infinity"):
        with pytest.raises(InvalidRequest):
            tolerance_fraction(bad)


async def test_signed_out_the_page_and_its_forms_send_to_log_in(app: FastAPI) -> None:
    async with Browser(app) as browser:
        page = await browser.get("/dashboard/settings")
        assert page.status_code == 303 and page.headers["location"] == "/dashboard/login"
        for form in ("payout", "payments", "cashier"):
            answer = await browser.client.post(f"/dashboard/settings/{form}", data={})
            assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/login"


async def test_payout_address_is_set_checksummed_and_audited(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", "owner@shop.example")
        page = await browser.get("/dashboard/settings")
        assert page.status_code == 200
        assert "No address yet: orders on this chain are refused" in page.text
        saved = await _post(browser, "payout", {"chain_id": str(CHAIN), "address": WALLET})
        assert saved.status_code == 303, saved.text
        assert saved.headers["location"] == "/dashboard/settings?saved=payout#payout"
        page = await browser.get(saved.headers["location"])
        assert "The payout address is saved." in page.text
        assert f'value="{WALLET_CHECKSUMMED}"' in page.text
    assert await _payouts(gateway) == {CHAIN: WALLET_CHECKSUMMED}
    [entry] = await _audit(gateway, "payout_address.set")
    assert entry.actor == "dashboard:owner@shop.example"
    assert entry.details == {"chainId": CHAIN, "from": None, "to": WALLET_CHECKSUMMED}


@pytest.mark.parametrize(
    ("chain_id", "address", "message"),
    [
        (str(CHAIN), "0x1234", "This is not a wallet address."),
        (str(CHAIN), "0x" + "0" * 40, "This is not a wallet address."),
        (str(CHAIN), "<script>alert(1)</script>", "This is not a wallet address."),
        ("424242", WALLET, "The gateway does not serve this chain."),
        ("x", WALLET, "The gateway does not serve this chain."),
        ("9" * 40, WALLET, "The gateway does not serve this chain."),
    ],
)
async def test_a_bad_payout_address_or_chain_is_refused_and_nothing_written(
    app: FastAPI,
    gateway: GatewayContext,
    mail: MailSink,
    chain_id: str,
    address: str,
    message: str,
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", "owner@shop.example")
        refused = await _post(browser, "payout", {"chain_id": chain_id, "address": address})
        assert refused.status_code == 400
        assert message in refused.text
        assert "<script>alert(1)</script>" not in refused.text
    assert await _payouts(gateway) == {}
    assert await _audit(gateway, "payout_address.set") == []


async def test_a_contract_on_some_chains_only_needs_the_box_ticked(
    app: FastAPI, gateway: GatewayContext, mail: MailSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[list[int], str]] = []

    async def mixed(_registry: Any, chain_ids: list[int], address: str) -> dict[int, bool | None]:
        asked.append((chain_ids, address))
        return {chain_ids[0]: True, 10: False}  # a contract here, nothing on another chain

    monkeypatch.setattr(payout_check, "code_presence", mixed)
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", "owner@shop.example")
        form = {"chain_id": str(CHAIN), "address": WALLET}
        refused = await _post(browser, "payout", form)
        assert refused.status_code == 400
        assert "is a smart contract on some of your chains" in refused.text
        assert 'name="confirm_mixed"' in refused.text
        assert await _payouts(gateway) == {}
        confirmed = await _post(browser, "payout", form | {"confirm_mixed": "yes"})
        assert confirmed.status_code == 303, confirmed.text
    assert asked == [([CHAIN], WALLET_CHECKSUMMED)] * 2
    assert await _payouts(gateway) == {CHAIN: WALLET_CHECKSUMMED}


async def test_payment_rules_are_saved_and_a_bad_value_writes_none_of_the_form(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", "owner@shop.example")
        form = {
            "late_payment": "complete",
            "underpay_tolerance": "0.5",
            "deposit_strategy": "unique_amount",
        }
        saved = await _post(browser, "payments", form)
        assert saved.status_code == 303, saved.text
        merchant = await _merchant(gateway)
        assert merchant.late_payment == LatePaymentPolicy.COMPLETE
        assert merchant.underpay_tolerance_ppm == 5_000
        assert merchant.deposit_strategy == DepositStrategy.UNIQUE_AMOUNT
        page = await browser.get("/dashboard/settings")
        assert 'value="0.5"' in page.text

        bad_forms = [
            {"late_payment": "record", "underpay_tolerance": "10", "deposit_strategy": "forwarder"},
            {"late_payment": "record", "underpay_tolerance": "0.1", "deposit_strategy": "x"},
            {"late_payment": "never", "underpay_tolerance": "0", "deposit_strategy": "forwarder"},
            {"late_payment": "record", "underpay_tolerance": "<b>1</b>", "deposit_strategy": ""},
        ]
        for bad in bad_forms:
            refused = await _post(browser, "payments", bad)
            assert refused.status_code == 400, bad
            assert "The tolerance is a percent from 0 to below 10" in refused.text
            assert "<b>1</b>" not in refused.text
        merchant = await _merchant(gateway)
        assert merchant.late_payment == LatePaymentPolicy.COMPLETE
        assert merchant.underpay_tolerance_ppm == 5_000
        assert merchant.deposit_strategy == DepositStrategy.UNIQUE_AMOUNT
    assert len(await _audit(gateway, "merchant.policy_set")) == 1


XSS = '<script>alert("x")</script>'


async def test_checkout_page_details_are_saved_escaped_and_shown_to_the_customer(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", "owner@shop.example")
        form = {
            "display_name": XSS,
            "logo_url": "https://shop.example/logo.png",
            "support_contact": f"help@shop.example {XSS}",
        }
        saved = await _post(browser, "cashier", form)
        assert saved.status_code == 303, saved.text
        merchant = await _merchant(gateway)
        assert merchant.display_name == XSS
        assert merchant.logo_url == "https://shop.example/logo.png"
        page = await browser.get("/dashboard/settings")
        assert XSS not in page.text and "&lt;script&gt;" in page.text

        refused = await _post(
            browser, "cashier", form | {"logo_url": "http://shop.example/logo.png"}
        )
        assert refused.status_code == 400
        assert "The logo URL must be an absolute https URL" in refused.text
        assert 'value="http://shop.example/logo.png"' in refused.text  # the form refilled
        refused = await _post(browser, "cashier", form | {"display_name": "x" * 81})
        assert refused.status_code == 400 and "at most 80 characters" in refused.text

        cleared = await _post(
            browser,
            "cashier",
            {"display_name": "", "logo_url": "", "support_contact": ""},
        )
        assert cleared.status_code == 303
    merchant = await _merchant(gateway)
    assert (merchant.display_name, merchant.logo_url, merchant.support_contact) == (None,) * 3


async def test_a_refused_form_token_changes_no_setting(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", "owner@shop.example")
        forms = {
            "payout": {"chain_id": str(CHAIN), "address": WALLET},
            "payments": {"late_payment": "complete", "underpay_tolerance": "1"},
            "cashier": {"display_name": "Forged"},
        }
        for name, data in forms.items():
            answer = await browser.client.post(
                f"/dashboard/settings/{name}", data={**data, "csrf_token": "0" * 64}
            )
            assert answer.status_code == 403
    merchant = await _merchant(gateway)
    assert merchant.display_name is None and merchant.underpay_tolerance_ppm == 0
    assert merchant.late_payment == LatePaymentPolicy.RECORD
    assert await _payouts(gateway) == {}


async def test_a_second_merchant_sees_and_changes_only_its_own_settings(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as first, Browser(app, ip="198.51.100.20") as second:
        await signed_up_and_in(first, mail, "First Shop", "first@shop.example")
        await _post(first, "payout", {"chain_id": str(CHAIN), "address": WALLET})
        await _post(first, "cashier", {"display_name": "First Brand", "support_contact": "f@x"})
        await signed_up_and_in(second, mail, "Second Shop", "second@shop.example")
        page = await second.get("/dashboard/settings")
        assert WALLET_CHECKSUMMED not in page.text and "First Brand" not in page.text
        other = "0x" + "ab" * 20
        assert (
            await _post(second, "payout", {"chain_id": str(CHAIN), "address": other})
        ).status_code == 303
        assert (await _post(second, "cashier", {"display_name": "Second Brand"})).status_code == 303
    firsts = await _merchant(gateway, "first@shop.example")
    seconds = await _merchant(gateway, "second@shop.example")
    assert (firsts.display_name, firsts.support_contact) == ("First Brand", "f@x")
    assert seconds.display_name == "Second Brand"
    async with session_scope(gateway.sessions) as session:
        first_payout = await session.get(PayoutAddress, (firsts.id, CHAIN))
        second_payout = await session.get(PayoutAddress, (seconds.id, CHAIN))
    assert first_payout is not None and first_payout.address == WALLET_CHECKSUMMED
    assert second_payout is not None and second_payout.address.lower() == other
