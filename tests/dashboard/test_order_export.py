"""The Orders CSV: the list's filters, a header and one row per order with amounts as decimal
strings from base units, cells a spreadsheet would run as formulas defused, and thousands of
orders streamed in batches (several chunks, each batch read in its own short transaction).
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tests.dashboard.dashboard_support import Browser, MailSink
from tests.dashboard.order_support import (
    PaymentChain,
    bulk_orders,
    new_order,
    shop_signed_in,
    write_order_chains,
)
from tests.support import NOW_MS

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.dashboard import order_export, order_search
from stablegate.dashboard.order_export import HEADER, safe_cell
from stablegate.db.engine import session_scope
from stablegate.models import Order

CSV = "/dashboard/orders.csv"


@pytest.fixture
def chains_file(tmp_path: Path) -> Path:
    return write_order_chains(tmp_path / "chains.toml")


async def asgi_get(app: FastAPI, path: str, cookie: str) -> tuple[list[bytes], dict[str, str]]:
    """The body chunks of a GET as the app sends them (httpx's ASGI transport joins them)."""
    chunks: list[bytes] = []
    headers: dict[str, str] = {}
    requested = False
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200
            headers.update({k.decode(): v.decode() for k, v in message["headers"]})
        elif message["type"] == "http.response.body":
            if message.get("body"):
                chunks.append(message["body"])
            if not message.get("more_body"):
                done.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"pay.example.com"), (b"cookie", cookie.encode())],
        "client": ("203.0.113.7", 40000),
        "server": ("pay.example.com", 443),
        "state": {},
    }
    await app(scope, receive, send)
    return chunks, headers


def rows_of(body: bytes) -> list[dict[str, str]]:
    text = body.decode("utf-8")
    assert text.startswith("\ufeff")  # the byte-order mark spreadsheets look for
    reader = csv.DictReader(io.StringIO(text[1:], newline=""))
    assert tuple(reader.fieldnames or ()) == HEADER
    return list(reader)


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_a_cell_that_looks_like_a_formula_gets_an_apostrophe(value: str, safe: str) -> None:
    assert safe_cell(value) == safe


async def test_the_export_has_a_row_per_matching_order(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        merchant_id = await shop_signed_in(browser, mail, gateway.sessions, clock.now_ms())
        ctx, sessions = gateway.orders, gateway.sessions
        plain = await new_order(sessions, clock, ctx, merchant_id, orderNo="INV-1", amount="12.5")
        clock.advance(1)
        paid = await new_order(
            sessions, clock, ctx, merchant_id, orderNo="=1+2", description="@SUM(A1:A9)"
        )
        clock.advance(1)
        fiat = await new_order(sessions, clock, ctx, merchant_id, orderNo="INV-3", symbol="USDT18")
        async with session_scope(sessions) as session:
            # The fiat columns as a priced order has them (pricing itself: tests/rates).
            await session.execute(
                update(Order)
                .where(Order.id == fiat.id)
                .values(
                    fiat_amount="99.90",
                    fiat_currency="EUR",
                    rate="0.92",
                    description="-cmd|' /C calc'!A0\n<script>alert(1)</script>",
                )
            )
        tx = await PaymentChain(sessions, gateway.registry, ctx, clock).pay(paid.id, 21 * 10**6)

        answer = await browser.get(CSV)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/csv; charset=utf-8"
        disposition = answer.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="orders-') and disposition.endswith(
            '.csv"'
        )
        assert answer.headers["cache-control"] == "no-store"
        rows = rows_of(answer.content)
        assert [row["orderNo"] for row in rows] == ["INV-3", "'=1+2", "INV-1"]
        third, second, first = rows
        assert first == {
            "orderId": safe_cell(plain.id),  # an id may start with "-"
            "orderNo": "INV-1",
            "status": "pending",
            "exceptions": "",
            "chainId": "31337",
            "symbol": "USDT",
            "amount": "12.5",
            "paidAmount": "0",
            "fiatAmount": "",
            "currency": "",
            "rate": "",
            "depositAddress": plain.to_address,
            "txIds": "",
            "description": "",
            "createTime": "2026-01-01T00:00:00.000Z",
            "completeTime": "",
        }
        assert second["status"] == "completed" and second["exceptions"] == "overpaid"
        assert second["paidAmount"] == "21" and second["txIds"] == tx
        assert second["description"] == "'@SUM(A1:A9)"
        assert second["completeTime"] == "2026-01-01T00:00:02.000Z"
        assert third["symbol"] == "USDT18" and third["amount"] == "20"
        assert (third["fiatAmount"], third["currency"], third["rate"]) == ("99.90", "EUR", "0.92")
        assert third["description"] == "'-cmd|' /C calc'!A0\n<script>alert(1)</script>"

        only = rows_of((await browser.get(CSV + "?status=completed")).content)
        assert [row["orderId"] for row in only] == [safe_cell(paid.id)]
        found = rows_of((await browser.get(CSV, params={"q": "=1+2"})).content)
        assert [row["orderId"] for row in found] == [safe_cell(paid.id)]
        assert rows_of((await browser.get(CSV + "?token=USDT18")).content) == [third]

        # The list links to the export with its filters.
        page = await browser.get("/dashboard/orders?status=completed&chain=31337")
        assert 'href="/dashboard/orders.csv?status=completed&amp;chain=31337"' in page.text


async def test_thousands_of_orders_stream_in_batches(
    app: FastAPI,
    gateway: GatewayContext,
    clock: FakeClock,
    mail: MailSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with Browser(app) as browser:
        merchant_id = await shop_signed_in(browser, mail, gateway.sessions, clock.now_ms())
        ids = await bulk_orders(gateway.sessions, merchant_id, 2000, start_ms=NOW_MS - 100_000)
        # Each batch opens its own read transaction: count them.
        opened: list[int] = []
        real_scope = order_search.read_scope

        def counting_scope(sessions: async_sessionmaker[AsyncSession]) -> Any:
            opened.append(1)
            return real_scope(sessions)

        monkeypatch.setattr(order_search, "read_scope", counting_scope)
        cookie = f"stablegate_session={browser.session_cookie}"
        chunks, headers = await asgi_get(app, CSV, cookie)
        assert headers["content-type"] == "text/csv; charset=utf-8"
        assert "content-length" not in headers  # streamed, not built whole
        # The header, then one chunk per batch of 500.
        assert len(chunks) == 1 + 2000 // order_export.BATCH_SIZE
        assert len(opened) == 2000 // order_export.BATCH_SIZE + 1  # the last one finds none
        rows = rows_of(b"".join(chunks))
        assert [row["orderId"] for row in rows] == list(reversed(ids))
        assert rows[0]["amount"] == "1.001999" and rows[-1]["amount"] == "1"
