"""The Orders CSV export: the same filters as the list, streamed in batches.

Rows are written as the batches are read (:func:`stablegate.dashboard.order_search.order_batches`),
so an export of any number of orders holds one batch in memory. Amounts are decimal strings from
the integer base units (:func:`stablegate.money.format_amount`). A cell a spreadsheet would read
as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return: the orderNo,
the description, whatever the merchant's shop sent) gets a leading apostrophe (OWASP's CSV
injection advice), so opening the file runs nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.dashboard.order_search import OrderFilters, order_batches
from stablegate.models import Order
from stablegate.money import format_amount

BATCH_SIZE = 500
HEADER = (
    "orderId",
    "orderNo",
    "status",
    "exceptions",
    "chainId",
    "symbol",
    "amount",
    "paidAmount",
    "fiatAmount",
    "currency",
    "rate",
    "depositAddress",
    "txIds",
    "description",
    "createTime",
    "completeTime",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """The value, with a leading apostrophe if a spreadsheet would take it for a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def iso_time(ms: int | None) -> str:
    if ms is None:
        return ""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def order_row(order: Order, tx_ids: Iterable[str]) -> list[str]:
    hashes = list(tx_ids)
    if order.tx_id and order.tx_id not in hashes:
        hashes.insert(0, order.tx_id)
    cells = [
        order.id,
        order.order_no,
        str(order.status),
        ";".join(sorted(order.exceptions or [])),
        str(order.chain_id),
        order.symbol,
        format_amount(order.amount, order.decimals),
        format_amount(order.paid_amount, order.decimals),
        order.fiat_amount or "",
        order.fiat_currency or "",
        order.rate or "",
        order.to_address,
        ";".join(hashes),
        order.description or "",
        iso_time(order.create_time_ms),
        iso_time(order.complete_time_ms),
    ]
    return [safe_cell(cell) for cell in cells]


def _lines(rows: Iterable[Iterable[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(rows)
    return buffer.getvalue()


async def csv_chunks(
    sessions: async_sessionmaker[AsyncSession],
    merchant_id: str,
    filters: OrderFilters,
    *,
    batch_size: int = BATCH_SIZE,
) -> AsyncIterator[bytes]:
    """The header, then one chunk per batch of orders (UTF-8 with a byte-order mark, so
    spreadsheets read non-ASCII text as such)."""
    yield ("\ufeff" + _lines([HEADER])).encode()
    async for batch, hashes in order_batches(sessions, merchant_id, filters, batch_size):
        yield _lines(order_row(order, hashes.get(order.id, ())) for order in batch).encode()


def export_name(clock_ms: int) -> str:
    return "orders-" + datetime.fromtimestamp(clock_ms / 1000, tz=UTC).strftime("%Y%m%d-%H%M%S")
