"""`stablegate demo`: a whole payment on a local dev chain, as a merchant and a customer see it.

Starts the dev chain and the embedded gateway, creates a demo merchant, creates an order
through the signed API, pays it from a test account, waits until the watcher completes it,
sweeps the deposit contract to the merchant's payout address, and prints what happened with
balances before and after. Then it keeps serving (or exits with ``--exit-when-done``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from cryptography.fernet import Fernet
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from stablegate.auth.signatures import sign_v2
from stablegate.auth.signing import signing_string
from stablegate.chain.anvil import ANVIL_DEFAULT_KEYS
from stablegate.chain.devchain import start_devchain
from stablegate.chain.evm.contracts import tether_token
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import eth_call, transact
from stablegate.compat.callbacks import callback_formats
from stablegate.config import Settings
from stablegate.dashboard.accounts import add_owner
from stablegate.dashboard.passwords import hash_password
from stablegate.db.engine import session_scope
from stablegate.demo_receiver import receiver_app, wait_listening
from stablegate.embedded import EmbeddedServer, Worker, serve_api
from stablegate.merchants.service import NewMerchant, create_merchant
from stablegate.models.order import OrderStatus
from stablegate.money import format_amount
from stablegate.sweeper.commands import run_sweepers
from stablegate.watcher.options import WatcherOptions
from stablegate.watcher.runner import run_watchers
from stablegate.webhooks.worker import WebhookWorker

DEMO_AMOUNT = "25.5"
# anvil's default account 1 pays as the customer and 9 is the sweeper's relayer (it only
# needs gas). The merchant's payout wallet is a fresh address, so its balance starts at 0.
CUSTOMER_KEY = ANVIL_DEFAULT_KEYS[1]
RELAYER_KEY = ANVIL_DEFAULT_KEYS[9]
PAYOUT_ADDRESS = Account.from_key(keccak(text="stablegate demo payout wallet")).address
# The demo merchant's dashboard log-in (its password is new each run and printed).
DASHBOARD_EMAIL = "demo@shop.example"


@dataclass
class DemoResult:
    order_id: str
    status: str
    swept: bool
    balances_before: dict[str, int]
    balances_after: dict[str, int]


def demo_settings(base: Settings, data_dir: Path, chains_file: Path, port: int) -> Settings:
    return base.model_copy(
        update={
            "data_dir": data_dir,
            "database_url": f"sqlite+aiosqlite:///{data_dir / 'demo.db'}",
            "chains_file": chains_file,
            "public_url": f"http://127.0.0.1:{port}",
            "secret_key": SecretStr(Fernet.generate_key().decode()),
            "allow_private_webhooks": True,
            "relayer_key": SecretStr(RELAYER_KEY),
            "watcher_lease_ttl_ms": 5_000,
        }
    )


class SignedApi:
    """The merchant's side: every request signed as docs/DESIGN.md §2 says (V2 here)."""

    def __init__(self, base_url: str, api_key: str, secret: str) -> None:
        self.client = httpx.AsyncClient(base_url=base_url, timeout=10)
        self.api_key = api_key
        self.secret = secret.encode()

    def _headers(self, method: str, path: str, query: str, body: bytes) -> dict[str, str]:
        now = str(int(time.time() * 1000))
        message = signing_string(self.api_key, now, "30000", method, path, query, body)
        return {
            "BlockATM-API-Key": self.api_key,
            "BlockATM-Request-Time": now,
            "BlockATM-Rec_Window": "30000",
            "BlockATM-Signature-V2": sign_v2(self.secret, message),
            "Content-Type": "application/json",
        }

    async def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        response = await self.client.post(
            path, content=body, headers=self._headers("POST", path, "", body)
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def get(self, path: str, query: str) -> dict[str, Any]:
        response = await self.client.get(
            f"{path}?{query}", headers=self._headers("GET", path, query, b"")
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def aclose(self) -> None:
        await self.client.aclose()


async def token_balance(rpc: RpcClient, token: str, owner: str) -> int:
    usdt = tether_token()
    data = await eth_call(rpc, token, usdt.encode_call("balanceOf", owner))
    return int(usdt.decode_result("balanceOf", data)[0])


async def run_demo(
    base: Settings,
    *,
    port: int = 8000,
    exit_when_done: bool = False,
    console: Console | None = None,
    workers: list[Worker] | None = None,
    wait_seconds: float = 120.0,
) -> DemoResult:
    console = console or Console()
    data_dir = (base.data_dir / "demo").resolve()
    shutil.rmtree(data_dir, ignore_errors=True)  # a fresh chain needs a fresh database
    data_dir.mkdir(parents=True)
    console.print("[bold]stablegate demo[/bold]: starting a local dev chain (anvil)...")
    devchain = await start_devchain(data_dir, block_time=1)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[Any]] = []
    try:
        settings = demo_settings(base, data_dir, devchain.chains_file, port)
        ctx, api_task = await serve_api(settings, "127.0.0.1", port, stop)
        tasks.append(api_task)
        watchers = asyncio.create_task(
            run_watchers(
                settings,
                ctx.registry,
                ctx.sessions,
                ctx.clock,
                stop,
                options=WatcherOptions(poll_interval=0.25, lease_ttl_ms=5_000),
            )
        )
        tasks.append(watchers)
        deliveries = WebhookWorker(
            ctx.sessions,
            ctx.clock,
            settings,
            ctx.secret_box,
            ctx.signing_key,
            callback_formats=callback_formats(),
        )
        tasks.append(asyncio.create_task(deliveries.run_forever(stop)))
        tasks += [asyncio.create_task(worker(ctx, stop)) for worker in workers or []]
        console.print(f"gateway listening on {settings.public_url}; chain {devchain.rpc_url}")

        shop: list[NewMerchant] = []  # set once the merchant exists, before any webhook
        completed_webhook = asyncio.Event()
        receiver = EmbeddedServer(
            uvicorn.Config(
                receiver_app(lambda: shop[0], console.print, completed_webhook),
                host="127.0.0.1",
                port=0,  # any free port: a fixed neighbour of the API's may be taken
                log_level="warning",
                access_log=False,
                proxy_headers=False,
            )
        )
        receiver_task = asyncio.create_task(receiver.serve())
        tasks.append(receiver_task)
        await wait_listening(receiver, receiver_task)
        receiver_port = int(receiver.servers[0].sockets[0].getsockname()[1])

        async def stop_receiver() -> None:
            await stop.wait()
            receiver.should_exit = True

        tasks.append(asyncio.create_task(stop_receiver()))

        password = secrets.token_urlsafe(12)
        password_hash = await hash_password(password)
        async with session_scope(ctx.sessions) as session:
            merchant = await create_merchant(
                session,
                ctx.secret_box,
                ctx.clock,
                name="Demo Shop",
                payout_address=PAYOUT_ADDRESS,
                chain_ids=[devchain.chain_id],
                notify_url=f"http://127.0.0.1:{receiver_port}/webhooks",
            )
            await add_owner(
                session,
                ctx.clock,
                merchant.merchant_id,
                DASHBOARD_EMAIL,
                password_hash,
                verified=True,
            )
        shop.append(merchant)
        console.print(f"merchant {merchant.merchant_id}, payout address {PAYOUT_ADDRESS}")
        dashboard_login = (
            f"dashboard: {settings.public_url}/dashboard/login "
            f"(email {DASHBOARD_EMAIL}, password {password})"
        )
        console.print(dashboard_login)

        api = SignedApi(settings.public_url, merchant.api_key, merchant.secret_key)
        order = await api.post(
            "/api/v1/payment/createQrOrder",
            {
                "chainId": devchain.chain_id,
                "symbol": "USDT",
                "amount": DEMO_AMOUNT,
                "orderNo": "demo-1",
                "description": "stablegate demo order",
            },
        )
        console.print(
            f"order {order['orderId']}: pay {order['amount']} {order['symbol']} to "
            f"{order['toAddress']}\n  cashier: {order['cashierUrl']}"
        )

        usdt = devchain.tokens["USDT"]
        customer: LocalAccount = Account.from_key(CUSTOMER_KEY)
        rpc = RpcClient([devchain.rpc_url])
        holders = {
            "customer": customer.address,
            "deposit": order["toAddress"],
            "payout": PAYOUT_ADDRESS,
        }
        before = {name: await token_balance(rpc, usdt, a) for name, a in holders.items()}
        units = int(order["paymentUri"].rsplit("uint256=", 1)[1])
        receipt = await transact(
            rpc, customer, usdt, tether_token().encode_call("transfer", order["toAddress"], units)
        )
        console.print(f"customer paid: tx {receipt['transactionHash']}")

        deadline = time.monotonic() + wait_seconds
        status = order["status"]
        while status != OrderStatus.COMPLETED:
            if time.monotonic() > deadline:
                raise TimeoutError(f"order still {status} after {wait_seconds:.0f} s")
            await asyncio.sleep(0.5)
            current = await api.get(
                "/api/v1/payment/contractPayment", f"orderId={order['orderId']}"
            )
            if current["status"] != status:
                status = current["status"]
                console.print(
                    f"  order is {status} (paid {current['paidAmount']}, "
                    f"pending {current['pendingAmount']}, confirmations {current['confirmations']})"
                )

        console.print("sweeping the deposit contract to the payout address (relayer pays gas)...")
        reports = await run_sweepers(
            settings, ctx.registry, ctx.sessions, ctx.clock, stop, once=True
        )
        for report in reports.get(devchain.chain_id, []):
            if report.detail:
                console.print(f"  sweeper: {report.outcome} {report.detail}")
        swept = await token_balance(rpc, usdt, order["toAddress"]) == 0
        final = await api.get("/api/v1/payment/contractPayment", f"orderId={order['orderId']}")
        console.print(f"  order {final['status']}, paid {final['paidAmount']} {final['symbol']}")
        # Wait for the signed order.completed webhook, as the shop gets it.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(completed_webhook.wait(), max(deadline - time.monotonic(), 1))
        after = {name: await token_balance(rpc, usdt, a) for name, a in holders.items()}
        _print_balances(console, before, after)
        result = DemoResult(order["orderId"], status, swept, before, after)
        await api.aclose()
        await rpc.aclose()
        if not exit_when_done:
            console.print(
                f"\nThe gateway keeps running: open {order['cashierUrl']} or create more orders "
                f"(API key {merchant.api_key}, secret {merchant.secret_key}). Ctrl-C stops.\n"
                f"See the order in the {dashboard_login}"
            )
            await _wait_for_signal(stop)
        return result
    finally:
        stop.set()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=10)
            for task in pending:
                task.cancel()
        await asyncio.to_thread(devchain.stop)


def _print_balances(console: Console, before: dict[str, int], after: dict[str, int]) -> None:
    table = Table("USDT balance", "before", "after")
    for name, amount in before.items():
        table.add_row(name, format_amount(amount, 6), format_amount(after[name], 6))
    console.print(table)


async def _wait_for_signal(stop: asyncio.Event) -> None:
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
