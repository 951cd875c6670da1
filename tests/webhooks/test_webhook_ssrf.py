"""The SSRF guard on notify URLs: addresses, resolution, pinning, TLS names and redirects."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from tests.support import LiveServer, MerchantKeys
from tests.webhooks.webhook_support import (
    Receiver,
    create_orders,
    events_by_id,
    make_worker,
    set_merchant_url,
)

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.models import WebhookDelivery
from stablegate.outbound import (
    BlockedDestination,
    DestinationError,
    Resolver,
    is_public_address,
    resolve_target,
)
from stablegate.outbound_streams import asyncio_transport
from stablegate.webhooks.worker import CLIENT_LIMITS

PRIVATE = [
    "127.0.0.1",
    "127.255.0.9",
    "10.0.0.1",
    "10.255.255.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.0.1",
    "192.168.255.255",
    "169.254.169.254",
    "100.64.0.1",
    "100.127.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "192.0.0.8",
    "198.18.0.1",
    "198.19.255.255",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "2001:db8::1",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


def url_for(address: str, scheme: str = "http") -> str:
    host = f"[{address}]" if ":" in address else address
    return f"{scheme}://{host}/hook"


@pytest.mark.parametrize("address", PRIVATE)
async def test_non_public_literals_are_refused(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))
    with pytest.raises(BlockedDestination, match="not a public address"):
        await resolve_target(url_for(address), allow_private=False)


@pytest.mark.parametrize("address", PUBLIC)
async def test_public_literals_are_pinned(address: str) -> None:
    target = await resolve_target(url_for(address, "https"), allow_private=False)
    ip = ipaddress.ip_address(address)
    # An IPv4-mapped address is dialled as the IPv4 address it stands for.
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    assert target.address == str(mapped or ip)


def resolver_to(*addresses: str) -> tuple[list[tuple[str, int]], Resolver]:
    calls: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> Sequence[str]:
        calls.append((host, port))
        return list(addresses)

    return calls, resolve


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "fc00::7"])
async def test_a_name_that_resolves_to_a_private_address_is_refused(address: str) -> None:
    calls, resolve = resolver_to(address)
    with pytest.raises(BlockedDestination, match=r"hooks\.example\.com resolves to"):
        await resolve_target("https://hooks.example.com/x", allow_private=False, resolver=resolve)
    assert calls == [("hooks.example.com", 443)]


async def test_the_system_resolver_is_used_by_default() -> None:
    # localhost resolves (from /etc/hosts) to loopback only.
    with pytest.raises(BlockedDestination, match=r"localhost resolves to"):
        await resolve_target("http://localhost:8080/x", allow_private=False)
    target = await resolve_target("http://localhost:8080/x", allow_private=True)
    assert ipaddress.ip_address(target.address).is_loopback
    assert target.host_header == "localhost:8080"


async def test_one_private_record_among_public_ones_is_refused() -> None:
    _, resolve = resolver_to("93.184.216.34", "10.0.0.5")
    with pytest.raises(BlockedDestination):
        await resolve_target("http://shop.example/x", allow_private=False, resolver=resolve)


async def test_resolution_failure_is_an_error_not_a_crash() -> None:
    async def failing(host: str, port: int) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(DestinationError, match="does not resolve"):
        await resolve_target("http://nowhere.invalid/", allow_private=False, resolver=failing)


@pytest.mark.parametrize(
    "url",
    ["ftp://8.8.8.8/x", "file:///etc/passwd", "gopher://8.8.8.8:70/", "javascript:alert(1)"],
)
async def test_only_http_and_https(url: str) -> None:
    with pytest.raises(DestinationError):
        await resolve_target(url, allow_private=True)


async def test_allow_private_lifts_only_the_address_check() -> None:
    target = await resolve_target("http://127.0.0.1:8080/x", allow_private=True)
    assert target.address == "127.0.0.1"
    with pytest.raises(BlockedDestination):
        await resolve_target("ftp://127.0.0.1/x", allow_private=True)


async def test_the_request_goes_to_the_pinned_address_with_the_name_as_host_and_sni(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    calls, resolve = resolver_to("93.184.216.34")
    await set_merchant_url(gateway, merchant.merchant_id, "https://Hooks.Example.com:8443/in?x=1")
    await create_orders(gateway, clock, merchant.merchant_id, 1)
    async with make_worker(
        gateway,
        clock,
        allow_private=False,
        resolver=resolve,
        http_client_factory=lambda: httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    ) as worker:
        assert await worker.run_once() == 1
    [request] = seen
    assert calls == [("hooks.example.com", 8443)]  # resolved exactly once
    assert request.url.host == "93.184.216.34" and request.url.port == 8443
    assert request.url.raw_path == b"/in?x=1"
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert [e.status for e in (await events_by_id(gateway)).values()] == ["delivered"]


async def test_a_blocked_url_is_a_logged_failed_attempt(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    with Receiver(clock) as receiver:
        await set_merchant_url(gateway, merchant.merchant_id, receiver.url())
        [[event_id]] = await create_orders(gateway, clock, merchant.merchant_id, 1)
        async with make_worker(gateway, clock, allow_private=False) as worker:
            assert await worker.run_once() == 1
        assert receiver.snapshot() == []
    async with session_scope(gateway.sessions) as session:
        [row] = (await session.scalars(select(WebhookDelivery))).all()
    assert row.outcome == "error" and row.response_status is None
    assert row.error is not None and "127.0.0.1 is not a public address" in row.error
    event = (await events_by_id(gateway))[event_id]
    assert event.status == "pending" and event.attempts == 1
    assert event.next_attempt_at_ms >= clock.now_ms() + 10_000


@pytest.fixture
def redirector() -> Iterator[tuple[LiveServer, list[str]]]:
    """Answers /to/<where> with a 302 to that place; records hits on /target."""
    target_hits: list[str] = []

    async def redirect(request: Request) -> Response:
        where = request.path_params["where"]
        port = request.url.port
        locations = {
            "loopback": f"http://127.0.0.1:{port}/target",
            "metadata": "http://169.254.169.254/latest/meta-data/",
            "private": "http://10.0.0.1/admin",
            "ipv6": f"http://[::1]:{port}/target",
        }
        return RedirectResponse(locations[where], status_code=302)

    async def target(request: Request) -> Response:
        target_hits.append(request.method)
        return PlainTextResponse("reached")

    app = Starlette(
        routes=[
            Route("/to/{where}", redirect, methods=["POST"]),
            Route("/target", target, methods=["GET", "POST"]),
        ]
    )
    with LiveServer(app) as server:
        yield server, target_hits


@pytest.mark.parametrize("where", ["loopback", "metadata", "private", "ipv6"])
async def test_redirects_are_never_followed(
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    redirector: tuple[LiveServer, list[str]],
    where: str,
) -> None:
    server, target_hits = redirector
    # allow_private: the redirector itself is local; the point is the 302 is not followed.
    await set_merchant_url(gateway, merchant.merchant_id, f"{server.url}/to/{where}")
    [[event_id]] = await create_orders(gateway, clock, merchant.merchant_id, 1)
    async with make_worker(gateway, clock, allow_private=True) as worker:
        assert await worker.run_once() == 1
    assert target_hits == []
    async with session_scope(gateway.sessions) as session:
        [row] = (await session.scalars(select(WebhookDelivery))).all()
    assert row.outcome == "failure" and row.response_status == 302
    event = (await events_by_id(gateway))[event_id]
    assert event.status == "pending" and event.attempts == 1


def _tls_files(tmp_path: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for ``name``: (ca.pem, cert.pem, key.pem)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stablegate test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path, list[str]]]:
    """A real HTTPS server on 127.0.0.1 whose certificate names hooks.test only."""
    ca, cert, key = _tls_files(tmp_path, "hooks.test")
    hosts: list[str] = []

    async def hook(request: Request) -> Response:
        hosts.append(request.headers["host"])
        return PlainTextResponse("ok")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        Starlette(routes=[Route("/hook", hook, methods=["POST"])]),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "TLS server did not start"
        time.sleep(0.02)
    yield port, ca, hosts
    server.should_exit = True
    thread.join(timeout=30)


@pytest.mark.parametrize("io", ["anyio", "asyncio streams"])
@pytest.mark.parametrize(("name", "verified"), [("hooks.test", True), ("other.test", False)])
async def test_https_to_a_pinned_address_verifies_the_certificate_for_the_name(
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    tls_server: tuple[int, Path, list[str]],
    name: str,
    verified: bool,
    io: str,
) -> None:
    port, ca, hosts = tls_server
    trust = ssl.create_default_context(cafile=str(ca))
    _, resolve = resolver_to("127.0.0.1")
    await set_merchant_url(gateway, merchant.merchant_id, f"https://{name}:{port}/hook")
    [[event_id]] = await create_orders(gateway, clock, merchant.merchant_id, 1)
    async with make_worker(
        gateway,
        clock,
        resolver=resolve,
        # httpx's own I/O, and the worker's default one (outbound_streams) with this CA
        http_client_factory=lambda: (
            httpx.AsyncClient(verify=trust, trust_env=False)
            if io == "anyio"
            else httpx.AsyncClient(
                transport=asyncio_transport(CLIENT_LIMITS, verify=trust), trust_env=False
            )
        ),
    ) as worker:
        assert await worker.run_once() == 1
    event = (await events_by_id(gateway))[event_id]
    async with session_scope(gateway.sessions) as session:
        [row] = (await session.scalars(select(WebhookDelivery))).all()
    if verified:
        assert event.status == "delivered" and row.outcome == "success"
        assert hosts == [f"hooks.test:{port}"]
    else:
        # The certificate does not name other.test: the connection is refused, nothing sent.
        assert event.status == "pending" and row.outcome == "error"
        assert row.error is not None and "ConnectError" in row.error
        assert "certificate" in row.error.lower()
        assert hosts == []
