"""A thousand live-status streams against a real uvicorn server on loopback.

The streams come from several client addresses through the trusted-proxy path (the test is the
proxy: 127.0.0.1 is in ``STABLEGATE_TRUSTED_PROXIES`` and sends ``X-Forwarded-For``; uvicorn's
own proxy handling is off, so the gateway's ``client_ip`` decides). Streams above the per-IP and
the per-process caps are refused with 429 ``too_many_streams``; the database sees the same
statements per poll with 10 and with 1,000 streams open; closing streams frees their slots; and
a status change still reaches its viewers. Raw sockets, not httpx: a thousand clients stay cheap.
"""

from __future__ import annotations

import asyncio
import resource
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, update
from tests.cashier.stream_support import RawStream
from tests.conftest import unavailable
from tests.support import LiveServer, MerchantKeys

from stablegate.api.app import create_app
from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.db.engine import session_scope
from stablegate.models import Order
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.service import create_order

ADDRESSES = [f"198.51.100.{n}" for n in range(1, 10)]  # 8 fill the server, the 9th is refused
PER_IP = 125
PER_PROCESS = 1000
STREAMS = 1000
QUIET_TICKS = 5  # polls measured at each number of open streams
WAIT_S = 120.0  # generous: two cores shared with other jobs


@pytest.fixture
def settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The suite's settings, with the proxy and the caps read from the environment."""
    monkeypatch.setenv("STABLEGATE_TRUSTED_PROXIES", "127.0.0.1/32")
    monkeypatch.setenv("STABLEGATE_LIVE_STREAMS_PER_IP", str(PER_IP))
    monkeypatch.setenv("STABLEGATE_LIVE_STREAMS_PER_PROCESS", str(PER_PROCESS))
    monkeypatch.setenv("STABLEGATE_PUBLIC_PER_MINUTE", "100000")
    explicit = {name: getattr(settings, name) for name in settings.model_fields_set}
    return Settings(**explicit, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def sockets() -> Iterator[None]:
    """Room for 1,000 client and 1,000 server sockets in this one process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * STREAMS + 1024
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            unavailable("enough file descriptors", f"the hard limit is {hard}, need {wanted}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class StatementLog:
    """Every statement the server's engine sends, tagged with the shared poll's tick count."""

    def __init__(self, gateway: GatewayContext) -> None:
        self.gateway = gateway
        self.lock = threading.Lock()
        self.entries: list[tuple[int, str]] = []
        event.listen(gateway.engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        with self.lock:
            self.entries.append((self.gateway.live_orders.ticks, statement))

    def per_tick(self, ticks: range) -> list[Counter[str]]:
        """For each tick in ``ticks``, the statements run while it was the current one."""
        with self.lock:
            entries = list(self.entries)
        kinds = [Counter[str]() for _ in ticks]
        for tick, statement in entries:
            if tick in ticks:
                words = statement.split()
                # "SELECT ... FROM orders WHERE ..." -> "SELECT orders"; "BEGIN" -> "BEGIN"
                table = words[words.index("FROM") + 1] if "FROM" in words else ""
                kinds[tick - ticks.start][f"{words[0]} {table}".strip()] += 1
        return kinds


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for the server to reach a state (a bound on waiting, not a timed assertion)."""
    for _ in range(int(WAIT_S / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


async def quiet_polls(gateway: GatewayContext, log: StatementLog) -> list[Counter[str]]:
    """The statements of QUIET_TICKS whole polls, with nothing else happening."""
    live = gateway.live_orders
    first = live.ticks + 1  # the current tick may have started before now
    await until(lambda: live.ticks >= first + QUIET_TICKS, f"{QUIET_TICKS} polls")
    return log.per_tick(range(first, first + QUIET_TICKS))


async def open_many(
    port: int, targets: list[tuple[str, str]], parallel: int = 100
) -> list[RawStream]:
    gate = asyncio.Semaphore(parallel)

    async def one(order_id: str, client: str) -> RawStream:
        async with gate:
            stream = await RawStream.open(port, order_id, client)
            if stream.status == 200:
                first = await stream.next_event()  # the current state, at once
                assert first["orderId"] == order_id and first["status"] == "pending"
            return stream

    return list(await asyncio.gather(*(one(o, c) for o, c in targets)))


@pytest.mark.slow
async def test_a_thousand_streams_are_capped_and_share_one_poll(
    settings: Settings,
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    sockets: None,
) -> None:
    request = CreateOrderRequest.model_validate({"chainId": 31337, "symbol": "USDT", "amount": "5"})
    order_ids: list[str] = []
    async with session_scope(gateway.sessions) as session:
        for _ in range(STREAMS):
            order, _created = await create_order(
                session, clock, gateway.orders, merchant_id=merchant.merchant_id, req=request
            )
            order_ids.append(order.id)

    app = create_app(settings, clock=clock, migrate=False)
    served: GatewayContext = app.state.gateway
    slots, live = served.stream_slots, served.live_orders
    log = StatementLog(served)
    streams: list[RawStream] = []
    # One viewer per order, address by address: 8 x 125 streams fill the server.
    targets = [(order_ids[i], ADDRESSES[i // PER_IP]) for i in range(STREAMS)]

    async def refused(order_id: str, client: str) -> dict[str, Any]:
        stream = await RawStream.open(server.port, order_id, client)
        streams.append(stream)
        assert stream.status == 429
        assert stream.headers["retry-after"] == "30"
        return await stream.error()

    async def close(some: list[RawStream]) -> None:
        await asyncio.gather(*(stream.close() for stream in some))

    with LiveServer(app, proxy_headers=False) as server:
        try:
            streams += await open_many(server.port, targets[:10])
            assert [s.status for s in streams] == [200] * 10
            assert slots.open_for(ADDRESSES[0]) == 10 and slots.open == 10
            at_ten = await quiet_polls(served, log)

            # The first address up to its cap, then one more: refused for the address.
            streams += await open_many(server.port, targets[10:PER_IP])
            error = await refused(order_ids[0], ADDRESSES[0])
            assert error["code"] == "too_many_streams"
            assert "from this address" in error["message"]
            # The other seven addresses fill the process; a ninth address finds it full.
            streams += await open_many(server.port, targets[PER_IP:])
            opened = [s for s in streams if s.status == 200]
            assert len(opened) == STREAMS and slots.open == STREAMS
            assert all(slots.open_for(a) == PER_IP for a in ADDRESSES[:8])
            error = await refused(order_ids[0], ADDRESSES[8])
            assert error == {
                "code": "too_many_streams",
                "message": "this server has too many live streams open; poll the order instead",
            }
            assert slots.open == STREAMS and live.watched == STREAMS
            at_thousand = await quiet_polls(served, log)

            # The same four queries per poll (orders, their payments, their merchants' branding,
            # the chains' heads), whether 10 orders are watched or 1,000.
            assert all(tick == at_ten[0] for tick in at_ten + at_thousand), (at_ten, at_thousand)
            for table in ("orders", "payments", "merchants", "chain_state"):
                assert at_ten[0][f"SELECT {table}"] == 1, at_ten[0]
            assert sum(at_ten[0].values()) <= 5  # SQLite adds its BEGIN

            # A change still reaches its viewer through the shared poll.
            watched = opened[500]
            async with session_scope(gateway.sessions) as session:
                await session.execute(
                    update(Order)
                    .where(Order.id == order_ids[500])
                    .values(status="confirming", pending_amount=5_000_000)
                )
            changed = await watched.next_event()
            assert (changed["orderId"], changed["status"]) == (order_ids[500], "confirming")

            # Closing streams gives their slots back: the full address and the ninth get in.
            await close(opened[:50])
            await until(lambda: slots.open == STREAMS - 50, "50 slots to be released")
            assert slots.open_for(ADDRESSES[0]) == PER_IP - 50
            streams += await open_many(
                server.port, [(order_ids[0], ADDRESSES[0]), (order_ids[1], ADDRESSES[8])]
            )
            assert [s.status for s in streams[-2:]] == [200, 200]
        finally:
            await close(streams)
        await until(lambda: slots.open == 0, "every slot to be released")
        await until(lambda: not live.running, "the shared poll to stop")
        assert live.watched == 0
