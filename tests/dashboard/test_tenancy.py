"""A second merchant's session walks every dashboard route with the first merchant's ids: it
sees none of the first merchant's keys or sessions and can change none of them."""

from __future__ import annotations

import re

from fastapi import FastAPI
from sqlalchemy import select
from tests.dashboard.dashboard_support import Browser, MailSink, signed_up_and_in
from tests.dashboard.test_csrf import SESSION_FORMS, dashboard_routes

from stablegate.api.context import GatewayContext
from stablegate.db.engine import session_scope
from stablegate.models import ApiKey, ApiPublicKey, DashboardSession, DashboardUser

# A P-256 public key (docs/DESIGN.md §2's test vector).
PEM = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEcQWIm/lXgaj0DhRyK4QOO2SogaOp
aGUv3bZNihf9i9IxRDRHJe9m6ucIsxK4XaFScoVQZavByNqfPmqZw/X6Ig==
-----END PUBLIC KEY-----
"""

SIGNED_IN_PAGES = ("/dashboard/keys", "/dashboard/security", "/dashboard/keys/{key_id}")


def test_the_walk_covers_every_signed_in_page() -> None:
    public = {"/dashboard", "/dashboard/", "/dashboard/signup", "/dashboard/login"}
    public |= {"/dashboard/verify", "/dashboard/static/{name}"}
    assert dashboard_routes("GET") - public == set(SIGNED_IN_PAGES)


async def test_a_second_merchant_can_neither_see_nor_change_the_firsts(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as first, Browser(app, ip="198.51.100.20") as second:
        await signed_up_and_in(first, mail, "First Shop", "first@shop.example")
        created = await first.post("/dashboard/keys", {"label": "first-secret-label"})
        api_key = re.search(r'id="api-key">(ak_[\w-]+)<', created.text)
        assert api_key is not None
        await signed_up_and_in(second, mail, "Second Shop", "second@shop.example")
        await second.post("/dashboard/keys", {"label": "second-label"})

        async with session_scope(gateway.sessions) as session:
            first_user = await session.scalar(
                select(DashboardUser).where(DashboardUser.email == "first@shop.example")
            )
            assert first_user is not None
            first_key = await session.scalar(
                select(ApiKey).where(ApiKey.merchant_id == first_user.merchant_id)
            )
            first_session = await session.scalar(
                select(DashboardSession.id).where(DashboardSession.user_id == first_user.id)
            )
        assert first_key is not None and first_session is not None
        firsts = (
            first_user.merchant_id,
            "first@shop.example",
            "First Shop",
            "first-secret-label",
            first_key.id,
            first_key.key_prefix,
            first_session,
        )

        ids = {"key_id": first_key.id, "session_id": first_session}
        for path in SIGNED_IN_PAGES:
            url = path.format(**ids)
            page = await second.get(url)
            # A page of one of the first merchant's things is not found; the lists are the
            # second merchant's own. (The language links repeat the URL asked for.)
            assert page.status_code == (404 if "{" in path else 200), path
            leaked = [value for value in firsts if value in page.text.replace(url, "")]
            assert not leaked, (path, leaked)

        for path in SESSION_FORMS:
            if path == "/dashboard/logout" or path == "/dashboard/keys":
                continue  # act on the caller's own session and merchant only
            # Also with a form a person could have filled in on their own key's page.
            form = {"pem": PEM, "signed_reads": "off", "ip_allowlist": "198.51.100.20"}
            answer = await second.post(path.format(**ids), form, token_from="/dashboard/keys")
            assert answer.status_code == 404, path
            assert "There is nothing here, or it is not yours." in answer.text
            assert not [value for value in firsts if value in answer.text]

        # Nothing changed for the first merchant: its key works, its session lives.
        async with session_scope(gateway.sessions) as session:
            key = await session.get(ApiKey, first_key.id)
            assert key is not None and key.revoked_at_ms is None
            assert key.signed_reads is None and key.ip_allowlist is None
            assert not (await session.scalars(select(ApiPublicKey))).all()
        page = await first.get("/dashboard/keys")
        assert page.status_code == 200 and "first-secret-label" in page.text
        assert "second-label" not in page.text


async def test_revoking_a_key_stops_it_for_the_api(
    app: FastAPI, gateway: GatewayContext, mail: MailSink
) -> None:
    async with Browser(app) as browser:
        await signed_up_and_in(browser, mail, "Shop", "owner@shop.example")
        created = await browser.post("/dashboard/keys", {"label": "backend"})
        api_key = re.search(r'id="api-key">(ak_[\w-]+)<', created.text)
        assert api_key is not None
        listed = await browser.client.get(
            "/api/v1/payment/contractPayment", headers={"BlockATM-API-Key": api_key.group(1)}
        )
        assert listed.status_code == 200, listed.text
        async with session_scope(gateway.sessions) as session:
            key_id = await session.scalar(select(ApiKey.id).where(ApiKey.label == "backend"))
        revoked = await browser.post(
            f"/dashboard/keys/{key_id}/revoke", {}, token_from="/dashboard/keys"
        )
        assert revoked.status_code == 303
        page = await browser.get(revoked.headers["location"])
        assert f"Key {api_key.group(1)[:10]}… is revoked." in page.text
        refused = await browser.client.get(
            "/api/v1/payment/contractPayment", headers={"BlockATM-API-Key": api_key.group(1)}
        )
        assert refused.status_code == 401
