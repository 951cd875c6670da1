"""Webhooks end to end: the gateway's real delivery worker posts to a receiver that checks them
with the SDK's verify_webhook; the SDK reads the delivery log and resends."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from stablegate_client import (
    Client,
    NotFound,
    OrderStatus,
    WebhookEvent,
    WebhookVerificationError,
    verify_webhook,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests.clients.live_gateway import Gateway, StartGateway, run_in_fresh_loop
from tests.support import LiveServer

from stablegate.db.engine import make_engine, make_sessionmaker
from stablegate.secret_box import load_secret_box
from stablegate.webhooks.signing_key import load_signing_key
from stablegate.webhooks.worker import WebhookWorker


@dataclass
class Receiver:
    """A merchant's webhook endpoint: /v2 checks the secret, /v1 the gateway's key, /wrong uses
    a wrong secret; accepted events are kept."""

    gateway: Gateway
    secret: str
    public_key_pem: str
    accepted: list[tuple[str, str, WebhookEvent]] = field(default_factory=list)

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        mine = self.gateway.keys.merchant_id
        checks: dict[str, Any] = {
            "/v2": {"secret": self.secret},
            "/v1": {"public_key_pem": self.public_key_pem, "merchant_id": mine},
            "/both": {
                "secret": self.secret,
                "public_key_pem": self.public_key_pem,
                "merchant_id": mine,
            },
            "/wrong": {"secret": "whsec_not_mine"},
        }[request.url.path]
        try:
            event = verify_webhook(
                request.headers, body, now=self.gateway.clock.now_ms() / 1000, **checks
            )
        except WebhookVerificationError:
            return Response(status_code=400, content=b"bad signature")
        self.accepted.append((request.url.path, request.headers["webhook-id"], event))
        return Response(status_code=204)

    def app(self) -> Starlette:
        paths = ("/v1", "/v2", "/both", "/wrong")
        return Starlette(routes=[Route(p, self.handle, methods=["POST"]) for p in paths])


def deliver(gateway: Gateway) -> int:
    """One round of the gateway's webhook worker (what `stablegate deliver` loops over)."""

    async def work() -> int:
        engine = make_engine(gateway.settings.effective_database_url)
        try:
            async with WebhookWorker(
                make_sessionmaker(engine),
                gateway.clock,
                gateway.settings,
                load_secret_box(gateway.settings),
                load_signing_key(gateway.settings),
            ) as worker:
                return await worker.run_once()
        finally:
            await engine.dispose()

    return run_in_fresh_loop(work)


@pytest.fixture
def setup(start_gateway: StartGateway) -> Iterator[tuple[Gateway, Client, Receiver, str]]:
    gateway = start_gateway(allow_private_webhooks=True)
    client = Client(
        gateway.url,
        gateway.keys.api_key,
        secret_key=gateway.keys.secret_key,
        now_ms=gateway.clock.now_ms,
        sleep=gateway.sleep,
    )
    key = client.signing_key()
    receiver = Receiver(gateway, gateway.keys.webhook_secret, key.public_key_pem)
    with client, LiveServer(receiver.app()) as server:
        yield gateway, client, receiver, server.url


def test_real_webhooks_verify_and_the_log_and_resend_work(
    setup: tuple[Gateway, Client, Receiver, str],
) -> None:
    gateway, client, receiver, url = setup
    orders = {
        path: client.create_order(31337, "USDT", "3.5", notify_url=url + path)
        for path in ("/v2", "/v1", "/both", "/wrong")
    }
    assert deliver(gateway) == 4

    accepted = {path: event for path, _id, event in receiver.accepted}
    assert set(accepted) == {"/v2", "/v1", "/both"}
    for path, event in accepted.items():
        assert event.type == "order.created" and event.sequence == 1
        assert event.merchant_id == gateway.keys.merchant_id
        assert event.order is not None and event.order.order_id == orders[path].order_id
        assert event.order.status == OrderStatus.PENDING and event.order == orders[path]
    assert all(webhook_id == event.event_id for _p, webhook_id, event in receiver.accepted)

    good = client.deliveries(order_id=orders["/v2"].order_id)
    assert [(d.outcome, d.response_status, d.event_status) for d in good.items] == [
        ("success", 204, "delivered")
    ]
    assert good.items[0].event_id == accepted["/v2"].event_id
    refused = client.deliveries(order_id=orders["/wrong"].order_id).items[0]
    assert (refused.outcome, refused.response_status) == ("failure", 400)
    assert refused.response_body == "bad signature" and refused.event_status == "pending"
    assert len(client.deliveries(limit=2).items) == 2

    # Resend a delivered event: the receiver gets the same event id again, freshly signed.
    assert client.resend_webhook(event_id=accepted["/v2"].event_id) == 1
    assert deliver(gateway) == 1
    assert [i for p, i, _e in receiver.accepted if p == "/v2"] == [accepted["/v2"].event_id] * 2
    assert client.resend_webhook(failed=True) == 0  # the refused one is still retrying
    with pytest.raises(NotFound):
        client.resend_webhook(event_id="evt_not_mine")
