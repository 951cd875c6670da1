"""Decrypted webhook secrets are kept briefly, by ciphertext, so a rotation is seen at once."""

from __future__ import annotations

import hashlib
import hmac

import httpx
import pytest
from cryptography.fernet import Fernet
from tests.support import MerchantKeys
from tests.webhooks.webhook_support import create_orders, make_worker, set_merchant_url

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.secret_box import SecretBox, SecretKeyMissing
from stablegate.webhooks.secret_cache import WebhookSecretCache
from stablegate.webhooks.service import rotate_webhook_secret


class CountingBox(SecretBox):
    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        self.opened: list[str] = []

    def open(self, token: str) -> str:
        self.opened.append(token)
        return super().open(token)


class Timer:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_secret_is_decrypted_once_until_it_expires() -> None:
    box, timer = CountingBox(Fernet.generate_key()), Timer()
    first, second = box.seal("whsec_one"), box.seal("whsec_two")
    cache = WebhookSecretCache(box, ttl_s=60, timer=timer)
    assert [cache.open(first), cache.open(first), cache.open(second)] == [
        "whsec_one",
        "whsec_one",
        "whsec_two",
    ]
    assert box.opened == [first, second]
    timer.now += 59.9
    assert cache.open(first) == "whsec_one" and len(box.opened) == 2
    timer.now += 0.1  # 60 s after it was opened: dropped, decrypted again
    assert cache.open(second) == "whsec_two"
    assert box.opened == [first, second, second]
    assert len(cache) == 1  # the expired one is gone from memory, not only skipped


def test_the_oldest_entries_go_past_the_bound_and_failures_are_not_kept() -> None:
    box = CountingBox(Fernet.generate_key())
    tokens = [box.seal(f"whsec_{n}") for n in range(3)]
    cache = WebhookSecretCache(box, max_entries=2)
    for token in tokens:
        cache.open(token)
    assert len(cache) == 2
    cache.open(tokens[0])  # pushed out: decrypted again
    assert box.opened == [*tokens, tokens[0]]
    foreign = SecretBox(Fernet.generate_key()).seal("whsec_other_key")
    for _ in range(2):
        with pytest.raises(SecretKeyMissing):
            cache.open(foreign)
    assert box.opened.count(foreign) == 2


async def test_a_running_worker_signs_with_the_new_secret_right_after_a_rotation(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    def v2(secret: str, request: httpx.Request) -> str:
        signed = request.headers["blockatm-request-time"].encode() + b"." + request.content
        return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()

    await set_merchant_url(gateway, merchant.merchant_id, "http://127.0.0.1:9/hook")
    factory = lambda: httpx.AsyncClient(transport=httpx.MockTransport(handler))  # noqa: E731
    # One worker throughout, so the secret it opened for the first event is in its cache.
    async with make_worker(gateway, clock, http_client_factory=factory) as worker:
        await create_orders(gateway, clock, merchant.merchant_id, 1)
        assert await worker.run_once() == 1
        async with session_scope(gateway.sessions) as session:
            rotated = await rotate_webhook_secret(
                session, gateway.secret_box, clock, merchant_id=merchant.merchant_id
            )
        await create_orders(gateway, clock, merchant.merchant_id, 1)
        assert await worker.run_once() == 1
    before, after = sent
    assert before.headers["blockatm-signature-v2"] == v2(merchant.webhook_secret, before)
    # The new secret first, the previous one (served from the cache) second.
    assert after.headers["blockatm-signature-v2"] == ",".join(
        [v2(rotated.webhook_secret, after), v2(merchant.webhook_secret, after)]
    )
