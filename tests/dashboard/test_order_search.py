"""The Orders list: each filter and the search narrow to exactly the orders they name (orders made
by the real orders service, paid and settled by the real payments service), pages of 50 walk
more than 50 orders both ways without gaps or repeats, and a bad filter is a 400 with its
sentence on the page. SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import pytest
from fastapi import FastAPI
from tests.dashboard.dashboard_support import Browser, MailSink
from tests.dashboard.order_support import (
    BSC,
    PaymentChain,
    bulk_orders,
    new_order,
    shop_signed_in,
    write_order_chains,
)
from tests.support import NOW_MS, TEST_USDT

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.orders.service import cancel_order

DAY_MS = 86_400_000
CSV = "/dashboard/orders.csv"
ROW = re.compile(r'<tr data-order-id="([^"]+)">')


@pytest.fixture
def chains_file(tmp_path: Path) -> Path:
    return write_order_chains(tmp_path / "chains.toml")


def listed(html: str) -> list[str]:
    return ROW.findall(html)


@dataclass
class Shop:
    browser: Browser
    merchant_id: str
    ids: dict[str, str]  # orderNo -> order id
    tx: str  # the hash of the payment that completed D-4
    address: str  # the deposit address of A-1


@pytest.fixture
async def shop(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> AsyncIterator[Shop]:
    """Six orders: A-1 (two days ago), B-2 in USDT18 (yesterday), C-3 on BNB Smart Chain, D-4
    paid in full (completed), E-5 paid short (underpaid, still pending), F-6 cancelled."""
    async with Browser(app) as browser:
        yield await _shop(browser, gateway, clock, mail)


async def _shop(
    browser: Browser, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> Shop:
    merchant_id = await shop_signed_in(browser, mail, gateway.sessions, clock.now_ms())
    ctx, sessions = gateway.orders, gateway.sessions
    ids: dict[str, str] = {}
    clock.set_ms(NOW_MS - 2 * DAY_MS)
    a = await new_order(sessions, clock, ctx, merchant_id, orderNo="A-1")
    clock.set_ms(NOW_MS - DAY_MS)
    b = await new_order(sessions, clock, ctx, merchant_id, orderNo="B-2", symbol="USDT18")
    clock.set_ms(NOW_MS)
    c = await new_order(sessions, clock, ctx, merchant_id, orderNo="C-3", chainId=BSC)
    clock.advance(1)
    d = await new_order(sessions, clock, ctx, merchant_id, orderNo="D-4", amount="5")
    clock.advance(1)
    e = await new_order(sessions, clock, ctx, merchant_id, orderNo="E-5", amount="5")
    clock.advance(1)
    f = await new_order(sessions, clock, ctx, merchant_id, orderNo="F-6")
    for order in (a, b, c, d, e, f):
        ids[order.order_no] = order.id
    chain = PaymentChain(sessions, gateway.registry, ctx, clock)
    tx = await chain.pay(d.id, 5 * 10**6)
    await chain.pay(e.id, 2 * 10**6)
    async with session_scope(sessions) as session:
        await cancel_order(
            session, clock, ctx, merchant_id=merchant_id, order_id=f.id, order_no=None
        )
    return Shop(browser, merchant_id, ids, tx, a.to_address)


async def found(shop: Shop, query: str) -> list[str]:
    """The orderNos the list shows for a query string, in the order shown."""
    page = await shop.browser.get(f"/dashboard/orders?{query}")
    assert page.status_code == 200, page.text
    by_id = {order_id: number for number, order_id in shop.ids.items()}
    return [by_id[order_id] for order_id in listed(page.text)]


async def test_the_list_shows_every_order_newest_first(shop: Shop) -> None:
    page = await shop.browser.get("/dashboard/orders")
    assert page.status_code == 200
    assert await found(shop, "") == ["F-6", "E-5", "D-4", "C-3", "B-2", "A-1"]
    # Amounts from base units, in each order's token; the page links to each order.
    assert "20 USDT" in page.text and "20 USDT18" in page.text and "2 USDT" in page.text
    assert f'href="/dashboard/orders/{shop.ids["A-1"]}"' in page.text
    assert 'aria-current="page">Orders</a>' in page.text
    assert 'id="orders-newer"' not in page.text and 'id="orders-older"' not in page.text


async def test_each_filter_narrows(shop: Shop) -> None:
    assert await found(shop, "status=completed") == ["D-4"]
    assert await found(shop, "status=cancelled") == ["F-6"]
    assert await found(shop, "status=pending") == ["E-5", "C-3", "B-2", "A-1"]
    assert await found(shop, "exception=underpaid") == ["E-5"]
    assert await found(shop, "exception=overpaid") == []
    assert await found(shop, f"chain={BSC}") == ["C-3"]
    assert await found(shop, "chain=31337") == ["F-6", "E-5", "D-4", "B-2", "A-1"]
    assert await found(shop, "token=USDT18") == ["B-2"]
    assert await found(shop, "token=usdt18") == ["B-2"]  # symbols in any case
    assert await found(shop, "from=2025-12-31") == ["F-6", "E-5", "D-4", "C-3", "B-2"]
    assert await found(shop, "to=2025-12-31") == ["B-2", "A-1"]
    assert await found(shop, "from=2025-12-31&to=2025-12-31") == ["B-2"]
    assert await found(shop, "from=2025-12-30&to=2025-12-30") == ["A-1"]
    assert await found(shop, "status=pending&chain=31337&token=USDT") == ["E-5", "A-1"]
    # Empty fields are no filter (the form sends every field).
    query = "q=&status=&exception=&chain=&token=&from=&to="
    assert await found(shop, query) == ["F-6", "E-5", "D-4", "C-3", "B-2", "A-1"]


async def test_the_search_finds_one_order_by_each_of_its_names(shop: Shop) -> None:
    assert await found(shop, "q=C-3") == ["C-3"]
    assert await found(shop, "q=c-3") == []  # orderNo exactly
    assert await found(shop, f"q={shop.ids['B-2']}") == ["B-2"]
    assert await found(shop, f"q={shop.address}") == ["A-1"]
    assert await found(shop, f"q={shop.address.lower()}") == ["A-1"]
    assert await found(shop, f"q={shop.address.upper().replace('0X', '0x')}") == ["A-1"]
    assert await found(shop, f"q={shop.tx}") == ["D-4"]
    assert await found(shop, f"q={shop.tx.upper().replace('0X', '0x')}") == ["D-4"]
    assert await found(shop, "q=D-4&status=pending") == []
    assert await found(shop, f"q={TEST_USDT}") == []  # a token address is no order's
    page = await shop.browser.get("/dashboard/orders?q=nothing-like-it")
    assert "No order matches these filters." in page.text


async def test_another_merchants_orders_never_match(
    shop: Shop, app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app, ip="198.51.100.9") as other:
        other_id = await shop_signed_in(
            other, mail, gateway.sessions, clock.now_ms(), "Other", "other@shop.example"
        )
        mine = await new_order(gateway.sessions, clock, gateway.orders, other_id, orderNo="A-1")
        for query in ("", "q=A-1", f"q={shop.ids['D-4']}", f"q={shop.tx}", f"q={shop.address}"):
            page = await other.get(f"/dashboard/orders?{query}")
            assert set(listed(page.text)) <= {mine.id}, query
            # (the search box shows what was typed, nothing else of theirs is there)
            assert not [i for i in shop.ids.values() if i in page.text and i not in query]
        assert listed((await other.get("/dashboard/orders?q=A-1")).text) == [mine.id]


@pytest.mark.parametrize(
    ("query", "sentence"),
    [
        ("status=paid", "Choose a status from the list."),
        ("exception=lost", "Choose an exception from the list."),
        ("chain=abc", "Choose a chain from the list."),
        ("chain=999999", "Choose a chain from the list."),
        ("chain=99999999999999999999999", "Choose a chain from the list."),
        ("token=DOGE", "Choose a token from the list."),
        ("token=%3Cscript%3E", "Choose a token from the list."),
        ("from=2026-13-01", "Enter dates as YYYY-MM-DD"),
        ("from=yesterday", "Enter dates as YYYY-MM-DD"),
        ("to=2026-02-30", "Enter dates as YYYY-MM-DD"),
        ("to=0001-01-01", "Enter dates as YYYY-MM-DD"),
        ("from=2026-01-02&to=2026-01-01", "The “until” date is before the “from” date."),
        ("q=" + "x" * 201, "The search is at most 200 characters"),
        ("q=a%0Ab", "The search is at most 200 characters"),
        ("after=not-a-cursor", "This page link is not valid."),
        ("before=WzEsMl0", "This page link is not valid."),
        ("after=WzEsIngnXQ", "This page link is not valid."),
    ],
)
async def test_a_bad_filter_is_a_400_with_its_sentence(
    app: FastAPI,
    gateway: GatewayContext,
    clock: FakeClock,
    mail: MailSink,
    query: str,
    sentence: str,
) -> None:
    async with Browser(app) as browser:
        await shop_signed_in(browser, mail, gateway.sessions, clock.now_ms())
        # The export has no pages: it ignores the page links' cursors.
        paths = ["/dashboard/orders"] + ([] if "after=" in query or "before=" in query else [CSV])
        for path in paths:
            page = await browser.get(f"{path}?{query}")
            assert page.status_code == 400, (path, page.text)
            assert page.headers["content-type"].startswith("text/html")
            assert sentence in unescape(page.text), path
            assert 'role="alert" id="filter-error"' in page.text


async def test_pages_of_fifty_walk_every_order_both_ways(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        merchant_id = await shop_signed_in(browser, mail, gateway.sessions, clock.now_ms())
        # 120 orders, and 5 more sharing one creation time (the id breaks the tie).
        ids = await bulk_orders(gateway.sessions, merchant_id, 120, start_ms=NOW_MS - 10_000)
        ids += await bulk_orders(
            gateway.sessions, merchant_id, 5, start_ms=NOW_MS - 20_000, tag="tie", spacing_ms=0
        )
        newest_first = list(reversed(ids[:120]))
        tied = sorted(ids[120:], reverse=True)
        expected = newest_first + tied

        seen: list[list[str]] = []
        html = (await browser.get("/dashboard/orders")).text
        while True:
            seen.append(listed(html))
            older = re.search(r'href="([^"]+)" id="orders-older"', html)
            if older is None:
                break
            html = (await browser.get(unescape(older.group(1)))).text
        assert [len(page) for page in seen] == [50, 50, 25]
        assert [order_id for page in seen for order_id in page] == expected

        # Back again from the last page with "newer".
        back: list[list[str]] = [listed(html)]
        while True:
            newer = re.search(r'href="([^"]+)" id="orders-newer"', html)
            if newer is None:
                break
            html = (await browser.get(unescape(newer.group(1)))).text
            back.append(listed(html))
        assert back == list(reversed(seen))

        # Filters stay in the page links.
        html = (await browser.get("/dashboard/orders?status=pending&token=USDT")).text
        older = re.search(r'href="([^"]+)" id="orders-older"', html)
        assert older is not None
        assert "status=pending" in older.group(1) and "token=USDT" in older.group(1)
        csv = re.search(r'id="orders-csv" href="([^"]+)"', html)
        assert csv is not None
        assert unescape(csv.group(1)) == "/dashboard/orders.csv?status=pending&token=USDT"
