"""Links that open the cashier page inside a phone wallet's own browser, where the wallet's
injected provider pays with one tap (the page's "Pay with wallet"). The page offers the
EIP-681 request beside them.

Wallets read EIP-681 token transfers unevenly (Trust fills only the recipient), so opening the
page in the wallet is the dependable path; the shapes and their encodings follow each wallet's
deep-link documentation (MetaMask: the URL as a path, not encoded; OKX: encoded twice).
"""

from __future__ import annotations

import json
from urllib.parse import quote


def _encoded(url: str) -> str:
    return quote(url, safe="")


def wallet_links(page_url: str) -> list[dict[str, str]]:
    """``[{"name", "href"}]``: each wallet's link opening ``page_url`` in its browser."""
    bare = page_url.split("://", 1)[-1]
    okx = "okx://wallet/dapp/url?dappUrl=" + _encoded(page_url)
    token_pocket = json.dumps({"url": page_url, "chain": "ETH", "source": "stablegate"})
    return [
        {"name": "MetaMask", "href": "https://link.metamask.io/dapp/" + bare},
        {
            "name": "Trust Wallet",
            "href": "https://link.trustwallet.com/open_url?coin_id=60&url=" + _encoded(page_url),
        },
        {"name": "OKX Wallet", "href": "https://web3.okx.com/download?deeplink=" + _encoded(okx)},
        {"name": "TokenPocket", "href": "tpdapp://open?params=" + _encoded(token_pocket)},
        {
            "name": "Coinbase Wallet",
            "href": "https://go.cb-w.com/dapp?cb_url=" + _encoded(page_url),
        },
        {"name": "imToken", "href": "imtokenv2://navigate/DappView?url=" + _encoded(page_url)},
    ]
