"""GET /docs: the API reference from the package, under the strict CSP, loading nothing from
elsewhere (it used to be Swagger UI from a CDN)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx

from stablegate.web.pages import CONTENT_SECURITY_POLICY


class Links(HTMLParser):
    """Every URL the page would load or link to, and any inline code."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "poster", "data") and value:
                self.urls.append((tag, name, value))
            if name == "style" or name.startswith("on"):
                self.inline.append(f"{tag} {name}")
        if tag in ("script", "style", "iframe", "object", "embed", "base"):
            self.inline.append(tag)


async def test_docs_is_self_hosted_under_the_strict_csp(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Frame-Options"] == "DENY"
    html = response.text
    # No third-party URL anywhere in the page, not even as text.
    assert not re.search(r"https?:|//[a-z0-9]", html, re.IGNORECASE), re.findall(
        r".{40}(?:https?:|//[a-z0-9]).{40}", html
    )
    links = Links()
    links.feed(html)
    assert links.inline == []  # the CSP allows no inline script or style
    for tag, name, url in links.urls:
        assert url.startswith(("/", "#", "data:")), (tag, name, url)
    # Its assets load from the gateway itself.
    assets = [url for tag, name, url in links.urls if tag == "link" and name == "href"]
    assets = [url for url in assets if url.startswith("/")]
    assert assets
    for url in assets:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith("text/css")
        assert asset.content


async def test_docs_describes_every_operation(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    html = (await client.get("/docs")).text
    for path, item in schema["paths"].items():
        for method, spec in item.items():
            assert f'id="{spec["operationId"]}"' in html, (method, path)
            assert path in html
    for name in schema["components"]["schemas"]:
        assert f'id="schema-{name}"' in html
    # The cursor parameter is described as the opaque token it is.
    assert "format cursor" in html
