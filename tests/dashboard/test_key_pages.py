"""A key's own dashboard page (src/stablegate/dashboard/key_pages.py): what it shows, a P-256
public key registered from PEM text (the key then accepts V1 only), signed reads on and off, the
IP allowlist; each POST checks the CSRF token, is audited, and takes effect for the API's very
next request. The SDK signs V1 with the registered key end to end."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html import unescape

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from markupsafe import escape
from sqlalchemy import select
from stablegate_client import AsyncClient, AuthenticationError, Forbidden, generate_key_pair
from tests.dashboard.dashboard_support import Browser, MailSink, signed_up_and_in
from tests.dashboard.test_escaping import assert_inert
from tests.support import PAYOUT, MerchantKeys, Signer

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.merchants.payout_addresses import set_payout_address
from stablegate.merchants.payout_check import PayoutCodeCheck
from stablegate.merchants.service import public_key_fingerprint
from stablegate.models import ApiKey, ApiPublicKey, AuditEntry, DashboardUser

EMAIL = "owner@shop.example"
LIST = "/api/v1/payment/contractPayment"
CREATE = "/api/v1/payment/createQrOrder"
BROWSER_IP = "203.0.113.7"


@dataclass
class Key:
    key_id: str
    keys: MerchantKeys

    @property
    def page(self) -> str:
        return f"/dashboard/keys/{self.key_id}"


async def _signed_in_with_key(
    browser: Browser, gateway: GatewayContext, mail: MailSink, label: str = "backend"
) -> Key:
    await signed_up_and_in(browser, mail, "Shop", EMAIL)
    created = await browser.post("/dashboard/keys", {"label": label})
    api_key = re.search(r'id="api-key">(ak_[\w-]+)<', created.text)
    secret = re.search(r'id="secret-key">(sk_[\w-]+)<', created.text)
    assert api_key is not None and secret is not None
    async with session_scope(gateway.sessions) as session:
        user = await session.scalar(select(DashboardUser).where(DashboardUser.email == EMAIL))
        assert user is not None
        key_id = await session.scalar(
            select(ApiKey.id).where(ApiKey.merchant_id == user.merchant_id)
        )
    assert key_id is not None
    return Key(key_id, MerchantKeys(user.merchant_id, api_key.group(1), secret.group(1), ""))


@asynccontextmanager
async def _api(app: FastAPI, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    """A merchant backend calling the API from ``ip``."""
    transport = httpx.ASGITransport(app=app, client=(ip, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://pay.example.com") as c:
        yield c


async def _key_row(gateway: GatewayContext, key_id: str) -> ApiKey:
    async with session_scope(gateway.sessions) as session:
        key = await session.get(ApiKey, key_id)
    assert key is not None
    return key


async def _audit(gateway: GatewayContext, action: str) -> list[AuditEntry]:
    async with session_scope(gateway.sessions) as session:
        return list(
            (await session.scalars(select(AuditEntry).where(AuditEntry.action == action))).all()
        )


async def _payout(gateway: GatewayContext, clock: FakeClock, merchant_id: str) -> None:
    async def no_code(chain_ids: list[int], address: str) -> dict[int, bool | None]:
        return {}

    async with session_scope(gateway.sessions) as session:
        await set_payout_address(
            session,
            clock,
            merchant_id=merchant_id,
            chain_id=31337,
            address=PAYOUT,
            payout_code=PayoutCodeCheck(read_code=no_code),
        )


def _public_pem(curve: ec.EllipticCurve | None = None) -> str:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _error(html: str) -> str:
    found = re.search(r'<div class="alert error" role="alert"[^>]*>([^<]*)</div>', html)
    assert found, "the page shows no error"
    return unescape(found.group(1))


async def test_the_page_shows_the_key_and_the_list_shows_its_last_use(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        key = await _signed_in_with_key(browser, gateway, mail, label="shop backend")
        page = await browser.get(key.page)
        assert page.status_code == 200
        assert f"API key {key.keys.api_key[:10]}…" in page.text
        assert "shop backend" in page.text and "2026-01-01 00:00 UTC" in page.text
        assert "Never" in page.text and "Active" in page.text
        assert "V2 (HMAC with the secret key)" in page.text
        assert "No public key is registered." in page.text
        assert key.keys.api_key not in page.text and key.keys.secret_key not in page.text
        listed = await browser.get("/dashboard/keys")
        assert "Last used" in listed.text and "Never" in listed.text
        assert f'href="{key.page}"' in listed.text

        clock.advance(90)
        async with _api(app, "198.51.100.1") as api:
            read = await api.get(LIST, headers={"BlockATM-API-Key": key.keys.api_key})
        assert read.status_code == 200, read.text
        listed = await browser.get("/dashboard/keys")
        assert '<time datetime="2026-01-01T00:01:30Z">2026-01-01 00:01 UTC</time>' in listed.text
        assert "Never" not in listed.text
        assert "2026-01-01 00:01 UTC" in (await browser.get(key.page)).text

        # Revoked: the page still answers, without a form.
        revoked = await browser.post(f"{key.page}/revoke", {}, token_from=key.page)
        assert revoked.status_code == 303
        page = await browser.get(key.page)
        assert page.status_code == 200 and "This key is revoked" in page.text
        assert page.text.count("<form") == 1  # log out only
        assert "Details" in (await browser.get("/dashboard/keys")).text


async def test_a_public_key_makes_the_key_v1_only_at_once(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        key = await _signed_in_with_key(browser, gateway, mail)
        signer = Signer(key.keys, clock)
        page = await browser.get(key.page)
        assert 'data-confirm="After this, requests signed with the secret key (V2) fail' in (
            page.text
        )
        private = ec.generate_private_key(ec.SECP256R1())
        pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # As a browser sends a textarea: CRLF line ends, the text pasted with spaces around.
        text = "  " + pem.decode().replace("\n", "\r\n") + "\r\n"
        saved = await browser.post(f"{key.page}/public-keys", {"pem": text}, token_from=key.page)
        assert saved.status_code == 303
        assert saved.headers["location"] == f"{key.page}?saved=public_key"
        page = await browser.get(saved.headers["location"])
        fingerprint = public_key_fingerprint(private.public_key())
        assert "Public key registered. This key accepts V1 signatures only." in page.text
        assert fingerprint in page.text and "V1 (ECDSA P-256) only" in page.text
        assert "Required" in page.text and "This is the default for this key." in page.text
        assert "data-confirm" not in page.text.split("public-keys", 1)[1].split("</form>")[0]

        [entry] = await _audit(gateway, "api_key.public_key_added")
        assert entry.actor == f"dashboard:{EMAIL}" and entry.details["fingerprint"] == fingerprint
        row = await _key_row(gateway, key.key_id)
        assert row.v2_enabled is False

        async with _api(app, "198.51.100.1") as api:
            v2 = await api.get(LIST, headers=signer.headers("GET", LIST))
            assert v2.status_code == 401 and v2.json()["error"]["code"] == "signature_v1_required"
            signer.private_key = private
            v1 = await api.get(LIST, headers=signer.headers("GET", LIST, v1=True, v2=False))
            assert v1.status_code == 200, v1.text
            unsigned = await api.get(LIST, headers={"BlockATM-API-Key": key.keys.api_key})
            assert unsigned.json()["error"]["code"] == "signature_required"

        # The same key again changes nothing; a second one is listed too.
        again = await browser.post(f"{key.page}/public-keys", {"pem": text}, token_from=key.page)
        assert again.status_code == 303
        second = _public_pem()
        await browser.post(f"{key.page}/public-keys", {"pem": second}, token_from=key.page)
        async with session_scope(gateway.sessions) as session:
            stored = (await session.scalars(select(ApiPublicKey.fingerprint))).all()
        assert len(stored) == 2 and fingerprint in stored


def _rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _private_pem() -> str:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


@pytest.mark.parametrize(
    "make_pem",
    [
        lambda: _public_pem(ec.SECP256K1()),  # the wrong curve
        _rsa_pem,
        lambda: "garbage",
        lambda: "",
        lambda: "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n",
        lambda: _public_pem() + "A" * 5000,  # huge, still inside the form's limit
        lambda: "-----BEGIN PUBLIC KEY-----\n密钥\n-----END PUBLIC KEY-----\n",
        _private_pem,  # never stored, never shown back
    ],
    ids=["secp256k1", "rsa", "garbage", "empty", "bad-base64", "huge", "non-ascii", "private"],
)
async def test_a_pem_that_is_not_a_p256_public_key_is_refused_on_the_page(
    app: FastAPI, gateway: GatewayContext, mail: MailSink, make_pem: object
) -> None:
    assert callable(make_pem)
    pem = make_pem()
    async with Browser(app) as browser:
        key = await _signed_in_with_key(browser, gateway, mail)
        refused = await browser.post(f"{key.page}/public-keys", {"pem": pem}, token_from=key.page)
        assert refused.status_code == 400
        assert _error(refused.text) == "This is not an ECDSA P-256 public key in PEM format."
        assert 'aria-invalid="true"' in refused.text
        body_lines = [
            line for line in pem.splitlines() if len(line) > 20 and not line.startswith("-----")
        ]
        assert not [line for line in body_lines if line in refused.text]  # not shown back
    async with session_scope(gateway.sessions) as session:
        assert not (await session.scalars(select(ApiPublicKey))).all()
    row = await _key_row(gateway, key.key_id)
    assert row.signed_reads is None and row.v2_enabled is False
    assert not await _audit(gateway, "api_key.public_key_added")


async def test_a_form_over_the_size_limit_is_not_read(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        key = await _signed_in_with_key(browser, gateway, mail)
        huge = _public_pem() + "A" * 20_000
        refused = await browser.post(f"{key.page}/public-keys", {"pem": huge}, token_from=key.page)
        assert refused.status_code == 413  # refused while reading, before anything else
    async with session_scope(gateway.sessions) as session:
        assert not (await session.scalars(select(ApiPublicKey))).all()


async def test_at_most_ten_public_keys(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        key = await _signed_in_with_key(browser, gateway, mail)
        for _ in range(10):
            saved = await browser.post(
                f"{key.page}/public-keys", {"pem": _public_pem()}, token_from=key.page
            )
            assert saved.status_code == 303
        refused = await browser.post(
            f"{key.page}/public-keys", {"pem": _public_pem()}, token_from=key.page
        )
        assert refused.status_code == 400
        assert _error(refused.text) == "This key has 10 public keys, the most it can hold."


async def test_signed_reads_on_and_off_take_effect_at_once(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    async with Browser(app) as browser, _api(app, "198.51.100.1") as api:
        key = await _signed_in_with_key(browser, gateway, mail)
        unsigned = {"BlockATM-API-Key": key.keys.api_key}
        assert (await api.get(LIST, headers=unsigned)).status_code == 200
        page = await browser.get(key.page)
        assert "Reads (order queries) may be made with the API key alone." in page.text
        assert 'name="signed_reads" value="on"' in page.text

        on = await browser.post(
            f"{key.page}/signed-reads", {"signed_reads": "on"}, token_from=key.page
        )
        assert on.status_code == 303 and on.headers["location"].endswith("?saved=reads_on")
        refused = await api.get(LIST, headers=unsigned)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "signature_required"
        signed = await api.get(LIST, headers=Signer(key.keys, clock).headers("GET", LIST))
        assert signed.status_code == 200
        page = await browser.get(on.headers["location"])
        assert "Reads with this key now need a signature." in page.text
        assert "This is the default for this key." not in page.text
        assert 'name="signed_reads" value="off"' in page.text
        assert (await _key_row(gateway, key.key_id)).signed_reads is True

        off = await browser.post(
            f"{key.page}/signed-reads", {"signed_reads": "off"}, token_from=key.page
        )
        assert off.status_code == 303
        assert (await api.get(LIST, headers=unsigned)).status_code == 200
        assert (await _key_row(gateway, key.key_id)).signed_reads is False

        odd = await browser.post(
            f"{key.page}/signed-reads", {"signed_reads": "maybe"}, token_from=key.page
        )
        assert odd.status_code == 400
        assert _error(odd.text) == "Choose whether reads need a signature."
        assert (await _key_row(gateway, key.key_id)).signed_reads is False

        entries = await _audit(gateway, "api_key.policy_set")
        assert [e.details["signedReads"] for e in entries] == [True, False]
        assert {e.actor for e in entries} == {f"dashboard:{EMAIL}"}


async def test_the_ip_allowlist_is_checked_normalised_and_enforced_at_once(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        key = await _signed_in_with_key(browser, gateway, mail)
        unsigned = {"BlockATM-API-Key": key.keys.api_key}
        typed = "198.51.100.7\r\n 10.1.2.3/8, 2001:DB8::1/48\n\n::ffff:192.0.2.1\n198.51.100.7"
        saved = await browser.post(
            f"{key.page}/ip-allowlist", {"ip_allowlist": typed}, token_from=key.page
        )
        assert saved.status_code == 303 and saved.headers["location"].endswith("?saved=ip")
        stored = ["198.51.100.7/32", "10.0.0.0/8", "2001:db8::/48", "192.0.2.1/32"]
        assert (await _key_row(gateway, key.key_id)).ip_allowlist == ",".join(stored)
        page = await browser.get(saved.headers["location"])
        assert "IP allowlist saved" in page.text and "Only the listed addresses" in page.text
        assert "\n".join(stored) in page.text
        [entry] = await _audit(gateway, "api_key.ip_allowlist_set")
        assert entry.actor == f"dashboard:{EMAIL}" and entry.details["ipAllowlist"] == stored

        for ip, status in [
            ("198.51.100.7", 200),
            ("10.200.0.1", 200),
            ("2001:db8:0:ffff::5", 200),
            ("192.0.2.1", 200),
            ("198.51.100.8", 403),
            ("2001:db9::1", 403),
            ("11.0.0.1", 403),
        ]:
            async with _api(app, ip) as api:
                answer = await api.get(LIST, headers=unsigned)
            assert answer.status_code == status, (ip, answer.text)
            if status == 403:
                assert answer.json()["error"]["code"] == "ip_not_allowed"

        cleared = await browser.post(
            f"{key.page}/ip-allowlist", {"ip_allowlist": " \n "}, token_from=key.page
        )
        assert cleared.headers["location"].endswith("?saved=ip_any")
        assert (await _key_row(gateway, key.key_id)).ip_allowlist is None
        async with _api(app, "11.0.0.1") as api:
            assert (await api.get(LIST, headers=unsigned)).status_code == 200


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("198.51.100.7\nexample.com", "“example.com” is not an IP address or network (CIDR)."),
        ("10.0.0.0/33", "“10.0.0.0/33” is not an IP address or network (CIDR)."),
        ("fe80::1%eth0", "“fe80::1%eth0” is not an IP address or network (CIDR)."),
        ("01.2.3.4", "“01.2.3.4” is not an IP address or network (CIDR)."),
        (
            "<script>alert(1)</script>",
            "“<script>alert(1)</script>” is not an IP address or network (CIDR).",
        ),
        ("\n".join(f"10.0.{i}.0/24" for i in range(51)), "An allowlist has at most 50 entries."),
        ("1" * 4001, "An allowlist has at most 50 entries."),
    ],
    ids=["name", "prefix", "zone", "octal", "markup", "51", "long"],
)
async def test_a_bad_allowlist_is_refused_and_shown_back_as_typed(
    app: FastAPI, gateway: GatewayContext, mail: MailSink, typed: str, message: str
) -> None:
    async with Browser(app) as browser:
        key = await _signed_in_with_key(browser, gateway, mail)
        refused = await browser.post(
            f"{key.page}/ip-allowlist", {"ip_allowlist": typed}, token_from=key.page
        )
        assert refused.status_code == 400
        assert _error(refused.text) == message
        assert_inert(refused.text)
        if len(typed) <= 4000:
            assert str(escape(typed)) in refused.text
    assert (await _key_row(gateway, key.key_id)).ip_allowlist is None
    assert not await _audit(gateway, "api_key.ip_allowlist_set")


async def test_fifty_entries_are_accepted(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        key = await _signed_in_with_key(browser, gateway, mail)
        typed = "\n".join(f"2001:db8:{i:x}::/48" for i in range(50))
        saved = await browser.post(
            f"{key.page}/ip-allowlist", {"ip_allowlist": typed}, token_from=key.page
        )
        assert saved.status_code == 303
    stored = (await _key_row(gateway, key.key_id)).ip_allowlist
    assert stored is not None and len(stored.split(",")) == 50


async def test_every_form_of_the_page_checks_its_token(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser, Browser(app) as other:
        key = await _signed_in_with_key(browser, gateway, mail)
        assert (await other.log_in(EMAIL)).status_code == 303
        page = (await browser.get(key.page)).text
        assert page.count("<form") == page.count('name="csrf_token"') == 5
        forms = {
            "public-keys": {"pem": _public_pem()},
            "signed-reads": {"signed_reads": "on"},
            "ip-allowlist": {"ip_allowlist": "198.51.100.7"},
        }
        wrong = [None, "", "0" * 64, await other.token("/dashboard/keys")]
        for name, data in forms.items():
            for token in wrong:
                form = data | ({} if token is None else {"csrf_token": token})
                answer = await browser.client.post(f"{key.page}/{name}", data=form)
                assert answer.status_code == 403, (name, token)
                assert "This form has expired" in answer.text
    row = await _key_row(gateway, key.key_id)
    assert row.signed_reads is None and row.ip_allowlist is None
    async with session_scope(gateway.sessions) as session:
        assert not (await session.scalars(select(ApiPublicKey))).all()


async def test_a_hostile_label_is_text_on_the_key_page(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    label = "<svg onload=alert('label')>"
    async with Browser(app) as browser:
        key = await _signed_in_with_key(browser, gateway, mail, label=label)
        page = await browser.get(key.page)
        assert page.status_code == 200
        assert_inert(page.text)
        assert str(escape(label)) in page.text


async def test_the_sdk_signs_v1_with_the_uploaded_key_from_an_allowed_address(
    app: FastAPI, gateway: GatewayContext, clock: FakeClock, mail: MailSink
) -> None:
    private_pem, public_pem = generate_key_pair()
    async with Browser(app) as browser:
        key = await _signed_in_with_key(browser, gateway, mail)
        await _payout(gateway, clock, key.keys.merchant_id)
        await browser.post(
            f"{key.page}/public-keys", {"pem": public_pem.decode()}, token_from=key.page
        )
        await browser.post(
            f"{key.page}/ip-allowlist", {"ip_allowlist": "2001:db8:1::/64"}, token_from=key.page
        )

    def sdk(http: httpx.AsyncClient, **signing: str | bytes) -> AsyncClient:
        return AsyncClient(
            "https://pay.example.com",
            key.keys.api_key,
            http_client=http,
            now_ms=clock.now_ms,
            max_retries=0,
            **signing,  # type: ignore[arg-type]
        )

    async with _api(app, "2001:db8:1::42") as http:
        client = sdk(http, private_key_pem=private_pem)
        order = await client.create_order(31337, "USDT", "12.5", order_no="v1-1")
        assert order.status == "pending"
        assert (await client.get_order(order_no="v1-1")).order_id == order.order_id
        with pytest.raises(AuthenticationError) as v2:
            await sdk(http, secret_key=key.keys.secret_key).create_order(
                31337, "USDT", 1, order_no="v2-1"
            )
        assert v2.value.code == "signature_v1_required"
    async with _api(app, "2001:db8:2::42") as http:
        with pytest.raises(Forbidden) as elsewhere:
            await sdk(http, private_key_pem=private_pem).create_order(
                31337, "USDT", 1, order_no="v1-2"
            )
        assert elsewhere.value.status == 403 and elsewhere.value.code == "ip_not_allowed"
    async with _api(app, "2001:db8:1::42") as http:
        orders = [o.order_no async for o in sdk(http, private_key_pem=private_pem).iter_orders()]
    assert orders == ["v1-1"]
