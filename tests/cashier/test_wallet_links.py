"""Each wallet's link opens the cashier page in its own browser, encoded as that wallet asks."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, unquote, urlsplit

from stablegate.cashier.wallet_links import wallet_links

PAGE = "https://pay.shop.example/cashier/abc?lang=en"


def test_wallet_links_open_the_page() -> None:
    links = {link["name"]: link["href"] for link in wallet_links(PAGE)}
    assert list(links) == [
        "MetaMask",
        "Trust Wallet",
        "OKX Wallet",
        "TokenPocket",
        "Coinbase Wallet",
        "imToken",
    ]
    # MetaMask takes the URL as a path, unencoded and without its scheme.
    assert links["MetaMask"] == "https://link.metamask.io/dapp/pay.shop.example/cashier/abc?lang=en"
    trust = parse_qs(urlsplit(links["Trust Wallet"]).query)
    assert trust == {"coin_id": ["60"], "url": [PAGE]}
    # OKX: the okx:// link is encoded inside the universal link, the page URL inside that.
    okx = parse_qs(urlsplit(links["OKX Wallet"]).query)["deeplink"][0]
    assert parse_qs(urlsplit(okx).query)["dappUrl"] == [PAGE]
    params = json.loads(unquote(links["TokenPocket"].split("params=", 1)[1]))
    assert params["url"] == PAGE
    assert parse_qs(urlsplit(links["Coinbase Wallet"]).query)["cb_url"] == [PAGE]
    assert parse_qs(urlsplit(links["imToken"]).query)["url"] == [PAGE]
