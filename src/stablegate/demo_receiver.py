"""The demo merchant's webhook endpoint: verifies each delivery's V2 signature and that the body
names the demo merchant (``merchantId``), and prints it."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stablegate.merchants.service import NewMerchant
from stablegate.webhooks.signing import sign_v2


def receiver_app(
    merchant: Callable[[], NewMerchant], report: Callable[[str], None], completed: asyncio.Event
) -> Starlette:
    async def receive(request: Request) -> Response:
        body = await request.body()
        sent_time = request.headers.get("BlockATM-Request-Time", "")
        expected = sign_v2(merchant().webhook_secret, sent_time, body)
        offered = request.headers.get("BlockATM-Signature-V2", "").split(",")
        signed = any(hmac.compare_digest(expected, value.strip()) for value in offered)
        event = json.loads(body) if signed else {}
        # A receiver also checks that the body is for its merchant (see docs/WEBHOOKS.md).
        mine = event.get("merchantId") == merchant().merchant_id
        if not mine:
            event = {}
        if event.get("type") == "order.completed":
            completed.set()
        status = event.get("data", {}).get("status", "?")
        verdict = "valid" if mine else "INVALID" if not signed else "valid, OTHER merchant"
        report(
            f"  webhook {event.get('type', '?')} (order {status}), signature {verdict}, "
            f"Webhook-Id {request.headers.get('Webhook-Id')}"
        )
        return Response(status_code=204 if mine else 401)

    return Starlette(routes=[Route("/webhooks", receive, methods=["POST"])])


async def wait_listening(server: object, task: asyncio.Task[None]) -> None:
    while not getattr(server, "started", False):
        if task.done():
            task.result()
            raise RuntimeError("the demo webhook receiver stopped during start-up")
        await asyncio.sleep(0.02)
