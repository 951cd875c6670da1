"""The merchant's cashier branding: what ``set-policy`` accepts and stores, from the service and
from the CLI."""

from __future__ import annotations

import json

import pytest
from tests.cli_env import cli_env, runner  # noqa: F401  (fixture)
from tests.support import PAYOUT, MerchantKeys

from stablegate.api.context import GatewayContext
from stablegate.cli import app
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.db.engine import session_scope
from stablegate.errors import GatewayError
from stablegate.merchants import branding, service
from stablegate.models import Merchant

GOOD_LOGOS = ["https://cdn.shop.example/logo.png", "https://shop.example:8443/a/b.svg?v=2"]
BAD_LOGOS = [
    "http://cdn.shop.example/logo.png",
    "data:image/png;base64,AAAA",
    "javascript:alert(1)",
    "//cdn.shop.example/logo.png",
    "https:///logo.png",
    "https://user:pass@cdn.shop.example/logo.png",
    "https://cdn.shop.example/a logo.png",
    "https://cdn.shop.example/" + "a" * 600,
]


@pytest.mark.parametrize("url", GOOD_LOGOS)
def test_https_logo_urls_are_kept_verbatim(url: str) -> None:
    assert branding.checked_logo_url(url) == url


@pytest.mark.parametrize("url", BAD_LOGOS)
def test_other_logo_urls_are_refused_with_a_stable_code(url: str) -> None:
    with pytest.raises(GatewayError) as error:
        branding.checked_logo_url(url)
    assert (error.value.code, error.value.status) == ("invalid_branding", 400)


@pytest.mark.parametrize(
    ("check", "limit"),
    [
        (branding.checked_display_name, branding.DISPLAY_NAME_MAX),
        (branding.checked_support_contact, branding.SUPPORT_CONTACT_MAX),
    ],
)
def test_text_fields_are_bounded_and_free_of_control_characters(check: object, limit: int) -> None:
    assert callable(check)
    assert check("  Café ☕ <b>Shop</b>  ") == "Café ☕ <b>Shop</b>"  # markup is just text
    assert check("x" * limit) == "x" * limit
    assert check("   ") is None  # empty clears
    for bad in ("x" * (limit + 1), "a\nb", "a\x00b", "a\x85b"):
        with pytest.raises(GatewayError) as error:
            check(bad)
        assert error.value.code == "invalid_branding"


async def test_set_policy_stores_clears_and_refuses_branding(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    async with session_scope(gateway.sessions) as session:
        changes = await service.set_policy(
            session,
            clock,
            merchant_id=merchant.merchant_id,
            display_name="Coffee & Co",
            logo_url=GOOD_LOGOS[0],
            support_contact="help@shop.example",
        )
    assert changes == {
        "merchantId": merchant.merchant_id,
        "displayName": "Coffee & Co",
        "logoUrl": GOOD_LOGOS[0],
        "supportContact": "help@shop.example",
    }
    with pytest.raises(GatewayError):
        async with session_scope(gateway.sessions) as session:
            await service.set_policy(
                session,
                clock,
                merchant_id=merchant.merchant_id,
                display_name="Renamed",
                logo_url=BAD_LOGOS[0],
            )
    async with session_scope(gateway.sessions) as session:
        await service.set_policy(session, clock, merchant_id=merchant.merchant_id, logo_url="")
    async with session_scope(gateway.sessions) as session:
        row = await session.get(Merchant, merchant.merchant_id)
        assert row is not None
        # The refused call changed nothing; the empty value cleared the logo.
        assert (row.display_name, row.logo_url, row.support_contact) == (
            "Coffee & Co",
            None,
            "help@shop.example",
        )
        assert branding.MerchantBranding.of(row).name == "Coffee & Co"
        row.display_name = None
        assert branding.MerchantBranding.of(row).name == "Test Shop"


def test_set_policy_branding_from_the_cli(cli_env: Settings) -> None:  # noqa: F811
    created = json.loads(
        runner.invoke(
            app,
            [
                *["merchant", "create", "--name", "S", "--chain", "31337", "--json"],
                "--payout-address",
                PAYOUT,
            ],
        ).stdout
    )
    result = runner.invoke(
        app,
        [
            *("merchant", "set-policy", "--merchant-id", created["merchantId"], "--json"),
            *("--display-name", "Shop <1>", "--logo-url", GOOD_LOGOS[0]),
            *("--support-contact", "https://shop.example/help"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "merchantId": created["merchantId"],
        "displayName": "Shop <1>",
        "logoUrl": GOOD_LOGOS[0],
        "supportContact": "https://shop.example/help",
    }
    bad = runner.invoke(
        app,
        [
            *("merchant", "set-policy", "--merchant-id", created["merchantId"]),
            *("--logo-url", "http://shop.example/logo.png"),
        ],
    )
    assert bad.exit_code == 2 and "invalid_branding" in bad.output
