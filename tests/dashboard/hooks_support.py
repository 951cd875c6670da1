"""Data for the Overview and Webhooks page tests: the signed-up merchant's id, a payout address
so it can take orders, orders, credited payments written straight into the table, and a real
local receiver whose answer (status and body) the test picks."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests.support import PAYOUT, LiveServer

from stablegate.api.context import GatewayContext
from stablegate.clock import Clock
from stablegate.db.engine import session_scope
from stablegate.models import DashboardUser, Order, Payment
from stablegate.models.merchant import PayoutAddress
from stablegate.models.payment import PaymentKind, PaymentStatus
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.service import create_order

_tx = itertools.count(1)


async def merchant_of(gateway: GatewayContext, email: str) -> str:
    async with session_scope(gateway.sessions) as session:
        merchant_id = await session.scalar(
            select(DashboardUser.merchant_id).where(DashboardUser.email == email)
        )
    assert merchant_id is not None
    return merchant_id


async def with_payout(gateway: GatewayContext, clock: Clock, merchant_id: str) -> None:
    async with session_scope(gateway.sessions) as session:
        session.add(
            PayoutAddress(
                merchant_id=merchant_id,
                chain_id=31337,
                address=PAYOUT,
                updated_at_ms=clock.now_ms(),
            )
        )


async def new_order(
    gateway: GatewayContext,
    clock: Clock,
    merchant_id: str,
    *,
    symbol: str = "USDT",
    amount: str = "10",
    notify_url: str | None = None,
) -> Order:
    async with session_scope(gateway.sessions) as session:
        req = CreateOrderRequest.model_validate(
            {"chainId": 31337, "symbol": symbol, "amount": amount, "notifyUrl": notify_url}
        )
        order, _created = await create_order(
            session, clock, gateway.orders, merchant_id=merchant_id, req=req
        )
    return order


async def pay(
    gateway: GatewayContext,
    order: Order,
    units: int,
    *,
    at_ms: int,
    credited: bool = True,
    kind: PaymentKind = PaymentKind.CREDIT,
    status: PaymentStatus = PaymentStatus.FINAL,
) -> None:
    """A transfer to the order's deposit address, as the watcher would have recorded it."""
    n = next(_tx)
    async with session_scope(gateway.sessions) as session:
        session.add(
            Payment(
                chain_id=order.chain_id,
                tx_hash=f"0x{n:064x}",
                log_position=0,
                log_index=0,
                block_number=n,
                block_hash=f"0x{n:064x}",
                block_time_ms=at_ms,
                token_address=order.token_address,
                from_address="0x" + "11" * 20,
                to_address=order.to_address,
                amount=units,
                order_id=order.id,
                status=status,
                kind=kind,
                late=False,
                credited=credited,
                created_at_ms=at_ms,
                updated_at_ms=at_ms,
            )
        )


@dataclass
class Answering:
    """A real HTTP server (uvicorn in a thread) answering every POST with ``status`` and
    ``body``, keeping (headers, body) of each request."""

    status: int = 200
    body: str = "ok"
    hits: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server = LiveServer(Starlette(routes=[Route("/hook", self._handle, methods=["POST"])]))

    async def _handle(self, request: Request) -> Response:
        self.hits.append(({k.lower(): v for k, v in request.headers.items()}, await request.body()))
        return Response(self.body, status_code=self.status, media_type="text/html")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/hook"

    def __enter__(self) -> Answering:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    async def __aenter__(self) -> Answering:  # beside the Browser in one ``async with``
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)
