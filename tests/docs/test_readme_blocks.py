"""Every fenced code block of README.md and clients/python/README.md runs, as written, against a
live gateway (tests/docs/docs_gateway.py: ``stablegate run`` with BNB Smart Chain on anvil).

Each guide's blocks run in order, python blocks in one namespace per guide and shell blocks with
bash; the only changes are the reader's own values put where a block shows a placeholder
(``ak_…``, ``https://pay.example.com``), and the test fails when a placeholder disappears. A new
block fails :func:`test_every_block_is_run_or_skipped_with_a_reason` until a test runs it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.clients.live_gateway import run_in_fresh_loop
from tests.conftest import REDIS_URL
from tests.docs.docs_gateway import GAS_KEY, GUIDE_CHAIN_ID, DocsGateway, cli_json, free_port
from tests.docs_support import Block, blocks, fill, run_shell, tool_env
from tests.support import PAYOUT
from tests.webhooks.webhook_support import Hit, Receiver

from stablegate.chain.registry import load_registry
from stablegate.clock import SystemClock

README = "README.md"
SDK_README = "clients/python/README.md"

# Blocks no test can run, by the start of their first line, with the reason.
SKIPPED = {
    # tests/e2e/test_demo.py runs `make demo`; `make test` runs this very suite.
    (README, "make demo"): "the two commands",
    # The tests use this checkout's clients/python/src; installing is not theirs to do.
    (SDK_README, "pip install stablegate-client"): "installs a package",
}
# Every other block, by the start of its first line: the name the tests below use for it.
RUN = {
    README: {
        "stablegate merchant create": "merchant create",
        "import os": "key pair",
        "stablegate merchant add-public-key": "add public key",
        "import base64, hashlib, json, time, uuid": "signed requests",
        "import base64, binascii, hashlib, hmac, json, time": "webhook verifiers",
        "# chains.toml, pointed to by STABLEGATE_CHAINS_FILE": "chains file",
        "export STABLEGATE_DATABASE_URL": "postgres and redis",
        "stablegate devchain": "devchain",
        "export STABLEGATE_CHAINS_FILE=.stablegate/devchain": "on the devchain",
    },
    SDK_README: {
        "stablegate-client keygen": "keygen",
        "from decimal import Decimal": "create order",
        'order = client.get_order(order_no="shop-1042")': "query list cancel",
        "import os": "webhook receiver",
        "export STABLEGATE_CLIENT_PRIVATE_KEY": "flush command",
        "import os\n\nfrom stablegate_client import flush": "flush from python",
    },
}
SHOP_HOOK = "https://shop.example.com/stablegate/webhook"


def named_blocks(doc: str) -> dict[str, Block]:
    """The doc's blocks by their name in :data:`RUN` (skipped blocks left out)."""
    found: dict[str, Block] = {}
    for block in blocks(doc):
        if any(d == doc and block.marker.startswith(p) for d, p in SKIPPED):
            continue
        # The longest matching key names the block ("import os\n\nfrom …" before "import os").
        keys = [k for k in RUN[doc] if block.text.startswith(k)]
        assert keys, f"{block.where} ({block.marker!r}) is neither run nor skipped"
        name = RUN[doc][max(keys, key=len)]
        assert name not in found, f"{block.where}: two blocks are {name!r}"
        found[name] = block
    return found


def test_every_block_is_run_or_skipped_with_a_reason() -> None:
    for doc in (README, SDK_README):
        found = named_blocks(doc)
        assert sorted(found) == sorted(RUN[doc].values()), f"{doc}: a listed block is gone"
        skipped = [
            b for b in blocks(doc) if any(b.marker.startswith(p) for d, p in SKIPPED if d == doc)
        ]
        assert len(skipped) == sum(1 for d, _ in SKIPPED if d == doc)
    assert len(SKIPPED) <= 3, "run blocks rather than skip them"


def run_python(
    block: Block, namespace: dict[str, Any], values: dict[str, str] | None = None
) -> None:
    exec(compile(fill(block, values or {}), block.where, "exec"), namespace)


def wait_for_hit(
    receiver: Receiver,
    path: str,
    order_id: str,
    status: int | None = None,
    event_id: str | None = None,
) -> Hit:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for hit in receiver.snapshot():
            if (
                hit.path == path
                and order_id.encode() in hit.body
                and status in (None, hit.status)
                and event_id in (None, hit.event_id)
            ):
                return hit
        time.sleep(0.1)
    raise AssertionError(f"no webhook for {order_id} at {path}: {receiver.snapshot()}")


def forged(hit: Hit) -> bytes:
    """The delivered body with the amount raised: what a forger would send with its headers."""
    event = json.loads(hit.body)
    assert event["data"]["amount"], event
    event["data"]["amount"] = "2500.00"
    return json.dumps(event, separators=(",", ":")).encode()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocsGateway]:
    with DocsGateway(tmp_path_factory.mktemp("docs-gateway")) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(SystemClock()) as server:
        yield server


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The reader's working directory: key files land here."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


pytestmark = pytest.mark.anvil


def test_the_readme_guide(gateway: DocsGateway, receiver: Receiver, shop: Path) -> None:
    b = named_blocks(README)
    default_hook, order_hook = receiver.url("default"), receiver.url("order")
    # 1. The operator creates the merchant, with a default webhook URL.
    created = run_shell(
        fill(b["merchant create"], {"0xYourSafeOrWallet": PAYOUT, SHOP_HOOK: default_hook}),
        shop,
        gateway.env,
    )
    keys = cli_json(created)
    # 2. One key pair; the private key is readable by its owner only.
    guide: dict[str, Any] = {"__name__": "readme"}
    run_python(b["key pair"], guide)
    assert (shop / "merchant-key.pem").stat().st_mode & 0o777 == 0o600
    run_shell(fill(b["add public key"], {"ak_…": str(keys["apiKey"])}), shop, gateway.env)
    # 3. A signed create (V1, the only signature the key now takes) and a signed read.
    values = {
        '"https://pay.example.com"': repr(gateway.url),
        '"ak_…"': repr(keys["apiKey"]),
        SHOP_HOOK: order_hook,
    }
    run_python(b["signed requests"], guide, values)
    order = guide["order"]
    assert order["chainId"] == str(GUIDE_CHAIN_ID) and order["status"] == "pending", order
    assert order["cashierUrl"].startswith(gateway.url)
    # 4. The verifiers, given the webhook the gateway delivered to the order's notifyUrl.
    run_python(b["webhook verifiers"], guide)
    hit = wait_for_hit(receiver, "/order", order["orderId"])
    pem = httpx.get(gateway.url + "/api/v1/public/signing-key").json()["publicKeyPem"].encode()
    mine = str(keys["merchantId"])
    headers = httpx.Headers(hit.headers)
    event = guide["verify_v1"](headers, hit.body, pem, mine)
    assert event is not None and event["type"] == "order.created"
    assert guide["verify_v2"](headers, hit.body, str(keys["webhookSecret"]), mine) == event
    assert guide["verify_v1"](headers, forged(hit), pem, mine) is None
    assert guide["verify_v2"](headers, forged(hit), str(keys["webhookSecret"]), mine) is None
    assert guide["verify_v1"](headers, hit.body, pem, "mch_someone_else") is None


def test_the_sdk_guide(
    gateway: DocsGateway, receiver: Receiver, shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = named_blocks(SDK_README)
    hook = receiver.url("stablegate/webhook")
    # The operator's part, which the guide describes in words.
    keys = cli_json(
        run_shell(
            f"stablegate merchant create --name 'SDK Shop' --payout-address {PAYOUT} "
            f"--chain {GUIDE_CHAIN_ID} --json",
            shop,
            gateway.env,
        )
    )
    monkeypatch.setenv("STABLEGATE_MERCHANT_ID", str(keys["merchantId"]))
    monkeypatch.setenv("STABLEGATE_WEBHOOK_SECRET", str(keys["webhookSecret"]))
    # 1. keygen (private key 0600) and the operator registers the public key.
    run_shell(fill(b["keygen"], {"ak_…": str(keys["apiKey"])}), shop, gateway.env)
    assert (shop / "merchant-key.pem").stat().st_mode & 0o777 == 0o600
    # 2. and 3.: create, query, list, cancel.
    guide: dict[str, Any] = {"__name__": "sdk-readme"}
    values = {
        '"https://pay.example.com"': repr(gateway.url),
        '"ak_…"': repr(keys["apiKey"]),
        SHOP_HOOK: hook,
    }
    run_python(b["create order"], guide, values)
    created = guide["order"]
    assert created.order_no == "shop-1042" and created.status == "pending"
    run_python(b["query list cancel"], guide)
    client = guide["client"]
    assert client.get_order(order_no="shop-1042").status == "cancelled"
    # 4. The receiver, fed the webhooks the gateway delivered and then delivering live into it.
    handled: list[tuple[str, Any]] = []
    guide["already_processed"] = lambda event_id: event_id in {e for e, _ in handled}
    guide["handle"] = lambda kind, order: handled.append((kind, order))
    run_python(b["webhook receiver"], guide)
    delivered = wait_for_hit(receiver, "/stablegate/webhook", created.order_id)

    async def post(body: bytes, headers: dict[str, str]) -> int:
        transport = httpx.ASGITransport(app=guide["app"])
        async with httpx.AsyncClient(transport=transport, base_url="https://shop.example.com") as c:
            return (await c.post("/stablegate/webhook", content=body, headers=headers)).status_code

    assert run_in_fresh_loop(lambda: post(delivered.body, delivered.headers)) == 204
    assert run_in_fresh_loop(lambda: post(forged(delivered), delivered.headers)) == 400
    assert [kind for kind, _ in handled] == ["order.created"]
    assert handled[0][1].order_no == "shop-1042"

    async def into_the_shop(hit: Hit) -> int:
        return await post(hit.body, hit.headers)

    receiver.respond = into_the_shop
    assert client.resend_webhook(event_id=delivered.event_id) == 1
    # The resent event, not a later one of the order (its cancellation's may arrive meanwhile).
    redelivered = wait_for_hit(
        receiver,
        "/stablegate/webhook",
        created.order_id,
        status=204,
        event_id=delivered.event_id,
    )
    assert redelivered.event_id == delivered.event_id
    # 5. Collecting the deposit without the gateway: the command, then the function.
    order = guide["order"]
    payout_before = gateway.balance(PAYOUT)
    gateway.pay(order.to_address, 25_000_000)
    flushed = run_shell(
        fill(
            b["flush command"],
            {
                "0x…": GAS_KEY,
                "https://bsc-rpc.example.net": gateway.rpc_url,
                "0xFactory…": order.factory,
                "0xYourPayout…": order.payout_address,
                "0xDepositSalt…": order.deposit_salt,
                "0x55d3…7955": order.token_address,
            },
        ),
        shop,
        gateway.env,
    )
    assert "moved 25000000 base units" in flushed, flushed
    gateway.pay(order.to_address, 5_000_000)
    monkeypatch.setenv("STABLEGATE_CLIENT_PRIVATE_KEY", GAS_KEY)
    run_python(b["flush from python"], guide, {"https://bsc-rpc.example.net": gateway.rpc_url})
    assert guide["result"].tx_hash and guide["result"].deployed is False
    assert gateway.balance(PAYOUT) - payout_before == 30_000_000


def test_the_chains_file_example_loads(tmp_path: Path) -> None:
    block = named_blocks(README)["chains file"]
    path = tmp_path / "chains.toml"
    path.write_text(fill(block, {"0x…": PAYOUT}), "utf-8")
    registry = load_registry(path)
    bsc, sepolia = registry.get(56), registry.get(11155111)
    assert bsc is not None and len(bsc.rpc_urls) == 2 and bsc.tokens
    assert sepolia is not None and [t.symbol for t in sepolia.tokens] == ["USDT"]


@pytest.mark.postgres
@pytest.mark.redis
def test_the_postgres_and_redis_steps_start_a_serving_gateway(
    tmp_path: Path, postgres_database: str
) -> None:
    port = free_port()
    script = fill(
        named_blocks(README)["postgres and redis"],
        {
            "postgresql+asyncpg://stablegate@db.internal/stablegate": postgres_database,
            "redis://cache.internal:6379/0": REDIS_URL,
            "--host 0.0.0.0 --port 8000": f"--host 127.0.0.1 --port {port}",
        },
    )
    env = tool_env({"STABLEGATE_DATA_DIR": str(tmp_path / "data")})
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
    assert "database is at the latest migration" in (tmp_path / "serve.log").read_text()


def test_the_devchain_steps_give_a_gateway_whose_chain_keeps_finalising(tmp_path: Path) -> None:
    """Issue 9, item 7: the two terminals of "A local dev chain", as written."""
    b = named_blocks(README)
    env = tool_env({"STABLEGATE_LOG_LEVEL": "WARNING"})
    port = free_port()
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("devchain", "gateway")}
    devchain = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", b["devchain"].text],
        cwd=tmp_path,
        env=env,
        stdout=logs["devchain"],
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    gateway: subprocess.Popen[bytes] | None = None
    try:
        chains_file = tmp_path / ".stablegate" / "devchain" / "devchain-chains.toml"
        deadline = time.monotonic() + 60
        while not chains_file.exists():
            assert devchain.poll() is None and time.monotonic() < deadline, (
                tmp_path / "devchain.log"
            ).read_text()
            time.sleep(0.2)
        chain = load_registry(chains_file).get(31337)
        assert chain is not None and (chain.block_time, chain.confirmations) == (1, 2)
        script = fill(
            b["on the devchain"],
            {"0xYourSafeOrWallet": PAYOUT, "--port 8000": f"--port {port}"},
        )
        gateway = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            stdout=logs["gateway"],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        final: list[int] = []
        while len(set(final)) < 2:  # the watcher sees the final height move on its own
            assert gateway.poll() is None and time.monotonic() < deadline, (
                tmp_path / "gateway.log"
            ).read_text()
            try:
                chains = httpx.get(url + "/api/v1/public/chains", timeout=2).json()
            except httpx.HTTPError:
                time.sleep(0.2)
                continue
            final += [c["finalizedBlock"] for c in chains["chains"] if c["finalizedBlock"]]
            time.sleep(0.5)
        merchant = json.loads((tmp_path / "gateway.log").read_text().splitlines()[0])
        assert merchant["merchantId"].startswith("mch_")
    finally:
        for process in (gateway, devchain):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
        for log in logs.values():
            log.close()
