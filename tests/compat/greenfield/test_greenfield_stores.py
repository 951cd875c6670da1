"""Greenfield's server and store endpoints as the WooCommerce plugin calls them: server info,
the one store, its payment methods; another store is 403 in Greenfield's shape, every success
200. SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
from tests.compat.greenfield.greenfield_support import GreenfieldKeys


async def test_server_info_is_a_recent_fully_synched_version(
    client: httpx.AsyncClient, greenfield: GreenfieldKeys
) -> None:
    response = await client.get("/api/v1/server/info", headers=greenfield.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["fullySynched"] is True
    version = tuple(int(part) for part in body["version"].split("."))
    assert version >= (1, 7, 6)


async def test_the_store_is_the_merchant(
    client: httpx.AsyncClient, greenfield: GreenfieldKeys
) -> None:
    listed = await client.get("/api/v1/stores", headers=greenfield.headers)
    one = await client.get(greenfield.path(), headers=greenfield.headers)
    assert listed.status_code == one.status_code == 200
    assert listed.json() == [one.json()]
    store = one.json()
    assert (store["id"], store["name"], store["defaultCurrency"]) == (
        greenfield.store_id,
        "Test Shop",
        "USD",
    )
    assert isinstance(store["invoiceExpiration"], int) and store["archived"] is False


async def test_payment_methods_are_each_token_on_each_payout_chain(
    client: httpx.AsyncClient, greenfield: GreenfieldKeys
) -> None:
    response = await client.get(greenfield.path("/payment-methods"), headers=greenfield.headers)
    assert response.status_code == 200
    methods = response.json()
    ids = [m["paymentMethodId"] for m in methods]
    # By chain id: BNB Smart Chain's tokens (the registry's), then the dev chain's (the test
    # chains file's).
    assert ids[0] == "USDT-BSC" and ids[-2:] == ["USDT-DEVCHAIN", "USDT18-DEVCHAIN"]
    assert all(m["enabled"] is True and m["paymentMethod"] == m["paymentMethodId"] for m in methods)


async def test_another_store_is_403_and_an_unknown_path_is_not_ours(
    client: httpx.AsyncClient, greenfield: GreenfieldKeys
) -> None:
    for path in ("/api/v1/stores/other", "/api/v1/stores/other/payment-methods",
                 "/api/v1/stores/other/invoices"):  # fmt: skip
        response = await client.get(path, headers=greenfield.headers)
        assert response.status_code == 403, path
        assert response.json()["code"] == "missing_permission"
