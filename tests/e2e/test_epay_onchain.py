"""EPay and Epusdt end to end on the dev chain: a shop plugin creates orders in the foreign
formats (priced in CNY at the operator's fixed 7.2 CNY per USDT), the customer pays on chain, the
watcher completes the orders, the webhook worker sends each format's paid callback to the
shop's real HTTP endpoint, which verifies the MD5 signature with a verifier written here from the
EPay and Epusdt documentation and acknowledges the way the plugins do ("ok" exactly, a body
containing "success"); the shop then queries the orders through EPay's api.php.

Real anvil node, real API app, real watcher and webhook worker (retries as rows: the first
answer of each endpoint is not an acknowledgement, and the worker tries again on its schedule).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from tests.chain_files import write_dev_chains_file
from tests.support import NOW_MS, LiveServer
from tests.webhooks.webhook_support import drive, make_worker

from stablegate.api.app import create_app
from stablegate.api.context import GatewayContext
from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm.blocks import fetch_header
from stablegate.chain.evm.contracts import tether_token
from stablegate.chain.evm.deploy import DeployedContracts
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import transact
from stablegate.clock import FakeClock
from stablegate.compat.epay.callbacks import callback_formats
from stablegate.compat.epay.credentials import issue_epay_credential
from stablegate.config import Settings
from stablegate.db.engine import session_scope
from stablegate.merchants.service import create_merchant
from stablegate.migrations import upgrade
from stablegate.models import Order, WebhookDelivery, WebhookEvent
from stablegate.models.rate import GATEWAY_SCOPE
from stablegate.rates import store
from stablegate.watcher.loop import ChainWatcher
from stablegate.watcher.options import WatcherOptions
from stablegate.watcher.reports import StepOutcome

pytestmark = [pytest.mark.anvil, pytest.mark.usefixtures("clean_chain")]


# --- the shop's side, written from the plugins' documentation --------------------------------


def documented_sign(params: dict[str, str], key: str, skip: tuple[str, ...]) -> str:
    """md5 of the non-empty parameters but ``skip``, sorted by name, k=v joined with &, then
    the key appended; lowercase hex."""
    names = sorted(name for name, value in params.items() if name not in skip and value != "")
    text = "&".join(f"{name}={params[name]}" for name in names) + key
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def php_number(value: Any) -> str:
    """How a PHP plugin writes a decoded JSON number into the signed text: 10.0 is "10"."""
    return format(Decimal(str(value)).normalize(), "f")


@dataclass
class ShopEndpoint:
    """The shop's notify URLs. Each answers its first callback with something that is not the
    format's acknowledgement, then acknowledges; every callback is verified and kept."""

    key: str
    epusdt: list[dict[str, Any]] = field(default_factory=list)
    epay: list[dict[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/epusdt/notify", self.epusdt_notify, methods=["POST"]),
                Route("/epay/notify", self.epay_notify, methods=["GET"]),
            ]
        )

    async def epusdt_notify(self, request: Request) -> PlainTextResponse:
        body = json.loads(await request.body(), parse_float=Decimal)
        signed = {name: php_number(v) if not isinstance(v, str) else v for name, v in body.items()}
        expected = documented_sign(signed, self.key, ("signature",))
        if not hmac.compare_digest(expected, str(body.get("signature", ""))):
            with self.lock:
                self.refused.append("epusdt")
            return PlainTextResponse("bad signature")
        with self.lock:
            self.epusdt.append(body)
            first = len(self.epusdt) == 1
        return PlainTextResponse("OK" if first else "ok")  # "OK" is not "ok": retried

    async def epay_notify(self, request: Request) -> PlainTextResponse:
        params = dict(request.query_params)  # as SSPanel reads it: $_GET only
        expected = documented_sign(params, self.key, ("sign", "sign_type"))
        if params.get("sign_type") != "MD5" or not hmac.compare_digest(
            expected, params.get("sign", "")
        ):
            with self.lock:
                self.refused.append("epay")
            return PlainTextResponse("fail")
        with self.lock:
            self.epay.append(params)
            first = len(self.epay) == 1
        return PlainTextResponse("busy" if first else "success")


# --- the gateway -------------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW_MS)


@pytest_asyncio.fixture
async def gateway(
    tmp_path: Path,
    clock: FakeClock,
    anvil: AnvilNode,
    dev_tokens: dict[str, str],
    gateway_contracts: DeployedContracts,
) -> AsyncIterator[tuple[GatewayContext, Any]]:
    chains = write_dev_chains_file(
        tmp_path / "chains.toml", anvil.url, gateway_contracts, dev_tokens
    )
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
        chains_file=chains,
        secret_key=Fernet.generate_key().decode(),
        public_url="https://pay.example.com",
        allow_private_webhooks=True,  # the shop's endpoint is on 127.0.0.1
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings, clock=clock, migrate=True)
    ctx: GatewayContext = app.state.gateway
    await upgrade(ctx.engine)
    yield ctx, app
    await ctx.engine.dispose()


async def watch_until_final(rpc: RpcClient, watcher: ChainWatcher) -> None:
    await rpc.call("anvil_mine", [hex(70)])  # below anvil's finalized tag
    for _ in range(200):
        report = await watcher.step()
        assert report.outcome not in (StepOutcome.RETRY, StepOutcome.FENCED), report
        if report.outcome == StepOutcome.IDLE:
            return
    raise AssertionError("the watcher did not catch up")


@pytest.fixture
def shop() -> Iterator[tuple[ShopEndpoint, LiveServer]]:
    endpoint = ShopEndpoint(key="")
    with LiveServer(endpoint.app()) as server:
        yield endpoint, server


async def test_epusdt_and_epay_orders_priced_in_cny_are_paid_called_back_and_queried(
    gateway: tuple[GatewayContext, Any],
    clock: FakeClock,
    shop: tuple[ShopEndpoint, LiveServer],
    rpc: RpcClient,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
) -> None:
    ctx, app = gateway
    endpoint, server = shop
    header = await fetch_header(rpc, "latest")
    assert header is not None
    clock.set_ms(header.time_ms)  # orders expire in chain time
    chain = ctx.registry.require(31337)
    watcher = ChainWatcher(chain, ctx.sessions, clock, rpc, ctx.orders, options=WatcherOptions())
    assert (await watcher.step()).outcome != StepOutcome.RETRY  # cursor at the head

    async with session_scope(ctx.sessions) as session:
        # `stablegate rates set-fixed --symbol USDT --currency CNY --rate 7.2`
        await store.set_rule(
            session,
            clock,
            scope=GATEWAY_SCOPE,
            symbol="USDT",
            currency="CNY",
            changes={"adjust": "7.2"},
            actor="ops",
        )
        created = await create_merchant(
            session,
            ctx.secret_box,
            clock,
            name="Panel Shop",
            payout_address=Account.create().address,
            chain_ids=[31337],
        )
        # `stablegate merchant create-key --merchant-id … --kind epay`
        credential = await issue_epay_credential(
            session, ctx.secret_box, clock, ctx.registry, merchant_id=created.merchant_id
        )
    pid, key = credential.pid, credential.key
    endpoint.key = key

    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    async with http:
        # Epusdt: 72 CNY, signed over its fields with the amount written as "72".
        request = {
            "order_id": "EP-72",
            "amount": "72",
            "notify_url": f"{server.url}/epusdt/notify",
            "redirect_url": "https://shop.example/paid",
        }
        signature = documented_sign(request, key, ("signature",))
        body = json.dumps({**request, "amount": 72.0, "signature": signature})
        response = await http.post(
            f"/epusdt/{pid}/api/v1/order/create-transaction",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        made = json.loads(response.text, parse_float=Decimal)
        assert made["status_code"] == 200, made
        epusdt_order = made["data"]
        assert (epusdt_order["amount"], epusdt_order["actual_amount"]) == (72, 10)

        # EPay (mapi.php): 36.00 CNY.
        form = {
            "pid": pid,
            "type": "alipay",
            "out_trade_no": "PANEL-36",
            "notify_url": f"{server.url}/epay/notify?from=panel",
            "return_url": "https://shop.example/return",
            "name": "Monthly plan",
            "money": "36.00",
            "param": "uid=42",
        }
        form = {
            **form,
            "sign": documented_sign(form, key, ("sign", "sign_type")),
            "sign_type": "MD5",
        }
        epay_order = (await http.post("/epay/mapi.php", data=form)).json()
        assert epay_order["code"] == 1, epay_order

        # The customer pays both deposit addresses on chain.
        transfers = [(epusdt_order["token"], 10_000_000)]
        async with session_scope(ctx.sessions) as session:
            paid_to = await session.get(Order, epay_order["trade_no"])
            assert paid_to is not None and paid_to.amount == 5_000_000
            transfers.append((paid_to.to_address, paid_to.amount))
        for address, units in transfers:
            call = tether_token().encode_call("transfer", address, units)
            await transact(rpc, customer_accounts[0], dev_tokens["USDT"], call)
        await watch_until_final(rpc, watcher)

        async with make_worker(ctx, clock, callback_formats=callback_formats()) as worker:
            await drive(ctx, clock, [worker], until_ms=clock.now_ms() + 600_000)

        # Each endpoint was called twice (its first answer was no acknowledgement) and verified.
        assert endpoint.refused == []
        assert len(endpoint.epusdt) == 2 and endpoint.epusdt[0] == endpoint.epusdt[1]
        callback = endpoint.epusdt[-1]
        assert {k: callback[k] for k in ("trade_id", "order_id", "amount", "actual_amount")} == {
            "trade_id": epusdt_order["trade_id"],
            "order_id": "EP-72",
            "amount": 72,
            "actual_amount": 10,
        }
        assert callback["token"] == epusdt_order["token"] and callback["status"] == 2
        assert callback["block_transaction_id"].startswith("0x")

        assert len(endpoint.epay) == 2
        notify = endpoint.epay[-1]
        assert notify == {
            "from": "panel",
            "pid": pid,
            "trade_no": epay_order["trade_no"],
            "out_trade_no": "PANEL-36",
            "type": "alipay",
            "name": "Monthly plan",
            "money": "36.00",  # as the shop sent it: dujiaoka compares it with its price
            "trade_status": "TRADE_SUCCESS",
            "param": "uid=42",
            "sign": notify["sign"],
            "sign_type": "MD5",
        }

        # The shop queries both orders in EPay's format: paid.
        for out_trade_no, trade_no, money in (
            ("EP-72", epusdt_order["trade_id"], "72"),
            ("PANEL-36", epay_order["trade_no"], "36.00"),
        ):
            query = {"act": "order", "pid": pid, "key": key, "out_trade_no": out_trade_no}
            answer = (await http.get("/epay/api.php", params=query)).json()
            assert answer["code"] == 1 and answer["status"] == 1, answer
            assert (answer["trade_no"], answer["money"]) == (trade_no, money)
            assert answer["endtime"] is not None

    # Retries were rows: per order, order.created skipped (not a callback), order.completed
    # delivered on its second attempt after a failed first.
    async with session_scope(ctx.sessions) as session:
        rows = (
            await session.execute(
                select(WebhookEvent.order_id, WebhookEvent.type, WebhookEvent.status)
                .where(WebhookEvent.merchant_id == created.merchant_id)
                .order_by(WebhookEvent.order_id, WebhookEvent.sequence)
            )
        ).all()
        outcomes = (
            await session.scalars(
                select(WebhookDelivery.outcome)
                .where(WebhookDelivery.merchant_id == created.merchant_id)
                .order_by(WebhookDelivery.id)
            )
        ).all()
    completed = [(order_id, status) for order_id, kind, status in rows if kind == "order.completed"]
    assert sorted(completed) == sorted(
        [(epusdt_order["trade_id"], "delivered"), (epay_order["trade_no"], "delivered")]
    )
    assert {status for _, kind, status in rows if kind == "order.created"} == {"no_endpoint"}
    assert sorted(outcomes).count("failure") == 2 and sorted(outcomes).count("success") == 2
