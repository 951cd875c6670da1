"""Greenfield's webhook endpoints: created with a generated or given secret (shown only then),
read and listed without it, updated, deleted; one enabled webhook per store (a new one disables
the previous); URLs the gateway would not call refused with 422 [{path, message}]; the
permission, the store and the key checked; every success HTTP 200. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select, update
from tests.compat.greenfield.greenfield_support import GreenfieldKeys

from stablegate.api.context import GatewayContext
from stablegate.db.engine import session_scope
from stablegate.models import ApiKey, GreenfieldWebhook

HOOK = "https://shop.example/?wc-api=btcpaygf_default"


async def made(client: httpx.AsyncClient, keys: GreenfieldKeys, **fields: Any) -> dict[str, Any]:
    body = {"url": HOOK, **fields}
    response = await client.post(keys.path("/webhooks"), json=body, headers=keys.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_create_shows_the_secret_once_and_reads_never(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    hook = await made(
        client,
        greenfield,
        authorizedEvents={"everything": False, "specificEvents": ["InvoiceSettled"]},
    )
    assert hook["id"].startswith("gfw_") and len(hook["secret"]) >= 32
    assert (hook["url"], hook["enabled"], hook["automaticRedelivery"]) == (HOOK, True, True)
    assert hook["authorizedEvents"] == {"everything": False, "specificEvents": ["InvoiceSettled"]}
    one = await client.get(greenfield.path(f"/webhooks/{hook['id']}"), headers=greenfield.headers)
    own = await client.get(f"/api/v1/webhooks/{hook['id']}", headers=greenfield.headers)
    listed = await client.get(greenfield.path("/webhooks"), headers=greenfield.headers)
    assert one.status_code == own.status_code == listed.status_code == 200
    expected = {k: v for k, v in hook.items() if k != "secret"}
    assert one.json() == own.json() == expected and listed.json() == [expected]
    async with session_scope(gateway.sessions) as session:
        row = await session.get(GreenfieldWebhook, hook["id"])
        assert row is not None
        assert hook["secret"] not in row.secret_enc
        assert gateway.secret_box.open(row.secret_enc) == hook["secret"]


async def test_a_given_secret_is_kept_and_everything_is_the_default(
    client: httpx.AsyncClient, greenfield: GreenfieldKeys
) -> None:
    hook = await made(client, greenfield, secret="shop-chosen-secret")
    assert hook["secret"] == "shop-chosen-secret"
    assert hook["authorizedEvents"] == {"everything": True, "specificEvents": []}


async def test_a_new_webhook_disables_the_stores_previous_one(
    client: httpx.AsyncClient, greenfield: GreenfieldKeys
) -> None:
    first = await made(client, greenfield)
    second = await made(client, greenfield, url="https://shop.example/hook2")
    listed = (await client.get(greenfield.path("/webhooks"), headers=greenfield.headers)).json()
    assert {h["id"]: h["enabled"] for h in listed} == {first["id"]: False, second["id"]: True}
    # Enabling the first again disables the second.
    put = await client.put(
        greenfield.path(f"/webhooks/{first['id']}"),
        json={"enabled": True},
        headers=greenfield.headers,
    )
    assert put.status_code == 200 and put.json()["enabled"] is True
    listed = (await client.get(greenfield.path("/webhooks"), headers=greenfield.headers)).json()
    assert {h["id"]: h["enabled"] for h in listed} == {first["id"]: True, second["id"]: False}


async def test_update_changes_url_events_and_secret_and_delete_removes(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    hook = await made(client, greenfield)
    path = greenfield.path(f"/webhooks/{hook['id']}")
    put = await client.put(
        path,
        json={
            "url": "https://shop.example/new",
            "authorizedEvents": {"everything": False, "specificEvents": ["InvoiceExpired"]},
            "secret": "rotated-secret",
        },
        headers=greenfield.headers,
    )
    assert put.status_code == 200, put.text
    body = put.json()
    assert "secret" not in body and body["url"] == "https://shop.example/new"
    assert body["authorizedEvents"] == {"everything": False, "specificEvents": ["InvoiceExpired"]}
    async with session_scope(gateway.sessions) as session:
        row = await session.get(GreenfieldWebhook, hook["id"])
        assert row is not None and gateway.secret_box.open(row.secret_enc) == "rotated-secret"
    deleted = await client.delete(path, headers=greenfield.headers)
    assert deleted.status_code == 200
    gone = await client.get(path, headers=greenfield.headers)
    assert gone.status_code == 404
    again = await client.delete(f"/api/v1/webhooks/{hook['id']}", headers=greenfield.headers)
    assert again.status_code == 404


async def test_urls_the_gateway_would_not_call_are_422_with_the_path(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    for url in ("ftp://shop.example/hook", "not a url", "https://user:pw@shop.example/", 5):
        response = await client.post(
            greenfield.path("/webhooks"), json={"url": url}, headers=greenfield.headers
        )
        assert response.status_code == 422, url
        [problem] = response.json()
        assert problem["path"] == "url" and problem["message"]
    missing = await client.post(greenfield.path("/webhooks"), json={}, headers=greenfield.headers)
    assert missing.status_code == 422 and missing.json()[0]["path"] == "url"
    hook = await made(client, greenfield)
    bad_put = await client.put(
        greenfield.path(f"/webhooks/{hook['id']}"),
        json={"url": "javascript:alert(1)"},
        headers=greenfield.headers,
    )
    assert bad_put.status_code == 422
    bad_events = await client.post(
        greenfield.path("/webhooks"),
        json={"url": HOOK, "authorizedEvents": {"everything": False, "specificEvents": "x"}},
        headers=greenfield.headers,
    )
    assert bad_events.status_code == 422
    async with session_scope(gateway.sessions) as session:
        urls = (await session.scalars(select(GreenfieldWebhook.url))).all()
    assert urls == [HOOK]


async def test_the_permission_store_and_key_are_checked(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    hook = await made(client, greenfield)
    other_store = await client.get(
        f"/api/v1/stores/someone-else/webhooks/{hook['id']}", headers=greenfield.headers
    )
    assert other_store.status_code == 403
    assert other_store.json()["code"] == "missing_permission"
    no_key = await client.get(greenfield.path("/webhooks"))
    assert no_key.status_code == 401
    async with session_scope(gateway.sessions) as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == greenfield.key_id)
            .values(compat_permissions=f"btcpay.store.canviewinvoices:{greenfield.store_id}")
        )
    for response in (
        await client.get(greenfield.path("/webhooks"), headers=greenfield.headers),
        await client.post(
            greenfield.path("/webhooks"), json={"url": HOOK}, headers=greenfield.headers
        ),
        await client.delete(f"/api/v1/webhooks/{hook['id']}", headers=greenfield.headers),
    ):
        assert response.status_code == 403
        assert response.json()["code"] == "missing_permission"
