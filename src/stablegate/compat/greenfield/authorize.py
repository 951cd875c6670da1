"""What a shop's "connect to BTCPay Server" button asks for (``GET /api-keys/authorize``, the
Greenfield authorization flow), read and checked before the merchant is asked.

The query names the permissions wanted (Greenfield names, each optionally ``:<storeId>``), the
application and the address the new key is posted back to. Only what a merchant can grant is
accepted: permissions this gateway implements (:data:`STORE_PERMISSIONS`), on the merchant's own
store; anything else the application asks for is listed as not granted (the WooCommerce plugin
treats pull payments as optional and works without them). ``strict``, ``selectiveStores`` and
``applicationIdentifier`` change nothing here: a merchant has one store, and every
authorization makes a new key.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from stablegate.compat.greenfield.credentials import STORE_PERMISSIONS
from stablegate.errors import InvalidRequest

MAX_PERMISSIONS = 20
MAX_NAME = 100
MAX_REDIRECT = 2000
MAX_PERMISSION = 120


@dataclass(frozen=True)
class AuthorizeRequest:
    granted: tuple[str, ...]  # permission names this gateway grants, in STORE_PERMISSIONS order
    refused: tuple[str, ...]  # asked for, not implemented here (shown, never granted)
    application: str  # as the shop named itself ("" when it did not), shown as text
    redirect: str | None  # where the key is posted; None: it is shown on the page instead

    @property
    def redirect_origin(self) -> str | None:
        if self.redirect is None:
            return None
        parts = urlsplit(self.redirect)
        return f"{parts.scheme}://{parts.netloc}"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_redirect(value: str) -> str:
    """An absolute https URL without credentials (http only to this machine, for a shop being
    developed on it): the new key travels in the request that follows."""
    bad = InvalidRequest("the return address is not a usable URL", code="invalid_redirect")
    if len(value) > MAX_REDIRECT or any(ord(c) < 33 or ord(c) == 127 for c in value):
        raise bad
    parts = urlsplit(value)
    try:
        host = parts.hostname or ""
        parts.port  # noqa: B018 (a port that is not a number raises)
    except ValueError:
        raise bad from None
    if parts.scheme not in ("https", "http") or not host or parts.username or parts.password:
        raise bad
    if parts.scheme == "http" and not _loopback(host):
        raise InvalidRequest(
            "the return address must use https: the new key travels to it",
            code="invalid_redirect",
        )
    return value


def authorize_request(
    permissions: list[str], application: str, redirect: str, store_id: str
) -> AuthorizeRequest:
    """The checked request of this merchant's store; ``invalid_authorization`` (400) when it
    names another store, asks for nothing this gateway grants, or is malformed."""
    if len(permissions) > MAX_PERMISSIONS:
        raise InvalidRequest("too many permissions asked for", code="invalid_authorization")
    wanted: set[str] = set()
    for permission in permissions:
        name, _, store = permission.strip().partition(":")
        if not name or len(permission) > MAX_PERMISSION or (store and store != store_id):
            raise InvalidRequest(
                "the application asks for another store's permissions",
                code="invalid_authorization",
            )
        wanted.add(name)
    granted = tuple(name for name in STORE_PERMISSIONS if name in wanted)
    if not granted:
        raise InvalidRequest(
            "the application asks for no permission this gateway grants",
            code="invalid_authorization",
        )
    name = " ".join(application.split())[:MAX_NAME]
    return AuthorizeRequest(
        granted,
        tuple(sorted(wanted - set(STORE_PERMISSIONS))),
        name,
        checked_redirect(redirect) if redirect else None,
    )
