"""The Overview page: where ``/dashboard/`` leads once signed in, the totals per token and chain,
the links to the orders list, one SVG chart of 30 bars per token (no inline style) with a table
as its text, in both languages."""

from __future__ import annotations

import re

from fastapi import FastAPI
from sqlalchemy import update
from tests.dashboard.dashboard_support import Browser, MailSink, signed_up_and_in
from tests.dashboard.hooks_support import merchant_of, new_order, pay, with_payout
from tests.support import NOW_MS

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.dashboard.overview import DAY_MS
from stablegate.db.engine import session_scope
from stablegate.models import Order
from stablegate.models.order import OrderStatus

EMAIL = "owner@shop.example"


async def test_the_dashboard_starts_at_the_overview(app: FastAPI, mail: MailSink) -> None:
    async with Browser(app) as browser:
        assert (await browser.get("/dashboard/")).headers["location"] == "/dashboard/login"
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        for path in ("/dashboard/", "/dashboard"):
            assert (await browser.get(path)).headers["location"] == "/dashboard/overview"
        page = await browser.get("/dashboard/overview")
        assert page.status_code == 200
        assert "Nothing received in the last 30 days." in page.text and "<svg" not in page.text
        menu = re.findall(r'<a href="(/dashboard/[a-z]+)"', page.text.split("</nav>")[0])
        assert menu[0] == "/dashboard/overview" and "/dashboard/webhooks" in menu
        assert '<a href="/dashboard/overview" aria-current="page">' in page.text


async def test_totals_links_and_chart(
    app: FastAPI, gateway: GatewayContext, mail: MailSink, clock: FakeClock
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", EMAIL)
        merchant_id = await merchant_of(gateway, EMAIL)
        await with_payout(gateway, clock, merchant_id)
        usdt = await new_order(gateway, clock, merchant_id)
        usdt18 = await new_order(gateway, clock, merchant_id, symbol="USDT18")
        await new_order(gateway, clock, merchant_id)
        async with session_scope(gateway.sessions) as session:
            await session.execute(
                update(Order)
                .where(Order.id == usdt18.id)
                .values(status=OrderStatus.CONFIRMING, exceptions=["overpaid"])
            )
        clock.advance(3600)
        await pay(gateway, usdt, 12_500_000, at_ms=NOW_MS)
        await pay(gateway, usdt, 2_000_000, at_ms=NOW_MS - 3 * DAY_MS)
        await pay(gateway, usdt, 1_000_000, at_ms=NOW_MS - 20 * DAY_MS)
        await pay(gateway, usdt18, 5 * 10**17, at_ms=NOW_MS - DAY_MS)

        page = await browser.get("/dashboard/overview")
        assert page.status_code == 200
        html = page.text
        assert "style=" not in html and "<script>" not in html
        rows = re.findall(r"<tr>\s*<th scope=\"row\"[^>]*>([^<]+)</th>(.*?)</tr>", html, re.S)
        totals = {
            name: re.findall(r'class="number">([^<]+)<', cells)
            for name, cells in rows
            if " on " in name
        }
        assert totals == {
            "USDT on Local dev chain": ["12.5", "14.5", "15.5"],
            "USDT18 on Local dev chain": ["0", "0.5", "0.5"],
        }
        for link, count in (
            ("/dashboard/orders?status=pending", 2),
            ("/dashboard/orders?status=confirming", 1),
        ):
            tile = re.search(rf'href="{re.escape(link)}"><span class="tile-figure">(\d+)<', html)
            assert tile is not None and int(tile.group(1)) == count, link
        exceptional = re.search(r'<div class="tile-box"><span class="tile-figure">(\d+)<', html)
        assert exceptional is not None and exceptional.group(1) == "1"
        assert '<a href="/dashboard/orders?exception=overpaid">1 overpaid</a>' in html
        assert html.count("/dashboard/orders?exception=") == 1

        charts = re.findall(r"<svg .*?</svg>", html, re.S)
        assert len(charts) == 2
        for chart in charts:
            assert 'role="img"' in chart and "aria-labelledby=" in chart
            assert len(re.findall(r'<rect class="bar', chart)) == 30
        usdt_chart = charts[0]
        assert (
            "Daily volume of USDT on Local dev chain over 30 days, 15.5 USDT in all" in usdt_chart
        )
        assert "2026-01-01: 12.5 USDT" in usdt_chart and "2025-12-12: 1 USDT" in usdt_chart
        assert len(re.findall(r'<rect class="bar empty"', usdt_chart)) == 27
        # The text alternative: a row per day, newest first, a column per token.
        day_rows = re.findall(r'<time datetime="(\d{4}-\d\d-\d\d)">', html)
        assert len(day_rows) == 30 and day_rows[0] == "2026-01-01" and day_rows[-1] == "2025-12-03"

        chinese = await browser.get("/dashboard/overview?lang=zh-CN")
        assert "Local dev chain 上的 USDT" in chinese.text and "最近 30 天" in chinese.text
