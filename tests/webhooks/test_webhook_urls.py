"""Notify URLs: one check when they are set and before every attempt, and a URL that still fails
at delivery time (stored by an older version) is a logged failed attempt, never a jammed order."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from sqlalchemy import select, update
from tests.support import MerchantKeys
from tests.webhooks.webhook_support import create_orders, drive, events_by_id, make_worker

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.models import Order, WebhookDelivery
from stablegate.outbound import DestinationError, parse_webhook_url, resolve_target
from stablegate.webhooks.schedule import ORDER_RELEASE_ATTEMPTS

H = 3_600_000

# (URL, what the refusal says): every form the guard refuses.
BAD_URLS = [
    ("http://a..b/x", "empty or over-long label"),
    ("http://" + "a" * 64 + ".example.com/x", "empty or over-long label"),
    ("http://.example.com/x", "empty or over-long label"),
    ("http://example.com../x", "empty or over-long label"),
    ("http://" + ".".join(["a" * 63] * 4) + ".com/x", "longer than 253"),
    ("http://xn--zz.example.com/x", "not valid IDNA"),
    ("http://\u2603.example.com/x", "not a valid URL"),  # not IDNA 2008
    ("http://-shop.example.com/x", "not a valid DNS name"),
    ("http://shop-.example.com/x", "not a valid DNS name"),
    ("http://sh%20op.example.com/x", "not a valid DNS name"),
    ("http://sh op.example.com/x", "whitespace"),
    ("http://example.com/x\x01", "control characters"),
    ("http://example.com/x\x7f", "control characters"),
    ("https://user:secret@example.com/x", "user name or password"),
    ("https://user@example.com/x", "user name or password"),
    ("ftp://example.com/x", "only http and https"),
    ("file:///etc/passwd", "only http and https"),
    ("javascript:alert(1)", "only http and https"),
    ("gopher://example.com:70/", "only http and https"),
    ("http:///x", "no host"),
    ("http://example.com:0/x", "port 0"),
    ("http://example.com:70000/x", "port 70000"),
    ("", "empty"),
    ("https://example.com/" + "a" * 2048, "longer than 2048"),
]

GOOD_URLS = [
    ("https://hooks.example.com/in?x=1", "hooks.example.com"),
    ("https://Hooks.Example.COM:8443/in", "hooks.example.com"),
    ("http://127.0.0.1:8080/x", "127.0.0.1"),
    ("http://[::1]:8080/x", "::1"),
    ("https://b\u00fccher.example/hook", "xn--bcher-kva.example"),
    ("https://xn--bcher-kva.example/hook", "xn--bcher-kva.example"),
    ("https://shop.example.com./hook", "shop.example.com."),
    ("https://my_shop.example.com/hook", "my_shop.example.com"),
    ("https://" + "a" * 63 + ".example.com/hook", "a" * 63 + ".example.com"),
]


@pytest.mark.parametrize(("url", "reason"), BAD_URLS)
def test_the_guard_refuses_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(DestinationError, match=reason):
        parse_webhook_url(url)


@pytest.mark.parametrize(("url", "host"), GOOD_URLS)
def test_the_guard_accepts_real_urls(url: str, host: str) -> None:
    assert parse_webhook_url(url)[1] == host


@pytest.mark.parametrize("url", ["http://a..b/x", "http://" + "a" * 64 + ".example.com/x"])
async def test_names_getaddrinfo_cannot_encode_are_destination_errors(url: str) -> None:
    # The system resolver's IDNA step raised UnicodeError here, past the guard.
    with pytest.raises(DestinationError, match="label"):
        await resolve_target(url, allow_private=True)


@pytest.mark.parametrize("error", [UnicodeError("label empty or too long"), ValueError("NUL")])
async def test_any_resolver_error_is_a_destination_error(error: Exception) -> None:
    async def resolver(host: str, port: int) -> Sequence[str]:
        raise error

    with pytest.raises(DestinationError, match="does not resolve"):
        await resolve_target("http://hooks.example.com/x", allow_private=True, resolver=resolver)


async def deliveries(gateway: GatewayContext) -> list[WebhookDelivery]:
    async with session_scope(gateway.sessions) as session:
        rows = await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))
        return list(rows.all())


async def store_url_directly(gateway: GatewayContext, order_id: str, url: str) -> None:
    """As an older version, whose check was looser, stored it."""
    async with session_scope(gateway.sessions) as session:
        await session.execute(update(Order).where(Order.id == order_id).values(notify_url=url))


@pytest.mark.parametrize(
    "url",
    [
        "http://a..b/x",
        "http://" + "a" * 64 + ".example.com/x",
        "https://user:secret@example.com/x",
        "http://example.com:70000/x",
    ],
)
async def test_a_malformed_stored_url_is_a_failed_attempt_and_the_order_moves_on(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys, url: str
) -> None:
    [[first, second]] = await create_orders(
        gateway, clock, merchant.merchant_id, 1, events_per_order=2
    )
    await store_url_directly(gateway, (await events_by_id(gateway))[first].order_id, url)
    t0 = clock.now_ms()
    async with make_worker(gateway, clock, rng=random.Random(7)) as worker:
        assert await worker.run_once() == 1
        [row] = await deliveries(gateway)
        assert (row.event_id, row.attempt, row.outcome, row.response_status) == (
            first,
            1,
            "error",
            None,
        )
        assert row.url == url and row.error
        event = (await events_by_id(gateway))[first]
        assert (event.status, event.attempts, event.lease_until_ms) == ("pending", 1, None)
        assert t0 + 10_000 <= event.next_attempt_at_ms <= t0 + 11_000  # the normal schedule

        await drive(gateway, clock, [worker], until_ms=t0 + 2 * H)

    rows = await deliveries(gateway)
    assert {r.outcome for r in rows} == {"error"}
    firsts = [r for r in rows if r.event_id == first]
    seconds = [r for r in rows if r.event_id == second]
    assert [r.attempt for r in firsts] == list(range(1, len(firsts) + 1))
    assert len(firsts) >= ORDER_RELEASE_ATTEMPTS
    # The order's next event waited for the first one's 7th attempt, as for any failing
    # receiver, and no longer.
    released = firsts[ORDER_RELEASE_ATTEMPTS - 1].attempted_at_ms
    assert seconds and seconds[0].attempted_at_ms == released
    assert all(r.attempted_at_ms < released for r in firsts[: ORDER_RELEASE_ATTEMPTS - 1])


async def test_an_unexpected_error_preparing_the_request_is_a_failed_attempt(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    async def broken_resolver(host: str, port: int) -> Sequence[str]:
        raise RuntimeError("resolver bug")

    [[event_id]] = await create_orders(
        gateway, clock, merchant.merchant_id, 1, notify_url="https://hooks.example.com/in"
    )
    async with make_worker(gateway, clock, resolver=broken_resolver) as worker:
        assert await worker.run_once() == 1
        assert await worker.run_once() == 0  # not due again before its retry time
    [row] = await deliveries(gateway)
    assert (row.event_id, row.attempt, row.outcome) == (event_id, 1, "error")
    assert row.error == "RuntimeError: resolver bug"
    event = (await events_by_id(gateway))[event_id]
    assert (event.status, event.attempts, event.lease_until_ms) == ("pending", 1, None)
