"""The Orders pages' filters and search, as statements scoped to the signed-in merchant.

Every statement starts from :func:`stablegate.orders.queries.readable_orders`, so no filter can
reach another merchant's orders. Filters come from the query string and are checked like any
input: an unknown status, exception, chain or token, a date that is not ``YYYY-MM-DD``, a range
that ends before it starts, a search or cursor of the wrong shape each raise
:class:`OrderFilterError` (400, with its own sentence on the page), never a database error.

Pages are keyset-paginated on (create_time_ms, id), newest first, :data:`PAGE_SIZE` at a time;
the CSV export walks the same order in batches (:func:`order_batches`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from eth_utils.address import to_checksum_address
from sqlalchemy import ColumnElement, String, and_, cast, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.chain.registry import ChainRegistry
from stablegate.db.engine import read_scope
from stablegate.errors import GatewayError, InvalidRequest
from stablegate.models import Order, Payment
from stablegate.models.order import OrderException, OrderStatus
from stablegate.models.payment import PaymentKind
from stablegate.orders.queries import readable_orders
from stablegate.pagination import INT64_MAX, cursor_id, cursor_int, decode_cursor, encode_cursor

PAGE_SIZE = 50
MAX_SEARCH = 200
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SYMBOL = re.compile(r"[A-Za-z0-9._-]{1,20}")
DAY_MS = 86_400_000


class OrderFilterError(GatewayError):
    """A filter the Orders pages refuse (400). Codes, each the key ``orders_error_<code>``:
    ``invalid_status``, ``invalid_exception``, ``unknown_chain``, ``unsupported_token``,
    ``invalid_date``, ``invalid_date_range``, ``invalid_search``, ``invalid_cursor``."""

    status = 400
    code = "invalid_search"


@dataclass(frozen=True)
class OrderFilters:
    """What the merchant asked for, checked. The empty filter is every order."""

    status: OrderStatus | None = None
    exception: OrderException | None = None
    chain_id: int | None = None
    symbol: str | None = None
    date_from: date | None = None  # inclusive, UTC
    date_to: date | None = None  # inclusive, UTC
    search: str = ""

    def params(self) -> dict[str, str]:
        """The filters as query-string fields (only those set), for links that keep them."""
        fields = {
            "status": self.status.value if self.status else "",
            "exception": self.exception.value if self.exception else "",
            "chain": str(self.chain_id) if self.chain_id is not None else "",
            "token": self.symbol or "",
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "q": self.search,
        }
        return {name: value for name, value in fields.items() if value}

    @property
    def active(self) -> bool:
        return bool(self.params())

    def conditions(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.status is not None:
            where.append(Order.status == self.status)
        if self.exception is not None:
            # A JSON list of enum values: its text holds the value in quotes. The value is one
            # of the enum's (checked), so it carries no LIKE wildcard.
            where.append(cast(Order.exceptions, String).like(f'%"{self.exception.value}"%'))
        if self.chain_id is not None:
            where.append(Order.chain_id == self.chain_id)
        if self.symbol is not None:
            where.append(Order.symbol == self.symbol)
        if self.date_from is not None:
            where.append(Order.create_time_ms >= _day_start_ms(self.date_from))
        if self.date_to is not None:
            where.append(Order.create_time_ms < _day_start_ms(self.date_to) + DAY_MS)
        if self.search:
            where.append(_search(self.search))
        return where


def _day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _search(text: str) -> ColumnElement[bool]:
    """orderNo or order id exactly; a deposit address or a payment's transaction hash in any
    letter case (compared with the forms the gateway stores: checksummed or lower case)."""
    matches: list[ColumnElement[bool]] = [Order.order_no == text, Order.id == text]
    if _ADDRESS.fullmatch(text):
        forms = {text, text.lower(), str(to_checksum_address(text.lower()))}
        matches.append(Order.to_address.in_(forms))
    if _TX_HASH.fullmatch(text):
        forms = {text, text.lower()}
        paid_by = select(Payment.order_id).where(
            Payment.tx_hash.in_(forms), Payment.order_id.is_not(None)
        )
        matches.append(Order.id.in_(paid_by))
        matches.append(Order.tx_id.in_(forms))
    return or_(*matches)


def _date(value: str, name: str) -> date:
    if not _DATE.fullmatch(value):
        raise OrderFilterError(f"{name} must be a date YYYY-MM-DD", code="invalid_date")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise OrderFilterError(f"{name} is not a real date", code="invalid_date") from None
    if day.year < 1970:
        raise OrderFilterError(f"{name} is before 1970", code="invalid_date")
    return day


def parse_filters(params: Mapping[str, str], registry: ChainRegistry) -> OrderFilters:
    """The filters of a query string (empty fields are no filter); unknown fields are ignored."""

    def field(name: str) -> str:
        return params.get(name, "").strip()

    status = exception = None
    if value := field("status"):
        if value not in set(OrderStatus):
            raise OrderFilterError(f"unknown status {value!r}", code="invalid_status")
        status = OrderStatus(value)
    if value := field("exception"):
        if value not in set(OrderException):
            raise OrderFilterError(f"unknown exception {value!r}", code="invalid_exception")
        exception = OrderException(value)
    chain_id = None
    if value := field("chain"):
        if not (value.isascii() and value.isdigit() and len(value) <= 18):
            raise OrderFilterError("chain must be a chain id", code="unknown_chain")
        chain_id = int(value)
        if registry.get(chain_id) is None:
            raise OrderFilterError(f"chain {chain_id} is not in the registry", code="unknown_chain")
    symbol = None
    if value := field("token"):
        known = {t.symbol.upper(): t.symbol for chain in registry for t in chain.tokens}
        if not _SYMBOL.fullmatch(value) or value.upper() not in known:
            raise OrderFilterError("unknown token", code="unsupported_token")
        symbol = known[value.upper()]
    date_from = _date(field("from"), "from") if field("from") else None
    date_to = _date(field("to"), "to") if field("to") else None
    if date_from and date_to and date_to < date_from:
        raise OrderFilterError("the range ends before it starts", code="invalid_date_range")
    search = field("q")
    if len(search) > MAX_SEARCH or any(ord(c) < 32 for c in search):
        raise OrderFilterError(
            "the search is too long or has a control character", code="invalid_search"
        )
    return OrderFilters(status, exception, chain_id, symbol, date_from, date_to, search)


def token_symbols(registry: ChainRegistry) -> list[str]:
    """Every token symbol of the registry, once, sorted: the token filter's choices."""
    return sorted({t.symbol for chain in registry for t in chain.tokens})


# -- pages ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderPage:
    orders: list[Order]
    newer: str | None  # cursor of the page before (newer orders), None on the first page
    older: str | None  # cursor of the page after (older orders), None on the last


def _cursor(order: Order) -> str:
    return encode_cursor([order.create_time_ms, order.id])


def _parse_cursor(cursor: str) -> tuple[int, str]:
    try:
        created, order_id = decode_cursor(cursor, 2)
        return cursor_int(created, low=0, high=INT64_MAX), cursor_id(order_id)
    except InvalidRequest:
        raise OrderFilterError("the page link is not valid", code="invalid_cursor") from None


def _older_than(created: int, order_id: str) -> ColumnElement[bool]:
    return or_(
        Order.create_time_ms < created,
        and_(Order.create_time_ms == created, Order.id < order_id),
    )


def _newer_than(created: int, order_id: str) -> ColumnElement[bool]:
    return or_(
        Order.create_time_ms > created,
        and_(Order.create_time_ms == created, Order.id > order_id),
    )


async def order_page(
    session: AsyncSession,
    merchant_id: str,
    filters: OrderFilters,
    *,
    after: str | None = None,
    before: str | None = None,
    size: int = PAGE_SIZE,
) -> OrderPage:
    """One page of the merchant's matching orders, newest first: the first page, the one after
    the ``after`` cursor (older orders) or the one before ``before`` (newer orders). Reads at
    most ``size + 1`` rows, whatever the number of orders."""
    statement = readable_orders(merchant_id).where(*filters.conditions())
    if before:
        created, order_id = _parse_cursor(before)
        rows = list(
            (
                await session.scalars(
                    statement.where(_newer_than(created, order_id))
                    .order_by(Order.create_time_ms, Order.id)
                    .limit(size + 1)
                )
            ).all()
        )
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        return OrderPage(
            rows,
            newer=_cursor(rows[0]) if rows and more_newer else None,
            older=_cursor(rows[-1]) if rows else None,
        )
    if after:
        created, order_id = _parse_cursor(after)
        statement = statement.where(_older_than(created, order_id))
    rows = list(
        (
            await session.scalars(
                statement.order_by(Order.create_time_ms.desc(), Order.id.desc()).limit(size + 1)
            )
        ).all()
    )
    more_older = len(rows) > size
    rows = rows[:size]
    return OrderPage(
        rows,
        newer=_cursor(rows[0]) if rows and after else None,
        older=_cursor(rows[-1]) if rows and more_older else None,
    )


async def order_batches(
    sessions: async_sessionmaker[AsyncSession],
    merchant_id: str,
    filters: OrderFilters,
    size: int,
) -> AsyncIterator[tuple[list[Order], dict[str, list[str]]]]:
    """Every matching order, newest first, ``size`` at a time with the transaction hashes of
    each one's payments (oldest first): one short read transaction per batch, so an export of
    any length holds one batch in memory and no transaction open while the client reads."""
    last: tuple[int, str] | None = None
    while True:
        async with read_scope(sessions) as session:
            statement = readable_orders(merchant_id).where(*filters.conditions())
            if last is not None:
                statement = statement.where(_older_than(*last))
            batch = list(
                (
                    await session.scalars(
                        statement.order_by(Order.create_time_ms.desc(), Order.id.desc()).limit(size)
                    )
                ).all()
            )
            hashes: dict[str, list[str]] = {}
            if batch:
                rows = await session.execute(
                    select(Payment.order_id, Payment.tx_hash)
                    .where(
                        Payment.order_id.in_([o.id for o in batch]),
                        Payment.kind != PaymentKind.FLUSH,
                    )
                    .order_by(Payment.block_number, Payment.log_index, Payment.id)
                )
                for order_id, tx_hash in rows.all():
                    known = hashes.setdefault(str(order_id), [])
                    if tx_hash not in known:
                        known.append(tx_hash)
        if not batch:
            return
        yield batch, hashes
        if len(batch) < size:
            return
        last = (batch[-1].create_time_ms, batch[-1].id)
